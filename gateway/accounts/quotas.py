"""Code accounts' quota readings, kept in the shared state so every worker and host sees them.

The maintenance loop (:mod:`gateway.accounts.maintenance`) reads a code account's plan,
credits and quota windows (:class:`gateway.upstream.quota.QuotaReader`) every
``GATEWAY_CREDITS_INTERVAL`` seconds, like a web account's credits; the admin page, the
metrics and the pool read what was kept. One JSON value per account under
``quota:<account key>`` (no secret in it); a failed reading keeps the last one and is
not tried again before the interval (``quotatry:<account key>``, with that TTL).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gateway.config import Settings
from gateway.state import SharedState
from gateway.upstream import constants as C
from gateway.upstream.credentials import Credential
from gateway.upstream.quota import AccessTokens, QuotaReader
from gateway.upstream.quota_shapes import Quota

log = logging.getLogger(__name__)

QUOTA_KEY = "quota:"
TRIED_KEY = "quotatry:"
#: Told of every reading kept (the metrics' gauges): the account key and the reading.
OnReading = Callable[[str, Quota], None]


class Quotas:
    """Reads code accounts' quota and keeps the last reading of each."""

    def __init__(self, state: SharedState, reader: QuotaReader,
                 on_reading: OnReading | None = None) -> None:
        self._state = state
        self.reader = reader
        self._on_reading: OnReading = on_reading or (lambda key, quota: None)

    def of(self, key: str) -> Quota | None:
        """The last reading of the account ``key`` (None: never read, or the state is down)."""
        try:
            raw = self._state.get(QUOTA_KEY + key)
        except Exception:
            log.warning("could not read the quota of account %s", key)
            return None
        return Quota.from_json(raw) if raw else None

    def due(self, key: str) -> bool:
        """Whether the account's quota should be read again (not tried within the interval)."""
        try:
            return self._state.get(TRIED_KEY + key) is None
        except Exception:
            return False  # the state is down: reading would have nowhere to go

    def read(self, cred: Credential, interval: float) -> Quota:
        """Read the account's quota now and keep it (raises the reading's error; the last
        reading stays, and the next try waits ``interval``)."""
        self._state.put(TRIED_KEY + cred.key, "1", ttl=max(1.0, interval))
        quota = self.reader.read(cred)
        self._state.put(QUOTA_KEY + cred.key, quota.as_json())
        self._on_reading(cred.key, quota)
        return quota

    def forget(self, key: str) -> None:
        """Drop what is kept of an account (signed out)."""
        self.reader.forget(key)
        for name in (QUOTA_KEY, TRIED_KEY):
            try:
                self._state.delete(name + key)
            except Exception:
                log.warning("could not forget the quota of account %s", key)

    def exhausted_until(self, key: str, now: float) -> float | None:
        """When an account whose last reading shows a spent window can answer again
        (None: not known to be spent, or its window has reset since)."""
        quota = self.of(key)
        if quota is None or not quota.exhausted:
            return None
        until = quota.resets_at
        return until if until is not None and until > now else None


def quota_reader(settings: Settings, signins: AccessTokens | None = None) -> QuotaReader:
    """A reader of code accounts' quota, each on its own region's hosts."""
    regions = {region: settings.code(region) for region in C.CODE_REGIONS}
    return QuotaReader(regions, settings.code_region, signins)


def build_quotas(settings: Settings, state: SharedState, signins: AccessTokens,
                 on_reading: OnReading | None = None) -> Quotas:
    """The quotas of ``state``, read as :func:`quota_reader` reads them."""
    return Quotas(state, quota_reader(settings, signins), on_reading)
