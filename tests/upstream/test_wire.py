"""The signed calls' wire: the request target is the signed string byte for byte, and
sequential calls share one pooled keep-alive connection per host.

A raw TCP server on loopback records each request line as received and counts the
connections it accepted; no HTTP library sits between the client and what it records.
"""

from __future__ import annotations

import dataclasses
import gzip
import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
from urllib3.connection import HTTPConnection

from gateway.config import Settings
from gateway.errors import UpstreamNotReached, UpstreamTimeout, UpstreamUnavailable
from gateway.upstream import constants as C
from gateway.upstream.client import UpstreamClient
from gateway.upstream.credentials import Credential
from gateway.upstream.transport import NotConnected, Wire, split_url

OK_BODY = b'{"base_resp":{"status_code":0,"status_msg":"success"},"data":{"ok":1}}'
#: axios leaves ``[``, ``]``, ``,`` and ``$`` raw; urllib3 would write ``%5B``/``%5D``.
AWKWARD_VALUE = "[a] b,c$d:e"
ACCEPT_TIMEOUT_S = 5.0


def ok_answer(head: bytes, body: bytes) -> tuple[bytes, bool]:
    """``OK_BODY`` with a Content-Length, the connection kept open."""
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(OK_BODY), OK_BODY)), False


Reply = Callable[[bytes, bytes], tuple[bytes, bool]]  # (head, body) -> (bytes sent, close after)


class RawServer:
    """Answers every request with ``reply`` (by default ``OK_BODY`` on keep-alive
    connections); records each request as received."""

    def __init__(self, reply: Reply = ok_answer, tls: ssl.SSLContext | None = None, reset: bool = False) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(ACCEPT_TIMEOUT_S)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.sock.getsockname()[1]}"
        self.reply = reply
        self.tls = tls
        self.reset = reset  # close with a TCP reset (SO_LINGER 0) instead of a FIN
        self.targets: list[bytes] = []
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body) as received
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
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):  # the client refused our certificate
                conn.close()
                return
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
                self.requests.append((head, rest[:length]))
                buffer = rest[length:]
                answer, close = self.reply(head, rest[:length])
                conn.sendall(answer)
                if close:
                    if self.reset:
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return

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
    wire = Wire(server.url, pool_size=4)
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


# -- framing, answers and TLS of the Wire's own HTTP/1.1 ---------------------------------
HEADERS = {"Content-Type": "application/json", "Accept": "*/*", "Accept-Encoding": "gzip, deflate",
           "Connection": "keep-alive", "User-Agent": C.USER_AGENT}  # the Wire's defaults and a UA, as every call


def counting_sends(monkeypatch: pytest.MonkeyPatch, port: int) -> list[int]:
    """The size of every ``send`` and ``sendall`` of this process to ``port`` (the
    server's own answers go the other way)."""
    sizes: list[int] = []
    original_send, original_sendall = socket.socket.send, socket.socket.sendall

    def send(self: socket.socket, data: Any, *args: Any) -> int:
        if self.getpeername()[1] == port:
            sizes.append(len(data))
        return original_send(self, data, *args)

    def sendall(self: socket.socket, data: Any, *args: Any) -> None:
        if self.getpeername()[1] == port:
            sizes.append(len(data))
        original_sendall(self, data, *args)

    monkeypatch.setattr(socket.socket, "send", send)
    monkeypatch.setattr(socket.socket, "sendall", sendall)
    return sizes


@pytest.mark.parametrize(("method", "body"), [("POST", b'{"chat_id":1}'), ("POST", None), ("GET", None)])
def test_a_request_is_one_send_framed_as_urllib3_frames_it(server: RawServer, monkeypatch: pytest.MonkeyPatch,
                                                          method: str, body: bytes | None) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    reference = HTTPConnection("127.0.0.1", port, timeout=2.0)
    reference.request(method, "/x?a=[1]", body=body, headers=HEADERS)
    reference.getresponse().read()
    reference.close()
    sizes = counting_sends(monkeypatch, port)
    wire = Wire(server.url, pool_size=4)
    assert wire.exchange(method, f"{server.url}/x?a=[1]", HEADERS, body, (2.0, 2.0)) == (200, OK_BODY)
    wire.close()
    (theirs_head, theirs_body), (ours_head, ours_body) = server.requests
    assert ours_head.split(b"\r\n")[0] == theirs_head.split(b"\r\n")[0]
    assert sorted(ours_head.split(b"\r\n")[1:]) == sorted(theirs_head.split(b"\r\n")[1:])
    assert ours_body == theirs_body
    assert sizes == [len(ours_head) + 4 + len(ours_body)]  # head, blank line and body in one send


def chunked(head: bytes, body: bytes) -> tuple[bytes, bool]:
    parts = [OK_BODY[:10], OK_BODY[10:]]
    framed = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\nX-Trailer: t\r\n\r\n", False


def gzipped(head: bytes, body: bytes) -> tuple[bytes, bool]:
    packed = gzip.compress(OK_BODY)
    return b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (
        len(packed), packed), False


def closing(head: bytes, body: bytes) -> tuple[bytes, bool]:
    return b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (
        len(OK_BODY), OK_BODY), True


def unframed(head: bytes, body: bytes) -> tuple[bytes, bool]:
    return b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + OK_BODY, True


def continued(head: bytes, body: bytes) -> tuple[bytes, bool]:
    return b"HTTP/1.1 100 Continue\r\n\r\n" + ok_answer(head, body)[0], False


@pytest.mark.parametrize(("reply", "connections"), [
    (chunked, 1), (gzipped, 1), (continued, 1),
    (closing, 3), (unframed, 3),  # the server closes after each answer: a connection per call
], ids=["chunked", "gzip", "100-continue", "connection-close", "read-to-close"])
def test_answers_in_every_framing_read_whole(reply: Reply, connections: int) -> None:
    raw = RawServer(reply)
    wire = Wire(raw.url, pool_size=4)
    try:
        for _ in range(3):
            assert wire.exchange("POST", f"{raw.url}/x", HEADERS, b"{}", (2.0, 2.0)) == (200, OK_BODY)
        assert raw.accepted == connections
    finally:
        wire.close()
        raw.close()


def cut_short(head: bytes, body: bytes) -> tuple[bytes, bool]:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + OK_BODY, True


def garbage(head: bytes, body: bytes) -> tuple[bytes, bool]:
    return b"SSH-2.0-OpenSSH\r\n\r\n", True


def silent_close(head: bytes, body: bytes) -> tuple[bytes, bool]:
    return b"", True


def answer_with(head: bytes, body: bytes = OK_BODY) -> Reply:
    return lambda _head, _body: (b"HTTP/1.1 200 OK\r\n" + head + b"\r\n" + body, True)


#: 50 KB of gzip that inflates to 40 MB, past http1.MAX_BODY_BYTES.
BOMB = gzip.compress(b"\0" * (40 * 1024 * 1024))


@pytest.mark.parametrize("reply", [
    cut_short, garbage, silent_close,
    answer_with(b"Content-Length: \xb2\r\n"),  # "²".isdigit() is True; int() refuses it
    answer_with(b"Content-Length: " + b"9" * 5000 + b"\r\n"),  # past int()'s 4 300 digits
    answer_with(b"Content-Length: 5, 6\r\n"),
    answer_with(b"Transfer-Encoding: chunked\r\n", b"2\r\nabXY0\r\n\r\n"),  # a chunk longer than its size
    answer_with(b"Transfer-Encoding: chunked\r\n", b"-3\r\nabc\r\n0\r\n\r\n"),
    answer_with(b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(BOMB), BOMB),
    lambda head, body: (b"HTTP/1.1 2\xb20 OK\r\nContent-Length: 0\r\n\r\n", True),
    answer_with(b"Content-Length : %d\r\n" % len(OK_BODY)),  # RFC 9112 §5.1
    answer_with(b" X-Folded: 1\r\n"),  # a continuation of nothing
    answer_with(b"X-\xe9: 1\r\n"),  # a field name outside visible ASCII
    answer_with(b"X-A: 1\rContent-Length: 2\r\n"),  # the email parser would see a second field
    answer_with(b"Transfer-Encoding: gzip\r\n"),
    answer_with(b"Transfer-Encoding: gzip, chunked\r\n", b"%x\r\n%s\r\n0\r\n\r\n" % (len(OK_BODY), OK_BODY)),
], ids=["cut-short", "not-http", "no-answer", "superscript-length", "huge-length", "two-lengths", "chunk-overrun",
        "negative-chunk", "gzip-bomb", "superscript-status", "space-before-colon", "continuation-first",
        "non-ascii-name", "bare-cr", "te-gzip", "te-gzip-chunked"])
def test_a_broken_answer_is_unavailable_never_a_crash(reply: Reply) -> None:
    raw = RawServer(reply)
    client = client_for(raw.url)
    try:
        with pytest.raises(UpstreamUnavailable):
            client.call(Credential(real_user_id="1", jwt="a.b.c"), "POST", C.PATH_DETAIL, {"chat_id": 1},
                        prepare=False)
    finally:
        client.close()
        raw.close()


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\0b", "secret\u2019"],
                         ids=["crlf", "lf", "nul", "not-latin-1"])
def test_a_header_that_would_split_the_request_is_refused_unsent(server: RawServer, value: str) -> None:
    wire = Wire(server.url, pool_size=4)
    with pytest.raises(ValueError) as info:
        wire.exchange("POST", f"{server.url}/x", {"X-Value": value}, b"{}", (2.0, 2.0))
    assert "secret" not in repr(info.value)
    assert info.value.__context__ is None or info.value.__suppress_context__  # no head in a traceback
    with pytest.raises(ValueError):
        wire.exchange("POST", f"{server.url}/x?a=b c", {}, b"{}", (2.0, 2.0))
    assert server.accepted == 0


def self_signed(folder: Path, name: str, alt_name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (openssl, as on any Debian machine)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName={alt_name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, the test servers' address."""
    return self_signed(tmp_path_factory.mktemp("tls"), "127.0.0.1", "IP:127.0.0.1")


@pytest.fixture(scope="module")
def foreign_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for another name than the servers' address."""
    return self_signed(tmp_path_factory.mktemp("tls-foreign"), "upstream.example", "DNS:upstream.example")


def tls_server(certificate: tuple[Path, Path]) -> RawServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return RawServer(tls=context)


def test_tls_is_verified_against_the_ca_bundle(certificate: tuple[Path, Path]) -> None:
    raw = tls_server(certificate)
    client = client_for(raw.url)
    try:
        with pytest.raises(UpstreamNotReached):  # self-signed: refused in the handshake, nothing sent
            client.call(Credential(real_user_id="1", jwt="a.b.c"), "POST", C.PATH_DETAIL, {"chat_id": 1},
                        prepare=False)
        assert raw.requests == []
    finally:
        client.close()
        raw.close()


def test_tls_carries_keep_alive_calls_once_trusted(certificate: tuple[Path, Path]) -> None:
    raw = tls_server(certificate)
    wire = Wire(raw.url, pool_size=4)
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    wire._tls = trusted  # the test's CA instead of certifi's
    try:
        for _ in range(3):
            assert wire.exchange("POST", f"{raw.url}/x?a=[1]", HEADERS, b"{}", (2.0, 2.0)) == (200, OK_BODY)
        assert raw.accepted == 1 and raw.targets == [b"/x?a=[1]"] * 3
    finally:
        wire.close()
        raw.close()


def test_a_certificate_for_another_name_is_refused(foreign_certificate: tuple[Path, Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Its issuer trusted (the Wire's own context, with the test's CA bundle): only the name is wrong.
    monkeypatch.setattr(certifi, "where", lambda: str(foreign_certificate[0]))
    raw = tls_server(foreign_certificate)
    wire = Wire(raw.url, pool_size=4)
    try:
        with pytest.raises(NotConnected, match="SSLCertVerificationError"):
            wire.exchange("POST", f"{raw.url}/x", HEADERS, b"{}", (2.0, 2.0))
        assert raw.requests == [] and wire.connections_opened() == 0
    finally:
        wire.close()
        raw.close()


def both_framings(head: bytes, body: bytes) -> tuple[bytes, bool]:
    return (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(OK_BODY), OK_BODY)), False


def two_gzip_members(head: bytes, body: bytes) -> tuple[bytes, bool]:
    packed = gzip.compress(OK_BODY[:10]) + gzip.compress(OK_BODY[10:])
    return b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (
        len(packed), packed), False


def test_an_answer_with_both_framings_is_read_chunked_and_its_connection_closed() -> None:
    raw = RawServer(both_framings)
    wire = Wire(raw.url, pool_size=4)
    try:
        for _ in range(2):
            assert wire.exchange("POST", f"{raw.url}/x", HEADERS, b"{}", (2.0, 2.0)) == (200, OK_BODY)
        assert raw.accepted == 2
    finally:
        wire.close()
        raw.close()


def test_every_gzip_member_is_inflated() -> None:
    raw = RawServer(two_gzip_members)
    wire = Wire(raw.url, pool_size=4)
    try:
        assert wire.exchange("POST", f"{raw.url}/x", HEADERS, b"{}", (2.0, 2.0)) == (200, OK_BODY)
    finally:
        wire.close()
        raw.close()
