"""The SQLite state's schema version and its migrations, applied in order on open.

A database records its version in the ``meta`` table. Version 1 is the schema from
before versioning (no ``meta`` table: its tables are recognised instead); each later
version has the statements that bring a database of the version before it up to date.
A database written by a newer gateway is refused rather than used half-understood, so a
downgrade never corrupts what an upgrade wrote.
"""

from __future__ import annotations

import sqlite3

from gateway.errors import ConfigError

#: The version this code writes.
VERSION = 2
META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
#: version → the statements that bring a database of the version before it to it.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (META,),  # the schema gets a version; nothing else changes
}


def version_of(db: sqlite3.Connection) -> int:
    """The database's schema version: 0 for an empty one, 1 for one from before ``meta``."""
    tables = {str(name) for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        if row is not None:
            return int(row[0])
    return 1 if "accounts" in tables else 0


def migrate(db: sqlite3.Connection, schema: str, path: str) -> None:
    """Bring the database to :data:`VERSION` (inside the caller's transaction); ``schema``
    creates whatever an empty database lacks."""
    found = version_of(db)
    if found > VERSION:
        raise ConfigError(f"the state database {path} has schema version {found}, newer than this "
                          f"gateway's ({VERSION}): upgrade the gateway or point GATEWAY_STATE elsewhere")
    for version in range(max(found, 1) + 1, VERSION + 1):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    for statement in (*schema.split(";"), META):
        if statement.strip():
            db.execute(statement)
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('version', ?)", (str(VERSION),))
