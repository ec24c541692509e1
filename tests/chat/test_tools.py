"""The tool-calling convention: streaming parse, validation, retries."""

from __future__ import annotations

import json

from gateway.chat.tools import ToolRules, instructions, render_calls, tool_calls
from gateway.errors import UpstreamError
from gateway.parts import Finish, ReasoningDelta, StreamError, TextDelta, ToolCall, ToolCallPart, ToolChoice, ToolSpec

WEATHER = ToolSpec("weather", "Weather for a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
RULES = ToolRules((WEATHER,), ToolChoice())


def deltas(*texts: str) -> list:
    return [TextDelta(t) for t in texts] + [Finish("stop")]


def no_retry(prompt: str):
    raise AssertionError(f"unexpected retry: {prompt}")


def run(events, rules=RULES, retry=no_retry) -> list:
    return list(tool_calls(iter(events), rules, retry))


def test_plain_text_passes_through_unchanged() -> None:
    out = run(deltas("Hello ", "<to", "day> world"))
    assert "".join(e.text for e in out if isinstance(e, TextDelta)) == "Hello <today> world"
    assert out[-1] == Finish("stop")


def test_text_before_a_marker_flows_before_the_block_completes() -> None:
    stream = tool_calls(iter(deltas("Let me look. <tool_", "calls>[{\"name\": \"weather\", ")), RULES, no_retry)
    assert next(stream) == TextDelta("Let me look. ")


def test_block_split_across_deltas_becomes_calls() -> None:
    out = run(deltas("Checking.\n<tool_c", "alls>\n[{\"name\": \"weather\", \"arguments\": {\"city\": \"Oslo\"}},",
                     " {\"name\": \"weather\", \"arguments\": {\"city\": \"Rome\"}}]\n</tool_calls>", " ignored tail"))
    calls = [e for e in out if isinstance(e, ToolCall)]
    assert [c.arguments["city"] for c in calls] == ["Oslo", "Rome"]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)
    assert "".join(e.text for e in out if isinstance(e, TextDelta)) == "Checking.\n"
    assert out[-1] == Finish("tool_calls")


def test_invalid_arguments_get_one_corrective_retry() -> None:
    prompts = []

    def retry(prompt: str):
        prompts.append(prompt)
        return iter([ReasoningDelta("fixing"), *deltas('<tool_calls>[{"name":"weather","arguments":{"city":"Oslo"}}]</tool_calls>')])

    out = run(deltas('<tool_calls>[{"name":"weather","arguments":{"town":"Oslo"}}]</tool_calls>'), retry=retry)
    assert len(prompts) == 1 and "city" in prompts[0] and "required" in prompts[0]
    assert [e.arguments for e in out if isinstance(e, ToolCall)] == [{"city": "Oslo"}]
    assert ReasoningDelta("fixing") in out


def test_still_invalid_after_retry_returns_text() -> None:
    bad = '<tool_calls>[{"name":"nope"}]</tool_calls>'
    out = run(deltas(bad), retry=lambda prompt: iter(deltas("still broken")))
    assert not [e for e in out if isinstance(e, ToolCall)]
    assert "".join(e.text for e in out if isinstance(e, TextDelta)) == bad
    assert out[-1] == Finish("stop")


def test_required_choice_retries_when_no_call_was_made() -> None:
    rules = ToolRules((WEATHER,), ToolChoice("named", "weather"))
    good = '<tool_calls>{"name":"weather","arguments":{"city":"Paris"}}</tool_calls>'
    out = run(deltas("I think it is sunny."), rules, retry=lambda prompt: iter(deltas(good)))
    assert [e for e in out if isinstance(e, TextDelta)] == [TextDelta("I think it is sunny.")]
    assert out[-1] == Finish("tool_calls")


def test_stream_error_ends_without_a_finish() -> None:
    error = StreamError(UpstreamError())
    out = run([TextDelta("partial"), error])
    assert out[-1] == error and not [e for e in out if isinstance(e, Finish)]


def test_instructions_name_every_tool_and_the_choice() -> None:
    text = instructions((WEATHER,), ToolChoice("required"))
    assert "weather" in text and '"required":["city"]' in text and "MUST call" in text


PATCH_TOOL = ToolSpec("apply_patch", "Edit files", {}, kind="custom", grammar="lark grammar:\nstart: begin_patch")
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"


def test_custom_tool_is_offered_as_one_raw_string_input() -> None:
    text = instructions((WEATHER, PATCH_TOOL), ToolChoice())
    assert '"properties":{"input":{"type":"string"}}' in text and "raw input text, not JSON" in text
    assert "lark grammar:\nstart: begin_patch" in text


def test_custom_tool_call_carries_the_raw_input() -> None:
    rules = ToolRules((WEATHER, PATCH_TOOL), ToolChoice())
    block = json.dumps([{"name": "apply_patch", "arguments": {"input": PATCH}},
                        {"name": "apply_patch", "arguments": PATCH}])  # a bare string is taken too
    out = run(deltas(f"<tool_calls>{block}</tool_calls>"), rules)
    calls = [e for e in out if isinstance(e, ToolCall)]
    assert [(c.name, c.input, c.arguments) for c in calls] == [("apply_patch", PATCH, {})] * 2


def test_custom_tool_call_without_a_string_input_is_retried() -> None:
    rules = ToolRules((PATCH_TOOL,), ToolChoice())
    bad = '<tool_calls>[{"name": "apply_patch", "arguments": {"patch": 1}}]</tool_calls>'
    good = f'<tool_calls>[{{"name": "apply_patch", "arguments": {json.dumps({"input": PATCH})}}}]</tool_calls>'
    prompts: list[str] = []

    def retry(prompt: str):
        prompts.append(prompt)
        return iter(deltas(good))

    calls = [e for e in run(deltas(bad), rules, retry) if isinstance(e, ToolCall)]
    assert [c.input for c in calls] == [PATCH] and "string `input`" in prompts[0]


def test_earlier_custom_calls_are_rendered_with_their_input() -> None:
    rendered = render_calls([ToolCallPart("c1", "apply_patch", {}, PATCH), ToolCallPart("c2", "weather", {"city": "Oslo"})])
    items = json.loads(rendered.removeprefix("<tool_calls>").removesuffix("</tool_calls>"))
    assert [item["arguments"] for item in items] == [{"input": PATCH}, {"city": "Oslo"}]
