"""Client-side faults: a slow reader, and a client that goes away at each stage.

A slow client (reading slower than the answer arrives, through a tiny receive window)
still gets the whole answer intact. A client that disconnects is noticed: its turn is
stopped and its chat deleted within about a second, its account freed, and (queued for
an account) no turn is started for it at all. Disconnects are noticed in the chat core
(every dialect's view hands it the same probe), so each stage runs in one dialect,
rotating; streaming, the common case, runs in all three.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import Upstream
from tests.faults.conftest import READ_TIMEOUT, Aftermath, bound
from tests.faults.dialects import ANTHROPIC, DIALECTS, GEMINI, OPENAI, Dialect, ask, open_raw
from tests.secrets import SECRETS_GROUP, record_text
from tests.simulator.control import SimulatorControl

pytestmark = pytest.mark.xdist_group(SECRETS_GROUP)

#: Seconds from a client's disconnect until its chat is gone (polls and heartbeats are
#: at most half a second apart, then the stop and the delete).
NOTICED_WITHIN = 1.0
LONG_ANSWER = {"length": 3000, "cps": 300}  # ten seconds: still running when the client leaves


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``condition()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not within {timeout}s: {what}"
        time.sleep(0.02)
    return time.monotonic() - started


def alive(sim: SimulatorControl) -> int:
    """Upstream turns still alive: web chats not deleted, code generations still running
    (the code surface keeps nothing upstream; a stopped generation is the whole cleanup)."""
    return int(sim.stats()["chats_alive"]) + int(sim.code_stats()["generating"])


def chats_gone(sim: SimulatorControl) -> float:
    """Seconds until no upstream chat is alive (the disconnect was acted upon)."""
    return wait_until(lambda: alive(sim) == 0, bound(NOTICED_WITHIN), "chat deleted")


def read_first_content(response: http.client.HTTPResponse, where: str) -> None:
    while True:
        line = response.readline()
        assert line, "the stream ended before any content"
        record_text(where, line.decode("utf-8", "replace"))
        if b'"text' in line or b'"content":"' in line and b'"content":""' not in line:
            return


@pytest.mark.parametrize("dialect", DIALECTS, ids=str)
def test_disconnect_while_streaming(dialect: Dialect, fault_gateway: str, sim: SimulatorControl,
                                    credential: str, aftermath: Aftermath) -> None:
    sim.script([LONG_ANSWER])
    conn = open_raw(fault_gateway, dialect, credential, True)
    response = conn.getresponse()
    assert response.status == 200
    read_first_content(response, f"faults disconnect {dialect}")
    conn.close()
    assert chats_gone(sim) < bound(NOTICED_WITHIN)
    (entry,) = sim.log()
    assert entry["stopped"] and len(entry["delivered"]) < LONG_ANSWER["length"]
    aftermath.settled([credential])


def test_disconnect_while_waiting_for_the_first_token(fault_gateway: str, sim: SimulatorControl,
                                                      credential: str, aftermath: Aftermath) -> None:
    sim.script([{"text": "too late", "first_delay": 4.0}])
    conn = open_raw(fault_gateway, GEMINI, credential, True)
    wait_until(lambda: alive(sim) == 1, bound(0.5), "turn sent")
    time.sleep(0.3)
    conn.close()
    assert chats_gone(sim) < bound(NOTICED_WITHIN)
    (entry,) = sim.log()
    assert entry["stopped"] and entry["delivered"] == ""
    aftermath.settled([credential])


def test_disconnect_while_waiting_for_a_whole_answer(fault_gateway: str, sim: SimulatorControl,
                                                     credential: str, aftermath: Aftermath) -> None:
    sim.script([LONG_ANSWER])
    conn = open_raw(fault_gateway, ANTHROPIC, credential, False)
    wait_until(lambda: alive(sim) == 1, bound(0.5), "turn sent")
    time.sleep(0.5)
    conn.close()
    assert chats_gone(sim) < bound(NOTICED_WITHIN)
    (entry,) = sim.log()
    assert entry["stopped"] and len(entry["delivered"]) < LONG_ANSWER["length"]
    aftermath.settled([credential])


def test_disconnect_while_sending(fault_gateway: str, sim: SimulatorControl, upstream: Upstream,
                                  credential: str, aftermath: Aftermath) -> None:
    """The send is slow (but within the read timeout); the client leaves meanwhile. The
    turn starts once the send returns, and is stopped at once."""
    send_seconds = READ_TIMEOUT * 0.6
    sim.script([LONG_ANSWER])
    sim.fault(upstream.send_fault, "hang", seconds=send_seconds)
    conn = open_raw(fault_gateway, OPENAI, credential, True)
    time.sleep(0.3)
    conn.close()
    closed = time.monotonic()
    wait_until(lambda: bool(sim.log()), bound(send_seconds), "the slow send arrived")
    chats_gone(sim)
    assert time.monotonic() - closed < bound(send_seconds + NOTICED_WITHIN)
    (entry,) = sim.log()
    assert entry["stopped"] and len(entry["delivered"]) < LONG_ANSWER["length"]
    aftermath.settled([credential])


def test_disconnect_while_queued_for_an_account(fault_gateway: str, sim: SimulatorControl,
                                                credential: str, aftermath: Aftermath) -> None:
    sim.script([{"length": 600, "cps": 600}])  # the holder's turn: about a second
    with ThreadPoolExecutor(1) as executor:
        holder = executor.submit(ask, fault_gateway, OPENAI, credential, True)
        wait_until(lambda: alive(sim) == 1, bound(0.5), "holder's turn sent")
        queued = open_raw(fault_gateway, OPENAI, credential, True)
        time.sleep(0.3)
        queued.close()
        assert holder.result(timeout=30).finished
    time.sleep(1.0)  # long enough for a queued request to have sent its turn
    aftermath.settled([credential])
    assert len(sim.log()) == 1, "a turn was sent for a client that had gone"


@pytest.mark.parametrize("dialect", DIALECTS, ids=str)
def test_slow_client_gets_the_whole_answer(dialect: Dialect, fault_gateway: str, sim: SimulatorControl,
                                           credential: str, aftermath: Aftermath) -> None:
    """The client reads about 100 kB/s through a 4 kB window, slower than the answer
    arrives: the gateway's writes block and nothing is lost or reordered."""
    sim.script([{"length": 20000, "cps": 10000}])
    started = time.monotonic()
    conn = open_raw(fault_gateway, dialect, credential, True, rcvbuf=4096)
    response = conn.getresponse()
    assert response.status == 200
    body = bytearray()
    while chunk := response.read1(2048):
        body += chunk
        time.sleep(0.02)
    conn.close()
    text = body.decode()
    record_text(f"faults slow client {dialect}", text)
    answer, error, finished = dialect.read_stream(text)
    (entry,) = sim.log()
    assert (error, finished) == (None, True) and answer == entry["answer"]
    assert time.monotonic() - started < bound(3.0)
    aftermath.settled([credential])
