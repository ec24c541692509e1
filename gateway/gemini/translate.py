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
from typing import Any

from gateway import sse
from gateway.chat.model import (
    ChatRequest,
    ChatResult,
    Event,
    Finish,
    MediaPart,
    Message,
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
)
from gateway.chat.media import decode_base64
from gateway.errors import InvalidRequest
from gateway.gemini.errors import error_body

FINISH_REASONS = {
    "stop": "STOP",
    "stop_sequence": "STOP",
    "tool_calls": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}
TOOL_MODES = {"AUTO": "auto", "ANY": "required", "NONE": "none", "VALIDATED": "auto"}
JSON_MIME = "application/json"
MODEL_PREFIX = "models/"


# -- in --------------------------------------------------------------------------------
def model_name(raw: str) -> str:
    return raw.removeprefix(MODEL_PREFIX)


def to_chat_request(data: dict[str, Any], model: str) -> ChatRequest:
    config = data.get("generationConfig") or {}
    messages = [_message(c, i) for i, c in enumerate(data["contents"])]
    if data.get("systemInstruction"):
        parts = tuple(_parts(data["systemInstruction"]["parts"], "systemInstruction.parts"))
        messages.insert(0, Message("system", parts))
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        tools=tuple(_declarations(data.get("tools") or ())),
        tool_choice=_tool_choice(data.get("toolConfig")),
        max_output_tokens=config.get("maxOutputTokens"),
        stop=tuple(config.get("stopSequences") or ()),
        response_format=_response_format(config),
        web_search=any("googleSearch" in t or "googleSearchRetrieval" in t for t in data.get("tools") or ()),
    )


def wants_thoughts(data: dict[str, Any]) -> bool:
    config = (data.get("generationConfig") or {}).get("thinkingConfig") or {}
    return bool(config.get("includeThoughts"))


def _message(content: dict[str, Any], index: int) -> Message:
    parts = tuple(_parts(content["parts"], f"contents.{index}.parts"))
    if content["role"] == "model":
        return Message("assistant", parts)
    if parts and all(isinstance(p, ToolResultPart) for p in parts):
        return Message("tool", parts)
    return Message("user", parts)


def _parts(parts: list[dict[str, Any]], path: str) -> Iterator[Part]:
    for index, part in enumerate(parts):
        where = f"{path}.{index}"
        if "text" in part:
            if not part.get("thought"):  # earlier thoughts are not sent back upstream
                yield TextPart(part["text"])
        elif "inlineData" in part:
            yield _inline(part["inlineData"], where)
        elif "fileData" in part:
            data = part["fileData"] if isinstance(part["fileData"], dict) else {}
            if not isinstance(data.get("fileUri"), str):
                raise InvalidRequest("fileData needs a 'fileUri'.", param=f"{where}.fileData")
            yield MediaPart(str(data.get("mimeType") or "application/octet-stream"), url=data["fileUri"])
        elif "functionCall" in part:
            yield _call(part["functionCall"], where)
        elif "functionResponse" in part:
            yield _response(part["functionResponse"], where)


def _inline(value: Any, path: str) -> MediaPart:
    if not isinstance(value, dict) or not isinstance(value.get("data"), str):
        raise InvalidRequest("inlineData needs base64 'data'.", param=f"{path}.inlineData")
    data = decode_base64(value["data"], f"{path}.inlineData.data")
    return MediaPart(str(value.get("mimeType") or "application/octet-stream"), data=data)


def _call(value: Any, path: str) -> ToolCallPart:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise InvalidRequest("functionCall needs a 'name'.", param=f"{path}.functionCall")
    args = value.get("args")
    return ToolCallPart(str(value.get("id") or value["name"]), value["name"], args if isinstance(args, dict) else {})


def _response(value: Any, path: str) -> ToolResultPart:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise InvalidRequest("functionResponse needs a 'name'.", param=f"{path}.functionResponse")
    content = json.dumps(value.get("response", {}), ensure_ascii=False)
    return ToolResultPart(str(value.get("id") or value["name"]), content, name=value["name"])


def _declarations(tools: Iterable[dict[str, Any]]) -> Iterator[ToolSpec]:
    for tool in tools:
        for declaration in tool.get("functionDeclarations") or ():
            schema = declaration.get("parametersJsonSchema") or declaration.get("parameters") or {}
            yield ToolSpec(str(declaration.get("name", "")), str(declaration.get("description") or ""), schema)


def _tool_choice(config: dict[str, Any] | None) -> ToolChoice:
    calling = (config or {}).get("functionCallingConfig") or {}
    mode = TOOL_MODES.get(str(calling.get("mode") or "AUTO").upper(), "auto")
    allowed = calling.get("allowedFunctionNames") or []
    if mode == "required" and len(allowed) == 1:
        return ToolChoice("named", allowed[0])
    return ToolChoice(mode)  # type: ignore[arg-type]


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



def model_info(model: str) -> dict[str, Any]:
    return {
        "name": f"{MODEL_PREFIX}{model}",
        "version": "001",
        "displayName": model,
        "description": "MiniMax Agent through MiniMax Free API (any model name maps upstream).",
        "inputTokenLimit": 1_000_000,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    }


def model_list(models: Iterable[str]) -> dict[str, Any]:
    return {"models": [model_info(m) for m in models]}
