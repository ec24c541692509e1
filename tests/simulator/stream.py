"""The SSE body of a session turn (the stream host's message POST) and of `/events`.

Role: play a `Generation`'s `Timeline` as server-sent events with the captured quirks
(`data:` without a space, heartbeats of both forms, the user echo first, deltas, the
closing whole message restating the answer, `data:[DONE]`, then the connection lingers
open with heartbeats). The same timeline the matrix side shows through polls, so one
scripted answer plays identically on both surfaces.

A client that goes away stops the turn at once: pywsgi closes the app iterator when a
write fails, and, since a write into a half-closed socket may still succeed once, every
wait also peeks at the socket (when the server put it in the environ) and ends the
stream as soon as the peer has closed. Under Flask's test client, closing the response
does the same through `TurnStream.close`.
"""

from __future__ import annotations

import errno
import select
import socket
from typing import Any, Callable, Iterator

from tests.simulator.generations import Generation
from tests.simulator.protocol import QUOTA_EXHAUSTED_CODE, QUOTA_EXHAUSTED_MSG
from tests.simulator.session_shapes import (
    DONE_LINE,
    HEARTBEATS,
    chunk,
    final_message,
    frame,
    stream_error,
    tool_call,
    usage,
    user_echo,
)
from tests.simulator.state import SimState

SOCKET_ENVIRON_KEY: str = "minimax_simulator.socket"
# How often a waiting stream wakes up to check the clock and the client.
STREAM_TICK_SECONDS: float = 0.05

Probe = Callable[[], bool]


def socket_probe(environ: dict[str, Any]) -> Probe:
    """A function telling whether the client closed its side (False when unknown)."""
    sock = environ.get(SOCKET_ENVIRON_KEY)
    if sock is None:
        return lambda: False

    def closed() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    return closed


def _ms(t: float) -> int:
    return int(t * 1000)


class _ClientGone(Exception):
    """The peer closed the connection while the stream waited."""


class _Waiter:
    """Sleeps in ticks (the simulator's sleep: real, gevent's, or a fake clock's)."""

    def __init__(self, state: SimState, probe: Probe) -> None:
        self.state, self.probe = state, probe

    def pause(self, seconds: float) -> None:
        remaining = seconds
        while remaining > 1e-9:
            step = min(STREAM_TICK_SECONDS, remaining)
            self.state.settings.sleep(step)
            remaining -= step
            if self.probe():
                raise _ClientGone()


class _Heartbeat:
    """Alternates the two heartbeat forms the stream host is known to send."""

    def __init__(self) -> None:
        self.count = 0

    def next(self) -> bytes:
        self.count += 1
        return frame(HEARTBEATS[(self.count - 1) % len(HEARTBEATS)])


class TurnStream:
    """Iterable SSE body of one turn; close() before the finish stops the turn."""

    def __init__(self, state: SimState, generation: Generation, probe: Probe) -> None:
        self.state, self.generation = state, generation
        self.waiter = _Waiter(state, probe)
        self.heartbeat = _Heartbeat()
        self.started = self.finished = self.dropped = self.errored = False
        self._frames: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        self._frames = self._play()
        return self._frames

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()
        if not self.finished:
            # Never iterated means the server side lost it (drop_after), not the client.
            self.state.end_turn(self.generation, self.state.clock(),
                                dropped=self.dropped or not self.started)

    # -- the play ---------------------------------------------------------------------------

    def _play(self) -> Iterator[bytes]:
        self.started = True
        gen = self.generation
        yield frame(user_echo(gen.user_msg_id, gen.prompt))
        try:
            yield from self._turn()
            if not self.errored:
                yield from self._linger()
        except _ClientGone:
            return

    def _turn(self) -> Iterator[bytes]:
        gen, clock = self.generation, self.state.clock
        cursor = _Cursor(gen, self.state.drift.tool_status_form)
        last_sent = clock()
        while True:
            now = clock()
            if gen.stopped_at is not None:
                return  # ended elsewhere (session deleted): the stream just stops
            yield from self._fault(now)
            if self.errored:
                return
            pieces = cursor.advance(min(now, gen.timeline.t_finish))
            if pieces:
                yield b"".join(pieces)
                last_sent = now
            if now >= gen.timeline.t_finish:
                self.finished = True
                yield cursor.closing()
                return
            if now - last_sent >= self.state.heartbeat_seconds:
                yield self.heartbeat.next()
                last_sent = now
            self.waiter.pause(STREAM_TICK_SECONDS)

    def _fault(self, now: float) -> Iterator[bytes]:
        fired = self.state.take_stream_fault(self.generation, now)
        if fired is None:
            return
        kind, seconds = fired
        if kind == "drop_mid":
            self.dropped = True
            self.state.end_turn(self.generation, now, dropped=True)
            # pywsgi treats ECONNRESET from the app as a vanished client: it closes the socket.
            raise ConnectionResetError(errno.ECONNRESET, "simulated drop mid-stream")
        if kind == "error_mid":
            # The state already ended the turn; the stream reports it and closes.
            self.errored = self.finished = True
            yield frame(stream_error(QUOTA_EXHAUSTED_CODE, QUOTA_EXHAUSTED_MSG)) + DONE_LINE
            return
        self.waiter.pause(seconds)  # hang_mid: nothing at all, not even heartbeats

    def _linger(self) -> Iterator[bytes]:
        """After [DONE] the connection stays open, heartbeating, until the client leaves."""
        remaining = self.state.linger_seconds
        while remaining > 0:
            step = min(self.state.heartbeat_seconds, remaining)
            self.waiter.pause(step)
            remaining -= step
            yield self.heartbeat.next()


class _Cursor:
    """What of a turn's timeline the stream has sent so far, and the next deltas."""

    def __init__(self, generation: Generation, tool_status_form: str = "word") -> None:
        self.gen = generation
        self.tool_status_form = tool_status_form
        self.thinking_sent = self.text_sent = 0
        self.index = 0
        self.tools_started: set[int] = set()
        self.tools_done: set[int] = set()

    def _chunk(self, msg_id: int, t: float, **fields: Any) -> bytes:
        self.index += 1
        return frame(chunk(msg_id, self.index, _ms(t), **fields))

    def advance(self, t: float) -> list[bytes]:
        """Frames for everything that became visible up to t, in timeline order."""
        timeline, answer_id = self.gen.timeline, self.gen.answer_msg_id
        pieces: list[bytes] = []
        thinking = timeline.thinking_at(t) if t >= timeline.t_start else ""
        if len(thinking) > self.thinking_sent:
            pieces.append(self._chunk(answer_id, t, thinking=thinking[self.thinking_sent:]))
            self.thinking_sent = len(thinking)
        pieces += self._tool_frames(t)
        text = timeline.text_at(t)
        if len(text) > self.text_sent:
            pieces.append(self._chunk(answer_id, t, text=text[self.text_sent:]))
            self.text_sent = len(text)
        return pieces

    def _tool_frames(self, t: float) -> list[bytes]:
        pieces = []
        for window in self.gen.timeline.tools:
            call_id, step = f"call_{window.msg_id}", window.step
            args = {"query": self.gen.prompt[-100:]}
            if t >= window.begin and window.msg_id not in self.tools_started:
                self.tools_started.add(window.msg_id)
                pieces.append(self._chunk(window.msg_id, window.begin, tool_calls=[
                    tool_call(call_id, step.name, args, None, self.tool_status_form)]))
            if t >= window.end and window.msg_id not in self.tools_done:
                self.tools_done.add(window.msg_id)
                pieces.append(self._chunk(window.msg_id, window.end, tool_calls=[
                    tool_call(call_id, step.name, args, step.content, self.tool_status_form)]))
        return pieces

    def closing(self) -> bytes:
        """The finish chunk, the whole answer restated, then [DONE]."""
        gen, timeline = self.gen, self.gen.timeline
        finish = self._chunk(gen.answer_msg_id, timeline.t_finish, finish=True)
        whole = frame(final_message(gen.answer_msg_id, timeline.text, timeline.thinking,
                                    usage(gen.prompt, timeline.text, timeline.thinking)))
        return finish + whole + DONE_LINE


def events_stream(state: SimState, probe: Probe) -> Iterator[bytes]:
    """GET /events: heartbeats only, for linger_seconds or until the client leaves."""
    waiter, heartbeat = _Waiter(state, probe), _Heartbeat()
    yield heartbeat.next()
    remaining = state.linger_seconds
    try:
        while remaining > 0:
            step = min(state.heartbeat_seconds, remaining)
            waiter.pause(step)
            remaining -= step
            yield heartbeat.next()
    except _ClientGone:
        return
