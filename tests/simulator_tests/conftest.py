"""Fixtures of the simulator's tests: a fresh in-process simulator per test, with a fake clock.

Role: the app, its control client, an account, a signed client (`up`) and an uploader;
tests/simulator_tests/test_session.py overrides `app` so that streams sleep on the fake clock.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.simulator import SimSettings, create_simulator_app
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
