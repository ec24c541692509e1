"""The wire's pool: an idle connection retires before the upstream's idle timeout, a
request the server provably never got is sent once more on a fresh connection, and a
request that may have reached the server is never sent again.

The servers are the raw loopback ones of ``test_wire``; the race of a keep-alive close
(the server closes just after the pool's liveness check) is made by switching that
check off once the close has arrived.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest
from urllib3.util.wait import wait_for_read

from gateway.upstream import transport
from gateway.upstream.transport import KEEP_ALIVE_EXPIRY_S, Wire
from tests.upstream.test_wire import HEADERS, OK_BODY, RawServer, ok_answer

TIMEOUTS = (2.0, 2.0)
#: Seconds the test waits for the server's close to reach the client (not a measurement).
CLOSE_ARRIVES_S = 5.0


class Clock:
    """A ``time.monotonic`` that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(transport, "time", fake)
    return fake


@pytest.fixture()
def server() -> Iterator[RawServer]:
    raw = RawServer()
    yield raw
    raw.close()


def test_an_idle_connection_is_reused_within_the_expiry_and_closed_after_it(server: RawServer, clock: Clock) -> None:
    wire = Wire(server.url, pool_size=4)
    url = f"{server.url}/x"
    try:
        assert wire.exchange("POST", url, HEADERS, b"{}", TIMEOUTS) == (200, OK_BODY)
        clock.now += KEEP_ALIVE_EXPIRY_S * 0.9
        assert wire.exchange("POST", url, HEADERS, b"{}", TIMEOUTS) == (200, OK_BODY)
        assert server.accepted == 1
        clock.now += KEEP_ALIVE_EXPIRY_S * 1.1  # idle since the second call: past the expiry
        assert wire.exchange("POST", url, HEADERS, b"{}", TIMEOUTS) == (200, OK_BODY)
        assert server.accepted == 2 and wire.connections_opened() == 2
    finally:
        wire.close()


def pooled_then_reset(monkeypatch: pytest.MonkeyPatch, raw: RawServer, wire: Wire) -> None:
    """One call leaves a pooled connection, which the server then closes; the pool's
    liveness check is made to miss that close, as when it arrives just after the check."""
    assert wire.exchange("POST", f"{raw.url}/x", HEADERS, b"{}", TIMEOUTS) == (200, OK_BODY)
    (pooled,) = wire._idle
    assert wait_for_read(pooled.sock, timeout=CLOSE_ARRIVES_S), "the server's close never arrived"
    monkeypatch.setattr(transport, "wait_for_read", lambda sock, timeout: False)


def test_a_pooled_connection_the_server_closed_is_not_used() -> None:
    # The server answers as keep-alive, then closes: the close is seen before anything is sent.
    raw = RawServer(lambda head, body: (ok_answer(head, body)[0], True))
    wire = Wire(raw.url, pool_size=4)
    try:
        assert wire.exchange("POST", f"{raw.url}/x", HEADERS, b"{}", TIMEOUTS) == (200, OK_BODY)
        (pooled,) = wire._idle
        assert wait_for_read(pooled.sock, timeout=CLOSE_ARRIVES_S), "the server's close never arrived"
        assert wire.exchange("POST", f"{raw.url}/y", HEADERS, b"{}", TIMEOUTS) == (200, OK_BODY)
        assert raw.targets == [b"/x", b"/y"] and raw.accepted == 2
    finally:
        wire.close()
        raw.close()


def test_a_reused_connection_found_reset_by_the_first_send_is_replaced_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The server answers as keep-alive, then resets: the next send fails before any byte left.
    raw = RawServer(lambda head, body: (ok_answer(head, body)[0], True), reset=True)
    wire = Wire(raw.url, pool_size=4)
    try:
        pooled_then_reset(monkeypatch, raw, wire)
        assert wire.exchange("POST", f"{raw.url}/y", HEADERS, b"{}", TIMEOUTS) == (200, OK_BODY)
        assert raw.targets == [b"/x", b"/y"]  # the second request arrived once, on a second connection
        assert raw.accepted == 2
    finally:
        wire.close()
        raw.close()


def test_a_request_that_reached_the_server_is_never_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first answer keeps the connection; the server takes the second request and
    # closes without answering it. It may have acted on it: the failure is the caller's.
    answers = iter([ok_answer(b"", b""), (b"", True)])
    raw = RawServer(lambda head, body: next(answers, (b"", True)))
    wire = Wire(raw.url, pool_size=4)
    try:
        assert wire.exchange("POST", f"{raw.url}/x", HEADERS, b"{}", TIMEOUTS) == (200, OK_BODY)
        with pytest.raises(http.client.RemoteDisconnected):
            wire.exchange("POST", f"{raw.url}/y", HEADERS, b"{}", TIMEOUTS)
        assert raw.targets == [b"/x", b"/y"]
        assert raw.accepted == 1
    finally:
        wire.close()
        raw.close()


def test_a_url_for_another_origin_is_refused_unsent(server: RawServer) -> None:
    wire = Wire(server.url, pool_size=4)
    with pytest.raises(ValueError):
        wire.exchange("GET", "http://127.0.0.1:1/x", HEADERS, None, TIMEOUTS)
    assert server.accepted == 0 and wire.connections_opened() == 0
