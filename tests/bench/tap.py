"""A TCP relay in front of the simulator's stream host that stamps upstream SSE frames.

The simulator plays a session turn in ticks of 50 ms (``tests/simulator/stream.py``,
``STREAM_TICK_SECONDS``): a character visible at ``t`` on the timeline is written at
the next tick, up to 50 ms later. That delay is the simulator's, not the gateway's, so
bench_latency's session run points ``MINIMAX_STREAM_BASE_URL`` at this relay, which
records (``time.time()``, right after ``recv``, before forwarding) when the first text
chunk, the finish chunk and ``data:[DONE]`` of each turn reached the gateway's socket.
Client arrival minus these stamps is what the gateway itself adds.

Turns are keyed by the prompt of the user echo that opens every turn's body. Forwarding
is byte for byte; the parsing only reads a copy. Threads: one acceptor, two pumps per
connection; every loop is bounded in count, bytes and time.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

ACCEPT_TICK_S = 0.5
MAX_CONNECTIONS = 20_000
LIFETIME_S = 3600.0
IDLE_TIMEOUT_S = 300.0
MAX_BYTES_PER_DIRECTION = 256 * 1024 * 1024
RECV_BYTES = 65536


class StreamTap:
    """Listens on a free loopback port and relays every connection to ``upstream``."""

    def __init__(self, upstream: str) -> None:
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
        """The stamps of the turn whose user echo is ``prompt`` (or contains it)."""
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
        threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
        self._pump(upstream, client, _FrameReader(self))

    def _pump(self, source: socket.socket, sink: socket.socket, reader: _FrameReader | None) -> None:
        moved, deadline = 0, time.monotonic() + LIFETIME_S
        try:
            while moved < MAX_BYTES_PER_DIRECTION and time.monotonic() < deadline:
                data = source.recv(RECV_BYTES)
                now = time.time()
                if not data:
                    break
                sink.sendall(data)
                moved += len(data)
                if reader is not None:
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
