"""Account scheduling: at most one generation per MiniMax account at a time.

The pool knows every account this worker has seen (keyed by the credential's hash). A
request leases one free account among its own credentials, preferring the least
recently used; when all are busy or cooling down it waits, bounded by the queue timeout,
then fails with :class:`AccountsBusy` (429 with Retry-After). An account the upstream
reports busy (in use elsewhere, e.g. the user's browser) cools down for a while.

Waiting uses a :class:`threading.Condition`, which gevent's monkey-patching turns into
a cooperative one under the gunicorn gevent worker.

With several gunicorn workers, each worker's pool only sees its own leases, so a lease
also takes an exclusive ``flock`` on one file per account in a directory all workers
share (:class:`AccountLocks`); an account locked by another worker counts as busy here,
and waiters look again every ``CROSS_PROCESS_RECHECK`` seconds since no notification
crosses processes.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.errors import AccountsBusy
from gateway.upstream.credentials import Credential


CROSS_PROCESS_RECHECK = 0.1


class AccountLocks:
    """One exclusive, non-blocking file lock per account, shared by worker processes."""

    def __init__(self, directory: str | None) -> None:
        self._directory = directory
        self._files: dict[str, int] = {}

    @property
    def shared(self) -> bool:
        return self._directory is not None

    def try_lock(self, key: str) -> bool:
        if self._directory is None:
            return True
        fd = self._files.get(key)
        if fd is None:
            fd = self._files[key] = os.open(os.path.join(self._directory, f"{key}.lock"),
                                            os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def unlock(self, key: str) -> None:
        if self._directory is not None and key in self._files:
            fcntl.flock(self._files[key], fcntl.LOCK_UN)


@dataclass
class AccountState:
    credential: Credential
    busy: bool = False
    cooldown_until: float = 0.0
    last_used: float = 0.0
    #: The upstream refused this credential last time (shown in metrics; still tried).
    dead: bool = False

    def free(self, now: float) -> bool:
        return not self.busy and self.cooldown_until <= now


class Lease:
    """One account held for one generation; release exactly once."""

    def __init__(self, pool: AccountPool, state: AccountState) -> None:
        self._pool = pool
        self._state = state
        self.released = False

    @property
    def credential(self) -> Credential:
        return self._state.credential

    def release(self, cooldown: float = 0.0, dead: bool = False) -> None:
        if not self.released:
            self.released = True
            self._pool._release(self._state, cooldown, dead)


class AccountPool:
    """Leases accounts to generations; one generation per account at a time."""

    def __init__(
        self,
        retry_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[dict[str, int]], None] = lambda counts: None,
        locks: AccountLocks | None = None,
    ) -> None:
        self._locks = locks or AccountLocks(None)
        self._states: dict[str, AccountState] = {}
        self._changed = threading.Condition()
        self._retry_after = retry_after
        self._clock = clock
        self._on_change = on_change

    def acquire(self, credentials: Sequence[Credential], timeout: float) -> Lease:
        """Lease a free account among ``credentials``, waiting at most ``timeout`` s."""
        deadline = self._clock() + timeout
        with self._changed:
            states = [self._state_of(cred) for cred in credentials]
            while True:
                now = self._clock()
                free = sorted((s for s in states if s.free(now)), key=lambda s: s.last_used)
                chosen = next((s for s in free if self._locks.try_lock(s.credential.key)), None)
                if chosen is not None:
                    lease = self._take(chosen, now)
                    self._on_change(self._counts(now))
                    return lease
                if now >= deadline:
                    raise AccountsBusy(retry_after=self._retry_after_for(states, now))
                wait = self._wait_time(states, now, deadline)
                if free:  # free here but held by another worker: look again soon
                    wait = min(wait, CROSS_PROCESS_RECHECK)
                self._changed.wait(wait)

    def snapshot(self) -> dict[str, int]:
        """Counts of accounts by state, for health and metrics."""
        with self._changed:
            return self._counts(self._clock())

    def _counts(self, now: float) -> dict[str, int]:
        states = list(self._states.values())
        return {
            "busy": sum(s.busy for s in states),
            "cooling": sum(not s.busy and s.cooldown_until > now for s in states),
            "dead": sum(s.dead and s.free(now) for s in states),
            "free": sum(s.free(now) and not s.dead for s in states),
        }

    def _state_of(self, credential: Credential) -> AccountState:
        state = self._states.get(credential.key)
        if state is None:
            state = self._states[credential.key] = AccountState(credential)
        return state

    def _take(self, state: AccountState, now: float) -> Lease:
        state.busy, state.last_used = True, now
        return Lease(self, state)

    def _release(self, state: AccountState, cooldown: float, dead: bool) -> None:
        with self._changed:
            self._locks.unlock(state.credential.key)
            state.busy, state.dead = False, dead
            if cooldown > 0:
                state.cooldown_until = self._clock() + cooldown
            self._changed.notify_all()
            self._on_change(self._counts(self._clock()))

    @staticmethod
    def _wait_time(states: list[AccountState], now: float, deadline: float) -> float:
        # Wake for whichever comes first: the deadline or the end of a cooldown.
        ends = [s.cooldown_until for s in states if not s.busy and s.cooldown_until > now]
        return max(0.0, min([deadline, *ends]) - now)

    def _retry_after_for(self, states: list[AccountState], now: float) -> float:
        ends = [s.cooldown_until - now for s in states if s.cooldown_until > now]
        return max(1.0, min([self._retry_after, *ends]))
