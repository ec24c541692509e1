"""``python -m gateway login / logout / accounts`` end to end, as a user runs them, with
the simulator as MiniMax's account host: the JSON lines a script reads, approval,
denial and expiry, both forms of "pending", slow_down, the listing, the sign-out, and
no token in any output or in a file others can read.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ROOT
from tests.simulator.control import SimulatorControl

#: Any MiniMax Code token at all (the CLI must show none).
CODE_TOKEN = re.compile(r"mmo[ar]t_[\w-]{8,}")
TIMEOUT = 60


@pytest.fixture
def env(simulator_url: str, tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "MINIMAX_"))}
    return {**base, "MINIMAX_ACCOUNT_BASE_URL": simulator_url, "MINIMAX_CODE_BASE_URL": simulator_url,
            "GATEWAY_STATE": f"sqlite:///{tmp_path}/state.db"}


def gateway(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT)


class Login:
    """A running ``login --json``: its first line, then its outcome."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "login", "--json", *args], env=env,
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.device = json.loads(self.proc.stdout.readline())

    def outcome(self) -> tuple[int, dict[str, Any], str]:
        out, err = self.proc.communicate(timeout=TIMEOUT)
        lines = out.splitlines()
        assert len(lines) == 1, out
        self.shown = json.dumps(self.device) + out + err
        return self.proc.returncode, json.loads(lines[0]), err


def tokens_in(state_file: Path) -> list[str]:
    with sqlite3.connect(state_file) as db:
        rows = db.execute("SELECT value FROM records WHERE kind = 'signin'").fetchall()
    return [json.loads(value)[key] for (value,) in rows for key in ("access_token", "refresh_token")]


@pytest.mark.parametrize("pending_form", ["200", "400"])
def test_login_lists_the_account_and_shows_no_token(sim: SimulatorControl, env: dict[str, str],
                                                    tmp_path: Path, pending_form: str) -> None:
    sim.code_config(pending_form=pending_form, interval=1, device_expires_in=30)
    login = Login(env, "--name", "work")
    assert login.device["event"] == "device" and login.device["region"] == "cn"
    assert login.device["verification_uri_complete"].endswith(login.device["user_code"])
    sim.approve_device(login.device["user_code"])
    code, outcome, _ = login.outcome()
    assert code == 0 and outcome["ok"] is True and outcome["name"] == "work" and outcome["state"] == "ok"

    listed = gateway(env, "accounts", "--json")
    assert listed.returncode == 0
    accounts = json.loads(listed.stdout)["accounts"]
    assert [(a["name"], a["region"], a["state"]) for a in accounts] == [("work", "cn", "ok")]
    table = gateway(env, "accounts")
    assert "work" in table.stdout

    secrets = tokens_in(tmp_path / "state.db")
    assert len(secrets) == 2
    shown = login.shown + listed.stdout + listed.stderr + table.stdout + table.stderr
    assert not any(secret in shown for secret in secrets) and not CODE_TOKEN.search(shown)
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        path = tmp_path / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{name} is readable by others"


def test_slow_down_is_honoured_and_a_second_login_gets_its_own_name(sim: SimulatorControl,
                                                                   env: dict[str, str]) -> None:
    sim.code_config(interval=1, device_expires_in=40)
    names = []
    for slow_down in (True, False):
        sim.code_config(slow_down_once=slow_down)
        login = Login(env)
        sim.approve_device(login.device["user_code"])
        code, outcome, _ = login.outcome()
        assert code == 0
        names.append(outcome["name"])
    assert len(set(names)) == 2
    stats = sim.code_stats()
    assert stats["slow_downs"] == 1 and stats["grants"] == 2


@pytest.mark.parametrize("ending", ["denied", "expired"])
def test_denial_and_expiry_fail_clearly(sim: SimulatorControl, env: dict[str, str], ending: str) -> None:
    # Expiry after two seconds; a denial long before its code would expire.
    sim.code_config(interval=1, device_expires_in=2 if ending == "expired" else 30)
    login = Login(env)
    if ending == "denied":
        sim.approve_device(login.device["user_code"], deny=True)
    code, outcome, err = login.outcome()
    assert code == 1 and outcome == {"event": "outcome", "ok": False, "error": ending,
                                     "message": outcome["message"]}, (outcome, err[-2000:])
    assert ending in outcome["message"]
    assert json.loads(gateway(env, "accounts", "--json").stdout)["accounts"] == []


def test_the_terminal_login_says_what_to_do(sim: SimulatorControl, env: dict[str, str]) -> None:
    sim.code_config(interval=1, device_expires_in=2)
    done = gateway(env, "login", "--region", "global")
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    assert "open this page" in done.stdout and "Code: " in done.stdout
    assert "Login failed: " in done.stderr and "expired" in done.stderr, done.stderr[-2000:]


def test_logout_forgets_the_account(sim: SimulatorControl, env: dict[str, str]) -> None:
    sim.code_config(interval=1, device_expires_in=30)
    login = Login(env, "--name", "gone")
    sim.approve_device(login.device["user_code"])
    assert login.outcome()[0] == 0
    out = gateway(env, "logout", "gone")
    assert out.returncode == 0 and "gone" in out.stdout
    assert json.loads(gateway(env, "accounts", "--json").stdout)["accounts"] == []
    again = gateway(env, "logout", "gone")
    assert again.returncode == 1 and "gone" in again.stderr


def test_without_gateway_state_the_cli_uses_the_gateways_default_state(env: dict[str, str], tmp_path) -> None:
    data = tmp_path / "data"
    default = {**{k: v for k, v in env.items() if k != "GATEWAY_STATE"}, "GATEWAY_DATA_DIR": str(data)}
    done = gateway(default, "accounts", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["accounts"] == []
    assert (data / "state.db").exists() and (data / "state.db").stat().st_mode & 0o077 == 0


def test_a_bad_name_is_a_usage_error(env: dict[str, str]) -> None:
    done = gateway(env, "login", "--name", "two words")
    assert done.returncode == 2 and "--name" in done.stderr


def test_an_unreachable_state_is_a_clear_failure(env: dict[str, str]) -> None:
    done = gateway({**env, "GATEWAY_STATE": "redis://127.0.0.1:1/0"}, "accounts")
    assert done.returncode == 1 and "GATEWAY_STATE" in done.stderr and "Traceback" not in done.stderr


def test_the_terminal_qr_code_is_drawn_in_blocks() -> None:
    from gateway.accounts.cli import _qr

    drawn = _qr("https://account.minimax.io/oauth-authorize?user_code=ABCD-EFGH").splitlines()
    assert len(drawn) > 10 and all(set(line) <= {" ", "█", "▀", "▄"} for line in drawn if line)
