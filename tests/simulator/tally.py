"""Counters part of the simulator's world: what /_sim/stats reports about traffic.

Role: one `Tally` per world, shared by the other parts: requests by path, rejections and
warnings by reason, faults applied by "endpoint:kind", and the named event counters.
A part refuses a call with `tally.refuse(...)`, which counts the reason and returns the
`Refusal` to raise, so no rejection goes uncounted. Like every part, it holds no lock.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from tests.simulator.protocol import Refusal

REQUEST_PATH_KEYS_CAP: int = 256
OTHER_PATHS_KEY: str = "<other>"
COUNTER_NAMES: tuple[str, ...] = (
    "double_generation_attempts", "busy_rejections", "sends", "device_registrations",
    "polls", "stops", "deletes", "upload_policies", "voice_updates", "renewals",
    "sessions_created", "stream_messages", "archives", "stream_drops", "configs",
    "generation_errors",
)
T = TypeVar("T")


def _bump(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


class Tally:
    """The counters of one world; `clear` (on reset) zeroes them all."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._requests: dict[str, int] = {}
        self._rejections: dict[str, int] = {}
        self._warnings: dict[str, int] = {}
        self._faults_applied: dict[str, int] = {}
        self._counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)

    def count(self, name: str) -> None:
        """One more of a named event (a key of COUNTER_NAMES)."""
        self._counters[name] += 1

    def request(self, path: str) -> None:
        if path not in self._requests and len(self._requests) >= REQUEST_PATH_KEYS_CAP:
            path = OTHER_PATHS_KEY
        _bump(self._requests, path)

    def reject(self, reason: str) -> None:
        _bump(self._rejections, reason)

    def warn(self, reason: str) -> None:
        _bump(self._warnings, reason)

    def fault_applied(self, key: str) -> None:
        _bump(self._faults_applied, key)

    def refuse(self, code: int, msg: str, reason: str, status: int = 200) -> Refusal:
        """The Refusal to raise, its reason already counted as a rejection."""
        self.reject(reason)
        return Refusal(code, msg, reason, status)

    def counted(self, func: Callable[..., T], *args: Any) -> T:
        """Run a part's step, counting a Refusal it raises as a rejection."""
        try:
            return func(*args)
        except Refusal as exc:
            self.reject(exc.reason)
            raise

    def reasons(self) -> dict[str, Any]:
        """The by-path and by-reason tables, copied, keyed as in /_sim/stats."""
        return {"requests": dict(self._requests), "rejections": dict(self._rejections),
                "warnings": dict(self._warnings), "faults_applied": dict(self._faults_applied)}

    def counters(self) -> dict[str, int]:
        return dict(self._counters)
