"""The simulator's account host for MiniMax Code: device login, refresh rotation, account calls.

Role: drive a real simulator process with `requests` the way the official client does
(UPSTREAM-CODE.md §1 and §4) and check every strictness rule of the page: form body,
client id, scope, PKCE, both pending forms, slow_down, expiry, denial, single-use
refresh tokens, revoke 404, the signed mcode account calls and the quota calls.
The PKCE and mcode signing here are written from the page, independently of the simulator.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.simulator.control import SimulatorControl

CLIENT = "mcode-public"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SALT = "I*7Cf%WZ#S&%1RlZJ&C2"


def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def start(sim: SimulatorControl, challenge: str, **overrides: str) -> requests.Response:
    form = {"client_id": CLIENT, "scope": "agent.default", "audience": "agent-backend",
            "code_challenge": challenge, "code_challenge_method": "S256", **overrides}
    return requests.post(f"{sim.base_url}/oauth2/device/code", data=form,
                         headers={"Accept": "application/json"}, timeout=10)


def poll(sim: SimulatorControl, device_code: str, verifier: str) -> requests.Response:
    return requests.post(f"{sim.base_url}/oauth2/token", timeout=10, data={
        "grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": CLIENT,
        "code_verifier": verifier})


def refresh(sim: SimulatorControl, token: str) -> requests.Response:
    return requests.post(f"{sim.base_url}/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": token, "client_id": CLIENT,
        "scope": "agent.default", "audience": "agent-backend"})


def begin(sim: SimulatorControl) -> tuple[dict[str, Any], str]:
    verifier, challenge = pkce()
    answer = start(sim, challenge)
    assert answer.status_code == 200, answer.text
    return answer.json(), verifier


def is_pending(response: requests.Response, form: str) -> bool:
    if form == "200":
        return response.status_code == 200 and response.json() == {"status": "pending"}
    return response.status_code == 400 and response.json()["error"] == "authorization_pending"


# --- The device flow ------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["200", "400"])
def test_device_flow_grants_tokens_after_pending_in_either_form(code_sim: SimulatorControl,
                                                               form: str) -> None:
    code_sim.code_config(pending_form=form, interval=0)
    device, verifier = begin(code_sim)
    assert set(device) >= {"device_code", "user_code", "verification_uri",
                           "verification_uri_complete", "expires_in", "interval"}
    assert len(device["user_code"]) == 9 and device["user_code"][4] == "-"
    assert device["verification_uri_complete"].endswith(f"user_code={device['user_code']}")
    assert is_pending(poll(code_sim, device["device_code"], verifier), form)
    approved = code_sim.approve_device(device["user_code"])
    granted = poll(code_sim, device["device_code"], verifier)
    assert granted.status_code == 200, granted.text
    tokens = granted.json()
    assert tokens["token_type"] == "bearer" and tokens["scope"] == "agent.default"
    assert tokens["access_token"].startswith("mmoat_") and len(tokens["access_token"]) == 60
    assert tokens["refresh_token"].startswith("mmort_") and len(tokens["refresh_token"]) == 60
    assert "." not in tokens["access_token"] and tokens["expires_in"] > 0
    assert approved["account"] in {a["name"] for a in code_sim.code_accounts()}
    again = poll(code_sim, device["device_code"], verifier)  # a device code is single-use
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_official_user_code_variant(code_sim: SimulatorControl) -> None:
    code_sim.code_config(device_variant="user_code", interval=0.5, device_expires_in=300)
    device, verifier = begin(code_sim)
    assert "device_code" not in device and device["interval"] == 500  # ms
    assert device["expired_in"] > time.time() * 1000 + 200_000  # epoch ms
    by_user = {"grant_type": DEVICE_GRANT, "user_code": device["user_code"],
               "client_id": CLIENT, "code_verifier": verifier}
    url = f"{code_sim.base_url}/oauth2/token"
    assert requests.post(url, data=by_user, timeout=10).json() == {"status": "pending"}
    code_sim.approve_device(device["user_code"])
    time.sleep(0.5)
    assert requests.post(url, data=by_user, timeout=10).json()["access_token"].startswith("mmoat_")


def test_device_flow_checks_pkce(code_sim: SimulatorControl) -> None:
    code_sim.code_config(interval=0)
    device, _ = begin(code_sim)
    code_sim.approve_device(device["user_code"])
    wrong = poll(code_sim, device["device_code"], pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("overrides, error, status", [
    ({"client_id": "someone-else"}, "invalid_client", 401),
    ({"scope": "openid agent.default"}, "invalid_scope", 400),
    ({"audience": "elsewhere"}, "invalid_request", 400),
    ({"code_challenge_method": "plain"}, "invalid_request", 400),
    ({"code_challenge": ""}, "invalid_request", 400),
])
def test_device_code_request_is_strict(code_sim: SimulatorControl, overrides: dict[str, str],
                                       error: str, status: int) -> None:
    answer = start(code_sim, pkce()[1], **overrides)
    assert answer.status_code == status and answer.json()["error"] == error


def test_device_code_needs_a_form_or_json_body(code_sim: SimulatorControl) -> None:
    form = {"client_id": CLIENT, "scope": "agent.default", "audience": "agent-backend",
            "code_challenge": pkce()[1], "code_challenge_method": "S256"}
    as_json = requests.post(f"{code_sim.base_url}/oauth2/device/code", json=form, timeout=10)
    assert as_json.status_code == 200  # accepted (measured), but counted
    assert code_sim.code_stats()["warnings"] == {"oauth_json_body": 1}
    staging = requests.post(f"{code_sim.base_url}/oauth2/device/code", data=form, timeout=10,
                            headers={"X-User-Pre": "1"})
    assert staging.status_code == 200
    assert code_sim.code_stats()["warnings"]["staging_header_x_user_pre"] == 1
    as_text = requests.post(f"{code_sim.base_url}/oauth2/device/code", timeout=10,
                            data=json.dumps(form), headers={"Content-Type": "text/plain"})
    assert as_text.status_code == 401  # nothing readable: no client_id


@pytest.mark.parametrize("form", ["200", "400"])
def test_polling_faster_than_the_interval_answers_slow_down(code_sim: SimulatorControl,
                                                            form: str) -> None:
    code_sim.code_config(pending_form=form, interval=30)
    device, verifier = begin(code_sim)
    assert is_pending(poll(code_sim, device["device_code"], verifier), form)
    early = poll(code_sim, device["device_code"], verifier)
    expected = {"status": "slow_down"} if form == "200" else {"error": "slow_down"}
    assert early.status_code == int(form) and early.json().items() >= expected.items()
    assert code_sim.code_devices()[0]["interval"] == 35  # RFC 8628: +5 s


def test_slow_down_once_by_control(code_sim: SimulatorControl) -> None:
    code_sim.code_config(interval=0, slow_down_once=True, slow_down_step=0)
    device, verifier = begin(code_sim)
    assert poll(code_sim, device["device_code"], verifier).json() == {"status": "slow_down"}
    assert poll(code_sim, device["device_code"], verifier).json() == {"status": "pending"}


@pytest.mark.parametrize("form", ["200", "400"])
def test_denied_and_expired_device_logins(code_sim: SimulatorControl, form: str) -> None:
    code_sim.code_config(pending_form=form, interval=0, device_expires_in=0.5)
    denied, verifier = begin(code_sim)
    code_sim.approve_device(denied["user_code"], deny=True)
    answer = poll(code_sim, denied["device_code"], verifier)
    assert answer.json() == ({"status": "denied"} if form == "200" else {
        "error": "access_denied", "error_description": "the user denied the request"})
    expiring, verifier = begin(code_sim)
    time.sleep(0.6)
    late = poll(code_sim, expiring["device_code"], verifier)
    assert (late.json() == {"status": "expired"} if form == "200"
            else late.json()["error"] == "expired_token")


def test_token_endpoint_refuses_app_id_and_unknown_grants(code_sim: SimulatorControl) -> None:
    url = f"{code_sim.base_url}/oauth2/token"
    with_app_id = requests.post(url, data={"grant_type": DEVICE_GRANT, "client_id": CLIENT,
                                           "device_code": "x", "code_verifier": "y",
                                           "app_id": "3001"}, timeout=10)
    assert with_app_id.json()["error"] == "invalid_request"
    other = requests.post(url, data={"grant_type": "password", "client_id": CLIENT}, timeout=10)
    assert other.json()["error"] == "unsupported_grant_type"


def test_revoke_answers_404(code_sim: SimulatorControl) -> None:
    answer = requests.post(f"{code_sim.base_url}/oauth2/revoke", timeout=10, data={
        "token": "mmort_x", "token_type_hint": "refresh_token", "client_id": CLIENT})
    assert answer.status_code == 404


# --- Refresh rotation ---------------------------------------------------------------------------

def messages_status(sim: SimulatorControl, access: str) -> int:
    return requests.post(f"{sim.base_url}/mavis/api/v1/llm/v1/messages", timeout=30,
                         headers={"Authorization": f"Bearer {access}"},
                         json={"model": "MiniMax-M2.7", "max_tokens": 100,
                               "messages": [{"role": "user", "content": "hi"}]}).status_code


def test_refresh_rotates_and_a_used_refresh_token_is_dead(code_sim: SimulatorControl) -> None:
    code_sim.set_default({"text": "ok", "first_delay": 0})
    account = code_sim.add_code_accounts(1)[0]
    first = refresh(code_sim, account["refresh_token"])
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != account["refresh_token"]
    assert rotated["access_token"] != account["access_token"]
    reused = refresh(code_sim, account["refresh_token"])
    assert reused.status_code == 400 and reused.json() == {
        "error": "invalid_grant", "error_description": "this refresh token can no longer be used"}
    # Chosen: the previous access token stays valid until its own expiry.
    assert messages_status(code_sim, account["access_token"]) == 200
    assert messages_status(code_sim, rotated["access_token"]) == 200
    assert refresh(code_sim, rotated["refresh_token"]).status_code == 200
    stats = code_sim.code_stats()
    assert stats["refreshes"] == 2 and stats["invalid_grants"] == 1


def test_refresh_may_omit_the_refresh_token_which_then_stays_live(code_sim: SimulatorControl) -> None:
    code_sim.code_config(refresh_keeps_token=True)
    account = code_sim.add_code_accounts(1)[0]
    answer = refresh(code_sim, account["refresh_token"]).json()
    assert "refresh_token" not in answer and answer["access_token"].startswith("mmoat_")
    assert refresh(code_sim, account["refresh_token"]).status_code == 200


def test_access_tokens_expire_and_revoked_sign_ins_get_invalid_grant(code_sim: SimulatorControl) -> None:
    code_sim.set_default({"text": "ok", "first_delay": 0})
    account = code_sim.add_code_accounts(1, expires_in=1)[0]
    assert messages_status(code_sim, account["access_token"]) == 200
    time.sleep(1.1)
    assert messages_status(code_sim, account["access_token"]) == 401
    code_sim.patch_code_account(account["name"], revoke=True)
    dead = refresh(code_sim, account["refresh_token"])
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"


def test_token_faults_and_refresh_checks(code_sim: SimulatorControl) -> None:
    account = code_sim.add_code_accounts(1)[0]
    code_sim.fault("code_token", "http_503")
    assert refresh(code_sim, account["refresh_token"]).status_code == 503
    bad_scope = requests.post(f"{code_sim.base_url}/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": account["refresh_token"],
        "client_id": CLIENT, "scope": "everything"})
    assert bad_scope.json()["error"] == "invalid_scope"
    assert refresh(code_sim, account["refresh_token"]).status_code == 200  # still live


# --- Account and quota calls (page §4) -------------------------------------------------------------

def mcode_call(sim: SimulatorControl, access: str, path: str, body: dict[str, Any] | None,
               user_id: str, skew_ms: int = 0, order: list[str] | None = None,
               salt: str = SALT) -> requests.Response:
    ms = int(time.time() * 1000)
    unix = str(ms + skew_ms)  # skew_ms: unix no longer the same clock reading as x-timestamp
    params = [("device_platform", "mcode"), ("biz_id", "3"), ("app_id", "3001"),
              ("version_code", "22201"), ("unix", unix), ("timezone_offset", "28800"),
              ("sys_language", "zh"), ("lang", "zh"), ("device_id", "0"), ("os_name", "linux"),
              ("browser_name", "mcode"), ("user_id", user_id), ("client", "mcode")]
    if order is not None:
        params.sort(key=lambda pair: order.index(pair[0]))
    query = "&".join(f"{k}={v}" for k, v in params)
    raw = json.dumps(body, separators=(",", ":")) if body is not None else ""
    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
    target = quote(f"{path}?{query}", safe="-_.!~*'()")
    headers = {"Authorization": f"Bearer {access}", "Accept": "application/json",
               "Content-Type": "application/json", "User-Agent": "MiniMaxCode",
               "x-timestamp": str(ms // 1000),
               "yy": md5(f"{target}_{raw or '{}'}{md5(unix)}ooui"),
               "x-signature": md5(f"{ms // 1000}{salt}{raw}")}
    method = "POST" if body is not None else "GET"
    return requests.request(method, f"{sim.base_url}{path}?{query}", data=raw or None,
                            headers=headers, timeout=10)


EXTRA = "/matrix/api/v1/user/get_user_extra_info"
MEMBERSHIP = "/matrix/api/v1/commerce/get_membership_info"


def test_mcode_account_calls_give_workspace_membership_and_quota(code_sim: SimulatorControl) -> None:
    account = code_sim.add_code_accounts(1, quota=100, quota_left=40)[0]
    access, user = account["access_token"], account["real_user_id"]
    info = mcode_call(code_sim, access, "/v1/api/user/info", None, "0")
    assert info.status_code == 200, info.text
    assert info.json()["data"]["userInfo"]["realUserID"] == user
    extra = mcode_call(code_sim, access, EXTRA, {}, user)
    assert extra.status_code == 200, extra.text
    workspace = extra.json()["workspaces"][0]
    assert workspace["workspace_type"] == 0 and workspace["op_group_id"] == account["op_group_id"]
    member = mcode_call(code_sim, access, MEMBERSHIP, {"workspace_id": workspace["workspace_id"]},
                        user).json()
    assert member["has_token_plan"] is True and member["base_resp"]["status_code"] == 0
    assert isinstance(member["op_credit_summary"]["total_remaining_amount"], str)
    remains = requests.get(f"{code_sim.base_url}/v1/api/openplatform/coding_plan/remains",
                           headers={"Authorization": f"Bearer {access}",
                                    "X-Group-Id": workspace["op_group_id"]}, timeout=10).json()
    entry = remains["model_remains"][0]
    assert entry["current_interval_total_count"] == 100
    assert entry["current_interval_usage_count"] == 40  # REMAINING, as the wire names it


@pytest.mark.parametrize("case", ["order", "skew", "salt", "user", "token"])
def test_mcode_account_calls_are_signed_and_checked(code_sim: SimulatorControl, case: str) -> None:
    account = code_sim.add_code_accounts(1)[0]
    access, user = account["access_token"], account["real_user_id"]
    assert mcode_call(code_sim, access, EXTRA, {}, user).status_code == 200
    names = ["biz_id", "device_platform", "app_id", "version_code", "unix", "timezone_offset",
             "sys_language", "lang", "device_id", "os_name", "browser_name", "user_id", "client"]
    answer = {
        "order": lambda: mcode_call(code_sim, access, EXTRA, {}, user, order=names),
        "skew": lambda: mcode_call(code_sim, access, EXTRA, {}, user, skew_ms=2000),
        "salt": lambda: mcode_call(code_sim, access, EXTRA, {}, user, salt="other"),
        "user": lambda: mcode_call(code_sim, access, EXTRA, {}, "123"),
        "token": lambda: mcode_call(code_sim, "mmoat_" + "x" * 54, EXTRA, {}, user),
    }[case]()
    assert answer.status_code in (400, 401), answer.text
    assert code_sim.code_stats()["rejections"]


def test_remains_needs_the_accounts_group_id(code_sim: SimulatorControl) -> None:
    account = code_sim.add_code_accounts(1)[0]
    url = f"{code_sim.base_url}/v1/api/openplatform/coding_plan/remains"
    wrong = requests.get(url, headers={"Authorization": f"Bearer {account['access_token']}",
                                       "X-Group-Id": "1"}, timeout=10).json()
    assert wrong["base_resp"]["status_code"] == 1004 and "model_remains" not in wrong
    assert requests.get(url, headers={"X-Group-Id": account["op_group_id"]},
                        timeout=10).status_code == 401


def test_web_membership_route_still_answers_web_calls(code_sim: SimulatorControl) -> None:
    unsigned = requests.post(f"{code_sim.base_url}{MEMBERSHIP}?token=x", json={}, timeout=10)
    assert unsigned.status_code == 401 and unsigned.content == b""  # the web gate, unchanged
