"""Anthropic Messages translation, both ways, without a server.

In: a body goes through the view's own path (``web.load`` with ``MessagesSchema``, then
``translate.to_chat_request``). Out: neutral events go through ``EventStream.frames``;
every rendered stream is checked against the protocol's rules (../shared/CLIENTS.md:
one ``message_start``, blocks started before their deltas and stopped once, contiguous
indexes, no empty text block, no thinking inside a text block, ``stop_sequence`` always
present) and compared, as a short summary, to the expected sequence.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway import web
from gateway.anthropic import translate
from gateway.anthropic.schemas import CountTokensSchema, MessagesSchema
from gateway.errors import AccountsBusy, InvalidRequest, UpstreamUnavailable
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
USER = {"role": "user", "content": "Hi"}
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def translated(body: dict[str, Any]) -> ChatRequest:
    """What the messages view hands the chat service for this body."""
    return translate.to_chat_request(web.load(MessagesSchema, body))


def body(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "claude-opus-4-8[1m]", "max_tokens": 1024, "messages": list(messages or [USER]), **fields}


def user(*parts: Any) -> Message:
    return Message("user", tuple(parts))


HI = user(TextPart("Hi"))


# -- in --------------------------------------------------------------------------------
MESSAGE_CASES = [
    ("string content", {}, [USER], (HI,)),
    ("system string first", {"system": "Be brief."}, [USER], (Message("system", (TextPart("Be brief."),)), HI)),
    ("system as text blocks with cache_control",
     {"system": [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "B"}]},
     [USER], (Message("system", (TextPart("A", cache=True), TextPart("B"))), HI)),
    ("text blocks", {}, [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
     (user(TextPart("a"), TextPart("b")),)),
    ("base64 image", {},
     [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                                   {"type": "text", "text": "What?"}]}],
     (user(MediaPart("image/png", data=PNG), TextPart("What?")),)),
    ("image by URL", {},
     [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}],
     (user(MediaPart("application/octet-stream", url="https://example.com/a.png")),)),
    ("plain-text document with a title", {},
     [{"role": "user", "content": [{"type": "document", "title": "notes.txt", "source": {"type": "text", "media_type": "text/plain", "data": "hello"}}]}],
     (user(MediaPart("text/plain", data=b"hello", filename="notes.txt")),)),
    ("assistant thinking and tool use", {},
     [USER, {"role": "assistant", "content": [
         {"type": "thinking", "thinking": "hmm", "signature": "sig"},
         {"type": "text", "text": "Checking."},
         {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}}]}],
     (HI, Message("assistant", (ReasoningPart("hmm", "sig"), TextPart("Checking."), ToolCallPart("toolu_1", "weather", {"city": "Oslo"}))))),
    ("redacted thinking is dropped", {},
     [USER, {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "xx"}, {"type": "text", "text": "ok"}]}],
     (HI, Message("assistant", (TextPart("ok"),)))),
    ("tool results make a tool message", {},
     [USER, {"role": "user", "content": [
         {"type": "tool_result", "tool_use_id": "toolu_1", "content": "12 °C"},
         {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "is_error": True}]}],
     (HI, Message("tool", (ToolResultPart("toolu_1", "12 °C"), ToolResultPart("toolu_2", "a\nb", is_error=True))))),
    ("a tool result beside text stays a user message", {},
     [USER, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}, {"type": "text", "text": "go on"}]}],
     (HI, user(ToolResultPart("t", "x"), TextPart("go on")))),
]


@pytest.mark.parametrize(("fields", "messages", "expected"), [c[1:] for c in MESSAGE_CASES], ids=[c[0] for c in MESSAGE_CASES])
def test_messages_translate(fields: dict[str, Any], messages: list[dict[str, Any]], expected: tuple[Message, ...]) -> None:
    assert translated(body(*messages, **fields)).messages == expected


MODEL = "claude-opus-4-8[1m]"
DEFAULTS = ChatRequest(MODEL, (HI,), max_output_tokens=1024)
WEATHER_TOOL = {"name": "weather", "description": "Weather", "input_schema": SCHEMA}
OPTION_CASES = [
    ("max_tokens only", {}, DEFAULTS),
    ("stop sequences", {"stop_sequences": ["END", "\n\nHuman:"]},
     ChatRequest(MODEL, (HI,), max_output_tokens=1024, stop=("END", "\n\nHuman:"))),
    ("custom tools", {"tools": [WEATHER_TOOL, {"type": "custom", "name": "now", "input_schema": {"type": "object"}}]},
     ChatRequest(MODEL, (HI,), max_output_tokens=1024,
                 tools=(ToolSpec("weather", "Weather", SCHEMA), ToolSpec("now", "", {"type": "object"})))),
    ("web search server tool", {"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]},
     ChatRequest(MODEL, (HI,), max_output_tokens=1024, web_search=True)),
    ("tool_choice auto", {"tools": [WEATHER_TOOL], "tool_choice": {"type": "auto"}},
     ChatRequest(MODEL, (HI,), max_output_tokens=1024, tools=(ToolSpec("weather", "Weather", SCHEMA),))),
    ("tool_choice any", {"tools": [WEATHER_TOOL], "tool_choice": {"type": "any"}},
     ChatRequest(MODEL, (HI,), max_output_tokens=1024, tools=(ToolSpec("weather", "Weather", SCHEMA),), tool_choice=ToolChoice("required"))),
    ("tool_choice tool", {"tools": [WEATHER_TOOL], "tool_choice": {"type": "tool", "name": "weather"}},
     ChatRequest(MODEL, (HI,), max_output_tokens=1024, tools=(ToolSpec("weather", "Weather", SCHEMA),), tool_choice=ToolChoice("named", "weather"))),
    ("tool_choice none", {"tools": [WEATHER_TOOL], "tool_choice": {"type": "none"}},
     ChatRequest(MODEL, (HI,), max_output_tokens=1024, tools=(ToolSpec("weather", "Weather", SCHEMA),), tool_choice=ToolChoice("none"))),
    ("output_config json_schema", {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
     ChatRequest(MODEL, (HI,), max_output_tokens=1024, response_format=ResponseFormat("json", SCHEMA))),
    ("unknown fields are tolerated", {"metadata": {"user_id": "u"}, "temperature": 0.5, "context_management": {"x": 1}}, DEFAULTS),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES])
def test_options_translate(fields: dict[str, Any], expected: ChatRequest) -> None:
    assert translated(body(**fields)) == expected


@pytest.mark.parametrize(("thinking", "wanted"), [
    (None, False), ({"type": "enabled", "budget_tokens": 2048}, True), ({"type": "adaptive"}, True), ({"type": "disabled"}, False),
])
def test_wants_thinking(thinking: dict[str, Any] | None, wanted: bool) -> None:
    data = web.load(MessagesSchema, body(**({"thinking": thinking} if thinking else {})))
    assert translate.wants_thinking(data) is wanted


def test_count_tokens_body_needs_no_max_tokens() -> None:
    data = web.load(CountTokensSchema, {"model": MODEL, "messages": [USER], "system": "S"})
    assert translate.to_chat_request(data).messages == (Message("system", (TextPart("S"),)), HI)


INVALID_CASES = [
    ("no max_tokens", {"model": MODEL, "messages": [USER]}),
    ("no messages", {"model": MODEL, "max_tokens": 5, "messages": []}),
    ("max_tokens zero", body(max_tokens=0)),
    ("unknown role", body({"role": "robot", "content": "x"})),
    ("block without a type", body({"role": "user", "content": [{"text": "x"}]})),
    ("image with an unknown source", body({"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]})),
    ("image with broken base64", body({"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "@@@"}}]})),
    ("tool_choice tool without a name", body(tool_choice={"type": "tool"})),
    ("unknown tool_choice", body(tool_choice={"type": "sometimes"})),
]


@pytest.mark.parametrize("data", [c[1] for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES])
def test_invalid_bodies_raise_invalid_request(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        translated(data)


# -- out: the stream -------------------------------------------------------------------
CALL = ToolCall("toolu_abc", "weather", {"city": "Zürich"})
SEARCH = SearchResults("news", (Source("https://a.example", "A"),))


def render(events: list[Any], thinking: bool = True, input_tokens: int = 9) -> list[Frame]:
    frames = parse_frames(translate.EventStream(MODEL, input_tokens, thinking).frames(iter(events)))
    check_protocol(frames)
    return frames


def check_protocol(frames: list[Frame]) -> None:
    """The rules a Messages stream must keep, whatever it says."""
    assert [f.event for f in frames].count("message_start") == 1 and frames[0].event == "message_start"
    open_index: int | None = None
    open_type: str | None = None
    next_index = 0
    has_delta = False
    for frame in frames:
        assert frame.event is not None and frame.data["type"] == frame.event, "data.type must equal the event name"
        data = frame.data
        if frame.event == "content_block_start":
            assert open_index is None, "a block started while another was open"
            assert data["index"] == next_index, "block indexes must be contiguous from 0"
            open_index, open_type, has_delta = data["index"], data["content_block"]["type"], False
            next_index += 1
        elif frame.event == "content_block_delta":
            assert data["index"] == open_index, "a delta for a block that is not open"
            kind = data["delta"]["type"]
            allowed = {"text": {"text_delta"}, "thinking": {"thinking_delta", "signature_delta"},
                       "tool_use": {"input_json_delta"}, "server_tool_use": {"input_json_delta"}}[open_type]
            assert kind in allowed, f"{kind} inside a {open_type} block"
            if kind == "text_delta":
                assert data["delta"]["text"], "empty text delta"
            has_delta = True
        elif frame.event == "content_block_stop":
            assert data["index"] == open_index, "stop for a block that is not open"
            assert has_delta or open_type == "web_search_tool_result", f"empty {open_type} block"
            open_index = open_type = None
        elif frame.event in ("message_delta", "message_stop", "error"):
            assert open_index is None, f"{frame.event} with a block still open"
        if frame.event == "message_delta":
            assert set(data["delta"]) == {"stop_reason", "stop_sequence"}
    events = [f.event for f in frames]
    if "message_delta" in events:
        assert events[-2:] == ["message_delta", "message_stop"]
    if "error" in events:
        assert events[-1] == "error" and "message_delta" not in events


def summary(frame: Frame) -> Any:
    data = frame.data
    match frame.event:
        case "content_block_start":
            block = data["content_block"]
            return ("start", block["type"], block.get("name"))
        case "content_block_delta":
            delta = data["delta"]
            if delta["type"] == "signature_delta":
                return "signature"
            if delta["type"] == "input_json_delta":
                return ("json", json.loads(delta["partial_json"]))
            return (delta["type"], delta.get("text", delta.get("thinking")))
        case "content_block_stop":
            return "stop"
        case "message_delta":
            return ("message_delta", data["delta"]["stop_reason"], data["delta"]["stop_sequence"], data["usage"]["output_tokens"])
        case "error":
            return ("error", data["error"]["type"])
        case other:
            return other


STREAM_CASES = [
    ("text", [TextDelta("Hel"), TextDelta("lo"), Usage(9, 2), Finish("stop")], True,
     ["message_start", "ping", ("start", "text", None), ("text_delta", "Hel"), ("text_delta", "lo"), "stop",
      ("message_delta", "end_turn", None, 2), "message_stop"]),
    ("empty text makes no block", [TextDelta(""), Finish("stop")], True,
     ["message_start", "ping", ("message_delta", "end_turn", None, 0), "message_stop"]),
    ("thinking then text: two blocks", [ReasoningDelta("hm"), ReasoningDelta("m"), TextDelta("ok"), Finish("stop")], True,
     ["message_start", "ping", ("start", "thinking", None), ("thinking_delta", "hm"), ("thinking_delta", "m"), "signature", "stop",
      ("start", "text", None), ("text_delta", "ok"), "stop", ("message_delta", "end_turn", None, 0), "message_stop"]),
    ("thinking after text opens a new block", [TextDelta("a"), ReasoningDelta("r"), TextDelta("b"), Finish("stop")], True,
     ["message_start", "ping", ("start", "text", None), ("text_delta", "a"), "stop",
      ("start", "thinking", None), ("thinking_delta", "r"), "signature", "stop",
      ("start", "text", None), ("text_delta", "b"), "stop", ("message_delta", "end_turn", None, 0), "message_stop"]),
    ("reasoning hidden unless thinking was asked", [ReasoningDelta("r"), TextDelta("a"), ReasoningDelta("s"), TextDelta("b"), Finish("stop")], False,
     ["message_start", "ping", ("start", "text", None), ("text_delta", "a"), ("text_delta", "b"), "stop",
      ("message_delta", "end_turn", None, 0), "message_stop"]),
    ("text then tool use", [TextDelta("Checking."), CALL, Usage(9, 7), Finish("tool_calls")], True,
     ["message_start", "ping", ("start", "text", None), ("text_delta", "Checking."), "stop",
      ("start", "tool_use", "weather"), ("json", {"city": "Zürich"}), "stop",
      ("message_delta", "tool_use", None, 7), "message_stop"]),
    ("two tool uses", [CALL, ToolCall("toolu_2", "now", {}), Finish("tool_calls")], True,
     ["message_start", "ping", ("start", "tool_use", "weather"), ("json", {"city": "Zürich"}), "stop",
      ("start", "tool_use", "now"), ("json", {}), "stop", ("message_delta", "tool_use", None, 0), "message_stop"]),
    ("stop sequence", [TextDelta("a"), Finish("stop_sequence", "END")], True,
     ["message_start", "ping", ("start", "text", None), ("text_delta", "a"), "stop",
      ("message_delta", "stop_sequence", "END", 0), "message_stop"]),
    ("max tokens", [TextDelta("a"), Finish("length")], True,
     ["message_start", "ping", ("start", "text", None), ("text_delta", "a"), "stop",
      ("message_delta", "max_tokens", None, 0), "message_stop"]),
    ("content filter", [Finish("content_filter")], True,
     ["message_start", "ping", ("message_delta", "refusal", None, 0), "message_stop"]),
    ("heartbeats are pings, even inside a block", [Heartbeat(), TextDelta("a"), Heartbeat(), TextDelta("b"), Finish("stop")], True,
     ["message_start", "ping", "ping", ("start", "text", None), ("text_delta", "a"), "ping", ("text_delta", "b"), "stop",
      ("message_delta", "end_turn", None, 0), "message_stop"]),
    ("web search blocks", [SEARCH, TextDelta("a"), Finish("stop")], True,
     ["message_start", "ping", ("start", "server_tool_use", "web_search"), ("json", {"query": "news"}), "stop",
      ("start", "web_search_tool_result", None), "stop",
      ("start", "text", None), ("text_delta", "a"), "stop", ("message_delta", "end_turn", None, 0), "message_stop"]),
    ("error mid-text closes the block", [TextDelta("par"), StreamError(UpstreamUnavailable())], True,
     ["message_start", "ping", ("start", "text", None), ("text_delta", "par"), "stop", ("error", "overloaded_error")]),
    ("error mid-thinking closes the block", [ReasoningDelta("r"), StreamError(AccountsBusy())], True,
     ["message_start", "ping", ("start", "thinking", None), ("thinking_delta", "r"), "signature", "stop", ("error", "rate_limit_error")]),
    ("error before any block", [StreamError(InvalidRequest("bad"))], True,
     ["message_start", "ping", ("error", "invalid_request_error")]),
]


@pytest.mark.parametrize(("events", "thinking", "expected"), [c[1:] for c in STREAM_CASES], ids=[c[0] for c in STREAM_CASES])
def test_stream_frames(events: list[Any], thinking: bool, expected: list[Any]) -> None:
    assert [summary(f) for f in render(events, thinking)] == expected


def test_message_start_carries_an_empty_message_and_input_usage() -> None:
    start = render([Finish("stop")], input_tokens=42)[0].data["message"]
    assert start["id"].startswith("msg_")
    assert start == {"id": start["id"], "type": "message", "role": "assistant", "model": MODEL, "content": [],
                     "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 42, "output_tokens": 0}}


def test_block_starts_have_the_documented_shapes() -> None:
    frames = render([ReasoningDelta("r"), TextDelta("t"), CALL, Finish("tool_calls")])
    starts = [f.data["content_block"] for f in frames if f.event == "content_block_start"]
    assert starts == [{"type": "thinking", "thinking": "", "signature": ""}, {"type": "text", "text": ""},
                      {"type": "tool_use", "id": "toolu_abc", "name": "weather", "input": {}}]


def test_thinking_signature_covers_the_whole_thinking() -> None:
    frames = render([ReasoningDelta("a"), ReasoningDelta("b"), Finish("stop")])
    (signature,) = [f.data["delta"]["signature"] for f in frames if f.event == "content_block_delta"
                    and f.data["delta"]["type"] == "signature_delta"]
    assert signature == translate.signature_for("ab")


def test_error_frame_is_an_anthropic_error_body() -> None:
    frame = render([StreamError(UpstreamUnavailable("gone"))])[-1]
    assert frame.raw.startswith(b"event: error\ndata: ")
    assert frame.data["error"] == {"type": "overloaded_error", "message": "gone"}
    assert frame.data["request_id"].startswith("req_")


# -- out: the whole reply --------------------------------------------------------------
MESSAGE_REPLY_CASES = [
    ("text", ChatResult(text="Hi"), True, [{"type": "text", "text": "Hi"}], "end_turn", None),
    ("nothing said: no empty text block", ChatResult(), True, [], "end_turn", None),
    ("thinking shown when asked", ChatResult(text="ok", reasoning="hm"), True,
     [{"type": "thinking", "thinking": "hm", "signature": translate.signature_for("hm")}, {"type": "text", "text": "ok"}], "end_turn", None),
    ("thinking hidden otherwise", ChatResult(text="ok", reasoning="hm"), False, [{"type": "text", "text": "ok"}], "end_turn", None),
    ("tool use", ChatResult(text="Checking.", tool_calls=[CALL], finish=Finish("tool_calls")), True,
     [{"type": "text", "text": "Checking."}, {"type": "tool_use", "id": "toolu_abc", "name": "weather", "input": {"city": "Zürich"}}],
     "tool_use", None),
    ("stop sequence", ChatResult(text="a", finish=Finish("stop_sequence", "END")), True, [{"type": "text", "text": "a"}], "stop_sequence", "END"),
    ("max tokens", ChatResult(text="a", finish=Finish("length")), True, [{"type": "text", "text": "a"}], "max_tokens", None),
]


@pytest.mark.parametrize(("result", "thinking", "content", "stop_reason", "stop_sequence"),
                         [c[1:] for c in MESSAGE_REPLY_CASES], ids=[c[0] for c in MESSAGE_REPLY_CASES])
def test_message_reply(result: ChatResult, thinking: bool, content: list[Any], stop_reason: str, stop_sequence: str | None) -> None:
    reply = translate.message(result, MODEL, thinking)
    assert reply["content"] == content
    assert reply["stop_reason"] == stop_reason
    assert "stop_sequence" in reply and reply["stop_sequence"] == stop_sequence
    assert reply["type"] == "message" and reply["role"] == "assistant" and reply["model"] == MODEL


def test_message_reply_search_blocks_come_first() -> None:
    reply = translate.message(ChatResult(text="a", searches=[SEARCH], usage=Usage(3, 4)), MODEL, False)
    use, result, text = reply["content"]
    assert use["type"] == "server_tool_use" and use["input"] == {"query": "news"}
    assert result["type"] == "web_search_tool_result" and result["tool_use_id"] == use["id"]
    assert [r["url"] for r in result["content"]] == ["https://a.example"]
    assert text == {"type": "text", "text": "a"}
    assert reply["usage"] == {"input_tokens": 3, "output_tokens": 4}
