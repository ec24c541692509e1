"""The SQLite backend: one database file shared by the gunicorn workers of one host.

WAL mode lets readers go on while one writer commits; every change is one short
``BEGIN IMMEDIATE`` transaction, and a busy timeout makes a worker wait its turn for the
write lock instead of failing. Times are wall-clock seconds (``time.time()``), the same
in every process of the host. A process opens its own connection on first use (after
gunicorn forked it) and shares it between its threads or greenlets under a lock.

A waiter that has a place in the queues mostly polls with a plain read (which in WAL
mode never waits for a writer); it writes only to take a lease it can have, or to
refresh its ticket before the ticket would expire.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from gateway.state.base import TICKET_TTL, AccountView, Attempt
from gateway.state.sqlite_schema import migrate

#: Seconds a statement waits for another process's write lock before failing.
BUSY_TIMEOUT = 5.0
#: The database file's mode: it holds renewed tokens and logins, never world-readable
#: (SQLite gives its -wal and -shm files the same mode).
FILE_MODE = 0o600
#: The mode of a folder made for it.
FOLDER_MODE = 0o700
#: A polling waiter rewrites its ticket when it is older than this share of its TTL.
TICKET_REFRESH_SHARE = 0.4

SCHEMA = """
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
-- Each put and hit first drops what has expired: by index, not by a scan of every row.
CREATE INDEX IF NOT EXISTS counters_by_expiry ON counters (expires);
-- Sliding logs of admitted events: one row per event, gone when it leaves its window.
CREATE TABLE IF NOT EXISTS admitted (key TEXT NOT NULL, at REAL NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS admitted_by_key ON admitted (key, at);
CREATE INDEX IF NOT EXISTS admitted_by_expiry ON admitted (expires);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (kind, name)
) WITHOUT ROWID;
"""

#: Each asked account: lease, cooldown, last use and the oldest live ticket queued on it.
ACCOUNT_ROWS = """
SELECT a.account, a.lease_until, a.cooldown_until, a.last_used,
       (SELECT MIN(q.seq) FROM queue q JOIN tickets t ON t.seq = q.seq
        WHERE q.account = a.account AND t.expires >= ?) AS head
FROM accounts a WHERE a.account IN ({marks})
"""


def _window_start(now: float, window: float) -> float:
    return float(math.floor(now / window) * window)


def _window_starts(now: float, window: float, windows: int) -> list[float]:
    """The starts of the last ``windows`` windows, oldest first."""
    current = math.floor(now / window)
    return [float((current - back) * window) for back in range(windows - 1, -1, -1)]


def _counter(key: str, start: float) -> str:
    return f"{key}@{start!r}"


class SQLiteState:
    """:class:`~gateway.state.base.SharedState` in one SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        #: ticket → (seq, when this process last wrote its expiry), for the read-only poll.
        self._tickets: dict[str, tuple[int, float]] = {}

    @classmethod
    def temporary(cls) -> SQLiteState:
        """A database in a fresh folder, removed when this process exits."""
        folder = tempfile.mkdtemp(prefix="minimax-state-")
        owner = os.getpid()

        def remove() -> None:
            if os.getpid() == owner:  # not from a forked child
                shutil.rmtree(folder, ignore_errors=True)

        atexit.register(remove)
        return cls(os.path.join(folder, "state.db"))

    # --- leases ---------------------------------------------------------------------

    def try_lease(self, ticket: str, accounts: Sequence[str], holder: str, ttl: float) -> Attempt:
        now = time.time()
        with self._lock:
            known = self._tickets.get(ticket)
            if known is not None and now - known[1] < TICKET_TTL * TICKET_REFRESH_SHARE:
                seen = self._read(accounts, known[0], now)
                if seen is not None and seen.account is None:
                    return seen  # nothing to take: no write needed
            with self._write() as db:
                db.execute("DELETE FROM queue WHERE seq IN (SELECT seq FROM tickets WHERE expires < ?)", (now,))
                db.execute("DELETE FROM tickets WHERE expires < ?", (now,))
                db.execute("INSERT INTO tickets (ticket, expires) VALUES (?, ?) "
                           "ON CONFLICT (ticket) DO UPDATE SET expires = excluded.expires",
                           (ticket, now + TICKET_TTL))
                (seq,) = db.execute("SELECT seq FROM tickets WHERE ticket = ?", (ticket,)).fetchone()
                db.executemany("INSERT OR IGNORE INTO queue (account, seq) VALUES (?, ?)",
                               [(account, seq) for account in accounts])
                db.executemany("INSERT OR IGNORE INTO accounts (account) VALUES (?)",
                               [(account,) for account in accounts])
                attempt = self._choose(db, accounts, seq, now)
                if attempt.account is None:
                    self._tickets[ticket] = (seq, now)
                    return attempt
                db.execute("UPDATE accounts SET holder = ?, lease_until = ?, last_used = ? WHERE account = ?",
                           (holder, now + ttl, now, attempt.account))
                db.execute("DELETE FROM queue WHERE seq = ?", (seq,))
                db.execute("DELETE FROM tickets WHERE seq = ?", (seq,))
                self._tickets.pop(ticket, None)
                return attempt

    def withdraw(self, ticket: str, accounts: Sequence[str]) -> None:
        with self._lock, self._write() as db:
            self._tickets.pop(ticket, None)
            db.execute("DELETE FROM queue WHERE seq IN (SELECT seq FROM tickets WHERE ticket = ?)", (ticket,))
            db.execute("DELETE FROM tickets WHERE ticket = ?", (ticket,))

    def renew(self, held: Mapping[str, str], ttl: float) -> set[str]:
        if not held:
            return set()
        now = time.time()
        lost = set()
        with self._lock, self._write() as db:
            for account, holder in held.items():
                # The holder stays until someone else takes the account: a lease that ran
                # out but was not taken is simply extended again.
                done = db.execute("UPDATE accounts SET lease_until = ? WHERE account = ? AND holder = ?",
                                  (now + ttl, account, holder))
                if done.rowcount == 0:
                    lost.add(account)
        return lost

    def release(self, account: str, holder: str, cooldown: float = 0.0) -> None:
        now = time.time()
        with self._lock, self._write() as db:
            db.execute("UPDATE accounts SET holder = NULL, lease_until = 0 WHERE account = ? AND holder = ?",
                       (account, holder))
            if cooldown > 0:
                db.execute("UPDATE accounts SET cooldown_until = MAX(cooldown_until, ?) WHERE account = ?",
                           (now + cooldown, account))

    def accounts(self, accounts: Sequence[str]) -> dict[str, AccountView]:
        now = time.time()
        views = {account: AccountView(False, 0.0) for account in accounts}
        if not accounts:
            return views
        marks = ",".join("?" * len(accounts))
        with self._lock:
            rows = self._connection().execute(
                f"SELECT account, holder, lease_until, cooldown_until FROM accounts WHERE account IN ({marks})",
                list(accounts)).fetchall()
        for account, holder, lease_until, cooldown_until in rows:
            leased = lease_until > now
            views[account] = AccountView(leased, max(0.0, cooldown_until - now), holder if leased else None)
        return views

    # --- values, counters, records --------------------------------------------------

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._connection().execute(
                "SELECT value FROM kv WHERE key = ? AND (expires IS NULL OR expires > ?)",
                (key, time.time())).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, value: str, ttl: float | None = None) -> None:
        now = time.time()
        with self._lock, self._write() as db:
            db.execute("DELETE FROM kv WHERE expires <= ?", (now,))
            db.execute("INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                       (key, value, None if ttl is None else now + ttl))

    def delete(self, key: str) -> None:
        with self._lock, self._write() as db:
            db.execute("DELETE FROM kv WHERE key = ?", (key,))

    def hit(self, key: str, window: float, keep: float = 0.0) -> int:
        now = time.time()
        start = _window_start(now, window)
        with self._lock, self._write() as db:
            db.execute("DELETE FROM counters WHERE expires <= ?", (now,))
            (count,) = db.execute(
                "INSERT INTO counters (key, count, expires) VALUES (?, 1, ?) "
                "ON CONFLICT (key) DO UPDATE SET count = count + 1 RETURNING count",
                (_counter(key, start), start + window + keep)).fetchone()
        return int(count)

    def admit(self, key: str, limit: int, window: float, now: float) -> float:
        with self._lock, self._write() as db:
            db.execute("DELETE FROM admitted WHERE expires <= ?", (now,))
            count, oldest = db.execute("SELECT COUNT(*), MIN(at) FROM admitted WHERE key = ? AND expires > ?",
                                       (key, now)).fetchone()
            if count >= limit:
                return max(float(oldest) + window - now, 0.001)
            db.execute("INSERT INTO admitted (key, at, expires) VALUES (?, ?, ?)", (key, now, now + window))
        return 0.0

    def counts(self, key: str, window: float, windows: int = 1) -> list[int]:
        now = time.time()
        starts = _window_starts(now, window, windows)
        names = [_counter(key, start) for start in starts]
        marks = ",".join("?" * len(names))
        with self._lock:
            rows = self._connection().execute(
                f"SELECT key, count FROM counters WHERE expires > ? AND key IN ({marks})", [now, *names]).fetchall()
        found = {str(name): int(count) for name, count in rows}
        return [found.get(name, 0) for name in names]

    def add_record(self, kind: str, name: str, value: str) -> None:
        with self._lock, self._write() as db:
            db.execute("INSERT OR REPLACE INTO records (kind, name, value) VALUES (?, ?, ?)", (kind, name, value))

    def remove_record(self, kind: str, name: str) -> None:
        with self._lock, self._write() as db:
            db.execute("DELETE FROM records WHERE kind = ? AND name = ?", (kind, name))

    def records(self, kind: str) -> dict[str, str]:
        with self._lock:
            rows = self._connection().execute("SELECT name, value FROM records WHERE kind = ?", (kind,)).fetchall()
        return {str(name): str(value) for name, value in rows}

    def swap_record(self, kind: str, name: str, expected: str, value: str | None) -> bool:
        with self._lock, self._write() as db:
            if value is None:
                done = db.execute("DELETE FROM records WHERE kind = ? AND name = ? AND value = ?",
                                  (kind, name, expected))
            else:
                done = db.execute("UPDATE records SET value = ? WHERE kind = ? AND name = ? AND value = ?",
                                  (value, kind, name, expected))
        return done.rowcount == 1

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    # --- internals ------------------------------------------------------------------

    def _read(self, accounts: Sequence[str], seq: int, now: float) -> Attempt | None:
        """What a write would grant, read without writing; None when the ticket is gone."""
        db = self._connection()
        if db.execute("SELECT 1 FROM tickets WHERE seq = ? AND expires >= ?", (seq, now)).fetchone() is None:
            return None
        return self._choose(db, accounts, seq, now)

    @staticmethod
    def _choose(db: sqlite3.Connection, accounts: Sequence[str], seq: int, now: float) -> Attempt:
        marks = ",".join("?" * len(accounts))
        rows = db.execute(ACCOUNT_ROWS.format(marks=marks), [now, *accounts]).fetchall()
        order = {account: i for i, account in enumerate(accounts)}
        free = [(last_used, order[account], account)
                for account, lease_until, cooldown_until, last_used, head in rows
                if lease_until <= now and cooldown_until <= now and head == seq]
        cooling = [cooldown_until - now for _, lease_until, cooldown_until, _, _ in rows
                   if lease_until <= now and cooldown_until > now]
        if free:
            return Attempt(min(free)[2])
        return Attempt(None, min(cooling) if cooling else None)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None or self._pid != os.getpid():
            # A connection is never used across fork: the child opens its own.
            private_file(self.path)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                migrate(db, SCHEMA, self.path)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._db, self._pid, self._tickets = db, os.getpid(), {}
        return self._db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def private_file(path: str) -> None:
    """Make ``path`` (and its folder) if missing, readable by this user only."""
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder, mode=FOLDER_MODE, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, FILE_MODE))
    if os.stat(path).st_mode & 0o077:  # made by an older gateway or another tool
        os.chmod(path, FILE_MODE)
