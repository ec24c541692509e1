"""HTTP/1.1 answers as the :class:`~gateway.upstream.transport.Wire` reads them.

The answer is read into bytes: ``Content-Length``, chunked, or to the close; the head
and the body bounded, numbers parsed as strict ASCII; gzip and deflate undone by
:func:`decoded`. An answer is refused wherever ``http.client`` refuses it, and where RFC
9112 calls the framing invalid while ``http.client`` lets it pass:

- whitespace before a field's colon, or any other head line that is not a field (§5.1;
  http.client's ``email`` parser drops it and every field after it);
- a bare CR or LF in the head (§2.2: http.client splits lines at LF, ``email`` at CR too);
- a ``Transfer-Encoding`` other than one ``chunked`` (§6.3 would read such a body to the
  close, but the wire undoes no other coding; http.client ignores the field);
- a ``Content-Length`` that is not one number, two equal fields included (§6.3;
  http.client ignores it and reads to the close);
- a chunk whose data does not end in CRLF (§7.1; http.client skips two bytes), and a
  chunk size with a sign or ``0x``.

``tests/upstream/test_wire_differential.py`` holds these verdicts to ``http.client``'s
on random answers.
"""

from __future__ import annotations

import http.client
import re
import socket
import zlib
from dataclasses import dataclass, field

#: An answer's head larger than this, or with more lines, is refused (http.client's limits).
MAX_HEAD_BYTES = 65_536
MAX_HEAD_LINES = 100
#: An answer's body larger than this, sent or decompressed, is refused (the upstream's
#: JSON answers are kilobytes; this bounds what a broken or hostile one can take).
MAX_BODY_BYTES = 32 * 1024 * 1024
RECV_BYTES = 65_536
#: Strict ASCII forms (``str.isdigit`` takes "²", and ``int`` refuses 4 300 digits).
_STATUS_LINE = re.compile(r"(HTTP/1\.[0-9]) ([1-9][0-9][0-9])(?: .*)?")
_LENGTH = re.compile(r"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
#: A field name as http.client's parser (the ``email`` package) takes one: visible ASCII
#: but the colon. Whitespace before the colon falls outside it (RFC 9112 §5.1).
_FIELD_NAME = re.compile(r"[!-9;-~]+")


@dataclass
class Connection:
    """One keep-alive connection and what has been read from it past the last answer."""

    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    generation: int = 0  # the pool's, when it was opened (close() starts a new one)
    idle_since: float = 0.0  # time.monotonic() when it was last handed back
    reused: bool = False  # it carried an earlier request

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # as sent, before its content encoding is undone
    reusable: bool  # the connection may carry the next request
    encoding: str = ""  # Content-Encoding, lower case


def read_answer(conn: Connection, method: str) -> Answer:
    """The next answer on ``conn`` (informational 1xx answers but 101 skipped)."""
    while True:
        version, status, fields = _read_head(conn)
        if not 100 <= status < 200 or status == 101:
            break
    body, to_close = _read_body(conn, method, status, fields)
    persistent = version != "HTTP/1.0" and "close" not in _joined(fields, "connection").lower()
    # Both framings at once is how request smuggling starts: read as chunked, then closed.
    ambiguous = "content-length" in fields and "transfer-encoding" in fields
    reusable = persistent and not to_close and not ambiguous and not conn.buffer
    return Answer(status, body, reusable, _joined(fields, "content-encoding").strip().lower())


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


def _read_head(conn: Connection) -> tuple[str, int, dict[str, list[str]]]:
    """Version, status and fields (by lower-case name, each value without leading OWS)."""
    end = _fill_until(conn, b"\r\n\r\n")
    raw = bytes(conn.buffer[:end])
    del conn.buffer[:end + 4]
    lines = raw.decode("latin-1").split("\r\n")
    if len(lines) > MAX_HEAD_LINES + 1:
        raise http.client.HTTPException("too many header lines")
    if any("\r" in line or "\n" in line for line in lines):  # http.client and email split lines differently
        raise http.client.HTTPException("a bare CR or LF in an answer's head")
    status = _STATUS_LINE.fullmatch(lines[0])
    if status is None:
        raise http.client.BadStatusLine(lines[0][:64])
    fields: dict[str, list[str]] = {}
    values: list[str] | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):  # obs-fold: one SP in its place (RFC 9112 §5.2)
            if values is None:
                raise http.client.HTTPException("an answer's head that starts with a continuation line")
            values[-1] += " " + line.lstrip(" \t")
            continue
        name, colon, value = line.partition(":")
        if not colon or not _FIELD_NAME.fullmatch(name):
            raise http.client.HTTPException("a line in an answer's head that is not a field")
        values = fields.setdefault(name.lower(), [])
        values.append(value.lstrip(" \t"))
    return status[1], int(status[2]), fields


def _read_body(conn: Connection, method: str, status: int, fields: dict[str, list[str]]) -> tuple[bytes, bool]:
    """The body, and whether the connection must close after it (read to its end)."""
    if method.upper() == "HEAD" or status in (204, 304) or status < 200:
        return b"", status == 101
    codings = fields.get("transfer-encoding")
    if codings is not None:
        # Exactly one "chunked", as http.client reads it; any other coding would leave
        # the body still coded (RFC 9112 §6.3 reads it to the close), so it is refused.
        if len(codings) != 1 or codings[0].lower() != "chunked":
            raise http.client.HTTPException("a Transfer-Encoding other than chunked")
        return _read_chunked(conn)
    lengths = fields.get("content-length")
    if lengths is not None:
        # Two fields (even equal ones), a list, a sign or a blank: not one number (§6.3).
        if len(lengths) != 1 or not _LENGTH.fullmatch(lengths[0].strip(" \t")):
            raise http.client.HTTPException("a Content-Length that is not one number")
        return _take(conn, int(lengths[0])), False
    while _recv(conn):  # no framing: the body ends when the server closes
        _bounded(len(conn.buffer))
    body = bytes(conn.buffer)
    conn.buffer.clear()
    return body, True


def _read_chunked(conn: Connection) -> tuple[bytes, bool]:
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
            return b"".join(parts), not _skip_trailers(conn)
        total += size
        _bounded(total)
        parts.append(_take(conn, size))
        if _take(conn, 2) != b"\r\n":
            raise http.client.HTTPException("a chunk that does not end where its size says")


def _skip_trailers(conn: Connection) -> bool:
    """Past the trailer section; False when the server closed within it (the answer is
    whole at its last chunk, RFC 9112 §8, as http.client takes it too)."""
    while True:
        end = _fill_until(conn, b"\r\n", at_close=True)
        if end < 0:
            conn.buffer.clear()
            return False
        del conn.buffer[:end + 2]
        if end == 0:
            return True


def _take(conn: Connection, size: int) -> bytes:
    _bounded(size)
    while len(conn.buffer) < size:
        if not _recv(conn):
            raise http.client.IncompleteRead(bytes(conn.buffer), size - len(conn.buffer))
    data = bytes(conn.buffer[:size])
    del conn.buffer[:size]
    return data


def _fill_until(conn: Connection, marker: bytes, at_close: bool = False) -> int:
    """Read until ``marker`` is in the buffer; its offset (-1 if the server closed first
    and ``at_close`` allows it)."""
    start = 0
    while True:
        found = conn.buffer.find(marker, start)
        if found >= 0:
            return found
        if len(conn.buffer) > MAX_HEAD_BYTES:
            raise http.client.HTTPException("an answer's head or chunk line is too long")
        start = max(0, len(conn.buffer) - len(marker) + 1)
        if not _recv(conn):
            if at_close:
                return -1
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



def _joined(fields: dict[str, list[str]], name: str) -> str:
    return ", ".join(fields.get(name, ()))


