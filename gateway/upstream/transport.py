"""The wire of the signed JSON calls: the request line exactly as signed, one pooled origin.

``requests`` re-quotes a URL twice on its way out (``PreparedRequest.prepare_url`` and
urllib3's ``urlopen``), in a pure-Python loop over every byte of the ~700-character
signed URL, and a changed target breaks the ``yy`` signature (``[`` and ``]``, which axios
leaves raw, become ``%5B``/``%5D``). Beneath that, urllib3 and ``http.client`` write a
request in two sends (head, then body) after validating each header by regular
expression, and read an answer's head through the ``email`` package's parser: together
about 40 % of a worker's CPU per matrix poll.

:class:`Wire` is the small HTTP/1.1 client these calls need and nothing more: the signed
``path?query`` written as it is, the head and body in one ``send``, the answer read by
:mod:`gateway.upstream.http1` (which also says what it refuses), keep-alive connections
to the API host pooled and retired before the upstream's idle timeout (plain or TLS
with certifi's CA bundle and the host name checked, as requests verifies). Streams,
uploads and downloads stay on ``requests``.

Failures: :class:`NotConnected` when nothing of the request was sent (no connection
could be made, or a fresh one was closed before its first byte), ``TimeoutError`` when
a send or a read outlived its timeout, ``http.client`` exceptions for a broken answer,
other ``OSError`` for a reset; the caller maps them at its one boundary
(:func:`gateway.upstream.boundary.transport_errors`).
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import certifi
from urllib3.util.wait import wait_for_read

from gateway.upstream.http1 import Answer, Connection, decoded, read_answer

#: [assumed] Seconds an idle connection is kept for reuse. The upstream's idle timeout is
#: unknown; the lowest common server default is Node.js's 5 s (nginx 75 s, AWS ALB 60 s,
#: Alibaba SLB 15 s), and a connection reused as the server closes it can lose a request.
KEEP_ALIVE_EXPIRY_S = 4.0
#: Headers ``requests`` would add; kept so the upstream sees the same request as before.
DEFAULT_HEADERS: Mapping[str, str] = {"Accept-Encoding": "gzip, deflate", "Accept": "*/*",
                                      "Connection": "keep-alive"}
#: Methods sent without ``Content-Length: 0`` when they have no body (as urllib3 does).
METHODS_WITHOUT_BODY = frozenset({"GET", "HEAD", "DELETE", "TRACE", "OPTIONS", "CONNECT"})
#: The most plaintext one TLS record carries: a TLS send of at most this much either
#: completes its record or leaves the server nothing it can decrypt.
TLS_RECORD_BYTES = 16_384
#: What http.client refuses in a request target: controls, space and DEL.
_BAD_TARGET = re.compile("[\x00-\x20\x7f]")
#: Errors of a send on a connection the server has closed (reset, or TLS closed).
_CLOSED = (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)
DEFAULT_PORTS = {"http": 80, "https": 443}


class NotConnected(OSError):
    """Nothing of the request was sent: no connection could be made, or it was closed
    before the request's first byte left."""


class NothingSent(NotConnected):
    """The connection was found closed by the first send of a request: not one byte of
    it reached the server (a reused one is replaced once, see :meth:`Wire._sent`)."""


@dataclass(frozen=True)
class Origin:
    """``scheme://host[:port]`` of the pool, and the ``Host`` header it sends."""

    scheme: str
    host: str
    port: int
    host_header: str

    @classmethod
    def parse(cls, origin: str) -> Origin:
        scheme, _, netloc = origin.partition("://")
        if scheme not in DEFAULT_PORTS or not netloc or "@" in netloc:
            raise ValueError("not an http(s) origin")
        host, port = _host_port(netloc, DEFAULT_PORTS[scheme])
        # As urllib3 writes it: the port only when it is not the scheme's default.
        shown = netloc.removesuffix(f":{port}") if port == DEFAULT_PORTS[scheme] else netloc
        return cls(scheme, host, port, shown)


class Wire:
    """Verbatim requests to one origin (the API host) over keep-alive connections.

    Up to ``pool_size`` idle connections are kept for reuse, each at most
    ``keep_alive_expiry`` seconds; under gevent more greenlets may call at once, and
    each extra one opens a connection that is closed afterwards, so no call ever waits
    for a connection.
    """

    def __init__(self, origin: str, pool_size: int, keep_alive_expiry: float = KEEP_ALIVE_EXPIRY_S) -> None:
        self._key = split_url(origin)[0]
        self.origin = Origin.parse(self._key)
        self._pool_size = pool_size
        self._expiry = keep_alive_expiry
        self._idle: list[Connection] = []  # oldest first
        self._lock = threading.Lock()
        self._generation = 0
        self._opened = 0
        self._tls: ssl.SSLContext | None = None

    def exchange(self, method: str, url: str, headers: Mapping[str, str | None], body: bytes | None,
                 timeouts: tuple[float, float]) -> tuple[int, bytes]:
        """Send one request whose target is ``url``'s path and query byte for byte."""
        key, target = split_url(url)
        if key != self._key:
            raise ValueError("a URL outside the wire's origin")
        request = encode_request(method, target, self.origin.host_header, _headers(headers), body)
        conn = self._sent(request, timeouts[0])
        answer: Answer | None = None
        try:
            conn.sock.settimeout(timeouts[1])  # from here on, the read timeout
            answer = read_answer(conn, method)
        finally:
            # A half-read, failed or closing connection is never reused.
            self._checkin(conn, answer is not None and answer.reusable)
        return answer.status, decoded(answer.body, answer.encoding)

    def connections_opened(self) -> int:
        """Connections created so far (for tests of the pooling)."""
        return self._opened

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._generation += 1  # a connection handed back after this is closed, not pooled
        for conn in idle:
            conn.close()

    def _sent(self, request: bytes, timeout: float) -> Connection:
        """The connection ``request`` went out on.

        A pooled connection the server closed between its check and our first byte
        (the race of a keep-alive close) is replaced once by a fresh one: the failed
        send proved that nothing reached the server. Once any byte has left, a failure
        is the caller's, never sent again here.
        """
        conn = self._checkout(timeout)
        try:
            try:
                send(conn, request, timeout)
            except NothingSent:
                if not conn.reused:
                    raise
                conn.close()
                conn = self._connect(timeout)
                send(conn, request, timeout)
        except BaseException:
            conn.close()
            raise
        return conn

    def _checkout(self, connect_timeout: float) -> Connection:
        while True:
            now = time.monotonic()
            with self._lock:
                fresh = [c for c in self._idle if now - c.idle_since < self._expiry]
                expired = [c for c in self._idle if now - c.idle_since >= self._expiry]
                self._idle = fresh
                conn = fresh.pop() if fresh else None
            for old in expired:
                old.close()  # idle past the expiry: the server may be closing it right now
            if conn is None:
                return self._connect(connect_timeout)
            if not wait_for_read(conn.sock, timeout=0.0):
                conn.reused = True
                return conn  # idle and silent: still open
            conn.close()  # the server closed it (or spoke out of turn) while it was idle

    def _checkin(self, conn: Connection, reusable: bool) -> None:
        if reusable:
            with self._lock:
                if conn.generation == self._generation and len(self._idle) < self._pool_size:
                    conn.idle_since = time.monotonic()
                    self._idle.append(conn)
                    return
        conn.close()

    def _connect(self, timeout: float) -> Connection:
        origin = self.origin
        try:
            sock = socket.create_connection((origin.host, origin.port), timeout=timeout)
        except OSError as exc:  # refused, unresolvable, unroutable or timed out: nothing sent
            raise NotConnected(f"connect failed ({type(exc).__name__})") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if origin.scheme == "https":
            try:
                sock = self._tls_context().wrap_socket(sock, server_hostname=origin.host)
            except OSError as exc:  # the handshake failed: no request byte was sent either
                sock.close()
                raise NotConnected(f"TLS handshake failed ({type(exc).__name__})") from None
        with self._lock:
            self._opened += 1
            return Connection(sock, generation=self._generation)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            # The same CA bundle as requests (certifi), not whatever the system happens to
            # have; create_default_context checks the certificate's host name too.
            context = ssl.create_default_context(cafile=certifi.where())
            context.set_alpn_protocols(["http/1.1"])
            self._tls = context
        return self._tls


def send(conn: Connection, request: bytes, timeout: float) -> None:
    """Write ``request``; :class:`NothingSent` when the connection was found closed
    before any of it was taken (each ``send`` call either takes bytes or fails)."""
    conn.sock.settimeout(timeout)  # connect and send timeout
    # A TLS send takes one record at a time, so a failed first one leaves nothing readable.
    piece = TLS_RECORD_BYTES if isinstance(conn.sock, ssl.SSLSocket) else len(request)
    view = memoryview(request)
    sent = 0
    while sent < len(request):
        try:
            sent += conn.sock.send(view[sent:sent + piece])
        except _CLOSED as exc:
            if sent:
                raise
            raise NothingSent(f"the connection was closed before the request ({type(exc).__name__})") from None


def split_url(url: str) -> tuple[str, str]:
    """``(scheme://host[:port], /path?query)`` by plain string splitting (no re-encoding)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("not an absolute URL")
    slash = rest.find("/")
    if slash < 0:
        return url, "/"
    return f"{scheme}://{rest[:slash]}", rest[slash:]


def encode_request(method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None) -> bytes:
    """The request's bytes, head and body: the framing urllib3 writes (``Host``,
    ``Content-Length``; every call names its own ``User-Agent``), and no CR, LF or NUL
    anywhere a line could be split (``http.client`` refuses those too)."""
    names = {name.lower() for name in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {host}")
    if body is not None or method.upper() not in METHODS_WITHOUT_BODY:
        lines.append(f"Content-Length: {len(body or b'')}")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    head = "\r\n".join(lines)
    breaks = len(lines) - 1
    if head.count("\n") != breaks or head.count("\r") != breaks or "\0" in head or _BAD_TARGET.search(target):
        raise ValueError("a request line or header carries a control character")
    try:
        return head.encode("latin-1") + b"\r\n\r\n" + (body or b"")
    except UnicodeEncodeError:  # its repr would hold the whole head, token included
        raise ValueError("a header carries a character HTTP cannot send") from None


def _host_port(netloc: str, default: int) -> tuple[str, int]:
    if netloc.startswith("["):  # [v6]:port
        host, _, rest = netloc[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default
    host, colon, port = netloc.rpartition(":")
    if colon and port.isdigit():
        return host, int(port)
    return netloc, default


def _headers(headers: Mapping[str, str | None]) -> dict[str, str]:
    # None drops a default, as in requests (session calls send no Accept).
    merged: dict[str, str | None] = {**DEFAULT_HEADERS}
    lowered = {name.lower(): name for name in merged}
    for name, value in headers.items():
        merged.pop(lowered.get(name.lower(), name), None)
        merged[name] = value
    return {name: value for name, value in merged.items() if value is not None}
