"""One MiniMax Code answer: what it says (`CodeAnswer`), how it plays (SSE or one JSON), and
how /_sim/log shows it (`CodeGeneration`, in the web surfaces' log fields).

Role: turn a scripted `AnswerSpec` and a checked `MessagesRequest` into the Anthropic
answer of the page §2, played on the same `Timeline` the web surfaces use (first delay,
thinking, text at cps, pauses), so one script means the same on every surface.

Stream: message_start (usage.input_tokens 0, as measured), ping, then per block
content_block_start / _delta / _stop: thinking (thinking_delta…, one signature_delta),
text (text_delta…), tool_use (input_json_delta in several pieces); message_delta with
stop_reason and the real usage (input_tokens, output_tokens,
output_tokens_details.thinking_tokens, a subset of output_tokens); message_stop. A ping
goes out whenever nothing was sent for `ping_seconds` (e.g. a long first delay).
Faults of the script fire once the answer has started showing: drop_mid resets the
connection, hang_mid stalls silently, error_mid ends with an in-stream error frame
(the quota wall, 2056, like error_mid on the web surfaces).

Thinking: a forced_on model (M3.1*, M2.7*) always thinks: the script's thinking, or a
short deterministic one when the script has none; a switchable one (M3) shows the
script's thinking only when asked. `max_tokens` cuts thinking, then text (then no tool
calls), with stop_reason max_tokens; the first of the request's `stop_sequences` found in
the text ends it there (not shown), with stop_reason stop_sequence and the sequence.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

from tests.simulator.code_rules import MessagesRequest
from tests.simulator.code_shapes import (
    CHARS_PER_TOKEN,
    FORCED_ON,
    MESSAGE_STOP,
    PING,
    block_delta,
    block_start,
    block_stop,
    message_shell,
    sse,
    stream_error_frame,
    text_tokens,
    thinking_mode,
    usage_of,
)
from tests.simulator.scripts import AnswerSpec, answer_text
from tests.simulator.state import SimState
from tests.simulator.stream import STREAM_TICK_SECONDS, Probe, _ClientGone, _Waiter
from tests.simulator.timeline import Timeline

SIGNATURE_KEY: bytes = secrets.token_bytes(32)  # per process: replayed signatures are checked
JSON_PIECES: int = 3  # input_json_delta pieces per tool call


def sign_thinking(thinking: str) -> str:
    mac = hmac.new(SIGNATURE_KEY, thinking.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def signature_ok(thinking: str, signature: str) -> bool:
    return hmac.compare_digest(sign_thinking(thinking), signature)


def default_thinking(prompt: str) -> str:
    tail = prompt.strip().splitlines()[-1][-60:] if prompt.strip() else ""
    return f"The user asks: {tail}. Answer directly."


@dataclass
class CodeAnswer:
    """Everything one generation says, decided when it starts."""

    message_id: str
    model: str
    thinking: str
    text: str
    tool_calls: list[tuple[str, str, str]]  # (id, name, input JSON)
    stop_reason: str
    input_tokens: int
    timeline: Timeline
    fault: str | None
    fault_seconds: float
    stop_sequence: str | None = None  # the one that ended the text (stop_reason stop_sequence)

    @property
    def thinking_tokens(self) -> int:
        return text_tokens(self.thinking)

    @property
    def output_tokens(self) -> int:
        tools = sum(text_tokens(name + args) for _, name, args in self.tool_calls)
        return self.thinking_tokens + text_tokens(self.text) + tools

    def usage(self) -> dict[str, Any]:
        return usage_of(self.input_tokens, self.output_tokens, self.thinking_tokens)

    def content(self) -> list[dict[str, Any]]:
        """The non-stream message's content blocks."""
        blocks: list[dict[str, Any]] = []
        if self.thinking:
            blocks.append({"type": "thinking", "thinking": self.thinking,
                           "signature": sign_thinking(self.thinking)})
        if self.text or not self.tool_calls:
            blocks.append({"type": "text", "text": self.text})
        blocks += [{"type": "tool_use", "id": call_id, "name": name, "input": json.loads(args)}
                   for call_id, name, args in self.tool_calls]
        return blocks

    def message(self) -> dict[str, Any]:
        return {**message_shell(self.message_id, self.model), "content": self.content(),
                "stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence,
                "usage": self.usage()}


def plan_answer(spec: AnswerSpec, request: MessagesRequest, now: float,
                fault: str | None = None) -> CodeAnswer:
    """The answer a spec gives this request; `fault` (an endpoint fault) overrides the spec's."""
    text = answer_text(spec, request.prompt)
    thinking = spec.thinking if request.thinks else ""
    if request.thinks and not thinking and thinking_mode(request.model) == FORCED_ON:
        thinking = default_thinking(request.prompt)
    calls = [(f"toolu_{secrets.token_hex(12)}", call.name, call.input_json)
             for call in spec.tool_calls]
    budget, stop = request.max_tokens, "tool_use" if calls else "end_turn"
    hits = [(text.find(s), s) for s in request.stop_sequences if s in text]
    sequence = min(hits)[1] if hits else None
    if sequence is not None:  # the text ends before the first stop sequence, which is not shown
        text, calls, stop = text[:text.find(sequence)], [], "stop_sequence"
    if text_tokens(thinking) >= budget:
        thinking, text, calls, stop = thinking[:budget * CHARS_PER_TOKEN], "", [], "max_tokens"
        sequence = None
    elif text_tokens(thinking) + text_tokens(text) > budget:
        keep = (budget - text_tokens(thinking)) * CHARS_PER_TOKEN
        text, calls, stop, sequence = text[:keep], [], "max_tokens", None
    timeline = Timeline(replace(spec, thinking=thinking, tool_steps=()), text, now, [])
    return CodeAnswer(f"msg_{secrets.token_hex(12)}", request.model, thinking, text, calls,
                      stop, request.input_tokens, timeline, fault or spec.fault,
                      spec.fault_seconds, sequence)


@dataclass
class CodeGeneration:
    """One code-surface generation as /_sim/log shows it, in the web surfaces' fields
    (no chat is kept: chat_id is None and nothing is ever deleted)."""

    account: str  # the linked web account's real_user_id, as the web log names accounts
    prompt: str
    answer: CodeAnswer
    #: When its stream ended before the answer did (the client went away), else None.
    stopped_at: float | None = None

    def ended(self, now: float) -> None:
        if now < self.answer.timeline.t_finish:
            self.stopped_at = now

    def log_entry(self, now: float) -> dict[str, Any]:
        t = self.answer.timeline
        first = t.first_content_time()
        return {
            "chat_id": None, "surface": "code", "turn_id": None, "account": self.account,
            "prompt": self.prompt, "attachments": [], "attachment_details": [], "web_search": False,
            "model": self.answer.model, "chat_type": None, "turn": 1, "msg_id": None,
            "answer_msg_id": None, "answer": self.answer.text, "thinking": self.answer.thinking,
            "delivered": t.text_at(self.stopped_at if self.stopped_at is not None else now), "t_send": t.t_send,
            "t_first_content": first if first is not None and first <= now else None,
            "t_finish": t.t_finish if now >= t.t_finish else None, "polls": 0, "poll_times": [],
            "stopped": self.stopped_at is not None, "deleted": False,
            "status": "stopped" if self.stopped_at is not None else "finished" if now >= t.t_finish else "generating",
            "tool_calls": [{"name": name, "input": json.loads(raw)} for _, name, raw in self.answer.tool_calls],
        }


class AnswerStream:
    """The SSE body of one answer; `on_end` runs once however the stream ends."""

    def __init__(self, answer: CodeAnswer, state: SimState, probe: Probe, ping_seconds: float,
                 on_end: Callable[[], None]) -> None:
        self.answer, self.clock, self.ping_seconds = answer, state.clock, ping_seconds
        self.waiter = _Waiter(state, probe)
        self._on_end: Callable[[], None] | None = on_end
        self.thinking_sent = self.text_sent = 0
        self.index = -1
        self.open: str | None = None  # the kind of the block now open
        self._frames: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        self._frames = self._play()
        return self._frames

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()
        self._end()

    def _end(self) -> None:
        if self._on_end is not None:
            on_end, self._on_end = self._on_end, None
            on_end()

    def _play(self) -> Iterator[bytes]:
        try:
            yield sse({"type": "message_start",
                       "message": message_shell(self.answer.message_id, self.answer.model)})
            yield PING
            yield from self._body()
        except _ClientGone:
            return
        finally:
            self._end()

    def _body(self) -> Iterator[bytes]:
        timeline, last_sent = self.answer.timeline, self.clock()
        while True:
            now = self.clock()
            pieces = self._advance(min(now, timeline.t_finish))
            if pieces:
                yield b"".join(pieces)
                last_sent = now
            if self.answer.fault is not None and (self.text_sent or self.thinking_sent):
                fault, self.answer.fault = self.answer.fault, None
                if fault == "error_mid":
                    yield stream_error_frame()
                    return
                if fault == "drop_mid":
                    raise ConnectionResetError(errno.ECONNRESET, "simulated drop mid-stream")
                self.waiter.pause(self.answer.fault_seconds)  # hang_mid: not even pings
            if now >= timeline.t_finish:
                yield self._closing()
                return
            if now - last_sent >= self.ping_seconds:
                yield PING
                last_sent = now
            self.waiter.pause(STREAM_TICK_SECONDS)

    def _start(self, kind: str, block: dict[str, Any]) -> bytes:
        self.index += 1
        self.open = kind
        return block_start(self.index, block)

    def _stop(self) -> bytes:
        frames = b""
        if self.open == "thinking":
            frames += block_delta(self.index, {"type": "signature_delta",
                                               "signature": sign_thinking(self.answer.thinking)})
        self.open = None
        return frames + block_stop(self.index)

    def _advance(self, t: float) -> list[bytes]:
        timeline, pieces = self.answer.timeline, []
        thinking = timeline.thinking_at(t) if t >= timeline.t_start else ""
        if len(thinking) > self.thinking_sent:
            if self.open is None:
                pieces.append(self._start("thinking", {"type": "thinking", "thinking": "",
                                                       "signature": ""}))
            pieces.append(block_delta(self.index, {"type": "thinking_delta",
                                                   "thinking": thinking[self.thinking_sent:]}))
            self.thinking_sent = len(thinking)
        text = timeline.text_at(t)
        if len(text) > self.text_sent:
            if self.open == "thinking":
                pieces.append(self._stop())
            if self.open is None:
                pieces.append(self._start("text", {"type": "text", "text": ""}))
            pieces.append(block_delta(self.index, {"type": "text_delta",
                                                   "text": text[self.text_sent:]}))
            self.text_sent = len(text)
        return pieces

    def _closing(self) -> bytes:
        frames = [self._stop()] if self.open is not None else []
        if self.index < 0 and not self.answer.tool_calls:
            frames += [self._start("text", {"type": "text", "text": ""}), self._stop()]
        for call_id, name, args in self.answer.tool_calls:
            frames.append(self._start("tool_use", {"type": "tool_use", "id": call_id,
                                                   "name": name, "input": {}}))
            size = max(1, -(-len(args) // JSON_PIECES))
            frames += [block_delta(self.index, {"type": "input_json_delta",
                                                "partial_json": args[at:at + size]})
                       for at in range(0, len(args), size)]
            frames.append(self._stop())
        frames.append(sse({"type": "message_delta",
                           "delta": {"stop_reason": self.answer.stop_reason,
                                     "stop_sequence": self.answer.stop_sequence},
                           "usage": self.answer.usage()}))
        return b"".join(frames) + MESSAGE_STOP

