"""The streaming ``<tool_calls>`` parser (gateway.chat.tools.tool_calls) under adversarial
deltas: every split of both markers, near misses, broken blocks and the one retry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.chat.tools import CLOSE, OPEN, ToolRules, tool_calls
from gateway.errors import UpstreamUnavailable
from gateway.parts import (
    Finish,
    Heartbeat,
    ReasoningDelta,
    StreamError,
    TextDelta,
    ToolCall,
    ToolChoice,
    ToolSpec,
)

WEATHER = ToolSpec("weather", "Weather for a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
NOW = ToolSpec("now", "", {})
RULES = ToolRules((WEATHER, NOW), ToolChoice())
OSLO = '{"name": "weather", "arguments": {"city": "Oslo"}}'
BLOCK = f"{OPEN}\n[{OSLO}]\n{CLOSE}"
GOOD_RETRY = [TextDelta(BLOCK), Finish("stop")]


class Retry:
    """The fake corrective retry: records each prompt and answers from a script."""

    def __init__(self, *answers: list[Any]) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> Iterator[Any]:
        self.prompts.append(prompt)
        assert self.answers, f"unexpected retry: {prompt}"
        return iter(self.answers.pop(0))


class Upstream:
    """An event source that records how many events were read from it."""

    def __init__(self, events: list[Any]) -> None:
        self.events, self.taken = events, 0

    def __iter__(self) -> Iterator[Any]:
        for event in self.events:
            self.taken += 1
            yield event


def deltas(*texts: str, finish: bool = True) -> list[Any]:
    return [TextDelta(t) for t in texts] + ([Finish("stop")] if finish else [])


def run(events: Any, rules: ToolRules = RULES, retry: Retry | None = None) -> list[Any]:
    return list(tool_calls(iter(events), rules, retry or Retry()))


def text_of(out: list[Any]) -> str:
    return "".join(e.text for e in out if isinstance(e, TextDelta))


def calls_of(out: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, e.arguments) for e in out if isinstance(e, ToolCall)]


def assert_called_oslo(out: list[Any], text_before: str) -> None:
    assert calls_of(out) == [("weather", {"city": "Oslo"})]
    assert text_of(out) == text_before
    assert out[-1] == Finish("tool_calls")
    first_call = next(i for i, e in enumerate(out) if isinstance(e, ToolCall))
    assert not any(isinstance(e, TextDelta) for e in out[first_call:]), "text after a call"
    assert TextDelta("") not in out


# -- splits ----------------------------------------------------------------------------
ANSWER = f"Let me check. {BLOCK} (ignored tail)"
OPEN_AT, CLOSE_AT = ANSWER.index(OPEN), ANSWER.index(CLOSE)


@pytest.mark.parametrize("cut", range(1, len(ANSWER)))
def test_every_two_way_split(cut: int) -> None:
    out = run(deltas(ANSWER[:cut], ANSWER[cut:]))
    assert_called_oslo(out, "Let me check. ")


def test_every_pair_of_cuts_inside_the_two_markers() -> None:
    for i in range(OPEN_AT, OPEN_AT + len(OPEN) + 1):
        for j in range(CLOSE_AT, CLOSE_AT + len(CLOSE) + 1):
            pieces = [p for p in (ANSWER[:i], ANSWER[i:j], ANSWER[j:]) if p]
            assert_called_oslo(run(deltas(*pieces)), "Let me check. ")


def test_every_cut_inside_the_open_marker_with_three_pieces_of_it() -> None:
    for i in range(OPEN_AT + 1, OPEN_AT + len(OPEN)):
        for j in range(i + 1, OPEN_AT + len(OPEN)):
            out = run(deltas(ANSWER[:i], ANSWER[i:j], ANSWER[j:]))
            assert_called_oslo(out, "Let me check. ")


def test_one_character_per_delta() -> None:
    assert_called_oslo(run(deltas(*ANSWER)), "Let me check. ")


def test_block_at_the_very_start() -> None:
    for cut in range(1, len(BLOCK)):
        assert_called_oslo(run(deltas(BLOCK[:cut], BLOCK[cut:])), "")


def test_text_before_the_marker_flows_before_the_block_is_complete() -> None:
    stream = tool_calls(iter(deltas("Let me check. <tool_", "calls>[{\"name\"")), RULES, Retry())
    assert next(stream) == TextDelta("Let me check. ")


def test_upstream_is_not_read_past_the_closing_marker() -> None:
    source = Upstream(deltas("Sure. " + BLOCK[:20], BLOCK[20:] + " tail", "never read", "nor this"))
    out = list(tool_calls(source, RULES, Retry()))
    assert_called_oslo(out, "Sure. ")
    assert source.taken == 2


def test_other_events_pass_through_while_a_block_is_held() -> None:
    out = run([TextDelta("a " + BLOCK[:15]), ReasoningDelta("r"), Heartbeat(), TextDelta(BLOCK[15:]), Finish("stop")])
    assert out[:3] == [TextDelta("a "), ReasoningDelta("r"), Heartbeat()]
    assert_called_oslo(out, "a ")


def test_unclosed_block_at_the_finish_is_still_parsed() -> None:
    out = run(deltas(f"x {OPEN}[{OSLO}", "]"))
    assert_called_oslo(out, "x ")


# -- near misses -----------------------------------------------------------------------
NEAR_MISSES = [
    "Use the <tool_call> tag.",
    "x <tool_callsX y",
    "a < b and c <= d",
    "<<tool_calls",
    "close without open: </tool_calls>",
    "tool_calls> is not a marker",
    "ends with a partial <tool_ca",
    "ends with a lone <",
    "<TOOL_CALLS>[] is not the marker",
]


@pytest.mark.parametrize("answer", NEAR_MISSES)
def test_near_miss_is_plain_text_at_every_split(answer: str) -> None:
    for cut in range(0, len(answer) + 1):
        pieces = [p for p in (answer[:cut], answer[cut:]) if p]
        out = run(deltas(*pieces))
        assert out[-1] == Finish("stop") and text_of(out) == answer, pieces
        assert not calls_of(out) and TextDelta("") not in out


@pytest.mark.parametrize("size", range(1, len(OPEN)))
def test_every_prefix_of_the_marker_at_the_end_is_released(size: int) -> None:
    out = run(deltas("see ", OPEN[:size]))
    assert text_of(out) == "see " + OPEN[:size] and out[-1] == Finish("stop")


def test_text_that_cannot_start_the_marker_is_not_held() -> None:
    stream = tool_calls(iter([TextDelta("abc <to"), TextDelta("day")]), RULES, Retry())
    assert next(stream) == TextDelta("abc ")
    assert next(stream) == TextDelta("<today")


# -- valid block variants --------------------------------------------------------------
VALID_BLOCKS = [
    ("array", f"[{OSLO}]", [("weather", {"city": "Oslo"})]),
    ("single object", OSLO, [("weather", {"city": "Oslo"})]),
    ("json fence", f"```json\n[{OSLO}]\n```", [("weather", {"city": "Oslo"})]),
    ("arguments as a JSON string", '[{"name": "weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}]', [("weather", {"city": "Oslo"})]),
    ("no arguments, no schema", '[{"name": "now"}]', [("now", {})]),
    ("two calls", f'[{OSLO}, {{"name": "now", "arguments": {{}}}}]', [("weather", {"city": "Oslo"}), ("now", {})]),
    ("unicode arguments", '[{"name": "weather", "arguments": {"city": "Zürich 东京"}}]', [("weather", {"city": "Zürich 东京"})]),
]


@pytest.mark.parametrize(("inner", "expected"), [c[1:] for c in VALID_BLOCKS], ids=[c[0] for c in VALID_BLOCKS])
def test_valid_blocks(inner: str, expected: list[Any]) -> None:
    out = run(deltas(f"{OPEN}\n{inner}\n{CLOSE}"))
    assert calls_of(out) == expected and out[-1] == Finish("tool_calls")
    ids = [e.id for e in out if isinstance(e, ToolCall)]
    assert len(set(ids)) == len(ids) and all(i.startswith("call_") for i in ids)


def test_a_broken_client_schema_is_not_enforced() -> None:
    rules = ToolRules((ToolSpec("odd", "", {"type": "no-such-type"}),), ToolChoice())
    out = run(deltas(f'{OPEN}[{{"name": "odd", "arguments": {{"x": 1}}}}]{CLOSE}'), rules)
    assert calls_of(out) == [("odd", {"x": 1})]


# -- broken blocks: one corrective retry -----------------------------------------------
BROKEN_BLOCKS = [
    # (id, block contents, a fragment the retry prompt must carry, rules)
    ("invalid JSON", '[{"name": "weather", "arguments": {"city": "Oslo"}]', "not valid JSON", RULES),
    ("truncated JSON", '[{"name": "weather", "argum', "not valid JSON", RULES),
    ("unknown tool", '[{"name": "nope", "arguments": {}}]', "nope", RULES),
    ("no tool name", '[{"arguments": {}}]', "no tool name", RULES),
    ("not an object", '["weather"]', "no tool name", RULES),
    ("arguments not an object", '[{"name": "weather", "arguments": [1]}]', "JSON object", RULES),
    ("arguments string not JSON", '[{"name": "weather", "arguments": "{oops"}]', "not JSON", RULES),
    ("missing required argument", '[{"name": "weather", "arguments": {"town": "Oslo"}}]', "required", RULES),
    ("argument of the wrong type", '[{"name": "weather", "arguments": {"city": 5}}]', "city", RULES),
    ("named tool not called", '[{"name": "now", "arguments": {}}]', "weather",
     ToolRules((WEATHER, NOW), ToolChoice("named", "weather"))),
]


@pytest.mark.parametrize(("inner", "reason", "rules"), [c[1:] for c in BROKEN_BLOCKS], ids=[c[0] for c in BROKEN_BLOCKS])
def test_broken_block_gets_one_retry_that_can_fix_it(inner: str, reason: str, rules: ToolRules) -> None:
    retry = Retry([ReasoningDelta("fixing"), TextDelta("Corrected: "), *GOOD_RETRY])
    out = run(deltas("Calling. ", f"{OPEN}{inner}{CLOSE}"), rules, retry)
    assert len(retry.prompts) == 1 and reason in retry.prompts[0] and OPEN in retry.prompts[0]
    assert_called_oslo(out, "Calling. ")  # the retry's own prose is not shown
    assert ReasoningDelta("fixing") in out


@pytest.mark.parametrize(("inner", "reason", "rules"), [c[1:] for c in BROKEN_BLOCKS], ids=[c[0] for c in BROKEN_BLOCKS])
def test_broken_block_twice_gives_the_first_block_back_as_text(inner: str, reason: str, rules: ToolRules) -> None:
    bad = f"{OPEN}{inner}{CLOSE}"
    retry = Retry(deltas("still ", bad))
    out = run(deltas("Calling. ", bad[:7], bad[7:]), rules, retry)
    assert len(retry.prompts) == 1
    assert not calls_of(out)
    assert text_of(out) == "Calling. " + bad
    assert out[-1] == Finish("stop")


def test_invalid_json_split_across_deltas_still_gets_exactly_one_retry() -> None:
    bad = f'{OPEN}[{{"name": "weather", "arguments": {{"city": "Oslo"}}]{CLOSE}'
    for cut in range(1, len(bad)):
        retry = Retry(GOOD_RETRY)
        out = run(deltas(bad[:cut], bad[cut:]), RULES, retry)
        assert len(retry.prompts) == 1, cut
        assert_called_oslo(out, "")


# -- tool_choice demands a call --------------------------------------------------------
def test_auto_choice_without_a_call_is_plain_text() -> None:
    out = run(deltas("It is sunny."))
    assert out == [TextDelta("It is sunny."), Finish("stop")]


@pytest.mark.parametrize(("choice", "named"), [(ToolChoice("required"), "a tool"), (ToolChoice("named", "weather"), "weather")])
def test_demanded_call_missing_gets_one_retry(choice: ToolChoice, named: str) -> None:
    retry = Retry(GOOD_RETRY)
    out = run(deltas("It is ", "sunny <"), ToolRules((WEATHER, NOW), choice), retry)
    assert len(retry.prompts) == 1 and named in retry.prompts[0]
    assert_called_oslo(out, "It is sunny <")


def test_demanded_call_missing_twice_ends_as_text() -> None:
    retry = Retry(deltas("no."))
    out = run(deltas("It is sunny."), ToolRules((WEATHER,), ToolChoice("required")), retry)
    assert out == [TextDelta("It is sunny."), Finish("stop")] and len(retry.prompts) == 1


# -- interrupted streams ---------------------------------------------------------------
def test_error_inside_a_block_ends_the_stream_without_finish_or_retry() -> None:
    error = StreamError(UpstreamUnavailable())
    out = run([TextDelta("a " + BLOCK[:10]), error])
    assert out == [TextDelta("a "), error]


def test_stream_that_stops_without_finish_is_not_retried() -> None:
    out = run(deltas("a ", BLOCK[:10], finish=False), ToolRules((WEATHER,), ToolChoice("required")))
    assert out == [TextDelta("a ")]


def test_error_during_the_retry_ends_the_stream() -> None:
    error = StreamError(UpstreamUnavailable())
    retry = Retry([TextDelta(BLOCK[:8]), error])
    out = run(deltas(f"{OPEN}not json{CLOSE}"), RULES, retry)
    assert out == [error]


def test_call_arguments_are_what_the_model_wrote() -> None:
    arguments = {"city": "Oslo", "extra": [1, {"deep": None}]}
    block = f'{OPEN}[{{"name": "weather", "arguments": {json.dumps(arguments)}}}]{CLOSE}'
    assert calls_of(run(deltas(block))) == [("weather", arguments)]
