"""Responses API translation, both ways, without a server.

In: a body goes through the view's own path (``web.load`` with the schema, then
``translate.to_chat_request``) and the neutral request is compared. Out: neutral events go
through ``ResponseStream.frames``; every event is validated by the openai SDK's own type
for it and the order is checked against the real API's.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway import web
from gateway.errors import (
    AccountsBusy,
    InvalidRequest,
    NoCredits,
    PromptTooLong,
    UpstreamServerError,
)
from gateway.parts import (
    ChatRequest,
    Event,
    Finish,
    Heartbeat,
    MediaPart,
    Message,
    ModelInfo,
    ReasoningDelta,
    ReasoningPart,
    ResponseFormat,
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
from gateway.responses import translate
from gateway.responses.errors import failure
from gateway.responses.schemas import ResponsesSchema
from gateway.responses.stream import ResponseStream
from tests.responses.test_responses import validated

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
PARAMS = {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}
GRAMMAR = {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"}


def loaded(**fields: Any) -> dict[str, Any]:
    return web.load(ResponsesSchema, {"model": "MiniMax-M2", **fields})


def translated(**fields: Any) -> ChatRequest:
    return translate.to_chat_request(loaded(**fields))


def user(text: str) -> Message:
    return Message("user", (TextPart(text),))


# -- in --------------------------------------------------------------------------------
def test_every_input_item_kind() -> None:
    items = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
        {"role": "system", "content": "Use French."},
        {"role": "user", "content": [{"type": "input_text", "text": "Look:"},
                                     {"type": "input_image", "image_url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
                                     {"type": "input_file", "file_url": "https://example.com/a.pdf", "filename": "a.pdf"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}],
         "encrypted_content": "opaque"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Running it."}]},
        {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": '{"cmd": "ls"}'},
        {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "function_call_output", "call_id": "c1", "output": "a.txt"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "Done"}]},
        {"type": "item_reference", "id": "msg_0"},  # dropped: nothing to resolve it against
    ]
    chat = translated(instructions="You are Codex.", input=items)
    assert chat.messages == (
        Message("system", (TextPart("You are Codex."),)),
        Message("system", (TextPart("Be brief."),)),
        Message("system", (TextPart("Use French."),)),
        Message("user", (TextPart("Look:"), MediaPart("image/png", data=PNG),
                         MediaPart("application/octet-stream", url="https://example.com/a.pdf", filename="a.pdf"))),
        Message("assistant", (ReasoningPart("thinking"), TextPart("Running it."),
                              ToolCallPart("c1", "exec_command", {"cmd": "ls"}),
                              ToolCallPart("c2", "apply_patch", {}, "*** Begin Patch"))),
        Message("tool", (ToolResultPart("c1", "a.txt", "exec_command"),)),
        Message("tool", (ToolResultPart("c2", "Done", "apply_patch"),)),
    )


def test_tools_namespaces_custom_and_web_search() -> None:
    tools = [
        {"type": "function", "name": "exec_command", "description": "Run", "parameters": PARAMS, "strict": False},
        {"type": "custom", "name": "apply_patch", "description": "Edit", "format": GRAMMAR},
        {"type": "namespace", "name": "agents", "description": "Sub-agents",
         "tools": [{"type": "function", "name": "spawn", "parameters": {"type": "object"}}]},
        {"type": "web_search", "external_web_access": True},
        {"type": "image_generation"},  # hosted, nothing to map it to: dropped
    ]
    chat = translated(input="hi", tools=tools, tool_choice={"type": "custom", "name": "apply_patch"})
    assert chat.tools == (
        ToolSpec("exec_command", "Run", PARAMS),
        ToolSpec("apply_patch", "Edit", {}, kind="custom", grammar="lark grammar:\nstart: begin_patch"),
        ToolSpec("agents.spawn", "", {"type": "object"}),
    )
    assert chat.web_search and chat.tool_choice == ToolChoice("named", "apply_patch")
    # Codex's cached-only search is no live search.
    assert not translated(input="hi", tools=[{"type": "web_search", "external_web_access": False}]).web_search


@pytest.mark.parametrize(("fields", "expected"), [
    ({"text": {"format": {"type": "json_object"}}}, {"response_format": ResponseFormat("json")}),
    ({"text": {"format": {"type": "json_schema", "name": "x", "schema": PARAMS, "strict": True}}},
     {"response_format": ResponseFormat("json", PARAMS)}),
    ({"max_output_tokens": 64, "temperature": 0.2, "reasoning": {"effort": "high", "summary": "auto"}},
     {"max_output_tokens": 64}),
    ({"tool_choice": "required"}, {"tool_choice": ToolChoice("required")}),
    ({"tool_choice": {"type": "allowed_tools", "mode": "required", "tools": []}}, {"tool_choice": ToolChoice("required")}),
    ({"store": False, "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k", "service_tier": "auto",
      "client_metadata": {"a": "b"}, "parallel_tool_calls": True, "truncation": "auto"}, {}),
    ({"metadata": {"conversation_id": "pin-1"}}, {"conversation_id": "pin-1"}),
])
def test_options(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    assert translated(input="hi", **fields) == ChatRequest("MiniMax-M2", (user("hi"),), **expected)


@pytest.mark.parametrize(("fields", "param"), [
    ({"input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
     "input[0].content[0].image_url"),
    ({"input": "x", "tools": [{"type": "function", "name": "f", "parameters": {"type": 5}}]}, "tools[0].parameters"),
    ({"input": "x", "tool_choice": {"type": "function"}}, "tool_choice.name"),
    ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"input": 5}, "input"),
])
def test_invalid_fields_are_named(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        loaded(**fields)
    assert caught.value.param == param


# -- out -------------------------------------------------------------------------------
TOOLS = [{"type": "function", "name": "exec_command", "parameters": PARAMS},
         {"type": "custom", "name": "apply_patch", "format": GRAMMAR},
         {"type": "namespace", "name": "agents", "description": "", "tools": [{"type": "function", "name": "spawn"}]}]


def rendered(events: list[Event], **fields: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    """The stream's events (validated by the SDK) and what was handed to the store."""
    raw = {"model": "MiniMax-M2", "input": "hi", "tools": TOOLS, **fields}
    shape = translate.Shape.of(web.load(ResponsesSchema, raw), raw)
    kept: list[dict[str, Any]] = []
    frames = b"".join(ResponseStream(shape, 7, kept.append).frames(iter(events))).decode()
    datas = [json.loads(line[6:]) for line in frames.splitlines() if line.startswith("data: ")]
    names = [line[7:] for line in frames.splitlines() if line.startswith("event: ")]
    assert names == [d["type"] for d in datas]  # each frame names its event
    events_out = [validated(d) for d in datas]
    assert [e.sequence_number for e in events_out] == list(range(len(events_out)))
    return events_out, kept


def kinds(events: list[Any]) -> list[str]:
    return [e.type.removeprefix("response.") for e in events]


def test_reasoning_then_text_in_order() -> None:
    events, kept = rendered([ReasoningDelta("hm"), TextDelta("Hel"), Heartbeat(), TextDelta("lo"),
                             Usage(7, 3, 1), Finish("stop")], reasoning={"summary": "auto"})
    assert kinds(events) == [
        "created", "in_progress",
        "output_item.added", "reasoning_summary_part.added", "reasoning_summary_text.delta",
        "reasoning_summary_text.done", "reasoning_summary_part.done", "output_item.done",
        "output_item.added", "content_part.added", "output_text.delta", "output_text.delta",
        "output_text.done", "content_part.done", "output_item.done", "completed"]
    final = events[-1].response
    assert final.output_text == "Hello" and final.output[0].summary[0].text == "hm"
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens) == (7, 3, 10)
    assert kept == [events[-1].response.model_dump(mode="json", exclude_unset=True)]


def test_reasoning_is_hidden_without_a_summary_request() -> None:
    events, _ = rendered([ReasoningDelta("hm"), TextDelta("Hi"), Finish("stop")])
    assert [item.type for item in events[-1].response.output] == ["message"]


def test_calls_function_custom_and_namespaced() -> None:
    events, _ = rendered([TextDelta("On it."), ToolCall("call_1", "exec_command", {"cmd": "ls"}),
                          ToolCall("call_2", "apply_patch", {}, "*** Begin Patch\n"),
                          ToolCall("call_3", "agents.spawn", {}), Finish("tool_calls")])
    assert kinds(events)[-13:] == [
        "output_item.added", "function_call_arguments.delta", "function_call_arguments.done", "output_item.done",
        "output_item.added", "custom_tool_call_input.delta", "custom_tool_call_input.done", "output_item.done",
        "output_item.added", "function_call_arguments.delta", "function_call_arguments.done", "output_item.done",
        "completed"]
    message, function, custom, spawn = events[-1].response.output
    assert message.content[0].text == "On it."
    assert (function.type, function.call_id, json.loads(function.arguments)) == ("function_call", "call_1", {"cmd": "ls"})
    assert (custom.type, custom.name, custom.input) == ("custom_tool_call", "apply_patch", "*** Begin Patch\n")
    assert (spawn.name, spawn.namespace) == ("spawn", "agents")
    assert [e.output_index for e in events if e.type == "response.output_item.done"] == [0, 1, 2, 3]


def test_one_call_only_without_parallel_tool_calls() -> None:
    events, _ = rendered([ToolCall("a", "exec_command", {"cmd": "ls"}), ToolCall("b", "exec_command", {"cmd": "pwd"}),
                          Finish("tool_calls")], parallel_tool_calls=False)
    assert [item.call_id for item in events[-1].response.output] == ["a"]


def test_cut_answer_is_incomplete() -> None:
    events, kept = rendered([TextDelta("Half"), Finish("length")], max_output_tokens=1)
    final = events[-1]
    assert final.type == "response.incomplete" and final.response.status == "incomplete"
    assert final.response.incomplete_details.reason == "max_output_tokens"
    assert final.response.output[0].status == "incomplete" and kept


@pytest.mark.parametrize(("error", "code"), [
    (AccountsBusy(retry_after=3), "rate_limit_exceeded"),
    (NoCredits(), "insufficient_quota"),
    (PromptTooLong(), "context_length_exceeded"),
    (UpstreamServerError(), "server_error"),
])
def test_failures_end_with_response_failed(error: Exception, code: str) -> None:
    events, kept = rendered([TextDelta("Part"), StreamError(error)])
    final = events[-1]
    assert final.type == "response.failed" and final.response.error.code == code
    assert events[-2].type == "response.output_item.done" and not kept
    if code == "rate_limit_exceeded":
        assert "try again in 3s" in final.response.error.message


def test_an_answer_that_just_stops_still_fails_properly() -> None:
    events, _ = rendered([TextDelta("Part")])
    assert events[-1].type == "response.failed" and events[-1].response.error.code == "server_error"


def test_failure_codes() -> None:
    assert failure(InvalidRequest("x"))["code"] == "server_error"


def test_codex_model_catalogue() -> None:
    catalogue = translate.model_catalog((ModelInfo("MiniMax-M2"), ModelInfo("MiniMax-M3", 512000)), 50_000)
    first, second = catalogue["models"]
    assert (first["slug"], first["priority"], second["priority"]) == ("MiniMax-M2", 0, 1)
    assert first["apply_patch_tool_type"] == "freeform" and first["context_window"] == 50_000
    assert second["context_window"] == 512000  # a model's own window where the catalogue says it
    assert first["shell_type"] == "unified_exec" and first["supported_reasoning_levels"]
