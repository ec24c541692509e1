"""The credential doctor on MiniMax Code credentials, by command line and by POST /token/check.

A client's ``mmoat_`` token and an account signed in on the gateway (``--signin NAME``)
walk their own stages against the simulator (every MiniMax host): the sign-in's state,
the quota, the code endpoint; a refused token, a spent quota, a dead or missing sign-in
each fail at their stage with their likely cause ("log in again" for a dead sign-in), in
English and Chinese, and no token ever shows in the output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from gateway.app import build_app
from gateway.config import Settings
from gateway.i18n import text
from gateway.state import open_state
from gateway.upstream.oauth import OAuthClient, TokenPair
from gateway.upstream.signins import SignIns
from tests.servers import ROOT
from tests.simulator.control import SimulatorControl

CODE_STAGES = ["parse token", "quota", "code endpoint", "count tokens"]


def hosts(simulator_url: str) -> dict[str, str]:
    return {"MINIMAX_BASE_URL": simulator_url, "MINIMAX_ACCOUNT_BASE_URL": simulator_url,
            "MINIMAX_CODE_BASE_URL": simulator_url, "MINIMAX_QUOTA_BASE_URL": simulator_url}


def doctor(simulator_url: str, *args: str, lang: str = "C.UTF-8", state: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, **hosts(simulator_url), "LANG": lang, "LC_ALL": "", "LC_MESSAGES": "",
           "GATEWAY_STATE": state}
    return subprocess.run([sys.executable, "-m", "gateway", "doctor", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)


def stages(output: str) -> list[str]:
    return [line.split(":")[0] for line in output.splitlines() if line[:1] in "✓✗"]


def sign_in(simulator_url: str, state_url: str, name: str, account: dict[str, object]) -> SignIns:
    settings = Settings.from_env(hosts(simulator_url)).code()
    signins = SignIns(open_state(state_url), {"cn": OAuthClient(settings)}, refresh_before=300.0)
    signins.add(name, "cn", TokenPair(str(account["access_token"]), str(account["refresh_token"]),
                                      time.time() + 3600, "agent.default"))
    return signins


def test_a_live_code_token_passes_every_stage(sim: SimulatorControl, simulator_url: str) -> None:
    (account,) = sim.add_code_accounts(1, quota=600, quota_left=450)
    run = doctor(simulator_url, account["access_token"])
    assert run.returncode == 0, run.stdout + run.stderr
    assert stages(run.stdout) == [f"✓ {stage}" for stage in CODE_STAGES]
    assert "plan plus" in run.stdout and "interval: 25% used" in run.stdout and "MiniMax-M3" in run.stdout
    assert "code surface: works" in run.stdout and run.stdout.splitlines()[-1].startswith("LIVE")
    assert account["access_token"] not in run.stdout + run.stderr


def test_a_refused_code_token_fails_at_the_quota(sim: SimulatorControl, simulator_url: str) -> None:
    run = doctor(simulator_url, "mmoat_" + "q" * 54)
    assert run.returncode == 1
    assert stages(run.stdout) == ["✓ parse token", "✗ quota"]
    assert text("doctor.cause.code_token_refused", "en") in run.stdout


def test_a_spent_quota_fails_with_its_reset(sim: SimulatorControl, simulator_url: str) -> None:
    (account,) = sim.add_code_accounts(1, quota=600, quota_left=0)
    run = doctor(simulator_url, account["access_token"], lang="zh_CN.UTF-8")
    assert run.returncode == 1
    assert "✗ 额度" in run.stdout and "quota used up until" in run.stdout
    assert text("doctor.cause.quota_used", "zh") in run.stdout


def test_a_signed_in_account(sim: SimulatorControl, simulator_url: str, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/state.db"
    (account,) = sim.add_code_accounts(1)
    sign_in(simulator_url, state, "frank", account)
    run = doctor(simulator_url, "--signin", "frank", state=state)
    assert run.returncode == 0, run.stdout + run.stderr
    assert stages(run.stdout) == ["✓ signed in", "✓ quota", "✓ code endpoint", "✓ count tokens"]
    assert "frank (cn)" in run.stdout
    assert str(account["access_token"]) not in run.stdout + run.stderr


def test_a_revoked_sign_in_says_log_in_again(sim: SimulatorControl, simulator_url: str, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path}/state.db"
    (account,) = sim.add_code_accounts(1)
    signins = sign_in(simulator_url, state, "grace", account)
    sim.patch_code_account(account["name"], expire_access=True, revoke=True)
    first = doctor(simulator_url, "--signin", "grace", state=state)
    assert first.returncode == 1 and stages(first.stdout) == ["✓ signed in", "✗ quota"]
    assert text("doctor.cause.log_in_again", "en") in first.stdout
    sign_in_now = signins.get("grace")
    assert sign_in_now is not None and sign_in_now.state == "dead"  # the refresh met invalid_grant
    again = doctor(simulator_url, "--signin", "grace", state=state, lang="zh_CN.UTF-8")
    assert again.returncode == 1 and stages(again.stdout) == ["✗ 登录状态"]
    assert text("doctor.cause.log_in_again", "zh") in again.stdout


def test_an_unknown_sign_in(simulator_url: str, tmp_path: Path) -> None:
    run = doctor(simulator_url, "--signin", "nobody", state=f"sqlite:///{tmp_path}/state.db")
    assert run.returncode == 1 and stages(run.stdout) == ["✗ signed in"]


def test_signin_needs_the_state(simulator_url: str) -> None:
    run = doctor(simulator_url, "--signin", "frank")
    assert run.returncode == 2 and "GATEWAY_STATE" in run.stderr


@pytest.fixture(scope="module")
def check_client(simulator_url: str) -> FlaskClient:
    return build_app(Settings.from_env(hosts(simulator_url))).test_client()


def test_token_check_takes_a_code_token(sim: SimulatorControl, check_client: FlaskClient) -> None:
    (account,) = sim.add_code_accounts(1, quota=100, quota_left=100)
    report = check_client.post("/token/check", json={"token": account["access_token"]}).get_json()
    assert report["live"] is True and report["surface"] == "code" and report["credits"] == 1.0
    assert [stage["name"] for stage in report["stages"]] == CODE_STAGES
