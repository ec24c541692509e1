"""Gemini generateContent translation, both ways, without a server.

In: a body goes through the view's own path (``camelize``, ``web.load`` with
``GenerateContentSchema``, then ``translate.to_chat_request``), in both spellings.
Out: neutral events go through ``ResponseStream`` (SSE frames and the JSON array) and are
checked against what gemini-cli's strict parser accepts (../shared/CLIENTS.md): one JSON
object per ``data:`` frame, nothing else, no ``[DONE]``, pure ASCII, ``finishReason``
and ``usageMetadata`` on the last frame only.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway import web
from gateway.errors import InvalidRequest, UpstreamTimeout, UpstreamUnavailable
from gateway.gemini import translate
from gateway.gemini.schemas import GenerateContentSchema, camelize
from gateway.parts import (
    ChatRequest,
    ChatResult,
    Finish,
    Heartbeat,
    MediaPart,
    Message,
    ReasoningDelta,
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
from tests.wire import parse_frames

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"
MODEL = "gemini-2.5-flash"
USER = {"role": "user", "parts": [{"text": "Hi"}]}
HI = Message("user", (TextPart("Hi"),))
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def translated(body: dict[str, Any]) -> ChatRequest:
    """What the generateContent view hands the chat service for this body."""
    return translate.to_chat_request(web.load(GenerateContentSchema, camelize(body)), MODEL)


def body(*contents: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"contents": list(contents or [USER]), **fields}


# -- in --------------------------------------------------------------------------------
MESSAGE_CASES = [
    ("text", {}, [USER], (HI,)),
    ("role defaults to user", {}, [{"parts": [{"text": "Hi"}]}], (HI,)),
    ("systemInstruction first", {"systemInstruction": {"parts": [{"text": "Be brief."}]}}, [USER],
     (Message("system", (TextPart("Be brief."),)), HI)),
    ("snake_case system_instruction", {"system_instruction": {"parts": [{"text": "Be brief."}]}}, [USER],
     (Message("system", (TextPart("Be brief."),)), HI)),
    ("inlineData image", {},
     [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}}, {"text": "What?"}]}],
     (Message("user", (MediaPart("image/png", data=PNG), TextPart("What?"))),)),
    ("snake_case inline_data with URL-safe unpadded base64", {},
     [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": base64.urlsafe_b64encode(PNG).decode().rstrip("=")}}]}],
     (Message("user", (MediaPart("image/png", data=PNG),)),)),
    ("fileData", {},
     [{"role": "user", "parts": [{"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/a.pdf"}}]}],
     (Message("user", (MediaPart("application/pdf", url="https://example.com/a.pdf"),)),)),
    ("model turn with a function call", {},
     [USER, {"role": "model", "parts": [{"text": "Checking."}, {"functionCall": {"id": "fc1", "name": "weather", "args": {"city": "Oslo"}}}]}],
     (HI, Message("assistant", (TextPart("Checking."), ToolCallPart("fc1", "weather", {"city": "Oslo"}))))),
    ("function call without id is keyed by name", {},
     [USER, {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}]}],
     (HI, Message("assistant", (ToolCallPart("weather", "weather", {"city": "Oslo"}),)))),
    ("earlier thoughts are not sent back", {},
     [USER, {"role": "model", "parts": [{"text": "secret", "thought": True}, {"text": "answer"}]}],
     (HI, Message("assistant", (TextPart("answer"),)))),
    ("function responses make a tool message", {},
     [USER, {"role": "user", "parts": [{"functionResponse": {"id": "fc1", "name": "weather", "response": {"temp_c": 12}}}]}],
     (HI, Message("tool", (ToolResultPart("fc1", '{"temp_c": 12}', name="weather"),)))),
    ("function response keys stay as sent", {},
     [USER, {"role": "function", "parts": [{"function_response": {"name": "weather", "response": {"temp_c": 12, "feels_like": "ok"}}}]}],
     (HI, Message("tool", (ToolResultPart("weather", '{"temp_c": 12, "feels_like": "ok"}', name="weather"),)))),
]


@pytest.mark.parametrize(("fields", "contents", "expected"), [c[1:] for c in MESSAGE_CASES], ids=[c[0] for c in MESSAGE_CASES])
def test_contents_translate(fields: dict[str, Any], contents: list[dict[str, Any]], expected: tuple[Message, ...]) -> None:
    assert translated(body(*contents, **fields)).messages == expected


WEATHER = {"name": "weather", "description": "Weather", "parameters": SCHEMA}
WEATHER_SPEC = ToolSpec("weather", "Weather", SCHEMA)
OPTION_CASES = [
    ("nothing set", {}, ChatRequest(MODEL, (HI,))),
    ("generation limits", {"generationConfig": {"maxOutputTokens": 64, "stopSequences": ["END"], "temperature": 0.1}},
     ChatRequest(MODEL, (HI,), max_output_tokens=64, stop=("END",))),
    ("snake_case generation_config", {"generation_config": {"max_output_tokens": 64, "stop_sequences": ["END"]}},
     ChatRequest(MODEL, (HI,), max_output_tokens=64, stop=("END",))),
    ("JSON with responseJsonSchema", {"generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA}},
     ChatRequest(MODEL, (HI,), response_format=ResponseFormat("json", SCHEMA))),
    ("JSON with responseSchema", {"generationConfig": {"responseMimeType": "application/json", "responseSchema": {"type": "OBJECT"}}},
     ChatRequest(MODEL, (HI,), response_format=ResponseFormat("json", {"type": "OBJECT"}))),
    ("JSON without a schema", {"generationConfig": {"responseMimeType": "application/json"}},
     ChatRequest(MODEL, (HI,), response_format=ResponseFormat("json"))),
    ("text/plain", {"generationConfig": {"responseMimeType": "text/plain"}}, ChatRequest(MODEL, (HI,))),
    ("function declarations", {"tools": [{"functionDeclarations": [WEATHER]}]}, ChatRequest(MODEL, (HI,), tools=(WEATHER_SPEC,))),
    ("parametersJsonSchema", {"tools": [{"functionDeclarations": [{"name": "weather", "description": "Weather", "parametersJsonSchema": SCHEMA}]}]},
     ChatRequest(MODEL, (HI,), tools=(WEATHER_SPEC,))),
    ("snake_case declarations keep schema keys", {"tools": [{"function_declarations": [{"name": "f", "parameters": {"type": "object", "properties": {"snake_key": {}}}}]}]},
     ChatRequest(MODEL, (HI,), tools=(ToolSpec("f", "", {"type": "object", "properties": {"snake_key": {}}}),))),
    ("googleSearch", {"tools": [{"googleSearch": {}}]}, ChatRequest(MODEL, (HI,), web_search=True)),
    ("mode AUTO", {"tools": [{"functionDeclarations": [WEATHER]}], "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}},
     ChatRequest(MODEL, (HI,), tools=(WEATHER_SPEC,))),
    ("mode ANY", {"tools": [{"functionDeclarations": [WEATHER]}], "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}},
     ChatRequest(MODEL, (HI,), tools=(WEATHER_SPEC,), tool_choice=ToolChoice("required"))),
    ("mode ANY with one allowed name", {"tools": [{"functionDeclarations": [WEATHER]}],
                                        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}}},
     ChatRequest(MODEL, (HI,), tools=(WEATHER_SPEC,), tool_choice=ToolChoice("named", "weather"))),
    ("mode ANY with two allowed names", {"tools": [{"functionDeclarations": [WEATHER]}],
                                         "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather", "x"]}}},
     ChatRequest(MODEL, (HI,), tools=(WEATHER_SPEC,), tool_choice=ToolChoice("required"))),
    ("mode NONE", {"tools": [{"functionDeclarations": [WEATHER]}], "toolConfig": {"functionCallingConfig": {"mode": "NONE"}}},
     ChatRequest(MODEL, (HI,), tools=(WEATHER_SPEC,), tool_choice=ToolChoice("none"))),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES])
def test_options_translate(fields: dict[str, Any], expected: ChatRequest) -> None:
    assert translated(body(**fields)) == expected


@pytest.mark.parametrize(("raw", "name"), [("gemini-2.5-pro", "gemini-2.5-pro"), ("models/gemini-2.5-pro", "gemini-2.5-pro")])
def test_model_name(raw: str, name: str) -> None:
    assert translate.model_name(raw) == name


@pytest.mark.parametrize(("config", "wanted"), [
    ({}, False), ({"thinkingConfig": {"includeThoughts": True}}, True), ({"thinking_config": {"include_thoughts": True}}, True),
    ({"thinkingConfig": {"thinkingBudget": 100}}, False),
])
def test_wants_thoughts(config: dict[str, Any], wanted: bool) -> None:
    data = web.load(GenerateContentSchema, camelize(body(generationConfig=config)))
    assert translate.wants_thoughts(data) is wanted


INVALID_CASES = [
    ("no contents", {"contents": []}),
    ("contents missing", {}),
    ("part with no known kind", body({"role": "user", "parts": [{"nothing": 1}]})),
    ("unknown role", body({"role": "robot", "parts": [{"text": "x"}]})),
    ("candidateCount 2", body(generationConfig={"candidateCount": 2})),
    ("maxOutputTokens zero", body(generationConfig={"maxOutputTokens": 0})),
    ("inlineData with broken base64", body({"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "@@@"}}]})),
    ("inlineData without data", body({"role": "user", "parts": [{"inlineData": {"mimeType": "image/png"}}]})),
    ("functionCall without a name", body({"role": "model", "parts": [{"functionCall": {"args": {}}}]})),
]


@pytest.mark.parametrize("data", [c[1] for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES])
def test_invalid_bodies_raise_invalid_request(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        translated(data)


# -- out: the stream -------------------------------------------------------------------
CALL = ToolCall("call_abc", "weather", {"city": "Zürich"})
SEARCH = SearchResults("news", (Source("https://a.example", "A"),))


def objects(events: list[Any], thoughts: bool = True) -> list[dict[str, Any]]:
    """The stream as SSE frames, each checked to be what gemini-cli's parser accepts."""
    raw = list(translate.ResponseStream(MODEL, thoughts).sse_frames(iter(events)))
    for frame in raw:
        assert frame.isascii(), f"non-ASCII bytes in {frame!r}"
        assert frame.startswith(b"data: ") and frame.endswith(b"\n\n") and frame.count(b"\n") == 2, frame
    frames = parse_frames(raw)
    assert all(f.event is None and f.comment is None and isinstance(f.data, dict) for f in frames)
    return [f.data for f in frames]


def summary(item: dict[str, Any]) -> Any:
    if "error" in item:
        return ("error", item["error"]["status"])
    (candidate,) = item["candidates"]
    parts = candidate["content"]["parts"]
    assert candidate["content"]["role"] == "model" and candidate["index"] == 0
    assert item["modelVersion"] == MODEL
    if "finishReason" in candidate:
        assert parts == [{"text": ""}]
        return ("finish", candidate["finishReason"], item["usageMetadata"]["totalTokenCount"])
    assert "usageMetadata" not in item
    (part,) = parts
    if "functionCall" in part:
        return ("call", part["functionCall"]["name"], part["functionCall"]["args"])
    if part.get("thought"):
        return ("thought", part["text"])
    return ("text", part["text"])


STREAM_CASES = [
    ("text", [TextDelta("Hel"), TextDelta("lo"), Usage(3, 2), Finish("stop")], True,
     [("text", "Hel"), ("text", "lo"), ("finish", "STOP", 5)]),
    ("empty text is skipped", [TextDelta(""), TextDelta("a"), Finish("stop")], True, [("text", "a"), ("finish", "STOP", 0)]),
    ("thoughts when asked", [ReasoningDelta("hm"), TextDelta("ok"), Finish("stop")], True,
     [("thought", "hm"), ("text", "ok"), ("finish", "STOP", 0)]),
    ("thoughts hidden otherwise", [ReasoningDelta("hm"), TextDelta("ok"), Finish("stop")], False,
     [("text", "ok"), ("finish", "STOP", 0)]),
    ("function call ends with STOP", [TextDelta("Checking."), CALL, Finish("tool_calls")], True,
     [("text", "Checking."), ("call", "weather", {"city": "Zürich"}), ("finish", "STOP", 0)]),
    ("stop sequence is STOP", [TextDelta("a"), Finish("stop_sequence", "END")], True, [("text", "a"), ("finish", "STOP", 0)]),
    ("length", [TextDelta("a"), Finish("length")], True, [("text", "a"), ("finish", "MAX_TOKENS", 0)]),
    ("content filter", [Finish("content_filter")], True, [("finish", "SAFETY", 0)]),
    ("heartbeats send nothing", [Heartbeat(), TextDelta("a"), Heartbeat(), Finish("stop")], True, [("text", "a"), ("finish", "STOP", 0)]),
    ("error mid-stream ends it", [TextDelta("par"), StreamError(UpstreamUnavailable())], True, [("text", "par"), ("error", "UNAVAILABLE")]),
    ("error first", [StreamError(UpstreamTimeout())], True, [("error", "DEADLINE_EXCEEDED")]),
]


@pytest.mark.parametrize(("events", "thoughts", "expected"), [c[1:] for c in STREAM_CASES], ids=[c[0] for c in STREAM_CASES])
def test_stream_objects(events: list[Any], thoughts: bool, expected: list[Any]) -> None:
    items = objects(events, thoughts)
    assert [summary(i) for i in items] == expected
    assert len({i["responseId"] for i in items if "responseId" in i}) <= 1
    assert "[DONE]" not in json.dumps(items)


def test_usage_metadata_splits_thoughts_out() -> None:
    last = objects([ReasoningDelta("r"), TextDelta("a"), Usage(10, 7, 3), Finish("stop")])[-1]
    assert last["usageMetadata"] == {"promptTokenCount": 10, "candidatesTokenCount": 4, "totalTokenCount": 17, "thoughtsTokenCount": 3}


def test_grounding_goes_on_the_last_frame() -> None:
    items = objects([SEARCH, TextDelta("a"), Finish("stop")])
    assert "groundingMetadata" not in items[0]["candidates"][0]
    assert items[-1]["candidates"][0]["groundingMetadata"] == {
        "webSearchQueries": ["news"], "groundingChunks": [{"web": {"uri": "https://a.example", "title": "A"}}]}


def test_non_ascii_and_line_separators_are_escaped() -> None:
    (frame, _) = translate.ResponseStream(MODEL, False).sse_frames(iter([TextDelta("é\u2028中\u2029"), Finish("stop")]))
    assert frame.isascii() and b"\\u2028" in frame and b"\\u2029" in frame
    assert json.loads(frame.removeprefix(b"data: "))["candidates"][0]["content"]["parts"] == [{"text": "é\u2028中\u2029"}]


def test_error_object_is_a_google_error_body() -> None:
    (item,) = objects([StreamError(InvalidRequest("bad"))])
    assert item == {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}


@pytest.mark.parametrize("events", [c[1] for c in STREAM_CASES] + [[]], ids=[c[0] for c in STREAM_CASES] + ["nothing"])
def test_json_array_holds_the_same_objects(events: list[Any]) -> None:
    stream = translate.ResponseStream(MODEL, True)
    written = b"".join(stream.json_array(iter(events)))
    assert written.isascii()
    items = json.loads(written)
    assert [summary(i) for i in items] == [summary(i) for i in objects(events)]


# -- out: the whole reply --------------------------------------------------------------
RESPONSE_CASES = [
    ("text", ChatResult(text="Hi", usage=Usage(3, 1)), False, [{"text": "Hi"}], "STOP"),
    ("empty answer keeps one text part", ChatResult(), False, [{"text": ""}], "STOP"),
    ("thoughts first when asked", ChatResult(text="ok", reasoning="hm"), True, [{"text": "hm", "thought": True}, {"text": "ok"}], "STOP"),
    ("thoughts hidden otherwise", ChatResult(text="ok", reasoning="hm"), False, [{"text": "ok"}], "STOP"),
    ("function call only", ChatResult(tool_calls=[CALL], finish=Finish("tool_calls")), False,
     [{"functionCall": {"id": "call_abc", "name": "weather", "args": {"city": "Zürich"}}}], "STOP"),
    ("max tokens", ChatResult(text="a", finish=Finish("length")), False, [{"text": "a"}], "MAX_TOKENS"),
]


@pytest.mark.parametrize(("result", "thoughts", "parts", "finish"), [c[1:] for c in RESPONSE_CASES], ids=[c[0] for c in RESPONSE_CASES])
def test_response(result: ChatResult, thoughts: bool, parts: list[Any], finish: str) -> None:
    reply = translate.response(result, MODEL, thoughts)
    assert reply["candidates"] == [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}]
    assert reply["usageMetadata"] == translate.usage_metadata(result.usage)
    assert reply["modelVersion"] == MODEL and reply["responseId"]
