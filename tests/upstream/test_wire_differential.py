"""The wire's answer reader against ``http.client``: the same random raw answers, the same verdict.

Each drawn answer (status line spellings, an interim 100, field spellings with whitespace
before a colon, folds and bare CRs, duplicate ``Content-Length``, ``Transfer-Encoding``
variants, chunk framing, a cut at any byte) is read by :func:`read_answer` from a socket
that hands out a random number of bytes per ``recv``, and by ``http.client.HTTPResponse``.
Both accept with the same status and body, or both refuse.

``http.client`` lets some framing pass that RFC 9112 calls invalid, and the wire refuses
it (``gateway/upstream/http1.py`` lists them); there the reference verdict is a refusal:

- a head the ``email`` parser could not read whole (urllib3's ``assert_header_parsing``,
  the check requests' own stack makes and only logs);
- a ``Content-Length`` that is not one number, or a ``Transfer-Encoding`` that is not one
  ``chunked``, when a body is read;
- the lexical faults the draw itself records (:data:`STRICT`).

The draw is derandomized (600 examples): the same ones on every run.
"""

from __future__ import annotations

import http.client
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from urllib3.exceptions import HeaderParsingError
from urllib3.util.response import assert_header_parsing

from gateway.upstream.http1 import Connection, read_answer

#: Lexical faults the wire refuses and http.client may take, recorded by the draw.
STRICT = {
    "status": "a status line http.client parses leniently (RFC 9112 §4: one SP, three digits, HTTP/1.x)",
    "bare": "a bare CR or LF (RFC 9112 §2.2)",
    "head-cut": "a head cut short before its blank line",
    "chunk-size": "a chunk size with a sign or 0x (RFC 9112 §7.1: 1*HEXDIG)",
    "chunk-end": "chunk data not ended by CRLF (RFC 9112 §7.1)",
    "last-chunk-cut": "a last chunk line cut short before its CRLF",
}
_DIGITS = re.compile(r"[0-9]+")


@dataclass
class RawAnswer:
    """Raw answer bytes in parts, and the lexical faults (``STRICT`` keys) they hold."""

    parts: list[tuple[str, bytes]] = field(default_factory=list)  # (region, bytes)
    faults: set[str] = field(default_factory=set)

    def add(self, region: str, data: bytes, fault: str | None = None) -> None:
        self.parts.append((region, data))
        if fault:
            self.faults.add(fault)


# -- the draw -----------------------------------------------------------------------------
STATUS_LINES: list[tuple[bytes, str | None]] = [
    (b"HTTP/1.1 200 OK", None), (b"HTTP/1.0 200 OK", None), (b"HTTP/1.1 200", None), (b"HTTP/1.1 200 ", None),
    (b"HTTP/1.1 404 Not Found", None), (b"HTTP/1.1 204 No Content", None), (b"HTTP/1.1 304 Not Modified", None),
    (b"HTTP/1.1 500 Internal Server Error", None), (b"HTTP/1.1 101 Switching Protocols", None),
    (b"HTTP/1.1 600 Beyond", None), (b"HTTP/1.2 200 OK", None), (b"HTTP/1.1 200 \xd6k \xe9", None),
    # refused by both
    (b"HTTP/1.1 99 Low", None), (b"HTTP/1.1 1000 High", None), (b"HTTP/2 200 OK", None), (b"http/1.1 200 OK", None),
    (b"HTTP/1.1 2x0 OK", None), (b"HTTP/1.1 2\xb20 OK", None), (b"", None), (b"SSH-2.0-OpenSSH_9.6", None),
    (b"HTTP/1.1 200OK", None),
    # taken by http.client, refused by the wire
    (b"HTTP/1.1 0200 OK", "status"), (b"HTTP/1.1  200 OK", "status"), (b"HTTP/0.9 200 OK", "status"),
    (b"HTTP/1.1 +200 OK", "status"),
]
EXTRA_FIELDS: list[tuple[bytes, str | None]] = [
    (b"Content-Type: application/json", None), (b"X-Empty:", None), (b"X-Spaces:   v  ", None),
    (b"x-lower: v", None), (b"X(Paren)@: v", None), (b"Connection: close", None), (b"Connection: keep-alive", None),
    (b"Server: \xe9t\xe9", None), (b"X-Folded: a\r\n b", None), (b"X-Folded: a\r\n\tb\r\n c", None),
    (b"Content-Encoding: gzip", None), (b"X-Nul: a\x00b", None),
    # heads the email parser cannot read whole
    (b"X-Space : v", None), (b"X-Tab\t: v", None), (b" X-Lead: v", None), (b"No colon here", None),
    (b": no name", None), (b"X-\xe9: v", None), (b"X a: v", None),
    # bare line ends
    (b"X-CR: a\rb", "bare"), (b"X-LF: a\nb", "bare"), (b"X-LF-End: a\nX-After: b", "bare"),
]
LINE_ENDS: list[tuple[bytes, str | None]] = [(b"\r\n", None)] * 12 + [(b"\n", "bare")]
#: The first entries of STATUS_LINES and EXTRA_FIELDS are clean; a draw mostly keeps to them.
CLEAN_STATUS_LINES = 12
CLEAN_FIELDS = 12
often = st.integers(0, 3).map(bool)  # True three times in four


def length_fields(size: int) -> st.SearchStrategy[list[bytes]]:
    """``Content-Length`` field lines for a body of ``size`` bytes, right or wrong."""
    clean = [b"%d" % size, b" %d " % size, b"%d\t" % size, b"0%d" % size, b"%d" % max(size - 2, 0)]
    values = st.one_of(st.sampled_from(clean), st.sampled_from([
        b"%d" % (size + 3), b"+%d" % size, b"-1", b"", b"abc", b"%d, %d" % (size, size), b"\xb2", b"%d\r\n " % size,
        b"%d\r\n 1" % size,
    ]))
    names = st.sampled_from([b"Content-Length", b"content-length", b"CONTENT-LENGTH", b"Content-Length "])
    one = st.builds(lambda n, v: n + b": " + v, names, values)
    return st.lists(one, min_size=1, max_size=2)


TRANSFER_CODINGS = st.one_of(st.sampled_from([b"chunked", b"Chunked", b"CHUNKED", b" chunked", b"\tchunked"]),
                             st.sampled_from([b"chunked ", b"gzip, chunked", b"chunked, gzip", b"gzip", b"identity",
                                              b"", b"\r\n chunked", b"chunked\r\n "]))


@st.composite
def chunked_body(draw: Callable[..., Any], answer: RawAnswer, content: bytes) -> None:
    """``content`` in chunks, each size spelt one way and each chunk ended one way."""
    cuts = sorted(draw(st.lists(st.integers(1, max(len(content) - 1, 1)), max_size=3, unique=True)))
    pieces = [content[a:b] for a, b in zip([0, *cuts], [*cuts, len(content)], strict=True) if content[a:b]]
    for piece in pieces:
        spelling, fault = draw(st.sampled_from([
            (b"%x", None), (b"%X", None), (b"00%x", None), (b"%x;ext=1", None), (b"%x ;e", None), (b" %x", None),
            (b"%x ", None), (b"0x%x", "chunk-size"), (b"+%x", "chunk-size"),
        ]))
        answer.add("body", spelling % len(piece) + b"\r\n", fault)
        end, end_fault = draw(st.sampled_from([(b"\r\n", None)] * 5 + [(b"XY", "chunk-end"), (b"\n", "chunk-end"),
                                                                        (b"", "chunk-end")]))
        answer.add("body", piece + end, end_fault)
    answer.add("last", draw(st.sampled_from([b"0", b"000", b"0;ext=1"])) + b"\r\n")
    answer.add("trailers", draw(st.sampled_from([b"", b"X-Trailer: t\r\n"])))
    answer.add("trailers", draw(st.sampled_from([b"\r\n", b"\r\n", b""])))  # "": closed before the blank line


@st.composite
def answers(draw: Callable[..., Any]) -> tuple[bytes, set[str]]:
    """A raw answer and the :data:`STRICT` faults it holds (with its cut, if any)."""
    answer = RawAnswer()
    if draw(st.booleans()) and draw(st.booleans()):
        interim = b"HTTP/1.1 100 Continue\r\n" + draw(st.sampled_from([b"", b"X-Interim: 1\r\n"])) + b"\r\n"
        answer.add("head", interim)
    status, fault = draw(st.sampled_from(STATUS_LINES[:CLEAN_STATUS_LINES]) if draw(often) else st.sampled_from(STATUS_LINES))
    end, end_fault = draw(st.sampled_from(LINE_ENDS))
    answer.add("head", status + end, fault or end_fault)
    content = draw(st.binary(min_size=0, max_size=40))
    framing = draw(st.sampled_from(["length", "chunked", "close", "both"]))
    fields: list[tuple[bytes, str | None]] = [(line, None) for line in (
        draw(length_fields(len(content))) if framing in ("length", "both") else [])]
    if framing in ("chunked", "both"):
        fields.append((b"Transfer-Encoding: " + draw(TRANSFER_CODINGS), None))
    extra = EXTRA_FIELDS[:CLEAN_FIELDS] if draw(often) else EXTRA_FIELDS
    fields += draw(st.lists(st.sampled_from(extra), max_size=4))
    for line, line_fault in draw(st.permutations(fields)):
        line_end, line_end_fault = draw(st.sampled_from(LINE_ENDS))
        answer.add("head", line + line_end, line_fault or line_end_fault)
    head_end, head_end_fault = draw(st.sampled_from(LINE_ENDS))
    answer.add("head", head_end, head_end_fault)
    if framing in ("chunked", "both"):
        draw(chunked_body(answer, content))
    else:
        answer.add("body", content)
    raw = b"".join(data for _, data in answer.parts)
    cut = None if draw(often) else draw(st.integers(0, max(len(raw) - 1, 0)))
    if cut is not None:
        raw = raw[:cut]
        answer.faults |= cut_faults(answer, cut)
    return raw, answer.faults


def cut_faults(answer: RawAnswer, cut: int) -> set[str]:
    """What a cut at ``cut`` breaks that http.client may still take."""
    offset = 0
    for region, data in answer.parts:
        if offset + len(data) > cut:  # the cut falls in this part
            return {"head-cut"} if region == "head" else {"last-chunk-cut"} if region == "last" else set()
        offset += len(data)
    return set()


# -- the two readers ----------------------------------------------------------------------
class Feed:
    """A socket that hands out ``data`` at most ``piece`` bytes per ``recv``, then b""."""

    def __init__(self, data: bytes, piece: int) -> None:
        self.data, self.piece, self.at = data, piece, 0

    def recv(self, size: int) -> bytes:
        chunk = self.data[self.at:self.at + min(size, self.piece)]
        self.at += len(chunk)
        return chunk

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


Verdict = tuple[int, bytes] | None  # (status, body), or None: refused


def wire_verdict(raw: bytes, method: str, piece: int) -> Verdict:
    try:
        answer = read_answer(Connection(cast(Any, Feed(raw, piece))), method)
    except http.client.HTTPException:
        return None
    return answer.status, answer.body


def reference_verdict(raw: bytes, method: str, faults: set[str]) -> Verdict:
    """http.client's verdict, a refusal where RFC 9112 calls the answer invalid."""
    response = http.client.HTTPResponse(cast(Any, Feed(raw, len(raw) + 1)), method=method)
    try:
        response.begin()
        # http.client reads a chunked body even where it sets its length to 0 (a 204 or
        # 304, a 1xx): the wire reads none there, as RFC 9112 §6.3 says.
        body_read = method != "HEAD" and response.status not in (204, 304) and not 100 <= response.status < 200
        body = response.read() if body_read else b""
    except (http.client.HTTPException, ValueError):
        return None
    try:
        assert_header_parsing(response.msg)
    except HeaderParsingError:
        return None
    if faults - {"chunk-size", "chunk-end", "last-chunk-cut"} or (body_read and (faults or invalid_framing(response))):
        return None
    return response.status, body


def invalid_framing(response: http.client.HTTPResponse) -> bool:
    codings = response.msg.get_all("transfer-encoding")
    if codings is not None:
        return len(codings) != 1 or codings[0].lower() != "chunked"
    lengths = response.msg.get_all("content-length")
    return lengths is not None and (len(lengths) != 1 or not _DIGITS.fullmatch(lengths[0].strip(" \t\r\n")))


@settings(derandomize=True, max_examples=600, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(answers(), st.sampled_from(["GET", "POST", "HEAD"]), st.integers(1, 64))
def test_the_wire_and_http_client_agree_on_every_answer(answer: tuple[bytes, set[str]], method: str,
                                                        piece: int) -> None:
    raw, faults = answer
    verdict = wire_verdict(raw, method, piece)
    event("refused" if verdict is None else "accepted")
    assert verdict == reference_verdict(raw, method, faults), (raw, method, faults)

