"""Gemini ``generateContent`` ⇄ the neutral chat model.

In: a validated (camelCase) body becomes a :class:`ChatRequest`. Out: neutral events
become ``GenerateContentResponse`` objects: one per delta when streaming (as SSE
``data:`` frames, or as the elements of one JSON array written progressively), the
last carrying ``finishReason`` and the final ``usageMetadata``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from gateway import sse
from gateway.chat.data_urls import DEFAULT_MIME
from gateway.errors import MethodNotAllowed, NotFound
from gateway.gemini.errors import error_body
from gateway.parts import (
    ChatRequest,
    ChatResult,
    Effort,
    Event,
    Finish,
    MediaPart,
    Message,
    ModelInfo,
    Part,
    ReasoningDelta,
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

THINKING_LEVELS: dict[str, Effort] = {"minimal": "low", "low": "low", "medium": "medium", "high": "high"}
#: Limits shown for a model name the gateway maps but does not know the limits of.
DEFAULT_INPUT_LIMIT = 1_000_000
DEFAULT_OUTPUT_LIMIT = 65_536
FINISH_REASONS = {
    "stop": "STOP",
    "stop_sequence": "STOP",
    "tool_calls": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}
#: functionCallingConfig.mode (as validated, upper case) -> neutral tool choice mode.
TOOL_MODES: dict[str, Literal["auto", "required", "none"]] = {
    "AUTO": "auto", "ANY": "required", "NONE": "none", "VALIDATED": "auto", "MODE_UNSPECIFIED": "auto"}
JSON_MIME = "application/json"
MODEL_PREFIX = "models/"
#: The methods of a model (``models/{model}:{method}``), each taken by a POST.
METHODS = ("generateContent", "streamGenerateContent", "countTokens")


# -- in --------------------------------------------------------------------------------
def model_name(raw: str) -> str:
    return raw.removeprefix(MODEL_PREFIX)


def to_chat_request(data: dict[str, Any], model: str) -> ChatRequest:
    """A body validated by :class:`~gateway.gemini.schemas.GenerateContentSchema`, as a chat."""
    config = data.get("generationConfig") or {}
    messages = [_message(c) for c in data["contents"]]
    if data.get("systemInstruction"):
        messages.insert(0, Message("system", tuple(_parts(data["systemInstruction"]["parts"]))))
    tools = data.get("tools") or ()
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        tools=tuple(_declarations(tools)),
        tool_choice=_tool_choice(data.get("toolConfig")),
        max_output_tokens=config.get("maxOutputTokens"),
        stop=tuple(config.get("stopSequences") or ()),
        response_format=_response_format(config),
        web_search=any("googleSearch" in t or "googleSearchRetrieval" in t for t in tools),
        reasoning_effort=_effort(config.get("thinkingConfig") or {}),
    )


def _effort(thinking: dict[str, Any]) -> Effort | None:
    """``thinkingLevel`` as it is; a ``thinkingBudget`` of 0 is none, -1 (dynamic) the
    model's choice, any other its size."""
    level = str(thinking.get("thinkingLevel") or "").lower()
    if level in THINKING_LEVELS:
        return THINKING_LEVELS[level]
    budget = thinking.get("thinkingBudget")
    if not isinstance(budget, int) or budget < 0:
        return None
    if budget == 0:
        return "none"
    return effort_for_budget(budget)


def to_count_request(data: dict[str, Any], model: str) -> ChatRequest:
    """A body validated by :class:`~gateway.gemini.schemas.CountTokensSchema`, as a chat."""
    inner = data.get("generateContentRequest") or {"contents": data["contents"]}
    return to_chat_request(inner, model)


def wants_thoughts(data: dict[str, Any]) -> bool:
    config = (data.get("generationConfig") or {}).get("thinkingConfig") or {}
    return bool(config.get("includeThoughts"))


def _message(content: dict[str, Any]) -> Message:
    parts = tuple(_parts(content["parts"]))
    if content["role"] == "model":
        return Message("assistant", parts)
    if parts and all(isinstance(p, ToolResultPart) for p in parts):
        return Message("tool", parts)
    return Message("user", parts)


def _parts(parts: list[dict[str, Any]]) -> Iterator[Part]:
    for part in parts:
        if "text" in part:
            if not part.get("thought"):  # earlier thoughts are not sent back upstream
                yield TextPart(part["text"])
        elif "inlineData" in part:
            blob = part["inlineData"]
            yield MediaPart(blob.get("mimeType") or DEFAULT_MIME, data=blob["data"])
        elif "fileData" in part:
            file = part["fileData"]
            yield MediaPart(file.get("mimeType") or DEFAULT_MIME, url=file["fileUri"])
        elif "functionCall" in part:
            call = part["functionCall"]
            yield ToolCallPart(call.get("id") or call["name"], call["name"], call["args"])
        elif "functionResponse" in part:
            result = part["functionResponse"]
            content = json.dumps(result.get("response"), ensure_ascii=False)
            yield ToolResultPart(result.get("id") or result["name"], content, name=result["name"])


def _declarations(tools: Iterable[dict[str, Any]]) -> Iterator[ToolSpec]:
    for tool in tools:
        for declaration in tool.get("functionDeclarations") or ():
            schema = declaration.get("parametersJsonSchema") or declaration.get("parameters") or {}
            yield ToolSpec(declaration["name"], declaration.get("description") or "", schema)


def _tool_choice(config: dict[str, Any] | None) -> ToolChoice:
    calling = (config or {}).get("functionCallingConfig") or {}
    mode = TOOL_MODES[calling.get("mode") or "AUTO"]
    allowed = calling.get("allowedFunctionNames") or []
    if mode == "required" and len(allowed) == 1:
        return ToolChoice("named", allowed[0])
    return ToolChoice(mode)


def _response_format(config: dict[str, Any]) -> ResponseFormat:
    if config.get("responseMimeType") != JSON_MIME:
        return ResponseFormat()
    return ResponseFormat("json", config.get("responseJsonSchema") or config.get("responseSchema"))


# -- out -------------------------------------------------------------------------------
def new_id() -> str:
    return uuid.uuid4().hex[:22]


def usage_metadata(value: Usage) -> dict[str, int]:
    metadata = {
        "promptTokenCount": value.input_tokens,
        "candidatesTokenCount": value.output_tokens - value.reasoning_tokens,
        "totalTokenCount": value.total_tokens,
    }
    if value.reasoning_tokens:
        metadata["thoughtsTokenCount"] = value.reasoning_tokens
    return metadata


def response(result: ChatResult, model: str, thoughts: bool) -> dict[str, Any]:
    """The non-stream ``GenerateContentResponse``."""
    parts: list[dict[str, Any]] = []
    if thoughts and result.reasoning:
        parts.append({"text": result.reasoning, "thought": True})
    if result.text or not result.tool_calls:
        parts.append({"text": result.text})
    parts += [_function_call(call) for call in result.tool_calls]
    candidate = {"content": {"role": "model", "parts": parts},
                 "finishReason": FINISH_REASONS[result.finish.reason], "index": 0}
    if result.searches:
        candidate["groundingMetadata"] = grounding(result.searches)
    return {"candidates": [candidate], "usageMetadata": usage_metadata(result.usage),
            "modelVersion": model, "responseId": new_id()}


def _function_call(call: ToolCall) -> dict[str, Any]:
    return {"functionCall": {"id": call.id, "name": call.name, "args": call.arguments}}


def grounding(searches: Iterable[SearchResults]) -> dict[str, Any]:
    searches = list(searches)
    return {
        "webSearchQueries": [s.query for s in searches],
        "groundingChunks": [{"web": {"uri": src.url, "title": src.title}} for s in searches for src in s.sources],
    }


def count_tokens(tokens: int) -> dict[str, int]:
    return {"totalTokens": tokens}


class ResponseStream:
    """Renders neutral events as a sequence of ``GenerateContentResponse`` objects."""

    def __init__(self, model: str, thoughts: bool) -> None:
        self.id = new_id()
        self.model = model
        self.thoughts = thoughts

    def objects(self, events: Iterable[Event]) -> Iterator[dict[str, Any]]:
        """One object per delta; an error becomes a final ``{"error": ...}`` object."""
        final_usage = Usage(0, 0)
        searches: list[SearchResults] = []
        for event in events:
            match event:
                case SearchResults():
                    searches.append(event)
                case TextDelta(text=text) if text:
                    yield self._chunk([{"text": text}])
                case ToolCall():
                    yield self._chunk([_function_call(event)])
                case ReasoningDelta(text=text) if self.thoughts:
                    yield self._chunk([{"text": text, "thought": True}])
                case Usage():
                    final_usage = event
                case Finish(reason=reason):
                    last = self._chunk([{"text": ""}], FINISH_REASONS[reason], final_usage)
                    if searches:
                        last["candidates"][0]["groundingMetadata"] = grounding(searches)
                    yield last
                case StreamError(error=error):
                    yield error_body(error)
                    return

    def sse_frames(self, events: Iterable[Event]) -> Iterator[bytes]:
        for item in self.objects(events):
            yield sse.event(item, ascii_only=True)

    def json_array(self, events: Iterable[Event]) -> Iterator[bytes]:
        """A JSON array written element by element as they come."""
        separator = "["
        for item in self.objects(events):
            yield f"{separator}{sse.dumps(item, ascii_only=True)}".encode()
            separator = ",\r\n"
        yield b"[]" if separator == "[" else b"]"

    def _chunk(self, parts: list[dict[str, Any]], finish: str | None = None,
               usage: Usage | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        body: dict[str, Any] = {"candidates": [candidate]}
        if usage is not None:
            body["usageMetadata"] = usage_metadata(usage)
        body.update(modelVersion=self.model, responseId=self.id)
        return body


# -- models ----------------------------------------------------------------------------
def model_info(model_id: str, known: tuple[ModelInfo, ...]) -> dict[str, Any]:
    """Any name is a model: gemini-cli asks for Google's names, and every name maps
    upstream (an offered model shows its own limits). A name with ``:`` is a method's URL
    (no model id contains one): 405 for a known method (it takes a POST), 404 for any other."""
    name = model_name(model_id)
    if ":" in name:
        method = name.rpartition(":")[2]
        if method in METHODS:
            raise MethodNotAllowed(f"'{method}' takes a POST.")
        raise NotFound(f"Unknown method '{method}'.")
    model = next((m for m in known if m.id == name), ModelInfo(name))
    return {
        "name": f"{MODEL_PREFIX}{name}",
        "version": "001",
        "displayName": model.label or name,
        "description": "MiniMax through MiniMax Free API (any model name maps upstream).",
        "inputTokenLimit": model.context or DEFAULT_INPUT_LIMIT,
        "outputTokenLimit": model.output or DEFAULT_OUTPUT_LIMIT,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    }


def model_list(models: tuple[ModelInfo, ...]) -> dict[str, Any]:
    return {"models": [model_info(m.id, models) for m in models]}
