"""The code surface's wire format, both ways (gateway/upstream/code_messages.py), table-driven."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gateway.errors import InvalidRequest, UpstreamBadAnswer
from gateway.parts import (
    ChatRequest,
    Finish,
    Heartbeat,
    MediaPart,
    Message,
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
from gateway.upstream.code_messages import (
    MAX_ATTACHMENTS,
    MAX_BODY_BYTES,
    MAX_IMAGE_BYTES,
    EventReader,
    count_body,
    encoded,
    request_body,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
WEATHER = ToolSpec("weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}})


def user(*parts: Any) -> Message:
    return Message("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def body(*messages: Message, model: str = "MiniMax-M2.7", **fields: Any) -> dict[str, Any]:
    return request_body(ChatRequest(model, tuple(messages), **fields), model)


def test_system_text_becomes_system_blocks_with_cache_breakpoints() -> None:
    sent = body(Message("system", (TextPart("Be brief.", cache=True),)), user("hi"))
    assert sent["system"] == [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert sent["stream"] is True and sent["max_tokens"] == 128000


def test_every_tool_result_of_a_turn_goes_in_one_user_message_before_its_text() -> None:
    calls = Message("assistant", (TextPart("checking"), ToolCallPart("c1", "weather", {"city": "A"}),
                                  ToolCallPart("c2", "weather", {"city": "B"})))
    sent = body(user("weather?"), calls, Message("tool", (ToolResultPart("c1", "sunny"),)),
                Message("tool", (ToolResultPart("c2", "rain", is_error=True),)), user("and now?"),
                tools=(WEATHER,))
    assert [turn["role"] for turn in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"][1:] == [
        {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "A"}},
        {"type": "tool_use", "id": "c2", "name": "weather", "input": {"city": "B"}}]
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "c2", "content": "rain", "is_error": True},
        {"type": "text", "text": "and now?"}]
    assert sent["tools"] == [{"name": "weather", "description": "Weather for a city", "input_schema": WEATHER.parameters}]


@pytest.mark.parametrize(("choice", "wire"), [
    (ToolChoice(), {"type": "auto"}),
    (ToolChoice("required"), {"type": "any"}),
    (ToolChoice("named", "weather"), {"type": "tool", "name": "weather"}),
    (ToolChoice("none"), {"type": "none"}),
])
def test_tool_choice(choice: ToolChoice, wire: dict[str, Any]) -> None:
    assert body(user("x"), tools=(WEATHER,), tool_choice=choice)["tool_choice"] == wire


def test_only_signed_thinking_is_replayed() -> None:
    history = (user("q"), Message("assistant", (ReasoningPart("mine", "sig-1"), TextPart("a"))),
               Message("assistant", (ReasoningPart("unsigned"), TextPart("b"))), user("next"))
    sent = body(*history)
    assistant = sent["messages"][1]["content"]
    assert {"type": "thinking", "thinking": "mine", "signature": "sig-1"} in assistant
    assert all(block.get("thinking") != "unsigned" for block in assistant)


@pytest.mark.parametrize(("model", "effort", "thinking", "output_config"), [
    ("MiniMax-M3.1-Flash-Preview", None, {"type": "adaptive"}, None),
    ("MiniMax-M3.1-Flash-Preview", "none", {"type": "adaptive"}, None),  # never disabled there
    ("MiniMax-M3.1-Flash-Preview", "high", {"type": "adaptive"}, {"effort": "high"}),
    ("MiniMax-M3", None, {"type": "adaptive"}, None),
    ("MiniMax-M3", "none", {"type": "disabled"}, None),
    ("MiniMax-M3", "low", {"type": "adaptive"}, {"effort": "low"}),
    ("MiniMax-M2.7", "high", None, None),  # always thinks; no knob
])
def test_thinking_per_model(model: str, effort: Any, thinking: Any, output_config: Any) -> None:
    sent = body(user("x"), model=model, reasoning_effort=effort)
    assert sent.get("thinking") == thinking
    assert sent.get("output_config") == output_config


def test_images_go_as_base64_and_text_documents_as_text() -> None:
    sent = body(user("look", MediaPart("image/png", PNG), MediaPart("text/markdown", b"# Notes", filename="n.md")))
    image, document = sent["messages"][0]["content"][1:]
    assert image == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": base64.b64encode(PNG).decode()}}
    assert document["type"] == "text" and "# Notes" in document["text"] and 'name="n.md"' in document["text"]


@pytest.mark.parametrize(("parts", "words"), [
    ((MediaPart("image/png", b"x" * (MAX_IMAGE_BYTES + 1)),), "larger"),
    (tuple(MediaPart("image/png", PNG) for _ in range(MAX_ATTACHMENTS + 1)), "at most"),
    ((MediaPart("application/pdf", b"%PDF-1.4"),), "not application/pdf"),
])
def test_what_the_upstream_refuses_is_a_400_up_front(parts: tuple[MediaPart, ...], words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        body(user("x", *parts))


def test_a_body_over_the_limit_is_refused_before_sending() -> None:
    with pytest.raises(InvalidRequest, match="larger than MiniMax Code takes"):
        encoded({"messages": "x" * MAX_BODY_BYTES})


def test_count_body_drops_what_count_tokens_does_not_take() -> None:
    full = body(user("x"), model="MiniMax-M3", reasoning_effort="high", stop=("END",))
    assert set(count_body(full)) == {"model", "messages", "thinking"}


def stream(*frames: dict[str, Any]) -> list[Any]:
    reader = EventReader()
    return [event for frame in frames for event in reader.read(frame)]


def test_a_stream_reads_as_neutral_events_with_the_real_usage() -> None:
    events = stream(
        {"type": "message_start", "message": {"usage": {"input_tokens": 0, "output_tokens": 1}}},
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s1"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t1", "name": "weather"}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"ci"}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "ty\": \"A\"}"}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
         "usage": {"input_tokens": 42, "output_tokens": 17, "output_tokens_details": {"thinking_tokens": 5}}},
        {"type": "message_stop"},
    )
    assert events == [Heartbeat(), ReasoningDelta("hm"), ReasoningSignature("s1"), TextDelta("Hi"),
                      ToolCall("t1", "weather", {"city": "A"}), Usage(42, 17, 5), Finish("tool_calls")]


@pytest.mark.parametrize(("reason", "sequence", "finish"), [
    ("end_turn", None, Finish("stop")),
    ("max_tokens", None, Finish("length")),
    ("stop_sequence", "END", Finish("stop_sequence", "END")),
    ("refusal", None, Finish("content_filter")),
])
def test_stop_reasons(reason: str, sequence: str | None, finish: Finish) -> None:
    events = stream({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": sequence}},
                    {"type": "message_stop"})
    assert events[-1] == finish


def test_a_tool_call_with_broken_input_is_a_bad_answer() -> None:
    with pytest.raises(UpstreamBadAnswer):
        stream({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "f"}},
               {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{oops"}},
               {"type": "content_block_stop", "index": 0})


def test_a_custom_tool_goes_as_one_taking_its_raw_text_and_comes_back_raw() -> None:
    patch = ToolSpec("apply_patch", "Edit files.", {}, kind="custom", grammar="start: 'x'")
    history = (user("edit"), Message("assistant", (ToolCallPart("c0", "apply_patch", {}, "*** Begin Patch"),)),
               Message("tool", (ToolResultPart("c0", "done"),)), user("again"))
    sent = body(*history, tools=(patch,))
    assert sent["tools"][0]["input_schema"]["properties"] == {"input": {"type": "string"}}
    assert "start: 'x'" in sent["tools"][0]["description"]
    assert sent["messages"][1]["content"][0]["input"] == {"input": "*** Begin Patch"}
    reader = EventReader(frozenset({"apply_patch"}))
    frames = [{"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "apply_patch"}},
              {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"input\": \"*** End\"}"}},
              {"type": "content_block_stop", "index": 0}]
    assert [e for f in frames for e in reader.read(f)] == [ToolCall("t", "apply_patch", {}, "*** End")]
