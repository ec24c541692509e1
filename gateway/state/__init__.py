"""State shared by the gateway's workers and hosts: account leases, cooldowns, fair waiting.

``GATEWAY_STATE`` picks the backend: ``sqlite:///path/state.db`` (the embedded default,
shared by the workers of one host) or ``redis://host:6379/0`` (shared by several hosts).
Every backend implements :class:`SharedState`; :func:`open_state` makes one from the URL.

Importing this package imports neither backend: ``gateway.config`` checks the URL in the
gunicorn arbiter, which must not load ``redis`` (and with it ``ssl``) before the gevent
workers monkey-patch.
"""

from __future__ import annotations

import os

from gateway.errors import ConfigError
from gateway.state.base import LEASE_TTL, TICKET_TTL, AccountView, Attempt, SharedState

__all__ = ["LEASE_TTL", "TICKET_TTL", "AccountView", "Attempt", "SharedState", "check_url", "open_state"]

SQLITE_SCHEME = "sqlite://"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def check_url(url: str) -> None:
    """Raise :class:`ConfigError` unless ``url`` names a usable backend (empty: a private one)."""
    if not url:
        return
    if url.startswith(SQLITE_SCHEME):
        if not os.path.isabs(url[len(SQLITE_SCHEME):]):
            raise ConfigError("GATEWAY_STATE must be sqlite:///absolute/path/state.db")
        return
    if not url.startswith(REDIS_SCHEMES):
        raise ConfigError("GATEWAY_STATE must start with sqlite:// or redis://")


def open_state(url: str) -> SharedState:
    """The backend ``url`` names; empty: a SQLite file in a fresh folder, private to this
    process (for a gateway run without gunicorn's config, e.g. in tests)."""
    check_url(url)
    if url.startswith(REDIS_SCHEMES):
        from gateway.state.redis_state import RedisState

        return RedisState(url)
    from gateway.state.sqlite_state import SQLiteState

    if not url:
        return SQLiteState.temporary()
    return SQLiteState(url[len(SQLITE_SCHEME):])
