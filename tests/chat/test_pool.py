import threading
import time

import pytest

from gateway.chat.pool import AccountLocks, AccountPool
from gateway.errors import AccountsBusy
from tests.upstream.test_credentials import LIVE, jwt
from gateway.upstream.credentials import parse_one


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


def test_an_account_locked_by_another_process_counts_as_busy(tmp_path) -> None:
    import subprocess
    import sys

    (a,) = creds(1)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(0.6)",
         str(tmp_path / f"{a.key}.lock")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    pool = AccountPool(locks=AccountLocks(str(tmp_path)))
    with pytest.raises(AccountsBusy):
        pool.acquire([a], 0.2)
    started = time.monotonic()
    lease = pool.acquire([a], 3)  # granted once the other process lets go
    assert 0.1 < time.monotonic() - started < 2
    lease.release()
    holder.wait(5)
