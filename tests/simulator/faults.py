"""Faults part of the simulator's world: transport and semantic faults armed by tests.

Role: /_sim/faults arms a fault at one endpoint (or "*") for a number of calls; the web
layer takes one use per valid call and plays it (an HTTP error, a hang, a dropped
connection, or a business refusal). Faults inside an answer (drop_mid, hang_mid,
error_mid) are not here: they belong to a scripted answer (`tests.simulator.scripts`).
Like every part, `FaultBoard` holds no lock: `SimState` uses it under its own, and the
hang itself happens in the web layer, never under the lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.simulator.protocol import ENDPOINT_NAMES
from tests.simulator.session_protocol import SESSION_ENDPOINT_NAMES
from tests.simulator.tally import Tally

TRANSPORT_FAULTS: tuple[str, ...] = ("http_500", "http_502", "http_503", "hang", "drop", "drop_after")
SEMANTIC_FAULTS: tuple[str, ...] = ("expired", "no_credits", "quota", "busy", "busy_msg")
# The code surface's own: HTTP 429 / 529 answers, and a stream fault for its next answer.
CODE_ONLY_FAULTS: tuple[str, ...] = ("http_429", "http_529", "drop_mid", "error_mid", "hang_mid")
FAULT_KINDS: tuple[str, ...] = TRANSPORT_FAULTS + SEMANTIC_FAULTS + CODE_ONLY_FAULTS
# Unsigned endpoints that take faults too: the OSS PUT and the TTS media download.
UNSIGNED_FAULT_ENDPOINTS: tuple[str, ...] = ("oss_put", "media", "upload_post")
CODE_FAULT_ENDPOINTS: tuple[str, ...] = ("code_device", "code_token", "code_messages",
                                         "code_count_tokens", "code_models", "code_quota")
FAULT_ENDPOINTS: tuple[str, ...] = (ENDPOINT_NAMES + SESSION_ENDPOINT_NAMES
                                    + UNSIGNED_FAULT_ENDPOINTS + CODE_FAULT_ENDPOINTS + ("*",))
DEFAULT_HANG_SECONDS: float = 60.0


@dataclass
class Fault:
    endpoint: str
    kind: str
    remaining: int
    seconds: float | None

    def public(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "kind": self.kind, "count": self.remaining,
                "seconds": self.seconds}


class FaultBoard:
    """Armed faults, oldest first; each use taken is counted in the tally."""

    def __init__(self, tally: Tally) -> None:
        self._tally = tally
        self._faults: list[Fault] = []

    def add(self, endpoint: str, kind: str, count: int, seconds: float | None) -> int:
        """Arm a fault; returns how many uses are pending in all."""
        self._faults.append(Fault(endpoint, kind, count, seconds))
        return sum(f.remaining for f in self._faults)

    def pending(self) -> list[dict[str, Any]]:
        return [f.public() for f in self._faults]

    def take(self, endpoint: str) -> Fault | None:
        """Consume one use of the oldest fault aimed at this endpoint (or at all)."""
        for fault in self._faults:
            if fault.endpoint in (endpoint, "*"):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                self._tally.fault_applied(f"{endpoint}:{fault.kind}")
                return Fault(fault.endpoint, fault.kind, 1, fault.seconds)
        return None
