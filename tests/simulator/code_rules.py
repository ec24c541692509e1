"""The strict reading of a MiniMax Code /messages (or count_tokens) body, per the page §2.

Role: turn the raw JSON into a `MessagesRequest` or raise `CodeReject` with the answer
the page gives (400 invalid_request_error … (2013) for invalid params). Pure: no clock,
no state. What is checked, each with its reason name (counted in code_stats):
- JSON object; `model` one of the catalogue's ids (unknown_model); `max_tokens` an
  integer 1..128000, required on /messages (max_tokens); `messages` a non-empty list
  of user/assistant messages, the first a user one (first_not_user);
- content blocks: text, image (base64 source only, png/jpeg/gif/webp, at most 10 MiB
  decoded, at most 4 per request), tool_use (assistant), tool_result (user), thinking
  and redacted_thinking (assistant). `image_url` answers the page's exact
  `unsupported content type 'image_url' (2013)`; `document` and any other type the
  same form (unsupported_content);
- thinking blocks without a signature are dropped silently (the page: replaying
  unsigned thinking is not supported; drop it) and counted (unsigned_thinking_dropped);
- tool turns: an assistant message with N tool_use blocks must be followed by ONE user
  message carrying all N tool_result blocks; a missing, split, late or unknown result
  is refused (tool_pairing);
- thinking per the page's table: `disabled` on MiniMax-M3.1* is refused with the page's
  exact text (thinking_disabled); [conflict on the page] an omitted thinking on M3.1* is
  refused too unless code_config(m31_thinking_omitted="accept") (thinking_missing);
  M3 thinks only when asked (adaptive or enabled); M2.7* always think.
- `output_config.effort` one of default|low|medium|high|xhigh|max, `tool_choice.type`
  one of auto|any|tool|none, `tools[]` with a name and an input_schema object,
  `stop_sequences` a list of non-empty strings.
Unknown top-level fields are tolerated and listed (`MessagesRequest.extra_fields`).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from tests.simulator.code_shapes import (
    ADAPTIVE_PREFIX,
    IMAGE_MEDIA_TYPES,
    MAX_ATTACHMENTS,
    MAX_IMAGE_BYTES,
    MODEL_OUTPUT_LIMIT,
    MODELS,
    SWITCHABLE,
    adaptive_required,
    input_tokens,
    invalid_params,
    thinking_mode,
)

KNOWN_FIELDS: frozenset[str] = frozenset({
    "model", "messages", "max_tokens", "stream", "system", "temperature", "top_p", "top_k",
    "stop_sequences", "tools", "tool_choice", "thinking", "output_config", "metadata",
    "cache_control", "context_management",
})
THINKING_TYPES: tuple[str, ...] = ("adaptive", "disabled", "enabled")
EFFORTS: tuple[str, ...] = ("default", "low", "medium", "high", "xhigh", "max")
TOOL_CHOICES: tuple[str, ...] = ("auto", "any", "tool", "none")
USER_BLOCKS: tuple[str, ...] = ("text", "image", "tool_result")
ASSISTANT_BLOCKS: tuple[str, ...] = ("text", "tool_use", "thinking", "redacted_thinking")
OMITTED_ACCEPT: str = "accept"
OMITTED_REFUSE: str = "refuse"


class CodeReject(Exception):
    """A refused call: HTTP status, the JSON body to answer, the reason counted."""

    def __init__(self, status: int, body: dict[str, Any], reason: str) -> None:
        super().__init__(reason)
        self.status, self.body, self.reason = status, body, reason


def _bad(reason: str, detail: str, prefix: bool = True) -> CodeReject:
    body = invalid_params(detail)
    if not prefix:  # the page quotes some 2013 texts without the "invalid params, " lead
        body["error"]["message"] = body["error"]["message"].removeprefix("invalid params, ")
    return CodeReject(400, body, reason)


@dataclass
class MessagesRequest:
    """A /messages body that passed every rule."""

    body: dict[str, Any]
    model: str
    stream: bool
    max_tokens: int
    thinks: bool
    prompt: str
    input_tokens: int
    unsigned_thinking_dropped: int = 0
    images: int = 0
    extra_fields: list[str] = field(default_factory=list)
    stop_sequences: tuple[str, ...] = ()


# --- Blocks ------------------------------------------------------------------------------------

def _check_image(block: dict[str, Any]) -> None:
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") != "base64":
        raise _bad("image_source", "image source must be {type: base64, media_type, data}")
    if source.get("media_type") not in IMAGE_MEDIA_TYPES:
        raise _bad("image_media_type", f"image media_type must be one of {IMAGE_MEDIA_TYPES}")
    data = source.get("data")
    try:
        raw = base64.b64decode(data, validate=True) if isinstance(data, str) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None:
        raise _bad("image_data", "image data must be bare base64")
    if len(raw) > MAX_IMAGE_BYTES:
        raise _bad("image_too_large", f"image exceeds {MAX_IMAGE_BYTES} bytes")


def _unsupported(kind: Any) -> CodeReject:
    return _bad("unsupported_content", f"unsupported content type '{kind}'", prefix=False)


def _check_tool_result(block: dict[str, Any], counts: dict[str, int]) -> None:
    if not isinstance(block.get("tool_use_id"), str):
        raise _bad("tool_result_shape", "tool_result needs a tool_use_id")
    content = block.get("content", "")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad("tool_result_shape", "tool_result content must be a string or a list")
    for inner in content:
        kind = inner.get("type") if isinstance(inner, dict) else None
        if kind not in ("text", "image"):
            raise _unsupported(kind)
        if kind == "image":
            _check_image(inner)
            counts["images"] += 1


def _check_block(role: str, block: Any, counts: dict[str, int]) -> bool:
    """Validate one block; False means drop it (unsigned thinking)."""
    if not isinstance(block, dict):
        raise _bad("block_shape", "each content block must be an object")
    kind = block.get("type")
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    if kind not in allowed:
        if kind in USER_BLOCKS + ASSISTANT_BLOCKS:
            raise _bad("block_role", f"a {kind} block cannot be in a {role} message")
        raise _unsupported(kind)
    if kind == "text" and not isinstance(block.get("text"), str):
        raise _bad("block_shape", "text block needs a string text")
    if kind == "image":
        _check_image(block)
        counts["images"] += 1
    if kind == "tool_use" and not (isinstance(block.get("id"), str)
                                   and isinstance(block.get("name"), str)
                                   and isinstance(block.get("input"), dict)):
        raise _bad("tool_use_shape", "tool_use needs id, name and an input object")
    if kind == "tool_result":
        _check_tool_result(block, counts)
    if kind == "thinking" and not block.get("signature"):
        counts["unsigned"] += 1
        return False
    return True


def _blocks(message: dict[str, Any]) -> list[Any]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _bad("message_shape", "message content must be a string or a list")
    return content


# --- Messages and tool pairing -------------------------------------------------------------------

def _check_messages(raw: Any, counts: dict[str, int]) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise _bad("messages", "messages must be a non-empty list")
    cleaned = []
    for message in raw:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _bad("message_shape", "each message needs role user or assistant")
        blocks = [block for block in _blocks(message)
                  if _check_block(message["role"], block, counts)]
        cleaned.append({**message, "content": blocks})
    if cleaned[0]["role"] != "user":
        raise _bad("first_not_user", "the first message must be a user message")
    if counts["images"] > MAX_ATTACHMENTS:
        raise _bad("too_many_attachments", f"at most {MAX_ATTACHMENTS} attachments per request")
    _check_pairing(cleaned)
    return cleaned


def _ids(message: dict[str, Any], kind: str, key: str) -> list[str]:
    return [block[key] for block in message["content"] if block.get("type") == kind]


def _check_pairing(messages: list[dict[str, Any]]) -> None:
    pending: list[str] = []
    for message in messages:
        results = _ids(message, "tool_result", "tool_use_id") if message["role"] == "user" else []
        if pending and (message["role"] != "user" or sorted(results) != sorted(pending)):
            raise _bad("tool_pairing", "tool_use ids were found without tool_result blocks "
                       f"immediately after: {', '.join(pending)}")
        if results and not pending:
            raise _bad("tool_pairing", "unexpected tool_use_id found in tool_result blocks: "
                       f"{results[0]}; each tool_result must follow its tool_use")
        pending = _ids(message, "tool_use", "id") if message["role"] == "assistant" else []
    if pending:
        raise _bad("tool_pairing", "tool_use ids were found without tool_result blocks "
                   f"immediately after: {', '.join(pending)}")


# --- Top-level fields ----------------------------------------------------------------------------

def _check_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model not in MODELS:
        raise _bad("unknown_model", f"unknown model '{model}'")
    return str(model)


def _check_max_tokens(body: dict[str, Any], required: bool) -> int:
    value = body.get("max_tokens")
    if value is None and not required:
        return MODEL_OUTPUT_LIMIT
    if type(value) is not int or not 1 <= value <= MODEL_OUTPUT_LIMIT:
        raise _bad("max_tokens", f"max_tokens must be an integer 1..{MODEL_OUTPUT_LIMIT}")
    return value


def _thinking_type(body: dict[str, Any]) -> str | None:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict) or thinking.get("type") not in THINKING_TYPES:
        raise _bad("thinking_shape", f"thinking.type must be one of {THINKING_TYPES}")
    return str(thinking["type"])


def _thinks(model: str, given: str | None, omitted_policy: str) -> bool:
    if model.startswith(ADAPTIVE_PREFIX):
        if given == "disabled":
            raise _bad("thinking_disabled", adaptive_required(model, "disabled"))
        if given is None and omitted_policy == OMITTED_REFUSE:
            raise _bad("thinking_missing", adaptive_required(model, "missing"))
        return True
    if thinking_mode(model) == SWITCHABLE:
        return given in ("adaptive", "enabled")
    return True  # forced_on (M2.7*): a disabled thinking is silently ignored


def _check_options(body: dict[str, Any]) -> None:
    effort = (body.get("output_config") or {}).get("effort")
    if effort is not None and effort not in EFFORTS:
        raise _bad("effort", f"output_config.effort must be one of {EFFORTS}")
    choice = body.get("tool_choice")
    if choice is not None and (not isinstance(choice, dict)
                               or choice.get("type") not in TOOL_CHOICES):
        raise _bad("tool_choice", f"tool_choice.type must be one of {TOOL_CHOICES}")
    stops = body.get("stop_sequences", [])
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise _bad("stop_sequences", "stop_sequences must be a list of non-empty strings")
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise _bad("system", "system must be a string or a list of text blocks")
    tools = body.get("tools", [])
    if not isinstance(tools, list) or not all(
            isinstance(tool, dict) and isinstance(tool.get("name"), str)
            and isinstance(tool.get("input_schema"), dict) for tool in tools):
        raise _bad("tools", "each tool needs a name and an input_schema object")


def _prompt(messages: list[dict[str, Any]]) -> str:
    """The last user message's text (its tool results' text when it has none)."""
    last = next(m for m in reversed(messages) if m["role"] == "user")
    texts = [b["text"] for b in last["content"] if b.get("type") == "text"]
    if not texts:
        for block in last["content"]:
            content = block.get("content", "")
            texts += [content] if isinstance(content, str) else [
                inner.get("text", "") for inner in content if inner.get("type") == "text"]
    return "\n".join(texts)


def parse_messages(body: Any, count_only: bool = False,
                   omitted_policy: str = OMITTED_REFUSE) -> MessagesRequest:
    """The checked request, or CodeReject; `count_only` for count_tokens (no max_tokens)."""
    if not isinstance(body, dict):
        raise _bad("malformed_body", "body must be a JSON object")
    model = _check_model(body)
    max_tokens = _check_max_tokens(body, required=not count_only)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad("stream", "stream must be a boolean")
    counts = {"images": 0, "unsigned": 0}
    messages = _check_messages(body.get("messages"), counts)
    _check_options(body)
    thinks = _thinks(model, _thinking_type(body), OMITTED_ACCEPT if count_only else omitted_policy)
    cleaned = {**body, "messages": messages}
    return MessagesRequest(cleaned, model, stream, max_tokens, thinks, _prompt(messages),
                           input_tokens(cleaned), counts["unsigned"], counts["images"],
                           sorted(set(body) - KNOWN_FIELDS), tuple(body.get("stop_sequences", [])))
