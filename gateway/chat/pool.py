"""Account scheduling: at most one generation per MiniMax account at a time.

A request leases one free account among its own credentials (keyed by the credential's
hash), preferring the least recently used; when all are busy or cooling down it waits,
bounded by the queue timeout, then fails with :class:`AccountsBusy` (429 with
Retry-After). An account the upstream reports busy (in use elsewhere, e.g. the user's
browser) cools down for a while.

Leases, cooldowns and the queue of waiters live in the shared state
(:mod:`gateway.state`, ``GATEWAY_STATE``), so the rule holds across every gunicorn
worker and, with Redis, every host. Waiting is first come, first served: each request
takes a place in the queue of every account it could use. A lease has a time-to-live;
one background thread per process (a greenlet under gevent's monkey-patching) renews
the process's leases while their generations run, so the account of a worker or host
that died is free again within :data:`~gateway.state.LEASE_TTL` seconds.

Waiters poll the state every :data:`POLL_SECONDS` (no notification crosses processes);
a release in this process wakes its own waiters at once through a
:class:`threading.Condition`, cooperative under gevent.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.errors import AccountsBusy
from gateway.state import LEASE_TTL, SharedState, open_state
from gateway.upstream.credentials import Credential

log = logging.getLogger("gateway.pool")

#: Seconds between two looks at the shared state while waiting for an account.
POLL_SECONDS = 0.05
#: Leases are renewed this many times per time-to-live.
RENEWALS_PER_TTL = 4
#: Seconds at least between two recounts of the accounts for the metrics gauge.
GAUGE_SECONDS = 0.25


@dataclass(frozen=True)
class Accounts:
    """The accounts one request may use, and on whose behalf it asks."""

    credentials: tuple[Credential, ...]
    #: Begins every lease holder of the request (a client key's id), so the shared state
    #: tells whose generation holds an account; empty for personal use.
    tag: str = ""
    #: The operator's accounts (dead ones are skipped) rather than the caller's own.
    server: bool = False

    @property
    def caller(self) -> str:
        """Who asks, for what only that caller may continue (kept conversations, pins): the
        client key's id, or for personal use the caller's credential list (a digest of its
        sorted account keys; a caller whose list merely overlaps another's is another)."""
        if self.tag:
            return self.tag
        listed = "\n".join(sorted(cred.key for cred in self.credentials))
        return "personal:" + hashlib.sha256(listed.encode()).hexdigest()


def as_accounts(accounts: Accounts | Sequence[Credential]) -> Accounts:
    return accounts if isinstance(accounts, Accounts) else Accounts(tuple(accounts))


def holder_id(tag: str = "") -> str:
    """A fresh lease holder id, ``<tag>.<random>`` when tagged."""
    return f"{tag}.{uuid.uuid4().hex}" if tag else uuid.uuid4().hex


@dataclass
class AccountState:
    credential: Credential
    #: The upstream refused this credential last time (shown in metrics; still tried).
    dead: bool = False


class Lease:
    """One account (or one of a client key's concurrency slots) held; release exactly once."""

    def __init__(self, pool: AccountPool, key: str, holder: str, state: AccountState | None = None) -> None:
        self._pool = pool
        self._state = state
        self.key = key
        self.holder = holder
        self.released = False

    @property
    def credential(self) -> Credential:
        if self._state is None:
            raise TypeError("a slot lease holds no account")
        return self._state.credential

    def release(self, cooldown: float = 0.0, dead: bool = False) -> None:
        if not self.released:
            self.released = True
            self._pool._release(self, self._state, cooldown, dead)


class Renewer:
    """Renews every lease of this process until it is released, from one background thread."""

    def __init__(self, state: SharedState, ttl: float) -> None:
        self._state = state
        self._ttl = ttl
        self._held: dict[str, Lease] = {}  # holder → lease
        self._lock = threading.Lock()
        self._pid = 0

    def add(self, lease: Lease) -> None:
        with self._lock:
            self._held[lease.holder] = lease
            if self._pid != os.getpid():  # first lease of this process (or of a forked child)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="lease-renewer", daemon=True).start()

    def accounts(self) -> set[str]:
        """The accounts this process holds now."""
        with self._lock:
            return {lease.key for lease in self._held.values()}

    def remove(self, lease: Lease) -> None:
        with self._lock:
            self._held.pop(lease.holder, None)

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            time.sleep(self._ttl / RENEWALS_PER_TTL)
            self.renew_now()

    def renew_now(self) -> None:
        with self._lock:
            held = {lease.key: lease.holder for lease in self._held.values()}
        if not held:
            return
        try:
            lost = self._state.renew(held, self._ttl)
        except Exception:
            log.warning("could not renew %d account lease(s)", len(held), exc_info=True)
            return
        for key in lost:
            log.warning("lost the lease of account %s while generating (held too long without renewal?)", key)


class Gauge:
    """Recounts the accounts for the metrics gauge in the background, at most every
    ``GAUGE_SECONDS``: counting reads every known account's state, which on the acquire
    path would cost each lease a round trip per account (quadratic in the pool size)."""

    def __init__(self, count: Callable[[], dict[str, int]], report: Callable[[dict[str, int]], None]) -> None:
        self._count = count
        self._report = report
        self._dirty = threading.Event()
        self._lock = threading.Lock()
        self._pid = 0

    def changed(self) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first change in this process (or a forked child)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="account-gauge", daemon=True).start()
        self._dirty.set()

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            self._dirty.wait()
            self._dirty.clear()
            try:
                self._report(self._count())
            except Exception:
                log.warning("could not count the accounts", exc_info=True)
            time.sleep(GAUGE_SECONDS)


class AccountPool:
    """Leases accounts to generations; one generation per account at a time."""

    def __init__(
        self,
        state: SharedState | None = None,
        retry_after: float = 5.0,
        on_change: Callable[[dict[str, int]], None] = lambda counts: None,
        lease_ttl: float = LEASE_TTL,
    ) -> None:
        self._state = state if state is not None else open_state("")
        self._states: dict[str, AccountState] = {}
        self._changed = threading.Condition()
        self._retry_after = retry_after
        self._lease_ttl = lease_ttl
        self._renewer = Renewer(self._state, lease_ttl)
        self._gauge = Gauge(lambda: self._counts(mine_only=True), on_change)

    @property
    def state(self) -> SharedState:
        return self._state

    def acquire(self, credentials: Sequence[Credential], timeout: float, tag: str = "") -> Lease:
        """Lease a free account among ``credentials``, waiting at most ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            states = {cred.key: self._state_of(cred) for cred in credentials}
        keys = list(states)
        ticket, holder = uuid.uuid4().hex, holder_id(tag)
        granted = False
        try:
            while True:
                attempt = self._state.try_lease(ticket, keys, holder, self._lease_ttl)
                if attempt.account is not None:
                    granted = True
                    lease = Lease(self, attempt.account, holder, states[attempt.account])
                    self._renewer.add(lease)
                    self._notify_change()
                    return lease
                now = time.monotonic()
                if now >= deadline:
                    cooling = attempt.cooldown_left or self._retry_after
                    raise AccountsBusy(retry_after=max(1.0, min(self._retry_after, cooling)))
                wait = min(deadline - now, POLL_SECONDS, attempt.cooldown_left or POLL_SECONDS)
                with self._changed:
                    self._changed.wait(wait)
        finally:
            if not granted:  # timed out, or interrupted (e.g. the client went away)
                self._withdraw(ticket, keys)

    def try_slot(self, slots: Sequence[str], tag: str) -> Lease | None:
        """One free slot among ``slots`` (names in the state's account space, renewed like
        account leases), or None at once when every one is taken."""
        ticket, holder = uuid.uuid4().hex, holder_id(tag)
        attempt = self._state.try_lease(ticket, list(slots), holder, self._lease_ttl)
        if attempt.account is None:
            self._withdraw(ticket, list(slots))
            return None
        lease = Lease(self, attempt.account, holder)
        self._renewer.add(lease)
        return lease

    def known(self) -> list[Credential]:
        """Every account this process has leased or tried to."""
        with self._changed:
            return [state.credential for state in self._states.values()]

    def snapshot(self) -> dict[str, int]:
        """Counts of the accounts this process has seen, by state, for health (busy: leased
        by any worker or host)."""
        return self._counts(mine_only=False)

    def _counts(self, mine_only: bool) -> dict[str, int]:
        with self._changed:
            states = list(self._states.values())
        views = self._state.accounts([s.credential.key for s in states])
        held = self._renewer.accounts()
        counts = {"busy": 0, "cooling": 0, "dead": 0, "free": 0}
        for state in states:
            view = views[state.credential.key]
            if view.leased and mine_only and state.credential.key not in held:
                continue  # another process counts it
            kind = ("busy" if view.leased else "cooling" if view.cooldown_left > 0
                    else "dead" if state.dead else "free")
            counts[kind] += 1
        return counts

    def _state_of(self, credential: Credential) -> AccountState:
        state = self._states.get(credential.key)
        if state is None:
            state = self._states[credential.key] = AccountState(credential)
        return state

    def _withdraw(self, ticket: str, keys: list[str]) -> None:
        try:
            self._state.withdraw(ticket, keys)
        except Exception:  # the ticket expires on its own
            log.warning("could not leave the account queue", exc_info=True)

    def _release(self, lease: Lease, state: AccountState | None, cooldown: float, dead: bool) -> None:
        self._renewer.remove(lease)
        try:
            self._state.release(lease.key, lease.holder, cooldown)
        except Exception:  # the lease expires on its own
            log.warning("could not release account %s; it is free when its lease expires", lease.key,
                        exc_info=True)
        if state is None:  # a slot: no account changed
            return
        state.dead = dead
        with self._changed:
            self._changed.notify_all()
        self._notify_change()

    def _notify_change(self) -> None:
        # The metrics gauge adds up the workers' counts: each counts as busy only its own leases.
        self._gauge.changed()
