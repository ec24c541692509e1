"""Folding a neutral chat history into the single prompt the upstream accepts.

Each request starts a new upstream chat, so the whole history travels in one text:
a lone user message goes as it is; anything longer becomes a labelled transcript. Past
``max_chars`` the oldest turns are dropped first; system messages and the last message
are always kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from gateway.chat.tools import render_calls, render_result
from gateway.errors import InvalidRequest, PromptTooLong
from gateway.parts import (
    MediaPart,
    Message,
    Part,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)

LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
TRANSCRIPT_PREFACE = (
    "Below is a conversation transcript. Reply to the last User message as the "
    "Assistant, following any System instructions. Reply with the answer only, without "
    "a role label."
)
TURN_SEPARATOR = "\n\n"
JSON_INSTRUCTION = (
    "Reply with one valid JSON value only: no prose before or after it, no Markdown "
    "code fences."
)

PartRenderer = Callable[[Part], str]


def render_part(part: Part) -> str:
    """Default rendering of one part inside the transcript."""
    match part:
        case TextPart(text=text):
            return text
        case ToolResultPart():
            return render_result(part)
        case MediaPart(filename=filename, mime_type=mime):
            return f"[attached file: {filename or mime}]"
    return ""  # reasoning is never sent back upstream; calls are rendered together


def render_body(message: Message, renderer: PartRenderer = render_part) -> str:
    """A message's parts as text, its tool calls as one block in the calling convention."""
    texts = [text for text in (renderer(p) for p in message.parts) if text]
    calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
    if calls:
        texts.append(render_calls(calls))
    return "\n".join(texts)


def render_message(message: Message, renderer: PartRenderer = render_part) -> str:
    return f"[{LABELS[message.role]}]\n{render_body(message, renderer)}"


def fold(
    messages: Sequence[Message],
    max_chars: int,
    renderer: PartRenderer = render_part,
    preface: str = TRANSCRIPT_PREFACE,
) -> str:
    """The upstream prompt for ``messages``, within ``max_chars``."""
    if not messages:
        raise InvalidRequest("At least one message is required.", param="messages")
    if len(messages) == 1 and messages[0].role == "user":
        return _within(render_body(messages[0], renderer), max_chars)
    blocks = [render_message(m, renderer) for m in messages]
    keep = _kept_indexes(messages, blocks, max_chars - len(preface) - len(TURN_SEPARATOR))
    return TURN_SEPARATOR.join([preface, *(blocks[i] for i in keep)])


def _kept_indexes(messages: Sequence[Message], blocks: list[str], budget: int) -> list[int]:
    """Indexes of the blocks to send: pinned ones plus the newest turns that fit."""
    last = len(messages) - 1
    pinned = {i for i, m in enumerate(messages) if m.role == "system"} | {last}
    used = sum(len(blocks[i]) + len(TURN_SEPARATOR) for i in pinned)
    if used > budget:
        raise PromptTooLong(
            "The system prompt and last message alone exceed the prompt size limit "
            "(GATEWAY_PROMPT_MAX_CHARS).",
            param="messages",
        )
    kept = set(pinned)
    for index in range(last - 1, -1, -1):
        if index in pinned:
            continue
        cost = len(blocks[index]) + len(TURN_SEPARATOR)
        if used + cost > budget:
            break
        kept.add(index)
        used += cost
    return sorted(kept)


def _within(text: str, max_chars: int) -> str:
    if len(text) > max_chars:
        raise PromptTooLong(
            "The message exceeds the prompt size limit (GATEWAY_PROMPT_MAX_CHARS).",
            param="messages",
        )
    return text


def json_instruction(schema: dict[str, Any] | None) -> str:
    """The instruction appended to the prompt in JSON mode."""
    if not schema:
        return JSON_INSTRUCTION
    return f"{JSON_INSTRUCTION} It must conform to this JSON Schema:\n{json.dumps(schema, ensure_ascii=False)}"
