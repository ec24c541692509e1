"""The SQLite state file that holds sign-ins is readable by its owner only: made so when
it is new, its group and world bits taken off (WAL files too) when it is not."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gateway.accounts.signins import protect_state_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_state_file_is_made_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        protect_state_file(f"sqlite:///{tmp_path}/deep/state.db")
    finally:
        os.umask(old)
    assert mode(tmp_path / "deep" / "state.db") == 0o600


def test_an_existing_readable_state_file_and_its_wal_are_closed(tmp_path: Path) -> None:
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (tmp_path / name).write_bytes(b"")
        (tmp_path / name).chmod(0o644)
    protect_state_file(f"sqlite:///{tmp_path}/state.db")
    assert [mode(tmp_path / name) for name in ("state.db", "state.db-wal", "state.db-shm")] == [0o600] * 3


def test_a_redis_state_is_left_alone(tmp_path: Path) -> None:
    protect_state_file("redis://127.0.0.1:1/0")
    assert list(tmp_path.iterdir()) == []
