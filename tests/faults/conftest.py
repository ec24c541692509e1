"""Fixtures of the fault matrix: a gateway with short upstream timeouts, and the checks
every case ends with (no lease left, no upstream chat left alive).

The gateway's settings make each hang or stall resolve within a few seconds; their
values are the figures the README's "What happens when things fail" table quotes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.state import SharedState, open_state
from gateway.upstream.credentials import parse_one
from tests.simulator.control import SimulatorControl

#: Short upstream timeouts, so hangs and stalls end in seconds rather than minutes.
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 1.5
STREAM_IDLE_TIMEOUT = 2.0
QUEUE_TIMEOUT = 2.0
BUSY_COOLDOWN = 0.3
#: Seconds the chat and lease of a finished request may take to be released (the janitor
#: deletes in the background); generous, since the machine is shared and loaded.
SETTLE_SECONDS = 6.0
#: Bounds are this many times the expected duration (plus a constant for start-up noise).
SLACK = 3.0


def bound(expected: float) -> float:
    """How long a case may take: generous, for a loaded two-core machine."""
    return SLACK * expected + 1.0


def fault_env(state_url: str) -> dict[str, str]:
    return {
        "MINIMAX_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "MINIMAX_READ_TIMEOUT": str(READ_TIMEOUT),
        "MINIMAX_STREAM_IDLE_TIMEOUT": str(STREAM_IDLE_TIMEOUT),
        "GATEWAY_QUEUE_TIMEOUT": str(QUEUE_TIMEOUT),
        "GATEWAY_BUSY_COOLDOWN": str(BUSY_COOLDOWN),
        "GATEWAY_HEARTBEAT": "1",
        "GATEWAY_STATE": state_url,
    }


@pytest.fixture(scope="session")
def fault_state_url(surface: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The fault gateway's SQLite state, one per surface, so tests can read its leases."""
    folder: Path = tmp_path_factory.mktemp(f"faults-{surface}")
    return f"sqlite://{folder / 'state.db'}"


@pytest.fixture
def fault_gateway(gateway_factory: Callable[..., str], fault_state_url: str) -> str:
    return gateway_factory(**fault_env(fault_state_url))


@pytest.fixture
def fault_state(fault_state_url: str) -> Iterator[SharedState]:
    state = open_state(fault_state_url)
    yield state
    state.close()


@dataclass
class Aftermath:
    """The end-of-case checks: within a bound, no account leased and no chat alive."""

    sim: SimulatorControl
    state: SharedState

    def settled(self, credentials: list[str], chats: bool = True) -> None:
        """Leases of ``credentials`` all gone and (unless ``chats`` is off) no upstream
        chat alive, within :data:`SETTLE_SECONDS`."""
        keys = [parse_one(part).key for credential in credentials for part in credential.split(",")]
        deadline = time.monotonic() + SETTLE_SECONDS
        while any(view.leased for view in self.state.accounts(keys).values()):
            assert time.monotonic() < deadline, "a lease was left behind"
            time.sleep(0.05)
        if chats:
            stats = self.sim.wait_idle(max(0.5, deadline - time.monotonic()))
            assert stats["chats_alive"] == 0
        assert self.sim.stats()["double_generation_attempts"] == 0


@pytest.fixture
def aftermath(sim: SimulatorControl, fault_state: SharedState) -> Aftermath:
    return Aftermath(sim, fault_state)


@pytest.fixture
def aftermath_of(sim: SimulatorControl) -> Iterator[Callable[[str], Aftermath]]:
    """The checks against another gateway's state (one a test started itself)."""
    opened: list[SharedState] = []

    def of(state_url: str) -> Aftermath:
        opened.append(open_state(state_url))
        return Aftermath(sim, opened[-1])

    yield of
    for state in opened:
        state.close()
