"""Process faults: SIGTERM of the gunicorn master with streams open, SIGKILL of a worker
mid-stream.

Each needs a gateway of its own (it is stopped or maimed), so these are the costliest
cases: they run with representative dialects only (two streams of two dialects at once
for SIGTERM, one for SIGKILL), since signals act on processes, beneath every dialect.
tests/accounts/test_sweep.py covers SIGKILL with two workers and both state backends;
here the one worker is killed, so a new one must be forked before anything is served.
"""

from __future__ import annotations

import http.client
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.state import LEASE_TTL
from tests.bench.common import child_pids
from tests.conftest import GATEWAYS
from tests.faults.conftest import Aftermath, bound
from tests.faults.dialects import ANTHROPIC, GEMINI, OPENAI, Dialect, SmallWindow, ask, open_raw
from tests.secrets import SECRETS_GROUP, record_text
from tests.servers import Process, start_gateway
from tests.simulator.control import SimulatorControl

pytestmark = [pytest.mark.xdist_group(SECRETS_GROUP), pytest.mark.timeout(120)]

GRACEFUL_TIMEOUT = 8.0
#: The answer still running when the signal comes: about three seconds in all.
ANSWER = {"length": 900, "cps": 300}
SWEEP_INTERVAL = 1.0

Starter = Callable[..., tuple[Process, str]]


@pytest.fixture
def own_gateway(simulator_url: str, surface_env: dict[str, str], tmp_path: Path) -> Iterator[Starter]:
    """Start a gateway of this test's own (stopped at the end, whatever became of it)."""
    started: list[Process] = []

    def start(name: str, **env: str) -> tuple[Process, str]:
        settings = {**surface_env, "GATEWAY_STATE": f"sqlite://{tmp_path / 'state.db'}", **env}
        proc, url = start_gateway(simulator_url, f"gateway-{surface_env['MINIMAX_SURFACE']}-faults-{name}",
                                  settings)
        GATEWAYS.append(proc)
        started.append(proc)
        return proc, url

    yield start
    for proc in started:
        proc.stop()


def first_content(conn: SmallWindow) -> tuple[http.client.HTTPResponse, bytes]:
    """The response, read up to its first content frame, and what was read."""
    response = conn.getresponse()
    assert response.status == 200
    seen = b""
    while b'"text' not in seen and b'"content":"' not in seen.replace(b'"content":""', b""):
        line = response.readline()
        assert line, "the stream ended before any content"
        seen += line
    record_text("faults signals", seen.decode("utf-8", "replace"))
    return response, seen


def rest(response: http.client.HTTPResponse) -> bytes:
    """The rest of the body: to its end, or whatever arrived before the connection broke."""
    body = b""
    try:
        while chunk := response.read1(65536):
            body += chunk
    except (OSError, http.client.HTTPException) as exc:
        record_text("faults signals", str(exc))
    record_text("faults signals", body.decode("utf-8", "replace"))
    return body


def test_sigterm_lets_open_streams_finish(own_gateway: Starter, sim: SimulatorControl,
                                          accounts: Callable[..., list[dict]], aftermath_of: Callable[[str], Aftermath],
                                          tmp_path: Path) -> None:
    proc, url = own_gateway("sigterm", GATEWAY_GRACEFUL_TIMEOUT=str(int(GRACEFUL_TIMEOUT)))
    sim.set_default(ANSWER)
    made = accounts(2)
    streams: list[tuple[Dialect, http.client.HTTPResponse, bytes]] = []
    for dialect, account in zip((OPENAI, ANTHROPIC), made, strict=True):
        streams.append((dialect, *first_content(open_raw(url, dialect, account["credential"], True))))
    os.kill(proc.proc.pid, signal.SIGTERM)
    signalled = time.monotonic()
    answers = {entry["account"]: entry["answer"] for entry in sim.log()}
    for (dialect, response, head), account in zip(streams, made, strict=True):
        body = (head + rest(response)).decode()
        record_text(f"faults sigterm {dialect}", body)
        text, error, finished = dialect.read_stream(body)
        assert (error, finished) == (None, True), body[-300:]
        assert text == answers[account["real_user_id"]]
    assert time.monotonic() - signalled < GRACEFUL_TIMEOUT
    proc.proc.wait(timeout=GRACEFUL_TIMEOUT + 5)
    aftermath_of(f"sqlite://{tmp_path / 'state.db'}").settled([account["credential"] for account in made])


def test_sigkill_of_a_worker_mid_stream(own_gateway: Starter, sim: SimulatorControl, credential: str, surface: str,
                                        aftermath_of: Callable[[str], Aftermath], tmp_path: Path) -> None:
    proc, url = own_gateway("sigkill", GATEWAY_WORKERS="1", GATEWAY_SWEEP_INTERVAL=str(SWEEP_INTERVAL))
    sim.set_default(ANSWER)
    response, _ = first_content(open_raw(url, GEMINI, credential, True))
    (worker,) = child_pids(proc.proc.pid)
    os.kill(worker, signal.SIGKILL)
    killed = time.monotonic()
    _, _, finished = GEMINI.read_stream(rest(response).decode(errors="replace"))
    assert not finished, "a killed worker's stream cannot have ended normally"
    # The same account: served once a new worker is up and the dead one's lease expired.
    outcome = ask(url, OPENAI, credential, False)
    assert (outcome.status, outcome.error) == (200, None), outcome
    assert time.monotonic() - killed < bound(LEASE_TTL)
    assert child_pids(proc.proc.pid) != [worker]
    # The dead worker's chat is an orphan the sweep deletes (the code surface keeps
    # nothing upstream: its generation stopped with the dead worker's connection).
    aftermath = aftermath_of(f"sqlite://{tmp_path / 'state.db'}")
    deadline = time.monotonic() + bound(LEASE_TTL + SWEEP_INTERVAL)
    while sim.stats()["chats_alive"] or sim.code_stats()["generating"]:
        assert time.monotonic() < deadline, "the orphaned chat was not swept"
        time.sleep(0.2)
    aftermath.settled([credential])
    if surface == "code":
        assert sim.log()[0]["stopped"], "the killed worker's generation went on"
    else:
        assert "swept 1 orphaned upstream conversation" in proc.log()
