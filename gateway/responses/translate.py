"""The Responses API ⇄ the neutral chat model.

In: ``instructions`` and the input items (after those of the stored response a request
continues) become a :class:`ChatRequest`: ``system``/``developer`` messages as system
text, calls and their outputs as tool calls and results, a ``namespace`` tool group as
its tools named ``namespace.tool``, a hosted web search tool as the upstream's search.
Out: a finished answer becomes one ``response`` object, built from the same output items
as the stream of :mod:`gateway.responses.stream`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from gateway.chat.data_urls import DEFAULT_MIME, Inline
from gateway.parts import (
    ChatRequest,
    ChatResult,
    Finish,
    MediaPart,
    Message,
    ModelInfo,
    Part,
    ReasoningPart,
    ResponseFormat,
    SearchResults,
    TextPart,
    ToolCall,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from gateway.responses.schemas import WEB_SEARCH_TYPES

#: Joins a namespace and the name of one of its tools into the flat name the model sees.
NAMESPACE_SEPARATOR = "."
#: Marks an ``encrypted_content`` as the upstream's signature given out by this gateway:
#: another provider's (a client that switched) is never sent upstream as a signature.
SIGNATURE_PREFIX = "minimax-signature:"
#: ``reasoning.summary`` values that ask for no summary.
NO_SUMMARY = (None, "none")
#: Finish reasons that cut the answer short -> ``incomplete_details.reason``.
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
#: Request fields a response echoes as they were sent (``None`` when absent).
ECHOED = ("instructions", "max_output_tokens", "previous_response_id", "temperature", "top_p")


# -- in --------------------------------------------------------------------------------
def to_chat_request(data: dict[str, Any], history: Iterable[dict[str, Any]] = ()) -> ChatRequest:
    """A body validated by :class:`~gateway.responses.schemas.ResponsesSchema`, after the
    (validated) items of the response it continues, as a chat."""
    tools = data.get("tools") or ()
    messages = [Message("system", (TextPart(data["instructions"]),))] if data.get("instructions") else []
    messages += fold_items([*history, *input_items(data.get("input"))])
    return ChatRequest(
        model=data["model"],
        messages=tuple(messages),
        tools=tuple(_specs(tools)),
        tool_choice=_tool_choice(data.get("tool_choice")),
        max_output_tokens=data.get("max_output_tokens"),
        response_format=_response_format((data.get("text") or {}).get("format")),
        web_search=(search := any(_searches(tool) for tool in tools)),
        web_search_optional=search,  # a hosted tool: where no surface searches, it is ignored
        conversation_id=(data.get("metadata") or {}).get("conversation_id"),
    )


def input_items(value: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """``input`` as a list of items (a string is one user message)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return value


def fold_items(items: Iterable[dict[str, Any]]) -> list[Message]:
    """Items as messages: calls and reasoning join the assistant turn they belong to."""
    messages: list[Message] = []
    names: dict[str, str] = {}  # call id -> tool name, for the results
    for item in items:
        kind = item["type"]
        if kind == "message":
            _append(messages, _message(item))
        elif kind in ("function_call", "custom_tool_call"):
            call = _call_part(item)
            names[call.id] = call.name
            _append(messages, Message("assistant", (call,)))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            result = ToolResultPart(item["call_id"], _text(item["output"]), names.get(item["call_id"]))
            messages.append(Message("tool", (result,)))
        elif kind == "reasoning":
            summary = "".join(s["text"] for s in [*item["summary"], *(item.get("content") or ())])
            if summary:  # replayed to the upstream only when it carries the upstream's signature
                _append(messages, Message("assistant", (ReasoningPart(summary, _signature(item)),)))
    return messages


def _signature(item: dict[str, Any]) -> str | None:
    """The upstream's signature a reasoning item carries back, if it is one this gateway gave."""
    content = item.get("encrypted_content") or ""
    return content.removeprefix(SIGNATURE_PREFIX) if content.startswith(SIGNATURE_PREFIX) else None


def _append(messages: list[Message], message: Message) -> None:
    """Adds ``message``, merged into the last one when both are the assistant's."""
    if message.role == "assistant" and messages and messages[-1].role == "assistant":
        messages[-1] = Message("assistant", (*messages[-1].parts, *message.parts))
    else:
        messages.append(message)


def _message(item: dict[str, Any]) -> Message:
    role = item["role"]
    parts = tuple(_parts(item["content"]))
    return Message("system" if role == "developer" else role, parts)


def _parts(content: str | list[dict[str, Any]]) -> Iterator[Part]:
    if isinstance(content, str):
        yield TextPart(content)
        return
    for part in content:
        kind = part["type"]
        if kind in ("input_text", "output_text", "text"):
            yield TextPart(part["text"])
        elif kind == "refusal":
            yield TextPart(part["refusal"])
        elif kind == "input_image":
            yield _media(part["image_url"])
        elif kind == "input_file":
            yield _media(part.get("file_data") or part["file_url"], part.get("filename"))


def _media(source: str | Inline, filename: str | None = None) -> MediaPart:
    if isinstance(source, Inline):
        return MediaPart(source.mime_type, data=source.data, filename=filename)
    return MediaPart(DEFAULT_MIME, url=source, filename=filename)


def _text(content: str | list[dict[str, Any]]) -> str:
    return "".join(p.text for p in _parts(content) if isinstance(p, TextPart))


def _call_part(item: dict[str, Any]) -> ToolCallPart:
    name = flat_name(item.get("namespace"), item["name"])
    if item["type"] == "custom_tool_call":
        return ToolCallPart(item["call_id"], name, {}, item["input"])
    return ToolCallPart(item["call_id"], name, item["arguments"])


def flat_name(namespace: str | None, name: str) -> str:
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name


def _specs(tools: Iterable[dict[str, Any]], namespace: str | None = None) -> Iterator[ToolSpec]:
    for tool in tools:
        kind = tool["type"]
        if kind == "namespace":
            yield from _specs(tool["tools"], tool["name"])
        elif kind == "function":
            yield ToolSpec(flat_name(namespace, tool["name"]), tool.get("description") or "",
                           tool.get("parameters") or {})
        elif kind == "custom":
            yield ToolSpec(flat_name(namespace, tool["name"]), tool.get("description") or "", {},
                           kind="custom", grammar=_grammar(tool.get("format")))


def _grammar(fmt: dict[str, Any] | None) -> str | None:
    if not fmt or fmt.get("type") != "grammar" or not fmt.get("definition"):
        return None
    return f"{fmt.get('syntax') or 'grammar'} grammar:\n{fmt['definition']}"


def _searches(tool: dict[str, Any]) -> bool:
    """A hosted web search tool, unless it forbids live access (Codex's cached-only mode)."""
    return tool["type"] in WEB_SEARCH_TYPES and tool.get("external_web_access") is not False


def namespaces(tools: Iterable[dict[str, Any]] | None) -> frozenset[str]:
    return frozenset(tool["name"] for tool in tools or () if tool["type"] == "namespace")


def _tool_choice(choice: str | dict[str, Any] | None) -> ToolChoice:
    if choice in (None, "auto"):
        return ToolChoice("auto")
    if choice in ("none", "required"):
        return ToolChoice("none" if choice == "none" else "required")
    assert isinstance(choice, dict)
    if choice["type"] in ("function", "custom"):
        return ToolChoice("named", flat_name(choice.get("namespace"), choice["name"]))
    if choice["type"] == "allowed_tools" and choice.get("mode") == "required":
        return ToolChoice("required")
    return ToolChoice("auto")  # a hosted tool, or allowed_tools in auto mode


def _response_format(fmt: dict[str, Any] | None) -> ResponseFormat:
    if not fmt or fmt["type"] == "text":
        return ResponseFormat()
    return ResponseFormat("json", fmt.get("schema") if fmt["type"] == "json_schema" else None)


# -- out -------------------------------------------------------------------------------
def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Shape:
    """What a response echoes of its request, and how its output is rendered."""

    id: str
    created_at: int
    model: str
    echoed: dict[str, Any]
    namespaces: frozenset[str]
    summary: bool  # reasoning is shown, as a summary
    parallel: bool  # more than one call per answer

    @classmethod
    def of(cls, data: dict[str, Any], raw: dict[str, Any]) -> Shape:
        """``data`` validated, ``raw`` as sent (tools and tool choice are echoed as sent)."""
        reasoning = data.get("reasoning") or {}
        fmt = (data.get("text") or {}).get("format") or {"type": "text"}
        echoed = {name: data.get(name) for name in ECHOED}
        echoed.update({
            "parallel_tool_calls": data.get("parallel_tool_calls") is not False,
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "store": data.get("store") is not False,
            "text": {"format": {k: v for k, v in fmt.items() if k != "strict"}},
            "tool_choice": raw.get("tool_choice") or "auto",
            "tools": raw.get("tools") or [],
            "metadata": raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {},
            "truncation": "disabled",
        })
        return cls(new_id("resp"), int(time.time()), data["model"], echoed, namespaces(data.get("tools")),
                   reasoning.get("summary") not in NO_SUMMARY, data.get("parallel_tool_calls") is not False)

    def body(self, status: str, output: list[dict[str, Any]], usage_value: Usage | None = None,
             error: dict[str, str] | None = None, finish: Finish | None = None) -> dict[str, Any]:
        """The ``response`` object in ``status``."""
        cut = INCOMPLETE_REASONS.get(finish.reason) if finish is not None else None
        return {
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "model": self.model, "output": output, "error": error,
            "incomplete_details": {"reason": cut} if cut else None,
            "usage": usage(usage_value) if usage_value is not None else None,
            **self.echoed,
        }


def status_of(finish: Finish) -> str:
    return "incomplete" if finish.reason in INCOMPLETE_REASONS else "completed"


def usage(value: Usage) -> dict[str, Any]:
    return {
        "input_tokens": value.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": value.output_tokens,
        "output_tokens_details": {"reasoning_tokens": value.reasoning_tokens},
        "total_tokens": value.total_tokens,
    }


def text_part(text: str, searches: Iterable[SearchResults] = ()) -> dict[str, Any]:
    annotations = [{"type": "url_citation", "url": s.url, "title": s.title, "start_index": 0,
                    "end_index": len(text)} for search in searches for s in search.sources]
    return {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}


def message_item(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def reasoning_item(item_id: str, text: str | None, signature: str | None = None) -> dict[str, Any]:
    """A reasoning item; the upstream's signature of the reasoning, when it signs it (the
    code surface), rides as ``encrypted_content`` so that the reasoning can be replayed."""
    summary = [] if text is None else [{"type": "summary_text", "text": text}]
    item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": summary}
    if signature:
        item["encrypted_content"] = SIGNATURE_PREFIX + signature
    return item


def call_item(call: ToolCall, item_id: str, shape: Shape, done: bool = True) -> dict[str, Any]:
    """A ``function_call`` or (for a raw input) ``custom_tool_call`` item; empty until ``done``."""
    namespace, separator, name = call.name.partition(NAMESPACE_SEPARATOR)
    if not separator or namespace not in shape.namespaces:
        namespace, name = "", call.name
    item: dict[str, Any] = {"id": item_id, "call_id": call.id, "name": name}
    if call.input is not None:
        item.update(type="custom_tool_call", input=call.input if done else "")
    else:
        arguments = json.dumps(call.arguments, ensure_ascii=False) if done else ""
        item.update(type="function_call", arguments=arguments, status="completed" if done else "in_progress")
    if namespace:
        item["namespace"] = namespace
    return item


def arguments_of(call: ToolCall) -> str:
    """What a call's delta events carry: the raw input, or the arguments as JSON."""
    return call.input if call.input is not None else json.dumps(call.arguments, ensure_ascii=False)


def response(result: ChatResult, shape: Shape) -> dict[str, Any]:
    """The non-stream ``response`` object of a whole answer."""
    output: list[dict[str, Any]] = []
    if shape.summary and result.reasoning:
        output.append(reasoning_item(new_id("rs"), result.reasoning, result.reasoning_signature))
    status = status_of(result.finish)
    if result.text or not result.tool_calls:
        output.append(message_item(new_id("msg"), status, [text_part(result.text, result.searches)]))
    calls = result.tool_calls if shape.parallel else result.tool_calls[:1]
    output += [call_item(call, new_id("fc" if call.input is None else "ctc"), shape) for call in calls]
    return shape.body(status, output, result.usage, finish=result.finish)


# -- models ----------------------------------------------------------------------------
#: What Codex is told about every model (its ``/models`` catalogue, asked for with
#: ``?client_version=``): run commands with ``exec_command``, edit with the freeform
#: ``apply_patch`` tool. The instructions are the gateway's own, short on purpose: every
#: turn re-sends them through a web chat.
CODEX_INSTRUCTIONS = (
    "You are a coding agent working in the user's workspace through the tools you are given. "
    "Run shell commands with `exec_command` to inspect files and run programs. Edit files with the "
    "`apply_patch` tool: its input is the patch text itself (*** Begin Patch ... *** End Patch), never JSON. "
    "Work until the task is done, then reply with a short summary of what you did and found."
)
REASONING_LEVELS = (
    ("low", "Quicker answers (MiniMax decides how long it thinks)"),
    ("medium", "Balanced (MiniMax decides how long it thinks)"),
    ("high", "Thorough answers (MiniMax decides how long it thinks)"),
)
#: Codex truncates each tool output it sends back to this many tokens.
TOOL_OUTPUT_TOKENS = 10_000


def model_catalog(models: tuple[ModelInfo, ...], context_window: int) -> dict[str, Any]:
    """Codex's model catalogue (``{"models": [ModelInfo]}``), in the advertised order; a
    model's own context window where known, else ``context_window``."""
    return {"models": [_codex_model(model.id, priority, model.context or context_window)
                       for priority, model in enumerate(models)]}


def _codex_model(model: str, priority: int, context_window: int) -> dict[str, Any]:
    return {
        "slug": model, "display_name": model, "description": f"{model} through the MiniMax Free API gateway",
        "default_reasoning_level": "medium",
        "supported_reasoning_levels": [{"effort": e, "description": d} for e, d in REASONING_LEVELS],
        "shell_type": "unified_exec", "visibility": "list", "supported_in_api": True, "priority": priority,
        "upgrade": None, "base_instructions": CODEX_INSTRUCTIONS, "supports_reasoning_summaries": True,
        "support_verbosity": False, "default_verbosity": None, "apply_patch_tool_type": "freeform",
        "truncation_policy": {"mode": "tokens", "limit": TOOL_OUTPUT_TOKENS},
        "supports_parallel_tool_calls": True, "context_window": context_window,
        "experimental_supported_tools": [], "input_modalities": ["text", "image"],
    }
