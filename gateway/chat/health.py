"""Account health, kept in the shared state so every worker and host sees the same.

Busy is not failure: an account the upstream calls busy only cools down (the pool's
affair). A refusal whose identity check (user info) still passes makes the account
*suspect*: it stays in use, and its next success clears it. Only a refusal the identity
check confirms makes it *dead*; a dead account is skipped by server-side pools and
re-probed with a growing delay (:data:`REPROBE_DELAYS`) until it answers again. Every
failure is remembered as the account's last error, with its time; finished answers are
counted per UTC day and credits are kept as last read.

One JSON value per account under ``health:<account key>``; concurrent writers may race,
and the last one wins (health is advisory, leases are what must be exact).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from gateway.errors import GatewayError
from gateway.state import SharedState

log = logging.getLogger(__name__)

HEALTH_KEY = "health:"
#: An account whose quota (or credits) ran out, until when: it is skipped meanwhile.
QUOTA_KEY = "quota-out:"
ANSWERS_KEY = "answers:"
DAY = 86400.0
#: Seconds before each re-probe of a dead account, then the last one repeated.
REPROBE_DELAYS: tuple[float, ...] = (30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
#: The longest last-error text kept (messages never hold secrets; this bounds size).
ERROR_CHARS = 300
OK, SUSPECT, DEAD = "ok", "suspect", "dead"
#: Seconds a process trusts what it read of an account's death.
DEAD_CACHE_SECONDS = 1.0
ACTIVITY_KEY = "activity:"
MINUTE = 60.0
#: Minutes of requests and errors kept for the admin page's chart.
ACTIVITY_MINUTES = 60


@dataclass(frozen=True)
class Health:
    """What is known of one account's health."""

    state: str = OK
    last_error: str | None = None
    last_error_at: float | None = None
    #: Dead accounts: when the next re-probe is due, and how many failed so far.
    probe_at: float | None = None
    probes: int = 0
    credits: float | None = None
    credits_at: float | None = None
    #: The upstream surface the account last answered on.
    surface: str | None = None


class AccountHealth:
    """Reads and records account health in the shared state."""

    def __init__(self, state: SharedState, clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._clock = clock
        self._dead_cache: dict[str, tuple[bool, float]] = {}
        self._quota_cache: dict[str, tuple[float, float]] = {}

    def of(self, key: str) -> Health:
        try:
            raw = self._state.get(HEALTH_KEY + key)
        except Exception:
            log.warning("could not read the health of account %s", key)
            return Health()
        return _parse(raw)

    def is_dead(self, key: str) -> bool:
        return self.of(key).state == DEAD

    def failed(self, key: str, error: GatewayError) -> None:
        """A failure that says nothing of the account's life (an upstream 5xx, a timeout)."""
        self._update(key, lambda h: self._with_error(h, error))

    def suspect(self, key: str, error: GatewayError) -> None:
        self._update(key, lambda h: self._with_error(replace(h, state=DEAD if h.state == DEAD else SUSPECT), error))

    def dead(self, key: str, error: GatewayError) -> None:
        """Refused, and the identity check confirmed it: re-probe later, later each time."""
        def mark(h: Health) -> Health:
            probes = h.probes + 1 if h.state == DEAD else 1
            delay = REPROBE_DELAYS[min(probes, len(REPROBE_DELAYS)) - 1]
            return self._with_error(replace(h, state=DEAD, probes=probes, probe_at=self._clock() + delay), error)
        self._update(key, mark)
        self._dead_cache.pop(key, None)

    def ok(self, key: str, surface: str | None = None) -> None:
        """The account answered: no longer suspect or dead (its last error stays shown)."""
        health = self.of(key)
        if health.state != OK or (surface is not None and surface != health.surface):
            self._update(key, lambda h: replace(h, state=OK, probe_at=None, probes=0,
                                                surface=surface or h.surface))
            self._dead_cache.pop(key, None)

    def answered(self, key: str) -> None:
        self._safely(lambda: self._state.hit(ANSWERS_KEY + key, DAY))

    def answers_today(self, key: str) -> int:
        try:
            return self._state.counts(ANSWERS_KEY + key, DAY)[-1]
        except Exception:
            return 0

    def credits(self, key: str, amount: float | None) -> None:
        self._update(key, lambda h: replace(h, credits=amount, credits_at=self._clock()))

    def credits_due(self, key: str, interval: float) -> bool:
        health = self.of(key)
        return health.state != DEAD and self._clock() - (health.credits_at or 0) >= interval

    def probe_due(self, key: str) -> bool:
        health = self.of(key)
        return health.state == DEAD and (health.probe_at or 0) <= self._clock()

    def out_of_quota(self, key: str, seconds: float) -> None:
        """The account's quota ran out: skip it for ``seconds`` (every worker and host)."""
        until = self._clock() + seconds
        self._safely(lambda: self._state.put(QUOTA_KEY + key, repr(until), seconds))
        self._quota_cache[key] = (until, self._clock())

    def out_of_quota_among(self, keys: list[str]) -> dict[str, float]:
        """Which of ``keys`` are out of quota now, with the seconds left (read at most once
        a second per account and process, like :meth:`dead_among`)."""
        now = self._clock()
        out: dict[str, float] = {}
        for key in keys:
            seen = self._quota_cache.get(key)
            if seen is None or now - seen[1] >= DEAD_CACHE_SECONDS:
                seen = self._quota_cache[key] = (self._quota_until(key), now)
            if seen[0] > now:
                out[key] = seen[0] - now
        return out

    def _quota_until(self, key: str) -> float:
        try:
            return float(self._state.get(QUOTA_KEY + key) or 0.0)
        except Exception:  # unreadable (or the state is down): not known to be out
            return 0.0

    def dead_among(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` are dead (read at most once a second per account and process:
        server pools ask this on every request)."""
        now = self._clock()
        dead = set()
        for key in keys:
            seen = self._dead_cache.get(key)
            if seen is None or now - seen[1] >= DEAD_CACHE_SECONDS:
                seen = self._dead_cache[key] = (self.is_dead(key), now)
            if seen[0]:
                dead.add(key)
        return dead

    def _with_error(self, health: Health, error: GatewayError) -> Health:
        text = f"{type(error).__name__}: {error.message}"[:ERROR_CHARS]
        return replace(health, last_error=text, last_error_at=self._clock())

    def _update(self, key: str, change: Callable[[Health], Health]) -> None:
        self._safely(lambda: self._state.put(HEALTH_KEY + key, json.dumps(asdict(change(self.of(key))))))

    @staticmethod
    def _safely(action: Callable[[], object]) -> None:
        try:
            action()
        except Exception:  # health is advisory: never fail a request over it
            log.warning("could not record account health", exc_info=True)


def _parse(raw: str | None) -> Health:
    if not raw:
        return Health()
    try:
        return Health(**json.loads(raw))
    except (TypeError, ValueError):
        return Health()


class Activity:
    """Requests and errors per minute over the last hour, across workers and hosts."""

    def __init__(self, state: SharedState) -> None:
        self._state = state

    def request(self, failed: bool) -> None:
        self._hit("requests")
        if failed:
            self._hit("errors")

    def error(self) -> None:
        """An error after the response began (an in-stream error frame)."""
        self._hit("errors")

    def series(self) -> dict[str, object]:
        return {"minute": MINUTE, "requests": self._counts("requests"), "errors": self._counts("errors")}

    def _hit(self, name: str) -> None:
        AccountHealth._safely(lambda: self._state.hit(ACTIVITY_KEY + name, MINUTE, keep=MINUTE * ACTIVITY_MINUTES))

    def _counts(self, name: str) -> list[int]:
        try:
            return self._state.counts(ACTIVITY_KEY + name, MINUTE, ACTIVITY_MINUTES)
        except Exception:
            return [0] * ACTIVITY_MINUTES
