"""The account pool on its default state (a private SQLite file); the shared-state
backends across processes are tested in tests/state."""

import threading
import time

import pytest

from gateway.chat.pool import AccountPool
from gateway.errors import AccountsBusy
from gateway.upstream.credentials import parse_one
from tests.upstream.test_credentials import LIVE, jwt


def creds(n: int):
    return [parse_one(f"{10**17 + i}+" + jwt({**LIVE, "n": i})) for i in range(n)]


def test_one_lease_per_account_and_least_recently_used_first() -> None:
    pool = AccountPool()
    a, b = creds(2)
    first = pool.acquire([a, b], 0)
    second = pool.acquire([a, b], 0)
    assert {first.credential, second.credential} == {a, b}
    with pytest.raises(AccountsBusy) as info:
        pool.acquire([a, b], 0)
    assert info.value.retry_after and info.value.retry_after >= 1


def test_waiter_gets_the_released_account() -> None:
    pool = AccountPool()
    (a,) = creds(1)
    lease = pool.acquire([a], 0)
    threading.Timer(0.1, lease.release).start()
    started = time.monotonic()
    assert pool.acquire([a], 2).credential == a
    assert time.monotonic() - started < 1


def test_cooldown_keeps_an_account_out_until_it_ends() -> None:
    pool = AccountPool()
    (a,) = creds(1)
    pool.acquire([a], 0).release(cooldown=0.3)
    with pytest.raises(AccountsBusy):
        pool.acquire([a], 0.05)
    assert pool.acquire([a], 1).credential == a


def test_a_release_wakes_a_local_waiter_without_waiting_for_a_poll() -> None:
    pool = AccountPool()
    a, b = creds(2)
    lease = pool.acquire([a], 0)
    assert pool.snapshot() == {"busy": 1, "cooling": 0, "dead": 0, "free": 0}
    threading.Timer(0.2, lease.release).start()
    assert pool.acquire([a, b], 1).credential == b  # a free one is taken at once
    assert pool.acquire([a], 2).credential == a
