"""Signed-in accounts and their tokens' lifecycle, on a real shared state (SQLite, and a
real redis-server) against the simulator's account host, whose refresh tokens are
single-use: the hot path only reads, the upkeep refreshes inside its window and not
before, a rotation is persisted before use, invalid_grant kills the sign-in, transient
failures do not, and two processes refreshing one account make exactly one refresh
upstream per rotation.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.errors import SignInRevoked
from gateway.state import open_state
from gateway.state.sqlite_state import SQLiteState
from gateway.upstream.oauth import OAuthClient, TokenPair
from gateway.upstream.signins import DEAD, SignIns
from tests.servers import ROOT
from tests.simulator.control import SimulatorControl

REFRESH_BEFORE = 300.0


class Clock:
    """Wall time moved by hand (SignIns' decisions; the simulator keeps its own time)."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture
def state(tmp_path: Path) -> Iterator[SQLiteState]:
    backend = SQLiteState(str(tmp_path / "state.db"))
    yield backend
    backend.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signins(simulator_url: str, state: SQLiteState, clock: Clock) -> Iterator[SignIns]:
    settings = Settings.from_env({"MINIMAX_ACCOUNT_BASE_URL": simulator_url})
    clients = {region: OAuthClient(settings.code(region)) for region in ("cn", "global")}
    yield SignIns(state, clients, REFRESH_BEFORE, clock=clock, sleep=time.sleep)
    for client in clients.values():
        client.close()


@pytest.fixture
def signed_in(sim: SimulatorControl, signins: SignIns) -> Callable[..., dict[str, Any]]:
    """A simulator account, signed in here under ``name``."""

    def sign_in(name: str = "work", **options: Any) -> dict[str, Any]:
        account = sim.add_code_accounts(1, **options)[0]
        signins.add(name, "cn", tokens_of(account))
        return account

    return sign_in


def tokens_of(account: dict[str, Any]) -> TokenPair:
    return TokenPair(account["access_token"], account["refresh_token"], time.time() + account["expires_in"],
                     "agent.default", account_id=account["name"])


def test_the_hot_path_only_reads(sim: SimulatorControl, signins: SignIns,
                                 signed_in: Callable[..., dict[str, Any]]) -> None:
    account = signed_in()
    assert [signins.access_token("work") for _ in range(3)] == [account["access_token"]] * 3
    assert sim.code_stats().get("refreshes", 0) == 0


def test_an_expired_token_is_refreshed_on_the_hot_path(sim: SimulatorControl, signins: SignIns, clock: Clock,
                                                       signed_in: Callable[..., dict[str, Any]]) -> None:
    account = signed_in(expires_in=60)
    clock.ahead = 61
    fresh = signins.access_token("work")
    assert fresh != account["access_token"] and fresh.startswith("mmoat_")
    assert signins.access_token("work") == fresh
    assert sim.code_stats()["refreshes"] == 1


def test_the_upkeep_refreshes_inside_the_window_and_not_before(
        sim: SimulatorControl, signins: SignIns, clock: Clock, signed_in: Callable[..., dict[str, Any]]) -> None:
    account = signed_in()  # one hour
    clock.ahead = 3600 - REFRESH_BEFORE - 60
    assert signins.refresh_due() == 0
    clock.ahead = 3600 - REFRESH_BEFORE + 10
    assert signins.refresh_due() == 1
    assert signins.refresh_due() == 0  # the new pair is good for another hour
    stored = signins.get("work")
    assert stored is not None and stored.refreshed_at is not None
    assert stored.tokens.refresh_token != account["refresh_token"]  # persisted rotation
    assert sim.code_stats()["refreshes"] == 1 and sim.code_stats().get("invalid_grants", 0) == 0


def test_a_short_lived_token_is_not_refreshed_before_half_its_life(
        signins: SignIns, clock: Clock, signed_in: Callable[..., dict[str, Any]]) -> None:
    signed_in(expires_in=100)  # all of its life is inside REFRESH_BEFORE
    clock.ahead = 40
    assert signins.refresh_due() == 0
    clock.ahead = 55
    assert signins.refresh_due() == 1


def test_a_token_already_replaced_elsewhere_is_not_refreshed_again(
        sim: SimulatorControl, signins: SignIns, signed_in: Callable[..., dict[str, Any]]) -> None:
    account = signed_in()
    new = signins.refresh("work", seen_access=account["access_token"])
    # A second caller that saw the old token (e.g. a 401 in flight) gets the new one.
    assert signins.refresh("work", seen_access=account["access_token"]) == new
    assert sim.code_stats()["refreshes"] == 1


def test_an_answer_without_refresh_token_keeps_the_old_one(
        sim: SimulatorControl, signins: SignIns, signed_in: Callable[..., dict[str, Any]]) -> None:
    sim.code_config(refresh_keeps_token=True)
    account = signed_in()
    signins.refresh("work")
    stored = signins.get("work")
    assert stored is not None and stored.tokens.refresh_token == account["refresh_token"]


def test_invalid_grant_marks_the_sign_in_dead(sim: SimulatorControl, signins: SignIns,
                                              signed_in: Callable[..., dict[str, Any]],
                                              caplog: pytest.LogCaptureFixture) -> None:
    account = signed_in()
    sim.patch_code_account(account["name"], revoke=True)
    with pytest.raises(SignInRevoked):
        signins.refresh("work")
    dead = signins.get("work")
    assert dead is not None and dead.state == DEAD and "log in again" in dead.reason
    assert [s.public()["state"] for s in signins.all()] == ["dead"]
    with pytest.raises(SignInRevoked):
        signins.access_token("work")
    assert signins.refresh_due() == 0
    assert sim.code_stats()["invalid_grants"] == 1  # never tried again


def test_server_errors_are_transient(sim: SimulatorControl, signins: SignIns, clock: Clock,
                                     signed_in: Callable[..., dict[str, Any]]) -> None:
    signed_in()
    clock.ahead = 3600 - 10
    sim.fault("code_token", "http_503", count=1)
    assert signins.refresh_due() == 0
    stored = signins.get("work")
    assert stored is not None and stored.ok
    clock.ahead += 31  # past the retry pause
    assert signins.refresh_due() == 1


def test_no_token_in_reprs_or_logs(sim: SimulatorControl, signins: SignIns, clock: Clock,
                                   signed_in: Callable[..., dict[str, Any]],
                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    account = signed_in()
    clock.ahead = 3600
    signins.refresh_due()
    stored = signins.get("work")
    assert stored is not None
    shown = repr(stored) + str(stored) + json.dumps(stored.public()) + caplog.text
    for secret in (account["access_token"], account["refresh_token"], stored.tokens.access_token,
                   stored.tokens.refresh_token):
        assert secret not in shown


def test_names_and_logout(signins: SignIns, signed_in: Callable[..., dict[str, Any]]) -> None:
    account = signed_in("first")
    pair = tokens_of(account)
    assert signins.default_name(pair) == "first" or signins.default_name(pair) == account["name"]
    other = TokenPair("mmoat_" + "x" * 20, "mmort_" + "y" * 20, time.time() + 60, "agent.default",
                      account_id="someone-else", nickname="first")
    assert signins.default_name(other) == "someone-else"
    assert signins.remove("first") and not signins.remove("first")
    with pytest.raises(SignInRevoked):
        signins.access_token("first")


# -- two processes, one account -------------------------------------------------------------

WORKER = """
import hashlib, json, os, sys, time
from gateway.config import Settings
from gateway.state import open_state
from gateway.upstream.oauth import OAuthClient
from gateway.upstream.signins import SignIns

settings = Settings.from_env()
signins = SignIns(open_state(settings.state), {"cn": OAuthClient(settings.code("cn"))}, 300.0)
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.01)
got = []
for _ in range(int(sys.argv[2])):
    seen = signins.get("shared").tokens.access_token
    got.append(hashlib.sha256(signins.refresh("shared", seen_access=seen).encode()).hexdigest())
print(json.dumps(got))
"""


def race(sim: SimulatorControl, simulator_url: str, state_url: str, tmp_path: Path, rounds: int = 4) -> None:
    account = sim.add_code_accounts(1)[0]
    setup = open_state(state_url)
    settings = Settings.from_env({"MINIMAX_ACCOUNT_BASE_URL": simulator_url})
    SignIns(setup, {"cn": OAuthClient(settings.code("cn"))}, 300.0).add("shared", "cn", tokens_of(account))
    # Each refresh takes a while upstream, so the two processes meet on the same token.
    sim.fault("code_token", "hang", count=2 * rounds, seconds=0.5)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "MINIMAX_"))},
           "GATEWAY_STATE": state_url, "MINIMAX_ACCOUNT_BASE_URL": simulator_url}
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(go), str(rounds)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(1.0)  # both import and wait at the start line (correctness does not depend on it)
    go.touch()
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err[-2000:] for _, err in outputs]
    tokens = [token for out, _ in outputs for token in json.loads(out)]
    stats = sim.code_stats()
    assert stats.get("invalid_grants", 0) == 0
    # Every distinct token handed out is one refresh upstream, and the processes shared some.
    assert stats["refreshes"] == len(set(tokens)) < len(tokens)
    stored = SignIns(setup, {"cn": OAuthClient(settings.code("cn"))}, 300.0).get("shared")
    assert stored is not None and stored.ok
    setup.close()


def test_two_processes_on_one_sqlite_state_refresh_once_per_rotation(
        sim: SimulatorControl, simulator_url: str, tmp_path: Path) -> None:
    race(sim, simulator_url, f"sqlite:///{tmp_path}/state.db", tmp_path)


def test_two_processes_on_one_redis_refresh_once_per_rotation(
        sim: SimulatorControl, simulator_url: str, clean_redis: str, tmp_path: Path) -> None:
    race(sim, simulator_url, clean_redis, tmp_path)
