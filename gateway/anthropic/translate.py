"""Anthropic Messages ⇄ the neutral chat model.

In: a validated body becomes a :class:`ChatRequest`. Out: neutral events become the
exact Messages event sequence (``message_start``, per block ``content_block_start`` /
deltas / ``content_block_stop`` with contiguous indexes, ``message_delta``,
``message_stop``), or one ``message`` object. Reasoning is shown as a ``thinking`` block
only when the request enabled thinking.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, Literal, cast

from gateway import sse
from gateway.anthropic.errors import error_body
from gateway.chat.data_urls import DEFAULT_MIME
from gateway.errors import ModelNotFound
from gateway.parts import (
    ChatRequest,
    ChatResult,
    Effort,
    Event,
    Finish,
    Heartbeat,
    MediaPart,
    Message,
    ModelInfo,
    Part,
    ReasoningDelta,
    ReasoningPart,
    ReasoningSignature,
    ResponseFormat,
    SearchResults,
    StreamError,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
    effort_for_budget,
)

STOP_REASONS = {
    "stop": "end_turn",
    "stop_sequence": "stop_sequence",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
MODEL_CREATED_AT = "2025-01-01T00:00:00Z"  # a fixed date: the upstream gives none
#: ``output_config.effort`` words that are an effort (``default`` and others are not).
EFFORTS = ("low", "medium", "high", "xhigh", "max")
TOOL_CHOICES: dict[str, Literal["auto", "required", "none", "named"]] = {
    "auto": "auto", "any": "required", "none": "none", "tool": "named"}


# -- in --------------------------------------------------------------------------------
def to_chat_request(data: dict[str, Any]) -> ChatRequest:
    """A body validated by :class:`~gateway.anthropic.schemas.MessagesSchema`, as a chat."""
    messages = [_message(m) for m in data["messages"]]
    if data.get("system"):
        messages.insert(0, Message("system", tuple(_blocks(data["system"]))))
    tools = data.get("tools") or ()
    return ChatRequest(
        web_search=any((t.get("type") or "").startswith("web_search") for t in tools),
        model=data["model"],
        messages=tuple(messages),
        tools=tuple(_tool(t) for t in tools if t.get("type") in (None, "custom")),
        tool_choice=_tool_choice(data.get("tool_choice")),
        max_output_tokens=data.get("max_tokens"),
        stop=tuple(data.get("stop_sequences") or ()),
        response_format=_response_format(data.get("output_config")),
        conversation_id=(data.get("metadata") or {}).get("conversation_id"),
        reasoning_effort=_effort(data.get("thinking"), data.get("output_config")),
    )


def wants_thinking(data: dict[str, Any]) -> bool:
    thinking = data.get("thinking") or {}
    return thinking.get("type") in ("enabled", "adaptive")


def _message(message: dict[str, Any]) -> Message:
    parts = tuple(_blocks(message["content"]))
    if message["role"] == "user" and parts and all(isinstance(p, ToolResultPart) for p in parts):
        return Message("tool", parts)
    return Message(message["role"], parts)


def _blocks(content: str | list[dict[str, Any]]) -> Iterator[Part]:
    if isinstance(content, str):
        yield TextPart(content)
        return
    for block in content:
        part = _block(block)
        if part is not None:
            yield part


def _block(block: dict[str, Any]) -> Part | None:
    kind = block["type"]
    if kind == "text":
        return TextPart(block["text"], cache=bool(block.get("cache_control")))
    if kind == "thinking":
        text = block.get("thinking") or ""
        signature = block.get("signature") or None
        # The gateway's own stand-in signature is no upstream's: such thinking is not replayed.
        return ReasoningPart(text, None if signature == signature_for(text) else signature)
    if kind in ("image", "document"):
        return _media(block["source"], block.get("title"))
    if kind == "tool_use":
        return ToolCallPart(block["id"], block["name"], block["input"])
    if kind == "tool_result":
        return ToolResultPart(
            block["tool_use_id"], _result_text(block.get("content")), is_error=bool(block.get("is_error"))
        )
    return None  # redacted thinking, server tool blocks...: nothing to send upstream


def _result_text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(b["text"] for b in content or () if b["type"] == "text")


def _media(source: dict[str, Any], title: str | None) -> MediaPart:
    kind = source["type"]
    if kind == "base64":
        return MediaPart(source.get("media_type") or DEFAULT_MIME, data=source["data"], filename=title)
    if kind == "url":
        return MediaPart(DEFAULT_MIME, url=source["url"], filename=title)
    return MediaPart(source.get("media_type") or "text/plain", data=source["data"].encode(), filename=title)


def _tool(tool: dict[str, Any]) -> ToolSpec:
    return ToolSpec(tool["name"], tool.get("description") or "", tool.get("input_schema") or {})


def _tool_choice(choice: dict[str, Any] | None) -> ToolChoice:
    if not choice:
        return ToolChoice()
    return ToolChoice(TOOL_CHOICES[choice["type"]], choice.get("name"))


def _effort(thinking: dict[str, Any] | None, output_config: dict[str, Any] | None) -> Effort | None:
    """``output_config.effort`` as it is; else none for disabled thinking, else the
    thinking budget's size; adaptive (or nothing) leaves it to the model."""
    named = (output_config or {}).get("effort")
    if named in EFFORTS:
        return cast(Effort, named)
    thinking = thinking or {}
    if thinking.get("type") == "disabled":
        return "none"
    budget = thinking.get("budget_tokens")
    if thinking.get("type") == "enabled" and isinstance(budget, int):
        return effort_for_budget(budget)
    return None


def _response_format(output_config: dict[str, Any] | None) -> ResponseFormat:
    fmt = (output_config or {}).get("format")
    if fmt and fmt["type"] == "json_schema":
        return ResponseFormat("json", fmt.get("schema"))
    return ResponseFormat()


# -- out -------------------------------------------------------------------------------
def new_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def signature_for(thinking: str) -> str:
    """An opaque signature for a thinking block (clients echo it back; we ignore it)."""
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def message(result: ChatResult, model: str, thinking: bool) -> dict[str, Any]:
    """The non-stream ``message`` object."""
    content: list[dict[str, Any]] = []
    for search in result.searches:
        content += search_blocks(search)
    if thinking and result.reasoning:
        content.append({"type": "thinking", "thinking": result.reasoning,
                        "signature": result.reasoning_signature or signature_for(result.reasoning)})
    if result.text:
        content.append({"type": "text", "text": result.text})
    content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in result.tool_calls]
    return {
        "id": new_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_REASONS[result.finish.reason],
        "stop_sequence": result.finish.stop_sequence,
        "usage": usage(result.usage),
    }


def search_blocks(search: SearchResults) -> list[dict[str, Any]]:
    """A ``server_tool_use`` (the search) and its ``web_search_tool_result``."""
    use_id = f"srvtoolu_{uuid.uuid4().hex[:24]}"
    results = [{"type": "web_search_result", "url": s.url, "title": s.title,
                "encrypted_content": "", "page_age": None} for s in search.sources]
    return [
        {"type": "server_tool_use", "id": use_id, "name": "web_search", "input": {"query": search.query}},
        {"type": "web_search_tool_result", "tool_use_id": use_id, "content": results},
    ]


def usage(value: Usage) -> dict[str, int]:
    return {"input_tokens": value.input_tokens, "output_tokens": value.output_tokens}


def count_tokens(tokens: int) -> dict[str, int]:
    return {"input_tokens": tokens}


class EventStream:
    """Renders neutral events as the Messages stream, one block open at a time."""

    def __init__(self, model: str, input_tokens: int, thinking: bool) -> None:
        self.id = new_id()
        self.model = model
        self.input_tokens = input_tokens
        self.thinking = thinking
        self._index = -1
        self._open: str | None = None
        self._reasoning: list[str] = []
        self._signature: str | None = None  # the upstream's, for the open thinking block

    def frames(self, events: Iterable[Event]) -> Iterator[bytes]:
        yield self._event("message_start", {"message": self._start_message()})
        yield self._event("ping", {})
        final_usage = Usage(self.input_tokens, 0)
        for event in events:
            match event:
                case ReasoningDelta(text=text) if self.thinking:
                    yield from self._delta("thinking", {"type": "thinking_delta", "thinking": text})
                    self._reasoning.append(text)
                case ReasoningSignature(signature=signature) if self.thinking and self._open == "thinking":
                    self._signature = signature  # it ends the block: the next thinking is another
                    yield from self._close_block()
                case TextDelta(text=text) if text:
                    yield from self._delta("text", {"type": "text_delta", "text": text})
                case ToolCall():
                    yield from self._tool_use(event)
                case SearchResults():
                    yield from self._search(event)
                case Heartbeat():
                    yield self._event("ping", {})
                case Usage():
                    final_usage = event
                case Finish():
                    yield from self._close_block()
                    yield self._event("message_delta", {
                        "delta": {"stop_reason": STOP_REASONS[event.reason],
                                  "stop_sequence": event.stop_sequence},
                        "usage": {"input_tokens": final_usage.input_tokens,
                                  "output_tokens": final_usage.output_tokens},
                    })
                    yield self._event("message_stop", {})
                case StreamError(error=error):
                    yield from self._close_block()
                    yield sse.event(error_body(error), "error")
                    return

    def _start_message(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
        }

    def _delta(self, kind: str, delta: dict[str, Any]) -> Iterator[bytes]:
        if self._open != kind:
            yield from self._close_block()
            yield from self._open_block(kind)
        yield self._event("content_block_delta", {"index": self._index, "delta": delta})

    def _tool_use(self, call: ToolCall) -> Iterator[bytes]:
        """A whole tool_use block: start (empty input), the input as JSON, stop."""
        yield from self._close_block()
        yield from self._open_block("tool_use", {"type": "tool_use", "id": call.id, "name": call.name, "input": {}})
        partial = json.dumps(call.arguments, ensure_ascii=False)
        yield self._event("content_block_delta", {
            "index": self._index, "delta": {"type": "input_json_delta", "partial_json": partial}})
        yield from self._close_block()

    def _search(self, search: SearchResults) -> Iterator[bytes]:
        use, result = search_blocks(search)
        yield from self._close_block()
        yield from self._open_block("server_tool_use", {**use, "input": {}})
        yield self._event("content_block_delta", {"index": self._index, "delta": {
            "type": "input_json_delta", "partial_json": json.dumps(use["input"], ensure_ascii=False)}})
        yield from self._close_block()
        yield from self._open_block("web_search_tool_result", result)
        yield from self._close_block()

    def _open_block(self, kind: str, block: dict[str, Any] | None = None) -> Iterator[bytes]:
        self._index += 1
        self._open = kind
        if block is None:
            block = {"type": "text", "text": ""} if kind == "text" else {
                "type": "thinking", "thinking": "", "signature": ""}
        yield self._event("content_block_start", {"index": self._index, "content_block": block})

    def _close_block(self) -> Iterator[bytes]:
        if self._open is None:
            return
        if self._open == "thinking":
            signature = self._signature or signature_for("".join(self._reasoning))
            yield self._event("content_block_delta", {
                "index": self._index, "delta": {"type": "signature_delta", "signature": signature}})
            self._reasoning, self._signature = [], None
        yield self._event("content_block_stop", {"index": self._index})
        self._open = None

    @staticmethod
    def _event(name: str, data: dict[str, Any]) -> bytes:
        return sse.event({"type": name, **data}, name)


# -- models ----------------------------------------------------------------------------
def model_info(model_id: str, known: tuple[ModelInfo, ...]) -> dict[str, Any]:
    """One offered model; 404 for any other name."""
    model = next((m for m in known if m.id == model_id), None)
    if model is None:
        raise ModelNotFound(f"model: {model_id}")
    return _model(model)


def model_list(models: tuple[ModelInfo, ...]) -> dict[str, Any]:
    data = [_model(m) for m in models]
    return {"data": data, "has_more": False, "first_id": models[0].id, "last_id": models[-1].id}


def _model(model: ModelInfo) -> dict[str, Any]:
    info: dict[str, Any] = {"type": "model", "id": model.id, "display_name": model.label or model.id,
                            "created_at": MODEL_CREATED_AT}
    if model.context:
        info["max_input_tokens"] = model.context
    if model.output:
        info["max_tokens"] = model.output
    return info
