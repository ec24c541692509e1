"""Accounts signed in with ``python -m gateway login`` serve a keyed gateway (two gunicorn
workers) as server-side accounts on the code surface; the upkeep refreshes their tokens
ahead of expiry, once per rotation across both workers, and a refused refresh shows the
account dead ("log in again").
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.accounts.test_cli import Login, gateway
from tests.conftest import GATEWAYS, MINTED
from tests.servers import start_gateway
from tests.simulator.control import SimulatorControl

KEY = "sk-signed-in-3c2b1a0f9e8d7c6b"
#: The token lifetime the simulator grants here: the upkeep refreshes at half of it.
LIFETIME = 20


@pytest.fixture
def cli_env(simulator_url: str, tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "MINIMAX_"))}
    return {**base, "MINIMAX_ACCOUNT_BASE_URL": simulator_url, "MINIMAX_CODE_BASE_URL": simulator_url,
            "GATEWAY_STATE": f"sqlite:///{tmp_path}/state.db"}


@pytest.fixture
def keyed(simulator_url: str, cli_env: dict[str, str]) -> Iterator[str]:
    env = {"GATEWAY_WORKERS": "2", "GATEWAY_API_KEYS": KEY, "GATEWAY_STATE": cli_env["GATEWAY_STATE"],
           "MINIMAX_SURFACE": "auto"}
    proc, url = start_gateway(simulator_url, "gateway-signed-in", env)
    GATEWAYS.append(proc)
    yield url
    proc.stop()


def sign_in(sim: SimulatorControl, env: dict[str, str], name: str) -> None:
    login = Login(env, "--name", name)
    sim.approve_device(login.device["user_code"])
    assert login.outcome()[0] == 0
    MINTED.extend(stored_tokens(env))


def stored_tokens(env: dict[str, str]) -> list[dict[str, Any]]:
    """The signed-in pairs in the state file, as minted secrets for the log sweep."""
    with sqlite3.connect(env["GATEWAY_STATE"][len("sqlite://"):]) as db:
        rows = db.execute("SELECT value FROM records WHERE kind = 'signin'").fetchall()
    pairs = [json.loads(value) for (value,) in rows]
    return [{"credential": pair["access_token"], "access_token": pair["access_token"],
             "refresh_token": pair["refresh_token"]} for pair in pairs]


def ask(url: str) -> requests.Response:
    return requests.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                         json={"model": "MiniMax-M2.7", "messages": [{"role": "user", "content": "hi"}]},
                         timeout=60)


def wait_for(check: Any, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_a_signed_in_account_serves_keyed_requests_and_is_refreshed_once_per_rotation(
        sim: SimulatorControl, cli_env: dict[str, str], keyed: str) -> None:
    sim.code_config(interval=1, device_expires_in=30, expires_in=LIFETIME)
    sign_in(sim, cli_env, "work")
    answer = ask(keyed)
    assert answer.status_code == 200, answer.text
    assert sim.code_stats()["messages_calls"] >= 1
    # Both workers run the upkeep; each rotation is one refresh upstream, none refused.
    wait_for(lambda: sim.code_stats().get("refreshes", 0) >= 2)
    MINTED.extend(stored_tokens(cli_env))
    stats = sim.code_stats()
    assert stats.get("invalid_grants", 0) == 0
    assert ask(keyed).status_code == 200
    listed = json.loads(gateway(cli_env, "accounts", "--json").stdout)["accounts"]
    assert [(a["name"], a["state"]) for a in listed] == [("work", "ok")]


def test_a_refused_refresh_shows_the_account_dead(sim: SimulatorControl, cli_env: dict[str, str],
                                                  keyed: str) -> None:
    sim.code_config(interval=1, device_expires_in=30, expires_in=LIFETIME)
    sign_in(sim, cli_env, "revoked")
    account = sim.code_devices()[0]["account"]
    sim.patch_code_account(account, revoke=True)

    def dead() -> bool:
        listed = json.loads(gateway(cli_env, "accounts", "--json").stdout)["accounts"]
        return [(a["name"], a["state"]) for a in listed] == [("revoked", "dead")]

    wait_for(dead)
    listed = json.loads(gateway(cli_env, "accounts", "--json").stdout)["accounts"]
    assert "log in again" in listed[0]["reason"]
    assert sim.code_stats()["invalid_grants"] == 1  # one refusal: the dead account is left alone
    assert ask(keyed).status_code >= 400
