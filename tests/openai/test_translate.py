"""OpenAI Chat Completions translation, both ways, without a server.

In: a body goes through the view's own path (``web.load`` with the schema, then
``translate.to_chat_request``) and the neutral request is compared whole.
Out: neutral events go through ``ChunkStream.frames`` and the chunk sequence is checked
against the real API's rules (../shared/CLIENTS.md).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway import web
from gateway.errors import InvalidRequest, UpstreamError, UpstreamUnavailable
from gateway.openai import translate
from gateway.openai.schemas import ChatCompletionSchema
from gateway.parts import (
    ChatRequest,
    ChatResult,
    Finish,
    Heartbeat,
    MediaPart,
    Message,
    ReasoningDelta,
    ReasoningPart,
    ResponseFormat,
    SearchResults,
    Source,
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
from tests.wire import Frame, parse_frames

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
PNG_B64 = base64.b64encode(PNG).decode()
PDF = b"%PDF-1.4 tiny"
WAV = b"RIFF\x00\x00\x00\x00WAVEfmt "
USER = {"role": "user", "content": "Hi"}
WEATHER_PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def translated(body: dict[str, Any]) -> ChatRequest:
    """What the chat-completions view hands the chat service for this body."""
    return translate.to_chat_request(web.load(ChatCompletionSchema, body))


def body(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "minimax-m2", "messages": list(messages or [USER]), **fields}


def user(*parts: Any) -> Message:
    return Message("user", tuple(parts))


# -- in --------------------------------------------------------------------------------
MESSAGE_CASES = [
    ("string content", [USER], (user(TextPart("Hi")),)),
    ("system and developer become system",
     [{"role": "system", "content": "Be brief."}, {"role": "developer", "content": "Use French."}, USER],
     (Message("system", (TextPart("Be brief."),)), Message("system", (TextPart("Use French."),)), user(TextPart("Hi")))),
    ("text parts", [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
     (user(TextPart("a"), TextPart("b")),)),
    ("image as a data URL",
     [{"role": "user", "content": [{"type": "text", "text": "What is it?"},
                                   {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}", "detail": "low"}}]}],
     (user(TextPart("What is it?"), MediaPart("image/png", data=PNG)),)),
    ("image as a remote URL",
     [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}],
     (user(MediaPart("application/octet-stream", url="https://example.com/cat.png")),)),
    ("file as a data URL, with its filename",
     [{"role": "user", "content": [{"type": "file", "file": {"file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode(), "filename": "a.pdf"}}]}],
     (user(MediaPart("application/pdf", data=PDF, filename="a.pdf")),)),
    ("file as bare base64",
     [{"role": "user", "content": [{"type": "file", "file": {"file_data": base64.b64encode(PDF).decode()}}]}],
     (user(MediaPart("application/octet-stream", data=PDF)),)),
    ("input audio",
     [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": base64.b64encode(WAV).decode(), "format": "wav"}}]}],
     (user(MediaPart("audio/wav", data=WAV, filename="audio.wav")),)),
    ("assistant tool calls and earlier reasoning",
     [USER, {"role": "assistant", "content": None, "reasoning_content": "thinking...",
             "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]}],
     (user(TextPart("Hi")),
      Message("assistant", (ReasoningPart("thinking..."), ToolCallPart("call_1", "weather", {"city": "Oslo"}))))),
    ("assistant call with empty arguments",
     [USER, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "now", "arguments": ""}}]}],
     (user(TextPart("Hi")), Message("assistant", (ToolCallPart("c", "now", {}),)))),
    ("tool result",
     [USER, {"role": "tool", "tool_call_id": "call_1", "content": "12 °C"}],
     (user(TextPart("Hi")), Message("tool", (ToolResultPart("call_1", "12 °C"),)))),
    ("tool result as text parts",
     [USER, {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "12 "}, {"type": "text", "text": "°C"}]}],
     (user(TextPart("Hi")), Message("tool", (ToolResultPart("call_1", "12 °C"),)))),
    ("legacy function result is keyed by name",
     [USER, {"role": "function", "name": "weather", "content": "sunny"}],
     (user(TextPart("Hi")), Message("tool", (ToolResultPart("weather", "sunny", "weather"),)))),
]


@pytest.mark.parametrize(("messages", "expected"), [c[1:] for c in MESSAGE_CASES], ids=[c[0] for c in MESSAGE_CASES])
def test_messages_translate(messages: list[dict[str, Any]], expected: tuple[Message, ...]) -> None:
    assert translated(body(*messages)).messages == expected


DEFAULTS = ChatRequest("minimax-m2", (user(TextPart("Hi")),))
OPTION_CASES = [
    ("nothing set", {}, DEFAULTS),
    ("max_tokens", {"max_tokens": 50}, ChatRequest("minimax-m2", DEFAULTS.messages, max_output_tokens=50)),
    ("max_completion_tokens wins over max_tokens", {"max_tokens": 50, "max_completion_tokens": 20},
     ChatRequest("minimax-m2", DEFAULTS.messages, max_output_tokens=20)),
    ("stop as a string", {"stop": "END"}, ChatRequest("minimax-m2", DEFAULTS.messages, stop=("END",))),
    ("stop as a list", {"stop": ["a", "b"]}, ChatRequest("minimax-m2", DEFAULTS.messages, stop=("a", "b"))),
    ("stop null", {"stop": None}, DEFAULTS),
    ("response_format text", {"response_format": {"type": "text"}}, DEFAULTS),
    ("response_format json_object", {"response_format": {"type": "json_object"}},
     ChatRequest("minimax-m2", DEFAULTS.messages, response_format=ResponseFormat("json"))),
    ("response_format json_schema",
     {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}},
     ChatRequest("minimax-m2", DEFAULTS.messages, response_format=ResponseFormat("json", {"type": "object"}))),
    ("tools and auto choice",
     {"tools": [{"type": "function", "function": {"name": "weather", "description": "Weather", "parameters": WEATHER_PARAMS}}]},
     ChatRequest("minimax-m2", DEFAULTS.messages, tools=(ToolSpec("weather", "Weather", WEATHER_PARAMS),))),
    ("tool without description or parameters",
     {"tools": [{"type": "function", "function": {"name": "now"}}], "tool_choice": "required"},
     ChatRequest("minimax-m2", DEFAULTS.messages, tools=(ToolSpec("now", "", {}),), tool_choice=ToolChoice("required"))),
    ("tool_choice none", {"tool_choice": "none"}, ChatRequest("minimax-m2", DEFAULTS.messages, tool_choice=ToolChoice("none"))),
    ("tool_choice auto", {"tool_choice": "auto"}, DEFAULTS),
    ("tool_choice named",
     {"tool_choice": {"type": "function", "function": {"name": "weather"}}},
     ChatRequest("minimax-m2", DEFAULTS.messages, tool_choice=ToolChoice("named", "weather"))),
    ("-search model suffix", {"model": "minimax-m2-search"}, ChatRequest("minimax-m2", DEFAULTS.messages, web_search=True)),
    ("web_search_options", {"web_search_options": {}}, ChatRequest("minimax-m2", DEFAULTS.messages, web_search=True)),
    ("sampling knobs are ignored", {"temperature": 0.2, "top_p": 0.9, "seed": 1, "user": "u", "n": 1}, DEFAULTS),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES])
def test_options_translate(fields: dict[str, Any], expected: ChatRequest) -> None:
    assert translated(body(**fields)) == expected


INVALID_CASES = [
    ("no messages", {"model": "m", "messages": []}),
    ("no model", {"messages": [USER]}),
    ("n above 1", body(n=2)),
    ("max_tokens zero", body(max_tokens=0)),
    ("unknown role", body({"role": "robot", "content": "x"})),
    ("data URL that is not base64", body({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}]})),
    ("data URL with broken base64", body({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]})),
    ("image part without a url", body({"role": "user", "content": [{"type": "image_url", "image_url": {}}]})),
    ("tool call arguments that are not JSON",
     body(USER, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]})),
    ("unknown tool_choice", body(tool_choice="sometimes")),
]


@pytest.mark.parametrize("data", [c[1] for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES])
def test_invalid_bodies_raise_invalid_request(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        translated(data)


# -- out: the stream -------------------------------------------------------------------
CALL = ToolCall("call_abc", "weather", {"city": "Zürich"})
CALL2 = ToolCall("call_def", "time", {})
SEARCH = SearchResults("news", (Source("https://a.example", "A"), Source("https://b.example", "B")))


def render(events: list[Any], include_usage: bool = False) -> list[Frame]:
    return parse_frames(translate.ChunkStream("minimax-m2", include_usage).frames(iter(events)))


def summary(frame: Frame) -> Any:
    """One frame as a short token: what the client sees, without the envelope."""
    if frame.comment is not None:
        return ("comment", frame.comment)
    if frame.data == "[DONE]":
        return "[DONE]"
    if "error" in frame.data:
        return ("error", frame.data["error"]["type"])
    if not frame.data["choices"]:
        return ("usage", frame.data["usage"]["total_tokens"])
    choice = frame.data["choices"][0]
    if choice["finish_reason"] is not None:
        assert choice["delta"] == {}
        return ("finish", choice["finish_reason"])
    delta = choice["delta"]
    if delta == {"role": "assistant", "content": ""}:
        return "role"
    (key, value), = delta.items()
    if key == "tool_calls":
        (call,) = value
        if "id" in call:
            return ("call", call["index"], call["id"], call["type"], call["function"]["name"], call["function"]["arguments"])
        assert set(call) == {"index", "function"} and set(call["function"]) == {"arguments"}
        return ("args", call["index"], json.loads(call["function"]["arguments"]))
    if key == "annotations":
        return ("annotations", [a["url_citation"]["url"] for a in value])
    return (key, value)


STREAM_CASES = [
    ("text", [TextDelta("Hel"), TextDelta("lo"), Finish("stop")], False,
     ["role", ("content", "Hel"), ("content", "lo"), ("finish", "stop"), "[DONE]"]),
    ("reasoning then text", [ReasoningDelta("hmm"), TextDelta("ok"), Finish("stop")], False,
     ["role", ("reasoning_content", "hmm"), ("content", "ok"), ("finish", "stop"), "[DONE]"]),
    ("two tool calls", [TextDelta("Let me check."), CALL, CALL2, Finish("tool_calls")], False,
     ["role", ("content", "Let me check."),
      ("call", 0, "call_abc", "function", "weather", ""), ("args", 0, {"city": "Zürich"}),
      ("call", 1, "call_def", "function", "time", ""), ("args", 1, {}),
      ("finish", "tool_calls"), "[DONE]"]),
    ("stop sequence reports stop", [TextDelta("a"), Finish("stop_sequence", "END")], False,
     ["role", ("content", "a"), ("finish", "stop"), "[DONE]"]),
    ("length", [TextDelta("a"), Finish("length")], False, ["role", ("content", "a"), ("finish", "length"), "[DONE]"]),
    ("content filter", [Finish("content_filter")], False, ["role", ("finish", "content_filter"), "[DONE]"]),
    ("heartbeat is a comment", [Heartbeat(), TextDelta("a"), Finish("stop")], False,
     ["role", ("comment", "keep-alive"), ("content", "a"), ("finish", "stop"), "[DONE]"]),
    ("search results become annotations", [SEARCH, TextDelta("a"), Finish("stop")], False,
     ["role", ("annotations", ["https://a.example", "https://b.example"]), ("content", "a"), ("finish", "stop"), "[DONE]"]),
    ("usage chunk after the finish when asked", [TextDelta("a"), Usage(3, 2), Finish("stop")], True,
     ["role", ("content", "a"), ("finish", "stop"), ("usage", 5), "[DONE]"]),
    ("no usage chunk unless asked", [TextDelta("a"), Usage(3, 2), Finish("stop")], False,
     ["role", ("content", "a"), ("finish", "stop"), "[DONE]"]),
    ("error mid-stream ends it", [TextDelta("par"), StreamError(UpstreamUnavailable())], True,
     ["role", ("content", "par"), ("error", "server_error")]),
    ("error before any text", [StreamError(UpstreamError("boom"))], False, ["role", ("error", "server_error")]),
]


@pytest.mark.parametrize(("events", "include_usage", "expected"), [c[1:] for c in STREAM_CASES], ids=[c[0] for c in STREAM_CASES])
def test_stream_frames(events: list[Any], include_usage: bool, expected: list[Any]) -> None:
    frames = render(events, include_usage)
    assert [summary(f) for f in frames] == expected
    chunks = [f.data for f in frames if isinstance(f.data, dict) and "choices" in f.data]
    assert all(f.event is None for f in frames), "OpenAI frames carry no event: line"
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "minimax-m2" for c in chunks)
    assert chunks[0]["id"].startswith("chatcmpl-")
    for chunk in chunks:
        if include_usage:
            assert chunk["usage"] is None or chunk["choices"] == [], "only the usage chunk carries usage"
        else:
            assert "usage" not in chunk


def test_usage_chunk_shape() -> None:
    frames = render([TextDelta("a"), Usage(10, 4, 3), Finish("stop")], include_usage=True)
    usage_chunk = frames[-2].data
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                                    "completion_tokens_details": {"reasoning_tokens": 3}}


def test_error_frame_is_an_openai_error_body() -> None:
    frame = render([StreamError(InvalidRequest("bad thing", param="messages"))])[-1]
    assert frame.data == {"error": {"message": "bad thing", "type": "invalid_request_error",
                                    "param": "messages", "code": None}}


def test_frames_are_compact_single_lines_and_escape_line_separators() -> None:
    frames = translate.ChunkStream("m", False).frames(iter([TextDelta("a\u2028b\nc"), Finish("stop")]))
    content = list(frames)[1]
    assert "\u2028".encode() not in content and b"\\u2028" in content
    assert content.count(b"\n") == 2


# -- out: the whole reply --------------------------------------------------------------
COMPLETION_CASES = [
    ("text", ChatResult(text="Hi", usage=Usage(3, 1)),
     {"role": "assistant", "content": "Hi", "refusal": None}, "stop"),
    ("empty text stays a string", ChatResult(),
     {"role": "assistant", "content": "", "refusal": None}, "stop"),
    ("tool calls only: content null", ChatResult(tool_calls=[CALL], finish=Finish("tool_calls")),
     {"role": "assistant", "content": None, "refusal": None,
      "tool_calls": [{"id": "call_abc", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Zürich"}'}}]},
     "tool_calls"),
    ("reasoning", ChatResult(text="ok", reasoning="hmm", finish=Finish("length")),
     {"role": "assistant", "content": "ok", "refusal": None, "reasoning_content": "hmm"}, "length"),
    ("citations span the text", ChatResult(text="abcd", searches=[SEARCH], finish=Finish("stop_sequence", "X")),
     {"role": "assistant", "content": "abcd", "refusal": None, "annotations": [
         {"type": "url_citation", "url_citation": {"url": "https://a.example", "title": "A", "start_index": 0, "end_index": 4}},
         {"type": "url_citation", "url_citation": {"url": "https://b.example", "title": "B", "start_index": 0, "end_index": 4}}]},
     "stop"),
]


@pytest.mark.parametrize(("result", "message", "finish"), [c[1:] for c in COMPLETION_CASES], ids=[c[0] for c in COMPLETION_CASES])
def test_completion(result: ChatResult, message: dict[str, Any], finish: str) -> None:
    reply = translate.completion(result, "minimax-m2")
    assert reply["object"] == "chat.completion" and reply["model"] == "minimax-m2"
    assert reply["id"].startswith("chatcmpl-") and isinstance(reply["created"], int)
    assert reply["choices"] == [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}]
    assert reply["usage"] == translate.usage(result.usage)
