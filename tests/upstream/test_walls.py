"""A quota wall written as answer text is a quota error on the web surfaces, never an answer.

``gateway/upstream/walls.py`` reads a turn's events; these feed it events directly (the
session and matrix drivers wrap their turns in it: see the end-to-end tests in
tests/chat/test_quota_wall.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.errors import QuotaExhausted, UpstreamServerError
from gateway.upstream.conversation import (
    TurnFailed,
    TurnFinished,
    UpIdle,
    UpReasoning,
    UpstreamEvent,
    UpText,
)
from gateway.upstream.walls import is_quota_wall, quota_guarded

SERVER_WALL = "Token Plan usage limit reached: Upgrade your Token Plan or purchase Credits for more usage. (2056)"
CLIENT_WALL = "42212: " + SERVER_WALL


@pytest.mark.parametrize("text", [
    SERVER_WALL, CLIENT_WALL, "42212: Token Plan usage limit reached", "42212: Token Plan usage limit reached (2056)",
    "  token plan usage limit reached.\n",
])
def test_walls(text: str) -> None:
    assert is_quota_wall(text)


@pytest.mark.parametrize("text", [
    "", "Hello", "42 is the answer", "Token Plan usage limits are documented at https://example.org",
    SERVER_WALL + "\nBut here is your answer anyway: " + "x" * 500,
    "The message 'Token Plan usage limit reached' means your plan is spent.",
])
def test_answers_that_are_no_walls(text: str) -> None:
    assert not is_quota_wall(text)


def guarded(*events: UpstreamEvent) -> list[UpstreamEvent]:
    return list(quota_guarded(iter(events)))


def pieces(text: str, size: int) -> list[UpText]:
    return [UpText(text[i:i + size]) for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [1, 5, 1000])
@pytest.mark.parametrize("wall", [SERVER_WALL, CLIENT_WALL])
def test_a_wall_answer_becomes_a_quota_error_and_none_of_it_is_shown(wall: str, size: int) -> None:
    events = guarded(UpReasoning("hm"), *pieces(wall, size), UpIdle(), TurnFinished(7))
    assert not any(isinstance(e, UpText) for e in events)
    assert events[0] == UpReasoning("hm")
    assert isinstance(events[-1], TurnFailed) and type(events[-1].error) is QuotaExhausted


@pytest.mark.parametrize("size", [1, 3, 1000])
@pytest.mark.parametrize("text", ["Hello world", "42 is the answer.", "Token Planning is hard.", "T"])
def test_other_answers_pass_unchanged(text: str, size: int) -> None:
    events = guarded(*pieces(text, size), TurnFinished(7))
    assert "".join(e.text for e in events if isinstance(e, UpText)) == text
    assert events[-1] == TurnFinished(7)


def test_text_flows_as_soon_as_it_cannot_be_a_wall() -> None:
    seen: list[UpstreamEvent] = []

    def upstream() -> Iterator[UpstreamEvent]:
        yield UpText("He")
        assert seen == [UpText("He")]  # released before the next delta is read
        yield UpText("llo")
        yield TurnFinished(None)

    for event in quota_guarded(upstream()):
        seen.append(event)
    assert seen == [UpText("He"), UpText("llo"), TurnFinished(None)]


def test_a_failure_keeps_its_own_error() -> None:
    failure = TurnFailed(UpstreamServerError("down"))
    assert guarded(UpText("Tok"), failure) == [UpText("Tok"), failure]


def test_closing_the_guard_closes_the_turn() -> None:
    closed = []

    def upstream() -> Iterator[UpstreamEvent]:
        try:
            yield UpText("x")
            yield UpText("y")
        finally:
            closed.append(True)

    events = quota_guarded(upstream())
    next(events)
    events.close()  # type: ignore[attr-defined]
    assert closed == [True]
