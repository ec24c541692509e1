"""Account health in the shared state: busy is no failure, a refusal is suspect until
the identity check confirms it, dead accounts are re-probed later and later."""

from __future__ import annotations

import pytest

from gateway.chat.health import ACTIVITY_MINUTES, REPROBE_DELAYS, AccountHealth, Activity
from gateway.errors import AccountRefused, UpstreamServerError, UpstreamUnauthorized
from gateway.state import SharedState, open_state


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def state() -> SharedState:
    return open_state("")


def test_failures_are_remembered_without_changing_the_state(state: SharedState) -> None:
    clock = Clock()
    health = AccountHealth(state, clock)
    health.failed("a", UpstreamServerError("MiniMax answered HTTP 502"))
    seen = health.of("a")
    assert seen.state == "ok" and seen.last_error == "UpstreamServerError: MiniMax answered HTTP 502"
    assert seen.last_error_at == clock.now
    assert AccountHealth(state).of("a") == seen, "every worker reads the same health"


def test_a_refusal_is_suspect_until_confirmed_and_success_clears_it(state: SharedState) -> None:
    health = AccountHealth(state, Clock())
    health.suspect("a", AccountRefused())
    assert health.of("a").state == "suspect" and not health.is_dead("a")
    health.ok("a", "session")
    assert (health.of("a").state, health.of("a").surface) == ("ok", "session")
    assert health.of("a").last_error is not None, "the last error stays shown"


def test_dead_accounts_are_reprobed_with_growing_delays(state: SharedState) -> None:
    clock = Clock()
    health = AccountHealth(state, clock)
    waits = []
    for _ in range(len(REPROBE_DELAYS) + 1):
        health.dead("a", UpstreamUnauthorized())
        assert health.is_dead("a") and not health.probe_due("a")
        waits.append(health.of("a").probe_at - clock.now)  # type: ignore[operator]
        clock.now = health.of("a").probe_at  # type: ignore[assignment]
        assert health.probe_due("a")
    assert waits == [*REPROBE_DELAYS, REPROBE_DELAYS[-1]]
    health.suspect("a", AccountRefused())
    assert health.is_dead("a"), "a suspicion never revives a dead account"
    health.ok("a")
    assert not health.is_dead("a") and health.of("a").probes == 0


def test_dead_among_skips_the_dead_and_sees_revival(state: SharedState) -> None:
    clock = Clock()
    health = AccountHealth(state, clock)
    health.dead("b", UpstreamUnauthorized())
    assert health.dead_among(["a", "b"]) == {"b"}
    AccountHealth(state, clock).ok("b")  # another worker saw it answer
    clock.now += 1.0
    assert health.dead_among(["a", "b"]) == set()


def test_answers_and_credits(state: SharedState) -> None:
    clock = Clock()
    health = AccountHealth(state, clock)
    health.answered("a")
    health.answered("a")
    assert health.answers_today("a") == 2 and health.answers_today("b") == 0
    assert health.credits_due("a", 600)
    health.credits("a", 42.5)
    assert health.of("a").credits == 42.5 and not health.credits_due("a", 600)
    clock.now += 600
    assert health.credits_due("a", 600)


def test_activity_counts_per_minute_for_an_hour(state: SharedState) -> None:
    activity = Activity(state)
    activity.request(failed=False)
    activity.request(failed=True)
    activity.error()
    series = activity.series()
    assert len(series["requests"]) == len(series["errors"]) == ACTIVITY_MINUTES  # type: ignore[arg-type]
    assert series["requests"][-1] == 2 and series["errors"][-1] == 2  # type: ignore[index]
