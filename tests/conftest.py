"""Session fixtures: one simulator, gunicorn gateways in front of it, the agent CLIs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import ARTIFACTS, ROOT, Process, start_gateway, start_simulator
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


CLI_PACKAGE = ROOT / "tests" / "cli"


@pytest.fixture(scope="session")
def cli_bin() -> Path:
    """The pinned agent CLIs (tests/cli/package.json), installed once into test-artifacts."""
    prefix = ARTIFACTS / "cli"
    bin_dir = prefix / "node_modules" / ".bin"
    wanted = (CLI_PACKAGE / "package.json").read_text()
    stamp = prefix / "package.json"
    if not (stamp.exists() and stamp.read_text() == wanted and (bin_dir / "claude").exists()):
        prefix.mkdir(parents=True, exist_ok=True)
        stamp.write_text(wanted)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix)],
                       check=True, capture_output=True, timeout=600)
    return bin_dir
