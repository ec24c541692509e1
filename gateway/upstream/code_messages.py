"""The MiniMax Code surface's wire format: Anthropic Messages (``shared/UPSTREAM-CODE.md`` §2).

Two translations, both pure: :func:`request_body` turns the neutral conversation
(:mod:`gateway.parts`) into the upstream's Messages body, and :class:`EventReader` turns
the upstream's stream events into neutral events. This is the *upstream's* wire format,
owned by the upstream package; the gateway's own Anthropic dialect
(:mod:`gateway.anthropic`) is a separate translation that never goes through this one.

The rules the page pins and the upstream enforces with a 400 (2013) are applied here so
the gateway never sends what is known to be refused: images only as base64 blocks, every
tool result of an assistant turn in one user message, no ``disabled`` thinking on the
models that require thinking, no unsigned thinking replayed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.errors import InvalidRequest, UpstreamBadAnswer
from gateway.parts import (
    ChatRequest,
    Effort,
    Event,
    Finish,
    FinishReason,
    Heartbeat,
    MediaPart,
    Message,
    Part,
    ReasoningDelta,
    ReasoningPart,
    ReasoningSignature,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
)

#: Models whose thinking cannot be switched off (``thinking_config.mode: forced_on``);
#: matched by prefix. ``disabled`` on them is a 400 (2013), so ``adaptive`` is sent.
ADAPTIVE_ONLY_PREFIXES: Final = ("MiniMax-M3.1",)
#: Models whose thinking is switchable: omitted means no thinking, so it is asked for.
SWITCHABLE_PREFIXES: Final = ("MiniMax-M3",)
#: ``output_config.effort`` values the upstream takes (page §2).
EFFORTS: Final = ("low", "medium", "high", "xhigh", "max")
#: Media types the upstream accepts as inline image blocks.
IMAGE_TYPES: Final = ("image/png", "image/jpeg", "image/gif", "image/webp")
#: Documents the gateway can hand over as text (the upstream takes no document block).
TEXT_DOCUMENT_TYPES: Final = ("text/", "application/json", "application/xml", "application/x-yaml")
#: Page §2 limits, from the official model catalogue: per inline image, attachments per
#: request, and the whole body (the strictest delivery channel refuses ~16-18 MB).
MAX_IMAGE_BYTES: Final = 10 * 1024 * 1024
MAX_ATTACHMENTS: Final = 4
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
#: What a custom (freeform) tool takes on the code surface: its raw text as one string.
CUSTOM_INPUT_SCHEMA: Final = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
#: ``max_tokens`` when the client gives none (the official client sends 128000).
DEFAULT_MAX_TOKENS: Final = 128000
STOP_REASONS: Final[Mapping[str, FinishReason]] = {
    "end_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "stop_sequence": "stop_sequence",
    "refusal": "content_filter",
}


# -- neutral → upstream ---------------------------------------------------------------------
def request_body(request: ChatRequest, model: str, system_extra: str = "") -> dict[str, Any]:
    """The Messages body for ``request`` on ``model`` (always streamed).

    ``system_extra`` is appended to the system text (the JSON-mode instruction). Raises
    :class:`InvalidRequest` for what the upstream is known to refuse (page §2 limits).
    """
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_output_tokens or DEFAULT_MAX_TOKENS,
        "stream": True,
        "messages": _messages(request.messages),
    }
    system = _system(request.messages, system_extra)
    if system:
        body["system"] = system
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
        body["tool_choice"] = _tool_choice(request.tool_choice)
    body.update(_thinking(model, request.reasoning_effort))
    _check_attachments(body["messages"])
    return body


def _tool(tool: ToolSpec) -> dict[str, Any]:
    """A tool definition; a custom (freeform) tool becomes one taking its raw text as ``input``
    (the upstream has function tools only), its grammar told in the description."""
    if tool.kind != "custom":
        return {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
    grammar = f"\n\nThe input must follow this grammar:\n{tool.grammar}" if tool.grammar else ""
    return {"name": tool.name, "description": tool.description + grammar, "input_schema": CUSTOM_INPUT_SCHEMA}


def _system(messages: Sequence[Message], extra: str) -> list[dict[str, Any]]:
    blocks = [_text_block(part) for message in messages if message.role == "system"
              for part in message.parts if isinstance(part, TextPart) and part.text]
    if extra:
        blocks.append({"type": "text", "text": extra})
    return blocks


def _messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """User and assistant turns; tool results join the user turn that follows the calls,
    and consecutive turns of one role merge (the upstream wants them alternating)."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = [block for part in message.parts for block in _blocks(part, role)]
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:  # tool results first in their user turn, as the upstream pairs them
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return turns


def _blocks(part: Part, role: str) -> Iterator[dict[str, Any]]:
    match part:
        case TextPart(text=text) if text:
            yield _text_block(part)
        case ReasoningPart(text=text, signature=signature) if role == "assistant" and signature:
            # Unsigned (or foreign) thinking cannot be replayed: it is dropped (page §2).
            yield {"type": "thinking", "thinking": text, "signature": signature}
        case ToolCallPart(id=call_id, name=name, arguments=arguments, input=raw):
            given = arguments if raw is None else {"input": raw}  # a custom tool's raw text
            yield {"type": "tool_use", "id": call_id, "name": name, "input": given}
        case ToolResultPart():
            yield _tool_result(part)
        case MediaPart():
            yield _media_block(part)


def _text_block(part: TextPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache:
        block["cache_control"] = {"type": "ephemeral"}  # no ttl: the page says 1h is refused
    return block


def _tool_result(part: ToolResultPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.call_id, "content": part.content}
    if part.is_error:
        block["is_error"] = True
    return block


def _media_block(part: MediaPart) -> dict[str, Any]:
    if part.data is None:  # the chat core inlines fetched URLs before a native turn
        raise InvalidRequest("An attachment could not be read.")
    mime = part.mime_type.lower()
    if mime in IMAGE_TYPES:
        if len(part.data) > MAX_IMAGE_BYTES:
            raise InvalidRequest(f"An image is larger than MiniMax Code takes ({MAX_IMAGE_BYTES // 2**20} MiB).",
                                 param="messages")
        return {"type": "image", "source": {"type": "base64", "media_type": mime,
                                            "data": base64.b64encode(part.data).decode()}}
    if mime.startswith(TEXT_DOCUMENT_TYPES):
        text = part.data.decode("utf-8", errors="replace")
        return {"type": "text", "text": f"<document name=\"{part.filename or 'document'}\">\n{text}\n</document>"}
    raise InvalidRequest(f"MiniMax Code takes images ({', '.join(IMAGE_TYPES)}) and text documents, "
                         f"not {part.mime_type}.", param="messages")


def _check_attachments(turns: list[dict[str, Any]]) -> None:
    images = sum(1 for turn in turns for block in turn["content"] if block["type"] == "image")
    if images > MAX_ATTACHMENTS:
        raise InvalidRequest(f"MiniMax Code takes at most {MAX_ATTACHMENTS} images per request; "
                             f"this one has {images}.", param="messages")


def _tool_choice(choice: ToolChoice) -> dict[str, Any]:
    if choice.mode == "required":
        return {"type": "any"}
    if choice.mode == "named":
        return {"type": "tool", "name": choice.name}
    if choice.mode == "none":
        return {"type": "none"}  # [assumed]: the page lists auto/any/tool as passed through
    return {"type": "auto"}


def _thinking(model: str, effort: Effort | None) -> dict[str, Any]:
    """``thinking`` and ``output_config.effort`` per the page's thinking table."""
    fields: dict[str, Any] = {}
    if model.startswith(ADAPTIVE_ONLY_PREFIXES):
        fields["thinking"] = {"type": "adaptive"}  # never disabled: a 400 on these models
    elif model.startswith(SWITCHABLE_PREFIXES):
        fields["thinking"] = {"type": "disabled" if effort == "none" else "adaptive"}
    if effort in EFFORTS and "thinking" in fields and fields["thinking"]["type"] == "adaptive":
        fields["output_config"] = {"effort": effort}
    return fields


def encoded(body: dict[str, Any]) -> bytes:
    """The body as sent; refused up front when over the upstream's body limit."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    if len(data) > MAX_BODY_BYTES:
        raise InvalidRequest(f"The request is larger than MiniMax Code takes ({MAX_BODY_BYTES // 2**20} MiB).",
                             param="messages")
    return data


def count_body(body: dict[str, Any]) -> dict[str, Any]:
    """The count_tokens body of a Messages body (no max_tokens, stream or output config)."""
    return {k: v for k, v in body.items() if k not in ("max_tokens", "stream", "output_config", "stop_sequences")}


# -- upstream → neutral ---------------------------------------------------------------------
@dataclass
class _Block:
    kind: str
    tool_id: str = ""
    tool_name: str = ""
    parts: list[str] = field(default_factory=list)
    signature: str = ""


@dataclass
class EventReader:
    """Reads one answer's stream events (by ``data.type``: relays may drop ``event:``);
    a call of one of the ``custom`` tools comes out with its raw ``input``."""

    custom: frozenset[str] = frozenset()
    blocks: dict[int, _Block] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    finished: bool = False

    def read(self, data: Mapping[str, Any]) -> Iterator[Event]:
        kind = data.get("type")
        if kind == "message_start":
            self._note_usage((data.get("message") or {}).get("usage"))
        elif kind == "content_block_start":
            yield from self._start(data)
        elif kind == "content_block_delta":
            yield from self._delta(data)
        elif kind == "content_block_stop":
            yield from self._stop(data)
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            self.stop_reason = str(delta.get("stop_reason") or self.stop_reason)
            self.stop_sequence = delta.get("stop_sequence") or self.stop_sequence
            self._note_usage(data.get("usage"))
        elif kind == "message_stop":
            yield from self.finish()
        elif kind == "ping":
            yield Heartbeat()

    def finish(self) -> Iterator[Event]:
        self.finished = True
        thinking = self.usage.get("thinking_tokens", 0)
        yield Usage(self.usage.get("input_tokens", 0), self.usage.get("output_tokens", 0), thinking)
        reason = STOP_REASONS.get(self.stop_reason, "stop")
        yield Finish(reason, self.stop_sequence if reason == "stop_sequence" else None)

    def _start(self, data: Mapping[str, Any]) -> Iterator[Event]:
        block = data.get("content_block") or {}
        kind = str(block.get("type") or "")
        self.blocks[_index(data)] = _Block(kind, str(block.get("id") or ""), str(block.get("name") or ""))
        if kind == "text" and block.get("text"):
            yield TextDelta(str(block["text"]))

    def _delta(self, data: Mapping[str, Any]) -> Iterator[Event]:
        delta = data.get("delta") or {}
        block = self.blocks.get(_index(data))
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            yield TextDelta(str(delta["text"]))
        elif kind == "thinking_delta" and delta.get("thinking"):
            yield ReasoningDelta(str(delta["thinking"]))
        elif kind == "signature_delta" and block is not None:
            block.signature += str(delta.get("signature") or "")  # never shown as text
        elif kind == "input_json_delta" and block is not None:
            block.parts.append(str(delta.get("partial_json") or ""))

    def _stop(self, data: Mapping[str, Any]) -> Iterator[Event]:
        block = self.blocks.pop(_index(data), None)
        if block is None:
            return
        if block.kind == "thinking" and block.signature:
            yield ReasoningSignature(block.signature)
        elif block.kind == "tool_use":
            arguments = _arguments("".join(block.parts))
            if block.tool_name in self.custom:
                yield ToolCall(block.tool_id, block.tool_name, {}, str(arguments.get("input", "")))
            else:
                yield ToolCall(block.tool_id, block.tool_name, arguments)

    def _note_usage(self, usage: object) -> None:
        """Keep the last non-zero value of each counter: ``message_start`` often says 0
        input tokens, the real count comes with ``message_delta`` (page §2)."""
        if not isinstance(usage, dict):
            return
        details = usage.get("output_tokens_details")
        values = {**usage, **(details if isinstance(details, dict) else {})}
        for name in ("input_tokens", "output_tokens", "thinking_tokens"):
            value = values.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                self.usage[name] = value


def _index(data: Mapping[str, Any]) -> int:
    index = data.get("index")
    return index if isinstance(index, int) else 0


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        raise UpstreamBadAnswer("MiniMax sent a tool call whose input is not valid JSON.") from None
    if not isinstance(value, dict):
        raise UpstreamBadAnswer("MiniMax sent a tool call whose input is not a JSON object.")
    return value
