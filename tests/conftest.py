"""Session fixtures: one simulator and gunicorn gateways in front of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.servers import Process, start_gateway, start_simulator
from tests.simulator.control import SimulatorControl

#: Every gateway process started in this session, for the log checks.
GATEWAYS: list[Process] = []
#: Every credential minted in this session, for the log checks.
MINTED: list[dict] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "last: run after every other test")
    config.addinivalue_line("markers", "slow: takes a minute or more (still run by default)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


@pytest.fixture(scope="session")
def simulator_url() -> Iterator[str]:
    proc, url = start_simulator()
    yield url
    proc.stop()


@pytest.fixture
def sim(simulator_url: str) -> SimulatorControl:
    """The simulator, reset for this test."""
    control = SimulatorControl(simulator_url)
    control.reset()
    return control


@pytest.fixture(scope="session")
def gateway_factory(simulator_url: str) -> Iterator[Callable[..., str]]:
    """Start (once per distinct settings) a gunicorn gateway; returns its base URL."""
    started: dict[tuple, str] = {}

    def get(**env: str) -> str:
        key = tuple(sorted(env.items()))
        if key not in started:
            name = "gateway" + "".join(f"-{k.lower()}" for k in sorted(env))
            proc, url = start_gateway(simulator_url, name, env)
            GATEWAYS.append(proc)
            started[key] = url
        return started[key]

    yield get
    for proc in GATEWAYS:
        proc.stop()


@pytest.fixture
def gateway(gateway_factory: Callable[..., str]) -> str:
    return gateway_factory()


@pytest.fixture
def accounts(sim: SimulatorControl) -> Callable[..., list[dict]]:
    """Mint simulator accounts (remembered for the credential-leak check)."""

    def mint(count: int = 1, **options: object) -> list[dict]:
        made = sim.add_accounts(count, **options)
        MINTED.extend(made)
        return made

    return mint


@pytest.fixture
def credential(accounts: Callable[..., list[dict]]) -> str:
    return accounts(1)[0]["credential"]
