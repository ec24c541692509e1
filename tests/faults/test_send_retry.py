"""Transient send failures that provably created no chat are retried once; nothing is
ever sent twice.

A refused connection proves the request never left the gateway, so the chat core sends
it again (after half a second); a send that may have arrived (a 5xx, a hang, a drop
after the request went out) is reported instead, since sending it again could run the
turn twice. The refused connection comes from a :class:`Forwarder` whose port opens only
once the gateway logged its first, failed attempt.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from tests.conftest import GATEWAYS, Upstream
from tests.faults.conftest import Aftermath, bound, fault_env
from tests.faults.dialects import OPENAI, Outcome, ask, expect_error
from tests.faults.forwarder import Forwarder
from tests.secrets import SECRETS_GROUP
from tests.servers import Process, free_port, start_gateway
from tests.simulator.control import SimulatorControl

pytestmark = pytest.mark.xdist_group(SECRETS_GROUP)

#: What the gateway logs when a send found no connection (gateway/upstream/pacing.py).
RETRY_LINE = "send failed (UpstreamNotReached); again in"
#: The chat core's wait before the second attempt (gateway/chat/service.py).
RETRY_DELAY = 0.5


@pytest.fixture
def refusing(simulator_url: str, stream_url: str, surface_env: dict[str, str], fault_state_url: str,
             upstream: Upstream) -> Iterator[tuple[Process, str, Forwarder]]:
    """A gateway whose send goes through a forwarder that refuses until told to listen.

    On the session surface that is the stream host (only the message POST goes there);
    on matrix, whose every call shares one host, the API host.
    """
    target = stream_url if upstream.surface == "session" else simulator_url
    forwarder = Forwarder(free_port(), int(urlsplit(target).port or 0))
    through = f"http://127.0.0.1:{forwarder.port}"
    routed = {"MINIMAX_STREAM_BASE_URL": through} if upstream.surface == "session" else {}
    env = {**surface_env, **fault_env(fault_state_url), **routed}
    base = simulator_url if upstream.surface == "session" else through
    proc, url = start_gateway(base, f"gateway-{upstream.surface}-faults-refusing", env)
    GATEWAYS.append(proc)
    yield proc, url, forwarder
    forwarder.close()
    proc.stop()


def wait_for_line(proc: Process, line: str, pending: Future[Outcome], timeout: float) -> None:
    """Until the gateway logged ``line``; fails early when the request already ended."""
    deadline = time.monotonic() + timeout
    while line not in proc.log():
        assert not pending.done(), f"no retry: the request ended with {pending.result()}"
        assert time.monotonic() < deadline, f"the gateway never logged {line!r}"
        time.sleep(0.02)


def test_a_send_that_found_no_connection_is_sent_once_more(
        refusing: tuple[Process, str, Forwarder], sim: SimulatorControl, credential: str,
        aftermath: Aftermath) -> None:
    proc, gateway, forwarder = refusing
    sim.script([{"text": "sent once", "cps": 1000}])
    with ThreadPoolExecutor(1) as executor:
        pending = executor.submit(ask, gateway, OPENAI, credential, True)
        wait_for_line(proc, RETRY_LINE, pending, timeout=10)
        forwarder.listen()  # within the retry delay: the second attempt gets through
        outcome = pending.result(timeout=30)
    assert (outcome.status, outcome.text, outcome.finished) == (200, "sent once", True), outcome
    assert outcome.seconds < bound(RETRY_DELAY + 0.5)
    assert forwarder.accepted >= 1
    assert len(sim.log()) == 1 and sim.stats()["double_generation_attempts"] == 0
    aftermath.settled([credential])


def test_a_send_that_may_have_arrived_is_not_sent_again(
        fault_gateway: str, sim: SimulatorControl, upstream: Upstream, credential: str,
        aftermath: Aftermath) -> None:
    """drop_after: the upstream took the turn, then the connection died before its answer."""
    sim.fault(upstream.send_fault, "drop_after")
    outcome = ask(fault_gateway, OPENAI, credential, False)
    expect_error(outcome, OPENAI, "unavailable", in_stream=False)
    assert len(sim.log()) == 1, "the turn was sent again"
    stats = sim.stats()
    assert stats["faults_applied"] == {f"{upstream.send_fault}:drop_after": 1}
    assert stats["double_generation_attempts"] == 0
    # matrix: the chat exists upstream under an id the gateway never learnt.
    aftermath.settled([credential], chats=upstream.surface == "session")


