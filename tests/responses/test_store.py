"""Stored responses in the shared state: scoped per caller, bounded, expiring, never
failing an answer over a state error."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from gateway.responses.store import ResponseStore
from gateway.state import SharedState, open_state

RESPONSE = {"id": "resp_1", "object": "response", "output": []}
ITEMS = [{"type": "message", "role": "user", "content": "Hi"}]


@pytest.fixture
def state() -> Iterator[SharedState]:
    backend = open_state("")
    yield backend
    backend.close()


def test_saved_then_loaded_only_in_its_scope(state: SharedState) -> None:
    mine, theirs = ResponseStore(state, "own.a", 60, 10_000), ResponseStore(state, "own.b", 60, 10_000)
    mine.save(RESPONSE, ITEMS)
    stored = mine.load("resp_1")
    assert stored is not None and (stored.response, stored.items) == (RESPONSE, ITEMS)
    assert theirs.load("resp_1") is None and not theirs.delete("resp_1")
    assert mine.delete("resp_1") and mine.load("resp_1") is None


def test_nothing_over_the_size_bound_or_with_ttl_zero(state: SharedState) -> None:
    small = ResponseStore(state, "own.a", 60, 50)
    small.save(RESPONSE, ITEMS)
    assert small.load("resp_1") is None
    off = ResponseStore(state, "own.a", 0, 10_000)
    off.save(RESPONSE, ITEMS)
    assert off.load("resp_1") is None and ResponseStore(state, "own.a", 60, 10_000).load("resp_1") is None


def test_expired_records_are_gone(state: SharedState) -> None:
    store = ResponseStore(state, "own.a", 0.05, 10_000)
    store.save(RESPONSE, ITEMS)
    time.sleep(0.2)
    assert store.load("resp_1") is None


class BrokenState:
    def get(self, key: str) -> str | None:
        raise ConnectionError("state down")

    def put(self, key: str, value: str, ttl: float | None = None) -> None:
        raise ConnectionError("state down")


def test_a_state_failure_is_no_failed_answer() -> None:
    store = ResponseStore(BrokenState(), "own.a", 60, 10_000)  # type: ignore[arg-type]
    store.save(RESPONSE, ITEMS)
    assert store.load("resp_1") is None
