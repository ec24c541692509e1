"""Fixtures: each shared-state backend against a real server (SQLite file, redis-server;
the Redis fixtures are the session's, in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "redis"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh GATEWAY_STATE of each backend."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("clean_redis"))
