"""Fixtures of the simulator's tests: a fresh in-process simulator per test, with a fake clock.

Role: the app, its control client, an account, a signed client (`up`) and an uploader;
tests/simulator_tests/test_session.py overrides `app` so that streams sleep on the fake clock;
the code-surface tests (test_code*.py) share one real simulator process (`code_sim`).
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from flask import Flask

from tests.simulator import SimSettings, create_simulator_app
from tests.simulator.control import SimulatorControl
from tests.simulator_tests.helpers import (
    FakeClock,
    Uploader,
    Upstream,
    add_accounts,
    flask_put,
    flask_transport,
)


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def app(clock: FakeClock) -> Flask:
    return create_simulator_app(SimSettings(seed=7, clock=clock))


@pytest.fixture()
def control(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture()
def account(control: Any) -> dict[str, Any]:
    return add_accounts(control)[0]


@pytest.fixture()
def up(app: Flask, account: dict[str, Any], clock: FakeClock) -> Upstream:
    return Upstream(flask_transport(app), account, clock)


@pytest.fixture()
def uploader(app: Flask, up: Upstream) -> Uploader:
    return Uploader(up, flask_put(app))


@pytest.fixture(scope="session")
def code_server() -> Iterator[str]:
    """One real simulator process for the code-surface tests (they drive it with requests)."""
    from tests.servers import start_simulator

    proc, url = start_simulator("simulator-code")
    yield url
    proc.stop()


@pytest.fixture()
def code_sim(code_server: str) -> Iterator[SimulatorControl]:
    """The code-surface simulator, reset (accounts dropped) for this test."""
    control = SimulatorControl(code_server)
    control.reset(drop_accounts=True)
    yield control
    control.close()


@pytest.fixture()
def code_account(code_sim: SimulatorControl) -> dict[str, Any]:
    """One signed-in code account (tokens, web_jwt, real_user_id, name, ...)."""
    return code_sim.add_code_accounts(1)[0]
