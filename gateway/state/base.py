"""The shared-state interface every backend implements, and the values it passes.

Accounts are named by the credential's key (a short, non-reversible hash). A *lease*
gives one holder (a random id per generation) one account until it is released or its
time-to-live runs out; the holder renews it while the generation runs, so the lease of
a worker or host that died expires on its own. A *ticket* is one waiting request: it
queues on every account it could use, and an account is granted only to the oldest
live ticket queued on it, which makes waiting first come, first served across
processes and hosts. Tickets expire like leases when their waiter stops refreshing them.

Besides leases, a state keeps small values with an optional time-to-live, counters per
time window, sliding logs of admitted events (rate limits) and named records (for upload
dedup, renewed tokens and the upstream chats to sweep).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

#: Seconds a lease lives without renewal: a dead holder's account is free within this.
LEASE_TTL = 8.0
#: Seconds a waiting ticket lives without refresh (the waiter refreshes it as it polls).
TICKET_TTL = 5.0


@dataclass(frozen=True)
class Attempt:
    """The outcome of one try for a lease."""

    #: The account leased, or None when none could be granted now.
    account: str | None
    #: Seconds until the first cooldown among the asked accounts ends (None: none cooling).
    cooldown_left: float | None = None


@dataclass(frozen=True)
class AccountView:
    """What the shared state says about one account now."""

    leased: bool
    cooldown_left: float  # 0 when not cooling down
    #: Who holds the lease (None when not leased).
    holder: str | None = None


class SharedState(Protocol):
    """State shared by every worker (and, with Redis, every host) of the gateway."""

    def try_lease(self, ticket: str, accounts: Sequence[str], holder: str, ttl: float) -> Attempt:
        """Queue ``ticket`` on ``accounts`` (keeping its place when already queued) and lease
        the least recently used of them that is free, not cooling down and whose queue
        ``ticket`` heads; a granted ticket leaves every queue."""
        ...

    def withdraw(self, ticket: str, accounts: Sequence[str]) -> None:
        """Stop waiting: ``ticket`` leaves the queues of ``accounts``."""
        ...

    def renew(self, held: Mapping[str, str], ttl: float) -> set[str]:
        """Extend the leases ``held`` (account → holder) by ``ttl`` s; returns the accounts
        no longer held by that holder (expired and perhaps leased again)."""
        ...

    def release(self, account: str, holder: str, cooldown: float = 0.0) -> None:
        """End ``holder``'s lease of ``account`` (if it still holds it); a cooldown keeps
        the account from being leased again for that many seconds."""
        ...

    def accounts(self, accounts: Sequence[str]) -> dict[str, AccountView]:
        """The lease and cooldown state of each of ``accounts``."""
        ...

    def get(self, key: str) -> str | None:
        """The value stored under ``key``, or None (never set, deleted or expired)."""
        ...

    def put(self, key: str, value: str, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, for ``ttl`` s or until deleted."""
        ...

    def delete(self, key: str) -> None:
        ...

    def hit(self, key: str, window: float, keep: float = 0.0) -> int:
        """Count one event under ``key`` in the current fixed window of ``window`` s;
        returns the window's count so far (this event included). The window's count stays
        readable by :meth:`counts` for at least ``keep`` s (and one window)."""
        ...

    def admit(self, key: str, limit: int, window: float, now: float) -> float:
        """Record one event under ``key`` at ``now`` (epoch seconds) unless ``limit`` events
        are already recorded in the ``window`` s before it: a sliding log, so the limit holds
        over every span of ``window`` s, not only within fixed windows. Returns 0 when the
        event is recorded, else the seconds until the oldest recorded one leaves the window.
        Only recorded events count: a refused one never delays the next admission."""
        ...

    def counts(self, key: str, window: float, windows: int = 1) -> list[int]:
        """The counts of the last ``windows`` fixed windows under ``key``, oldest first,
        the current one last (0 for a window without events or no longer kept)."""
        ...

    def add_record(self, kind: str, name: str, value: str) -> None:
        """Keep ``value`` as record ``name`` of ``kind`` (replacing one of that name)."""
        ...

    def remove_record(self, kind: str, name: str) -> None:
        ...

    def records(self, kind: str) -> dict[str, str]:
        """Every record of ``kind``, by name."""
        ...

    def swap_record(self, kind: str, name: str, expected: str, value: str | None) -> bool:
        """Atomically replace record ``name`` of ``kind`` by ``value`` (None: remove it),
        only if it still holds ``expected``; True when it did."""
        ...

    def close(self) -> None:
        ...
