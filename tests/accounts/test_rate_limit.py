"""A key's requests-per-minute hold over every minute, not only within the clock's minutes:
the accounts service on each shared-state backend (a real SQLite file and redis-server),
driven by an injected clock across a minute's edge."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.accounts.keys import KeyRing, parse_keys
from gateway.accounts.roster import parse_roster
from gateway.accounts.service import AccountsService
from gateway.accounts.watch import Listing, setting_entries
from gateway.errors import KeyLimited
from gateway.state import SharedState, open_state
from gateway.upstream.credentials import Credential

KEY = "sk-limited-0f1e2d3c4b5a6978"
RPM = 5


@pytest.fixture(params=["sqlite", "redis"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SharedState]:
    url = f"sqlite://{tmp_path / 'state.db'}" if request.param == "sqlite" else request.getfixturevalue("clean_redis")
    opened = open_state(url)
    yield opened
    opened.close()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def service(state: SharedState, clock: Clock) -> AccountsService:
    keys: Listing[KeyRing] = Listing(parse_keys, setting_entries("GATEWAY_API_KEYS", f"{KEY} rpm={RPM}"))
    roster: Listing[tuple[Credential, ...]] = Listing(parse_roster, setting_entries("MINIMAX_CREDENTIALS", ""))
    chat = SimpleNamespace(pool=SimpleNamespace(state=state))  # only the state is used without concurrency
    return AccountsService(keys, roster, chat, clock)  # type: ignore[arg-type]


def statuses(accounts: AccountsService, clock: Clock, at: float, count: int) -> list[int]:
    """Status of ``count`` requests at ``at`` (a tenth of a second apart): 200 or the error's."""
    seen = []
    for i in range(count):
        clock.now = at + i / 10
        try:
            accounts.caller([KEY])
            seen.append(200)
        except KeyLimited as error:
            seen.append(error.status)
    return seen


def test_a_minutes_edge_lets_no_second_allowance_through(state: SharedState) -> None:
    edge = (time.time() // 60 + 10) * 60
    clock = Clock(edge)
    accounts = service(state, clock)
    assert statuses(accounts, clock, edge - 1, RPM) == [200] * RPM  # just before the edge
    assert statuses(accounts, clock, edge + 0.5, RPM) == [429] * RPM  # just after it
    with pytest.raises(KeyLimited) as refused:
        accounts.caller([KEY])
    assert refused.value.retry_after == 59  # until the first request is a minute old
    # A minute after each admitted request, one more is admitted.
    assert statuses(accounts, clock, edge + 59, RPM + 1) == [200] * RPM + [429]
