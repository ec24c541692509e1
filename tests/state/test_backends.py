"""Both shared-state backends against real servers: leases across processes, expiry of a
dead holder's lease, renewal, first-come-first-served waiting, cooldowns, time-outs, and
the small values, counters and records kept for later features."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from gateway.chat.pool import AccountPool
from gateway.errors import AccountsBusy
from gateway.state import LEASE_TTL, SharedState, open_state
from tests.servers import ROOT
from tests.state.accounts import creds

pytestmark = pytest.mark.timeout(120)


class Holder:
    """tests/state/holder.py in its own process."""

    def __init__(self, url: str, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.state.holder", url, *args], cwd=ROOT,
                                     stdout=subprocess.PIPE, text=True)

    def expect(self, line: str) -> str:
        got = (self.proc.stdout.readline() if self.proc.stdout else "").strip()
        assert got.startswith(line), f"expected {line!r}, got {got!r}"
        return got

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def wait(self) -> None:
        assert self.proc.wait(30) == 0


@pytest.fixture
def state(state_url: str) -> SharedState:
    opened = open_state(state_url)
    yield opened
    opened.close()


def test_a_lease_is_exclusive_across_processes(state_url: str) -> None:
    (a,) = creds(1)
    holder = Holder(state_url, "hold", "0", "1.0")
    holder.expect("held")
    pool = AccountPool(open_state(state_url))
    with pytest.raises(AccountsBusy):
        pool.acquire([a], 0.2)
    started = time.monotonic()
    lease = pool.acquire([a], 10)  # granted once the other process lets go
    assert time.monotonic() - started < 3
    holder.expect("released")
    lease.release()
    holder.wait()


def test_a_dead_holders_lease_expires_within_ten_seconds(state_url: str) -> None:
    (a,) = creds(1)
    holder = Holder(state_url, "hold", "0", "60")
    holder.expect("held")
    pool = AccountPool(open_state(state_url))
    with pytest.raises(AccountsBusy):
        pool.acquire([a], 0.1)
    holder.kill()
    killed = time.monotonic()
    pool.acquire([a], 15).release()
    assert time.monotonic() - killed < 10
    assert LEASE_TTL < 10


def test_renewal_keeps_a_long_lease_and_an_unrenewed_one_runs_out(state_url: str, state: SharedState) -> None:
    a, b = creds(2)
    pool = AccountPool(open_state(state_url), lease_ttl=0.6)
    lease = pool.acquire([a], 0)
    other = AccountPool(open_state(state_url))
    time.sleep(2.0)  # more than three times the lease's time-to-live
    with pytest.raises(AccountsBusy):
        other.acquire([a], 0)
    lease.release()
    other.acquire([a], 0).release()
    # Without renewal a lease runs out by itself.
    assert state.try_lease("t", [b.key], "h", 0.3).account == b.key
    assert state.accounts([b.key])[b.key].leased
    time.sleep(0.5)
    assert not state.accounts([b.key])[b.key].leased
    assert state.renew({b.key: "h"}, 5) == set()  # not taken meanwhile: extended again
    assert state.try_lease("t2", [b.key], "h2", 1).account is None
    assert state.renew({b.key: "someone else"}, 5) == {b.key}


def test_waiters_are_served_first_come_first_served_across_processes(state_url: str) -> None:
    (a,) = creds(1)
    pool = AccountPool(open_state(state_url))
    lease = pool.acquire([a], 0)
    waiters = []
    for name in ("first", "second", "third", "fourth"):
        waiter = Holder(state_url, "wait", "0", name)
        waiter.expect("queued")
        waiters.append(waiter)
    lease.release()
    order = []
    for waiter in waiters:
        order.append(waiter.expect("granted").split()[1])
        waiter.wait()
    assert order == ["first", "second", "third", "fourth"]


def test_grants_follow_the_queue_not_the_polling(state: SharedState) -> None:
    (a,) = creds(1)
    assert state.try_lease("holder", [a.key], "h0", 10).account == a.key
    assert state.try_lease("w1", [a.key], "h1", 10).account is None
    assert state.try_lease("w2", [a.key], "h2", 10).account is None
    state.release(a.key, "h0")
    assert state.try_lease("w2", [a.key], "h2", 10).account is None  # w1 came first
    assert state.try_lease("w1", [a.key], "h1", 10).account == a.key
    state.release(a.key, "h1")
    assert state.try_lease("w2", [a.key], "h2", 10).account == a.key


def test_a_waiter_queued_elsewhere_does_not_block_another_account(state: SharedState) -> None:
    a, b = creds(2)
    assert state.try_lease("x", [a.key], "h0", 10).account == a.key
    assert state.try_lease("old", [a.key], "h1", 10).account is None  # waits for a only
    assert state.try_lease("new", [a.key, b.key], "h2", 10).account == b.key


def test_a_dead_waiter_gives_up_its_place(state_url: str) -> None:
    (a,) = creds(1)
    pool = AccountPool(open_state(state_url))
    lease = pool.acquire([a], 0)
    waiter = Holder(state_url, "wait", "0", "dead")
    waiter.expect("queued")
    waiter.kill()
    lease.release()
    started = time.monotonic()
    pool.acquire([a], 15).release()  # after the dead waiter's ticket expires
    assert time.monotonic() - started < 7


def test_least_recently_used_account_first_across_pools(state_url: str) -> None:
    a, b = creds(2)
    one, two = AccountPool(open_state(state_url)), AccountPool(open_state(state_url))
    one.acquire([a], 0).release()
    lease = two.acquire([a, b], 0)
    assert lease.credential == b
    other = one.acquire([a, b], 0)
    assert other.credential == a
    with pytest.raises(AccountsBusy):
        two.acquire([a, b], 0)
    lease.release()
    other.release()


def test_cooldown_holds_across_pools_and_sets_retry_after(state_url: str) -> None:
    (a,) = creds(1)
    one, two = AccountPool(open_state(state_url)), AccountPool(open_state(state_url))
    one.acquire([a], 0).release(cooldown=0.8)
    assert two.snapshot() == {"busy": 0, "cooling": 0, "dead": 0, "free": 0}  # not seen there yet
    with pytest.raises(AccountsBusy) as info:
        two.acquire([a], 0.2)
    assert info.value.retry_after == 1.0
    assert two.snapshot()["cooling"] == 1
    started = time.monotonic()
    lease = two.acquire([a], 3)
    assert 0.2 < time.monotonic() - started < 1.5
    assert one.snapshot()["busy"] == 1 and two.snapshot()["busy"] == 1
    lease.release(dead=True)
    assert two.snapshot() == {"busy": 0, "cooling": 0, "dead": 1, "free": 0}


def test_timeout_raises_accounts_busy_and_leaves_the_queue(state_url: str, state: SharedState) -> None:
    (a,) = creds(1)
    pool = AccountPool(open_state(state_url), retry_after=4.0)
    lease = pool.acquire([a], 0)
    started = time.monotonic()
    with pytest.raises(AccountsBusy) as info:
        pool.acquire([a], 0.3)
    assert 0.3 <= time.monotonic() - started < 1.5
    assert info.value.retry_after == 4.0
    lease.release()
    # The timed-out waiter left the queue: a newcomer is not kept behind it.
    assert state.try_lease(uuid.uuid4().hex, [a.key], "h", 5).account == a.key


def test_values_counters_and_records(state: SharedState) -> None:
    assert state.get("k") is None
    state.put("k", "v")
    state.put("short", "s", ttl=0.3)
    assert (state.get("k"), state.get("short")) == ("v", "s")
    time.sleep(0.4)
    assert state.get("short") is None and state.get("k") == "v"
    state.delete("k")
    assert state.get("k") is None
    counts = [state.hit("key-1", 60) for _ in range(3)]
    assert counts in ([1, 2, 3], [1, 2, 1], [1, 1, 2])  # a window may turn over mid-way
    assert state.hit("key-2", 60) == 1
    state.add_record("chats", "c1", "account-a")
    state.add_record("chats", "c2", "account-b")
    state.add_record("uploads", "c1", "x")
    state.remove_record("chats", "c1")
    assert state.records("chats") == {"c2": "account-b"}
    assert state.records("none") == {}


def test_a_record_is_swapped_only_from_the_value_expected(state: SharedState) -> None:
    state.add_record("chats", "c1", "kept")
    assert not state.swap_record("chats", "c1", "open", "claimed")  # someone changed it meanwhile
    assert state.swap_record("chats", "c1", "kept", "claimed")
    assert not state.swap_record("chats", "c1", "kept", "taken")  # the second comer backs off
    assert state.records("chats") == {"c1": "claimed"}
    assert not state.swap_record("chats", "c1", "kept", None)
    assert state.swap_record("chats", "c1", "claimed", None)
    assert state.records("chats") == {}
    assert not state.swap_record("chats", "missing", "x", "y")
    assert state.records("chats") == {}


def test_counts_read_past_windows_kept_long_enough(state: SharedState) -> None:
    window = 0.5
    state.hit("series", window, keep=5)
    state.hit("series", window, keep=5)
    time.sleep(window * 1.1)
    state.hit("series", window, keep=5)
    past = state.counts("series", window, 4)
    assert len(past) == 4 and sum(past) == 3 and past[-1] in (1, 0)
    assert state.counts("nothing", window, 3) == [0, 0, 0]
    state.hit("short", window)  # kept one window only
    time.sleep(window * 2.5)
    assert sum(state.counts("short", window, 5)) == 0


def test_admit_holds_the_limit_over_every_span_of_the_window(state: SharedState) -> None:
    edge = (time.time() // 60 + 10) * 60  # a minute's edge (fixed windows would reset here)
    before = [state.admit("key-a", 3, 60, edge - 0.5 + i / 10) for i in range(3)]
    after = [state.admit("key-a", 3, 60, edge + 0.5 + i / 10) for i in range(3)]
    assert before == [0, 0, 0]
    # Refused until the oldest admitted event is a window old (and refusals are not logged).
    assert after == [pytest.approx(59.0, abs=0.002), pytest.approx(58.9, abs=0.002), pytest.approx(58.8, abs=0.002)]
    assert state.admit("key-b", 3, 60, edge + 0.5) == 0  # another key counts apart
    assert state.admit("key-a", 3, 60, edge + 59.49) > 0
    assert state.admit("key-a", 3, 60, edge + 59.5) == 0  # the first one has left the window
    assert state.admit("key-a", 3, 60, edge + 59.55) == pytest.approx(0.05, abs=0.002)
    assert [state.admit("key-a", 3, 60, edge + 120) for _ in range(4)][-1] == pytest.approx(60.0, abs=0.002)


def test_account_view_names_the_holder(state: SharedState) -> None:
    (a,) = creds(1)
    assert state.try_lease(uuid.uuid4().hex, [a.key], "holder-1", 5).account == a.key
    assert state.accounts([a.key])[a.key].holder == "holder-1"
    state.release(a.key, "holder-1")
    view = state.accounts([a.key])[a.key]
    assert (view.leased, view.holder) == (False, None)
