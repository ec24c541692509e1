"""The credential doctor, by command line and by POST /token/check, stage by stage, on
each web surface, in English and Chinese (a MiniMax Code credential walks other stages:
tests/test_doctor_code.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from tests.conftest import WEB_SURFACES
from tests.servers import ROOT

#: The web surfaces only: a MiniMax Code credential's doctor is tests/test_doctor_code.py.
pytestmark = pytest.mark.parametrize("surface", WEB_SURFACES, indirect=True)

ACCOUNT_STAGES = ["parse token", "user info", "device registration", "credits"]
SURFACE_STAGES = {
    "session": ["session config", "agent discovery", "create session", "stream answer", "archive session"],
    "matrix": ["send message", "poll to finished", "delete chat"],
}
#: Where a failing message or answer shows, per surface.
SEND_STAGE = {"session": "stream answer", "matrix": "send message"}
ANSWER_STAGE = {"session": "stream answer", "matrix": "poll to finished"}
ANSWER_FAULT = {"session": "session_message", "matrix": "get_chat_detail"}


def doctor(simulator_url: str, surface_env: dict[str, str], *args: str, stdin: str | None = None,
           lang: str = "C.UTF-8", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "gateway", "doctor", "--base-url", simulator_url,
            "--surface", surface_env["MINIMAX_SURFACE"], "--stream-base-url", surface_env["MINIMAX_STREAM_BASE_URL"]]
    return subprocess.run([*argv, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, input=stdin,
                          env={**os.environ, "LANG": lang, "LC_ALL": "", "LC_MESSAGES": "",
                               "MINIMAX_CODE_BASE_URL": simulator_url, **(env or {})})


def stage_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line[:1] in "✓✗"]


def test_a_live_credential_passes_every_stage(simulator_url, surface_env, surface, sim, credential) -> None:
    sim.script([{"text": "pong", "cps": 1000}])
    run = doctor(simulator_url, surface_env, credential)
    assert run.returncode == 0, run.stdout + run.stderr
    stages = ACCOUNT_STAGES + SURFACE_STAGES[surface]
    assert [line.split(":")[0] for line in stage_lines(run.stdout)] == [f"✓ {s}" for s in stages]
    lines = run.stdout.splitlines()
    assert "'pong'" in run.stdout and lines[-1].startswith("LIVE") and surface in lines[-1]
    assert lines[-2].startswith("signing: captured")
    assert credential.split("+")[1] not in run.stdout + run.stderr
    assert sim.wait_idle(10)["chats_alive"] == 0


def test_credential_from_stdin(simulator_url, surface_env, sim, credential) -> None:
    assert doctor(simulator_url, surface_env, "-", stdin=credential + "\n").returncode == 0


def test_chinese_terminal_gets_chinese_stages_and_causes(simulator_url, surface_env, sim, accounts) -> None:
    (account,) = accounts(1, credits=0)
    run = doctor(simulator_url, surface_env, account["credential"], lang="zh_CN.UTF-8")
    assert run.returncode == 1
    assert "✓ 解析 token" in run.stdout and "✗ 积分" in run.stdout
    assert "可能原因：积分用完了" in run.stdout and "不可用：卡在「积分」这一步。" in run.stdout


def test_auto_walks_both_surfaces_and_names_the_one_that_works(simulator_url, surface_env, surface, sim,
                                                               accounts) -> None:
    if surface != "session":
        pytest.skip("one auto-mode check is enough")
    (account,) = accounts(1, surfaces={"matrix": False})
    sim.script([{"text": "pong", "cps": 1000}])
    run = doctor(simulator_url, {**surface_env, "MINIMAX_SURFACE": "auto"}, account["credential"])
    assert run.returncode == 0, run.stdout
    assert "session surface: works" in run.stdout and "matrix surface: fails at 'send message'" in run.stdout
    assert "✗ send message" in run.stdout and "this surface refused" in run.stdout
    assert run.stdout.splitlines()[-1].startswith("LIVE") and "session" in run.stdout.splitlines()[-1]
    assert sim.wait_idle(10)["chats_alive"] == 0


@pytest.mark.parametrize("accepted", [False, True], ids=["refused", "accepted"])
def test_auto_reports_whether_the_code_endpoint_takes_the_web_token(simulator_url, surface_env, surface, sim,
                                                                    credential, accepted) -> None:
    """Auto mode tries a web token on the code endpoint first, as the gateway does; the
    report says whether it worked (then the code surface is the one auto mode uses)."""
    if surface != "session":
        pytest.skip("one auto-mode check is enough")
    sim.code_config(accept_web_tokens=accepted)
    sim.script([{"text": "pong", "cps": 1000}] * 2)
    run = doctor(simulator_url, {**surface_env, "MINIMAX_SURFACE": "auto"}, credential)
    assert run.returncode == 0, run.stdout
    last = run.stdout.splitlines()[-1]
    if accepted:
        assert "✓ web token on code: the code endpoint takes this web token" in run.stdout
        assert "code surface: works" in run.stdout and last.startswith("LIVE") and "code" in last
    else:
        assert "✗ web token on code" in run.stdout and "code surface: fails at 'web token on code'" in run.stdout
        assert "does not take this web token: auto mode uses the web surfaces" in run.stdout
        assert last.startswith("LIVE") and "session" in last
    (probe,) = [entry for entry in sim.code_log() if entry["path"].endswith("/count_tokens")]
    assert probe["status"] == (200 if accepted else 401), probe
    off = doctor(simulator_url, {**surface_env, "MINIMAX_SURFACE": "auto"}, credential,
                 env={"MINIMAX_CODE_PROBE_WEB_TOKENS": "off"})
    assert off.returncode == 0 and "web token on code" not in off.stdout, off.stdout
    assert credential.split("+")[1] not in run.stdout + run.stderr + off.stdout + off.stderr


@pytest.mark.parametrize(("setup", "stage", "cause"), [
    ("expired", "parse token", "expired"),
    ("garbage", "parse token", "malformed"),
    ("revoked", "user info", "revoked"),
    ("wrong_user", "user info", "wrong realUserID"),
    ("signature", "user info", "signature mismatch"),
    ("no_credits", "credits", "no credits"),
    ("busy", "send", "busy"),
    ("server_error", "answer", "server errors"),
])
def test_each_failing_stage_is_named_with_its_cause(simulator_url, surface_env, surface, sim, accounts,
                                                    setup, stage, cause) -> None:
    stage = {"send": SEND_STAGE[surface], "answer": ANSWER_STAGE[surface]}.get(stage, stage)
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
        sim.fault(ANSWER_FAULT[surface], "http_500", count=1000)
    run = doctor(simulator_url, surface_env, credential)
    assert run.returncode == 1
    failed = [line for line in run.stdout.splitlines() if line.startswith("✗")]
    assert len(failed) == 1 and failed[0].startswith(f"✗ {stage}:"), run.stdout
    assert cause in run.stdout and f"failed at '{stage}'" in run.stdout


def test_token_check_endpoint(gateway, surface, sim, accounts) -> None:
    (live,) = accounts(1)
    (empty,) = accounts(1, credits=0)
    ok = requests.post(gateway + "/token/check", json={"token": live["credential"]}, timeout=120).json()
    assert ok["live"] is True and ok["credits"] > 0 and ok["failed_stage"] is None
    assert ok["surface"] == surface and ok["signing"].startswith("captured")
    assert [s["name"] for s in ok["stages"]] == ACCOUNT_STAGES + SURFACE_STAGES[surface]
    assert all(s["ok"] for s in ok["stages"]) and ok["surfaces"][surface]["ok"] is True
    bad = requests.post(gateway + "/token/check", json={"token": empty["credential"]}, timeout=120,
                        headers={"Accept-Language": "zh-CN,zh;q=0.9"}).json()
    assert (bad["live"], bad["failed_stage"], bad["credits"]) == (False, "credits", 0)
    assert bad["stages"][-1]["label"] == "积分" and bad["likely_cause"].startswith("积分用完了")
    missing = requests.post(gateway + "/token/check", json={}, timeout=10)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "token"


def constant_lines(output: str) -> dict[str, str]:
    return {line.split(":")[0].split()[-1]: line.split(":", 1)[1].strip()
            for line in output.splitlines() if line.startswith("signing constant ")}


def test_the_signing_constants_source_and_age(simulator_url, surface_env, surface, sim, credential) -> None:
    if surface not in ("session", "matrix"):
        pytest.skip("the web surfaces' signing")
    sim.script([{"text": "pong", "cps": 1000}])
    run = doctor(simulator_url, {**surface_env}, credential, env={"MINIMAX_YY_SUFFIX": "ooui"})
    assert run.returncode == 0, run.stdout + run.stderr
    found = constant_lines(run.stdout)
    assert set(found) == {"salt", "yy_suffix", "version_code"}
    assert all(line.startswith("default (captured 2026-06-03, ") and line.endswith(" d ago)") for line in found.values())
    sim.config(bundle_salt="Zq9!rotated#Salt%2026", bundle_version_code="33333")
    sim.script([{"text": "pong", "cps": 1000}])
    run = doctor(simulator_url, surface_env, credential,
                 env={"MINIMAX_BUNDLE_REFRESH": "on", "MINIMAX_YY_SUFFIX": "ooui", "MINIMAX_VERSION_CODE": "12345"})
    assert run.returncode == 0, run.stdout + run.stderr
    found = constant_lines(run.stdout)
    assert all(line.startswith(f"bundle {simulator_url}/static/js/main.") and line.endswith(" s ago)")
               for line in found.values()), found
    run = doctor(simulator_url, surface_env, credential, env={"MINIMAX_VERSION_CODE": "12345"})
    assert constant_lines(run.stdout)["version_code"] == "setting MINIMAX_VERSION_CODE"
