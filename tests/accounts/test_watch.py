"""Lists in files: read again when the file changes, the last good list kept on a typo."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.accounts import watch
from gateway.accounts.keys import KeyRing, parse_keys
from gateway.accounts.watch import CHECK_SECONDS, Listing, setting_entries
from gateway.errors import ConfigError

ALPHA, BETA = "sk-alpha-0123456789abcdef", "sk-beta-0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    stat = path.stat()  # mtimes can be coarse: make each edit visible
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump * 1_000_000_000))


def listing(path: Path, clock: Clock, setting: str = "") -> Listing[KeyRing]:
    return Listing(parse_keys, setting_entries("GATEWAY_API_KEYS", setting), str(path), clock)


def test_file_edits_are_picked_up_after_the_check_interval(tmp_path: Path) -> None:
    path, clock = tmp_path / "keys.txt", Clock()
    write(path, ALPHA + "\n", 0)
    keys = listing(path, clock, setting=BETA)
    assert keys.current().match(ALPHA) and keys.current().match(BETA)
    write(path, "# revoked\n", 1)
    assert keys.current().match(ALPHA), "looked again too soon"
    clock.now += CHECK_SECONDS
    assert keys.current().match(ALPHA) is None and keys.current().match(BETA)


@pytest.fixture
def watch_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, fed straight from the watcher's logger: once an app in this process has
    configured logging, the gateway's loggers no longer propagate to the root."""
    logger = logging.getLogger(watch.__name__)
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


def test_a_bad_edit_keeps_the_last_good_list(tmp_path: Path, watch_log: pytest.LogCaptureFixture) -> None:
    caplog = watch_log
    path, clock = tmp_path / "keys.txt", Clock()
    write(path, ALPHA + "\n", 0)
    keys = listing(path, clock)
    write(path, f"{BETA} rpm=lots\n", 1)
    clock.now += CHECK_SECONDS
    assert keys.current().match(ALPHA) and not keys.current().match(BETA)
    assert "keeping the previous list" in caplog.text and BETA not in caplog.text
    write(path, BETA + "\n", 2)
    clock.now += CHECK_SECONDS
    assert keys.current().match(BETA) and not keys.current().match(ALPHA)


def test_at_start_up_a_bad_or_missing_file_stops_the_gateway(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        listing(tmp_path / "missing.txt", Clock())
    (tmp_path / "bad.txt").write_text("tiny\n")
    with pytest.raises(ConfigError, match="bad.txt entry 1"):
        listing(tmp_path / "bad.txt", Clock())
