"""Tests of the strict upstream simulator itself (tests/simulator).

Role: prove the simulator accepts a correct client and rejects each protocol mistake
exactly as /work/shared/UPSTREAM.md says, and that its timeline, faults and control API
behave as documented. Requests are built by a tiny signer written here from the spec,
independently of both the simulator's protocol module and the gateway.

Most tests use Flask's test client with a fake clock (deterministic timelines); the last
group starts `python -m tests.simulator` and talks real HTTP (drops, concurrency).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from array import array
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlsplit

import av
import pytest
import requests
from flask import Flask
from urllib3 import encode_multipart_formdata

from tests.simulator import SimSettings, create_simulator_app
from tests.simulator.control import SimulatorControl

REPO_ROOT = Path(__file__).resolve().parent.parent
SALT = "I*7Cf%WZ#S&%1RlZJ&C2"
SEND = "/matrix/api/v1/chat/send_msg"
DETAIL = "/matrix/api/v1/chat/get_chat_detail"
STOP = "/matrix/api/v1/chat/stop_run_agent"
DELETE = "/matrix/api/v1/chat/delete_chat"
LIST = "/matrix/api/v1/chat/list_chat"
MEMBERSHIP = "/matrix/api/v1/commerce/get_membership_info"
REGISTER = "/v1/api/user/device/register"
USER_INFO = "/v1/api/user/info"
POLICY = "/v1/api/files/request_policy"
CALLBACK = "/v1/api/files/policy_callback"
ROBOT = "/v1/api/chat/update_robot_custom_config"
TTS = "/v1/api/chat/msg_tts"
PHONE = "/v1/api/chat/phone_msg"
INVALID_SIGNATURE = {"base_resp": {"status_code": 1000400, "status_msg": "invalid signature"}}
CHAT_RUNNING = 1400010170
CHAT_NOT_FOUND = 1400010404
NO_CREDITS = 1400010161
QUOTA = 2056
INVALID_PARAMS = 1000001
MSG_NOT_FOUND = 1400010405
VOICE_MISMATCH = 1400010420
UPLOAD_NOT_FOUND = 1400010460
UPLOAD_SIZE_MISMATCH = 1400010461
FILE_NOT_FOUND = 1400010470
FILE_NOT_IMAGE = 1400010471
INVALID_AUDIO = 1000402
IMAGE_MIMES: dict[str, str] = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif",
                               "webp": "image/webp"}
IMAGES: dict[str, bytes] = {
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17),
    "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(20),
    "gif": b"GIF89a\x01\x00\x01\x00" + bytes(20),
    "webp": b"RIFF\x1a\x00\x00\x00WEBPVP8 " + bytes(14),
}


# --- An independent signer, written from UPSTREAM.md -------------------------------------------

def js_encode(value: str) -> str:
    """encodeURIComponent."""
    return quote(value, safe="-_.!~*'()")


def md5(data: bytes | str) -> str:
    return hashlib.md5(data.encode() if isinstance(data, str) else data).hexdigest()


def compact(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def standard_params(account: dict[str, Any], unix_ms: str, device_uuid: str) -> list[list[str]]:
    return [
        ["device_platform", "web"], ["biz_id", "3"], ["app_id", "3001"],
        ["version_code", "22201"], ["unix", unix_ms], ["timezone_offset", "28800"],
        ["sys_language", "zh"], ["lang", "zh"], ["uuid", device_uuid],
        ["device_id", account["device_id"]], ["os_name", "Mac"], ["browser_name", "chrome"],
        ["device_memory", "8"], ["cpu_core_num", "11"], ["browser_language", "zh-CN"],
        ["browser_platform", "MacIntel"], ["user_id", account["real_user_id"]],
        ["screen_width", "1920"], ["screen_height", "1080"], ["token", account["jwt"]],
        ["client", "web"], ["region", "cn"],
    ]


def yy_of(path: str, query: str, body: bytes, unix_ms: str) -> str:
    return md5(js_encode(f"{path}?{query}").encode() + b"_" + body + (md5(unix_ms) + "ooui").encode())


class Reply:
    def __init__(self, status: int, raw: bytes, headers: dict[str, str] | None = None) -> None:
        self.status, self.raw, self.headers = status, raw, headers or {}

    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def code(self) -> int:
        return self.json()["base_resp"]["status_code"]


Transport = Callable[[str, str, bytes, dict[str, str]], Reply]


class Upstream:
    """Calls the simulator like a correct client; keyword hooks break one thing at a time."""

    def __init__(self, transport: Transport, account: dict[str, Any],
                 clock: Callable[[], float] = time.time) -> None:
        self.transport, self.account, self.clock = transport, account, clock
        self.device_uuid = str(uuid.uuid4())

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
             raw_body: bytes | None = None,
             params: Callable[[list[list[str]]], list[list[str]]] | None = None,
             query_text: Callable[[str], str] | None = None,
             headers: Callable[[dict[str, str]], dict[str, str]] | None = None,
             salt: str | None = None, ts_shift: float = 0, unix_ms: str | None = None,
             yy: Callable[[str, str, bytes, str], str] | None = None,
             sign_as: bytes | None = None) -> Reply:
        """sign_as: the bytes the signatures cover when they are not the body (multipart)."""
        now = self.clock()
        unix = unix_ms if unix_ms is not None else str(int(now * 1000))
        stamp = str(int(now + ts_shift))
        pairs = standard_params(self.account, unix, self.device_uuid)
        pairs = params(pairs) if params else pairs
        query = "&".join(f"{k}={js_encode(v)}" for k, v in pairs)
        query = query_text(query) if query_text else query
        raw = raw_body if raw_body is not None else (b"" if body is None else compact(body))
        covered = raw if sign_as is None else sign_as
        signed = {
            "token": self.account["jwt"], "x-timestamp": stamp,
            "x-signature": md5(stamp.encode() + (salt or SALT).encode() + covered),
            "yy": (yy or yy_of)(path, query, covered, unix),
            "Content-Type": "application/json", "Origin": "https://agent.minimaxi.com",
            "Referer": "https://agent.minimaxi.com/", "User-Agent": "Mozilla/5.0 Chrome/130",
        }
        signed = headers(signed) if headers else signed
        return self.transport(method, f"{path}?{query}", raw, signed)

    def send(self, text: str = "hello", **fields: Any) -> Reply:
        body = {"msg_type": 1, "text": text, "chat_type": 1, "attachments": [],
                "selected_mcp_tools": [], "backend_config": {}, "sub_agent_ids": [],
                "model_option": {"display_name": "MiniMax-M2", "model_type": 0}}
        body.update(fields)
        return self.call("POST", SEND, body)

    def detail(self, chat_id: Any) -> Reply:
        return self.call("POST", DETAIL, {"chat_id": chat_id})


def flask_transport(app: Flask) -> Transport:
    client = app.test_client()

    def send(method: str, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        response = client.open(url, method=method, data=body, headers=headers)
        return Reply(response.status_code, response.get_data(), dict(response.headers))

    return send


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def app(clock: FakeClock) -> Flask:
    return create_simulator_app(SimSettings(seed=7, clock=clock))


@pytest.fixture()
def control(app: Flask) -> Any:
    return app.test_client()


def add_accounts(control: Any, count: int = 1, **opts: Any) -> list[dict[str, Any]]:
    response = control.post("/_sim/accounts", json={"count": count, **opts})
    assert response.status_code == 200, response.get_data()
    return response.get_json()["accounts"]


@pytest.fixture()
def account(control: Any) -> dict[str, Any]:
    return add_accounts(control)[0]


@pytest.fixture()
def up(app: Flask, account: dict[str, Any], clock: FakeClock) -> Upstream:
    return Upstream(flask_transport(app), account, clock)


def stats(control: Any) -> dict[str, Any]:
    return control.get("/_sim/stats").get_json()


def sim_log(control: Any) -> list[dict[str, Any]]:
    return control.get("/_sim/log").get_json()


def script(control: Any, answers: list[dict[str, Any]], account: str | None = None) -> None:
    body: dict[str, Any] = {"answers": answers}
    if account:
        body["account"] = account
    response = control.post("/_sim/script", json=body)
    assert response.status_code == 200, response.get_data()


def answer_of(detail: dict[str, Any]) -> dict[str, Any] | None:
    """The gateway's rule: the last assistant message without tool_call."""
    candidates = [m for m in detail["messages"] if m["msg_type"] == 2 and "tool_call" not in m]
    return candidates[-1] if candidates else None


def answer_message(reply: Reply) -> dict[str, Any] | None:
    return answer_of(reply.json())


# --- Accounts and credentials ------------------------------------------------------------------

def test_account_ids_are_big_digit_strings_and_jwt_payload_matches(account: dict[str, Any]) -> None:
    assert re.fullmatch(r"\d{18,19}", account["real_user_id"])
    assert int(account["real_user_id"]) > 2**53
    assert account["credential"] == f"{account['real_user_id']}+{account['jwt']}"
    payload_part = account["jwt"].split(".")[1]
    payload = json.loads(base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4)))
    assert payload["user"]["id"] == account["real_user_id"]
    assert payload["user"]["deviceID"] == account["device_id"]
    assert payload["exp"] > time.time()


def test_user_info_and_device_register(up: Upstream, control: Any) -> None:
    info = up.call("GET", USER_INFO)
    assert info.status == 200
    assert info.json()["statusInfo"] == {"code": 0, "message": "success"}
    assert info.json()["data"]["userInfo"]["realUserID"] == up.account["real_user_id"]
    first = up.call("POST", REGISTER, {"uuid": up.device_uuid}).json()["data"]
    again = up.call("POST", REGISTER, {"uuid": up.device_uuid}).json()["data"]
    assert first["realUserID"] == up.account["real_user_id"]
    assert re.fullmatch(r"\d+", first["deviceIDStr"]) and first == again
    assert stats(control)["device_registrations"] == 2


def test_device_id_warnings(up: Upstream, control: Any) -> None:
    up.account = dict(up.account, device_id="12345678")  # random digits: fine before registering
    assert up.call("GET", USER_INFO).status == 200
    registered = up.call("POST", REGISTER, {"uuid": up.device_uuid}).json()["data"]["deviceIDStr"]
    assert up.call("GET", USER_INFO).status == 200  # stale id after registering: counted
    up.account = dict(up.account, device_id=registered)
    assert up.call("GET", USER_INFO).status == 200
    assert up.call("POST", REGISTER, {"uuid": str(uuid.uuid4())}).status == 200
    assert stats(control)["warnings"] == {"unregistered_device_id": 1,
                                          "register_uuid_differs_from_query": 1}


def test_membership_reports_credits(up: Upstream) -> None:
    reply = up.call("POST", MEMBERSHIP, {}).json()
    assert reply["base_resp"]["status_code"] == 0
    assert reply["plan_name"] == "Free" and reply["total_remains_credit"] == 1000


# --- Signature, parameters and identity are checked strictly -------------------------------------

def assert_rejected(reply: Reply, control: Any, reason: str, status: int) -> None:
    assert reply.status == status, reply.raw
    if status == 401:
        assert reply.raw == b""
    assert stats(control)["rejections"].get(reason) == 1, stats(control)["rejections"]


def test_bad_x_signature(up: Upstream, control: Any) -> None:
    reply = up.call("GET", USER_INFO, headers=lambda h: {**h, "x-signature": md5("nope")})
    assert_rejected(reply, control, "bad_signature", 400)
    assert reply.json() == INVALID_SIGNATURE


def test_signature_over_different_bytes_than_sent(up: Upstream, control: Any) -> None:
    # A client that signs a re-serialisation (spaces) but sends compact JSON.
    sent = compact({"chat_id": 1})
    signed = json.dumps({"chat_id": 1}).encode()
    stamp = str(int(up.clock()))
    reply = up.call("POST", DETAIL, raw_body=sent, headers=lambda h: {
        **h, "x-signature": md5(stamp.encode() + SALT.encode() + signed)})
    assert_rejected(reply, control, "bad_signature", 400)


def test_non_ascii_signature_header_is_rejected_not_crashing(up: Upstream, control: Any) -> None:
    reply = up.call("GET", USER_INFO, headers=lambda h: {**h, "yy": "é" * 32})
    assert_rejected(reply, control, "bad_yy", 400)


def test_bad_yy(up: Upstream, control: Any) -> None:
    reply = up.call("GET", USER_INFO, headers=lambda h: {**h, "yy": md5("x")})
    assert_rejected(reply, control, "bad_yy", 400)
    assert reply.json() == INVALID_SIGNATURE


@pytest.mark.parametrize("variant", ["other_unix", "not_uri_encoded", "decoded_query", "no_path"])
def test_yy_variants_are_rejected(up: Upstream, control: Any, variant: str) -> None:
    def wrong(path: str, query: str, body: bytes, unix_ms: str) -> str:
        if variant == "other_unix":
            return yy_of(path, query, body, str(int(unix_ms) - 1))
        if variant == "not_uri_encoded":
            return md5(f"{path}?{query}".encode() + b"_" + body + (md5(unix_ms) + "ooui").encode())
        if variant == "decoded_query":
            return yy_of(path, query.replace("%20", " "), body, unix_ms)
        return yy_of("", query, body, unix_ms)

    def pairs(params: list[list[str]]) -> list[list[str]]:
        return [[k, "Mac OS" if k == "os_name" else v] for k, v in params]

    assert up.call("GET", USER_INFO, params=pairs).status == 200
    reply = up.call("GET", USER_INFO, params=pairs, yy=wrong)
    assert_rejected(reply, control, "bad_yy", 400)


def test_signature_modes(up: Upstream, control: Any) -> None:
    jwt = up.account["jwt"]
    assert up.call("GET", USER_INFO, salt=jwt).status == 400
    assert control.post("/_sim/config", json={"signature_mode": "jwt"}).status_code == 200
    assert up.call("GET", USER_INFO, salt=jwt).status == 200
    assert up.call("GET", USER_INFO).status == 400
    control.post("/_sim/config", json={"signature_mode": "either"})
    assert up.call("GET", USER_INFO, salt=jwt).status == 200
    assert up.call("GET", USER_INFO).status == 200
    assert control.post("/_sim/config", json={"signature_mode": "md5"}).status_code == 400


def test_wrong_param_order_is_invalid_signature(up: Upstream, control: Any) -> None:
    def swap(pairs: list[list[str]]) -> list[list[str]]:
        pairs[0], pairs[1] = pairs[1], pairs[0]
        return pairs

    reply = up.call("GET", USER_INFO, params=swap)
    assert_rejected(reply, control, "param_order", 400)
    assert reply.json() == INVALID_SIGNATURE


def test_extra_param_is_rejected_as_order(up: Upstream, control: Any) -> None:
    reply = up.call("GET", USER_INFO, params=lambda p: p + [["extra", "1"]])
    assert_rejected(reply, control, "param_order", 400)


def test_missing_param_is_401(up: Upstream, control: Any) -> None:
    reply = up.call("GET", USER_INFO, params=lambda p: [x for x in p if x[0] != "region"])
    assert_rejected(reply, control, "missing_param", 401)


def test_empty_param_counts_as_missing(up: Upstream, control: Any) -> None:
    reply = up.call("GET", USER_INFO,
                    params=lambda p: [[k, "" if k == "lang" else v] for k, v in p])
    assert_rejected(reply, control, "missing_param", 401)


@pytest.mark.parametrize("header", ["token", "x-timestamp", "x-signature", "yy"])
def test_missing_header_is_401(up: Upstream, control: Any, header: str) -> None:
    reply = up.call("GET", USER_INFO,
                    headers=lambda h: {k: v for k, v in h.items() if k != header})
    assert_rejected(reply, control, "missing_header", 401)


def test_token_header_must_match_query(up: Upstream, control: Any) -> None:
    other = add_accounts(control)[0]
    reply = up.call("GET", USER_INFO, headers=lambda h: {**h, "token": other["jwt"]})
    assert_rejected(reply, control, "token_mismatch", 401)


def test_plus_for_space_is_not_encode_uri_component(up: Upstream, control: Any) -> None:
    def mac_os(pairs: list[list[str]]) -> list[list[str]]:
        return [[k, "Mac OS" if k == "os_name" else v] for k, v in pairs]

    assert up.call("GET", USER_INFO, params=mac_os).status == 200  # %20: fine
    reply = up.call("GET", USER_INFO, params=mac_os,
                    query_text=lambda q: q.replace("Mac%20OS", "Mac+OS"))
    assert_rejected(reply, control, "param_encoding", 400)


def test_fixed_param_value_checked(up: Upstream, control: Any) -> None:
    reply = up.call("GET", USER_INFO, params=lambda p: [[k, "4" if k == "biz_id" else v] for k, v in p])
    assert_rejected(reply, control, "param_value", 400)
    assert reply.json()["base_resp"]["status_code"] == INVALID_PARAMS


def test_uuid_must_be_uuid4(up: Upstream, control: Any) -> None:
    up.device_uuid = "not-a-uuid"
    assert_rejected(up.call("GET", USER_INFO), control, "param_value", 400)


def test_timestamp_skew(up: Upstream, control: Any) -> None:
    assert up.call("GET", USER_INFO, ts_shift=-290).status == 200
    reply = up.call("GET", USER_INFO, ts_shift=-400)
    assert_rejected(reply, control, "timestamp_skew", 400)


def test_unix_in_seconds_is_rejected(up: Upstream, control: Any) -> None:
    reply = up.call("GET", USER_INFO, unix_ms=str(int(up.clock())))
    assert_rejected(reply, control, "unix_skew", 400)


def test_expired_jwt(app: Flask, control: Any, clock: FakeClock) -> None:
    stale = add_accounts(control, exp_seconds=-10)[0]
    reply = Upstream(flask_transport(app), stale, clock).call("GET", USER_INFO)
    assert_rejected(reply, control, "expired_token", 401)


def test_jwt_expires_with_time(app: Flask, control: Any, clock: FakeClock) -> None:
    short = add_accounts(control, exp_seconds=60)[0]
    up = Upstream(flask_transport(app), short, clock)
    assert up.call("GET", USER_INFO).status == 200
    clock.advance(61)
    assert up.call("GET", USER_INFO).status == 401


def test_expired_flag_and_patch(up: Upstream, control: Any) -> None:
    control.patch(f"/_sim/accounts/{up.account['real_user_id']}", json={"expired": True})
    assert_rejected(up.call("GET", USER_INFO), control, "expired_token", 401)
    control.patch(f"/_sim/accounts/{up.account['real_user_id']}", json={"expired": False})
    assert up.call("GET", USER_INFO).status == 200


def test_forged_and_foreign_tokens(app: Flask, control: Any, account: dict[str, Any],
                                   clock: FakeClock) -> None:
    head, payload, sig = account["jwt"].split(".")
    forged = dict(account, jwt=f"{head}.{payload}x.{sig}")
    assert Upstream(flask_transport(app), forged, clock).call("GET", USER_INFO).status == 401
    other_sim = create_simulator_app(SimSettings(seed=7, clock=clock))
    foreign = add_accounts(other_sim.test_client())[0]
    assert Upstream(flask_transport(app), foreign, clock).call("GET", USER_INFO).status == 401
    rejections = stats(control)["rejections"]
    assert rejections["bad_token_signature"] == 2


def test_dropped_account_token_is_unknown(up: Upstream, control: Any) -> None:
    control.post("/_sim/reset", json={"drop_accounts": True})
    assert_rejected(up.call("GET", USER_INFO), control, "unknown_token", 401)


def test_wrong_user_id(app: Flask, control: Any, clock: FakeClock) -> None:
    differs = add_accounts(control, jwt_user_id_differs=True)[0]
    assert differs["jwt_user_id"] != differs["real_user_id"]
    # A gateway that wrongly takes realUserID from the JWT's user.id:
    wrong = dict(differs, real_user_id=differs["jwt_user_id"])
    reply = Upstream(flask_transport(app), wrong, clock).call("GET", USER_INFO)
    assert_rejected(reply, control, "wrong_user_id", 401)
    assert Upstream(flask_transport(app), differs, clock).call("GET", USER_INFO).status == 200


def test_unknown_path_is_counted(control: Any, up: Upstream) -> None:
    reply = up.call("POST", "/matrix/api/v1/chat/nope", {})
    assert reply.status == 404
    assert stats(control)["rejections"] == {"unknown_endpoint": 1}


def test_warnings_for_non_compact_body_and_missing_browser_headers(up: Upstream, control: Any) -> None:
    raw = json.dumps({"uuid": up.device_uuid}).encode()  # ", " and ": " separators
    assert up.call("POST", REGISTER, raw_body=raw,
                   headers=lambda h: {k: v for k, v in h.items() if k != "Origin"}).status == 200
    warnings = stats(control)["warnings"]
    assert warnings == {"body_not_compact_json": 1, "missing_origin": 1}


# --- Bodies ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    {"chat_id": "123"}, {"chat_id": None}, {"chat_id": 1.0}, {"msg_type": 2},
    {"msg_type": True}, {"text": None}, {"chat_type": 2},
    {"attachments": [{"file_type": 3, "file_id": "f", "file_name": "a.txt"}]},
    {"attachments": [{"file_type": 6, "file_id": 5, "file_name": "a.txt"}]},
    {"attachments": "none"}, {"model_option": {"display_name": 3}},
    {"backend_config": {"web_search": "yes"}}, {"text": ""},
])
def test_malformed_send_msg_body(up: Upstream, control: Any, fields: dict[str, Any]) -> None:
    reply = up.send(**fields)
    assert reply.status == 400
    assert reply.json()["base_resp"]["status_code"] == INVALID_PARAMS
    assert stats(control)["rejections"] == {"malformed_body": 1}
    assert stats(control)["sends"] == 0


def test_body_not_json(up: Upstream, control: Any) -> None:
    reply = up.call("POST", DETAIL, raw_body=b"chat_id=1")
    assert reply.status == 400 and stats(control)["rejections"] == {"malformed_body": 1}


def test_get_with_body_is_malformed(up: Upstream) -> None:
    assert up.call("GET", USER_INFO, raw_body=b"{}").status == 400


# --- Chats -------------------------------------------------------------------------------------------

def test_unknown_and_foreign_chat_ids(app: Flask, up: Upstream, control: Any,
                                      clock: FakeClock) -> None:
    assert up.detail(123456789012345).json()["base_resp"] == {
        "status_code": CHAT_NOT_FOUND, "status_msg": "chat not found"}
    other = Upstream(flask_transport(app), add_accounts(control)[0], clock)
    foreign_chat = other.send("mine").json()["chat_id"]
    for reply in (up.detail(foreign_chat), up.call("POST", STOP, {"chat_id": foreign_chat}),
                  up.call("POST", DELETE, {"chat_id": foreign_chat}),
                  up.send("continue", chat_id=foreign_chat)):
        assert reply.status == 200 and reply.code == CHAT_NOT_FOUND
    assert stats(control)["rejections"]["chat_not_found"] == 5


def test_second_generation_on_account_is_refused(up: Upstream, control: Any,
                                                 clock: FakeClock) -> None:
    first = up.send("one")
    assert first.code == 0 and re.fullmatch(r"\d{15}", str(first.json()["chat_id"]))
    second = up.send("two")
    assert second.json()["base_resp"] == {"status_code": CHAT_RUNNING, "status_msg": "chat is running"}
    assert stats(control)["double_generation_attempts"] == 1
    assert stats(control)["chats_generating"] == 1
    clock.advance(60)
    assert up.send("three").code == 0
    assert stats(control)["sends"] == 2


def test_busy_account(up: Upstream, control: Any) -> None:
    add = add_accounts(control, busy=True)[0]
    assert add["busy"] is True
    control.patch(f"/_sim/accounts/{up.account['real_user_id']}", json={"busy": True})
    assert up.send().code == CHAT_RUNNING
    current = stats(control)
    assert current["busy_rejections"] == 1 and current["double_generation_attempts"] == 0


def test_credits_and_quota(up: Upstream, control: Any, clock: FakeClock) -> None:
    user = up.account["real_user_id"]
    control.patch(f"/_sim/accounts/{user}", json={"credits": 1})
    assert up.send().code == 0
    clock.advance(60)
    assert up.call("POST", MEMBERSHIP, {}).json()["total_remains_credit"] == 0
    assert up.send().json()["base_resp"] == {"status_code": NO_CREDITS,
                                             "status_msg": "not enough credits"}
    control.patch(f"/_sim/accounts/{user}", json={"credits": 5, "quota_exhausted": True})
    assert up.send().code == QUOTA
    assert stats(control)["rejections"] == {"no_credits": 1, "quota_exhausted": 1}


def test_default_answer_echoes_prompt_with_non_ascii(up: Upstream, control: Any,
                                                     clock: FakeClock) -> None:
    prompt = "system stuff\n\nPlease summarise the quarterly numbers for the café"
    chat_id = up.send(prompt).json()["chat_id"]
    clock.advance(10)
    text = answer_message(up.detail(chat_id))["msg_content"]
    assert prompt.splitlines()[-1][-60:] in text and "中文" in text and "—" in text
    script(control, [{"length": 500}])
    clock.advance(1)
    chat_two = up.send("pad me").json()["chat_id"]
    clock.advance(10)
    padded = answer_message(up.detail(chat_two))["msg_content"]
    assert len(padded) == 500 and padded.startswith("Simulated answer to: pad me")


def test_timeline_thinking_tools_text_pauses(up: Upstream, control: Any, clock: FakeClock) -> None:
    search = json.dumps([{"title": "T", "url": "https://e.x", "snippet": "s"}])
    script(control, [{"text": "A" * 100, "thinking": "t" * 50, "cps": 100, "thinking_cps": 50,
                      "first_delay": 0.5, "tool_steps": [{"name": "web_search",
                                                          "content": search, "seconds": 1}],
                      "pauses": [{"at": 40, "seconds": 2}]}])
    t0 = clock.now
    chat_id = up.send("q", backend_config={"web_search": True}).json()["chat_id"]

    def at(offset: float) -> Reply:
        clock.now = t0 + offset
        return up.detail(chat_id)

    early = at(0.4)
    assert [m["msg_type"] for m in early.json()["messages"]] == [1]
    assert early.json()["chat"]["chat_status"] == 1
    thinking = at(1.0)  # 0.5 s into thinking at 50 cps
    assert answer_message(thinking)["extra_info"]["thinking_content"] == "t" * 25
    assert answer_message(thinking)["msg_content"] == ""
    tool = at(1.7)  # thinking done at 1.5; tool runs 1.5..2.5
    tool_msgs = [m for m in tool.json()["messages"] if "tool_call" in m]
    assert tool_msgs[0]["tool_call"] == {"tool_call_name": "web_search"}
    assert tool_msgs[0]["msg_content"] == ""
    assert at(2.6).json()["messages"][2]["msg_content"] == search
    assert answer_message(at(2.8))["msg_content"] == "A" * 30
    assert answer_message(at(3.4))["msg_content"] == "A" * 40  # paused 2.9..4.9
    assert answer_message(at(4.8))["msg_content"] == "A" * 40
    assert answer_message(at(4.95))["msg_content"] == "A" * 45
    assert answer_message(at(5.4))["msg_content"] == "A" * 90
    assert at(5.45).json()["chat"]["chat_status"] == 1
    done = at(5.51)  # finish at 2.5 + 1.0 text + 2.0 pause
    assert done.json()["chat"]["chat_status"] == 2
    assert answer_message(done)["msg_content"] == "A" * 100
    messages = done.json()["messages"]
    assert [m["msg_type"] for m in messages] == [1, 2, 2]
    assert [m["timestamp"] for m in messages] == sorted(m["timestamp"] for m in messages)
    entry = sim_log(control)[0]
    assert entry["web_search"] is True and entry["polls"] == 11 and len(entry["poll_times"]) == 11
    assert entry["t_first_content"] == pytest.approx(t0 + 0.5 + 1 / 50)
    assert entry["t_finish"] == pytest.approx(t0 + 5.5)
    assert entry["delivered"] == "A" * 100 and entry["status"] == "finished"


def test_stop_freezes_and_delete_rules(up: Upstream, control: Any, clock: FakeClock) -> None:
    script(control, [{"text": "B" * 1000, "cps": 100, "first_delay": 0}])
    t0 = clock.now
    chat_id = up.send("long").json()["chat_id"]
    clock.now = t0 + 1
    assert up.call("POST", DELETE, {"chat_id": chat_id}).code == CHAT_RUNNING
    assert up.call("POST", STOP, {"chat_id": chat_id}).code == 0
    clock.now = t0 + 5
    frozen = up.detail(chat_id)
    assert frozen.json()["chat"]["chat_status"] == 2
    assert answer_message(frozen)["msg_content"] == "B" * 100
    assert up.call("POST", DELETE, {"chat_id": chat_id}).code == 0
    assert up.detail(chat_id).code == CHAT_NOT_FOUND
    entry = sim_log(control)[0]
    assert entry["stopped"] and entry["deleted"] and entry["delivered"] == "B" * 100
    assert entry["t_finish"] == pytest.approx(t0 + 1)
    current = stats(control)
    assert current["chats_alive"] == 0 and current["rejections"]["delete_running"] == 1


def test_continue_chat_keeps_history(up: Upstream, control: Any, clock: FakeClock) -> None:
    script(control, [{"text": "first answer"}, {"text": "second answer"}])
    chat_id = up.send("first question").json()["chat_id"]
    clock.advance(5)
    assert up.send("second question", chat_id=chat_id).json()["chat_id"] == chat_id
    clock.advance(5)
    contents = [m["msg_content"] for m in up.detail(chat_id).json()["messages"]]
    assert contents == ["first question", "first answer", "second question", "second answer"]
    assert [entry["turn"] for entry in sim_log(control)] == [1, 2]


def test_list_chat_pagination(up: Upstream, clock: FakeClock) -> None:
    ids = []
    for index in range(3):
        ids.append(up.send(f"chat {index}").json()["chat_id"])
        clock.advance(5)
    page = up.call("POST", LIST, {"page_size": 2}).json()
    assert [c["chat_id"] for c in page["chats"]] == sorted(ids, reverse=True)[:2]
    assert page["has_more"] is True
    rest = up.call("POST", LIST, {"page_size": 2,
                                  "next_page_index_id": page["chats"][-1]["chat_id"]}).json()
    assert [c["chat_id"] for c in rest["chats"]] == [min(ids)] and rest["has_more"] is False


def test_scripts_per_account_before_global(app: Flask, up: Upstream, control: Any,
                                           clock: FakeClock) -> None:
    script(control, [{"text": "global"}])
    script(control, [{"text": "mine"}], account=up.account["real_user_id"])
    up.send()
    clock.advance(5)
    up.send()
    assert [entry["answer"] for entry in sim_log(control)] == ["mine", "global"]


# --- Faults ----------------------------------------------------------------------------------------

def test_http_5xx_faults_then_normal(up: Upstream, control: Any) -> None:
    control.post("/_sim/faults", json={"endpoint": "user_info", "kind": "http_502", "count": 2})
    for _ in range(2):
        reply = up.call("GET", USER_INFO)
        assert reply.status == 502 and b"<html>" in reply.raw
    assert up.call("GET", USER_INFO).status == 200
    assert stats(control)["faults_applied"] == {"user_info:http_502": 2}


def test_semantic_faults(up: Upstream, control: Any) -> None:
    for kind in ("no_credits", "quota", "busy", "expired"):
        control.post("/_sim/faults", json={"endpoint": "send_msg", "kind": kind})
    assert up.send().code == NO_CREDITS
    assert up.send().code == QUOTA
    assert up.send().code == CHAT_RUNNING
    assert up.send().status == 401
    assert up.send().code == 0
    assert stats(control)["rejections"] == {}


def test_fault_applies_only_to_valid_calls(up: Upstream, control: Any) -> None:
    control.post("/_sim/faults", json={"endpoint": "*", "kind": "http_500"})
    assert up.call("GET", USER_INFO, headers=lambda h: {**h, "yy": "bad"}).status == 400
    assert up.call("POST", MEMBERSHIP, {}).status == 500


def test_hang_fault(up: Upstream, control: Any) -> None:
    control.post("/_sim/faults", json={"endpoint": "membership", "kind": "hang", "seconds": 0.3})
    started = time.monotonic()
    assert up.call("POST", MEMBERSHIP, {}).status == 200
    assert time.monotonic() - started >= 0.3


def test_drop_fault_in_process(up: Upstream, control: Any) -> None:
    control.post("/_sim/faults", json={"endpoint": "send_msg", "kind": "drop"})
    with pytest.raises(ConnectionResetError):
        up.send()
    assert stats(control)["sends"] == 0


def test_drop_after_fault_leaves_generation_running(up: Upstream, control: Any) -> None:
    control.post("/_sim/faults", json={"endpoint": "send_msg", "kind": "drop_after"})
    with pytest.raises(ConnectionResetError):
        up.send()
    assert up.send().code == CHAT_RUNNING


def test_generation_faults_mid_answer(up: Upstream, control: Any, clock: FakeClock) -> None:
    script(control, [{"text": "C" * 100, "cps": 100, "first_delay": 0, "fault": "drop_mid"},
                     {"text": "D" * 100, "cps": 100, "first_delay": 0, "fault": "hang_mid",
                      "seconds": 0.2}])
    chat_id = up.send().json()["chat_id"]
    assert up.detail(chat_id).status == 200  # no text visible yet: the fault waits
    clock.advance(0.5)
    with pytest.raises(ConnectionResetError):
        up.detail(chat_id)
    assert answer_message(up.detail(chat_id))["msg_content"] == "C" * 50
    clock.advance(5)
    chat_two = up.send().json()["chat_id"]
    clock.advance(0.5)
    started = time.monotonic()
    assert up.detail(chat_two).status == 200
    assert time.monotonic() - started >= 0.2
    assert stats(control)["faults_applied"] == {"get_chat_detail:drop_mid": 1,
                                                "get_chat_detail:hang_mid": 1}


# --- Control API -------------------------------------------------------------------------------------

def test_control_validation(control: Any) -> None:
    assert control.post("/_sim/script", json={"answers": [{"txt": "typo"}]}).status_code == 400
    assert control.post("/_sim/script", json={"answers": [{"cps": 0}]}).status_code == 400
    assert control.post("/_sim/faults", json={"endpoint": "send_msg", "kind": "boom"}).status_code == 400
    assert control.post("/_sim/faults", json={"endpoint": "nope", "kind": "drop"}).status_code == 400
    assert control.post("/_sim/accounts", json={"count": 0}).status_code == 400
    assert control.patch("/_sim/accounts/1", json={"busy": True}).status_code == 404
    assert control.post("/_sim/script", json={"answers": [], "account": "1"}).status_code == 404


def test_reset_keeps_accounts_and_restores_flags(up: Upstream, control: Any) -> None:
    user = up.account["real_user_id"]
    control.patch(f"/_sim/accounts/{user}", json={"credits": 0, "busy": True})
    assert up.send().code == CHAT_RUNNING
    control.post("/_sim/config", json={"signature_mode": "jwt"})
    control.post("/_sim/reset", json={})
    assert stats(control)["rejections"] == {} and stats(control)["config"]["signature_mode"] == "bundle"
    assert up.send().code == 0


def test_default_answer_setting(up: Upstream, control: Any, clock: FakeClock) -> None:
    assert control.post("/_sim/default", json={"answer": {"text": "fixed"}}).status_code == 200
    chat_id = up.send().json()["chat_id"]
    clock.advance(5)
    assert answer_message(up.detail(chat_id))["msg_content"] == "fixed"


# --- Files: request_policy, OSS PUT (header signing V1), policy_callback -----------------------------

def oss_authorization(key_id: str, secret: str, headers: dict[str, str], resource: str) -> str:
    """OSS signature V1, written from the OSS documentation."""
    oss = sorted((k.lower(), v.strip()) for k, v in headers.items() if k.lower().startswith("x-oss-"))
    text = "\n".join(["PUT", headers.get("Content-MD5", ""), headers.get("Content-Type", ""),
                      headers["Date"], ""])
    text += "".join(f"{k}:{v}\n" for k, v in oss) + resource
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return f"OSS {key_id}:{base64.b64encode(digest).decode()}"


PutTransport = Callable[[str, bytes, dict[str, str]], Reply]


def flask_put(app: Flask) -> PutTransport:
    client = app.test_client()

    def put(url: str, body: bytes, headers: dict[str, str]) -> Reply:
        parts = urlsplit(url)
        response = client.put(parts.path, query_string=parts.query, data=body, headers=headers)
        return Reply(response.status_code, response.get_data(), dict(response.headers))

    return put


def oss_code(reply: Reply) -> str:
    match = re.search(rb"<Code>(\w+)</Code>", reply.raw)
    assert match, reply.raw
    return match.group(1).decode()


class Uploader:
    """request_policy, OSS PUT, policy_callback like a correct client; hooks break one step."""

    def __init__(self, up: Upstream, put: PutTransport) -> None:
        self.up, self.transport = up, put

    def policy(self) -> dict[str, str]:
        reply = self.up.call("GET", POLICY)
        assert reply.status == 200 and reply.json()["statusInfo"]["code"] == 0, reply.raw
        return reply.json()["data"]

    def put(self, policy: dict[str, str], data: bytes, *, ext: str = "png",
            mime: str = "image/png", name: str | None = None, key: str | None = None,
            bucket: str | None = None, date: str | None = None, secret: str | None = None,
            headers: Callable[[dict[str, str]], dict[str, str]] | None = None,
            signed: Callable[[dict[str, str]], dict[str, str]] | None = None) -> Reply:
        """headers: changes after signing; signed: changes before signing."""
        key = key or f"{policy['dir']}/{name or f'{uuid.uuid4()}.{ext}'}"
        bucket = bucket or policy["bucketName"]
        sent = {"Content-Type": mime,
                "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode(),
                "Date": date or formatdate(self.up.clock(), usegmt=True),
                "x-oss-security-token": policy["securityToken"]}
        sent = signed(sent) if signed else sent
        sent["Authorization"] = oss_authorization(
            policy["accessKeyId"], secret or policy["accessKeySecret"], sent, f"/{bucket}/{key}")
        sent = headers(sent) if headers else sent
        return self.transport(f"{policy['endpoint']}/{bucket}/{key}", data, sent)

    def callback(self, policy: dict[str, str], name: str, data: bytes, *,
                 mime: str = "image/png", **changes: Any) -> Reply:
        body = {"fileName": name, "originFileName": f"original.{name.rsplit('.', 1)[-1]}",
                "dir": policy["dir"], "endpoint": policy["endpoint"],
                "bucketName": policy["bucketName"], "size": str(len(data)), "mimeType": mime}
        return self.up.call("POST", CALLBACK, {**body, **changes})

    def upload(self, data: bytes, ext: str = "png", mime: str = "image/png") -> str:
        policy, name = self.policy(), f"{uuid.uuid4()}.{ext}"
        assert self.put(policy, data, name=name, mime=mime).status == 200
        reply = self.callback(policy, name, data, mime=mime)
        assert reply.json()["statusInfo"]["code"] == 0, reply.raw
        return reply.json()["data"]["fileID"]


@pytest.fixture()
def uploader(app: Flask, up: Upstream) -> Uploader:
    return Uploader(up, flask_put(app))


def attach(file_id: str, file_type: int = 2, name: str = "a.png") -> dict[str, Any]:
    return {"file_type": file_type, "file_id": file_id, "file_name": name}


def test_upload_flow_and_image_attachment(up: Upstream, uploader: Uploader, control: Any,
                                          clock: FakeClock) -> None:
    policy = uploader.policy()
    assert set(policy) == {"accessKeyId", "accessKeySecret", "securityToken", "bucketName",
                           "dir", "endpoint"}
    assert policy["endpoint"] == "http://localhost/_oss"
    day = time.strftime("%Y%m%d", time.gmtime(clock.now))
    assert policy["dir"] == f"matrix/{day}/{up.account['real_user_id']}"
    again = uploader.policy()
    assert again["accessKeyId"] != policy["accessKeyId"]
    assert again["securityToken"] != policy["securityToken"]
    name = f"{uuid.uuid4()}.png"
    stored = uploader.put(policy, IMAGES["png"], name=name)
    assert stored.status == 200 and stored.raw == b""
    assert stored.headers["ETag"] == f'"{hashlib.md5(IMAGES["png"]).hexdigest().upper()}"'
    reply = uploader.callback(policy, name, IMAGES["png"])
    file_id = reply.json()["data"]["fileID"]
    assert isinstance(file_id, str) and file_id.isdigit() and int(file_id) > 2**53
    assert uploader.callback(policy, name, IMAGES["png"]).json()["data"]["fileID"] == file_id
    assert up.send("look", attachments=[attach(file_id)]).code == 0
    entry = sim_log(control)[0]
    assert entry["attachments"] == [attach(file_id)]
    assert entry["attachment_details"] == [{
        "file_type": 2, "file_id": file_id, "file_name": "a.png", "size": len(IMAGES["png"]),
        "sha256": hashlib.sha256(IMAGES["png"]).hexdigest(), "mime_type": "image/png",
        "sniffed_image": "image/png", "origin_file_name": "original.png"}]
    current = stats(control)
    assert (current["uploads"], current["upload_bytes"], current["files"],
            current["objects"]) == (1, len(IMAGES["png"]), 1, 1)
    listed = control.get("/_sim/files").get_json()["files"]
    assert listed[0]["key"] == f"{policy['dir']}/{name}" and listed[0]["file_id"] == file_id
    assert listed[0]["account"] == up.account["real_user_id"]
    assert listed[0]["content_type"] == "image/png" and current["rejections"] == {}


def _other_secret(policy: dict[str, str]) -> str:
    return policy["accessKeySecret"][::-1]


@pytest.mark.parametrize("mistake, status, code, reason", [
    ("wrong_secret", 403, "SignatureDoesNotMatch", "oss_bad_signature"),
    ("unsigned_oss_header", 403, "SignatureDoesNotMatch", "oss_bad_signature"),
    ("signed_other_type", 403, "SignatureDoesNotMatch", "oss_bad_signature"),
    ("wrong_token", 403, "InvalidSecurityToken", "oss_bad_token"),
    ("no_token", 403, "InvalidSecurityToken", "oss_bad_token"),
    ("unknown_key_id", 403, "InvalidAccessKeyId", "oss_unknown_key"),
    ("no_authorization", 403, "AccessDenied", "oss_no_authorization"),
    ("expired_credentials", 403, "SecurityTokenExpired", "oss_token_expired"),
    ("stale_date", 403, "RequestTimeTooSkewed", "oss_date_skew"),
    ("iso_date", 403, "AccessDenied", "oss_bad_date"),
    ("outside_dir", 403, "AccessDenied", "oss_key_outside_dir"),
    ("not_uuid_name", 400, "InvalidObjectName", "oss_bad_key"),
    ("other_bucket", 404, "NoSuchBucket", "oss_bad_bucket"),
    ("md5_mismatch", 400, "InvalidDigest", "oss_bad_md5"),
])
def test_oss_put_rejections(uploader: Uploader, control: Any, clock: FakeClock, mistake: str,
                            status: int, code: str, reason: str) -> None:
    policy = uploader.policy()
    data = IMAGES["png"]
    options: dict[str, Any] = {
        "wrong_secret": {"secret": _other_secret(policy)},
        "unsigned_oss_header": {"headers": lambda h: {**h, "x-oss-meta-note": "added"}},
        "signed_other_type": {"headers": lambda h: {**h, "Content-Type": "image/jpeg"}},
        "wrong_token": {"signed": lambda h: {**h, "x-oss-security-token": "CAISnope"}},
        "no_token": {"signed": lambda h: {k: v for k, v in h.items()
                                          if k != "x-oss-security-token"}},
        "unknown_key_id": {"headers": lambda h: {
            **h, "Authorization": h["Authorization"].replace("STS.", "STS.X")}},
        "no_authorization": {"headers": lambda h: {k: v for k, v in h.items()
                                                   if k != "Authorization"}},
        "stale_date": {"date": formatdate(clock.now - 16 * 60, usegmt=True)},
        "iso_date": {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now))},
        "outside_dir": {"key": f"matrix/other/{uuid.uuid4()}.png"},
        "not_uuid_name": {"name": "photo.png"},
        "other_bucket": {"bucket": "someone-else"},
        "md5_mismatch": {"signed": lambda h: {
            **h, "Content-MD5": base64.b64encode(hashlib.md5(b"x").digest()).decode()}},
    }.get(mistake, {})
    if mistake == "expired_credentials":
        clock.advance(15 * 60 + 1)
    reply = uploader.put(policy, data, **options)
    assert reply.status == status, reply.raw
    assert reply.raw.startswith(b"<?xml") and oss_code(reply) == code
    assert stats(control)["rejections"] == {reason: 1}
    assert stats(control)["uploads"] == 0 and control.get("/_sim/files").get_json()["files"] == []


def test_oss_signature_error_shows_string_to_sign(uploader: Uploader) -> None:
    policy = uploader.policy()
    reply = uploader.put(policy, IMAGES["png"], secret=_other_secret(policy))
    assert b"<StringToSign>PUT\n" in reply.raw and b"x-oss-security-token:CAIS" in reply.raw


def test_oss_put_without_content_md5_and_type(uploader: Uploader, control: Any) -> None:
    policy = uploader.policy()
    reply = uploader.put(policy, b"plain bytes", signed=lambda h: {
        k: v for k, v in h.items() if k not in ("Content-MD5", "Content-Type")})
    assert reply.status == 200 and stats(control)["upload_bytes"] == len(b"plain bytes")


def test_oss_put_over_the_size_limit_is_413(clock: FakeClock) -> None:
    small = create_simulator_app(SimSettings(seed=7, clock=clock, max_upload_bytes=16))
    account = add_accounts(small.test_client())[0]
    uploader = Uploader(Upstream(flask_transport(small), account, clock), flask_put(small))
    policy = uploader.policy()
    assert uploader.put(policy, b"x" * 16, ext="txt", mime="text/plain").status == 200
    reply = uploader.put(policy, b"x" * 17, ext="txt", mime="text/plain")
    assert reply.status == 413 and oss_code(reply) == "EntityTooLarge"


def test_oss_credentials_of_one_account_cannot_register_for_another(
        app: Flask, uploader: Uploader, control: Any, clock: FakeClock) -> None:
    policy, name = uploader.policy(), f"{uuid.uuid4()}.png"
    assert uploader.put(policy, IMAGES["png"], name=name).status == 200
    other = Uploader(Upstream(flask_transport(app), add_accounts(control)[0], clock),
                     flask_put(app))
    reply = other.callback(policy, name, IMAGES["png"])
    assert reply.json()["statusInfo"]["code"] == UPLOAD_NOT_FOUND


@pytest.mark.parametrize("changes, code", [
    ({"size": "1"}, UPLOAD_SIZE_MISMATCH),
    ({"fileName": f"{uuid.uuid4()}.png"}, UPLOAD_NOT_FOUND),
    ({"dir": "matrix/19700101/1"}, UPLOAD_NOT_FOUND),
    ({"bucketName": "elsewhere"}, UPLOAD_NOT_FOUND),
    ({"endpoint": "https://oss-cn-hangzhou.aliyuncs.com"}, UPLOAD_NOT_FOUND),
])
def test_policy_callback_rejections(uploader: Uploader, control: Any, changes: dict[str, Any],
                                    code: int) -> None:
    policy, name = uploader.policy(), f"{uuid.uuid4()}.png"
    assert uploader.put(policy, IMAGES["png"], name=name).status == 200
    reply = uploader.callback(policy, name, IMAGES["png"], **changes)
    assert reply.status == 200 and reply.json()["statusInfo"]["code"] == code
    assert reply.json()["data"] is None and stats(control)["files"] == 0


@pytest.mark.parametrize("changes", [{"size": 10}, {"size": ""}, {"mimeType": "png"},
                                     {"originFileName": None}])
def test_policy_callback_malformed(uploader: Uploader, changes: dict[str, Any]) -> None:
    policy, name = uploader.policy(), f"{uuid.uuid4()}.png"
    uploader.put(policy, IMAGES["png"], name=name)
    reply = uploader.callback(policy, name, IMAGES["png"], **changes)
    assert reply.status == 400 and reply.json()["base_resp"]["status_code"] == INVALID_PARAMS


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_image_types_are_sniffed(up: Upstream, uploader: Uploader, control: Any,
                                 kind: str) -> None:
    file_id = uploader.upload(IMAGES[kind], ext=kind, mime=f"image/{kind}")
    assert up.send("see", attachments=[attach(file_id, 2, f"x.{kind}")]).code == 0
    assert sim_log(control)[0]["attachment_details"][0]["sniffed_image"] == IMAGE_MIMES[kind]


def test_attachment_checks(app: Flask, up: Upstream, uploader: Uploader, control: Any,
                           clock: FakeClock) -> None:
    text_id = uploader.upload(b"%PDF-1.4 not an image", ext="pdf", mime="application/pdf")
    png_id = uploader.upload(IMAGES["png"])
    assert up.send("x", attachments=[attach(text_id, 2)]).code == FILE_NOT_IMAGE
    assert up.send("x", attachments=[attach("123456789")]).code == FILE_NOT_FOUND
    other = Uploader(Upstream(flask_transport(app), add_accounts(control)[0], clock),
                     flask_put(app))
    foreign_id = other.upload(IMAGES["gif"], ext="gif", mime="image/gif")
    assert up.send("x", attachments=[attach(foreign_id)]).code == FILE_NOT_FOUND
    current = stats(control)
    assert current["sends"] == 0 and current["rejections"] == {
        "attachment_not_image": 1, "attachment_not_found": 2}
    both = [attach(text_id, 6, "doc.pdf"), attach(png_id, 6, "pic.png")]
    assert up.send("x", attachments=both).code == 0
    assert stats(control)["warnings"] == {"image_sent_as_file": 1}
    logged = sim_log(control)[0]["attachment_details"]
    assert [(a["file_type"], a["mime_type"], a["size"]) for a in logged] == [
        (6, "application/pdf", 21), (6, "image/png", len(IMAGES["png"]))]


# --- The "echo" answer field ------------------------------------------------------------------------

def test_echo_quoted_repeats_the_marked_text_verbatim(up: Upstream, control: Any,
                                                      clock: FakeClock) -> None:
    script(control, [{"echo": "quoted", "cps": 1000}] + [{"echo": "quoted"}] * 3)
    prompts = ["Repeat the text between <<< and >>> exactly.\n<<<  Hello,\n 中文 >>> world >>>",
               "no markers\n here ", "open <<< but never closed", "a <<<b>>> c <<<d>>> e"]
    answers = []
    for prompt in prompts:
        chat_id = up.send(prompt).json()["chat_id"]
        clock.advance(60)
        answers.append(answer_message(up.detail(chat_id))["msg_content"])
    assert answers == ["  Hello,\n 中文 ", "no markers\n here ", "open <<< but never closed", "d"]
    assert control.post("/_sim/default", json={"answer": {"echo": "quoted"}}).status_code == 200
    chat_id = up.send("<<<only>>>").json()["chat_id"]
    clock.advance(60)
    assert answer_message(up.detail(chat_id))["msg_content"] == "only"


@pytest.mark.parametrize("answer", [{"echo": "all"}, {"echo": "quoted", "text": "x"},
                                    {"echo": "quoted", "length": 5}])
def test_echo_validation(control: Any, answer: dict[str, Any]) -> None:
    assert control.post("/_sim/script", json={"answers": [answer]}).status_code == 400


# --- Text to speech -------------------------------------------------------------------------------------

def decode_audio(data: bytes) -> tuple[str, float, int, int]:
    """(container format, seconds decoded, sample rate, channels), decoded with PyAV."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        rate = stream.codec_context.sample_rate
        return container.format.name, samples / rate, rate, stream.codec_context.layout.nb_channels


def finished_answer(up: Upstream, control: Any, clock: FakeClock, text: str) -> int:
    script(control, [{"text": text, "cps": 10_000}], account=up.account["real_user_id"])
    chat_id = up.send("say it").json()["chat_id"]
    clock.advance(60)
    return answer_message(up.detail(chat_id))["msg_id"]


def set_voice(up: Upstream, voice: str) -> Reply:
    return up.call("POST", ROBOT, {"robotID": "1", "config": {"robotVoiceID": voice}})


def tts(up: Upstream, msg_id: Any, voice: str) -> Reply:
    return up.call("GET", TTS, params=lambda p: [["msgID", str(msg_id)], ["timbre", voice]] + p)


def test_tts_flow_serves_real_mp3(app: Flask, up: Upstream, control: Any,
                                  clock: FakeClock) -> None:
    text = "Hello there, 中文 too."
    msg_id = finished_answer(up, control, clock, text)
    assert set_voice(up, "female-shaonv").json() == {
        "statusInfo": {"code": 0, "message": "success"}, "data": {}}
    assert control.get("/_sim/accounts").get_json()["accounts"][0]["robot_voice"] == "female-shaonv"
    first = tts(up, msg_id, "female-shaonv")
    assert first.json() == {"statusInfo": {"code": 0, "message": "success"},
                            "data": {"requestStatus": 1}}
    clock.advance(0.2)
    assert tts(up, msg_id, "female-shaonv").json()["data"] == {"requestStatus": 1}
    clock.advance(0.11)
    done = tts(up, msg_id, "female-shaonv").json()["data"]
    assert done["requestStatus"] == 2 and len(done["result"]) == 1
    assert re.fullmatch(r"http://localhost/_media/[0-9a-f]{32}\.mp3", done["result"][0])
    media = app.test_client().get(urlsplit(done["result"][0]).path)
    assert media.status_code == 200 and media.mimetype == "audio/mpeg"
    fmt, seconds, rate, channels = decode_audio(media.get_data())
    assert (fmt, channels) == ("mp3", 1) and rate in (16000, 22050, 24000, 32000)
    assert seconds == pytest.approx(0.06 * len(text), abs=0.15)
    entry = control.get("/_sim/tts_log").get_json()[0]
    assert (entry["msg_id"], entry["voice"], entry["text"]) == (msg_id, "female-shaonv", text)
    assert entry["duration"] == entry["total_duration"] == pytest.approx(0.06 * len(text))
    assert entry["chat_id"] == sim_log(control)[0]["chat_id"]
    assert entry["calls"] == 3 and entry["delivered"] is True and len(entry["segments"]) == 1


def test_tts_long_text_is_split_into_consecutive_segments(app: Flask, up: Upstream, control: Any,
                                                          clock: FakeClock) -> None:
    text = "".join(f"sentence {i}. " for i in range(40))  # over 400 characters
    msg_id = finished_answer(up, control, clock, text)
    set_voice(up, "male-botong")
    tts(up, msg_id, "male-botong")
    clock.advance(1)
    urls = tts(up, msg_id, "male-botong").json()["data"]["result"]
    assert len(urls) == 3
    parts = [app.test_client().get(urlsplit(url).path).get_data() for url in urls]
    durations = [decode_audio(part)[1] for part in parts]
    assert sum(durations) == pytest.approx(0.06 * len(text), rel=0.05)
    assert decode_audio(b"".join(parts))[1] == pytest.approx(sum(durations), rel=0.01)
    segments = control.get("/_sim/tts_log").get_json()[0]["segments"]
    assert "".join(s["text"] for s in segments) == text


def test_tts_short_text_has_a_minimum_duration(app: Flask, up: Upstream, control: Any,
                                               clock: FakeClock) -> None:
    msg_id = finished_answer(up, control, clock, "Hi")
    set_voice(up, "Podcast_girl")
    tts(up, msg_id, "Podcast_girl")
    clock.advance(1)
    url = tts(up, msg_id, "Podcast_girl").json()["data"]["result"][0]
    assert decode_audio(app.test_client().get(urlsplit(url).path).get_data())[1] >= 0.5


@pytest.mark.parametrize("arrange, status, reason", [
    (lambda m, v: lambda p: p + [["msgID", m], ["timbre", v]], 400, "param_order"),
    (lambda m, v: lambda p: [["timbre", v], ["msgID", m]] + p, 400, "param_order"),
    (lambda m, v: lambda p: [["msgID", m]] + p, 401, "missing_param"),
    (lambda m, v: lambda p: [["msgID", "12x"], ["timbre", v]] + p, 400, "param_value"),
])
def test_tts_query_order_is_enforced(up: Upstream, control: Any, clock: FakeClock,
                                     arrange: Any, status: int, reason: str) -> None:
    msg_id = finished_answer(up, control, clock, "text")
    set_voice(up, "female-shaonv")
    reply = up.call("GET", TTS, params=arrange(str(msg_id), "female-shaonv"))
    assert reply.status == status and stats(control)["rejections"] == {reason: 1}


def test_tts_refusals(app: Flask, up: Upstream, control: Any, clock: FakeClock) -> None:
    msg_id = finished_answer(up, control, clock, "spoken text")
    assert tts(up, msg_id, "female-shaonv").json()["statusInfo"]["code"] == VOICE_MISMATCH
    set_voice(up, "male-botong")
    assert tts(up, msg_id, "female-shaonv").json()["statusInfo"]["code"] == VOICE_MISMATCH
    assert tts(up, msg_id - 1, "male-botong").json()["statusInfo"] == {
        "code": MSG_NOT_FOUND, "message": "message is not an assistant answer"}
    assert tts(up, 999, "male-botong").json()["statusInfo"]["code"] == MSG_NOT_FOUND
    script(control, [{"text": "S" * 500, "cps": 10}])
    running_chat = up.send("slow").json()["chat_id"]
    clock.advance(1)
    running = answer_message(up.detail(running_chat))["msg_id"]
    assert tts(up, running, "male-botong").json()["statusInfo"]["code"] == CHAT_RUNNING
    other = Upstream(flask_transport(app), add_accounts(control)[0], clock)
    set_voice(other, "male-botong")
    assert tts(other, msg_id, "male-botong").json()["statusInfo"]["code"] == MSG_NOT_FOUND
    assert stats(control)["rejections"] == {
        "tts_voice_mismatch": 2, "tts_not_an_answer": 1, "tts_msg_not_found": 2,
        "tts_msg_generating": 1}


def test_tts_of_an_earlier_turn_and_after_delete(up: Upstream, control: Any,
                                                 clock: FakeClock) -> None:
    script(control, [{"text": "turn one"}, {"text": "turn two"}])
    chat_id = up.send("q1").json()["chat_id"]
    clock.advance(60)
    first = answer_message(up.detail(chat_id))["msg_id"]
    up.send("q2", chat_id=chat_id)
    clock.advance(60)
    set_voice(up, "female-shaonv")
    assert tts(up, first, "female-shaonv").json()["data"] == {"requestStatus": 1}
    assert control.get("/_sim/tts_log").get_json()[0]["text"] == "turn one"
    up.call("POST", DELETE, {"chat_id": chat_id})
    assert tts(up, first, "female-shaonv").json()["statusInfo"]["code"] == MSG_NOT_FOUND


@pytest.mark.parametrize("body", [{"robotID": 1, "config": {"robotVoiceID": "x"}},
                                  {"robotID": "1", "config": {}},
                                  {"robotID": "1", "config": {"robotVoiceID": "bad voice"}}])
def test_update_robot_config_validation(up: Upstream, body: dict[str, Any]) -> None:
    reply = up.call("POST", ROBOT, body)
    assert reply.status == 400 and reply.json()["base_resp"]["status_code"] == INVALID_PARAMS


def test_unknown_media_is_404(control: Any) -> None:
    assert control.get(f"/_media/{'0' * 32}.mp3").status_code == 404


# --- Speech recognition -----------------------------------------------------------------------------------

def make_audio(seconds: float, *, amplitude: float = 0.5, rate: int = 16000,
               channels: int = 1, container: str = "mp3", codec: str = "libmp3lame") -> bytes:
    """A 440 Hz tone encoded with PyAV (amplitude 0: digital silence)."""
    count = int(seconds * rate)
    tone = array("h", (int(amplitude * 32767 * math.sin(2 * math.pi * 440 * i / rate))
                       for i in range(count))).tobytes()
    layout = "mono" if channels == 1 else "stereo"
    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=rate)
        stream.layout = layout
        frame = av.AudioFrame(format="s16p", layout=layout, samples=count)
        for plane in frame.planes:
            plane.update(tone + bytes(plane.buffer_size - len(tone)))
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            output.mux(packet)
    return out.getvalue()


def phone_msg(up: Upstream, voice: bytes, *, fields: dict[str, str] | None = None,
              sign_whole_voice: bool = False, sign_body: bool = False,
              content_type: str | None = None) -> Reply:
    values = {"chatID": "0", "characterID": "1", "playSpeedLevel": "1", **(fields or {})}
    form: list[tuple[str, Any]] = [("chatID", values["chatID"]),
                                   ("voiceBytes", ("voice.mp3", voice, "audio/mpeg")),
                                   ("characterID", values["characterID"]),
                                   ("playSpeedLevel", values["playSpeedLevel"])]
    body, multipart_type = encode_multipart_formdata(form)
    digest = (md5(values["characterID"]) + md5(values["chatID"])
              + md5(voice if sign_whole_voice else voice[:1024])).encode()
    return up.call("POST", PHONE, raw_body=body, sign_as=None if sign_body else digest,
                   headers=lambda h: {**h, "Content-Type": content_type or multipart_type})


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    text = raw.decode("utf-8")
    assert text.endswith("\r\n\r\n") and "\n" not in text.replace("\r\n", "")
    events = []
    for block in text.split("\r\n\r\n")[:-1]:
        lines = dict(line.split(": ", 1) for line in block.split("\r\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_phone_msg_transcribes_real_mp3(up: Upstream, control: Any) -> None:
    voice = make_audio(1.5)
    reply = phone_msg(up, voice)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(reply.raw)
    assert events[0] == ("asr_chunk", {"status_code": 0, "data": {
        "text": "simulated transcript of 1.5 seconds"}})
    audio = [data for name, data in events[1:] if name == "audio_chunk"]
    assert len(events) - 1 == len(audio) and 2 <= len(audio) <= 3
    assert all(base64.b64decode(a["data"]["audio"]) for a in audio)
    queued = control.post("/_sim/asr", json={"texts": ["你好，世界", "second"]}).get_json()
    assert queued == {"ok": True, "queued": 2}
    assert sse_events(phone_msg(up, voice).raw)[0][1]["data"]["text"] == "你好，世界"
    stereo = make_audio(0.8, channels=2, rate=32000)
    assert sse_events(phone_msg(up, stereo).raw)[0][1]["data"]["text"] == "second"
    log = control.get("/_sim/asr_log").get_json()
    assert [entry["transcript"] for entry in log] == [
        "simulated transcript of 1.5 seconds", "你好，世界", "second"]
    assert (log[0]["sample_rate"], log[0]["channels"], log[0]["status_code"]) == (16000, 1, 0)
    assert log[0]["duration"] == pytest.approx(1.5, abs=0.1) and 0.2 < log[0]["rms"] < 0.5
    assert (log[2]["sample_rate"], log[2]["channels"]) == (32000, 2)
    assert stats(control)["asr_calls"] == 3 and stats(control)["rejections"] == {}


def test_phone_msg_silence_is_nothing_recognised(up: Upstream, control: Any) -> None:
    control.post("/_sim/asr", json={"texts": ["kept for later"]})
    events = sse_events(phone_msg(up, make_audio(1.0, amplitude=0.0)).raw)
    assert events[0] == ("asr_chunk", {"status_code": 1200041, "data": {"text": ""}})
    entry = control.get("/_sim/asr_log").get_json()[0]
    assert entry["status_code"] == 1200041 and entry["rms"] < 0.001
    assert stats(control)["asr_pending"] == 1


@pytest.mark.parametrize("voice", [
    pytest.param(lambda: make_audio(0.5, container="wav", codec="pcm_s16le"), id="wav"),
    pytest.param(lambda: make_audio(0.5, rate=24000, container="mp2", codec="mp2"), id="mp2"),
    pytest.param(lambda: b"ID3" + bytes(range(256)) * 8, id="junk"),
    pytest.param(lambda: IMAGES["png"], id="png"),
])
def test_phone_msg_rejects_non_mp3(up: Upstream, control: Any, voice: Any) -> None:
    reply = phone_msg(up, voice())
    assert reply.status == 400 and reply.json()["base_resp"]["status_code"] == INVALID_AUDIO
    assert stats(control)["rejections"] == {"asr_not_mp3": 1}
    assert control.get("/_sim/asr_log").get_json()[0]["status_code"] == INVALID_AUDIO


@pytest.mark.parametrize("options, status, reason", [
    ({"sign_body": True}, 400, "bad_signature"),
    ({"sign_whole_voice": True}, 400, "bad_signature"),
    ({"fields": {"chatID": "7"}}, 400, "malformed_body"),
    ({"fields": {"playSpeedLevel": "2"}}, 400, "malformed_body"),
    ({"content_type": "application/json"}, 400, "malformed_body"),
])
def test_phone_msg_signing_and_form(up: Upstream, control: Any, options: dict[str, Any],
                                    status: int, reason: str) -> None:
    reply = phone_msg(up, make_audio(1.2), **options)
    assert reply.status == status and stats(control)["rejections"] == {reason: 1}
    assert stats(control)["asr_calls"] == 0


def test_phone_msg_voice_must_be_a_file_part(up: Upstream, control: Any) -> None:
    body, content_type = encode_multipart_formdata(
        [("chatID", "0"), ("voiceBytes", "text"), ("characterID", "1"), ("playSpeedLevel", "1")])
    digest = (md5("1") + md5("0") + md5("text")).encode()
    reply = up.call("POST", PHONE, raw_body=body, sign_as=digest,
                    headers=lambda h: {**h, "Content-Type": content_type})
    assert reply.status == 400 and stats(control)["rejections"] == {"malformed_body": 1}


# --- Faults and control for the new endpoints -------------------------------------------------------------

def test_faults_on_new_endpoints(up: Upstream, uploader: Uploader, control: Any,
                                 clock: FakeClock) -> None:
    for endpoint in ("request_policy", "oss_put", "policy_callback", "msg_tts",
                     "update_robot_custom_config", "phone_msg", "media"):
        assert control.post("/_sim/faults", json={"endpoint": endpoint,
                                                   "kind": "http_503"}).status_code == 200
    assert up.call("GET", POLICY).status == 503
    policy = uploader.policy()
    assert uploader.put(policy, IMAGES["png"]).status == 503  # after a valid signature
    name = f"{uuid.uuid4()}.png"
    assert uploader.put(policy, IMAGES["png"], name=name).status == 200
    assert uploader.callback(policy, name, IMAGES["png"]).status == 503
    assert set_voice(up, "male-botong").status == 503
    assert phone_msg(up, make_audio(0.6)).status == 503
    msg_id = finished_answer(up, control, clock, "fault text")
    set_voice(up, "male-botong")
    assert tts(up, msg_id, "male-botong").status == 503
    tts(up, msg_id, "male-botong")
    clock.advance(1)
    url = tts(up, msg_id, "male-botong").json()["data"]["result"][0]
    assert control.get(urlsplit(url).path).status_code == 503
    assert control.get(urlsplit(url).path).status_code == 200
    assert control.get("/_sim/faults").get_json()["faults"] == []


def test_semantic_fault_on_oss_put_is_an_oss_error(uploader: Uploader, control: Any) -> None:
    control.post("/_sim/faults", json={"endpoint": "oss_put", "kind": "expired"})
    reply = uploader.put(uploader.policy(), IMAGES["png"])
    assert reply.status == 403 and oss_code(reply) == "SecurityTokenExpired"


def test_reset_forgets_files_voices_and_speech(up: Upstream, uploader: Uploader, control: Any,
                                              clock: FakeClock) -> None:
    file_id = uploader.upload(IMAGES["jpg"], ext="jpg", mime="image/jpeg")
    set_voice(up, "male-botong")
    control.post("/_sim/asr", json={"texts": ["x"]})
    control.post("/_sim/reset", json={})
    assert up.send("x", attachments=[attach(file_id)]).code == FILE_NOT_FOUND
    current = stats(control)
    assert (current["uploads"], current["files"], current["asr_pending"]) == (0, 0, 0)
    assert control.get("/_sim/accounts").get_json()["accounts"][0]["robot_voice"] is None
    assert control.post("/_sim/asr", json={"texts": "x"}).status_code == 400


# --- The real server (subprocess) ------------------------------------------------------------------

@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[str]]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.simulator", "--port", "0", "--accounts", "3"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    credentials: list[str] = []
    base_url = ""
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("ACCOUNT "):
            credentials.append(line.split()[1])
        if line.startswith("SIMULATOR READY "):
            base_url = line.split()[2]
            break
    assert base_url, process.stderr.read() if process.stderr else "no output"
    yield base_url, credentials
    process.terminate()
    process.wait(timeout=10)


def http_transport(base_url: str, session: requests.Session) -> Transport:
    def send(method: str, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        response = session.request(method, base_url + url, data=body, headers=headers, timeout=10)
        return Reply(response.status_code, response.content, dict(response.headers))

    return send


def account_from_credential(credential: str) -> dict[str, Any]:
    real_user_id, jwt = credential.split("+", 1)
    part = jwt.split(".")[1]
    payload = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return {"real_user_id": real_user_id, "jwt": jwt, "device_id": payload["user"]["deviceID"]}


def test_server_generation_over_http(server: tuple[str, list[str]]) -> None:
    base_url, credentials = server
    assert len(credentials) == 3 and all(re.fullmatch(r"\d{18,19}\+[\w.-]+", c) for c in credentials)
    sim = SimulatorControl(base_url)
    sim.reset()
    sim.script([{"text": "Hello — 中文 world", "cps": 50, "first_delay": 0.05}])
    up = Upstream(http_transport(base_url, requests.Session()), account_from_credential(credentials[0]))
    chat_id = up.send("over http").json()["chat_id"]
    seen = []
    while True:
        reply = up.detail(chat_id).json()
        message = answer_of(reply)
        seen.append(message["msg_content"] if message else "")
        if reply["chat"]["chat_status"] == 2:
            break
        time.sleep(0.05)
    assert seen[-1] == "Hello — 中文 world" and len(set(seen)) > 2
    assert up.call("POST", DELETE, {"chat_id": chat_id}).code == 0
    idle = sim.wait_idle(5)
    assert idle["sends"] == 1 and idle["rejections"] == {}
    entry = sim.log()[0]
    assert entry["t_send"] < entry["t_first_content"] < entry["t_finish"] <= time.time()


def test_server_drop_is_a_connection_error(server: tuple[str, list[str]]) -> None:
    base_url, credentials = server
    sim = SimulatorControl(base_url)
    sim.reset()
    sim.fault("user_info", "drop")
    up = Upstream(http_transport(base_url, requests.Session()), account_from_credential(credentials[1]))
    with pytest.raises(requests.exceptions.ConnectionError):
        up.call("GET", USER_INFO)
    assert up.call("GET", USER_INFO).status == 200


def test_server_hang_hits_client_timeout(server: tuple[str, list[str]]) -> None:
    base_url, credentials = server
    sim = SimulatorControl(base_url)
    sim.reset()
    sim.fault("user_info", "hang", seconds=3)
    session = requests.Session()

    def short_timeout(method: str, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        response = session.request(method, base_url + url, data=body, headers=headers, timeout=0.5)
        return Reply(response.status_code, response.content)

    up = Upstream(short_timeout, account_from_credential(credentials[1]))
    with pytest.raises(requests.exceptions.ReadTimeout):
        up.call("GET", USER_INFO)


def test_server_concurrent_accounts(server: tuple[str, list[str]]) -> None:
    base_url, _ = server
    sim = SimulatorControl(base_url)
    sim.reset()
    accounts = sim.add_accounts(20)
    sim.set_default({"length": 300, "cps": 1000, "first_delay": 0.05})
    errors: list[str] = []
    lock = threading.Lock()

    def run(account: dict[str, Any]) -> None:
        up = Upstream(http_transport(base_url, requests.Session()), account)
        chat_id = up.send("concurrent").json()["chat_id"]
        while up.detail(chat_id).json()["chat"]["chat_status"] != 2:
            time.sleep(0.02)
        if up.call("POST", DELETE, {"chat_id": chat_id}).code != 0:
            with lock:
                errors.append(account["real_user_id"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(run, accounts))
    assert errors == []
    idle = sim.wait_idle(10)
    assert idle["sends"] == 20 and idle["double_generation_attempts"] == 0
    assert all(len(entry["delivered"]) == 300 for entry in sim.log())


def http_put(session: requests.Session) -> PutTransport:
    def put(url: str, body: bytes, headers: dict[str, str]) -> Reply:
        response = session.put(url, data=body, headers=headers, timeout=10)
        return Reply(response.status_code, response.content, dict(response.headers))

    return put


def test_server_upload_echo_and_tts_over_http(server: tuple[str, list[str]]) -> None:
    base_url, credentials = server
    sim = SimulatorControl(base_url)
    sim.reset()
    session = requests.Session()
    up = Upstream(http_transport(base_url, session), account_from_credential(credentials[2]))
    uploader = Uploader(up, http_put(session))
    assert uploader.policy()["endpoint"] == f"{base_url}/_oss"
    file_id = uploader.upload(IMAGES["webp"], ext="webp", mime="image/webp")
    assert [(f["file_id"], f["size"]) for f in sim.files()] == [(file_id, len(IMAGES["webp"]))]
    sim.set_default({"echo": "quoted", "first_delay": 0.01})
    chat_id = up.send("Repeat verbatim:\n<<<Bonjour — 世界>>>",
                      attachments=[attach(file_id, 2, "x.webp")]).json()["chat_id"]
    while (detail := up.detail(chat_id).json())["chat"]["chat_status"] != 2:
        time.sleep(0.02)
    message = answer_of(detail)
    assert message["msg_content"] == "Bonjour — 世界"
    assert set_voice(up, "Podcast_girl").json()["statusInfo"]["code"] == 0
    statuses = []
    while (data := tts(up, message["msg_id"], "Podcast_girl").json()["data"])["requestStatus"] < 2:
        statuses.append(data["requestStatus"])
        time.sleep(0.1)
    assert statuses and set(statuses) == {1}
    assert all(url.startswith(f"{base_url}/_media/") for url in data["result"])
    audio = b"".join(session.get(url, timeout=10).content for url in data["result"])
    fmt, seconds, _, channels = decode_audio(audio)
    assert (fmt, channels) == ("mp3", 1) and seconds == pytest.approx(0.9, abs=0.15)
    assert sim.tts_log()[0]["text"] == "Bonjour — 世界"
    assert up.call("POST", DELETE, {"chat_id": chat_id}).code == 0
    assert sim.stats()["rejections"] == {}


def test_server_phone_msg_streams_in_small_pieces(server: tuple[str, list[str]]) -> None:
    base_url, credentials = server
    sim = SimulatorControl(base_url)
    sim.reset()
    assert sim.asr(["transcript — 中文 split across reads"]) == 1
    session = requests.Session()
    pieces: list[bytes] = []

    def streaming(method: str, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        response = session.request(method, base_url + url, data=body, headers=headers,
                                   timeout=10, stream=True)
        pieces.extend(response.iter_content(chunk_size=None))
        return Reply(response.status_code, b"".join(pieces), dict(response.headers))

    up = Upstream(streaming, account_from_credential(credentials[2]))
    reply = phone_msg(up, make_audio(1.0))
    assert reply.status == 200 and reply.headers["Transfer-Encoding"] == "chunked"
    assert len(pieces) > 20 and max(len(piece) for piece in pieces) <= 7
    events = sse_events(reply.raw)
    assert events[0][1] == {"status_code": 0,
                            "data": {"text": "transcript — 中文 split across reads"}}
    entry = sim.asr_log()[0]
    assert entry["status_code"] == 0 and entry["duration"] == pytest.approx(1.0, abs=0.1)
