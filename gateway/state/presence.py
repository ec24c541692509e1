"""Which gateways share the state now: a heartbeat record per gunicorn master.

Every worker process writes its master's record (``host:master-pid``) every
:data:`BEAT_SECONDS`; a record not rewritten for :data:`GONE_AFTER` seconds names a
gateway that is gone (and is dropped); so is, at once, one of this host whose master
process no longer exists (a gateway that just stopped, or crashed). A stopping gateway asks :meth:`Presence.others`
whether anyone else would sweep what it leaves: with SQLite on one host, or a Redis
whose records show only this gateway, nobody would.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from gateway.state.base import SharedState

log = logging.getLogger(__name__)

KIND = "gateways"
#: Seconds between two heartbeats of a process.
BEAT_SECONDS = 5.0
#: A gateway whose record is older than this is gone.
GONE_AFTER = 3 * BEAT_SECONDS


def gateway_id() -> str:
    """This process's gateway: its host and its gunicorn master (the parent of a worker)."""
    return f"{socket.gethostname()}:{os.getppid()}"


class Presence:
    """This gateway's heartbeat in the shared state, and who else beats there."""

    def __init__(self, state: SharedState, clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._clock = clock
        self._pid = 0
        self._lock = threading.Lock()
        self.id = gateway_id()

    def start(self) -> None:
        """Beat from a background thread of this process (again in a forked child)."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self.id = os.getpid(), gateway_id()
                threading.Thread(target=self._run, name="presence", daemon=True).start()

    def beat(self) -> None:
        self._state.add_record(KIND, self.id, json.dumps({"at": self._clock()}))

    def others(self) -> list[str]:
        """The other gateways alive on this state (gone ones' records are dropped)."""
        now, alive = self._clock(), []
        for name, raw in self._state.records(KIND).items():
            if name == self.id:
                continue
            if now - _beat_time(raw) <= GONE_AFTER and _may_run(name):
                alive.append(name)
            else:
                self._state.swap_record(KIND, name, raw, None)  # unless it beat again meanwhile
        return alive

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            try:
                self.beat()
            except Exception:
                log.warning("could not write this gateway's heartbeat", exc_info=True)
            time.sleep(BEAT_SECONDS)


def _may_run(name: str) -> bool:
    """False when ``name`` is a gateway of this host whose master is gone."""
    host, _, pid = name.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _beat_time(raw: str) -> float:
    try:
        return float(json.loads(raw)["at"])
    except (ValueError, TypeError, KeyError):
        return 0.0
