"""The signed calls' wire: the request target is the signed string byte for byte, and
sequential calls share one pooled keep-alive connection per host.

A raw TCP server on loopback records each request line as received and counts the
connections it accepted; no HTTP library sits between the client and what it records.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.config import Settings
from gateway.errors import UpstreamNotReached, UpstreamTimeout
from gateway.upstream import constants as C
from gateway.upstream.client import UpstreamClient
from gateway.upstream.credentials import Credential
from gateway.upstream.transport import Wire, split_url

OK_BODY = b'{"base_resp":{"status_code":0,"status_msg":"success"},"data":{"ok":1}}'
#: axios leaves ``[``, ``]``, ``,`` and ``$`` raw; urllib3 would write ``%5B``/``%5D``.
AWKWARD_VALUE = "[a] b,c$d:e"
ACCEPT_TIMEOUT_S = 5.0


class RawServer:
    """Answers every request with ``OK_BODY`` on keep-alive connections; records targets."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(ACCEPT_TIMEOUT_S)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.targets: list[bytes] = []
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                head, _, rest = buffer.partition(b"\r\n\r\n")
                if not _:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    continue
                length = _content_length(head)
                if len(rest) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    continue
                self.targets.append(head.split(b"\r\n", 1)[0].split(b" ")[1])
                buffer = rest[length:]
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(OK_BODY), OK_BODY))

    def close(self) -> None:
        self.sock.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.fixture()
def server() -> Iterator[RawServer]:
    raw = RawServer()
    yield raw
    raw.close()


def client_for(url: str) -> UpstreamClient:
    settings = dataclasses.replace(Settings.from_env().upstream(), base_url=url)
    return UpstreamClient(settings)


def recording_signer(client: UpstreamClient) -> list[str]:
    """Wrap ``client.signed`` to keep every URL it signed."""
    signed: list[str] = []
    original = client.signed

    def signed_and_kept(*args: Any, **kwargs: Any) -> tuple[str, dict[str, str]]:
        url, headers = original(*args, **kwargs)
        signed.append(url)
        return url, headers

    client.signed = signed_and_kept  # type: ignore[method-assign]
    return signed


def test_the_target_on_the_wire_is_the_signed_string(server: RawServer) -> None:
    client = client_for(server.url)
    signed = recording_signer(client)
    cred = Credential(real_user_id="1", jwt="a.b.c")
    answer = client.call(cred, "POST", C.PATH_LIST, {"page_size": 1},
                         leading_query=[("filter", AWKWARD_VALUE)], prepare=False)
    assert answer == {"ok": 1}
    assert b"[a]+b,c$d:e" in server.targets[0]  # axios' form, not re-quoted
    assert server.targets == [split_url(signed[0])[1].encode()]
    client.close()


def test_sequential_calls_share_one_connection(server: RawServer) -> None:
    client = client_for(server.url)
    cred = Credential(real_user_id="1", jwt="a.b.c")
    for _ in range(20):
        client.call(cred, "POST", C.PATH_DETAIL, {"chat_id": 1}, prepare=False)
    assert len(server.targets) == 20
    assert server.accepted == 1
    assert client.wire.connections_opened() == 1
    client.close()


def test_a_connection_closed_by_the_server_is_replaced(server: RawServer) -> None:
    wire = Wire(pool_size=4)
    url = f"{server.url}/x?a=1"
    assert wire.exchange("GET", url, {}, None, (2.0, 2.0)) == (200, OK_BODY)
    wire.close()  # drops the pooled connection; the next call opens a fresh one
    assert wire.exchange("GET", url, {}, None, (2.0, 2.0)) == (200, OK_BODY)
    assert server.accepted == 2


@pytest.mark.parametrize(("url", "expected"), [
    ("http://h:1/p?q=[x]", ("http://h:1", "/p?q=[x]")),
    ("https://h", ("https://h", "/")),
])
def test_split_url_keeps_the_target_as_is(url: str, expected: tuple[str, str]) -> None:
    assert split_url(url) == expected


def test_a_silent_upstream_is_a_timeout_at_the_read_timeout() -> None:
    # Accepts the connection and never answers: the read timeout (not the connect one) ends it.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        client = client_for(f"http://127.0.0.1:{silent.getsockname()[1]}")
        client.settings = dataclasses.replace(client.settings, connect_timeout=5.0, read_timeout=0.3)
        with pytest.raises(UpstreamTimeout):
            client.call(Credential(real_user_id="1", jwt="a.b.c"), "POST", C.PATH_DETAIL, {"chat_id": 1},
                        prepare=False)
        client.close()


def test_a_refused_connection_is_not_reached() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    client = client_for(f"http://127.0.0.1:{port}")
    with pytest.raises(UpstreamNotReached):
        client.call(Credential(real_user_id="1", jwt="a.b.c"), "POST", C.PATH_DETAIL, {"chat_id": 1},
                    prepare=False)
    client.close()
