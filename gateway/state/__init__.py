"""State shared by the gateway's workers and hosts: account leases, cooldowns, fair waiting.

``GATEWAY_STATE`` picks the backend: ``sqlite:///path/state.db`` (the embedded default,
shared by the workers of one host) or ``redis://host:6379/0`` (shared by several hosts).
Every backend implements :class:`SharedState`; :func:`open_state` makes one from the URL.
Unset, the gunicorn configuration gives its workers :func:`lasting_url`: the SQLite file
in the data folder (``GATEWAY_DATA_DIR``), so what the state holds outlives a restart.

A state that cannot last (the data folder is not writable, or the gateway runs without
gunicorn's configuration) is a private temporary file that says so: it holds the reason
under :data:`TEMPORARY_KEY` (:func:`temporary_reason`), which every worker logs and the
health and admin pages show.

Importing this package imports neither backend: ``gateway.config`` checks the URL in the
gunicorn arbiter, which must not load ``redis`` (and with it ``ssl``) before the gevent
workers monkey-patch.
"""

from __future__ import annotations

import os
import sqlite3

from gateway.errors import ConfigError
from gateway.state.base import LEASE_TTL, TICKET_TTL, AccountView, Attempt, SharedState

__all__ = ["LEASE_TTL", "TEMPORARY_KEY", "TICKET_TTL", "AccountView", "Attempt", "SharedState", "check_url",
           "default_state_url", "lasting_url", "open_state", "temporary_reason"]

SQLITE_SCHEME = "sqlite://"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: The file name of the SQLite state in the data folder.
STATE_FILE = "state.db"
#: The value a temporary state keeps: why it is one.
TEMPORARY_KEY = "state:temporary"


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
    process and removed when it exits (for a gateway run without gunicorn's config)."""
    check_url(url)
    if url.startswith(REDIS_SCHEMES):
        from gateway.state.redis_state import RedisState

        return RedisState(url)
    from gateway.state.sqlite_state import SQLiteState

    if not url:
        state = SQLiteState.temporary()
        state.put(TEMPORARY_KEY, "GATEWAY_STATE is empty and the gateway was not started with "
                                 "deploy/gunicorn.conf.py")
        return state
    return SQLiteState(url[len(SQLITE_SCHEME):])


def default_state_url(data_dir: str) -> str:
    """The embedded state's URL when ``GATEWAY_STATE`` is empty: the SQLite file in ``data_dir``."""
    return SQLITE_SCHEME + os.path.join(os.path.abspath(data_dir), STATE_FILE)


def lasting_url(url: str, data_dir: str) -> str:
    """The state the workers of one gunicorn master share: ``url`` when given, else the
    SQLite file in ``data_dir`` (made, with its folder, readable by this user only).
    When that file cannot be used, a temporary one that says why (removed when the
    master exits); a database of a newer schema raises :class:`ConfigError`."""
    if url:
        return url
    from gateway.state.sqlite_state import SQLiteState

    path = default_state_url(data_dir)[len(SQLITE_SCHEME):]
    try:
        lasting = SQLiteState(path)
        lasting.delete(TEMPORARY_KEY)  # opens (and migrates) it
        lasting.close()
        return SQLITE_SCHEME + path
    except (OSError, sqlite3.Error) as error:
        reason = f"{path} cannot be used: {error}"
    temporary = SQLiteState.temporary()
    temporary.put(TEMPORARY_KEY, reason)
    temporary.close()
    return SQLITE_SCHEME + temporary.path


def temporary_reason(state: SharedState) -> str:
    """Why ``state`` is temporary, or "" when it lasts (or cannot be asked)."""
    try:
        return state.get(TEMPORARY_KEY) or ""
    except Exception:
        return ""
