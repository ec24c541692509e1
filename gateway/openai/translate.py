"""OpenAI Chat Completions ⇄ the neutral chat model.

In: a validated request body becomes a :class:`ChatRequest`. Out: neutral events become
``chat.completion.chunk`` frames (role chunk, deltas, finish chunk, optional usage chunk,
``[DONE]``) or one ``chat.completion`` object.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from gateway import sse
from gateway.chat.data_urls import DEFAULT_MIME, Inline
from gateway.errors import InvalidRequest, ModelNotFound
from gateway.openai.errors import error_body
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

#: ``reasoning_effort`` on the neutral scale (``minimal`` is the lowest effort that thinks).
REASONING_EFFORTS: dict[str, Effort] = {
    "none": "none", "minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh"}
FINISH_REASONS = {
    "stop": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}
SEARCH_SUFFIX = "-search"
MODEL_CREATED = 1_735_689_600  # 2025-01-01, a fixed date: the upstream gives none
MODEL_OWNER = "minimax"


# -- in --------------------------------------------------------------------------------
def to_chat_request(data: dict[str, Any]) -> ChatRequest:
    """A body validated by :class:`~gateway.openai.schemas.ChatCompletionSchema`, as a chat."""
    model: str = data["model"]
    return ChatRequest(
        model=model.removesuffix(SEARCH_SUFFIX),
        messages=tuple(_message(m) for m in data["messages"]),
        tools=tuple(_tool(t) for t in data.get("tools") or ()),
        tool_choice=_tool_choice(data.get("tool_choice")),
        max_output_tokens=data.get("max_completion_tokens") or data.get("max_tokens"),
        stop=data.get("stop") or (),
        response_format=_response_format(data.get("response_format")),
        web_search=model.endswith(SEARCH_SUFFIX) or data.get("web_search_options") is not None,
        conversation_id=(data.get("metadata") or {}).get("conversation_id"),
        reasoning_effort=REASONING_EFFORTS.get(data.get("reasoning_effort") or ""),
    )


def wants_usage(data: dict[str, Any]) -> bool:
    """Whether a stream ends with a usage chunk (``stream_options.include_usage``)."""
    options = data.get("stream_options") or {}
    return bool(options.get("include_usage"))


def _message(message: dict[str, Any]) -> Message:
    role = message["role"]
    parts = list(_content_parts(message.get("content")))
    if role == "assistant":
        if message.get("reasoning_content"):
            parts.insert(0, ReasoningPart(message["reasoning_content"]))
        parts += [_tool_call_part(call) for call in message.get("tool_calls") or ()]
        return Message("assistant", tuple(parts))
    if role in ("tool", "function"):
        text = "".join(p.text for p in parts if isinstance(p, TextPart))
        call_id = message.get("tool_call_id") or message.get("name") or ""
        return Message("tool", (ToolResultPart(call_id, text, message.get("name")),))
    return Message("system" if role == "developer" else role, tuple(parts))


def _content_parts(content: str | list[dict[str, Any]] | None) -> Iterator[Part]:
    if content is None:
        return
    if isinstance(content, str):
        yield TextPart(content)
        return
    for part in content:
        kind = part["type"]
        if kind in ("text", "refusal"):
            yield TextPart(part.get("text") or part.get("refusal") or "")
        elif kind == "image_url":
            yield _media(part["image_url"]["url"])
        elif kind == "file":
            file = part["file"]
            yield _media(file["file_data"], file.get("filename"))
        elif kind == "input_audio":
            audio = part["input_audio"]
            fmt = audio.get("format") or "mp3"
            yield MediaPart(f"audio/{fmt}", data=audio["data"], filename=f"audio.{fmt}")


def _media(source: str | Inline, filename: str | None = None) -> MediaPart:
    if isinstance(source, Inline):
        return MediaPart(source.mime_type, data=source.data, filename=filename)
    return MediaPart(DEFAULT_MIME, url=source, filename=filename)


def _tool_call_part(call: dict[str, Any]) -> ToolCallPart:
    function = call["function"]
    return ToolCallPart(call["id"], function["name"], function["arguments"])


def _tool(tool: dict[str, Any]) -> ToolSpec:
    function = tool["function"]
    return ToolSpec(function["name"], function["description"], function["parameters"])


def _tool_choice(choice: str | dict[str, Any] | None) -> ToolChoice:
    if choice is None or choice == "auto":
        return ToolChoice("auto")
    if choice == "none":
        return ToolChoice("none")
    if choice == "required":
        return ToolChoice("required")
    assert isinstance(choice, dict)
    return ToolChoice("named", choice["function"]["name"])


def _response_format(value: dict[str, Any] | None) -> ResponseFormat:
    if not value or value["type"] == "text":
        return ResponseFormat()
    schema = (value.get("json_schema") or {}).get("schema") if value["type"] == "json_schema" else None
    return ResponseFormat("json", schema)


# -- out -------------------------------------------------------------------------------
def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def completion(result: ChatResult, model: str) -> dict[str, Any]:
    """The non-stream ``chat.completion`` object."""
    content = result.text if (result.text or not result.tool_calls) else None
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if result.tool_calls:
        message["tool_calls"] = [_tool_call(call) for call in result.tool_calls]
    if result.searches:
        message["annotations"] = citations(result.searches, len(result.text))
    if result.reasoning:
        message["reasoning_content"] = result.reasoning
    return {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH_REASONS[result.finish.reason],
            }
        ],
        "usage": usage(result.usage),
    }


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}}


def citations(searches: Iterable[SearchResults], end: int) -> list[dict[str, Any]]:
    """``url_citation`` annotations for every source found (cited across the answer)."""
    return [
        {"type": "url_citation",
         "url_citation": {"url": s.url, "title": s.title, "start_index": 0, "end_index": end}}
        for search in searches for s in search.sources
    ]


def usage(value: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": value.input_tokens,
        "completion_tokens": value.output_tokens,
        "total_tokens": value.total_tokens,
        "completion_tokens_details": {"reasoning_tokens": value.reasoning_tokens},
    }


class ChunkStream:
    """Renders neutral events as the exact chunk sequence of the real API."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id = new_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self._calls = 0

    def frames(self, events: Iterable[Event]) -> Iterator[bytes]:
        yield self._chunk({"role": "assistant", "content": ""})
        final_usage: Usage | None = None
        for event in events:
            match event:
                case TextDelta(text=text):
                    yield self._chunk({"content": text})
                case ReasoningDelta(text=text):
                    yield self._chunk({"reasoning_content": text})
                case ToolCall():
                    yield from self._tool_call(event)
                case SearchResults():
                    yield self._chunk({"annotations": citations([event], 0)})
                case Heartbeat():
                    yield sse.comment("keep-alive")
                case Usage():
                    final_usage = event
                case Finish(reason=reason):
                    yield self._chunk({}, FINISH_REASONS[reason])
                case StreamError(error=error):
                    yield sse.event(error_body(error))
                    return
        if self.include_usage and final_usage is not None:
            yield sse.event(self._envelope([], usage(final_usage)))
        yield sse.event("[DONE]")

    def _tool_call(self, call: ToolCall) -> Iterator[bytes]:
        """First delta: index, id, type, name and empty arguments; then the arguments."""
        index, self._calls = self._calls, self._calls + 1
        head = {"index": index, "id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": ""}}
        yield self._chunk({"tool_calls": [head]})
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        yield self._chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return sse.event(self._envelope([choice], None))

    def _envelope(self, choices: list[dict[str, Any]], usage_value: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            body["usage"] = usage_value
        return body


# -- models ----------------------------------------------------------------------------
def model_info(model_id: str, known: tuple[ModelInfo, ...]) -> dict[str, Any]:
    """One offered model (its limits too, where known, as LiteLLM and others read them);
    404 for any other name."""
    model = next((m for m in known if m.id == model_id), None)
    if model is None:
        raise ModelNotFound(f"The model '{model_id}' does not exist.", param="model")
    return _model(model)


def model_list(models: tuple[ModelInfo, ...]) -> dict[str, Any]:
    return {"object": "list", "data": [_model(m) for m in models]}


def _model(model: ModelInfo) -> dict[str, Any]:
    info: dict[str, Any] = {"id": model.id, "object": "model", "created": MODEL_CREATED, "owned_by": MODEL_OWNER}
    if model.context:
        info["context_window"] = model.context
    if model.output:
        info["max_output_tokens"] = model.output
    return info


# -- audio -----------------------------------------------------------------------------
#: OpenAI voice names -> MiniMax voices, per model (MiniMax names pass straight through).
VOICES: dict[str, dict[str, str]] = {
    "tts-1": {"alloy": "male-botong", "echo": "Podcast_girl", "fable": "boyan_new_hailuo",
              "onyx": "female-shaonv", "nova": "YaeMiko_hailuo", "shimmer": "xiaoyi_mix_hailuo"},
    "tts-1-hd": {"alloy": "xiaomo_sft", "echo": "Leishen2_hailuo", "fable": "Zhongli_hailuo",
                 "onyx": "Paimeng_hailuo", "nova": "keli_hailuo", "shimmer": "Hutao_hailuo"},
}


#: What the upstream takes as a voice name (``female-shaonv``, ``Hutao_hailuo``).
MINIMAX_VOICE = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def minimax_voice(model: str, voice: str, overrides: dict[str, str]) -> str:
    """The MiniMax voice for an OpenAI (model, voice); overrides win, unknown names pass."""
    for key in (f"{model}:{voice}", voice):
        if key in overrides:
            return overrides[key]
    chosen = VOICES.get(model, VOICES["tts-1"]).get(voice, voice)
    if not MINIMAX_VOICE.fullmatch(chosen):  # the upstream refuses it (a 502 otherwise)
        raise InvalidRequest(f"Unknown voice '{voice}': use an OpenAI voice or a MiniMax voice name.",
                             param="voice")
    return chosen


def transcription(text: str, seconds: float, response_format: str, language: str) -> tuple[Any, str]:
    """The body (JSON-able object or text) and its MIME type for a transcription."""
    if response_format == "json":
        return {"text": text}, "application/json"
    if response_format == "verbose_json":
        segments = [{"id": 0, "seek": 0, "start": 0.0, "end": round(seconds, 3), "text": text,
                     "tokens": [], "temperature": 0.0, "avg_logprob": 0.0,
                     "compression_ratio": 1.0, "no_speech_prob": 0.0}] if text else []
        return {"task": "transcribe", "language": language or "unknown",
                "duration": round(seconds, 3), "text": text, "segments": segments}, "application/json"
    if response_format == "srt":
        body = f"1\n00:00:00,000 --> {_timestamp(seconds, ',')}\n{text}\n\n" if text else ""
        return body, "text/plain"
    if response_format == "vtt":
        cue = f"00:00:00.000 --> {_timestamp(seconds, '.')}\n{text}\n\n" if text else ""
        return f"WEBVTT\n\n{cue}", "text/vtt"
    return text, "text/plain"


def _timestamp(seconds: float, separator: str) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"
