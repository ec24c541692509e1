"""Once client keys are configured, the gateway stays keyed whatever the keys file holds:
emptied or gone, it refuses every request in each dialect's shape (and says why in the
log and on the admin page) instead of letting anyone with a MiniMax credential in."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from gateway.accounts.watch import CHECK_SECONDS
from tests.accounts.test_service import DIALECTS, assert_dialect_error, chat
from tests.conftest import GATEWAYS
from tests.servers import start_gateway

pytestmark = pytest.mark.timeout(180)

KEY = "sk-emptied-5c4b3a2f1e0d9c8b"
ADMIN = "admin-0a1b2c3d4e5f6a7b"


def refused_everywhere(url: str, credentials: list[str], sim) -> None:
    """Every dialect, with the old key, a caller's own credential or nothing: 401."""
    for dialect, query_key in DIALECTS:
        for key in (KEY, *credentials, None):
            path, headers, body = chat(dialect, key, query_key)
            response = requests.post(url + path, headers=headers, json=body, timeout=30)
            message = assert_dialect_error(response, dialect, 401)
            assert key is None or "empty or cannot be read" in message, message
    assert sim.stats()["sends"] == 0


def warnings(url: str) -> list[str]:
    overview = requests.get(url + "/admin/accounts", headers={"X-Admin-Key": ADMIN}, timeout=30).json()
    assert overview["mode"] == "keys"
    found: list[str] = overview["warnings"]
    return found


def test_an_emptied_or_deleted_keys_file_refuses_everyone(simulator_url, surface_env, sim, accounts,
                                                          tmp_path: Path) -> None:
    server, caller = (account["credential"] for account in accounts(2))
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"{KEY} name=only\n")
    env = {**surface_env, "GATEWAY_API_KEYS_FILE": str(keys_file), "MINIMAX_CREDENTIALS": server,
           "GATEWAY_ADMIN_KEY": ADMIN}
    proc, url = start_gateway(simulator_url, f"gateway-{surface_env['MINIMAX_SURFACE']}-keys-emptied", env)
    GATEWAYS.append(proc)
    try:
        sim.set_default({"length": 20, "cps": 2000})
        path, headers, body = chat("openai", KEY)
        assert requests.post(url + path, headers=headers, json=body, timeout=30).status_code == 200
        sim.reset()

        keys_file.write_text("# every key removed\n")
        time.sleep(CHECK_SECONDS + 0.2)  # the file is looked at again at most once a second
        refused_everywhere(url, [caller, server], sim)
        assert any("empty" in warning for warning in warnings(url))
        assert "the client key list is empty: every request is refused" in proc.log()
        page = requests.get(url + "/admin", headers={"X-Admin-Key": ADMIN}, timeout=30)
        assert page.status_code == 200 and "the client key list is empty" in page.text

        keys_file.unlink()
        time.sleep(CHECK_SECONDS + 0.2)
        refused_everywhere(url, [caller], sim)
        assert any("cannot read" in warning for warning in warnings(url))
    finally:
        proc.stop()


def test_a_keys_file_empty_at_start_up_refuses_everyone(simulator_url, surface_env, sim, credential,
                                                        tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("")
    env = {**surface_env, "GATEWAY_API_KEYS_FILE": str(keys_file)}
    proc, url = start_gateway(simulator_url, f"gateway-{surface_env['MINIMAX_SURFACE']}-keys-empty-start", env)
    GATEWAYS.append(proc)
    try:
        path, headers, body = chat("openai", credential)
        assert_dialect_error(requests.post(url + path, headers=headers, json=body, timeout=30), "openai", 401)
        assert "the client key list is empty" in proc.log()
    finally:
        proc.stop()
