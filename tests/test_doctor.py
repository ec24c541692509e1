"""The credential doctor, by command line and by POST /token/check, stage by stage."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.servers import ROOT


def doctor(simulator_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", "doctor", "--base-url", simulator_url, *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, input=stdin)


def test_a_live_credential_passes_every_stage(simulator_url, sim, credential) -> None:
    sim.script([{"text": "pong", "cps": 1000}])
    run = doctor(simulator_url, credential)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    stages = ["parse token", "user info", "device registration", "credits", "send message",
              "poll to finished", "delete chat"]
    assert [line.split(":")[0] for line in lines[:-1]] == [f"✓ {s}" for s in stages]
    assert "'pong'" in run.stdout and lines[-1].startswith("LIVE")
    assert credential.split("+")[1] not in run.stdout + run.stderr
    assert sim.wait_idle(10)["chats_alive"] == 0


def test_credential_from_stdin(simulator_url, sim, credential) -> None:
    assert doctor(simulator_url, "-", stdin=credential + "\n").returncode == 0


@pytest.mark.parametrize(("setup", "stage", "cause"), [
    ("expired", "parse token", "expired"),
    ("garbage", "parse token", "malformed"),
    ("revoked", "user info", "revoked"),
    ("wrong_user", "user info", "wrong realUserID"),
    ("signature", "user info", "signature mismatch"),
    ("no_credits", "credits", "no credits"),
    ("busy", "send message", "busy"),
    ("server_error", "poll to finished", "server errors"),
])
def test_each_failing_stage_is_named_with_its_cause(simulator_url, sim, accounts, setup, stage, cause) -> None:
    (account,) = accounts(1, exp_seconds=-60) if setup == "expired" else accounts(1)
    credential = account["credential"]
    if setup == "garbage":
        credential = "12345+not-a-token"
    elif setup == "revoked":
        sim.patch_account(account["real_user_id"], expired=True)
    elif setup == "wrong_user":
        credential = "1234567890123456789+" + account["jwt"]
    elif setup == "signature":  # the upstream now wants the old salt: signatures mismatch
        sim.config(signature_mode="jwt")
    elif setup == "no_credits":
        sim.patch_account(account["real_user_id"], credits=0)
    elif setup == "busy":
        sim.patch_account(account["real_user_id"], busy=True)
    elif setup == "server_error":
        sim.fault("get_chat_detail", "http_500", count=1000)
    run = doctor(simulator_url, credential)
    assert run.returncode == 1
    failed = [line for line in run.stdout.splitlines() if line.startswith("✗")]
    assert len(failed) == 1 and failed[0].startswith(f"✗ {stage}:"), run.stdout
    assert cause in run.stdout and f"failed at '{stage}'" in run.stdout


def test_token_check_endpoint(gateway, sim, accounts) -> None:
    (live,) = accounts(1)
    (empty,) = accounts(1, credits=0)
    ok = requests.post(gateway + "/token/check", json={"token": live["credential"]}, timeout=120).json()
    assert ok["live"] is True and ok["credits"] > 0 and ok["failed_stage"] is None
    assert len(ok["stages"]) == 7 and all(s["ok"] for s in ok["stages"])
    bad = requests.post(gateway + "/token/check", json={"token": empty["credential"]}, timeout=120).json()
    assert (bad["live"], bad["failed_stage"], bad["credits"]) == (False, "credits", 0)
    missing = requests.post(gateway + "/token/check", json={}, timeout=10)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "token"
