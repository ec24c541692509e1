"""The SQLite state as a file that lasts: opened from the schema of before versioning
with its data intact, refused when a newer gateway wrote it, readable by its user only,
and a temporary one (that says so) when its folder cannot be used."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.state import TEMPORARY_KEY, lasting_url, open_state, temporary_reason
from gateway.state.sqlite_schema import VERSION, version_of

#: The schema as it was before versioning (no ``meta`` table): version 1.
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS accounts (
    account TEXT PRIMARY KEY,
    holder TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    cooldown_until REAL NOT NULL DEFAULT 0,
    last_used REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tickets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket TEXT NOT NULL UNIQUE,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_by_expiry ON tickets (expires);
CREATE TABLE IF NOT EXISTS queue (
    account TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (account, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS queue_by_seq ON queue (seq);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL);
CREATE INDEX IF NOT EXISTS kv_by_expiry ON kv (expires);
CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS counters_by_expiry ON counters (expires);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (kind, name)
) WITHOUT ROWID;
"""


def make_v1(path: Path) -> None:
    """A database as the gateway left it before versioning, with data in every table."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_V1)
    db.execute("INSERT INTO accounts VALUES ('acc-a', NULL, 0, 4102444800, 12.5)")
    db.execute("INSERT INTO kv VALUES ('token:acc-a', 'renewed-token', NULL)")
    db.execute("INSERT INTO kv VALUES ('conversation:abc', '{\"id\": \"1\"}', 4102444800)")
    db.execute("INSERT INTO counters VALUES ('keyday:k@0.0', 7, 4102444800)")
    db.execute("INSERT INTO records VALUES ('chats', 'matrix:1', '{\"kept_until\": 5}')")
    db.commit()
    db.close()


def test_a_database_of_the_schema_before_versioning_opens_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    make_v1(path)
    state = open_state(f"sqlite://{path}")
    try:
        assert state.get("token:acc-a") == "renewed-token"
        assert state.get("conversation:abc") == '{"id": "1"}'
        assert state.records("chats") == {"matrix:1": '{"kept_until": 5}'}
        assert state.accounts(["acc-a"])["acc-a"].cooldown_left > 0
        state.put("new", "value")
    finally:
        state.close()
    db = sqlite3.connect(path)
    assert version_of(db) == VERSION
    assert db.execute("SELECT count FROM counters WHERE key = 'keyday:k@0.0'").fetchone() == (7,)
    db.close()
    again = open_state(f"sqlite://{path}")  # opening a current one changes nothing
    try:
        assert again.get("new") == "value" and again.get("token:acc-a") == "renewed-token"
    finally:
        again.close()


def test_a_database_of_a_newer_gateway_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    open_state(f"sqlite://{path}").put("k", "v")
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'version'", (str(VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="newer"):
        open_state(f"sqlite://{path}").get("k")


def test_the_lasting_state_is_readable_by_its_user_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = lasting_url("", str(data))
    assert url == f"sqlite://{data / 'state.db'}"
    state = open_state(url)
    state.put("k", "v")  # the WAL files exist now
    try:
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
        assert temporary_reason(state) == ""
    finally:
        state.close()


def test_a_lasting_state_it_cannot_write_becomes_a_temporary_one_that_says_so(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        blocked = tmp_path / "file"  # root writes anywhere: a folder path through a file fails for all
        blocked.write_text("")
        data = blocked / "data"
    else:
        data = tmp_path / "read-only"
        data.mkdir(mode=0o500)
    url = lasting_url("", str(data))
    assert str(data) not in url
    state = open_state(url)
    try:
        assert str(data) in temporary_reason(state)
        assert state.get(TEMPORARY_KEY)
    finally:
        state.close()


def test_a_named_state_is_used_as_given(tmp_path: Path) -> None:
    assert lasting_url("redis://127.0.0.1:1/0", str(tmp_path)) == "redis://127.0.0.1:1/0"
    assert not (tmp_path / "state.db").exists()
