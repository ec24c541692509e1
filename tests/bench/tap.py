"""A TCP relay in front of a simulator host that stamps upstream SSE frames.

The simulator plays a session turn and a MiniMax Code answer in ticks of 50 ms
(``tests/simulator/stream.py``, ``STREAM_TICK_SECONDS``): a character visible at ``t`` on
the timeline is written at the next tick, up to 50 ms later. That delay is the
simulator's, not the gateway's, so bench_latency points the gateway's upstream URL at
this relay, which records (``time.time()``, right after ``recv``, before forwarding) when
the first text frame and the end of each turn reached the gateway's socket. Client
arrival minus these stamps is what the gateway itself adds.

Two protocols (``protocol``):

* ``session`` (``MINIMAX_STREAM_BASE_URL``): turns are keyed by the prompt of the user
  echo that opens every turn's body; stamps ``t_first_text`` (first
  ``agent_message_chunk`` with text or thinking), ``t_finish_chunk`` and ``t_done``
  (``data:[DONE]``).
* ``code`` (``MINIMAX_CODE_BASE_URL``, Anthropic Messages over SSE): turns are keyed by
  the last user message's text of the request body (the simulator's ``prompt``), read
  from the gateway -> upstream bytes; stamps ``t_first_text`` (first
  ``content_block_delta`` with a text or thinking delta), ``t_message_delta`` and
  ``t_done`` (``message_stop``).

Forwarding is byte for byte; the parsing only reads a copy. Threads: one acceptor, two
pumps per connection; every loop is bounded in count, bytes and time.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

ACCEPT_TICK_S = 0.5
MAX_CONNECTIONS = 20_000
LIFETIME_S = 3600.0
IDLE_TIMEOUT_S = 300.0
MAX_BYTES_PER_DIRECTION = 256 * 1024 * 1024
RECV_BYTES = 65536
#: A request body larger than this is not parsed (no prompt: the turn is not stamped).
MAX_PARSED_BODY = 17 * 1024 * 1024
PROTOCOLS = ("session", "code")
#: The code surface's streamed call (count_tokens and the catalogue are not turns).
MESSAGES_PATH = b"/llm/v1/messages"


class StreamTap:
    """Listens on a free loopback port and relays every connection to ``upstream``."""

    def __init__(self, upstream: str, protocol: str = "session") -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}")
        self.protocol = protocol
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(ACCEPT_TICK_S)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.turns: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept_loop, name="tap-accept", daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in [self._server, *sockets]:
            try:
                sock.close()
            except OSError:
                pass

    def turn(self, prompt: str) -> dict[str, float] | None:
        """The stamps of the turn whose prompt is ``prompt`` (or contains it)."""
        with self._lock:
            found = self.turns.get(prompt)
            if found is None:
                found = next((v for k, v in self.turns.items() if prompt in k), None)
            return dict(found) if found is not None else None

    # -- relaying --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        deadline = time.monotonic() + LIFETIME_S
        accepted = 0
        while not self._closed.is_set() and accepted < MAX_CONNECTIONS and time.monotonic() < deadline:
            try:
                client, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            accepted += 1
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(IDLE_TIMEOUT_S)
        with self._lock:
            self._sockets += [client, upstream]
        if self.protocol == "code":
            answers = _CodeFrameReader(self)
            requests: _RequestReader | None = _RequestReader(answers)
            reader: _FrameReader = answers
        else:
            requests, reader = None, _FrameReader(self)
        threading.Thread(target=self._pump, args=(client, upstream, requests), daemon=True).start()
        self._pump(upstream, client, reader)

    def _pump(self, source: socket.socket, sink: socket.socket,
              reader: _FrameReader | _RequestReader | None) -> None:
        moved, deadline = 0, time.monotonic() + LIFETIME_S
        try:
            while moved < MAX_BYTES_PER_DIRECTION and time.monotonic() < deadline:
                data = source.recv(RECV_BYTES)
                now = time.time()
                if not data:
                    break
                if isinstance(reader, _RequestReader):  # queue the prompt before it can be answered
                    reader.feed(data, now)
                sink.sendall(data)
                moved += len(data)
                if isinstance(reader, _FrameReader):
                    reader.feed(data, now)
        except OSError:
            pass
        finally:
            for sock in (sink, source):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _stamp(self, prompt: str, key: str, now: float) -> None:
        with self._lock:
            self.turns.setdefault(prompt, {}).setdefault(key, now)


class _FrameReader:
    """Finds the frames of interest in one connection's upstream -> gateway bytes.

    The body is chunked HTTP; every simulator write is whole SSE frames, so splitting on
    the blank line and reading from ``data:`` on skips the chunk-size lines and headers.
    """

    def __init__(self, tap: StreamTap) -> None:
        self.tap = tap
        self.buffer = b""
        self.prompt: str | None = None

    def feed(self, data: bytes, now: float) -> None:
        self.buffer += data
        if b"\n\n" not in self.buffer:
            return
        *segments, self.buffer = self.buffer.split(b"\n\n")
        for segment in segments:
            self._segment(segment, now)

    def _segment(self, segment: bytes, now: float) -> None:
        start = segment.find(b"data:")
        if start < 0:
            return
        payload = segment[start + 5:].strip()
        if payload == b"[DONE]":
            if self.prompt is not None:
                self.tap._stamp(self.prompt, "t_done", now)
            return
        try:
            event: Any = json.loads(payload)
        except ValueError:
            return
        if isinstance(event, dict):
            self._event(event, now)

    def _event(self, event: dict[str, Any], now: float) -> None:
        message = event.get("agent_message") or {}
        if message.get("role") == "user":
            self.prompt = str(message.get("msg_content", ""))
            self.tap._stamp(self.prompt, "t_echo", now)
            return
        if self.prompt is None:
            return
        piece = event.get("agent_message_chunk") or {}
        if piece.get("msg_content") or piece.get("thinking_content"):
            self.tap._stamp(self.prompt, "t_first_text", now)
        if piece.get("finish"):
            self.tap._stamp(self.prompt, "t_finish_chunk", now)


class _CodeFrameReader(_FrameReader):
    """The Anthropic SSE answers of one code-surface connection. Each answer starts with
    its response's status line, and takes the prompt of the oldest request the
    :class:`_RequestReader` of the same connection read and no answer has taken yet."""

    def __init__(self, tap: StreamTap) -> None:
        super().__init__(tap)
        #: Prompts of the requests sent on this connection, oldest first (None: not a
        #: streamed /messages request). deque append/popleft are thread-safe.
        self.pending: deque[str | None] = deque(maxlen=1024)

    def _segment(self, segment: bytes, now: float) -> None:
        if segment.lstrip().startswith(b"HTTP/1."):  # a new response on this connection
            self.prompt = self.pending.popleft() if self.pending else None
        super()._segment(segment, now)

    def _event(self, event: dict[str, Any], now: float) -> None:
        if self.prompt is None:
            return
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("text") or delta.get("thinking"):
                self.tap._stamp(self.prompt, "t_first_text", now)
        elif kind == "message_delta":
            self.tap._stamp(self.prompt, "t_message_delta", now)
        elif kind == "message_stop":
            self.tap._stamp(self.prompt, "t_done", now)


class _RequestReader:
    """Reads the gateway's requests (``Content-Length`` bodies) on one connection and
    queues each one's prompt, the last user message's text as the simulator logs it, for
    the answer reader. Fed before the bytes are forwarded, so a prompt is queued before
    the upstream can answer it."""

    def __init__(self, answers: _CodeFrameReader) -> None:
        self.answers = answers
        self.buffer = b""
        self.head: bytes | None = None
        self.body_length = 0

    def feed(self, data: bytes, now: float) -> None:
        self.buffer += data
        while True:  # bounded: each pass consumes a header block or a body from the buffer
            if self.head is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
                self.body_length = _content_length(self.head)
            if len(self.buffer) < self.body_length:
                return
            body, self.buffer = self.buffer[:self.body_length], self.buffer[self.body_length:]
            target = (self.head.split(b" ", 2)[1:2] or [b""])[0].split(b"?", 1)[0]
            streamed = target.endswith(MESSAGES_PATH)
            self.head = None
            prompt = _prompt_of(body) if streamed and len(body) <= MAX_PARSED_BODY else None
            self.answers.pending.append(prompt)
            if prompt is not None:
                self.answers.tap._stamp(prompt, "t_request_body", now)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return max(0, int(value.strip()))
            except ValueError:
                return 0
    return 0


def _prompt_of(body: bytes) -> str | None:
    """The last user message's text blocks, joined by newlines (the simulator's rule)."""
    try:
        messages = json.loads(body).get("messages") or []
        last = next(m for m in reversed(messages) if m.get("role") == "user")
    except (ValueError, AttributeError, StopIteration):
        return None
    content = last.get("content")
    if isinstance(content, str):
        return content
    texts = [b.get("text", "") for b in content or () if isinstance(b, dict) and b.get("type") == "text"]
    return "\n".join(texts) if texts else None
