"""The matrix driver's poll loop and diffing, against a fake client and a fake clock."""

from __future__ import annotations

import types
from typing import Any

import pytest

from gateway.errors import UpstreamServerError
from gateway.upstream import matrix, pacing
from gateway.upstream.conversation import TurnFailed, TurnFinished, UpIdle, UpReasoning, UpStep, UpText
from gateway.upstream.settings import PollSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    shim = types.SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep)
    monkeypatch.setattr(matrix, "time", shim)
    monkeypatch.setattr(pacing, "time", shim)
    return fake


def detail(status: int, *messages: dict[str, Any]) -> dict[str, Any]:
    user = {"msg_id": 1, "msg_type": 1, "msg_content": "q"}
    return {"chat": {"chat_id": 5, "chat_status": status}, "messages": [user, *messages]}


def answer(text: str, thinking: str = "") -> dict[str, Any]:
    return {"msg_id": 2, "msg_type": 2, "msg_content": text, "extra_info": {"thinking_content": thinking}}


class FakeClient:
    def __init__(self, answers: list[Any], clock: Clock, cost: float = 0.05) -> None:
        self.answers, self.clock, self.cost = answers, clock, cost
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, cred: Any, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((path, body))
        self.clock.now += self.cost
        item = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(item, Exception):
            raise item
        return item


def turn_of(client: FakeClient) -> matrix.MatrixTurn:
    return matrix.MatrixTurn(client, None, 5, 1, PollSettings(first=0.2, steady=0.25, idle=0.5))  # type: ignore[arg-type]


def test_cumulative_contents_become_deltas(clock: Clock) -> None:
    client = FakeClient([detail(1), detail(1, answer("He", "th")), detail(1, answer("Hello", "think")),
                         detail(2, answer("Hello!", "think"))], clock)
    events = list(turn_of(client).events())
    assert events == [UpIdle(), UpReasoning("th"), UpText("He"), UpReasoning("ink"), UpText("llo"),
                      UpText("!"), TurnFinished(2)]
    assert all(path == matrix.C.PATH_DETAIL for path, _ in client.calls)


def test_polls_are_spaced_and_never_faster_than_the_minimum(clock: Clock) -> None:
    client = FakeClient([detail(1)] * 3 + [detail(1, answer("a"))] * 2 + [detail(2, answer("a"))], clock)
    list(turn_of(client).events())
    assert clock.sleeps[:2] == [0.2, 0.2]  # waiting for the first content
    assert all(s >= matrix.MIN_POLL_INTERVAL for s in clock.sleeps)
    assert 0.25 in clock.sleeps  # steady once content flows


def test_an_answer_that_stops_growing_is_polled_sooner(clock: Clock) -> None:
    # Growing, growing, stalled (whole text shown, still generating), growing, finished.
    client = FakeClient([detail(1, answer("a")), detail(1, answer("ab")), detail(1, answer("ab")),
                         detail(1, answer("abc")), detail(2, answer("abc"))], clock)
    list(turn_of(client).events())
    assert matrix.STALL_POLL_INTERVAL < 0.25
    assert matrix.STALL_POLL_INTERVAL >= matrix.MIN_POLL_INTERVAL  # the upstream's 5 polls/s
    assert clock.sleeps == [0.25, 0.25, matrix.STALL_POLL_INTERVAL, 0.25]


def test_a_step_is_reported_once_complete(clock: Clock) -> None:
    step = {"msg_id": 3, "msg_type": 2, "msg_content": "", "tool_call": {"tool_call_name": "web_search"}}
    done = dict(step, msg_content='[{"url": "u"}]')
    client = FakeClient([detail(1, step), detail(1, done, answer("x")), detail(2, done, answer("x"))], clock)
    events = [e for e in turn_of(client).events() if not isinstance(e, UpIdle)]
    assert events == [UpStep("web_search", '[{"url": "u"}]'), UpText("x"), TurnFinished(2)]


def test_transient_poll_failures_are_retried_then_fail_the_turn(clock: Clock) -> None:
    error = UpstreamServerError()
    client = FakeClient([error, detail(2, answer("ok"))], clock)
    assert list(turn_of(client).events())[-1] == TurnFinished(2)
    failing = FakeClient([error], clock)
    events = list(turn_of(failing).events())
    assert isinstance(events[-1], TurnFailed) and len(failing.calls) == len(pacing.POLL_FAILURE_DELAYS) + 1


@pytest.mark.parametrize(("asked", "sent"), [
    ("MiniMax-M2-Stable", "MiniMax-M2-Stable"),
    ("MiniMax-M3.1-Flash-Preview", "MiniMax-M2"),  # today's names are the session surface's
    ("anything", "MiniMax-M2"),
])
def test_send_body_names_a_model_the_matrix_surface_takes(asked: str, sent: str) -> None:
    assert matrix.send_body("hi", asked)["model_option"] == {"display_name": sent, "model_type": 0}


def test_send_body_omits_model_option_when_told() -> None:
    assert "model_option" in matrix.send_body("hi", "M")
    assert "model_option" not in matrix.send_body("hi", "M", model_option=False)
