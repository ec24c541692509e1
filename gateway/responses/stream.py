"""Neutral events as the Responses API's exact event sequence.

``response.created`` and ``response.in_progress`` open the stream; each output item is
announced (``response.output_item.added``), filled (text and reasoning summary deltas,
call arguments or a custom tool's raw input) and closed (``response.output_item.done``)
before the next one opens; ``response.completed``, ``response.incomplete`` (a cut
answer) or ``response.failed`` always ends it. Every event carries a rising
``sequence_number`` and is sent with its ``event:`` line, as OpenAI does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gateway import sse
from gateway.errors import GatewayError, UpstreamBadAnswer
from gateway.parts import (
    Event,
    Finish,
    Heartbeat,
    ReasoningDelta,
    ReasoningSignature,
    SearchResults,
    StreamError,
    TextDelta,
    ToolCall,
    Usage,
)
from gateway.responses.errors import failure
from gateway.responses.translate import (
    Shape,
    arguments_of,
    call_item,
    message_item,
    new_id,
    reasoning_item,
    status_of,
    text_part,
)

#: Called with the final ``response`` object of an answer that completed or was cut.
OnDone = Callable[[dict[str, Any]], None]


class ResponseStream:
    """Renders one answer's events; iterate :meth:`frames` once."""

    def __init__(self, shape: Shape, input_tokens: int, on_done: OnDone) -> None:
        self.shape = shape
        self._on_done = on_done
        self._sequence = 0
        self._output: list[dict[str, Any]] = []
        self._usage = Usage(input_tokens, 0)
        self._searches: list[SearchResults] = []
        self._open: str | None = None  # "message" or "reasoning" while one is being filled
        self._item_id = ""
        self._text: list[str] = []
        self._signature: str | None = None  # of the reasoning being filled
        self._calls = 0

    def frames(self, events: Iterable[Event]) -> Iterator[bytes]:
        yield self._event("response.created", response=self.shape.body("in_progress", []))
        yield self._event("response.in_progress", response=self.shape.body("in_progress", []))
        for event in events:
            match event:
                case TextDelta(text=text):
                    yield from self._delta("message", text)
                case ReasoningDelta(text=text) if self.shape.summary:
                    yield from self._delta("reasoning", text)
                case ReasoningSignature(signature=signature) if self._open == "reasoning":
                    self._signature = signature
                case ToolCall():
                    yield from self._call(event)
                case SearchResults():
                    self._searches.append(event)
                case Heartbeat():
                    yield sse.comment("keep-alive")
                case Usage():
                    self._usage = event
                case Finish():
                    yield from self._finish(event)
                    return
                case StreamError(error=error):
                    yield from self._fail(error)
                    return
        yield from self._fail(UpstreamBadAnswer("The MiniMax answer ended before it was complete."))

    # -- items -------------------------------------------------------------------------
    def _delta(self, kind: str, text: str) -> Iterator[bytes]:
        if self._open != kind:
            yield from self._close()
            yield from self._begin(kind)
        self._text.append(text)
        if kind == "message":
            yield self._event("response.output_text.delta", **self._at(), content_index=0, delta=text, logprobs=[])
        else:
            yield self._event("response.reasoning_summary_text.delta", **self._at(), summary_index=0, delta=text)

    def _begin(self, kind: str) -> Iterator[bytes]:
        self._open, self._text, self._signature = kind, [], None
        if kind == "message":
            self._item_id = new_id("msg")
            yield self._added(message_item(self._item_id, "in_progress", []))
            yield self._event("response.content_part.added", **self._at(), content_index=0, part=text_part(""))
        else:
            self._item_id = new_id("rs")
            yield self._added(reasoning_item(self._item_id, None))
            yield self._event("response.reasoning_summary_part.added", **self._at(), summary_index=0,
                              part={"type": "summary_text", "text": ""})

    def _close(self, status: str = "completed") -> Iterator[bytes]:
        """Close the item being filled, if any."""
        kind, text = self._open, "".join(self._text)
        if kind == "message":
            part = text_part(text, self._searches)
            yield self._event("response.output_text.done", **self._at(), content_index=0, text=text, logprobs=[])
            yield self._event("response.content_part.done", **self._at(), content_index=0, part=part)
            yield self._done(message_item(self._item_id, status, [part]))
        elif kind == "reasoning":
            yield self._event("response.reasoning_summary_text.done", **self._at(), summary_index=0, text=text)
            yield self._event("response.reasoning_summary_part.done", **self._at(), summary_index=0,
                              part={"type": "summary_text", "text": text})
            yield self._done(reasoning_item(self._item_id, text, self._signature))
        self._open = None

    def _call(self, call: ToolCall) -> Iterator[bytes]:
        yield from self._close()
        self._calls += 1
        if self._calls > 1 and not self.shape.parallel:
            return  # parallel_tool_calls: false allows one call per answer
        custom = call.input is not None
        self._item_id = new_id("ctc" if custom else "fc")
        yield self._added(call_item(call, self._item_id, self.shape, done=False))
        event = "response.custom_tool_call_input" if custom else "response.function_call_arguments"
        raw = arguments_of(call)
        yield self._event(f"{event}.delta", **self._at(), delta=raw)
        yield self._event(f"{event}.done", **self._at(), **{"input" if custom else "arguments": raw})
        yield self._done(call_item(call, self._item_id, self.shape))

    # -- the end -----------------------------------------------------------------------
    def _finish(self, finish: Finish) -> Iterator[bytes]:
        status = status_of(finish)
        if self._open is None and not self._output:  # an empty answer is still one message
            yield from self._begin("message")
        yield from self._close(status)
        body = self.shape.body(status, self._output, self._usage, finish=finish)
        self._on_done(body)
        yield self._event(f"response.{status}", response=body)

    def _fail(self, error: GatewayError) -> Iterator[bytes]:
        yield from self._close("incomplete")
        body = self.shape.body("failed", self._output, self._usage, error=failure(error))
        yield self._event("response.failed", response=body)

    # -- frames ------------------------------------------------------------------------
    def _at(self) -> dict[str, Any]:
        return {"item_id": self._item_id, "output_index": len(self._output)}

    def _added(self, item: dict[str, Any]) -> bytes:
        return self._event("response.output_item.added", output_index=len(self._output), item=item)

    def _done(self, item: dict[str, Any]) -> bytes:
        frame = self._event("response.output_item.done", output_index=len(self._output), item=item)
        self._output.append(item)
        return frame

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return sse.event(data, kind)
