"""The wire of the signed JSON calls: the request line exactly as signed, one pool per host.

``requests`` re-quotes a URL twice on its way out (``PreparedRequest.prepare_url`` and
urllib3's ``urlopen``), in a pure-Python loop over every byte of the ~700-character
signed URL, and a changed target breaks the ``yy`` signature (``[`` and ``]``, which axios
leaves raw, become ``%5B``/``%5D``). Beneath that, urllib3 and ``http.client`` write a
request in two sends (head, then body) after validating each header by regular
expression, and read an answer's head through the ``email`` package's parser: together
about 40 % of a worker's CPU per matrix poll.

:class:`Wire` is the small HTTP/1.1 client these calls need and nothing more: the signed
``path?query`` written as it is, the head and body in one ``send``, the answer read into
bytes (``Content-Length``, chunked, or to the close; gzip and deflate undone; the head
and the body bounded, numbers parsed as strict ASCII), keep-alive connections pooled per
origin (plain or TLS with certifi's CA bundle, as requests verifies). Streams, uploads
and downloads stay on ``requests``.

Failures: :class:`NotConnected` when no connection could be made (nothing was sent),
``TimeoutError`` when a send or a read outlived its timeout, ``http.client`` exceptions
for a broken answer, other ``OSError`` for a reset; the caller maps them at its one
boundary (:func:`gateway.upstream.client.transport_errors`).
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import certifi
from urllib3.util.wait import wait_for_read

#: Hosts kept with their pool at once (API host, stream host, object storage, spare).
MAX_HOSTS = 8
#: Headers ``requests`` would add; kept so the upstream sees the same request as before.
DEFAULT_HEADERS: Mapping[str, str] = {"Accept-Encoding": "gzip, deflate", "Accept": "*/*",
                                      "Connection": "keep-alive"}
#: Methods sent without ``Content-Length: 0`` when they have no body (as urllib3 does).
METHODS_WITHOUT_BODY = frozenset({"GET", "HEAD", "DELETE", "TRACE", "OPTIONS", "CONNECT"})
#: An answer's head larger than this, or with more lines, is refused (http.client's limits).
MAX_HEAD_BYTES = 65_536
MAX_HEAD_LINES = 100
#: An answer's body larger than this, sent or decompressed, is refused (the upstream's
#: JSON answers are kilobytes; this bounds what a broken or hostile one can take).
MAX_BODY_BYTES = 32 * 1024 * 1024
RECV_BYTES = 65_536
#: What http.client refuses in a request target: controls, space and DEL.
_BAD_TARGET = re.compile("[\x00-\x20\x7f]")
#: Strict ASCII forms (``str.isdigit`` takes "²", and ``int`` refuses 4 300 digits).
_STATUS_LINE = re.compile(r"(HTTP/1\.[01]) ([1-5][0-9][0-9])(?: .*)?")
_LENGTH = re.compile(r"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
DEFAULT_PORTS = {"http": 80, "https": 443}


class NotConnected(OSError):
    """No connection to the upstream could be made: nothing of the request was sent."""


@dataclass(frozen=True)
class Origin:
    """``scheme://host[:port]`` of a pool, and the ``Host`` header it sends."""

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


@dataclass
class Connection:
    """One keep-alive connection and what has been read from it past the last answer."""

    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # as sent, before its content encoding is undone
    reusable: bool  # the connection may carry the next request
    encoding: str = ""  # Content-Encoding, lower case


class Wire:
    """Verbatim requests over keep-alive connections, one pool per upstream origin.

    Up to ``pool_size`` idle connections per origin are kept for reuse; under gevent
    more greenlets may call at once, and each extra one opens a connection that is
    closed afterwards, so no call ever waits for a connection.
    """

    def __init__(self, pool_size: int) -> None:
        self._pool_size = pool_size
        self._idle: dict[str, list[Connection]] = {}
        self._origins: dict[str, Origin] = {}
        self._lock = threading.Lock()
        self._opened = 0
        self._tls: ssl.SSLContext | None = None

    def exchange(self, method: str, url: str, headers: Mapping[str, str | None], body: bytes | None,
                 timeouts: tuple[float, float]) -> tuple[int, bytes]:
        """Send one request whose target is ``url``'s path and query byte for byte."""
        key, target = split_url(url)
        origin = self._origin(key)
        request = encode_request(method, target, origin.host_header, _headers(headers), body)
        conn = self._checkout(key, origin, timeouts[0])
        answer: Answer | None = None
        try:
            conn.sock.settimeout(timeouts[0])  # connect and send timeout
            conn.sock.sendall(request)
            conn.sock.settimeout(timeouts[1])  # from here on, the read timeout
            answer = read_answer(conn, method)
        finally:
            # A half-read, failed or closing connection is never reused.
            self._checkin(key, conn, answer is not None and answer.reusable)
        return answer.status, decoded(answer.body, answer.encoding)

    def connections_opened(self) -> int:
        """Connections created so far over all hosts (for tests of the pooling)."""
        return self._opened

    def close(self) -> None:
        with self._lock:
            idle, self._idle = [c for conns in self._idle.values() for c in conns], {}
            self._origins = {}  # a connection handed back after this is closed, not pooled
        for conn in idle:
            conn.close()

    def _origin(self, origin: str) -> Origin:
        found = self._origins.get(origin)
        if found is None:
            found = Origin.parse(origin)
            with self._lock:
                if len(self._origins) >= MAX_HOSTS:  # a host seen once (a download) must not pin sockets
                    self._forget(next(iter(self._origins)))
                self._origins[origin] = found
        return found

    def _forget(self, origin: str) -> None:
        self._origins.pop(origin, None)
        for conn in self._idle.pop(origin, []):
            conn.close()

    def _checkout(self, key: str, origin: Origin, connect_timeout: float) -> Connection:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                return self._connect(origin, connect_timeout)
            if not wait_for_read(conn.sock, timeout=0.0):
                return conn  # idle and silent: still open
            conn.close()  # the server closed it (or spoke out of turn) while it was idle

    def _checkin(self, origin: str, conn: Connection, reusable: bool) -> None:
        if reusable:
            with self._lock:
                idle = self._idle.get(origin)
                if origin in self._origins and (idle is None or len(idle) < self._pool_size):
                    self._idle.setdefault(origin, []).append(conn)
                    return
        conn.close()

    def _connect(self, origin: Origin, timeout: float) -> Connection:
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
        return Connection(sock)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            # The same CA bundle as requests (certifi), not whatever the system happens to have.
            context = ssl.create_default_context(cafile=certifi.where())
            context.set_alpn_protocols(["http/1.1"])
            self._tls = context
        return self._tls


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


def read_answer(conn: Connection, method: str) -> Answer:
    """The next answer on ``conn`` (informational 1xx answers skipped)."""
    while True:
        version, status, headers = _read_head(conn)
        if not 100 <= status < 200 or status == 101:
            break
    body, to_close = _read_body(conn, method, status, headers)
    persistent = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    # Both framings at once is how request smuggling starts: read as chunked, then closed.
    ambiguous = "content-length" in headers and "transfer-encoding" in headers
    reusable = persistent and not to_close and not ambiguous and not conn.buffer
    return Answer(status, body, reusable, headers.get("content-encoding", "").strip().lower())


def decoded(body: bytes, encoding: str) -> bytes:
    """``body`` with its ``Content-Encoding`` (gzip or deflate) undone."""
    if encoding in ("", "identity") or not body:
        return body
    try:
        if encoding in ("gzip", "x-gzip"):
            return _inflate(body, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return _inflate(body, zlib.MAX_WBITS)
            except zlib.error:  # some servers send deflate without its zlib wrapper
                return _inflate(body, -zlib.MAX_WBITS)
    except zlib.error:
        raise http.client.IncompleteRead(body[:0]) from None
    return body  # an encoding we did not ask for: passed on, and its JSON will not parse


def _inflate(body: bytes, wbits: int) -> bytes:
    """Decompressed ``body``, every gzip member of it, at most :data:`MAX_BODY_BYTES`."""
    out: list[bytes] = []
    size = 0
    while body:
        inflater = zlib.decompressobj(wbits)
        out.append(inflater.decompress(body, MAX_BODY_BYTES + 1 - size))
        size += len(out[-1])
        if size > MAX_BODY_BYTES or inflater.unconsumed_tail:
            raise http.client.HTTPException("an answer that inflates past the size limit")
        if not inflater.eof:
            raise zlib.error("a truncated compressed body")
        body = inflater.unused_data if wbits > zlib.MAX_WBITS else b""  # gzip: the next member
    return b"".join(out)


def _read_head(conn: Connection) -> tuple[str, int, dict[str, str]]:
    end = _fill_until(conn, b"\r\n\r\n")
    raw = bytes(conn.buffer[:end])
    del conn.buffer[:end + 4]
    lines = raw.decode("latin-1").split("\r\n")
    if len(lines) > MAX_HEAD_LINES + 1:
        raise http.client.HTTPException("too many header lines")
    status = _STATUS_LINE.fullmatch(lines[0])
    if status is None:
        raise http.client.BadStatusLine(lines[0][:64])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise http.client.HTTPException("a header line without a colon")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return status[1], int(status[2]), headers


def _read_body(conn: Connection, method: str, status: int, headers: dict[str, str]) -> tuple[bytes, bool]:
    """The body, and whether the connection must close after it (read to its end)."""
    if method.upper() == "HEAD" or status in (204, 304):
        return b"", False
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _read_chunked(conn), False
    length = headers.get("content-length")
    if length is not None:
        if not _LENGTH.fullmatch(length.strip()):  # also refuses "5, 5" (two differing lengths or one twice)
            raise http.client.HTTPException("a Content-Length that is not one number")
        return _take(conn, int(length)), False
    while _recv(conn):  # no framing: the body ends when the server closes
        _bounded(len(conn.buffer))
    body = bytes(conn.buffer)
    conn.buffer.clear()
    return body, True


def _read_chunked(conn: Connection) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        end = _fill_until(conn, b"\r\n")
        size_text = bytes(conn.buffer[:end]).split(b";", 1)[0].strip()
        del conn.buffer[:end + 2]
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise http.client.HTTPException("a bad chunk size")
        size = int(size_text, 16)
        if size == 0:
            while _fill_until(conn, b"\r\n") > 0:  # trailers, up to the blank line
                del conn.buffer[:conn.buffer.find(b"\r\n") + 2]
            del conn.buffer[:2]
            return b"".join(parts)
        total += size
        _bounded(total)
        parts.append(_take(conn, size))
        if _take(conn, 2) != b"\r\n":
            raise http.client.HTTPException("a chunk that does not end where its size says")


def _take(conn: Connection, size: int) -> bytes:
    _bounded(size)
    while len(conn.buffer) < size:
        if not _recv(conn):
            raise http.client.IncompleteRead(bytes(conn.buffer), size - len(conn.buffer))
    data = bytes(conn.buffer[:size])
    del conn.buffer[:size]
    return data


def _fill_until(conn: Connection, marker: bytes) -> int:
    """Read until ``marker`` is in the buffer; its offset."""
    start = 0
    while True:
        found = conn.buffer.find(marker, start)
        if found >= 0:
            return found
        if len(conn.buffer) > MAX_HEAD_BYTES:
            raise http.client.HTTPException("an answer's head or chunk line is too long")
        start = max(0, len(conn.buffer) - len(marker) + 1)
        if not _recv(conn):
            if conn.buffer:
                raise http.client.IncompleteRead(bytes(conn.buffer))
            raise http.client.RemoteDisconnected("the upstream closed the connection without an answer")


def _recv(conn: Connection) -> bool:
    """Read what has arrived into the buffer; False at the end of the stream."""
    chunk = conn.sock.recv(RECV_BYTES)
    conn.buffer += chunk
    return bool(chunk)


def _bounded(size: int) -> None:
    if size > MAX_BODY_BYTES:
        raise http.client.HTTPException("an answer over the size limit")


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
