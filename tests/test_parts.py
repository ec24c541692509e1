"""Folding an event stream into a whole answer (gateway.parts.collect)."""

from __future__ import annotations

import pytest

from gateway.errors import UpstreamTimeout
from gateway.parts import (
    AgentStep,
    ChatResult,
    Finish,
    Heartbeat,
    ReasoningDelta,
    SearchResults,
    Source,
    StreamError,
    TextDelta,
    ToolCall,
    Usage,
    collect,
)

CALL = ToolCall("c1", "f", {"a": 1})
SEARCH = SearchResults("q", (Source("https://a"),))
STEP = AgentStep("code", "out")


def test_collect_folds_every_kind_of_event() -> None:
    events = [Heartbeat(), ReasoningDelta("r1"), TextDelta("a"), SEARCH, STEP, ReasoningDelta("r2"), TextDelta("b"),
              CALL, Usage(3, 4, 1), Finish("tool_calls")]
    assert collect(iter(events)) == ChatResult(text="ab", reasoning="r1r2", tool_calls=[CALL], steps=[STEP],
                                               searches=[SEARCH], usage=Usage(3, 4, 1), finish=Finish("tool_calls"))


def test_collect_of_nothing_is_an_empty_stop() -> None:
    assert collect(iter([])) == ChatResult()


def test_collect_raises_the_stream_error() -> None:
    error = UpstreamTimeout("slow")
    with pytest.raises(UpstreamTimeout) as raised:
        collect(iter([TextDelta("partial"), StreamError(error)]))
    assert raised.value is error
