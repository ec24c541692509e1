"""The stream transforms of gateway/chat/transforms.py, one function at a time, table-driven."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.chat.transforms import (
    count_usage,
    cut_at_stop_sequences,
    extract_json,
    json_only,
    limit_output_tokens,
    search_results,
)
from gateway.errors import UpstreamBadAnswer, UpstreamUnavailable
from gateway.parts import (
    AgentStep,
    Finish,
    Heartbeat,
    ReasoningDelta,
    SearchResults,
    Source,
    StreamError,
    TextDelta,
    ToolCall,
    Usage,
)


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


STOP = Finish("stop")


def deltas(*texts: str) -> list[Any]:
    return [TextDelta(t) for t in texts] + [STOP]


def splits(text: str, pieces: int) -> Iterator[tuple[str, ...]]:
    """Every way of cutting ``text`` into ``pieces`` non-empty consecutive deltas."""
    if pieces == 1:
        yield (text,)
        return
    for cut in range(1, len(text) - pieces + 2):
        for rest in splits(text[cut:], pieces - 1):
            yield (text[:cut], *rest)


class Upstream:
    """An upstream stand-in that records how far it was read."""

    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.taken = 0

    def __iter__(self) -> Iterator[Any]:
        for event in self.events:
            self.taken += 1
            yield event


# -- cut_at_stop_sequences -------------------------------------------------------------
STOP_CASES = [
    # (id, deltas, stops, emitted text, final event)
    ("no stops: unchanged", ["Hello END"], (), "Hello END", Finish("stop")),
    ("empty stop strings are ignored", ["Hello"], ("",), "Hello", Finish("stop")),
    ("stop inside one delta", ["Hello END world"], ("END",), "Hello ", Finish("stop_sequence", "END")),
    ("stop at the very start", ["END more"], ("END",), "", Finish("stop_sequence", "END")),
    ("stop is the whole answer", ["END"], ("END",), "", Finish("stop_sequence", "END")),
    ("stop split over three deltas", ["ab E", "N", "D cd"], ("END",), "ab ", Finish("stop_sequence", "END")),
    ("partial prefix then not a stop", ["a E", "Nx"], ("END",), "a ENx", Finish("stop")),
    ("partial prefix held to the end is released", ["a EN"], ("END",), "a EN", Finish("stop")),
    ("earliest of several stops wins", ["1 two 3 one"], ("one", "two"), "1 ", Finish("stop_sequence", "two")),
    ("a longer stop sharing a prefix", ["x ab", "c"], ("abc", "abd"), "x ", Finish("stop_sequence", "abc")),
    ("repeated prefix chars", ["EEEN", "D"], ("END",), "EE", Finish("stop_sequence", "END")),
    ("CJK stop", ["你好", "。再见"], ("。",), "你好", Finish("stop_sequence", "。")),
    ("newline stop", ["line1\nline2"], ("\n",), "line1", Finish("stop_sequence", "\n")),
]


@pytest.mark.parametrize(("texts", "stops", "text", "last"), [c[1:] for c in STOP_CASES], ids=[c[0] for c in STOP_CASES])
def test_stop_sequences(texts: list[str], stops: tuple[str, ...], text: str, last: Finish) -> None:
    out = list(cut_at_stop_sequences(deltas(*texts), stops))
    assert text_of(out) == text
    assert out[-1] == last
    assert sum(isinstance(e, Finish) for e in out) == 1
    assert TextDelta("") not in out


@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_stop_sequence_found_at_every_split(pieces: int) -> None:
    answer = "Hi there END tail"
    for cut in splits(answer, pieces):
        out = list(cut_at_stop_sequences(deltas(*cut), ("END",)))
        assert text_of(out) == "Hi there ", cut
        assert out[-1] == Finish("stop_sequence", "END"), cut


@pytest.mark.parametrize("pieces", [2, 3])
def test_near_miss_is_released_whole_at_every_split(pieces: int) -> None:
    answer = "EN ENx E"
    for cut in splits(answer, pieces):
        out = list(cut_at_stop_sequences(deltas(*cut), ("END",)))
        assert text_of(out) == answer, cut
        assert out[-1] == Finish("stop"), cut


def test_text_that_cannot_start_a_stop_flows_at_once() -> None:
    stream = cut_at_stop_sequences(iter([TextDelta("abc E"), TextDelta("x")]), ("END",))
    assert next(stream) == TextDelta("abc ")  # only the "E" is held back
    assert next(stream) == TextDelta("Ex")


def test_other_events_pass_through_in_order() -> None:
    events = [ReasoningDelta("r"), TextDelta("a E"), Heartbeat(), TextDelta("ND b"), Finish("stop")]
    out = list(cut_at_stop_sequences(events, ("END",)))
    assert out == [ReasoningDelta("r"), TextDelta("a "), Heartbeat(), Finish("stop_sequence", "END")]


def test_upstream_is_not_read_past_the_stop() -> None:
    source = Upstream(deltas("a END", "never read", "nor this"))
    out = list(cut_at_stop_sequences(source, ("END",)))
    assert out[-1] == Finish("stop_sequence", "END")
    assert source.taken == 1


# -- limit_output_tokens ---------------------------------------------------------------
LIMIT_CASES = [
    # (id, events, limit, emitted text, final event)
    ("no limit", deltas("a" * 100), None, "a" * 100, Finish("stop")),
    ("under the limit", deltas("abcd", "efgh"), 5, "abcdefgh", Finish("stop")),
    ("exactly the limit is not cut", deltas("abcd" * 3), 3, "abcd" * 3, Finish("stop")),
    ("cut inside a delta", deltas("a" * 10, "b" * 10), 3, "a" * 10 + "bb", Finish("length")),
    ("cut at a delta boundary", deltas("abcd", "efgh"), 1, "abcd", Finish("length")),
    ("CJK counts one token each", deltas("你好世界"), 2, "你好", Finish("length")),
    ("reasoning does not count", [ReasoningDelta("x" * 100), *deltas("abcd")], 1, "abcd", Finish("stop")),
]


@pytest.mark.parametrize(("events", "limit", "text", "last"), [c[1:] for c in LIMIT_CASES], ids=[c[0] for c in LIMIT_CASES])
def test_output_token_limit(events: list[Any], limit: int | None, text: str, last: Finish) -> None:
    out = list(limit_output_tokens(events, limit))
    assert text_of(out) == text
    assert out[-1] == last
    assert sum(isinstance(e, Finish) for e in out) == 1
    assert TextDelta("") not in out


def test_limit_stops_reading_upstream() -> None:
    source = Upstream(deltas("abcdefgh", "never read"))
    list(limit_output_tokens(source, 1))
    assert source.taken == 1


# -- count_usage -----------------------------------------------------------------------
USAGE_CASES = [
    # (id, events, input tokens, expected usage)
    ("text", deltas("abcdefgh"), 7, Usage(7, 2, 0)),
    ("reasoning counted apart and in the total", [ReasoningDelta("中文"), *deltas("abcd")], 1, Usage(1, 3, 2)),
    ("tool call counts its name and JSON arguments",
     [ToolCall("c", "f", {"a": 1}), Finish("tool_calls")], 0, Usage(0, 3, 0)),  # 'f{"a": 1}' = 9 chars
    ("nothing said", [Finish("stop")], 5, Usage(5, 0, 0)),
]


@pytest.mark.parametrize(("events", "input_tokens", "usage"), [c[1:] for c in USAGE_CASES], ids=[c[0] for c in USAGE_CASES])
def test_usage_right_before_finish(events: list[Any], input_tokens: int, usage: Usage) -> None:
    out = list(count_usage(events, input_tokens))
    assert out[-2:] == [usage, events[-1]]
    assert out[:-2] == events[:-1]


def test_no_usage_without_a_finish() -> None:
    events = [TextDelta("abc"), StreamError(UpstreamUnavailable())]
    assert list(count_usage(events, 3)) == events


# -- json_only / extract_json ----------------------------------------------------------
EXTRACT_CASES = [
    ("bare object", '{"a": 1}', '{"a": 1}'),
    ("bare array", "[1, 2]", "[1, 2]"),
    ("prose around", 'Sure! {"a": [1, {"b": 2}]} Hope it helps.', '{"a": [1, {"b": 2}]}'),
    ("json fence", 'Here:\n```json\n{"a": 1}\n```\nDone {"z": 0}', '{"a": 1}'),
    ("plain fence", '```\n["x"]\n```', '["x"]'),
    ("braces in strings", '{"s": "} { ]"}', '{"s": "} { ]"}'),
    ("first broken, second good", 'oops {bad} then {"ok": true}', '{"ok": true}'),
    ("unicode kept", '{"名": "值"}', '{"名": "值"}'),
    ("no JSON", "just words", None),
    ("scalar is not enough", "42", None),
    ("unterminated", '{"a": 1', None),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in EXTRACT_CASES], ids=[c[0] for c in EXTRACT_CASES])
def test_extract_json(text: str, expected: str | None) -> None:
    assert extract_json(text) == expected


def test_json_only_emits_just_the_value_before_the_finish() -> None:
    events = [ReasoningDelta("r"), *deltas("Sure: {\"a\":", " 1} bye")]
    out = list(json_only(events))
    assert out == [ReasoningDelta("r"), TextDelta('{"a": 1}'), Finish("stop")]
    assert json.loads(text_of(out)) == {"a": 1}


def test_json_only_holds_text_but_not_other_events() -> None:
    stream = json_only(iter([TextDelta("{"), ReasoningDelta("r"), TextDelta("}"), Finish("stop")]))
    assert next(stream) == ReasoningDelta("r")
    assert next(stream) == TextDelta("{}")


def test_json_only_without_json_ends_with_an_error() -> None:
    out = list(json_only(deltas("I cannot do that.")))
    assert len(out) == 1 and isinstance(out[0], StreamError)
    assert isinstance(out[0].error, UpstreamBadAnswer)


def test_json_only_passes_an_upstream_error_through() -> None:
    error = StreamError(UpstreamUnavailable())
    assert list(json_only([TextDelta("{"), error])) == [error]


# -- search_results --------------------------------------------------------------------
STEP = "web_search"
SEARCH_CASES = [
    ("a list of pages",
     AgentStep(STEP, json.dumps([{"title": "A", "url": "https://a", "snippet": "sa"}, {"url": "https://b"}])),
     SearchResults("q", (Source("https://a", "A", "sa"), Source("https://b", "", "")))),
    ("items without a string url are dropped",
     AgentStep(STEP, json.dumps([{"title": "no url"}, {"url": 5}, "str", {"url": "https://c", "title": None}])),
     SearchResults("q", (Source("https://c"),))),
    ("not JSON stays a step", AgentStep(STEP, "searching..."), AgentStep(STEP, "searching...")),
    ("not a list stays a step", AgentStep(STEP, '{"url": "https://a"}'), AgentStep(STEP, '{"url": "https://a"}')),
    ("no usable page stays a step", AgentStep(STEP, "[]"), AgentStep(STEP, "[]")),
    ("another step is untouched", AgentStep("code", '[{"url": "https://a"}]'), AgentStep("code", '[{"url": "https://a"}]')),
]


@pytest.mark.parametrize(("step", "expected"), [c[1:] for c in SEARCH_CASES], ids=[c[0] for c in SEARCH_CASES])
def test_search_results(step: AgentStep, expected: Any) -> None:
    out = list(search_results([TextDelta("a"), step, Finish("stop")], "q", STEP))
    assert out == [TextDelta("a"), expected, Finish("stop")]


def test_stop_sequence_split_across_deltas_is_cut() -> None:
    events = list(cut_at_stop_sequences(
        [TextDelta("Hello EN"), TextDelta("D world"), Finish("stop")], ("END",)
    ))
    assert text_of(events) == "Hello "
    assert events[-1] == Finish("stop_sequence", "END")


def test_partial_stop_prefix_is_released_when_it_is_not_a_stop() -> None:
    events = list(cut_at_stop_sequences(
        [TextDelta("a E"), TextDelta("Nx"), Finish("stop")], ("END",)
    ))
    assert text_of(events) == "a ENx"
    assert events[-1] == Finish("stop")


def test_text_flows_immediately_when_it_cannot_start_a_stop() -> None:
    stream = cut_at_stop_sequences(iter([TextDelta("abc"), TextDelta("d")]), ("XYZ",))
    assert next(stream) == TextDelta("abc")


def test_limit_cuts_at_token_budget() -> None:
    events = list(limit_output_tokens([TextDelta("a" * 10), TextDelta("b" * 10), Finish("stop")], 3))
    assert text_of(events) == "a" * 10 + "b" * 2
    assert events[-1] == Finish("length")


def test_usage_comes_right_before_finish() -> None:
    events = list(count_usage([ReasoningDelta("中文"), TextDelta("abcdefgh"), Finish("stop")], 7))
    assert events[-2] == Usage(7, 4, 2)
