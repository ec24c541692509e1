"""Tests of the simulator's request gate: accounts, signatures, parameters, identity, bodies.

Role: prove the simulator accepts a correct client and rejects each protocol mistake exactly
as /work/shared/UPSTREAM.md (as corrected by CAPTURES.md) says (`tests/simulator/protocol.py`,
`signing.py`, the gate in `app.py`).
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any

import pytest
from flask import Flask

from tests.simulator import SimSettings, create_simulator_app
from tests.simulator_tests.helpers import (
    COMMON_CONFIG,
    DETAIL,
    INVALID_PARAMS,
    INVALID_SIGNATURE,
    MEMBERSHIP,
    REGISTER,
    SALT,
    USER_INFO,
    FakeClock,
    Upstream,
    add_accounts,
    assert_rejected,
    axios_value,
    compact,
    flask_transport,
    md5,
    stats,
    yy_of,
)

# --- Accounts and credentials ------------------------------------------------------------------

def test_account_ids_are_big_digit_strings_and_jwt_payload_matches(account: dict[str, Any]) -> None:
    assert re.fullmatch(r"\d{18,19}", account["real_user_id"])
    assert int(account["real_user_id"]) > 2**53
    assert account["credential"] == f"{account['real_user_id']}+{account['jwt']}"
    payload_part = account["jwt"].split(".")[1]
    payload = json.loads(base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4)))
    # Like the genuine capture: the JWT's user.id is another number than realUserID.
    assert payload["user"]["id"] == account["jwt_user_id"] != account["real_user_id"]
    assert re.fullmatch(r"\d{18,19}", payload["user"]["id"])
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


def test_membership_reports_credits(up: Upstream, control: Any, app: Flask,
                                    clock: FakeClock) -> None:
    reply = up.call("POST", MEMBERSHIP).json()  # the browser sends no body
    assert reply["base_resp"]["status_code"] == 0
    assert reply["plan_name"] == "Free" and reply["is_migrated_to_op"] is True
    # Migrated accounts (the default): credits only in op_credit_summary, as a decimal string.
    assert reply["total_remains_credit"] == 0
    assert reply["op_credit_summary"]["total_remaining_amount"] == "1000.00"
    assert up.call("POST", MEMBERSHIP, {}).json() == reply  # "{}" as a body works too
    legacy = add_accounts(control, migrated=False, credits=7)[0]
    old = Upstream(flask_transport(app), legacy, clock).call("POST", MEMBERSHIP).json()
    assert old["is_migrated_to_op"] is False and old["total_remains_credit"] == 7


# --- Signature, parameters and identity are checked strictly -------------------------------------

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
            return yy_of(path, query.replace("+", " "), body, unix_ms)
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
    reply = up.call("GET", USER_INFO, params=lambda p: [x for x in p if x[0] != "lang"])
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


def test_query_is_encoded_like_axios(up: Upstream, control: Any) -> None:
    def mac_os(pairs: list[list[str]]) -> list[list[str]]:
        return [[k, "Mac OS" if k == "os_name" else v] for k, v in pairs]

    assert up.call("GET", USER_INFO, params=mac_os).status == 200  # "+": as axios sends it
    reply = up.call("GET", USER_INFO, params=mac_os,
                    query_text=lambda q: q.replace("Mac+OS", "Mac%20OS"))
    assert_rejected(reply, control, "param_encoding", 400)


def test_commas_in_a_leading_value_are_sent_raw(up: Upstream, control: Any) -> None:
    filters = "filter=agent_config,agent_web_update_modal&"
    reply = up.call("GET", COMMON_CONFIG, lead=filters)
    assert reply.status == 404  # the simulator does not serve it; the encoder is what counts
    assert axios_value("a,b:c") == "a,b:c" and axios_value("a b&c") == "a+b%26c"


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
    differs = add_accounts(control)[0]
    assert differs["jwt_user_id"] != differs["real_user_id"]
    # A gateway that wrongly takes realUserID from the JWT's user.id:
    wrong = dict(differs, real_user_id=differs["jwt_user_id"])
    reply = Upstream(flask_transport(app), wrong, clock).call("POST", MEMBERSHIP)
    assert_rejected(reply, control, "wrong_user_id", 401)
    assert Upstream(flask_transport(app), differs, clock).call("POST", MEMBERSHIP).status == 200


@pytest.mark.parametrize("user_id", ["jwt", "0", "missing", "empty"])
def test_user_info_accepts_any_user_id(app: Flask, control: Any, clock: FakeClock,
                                       user_id: str) -> None:
    account = add_accounts(control)[0]

    def pairs(params: list[list[str]]) -> list[list[str]]:
        if user_id == "missing":
            return [p for p in params if p[0] != "user_id"]
        value = {"jwt": account["jwt_user_id"], "0": "0", "empty": ""}[user_id]
        return [[k, value if k == "user_id" else v] for k, v in params]

    reply = Upstream(flask_transport(app), account, clock).call("GET", USER_INFO, params=pairs)
    assert reply.status == 200, reply.raw
    assert reply.json()["data"]["userInfo"]["realUserID"] == account["real_user_id"]
    assert stats(control)["rejections"] == {}


def test_unknown_path_is_counted(control: Any, up: Upstream) -> None:
    reply = up.call("POST", "/matrix/api/v1/chat/nope", {})
    assert reply.status == 404
    assert stats(control)["rejections"] == {"unknown_endpoint": 1}


def test_warnings_for_non_compact_body_and_missing_browser_headers(up: Upstream, control: Any) -> None:
    raw = json.dumps({"uuid": up.device_uuid}).encode()  # ", " and ": " separators
    assert up.call("POST", REGISTER, raw_body=raw,
                   headers=lambda h: {k: v for k, v in h.items() if k != "Referer"}).status == 200
    warnings = stats(control)["warnings"]
    assert warnings == {"body_not_compact_json": 1, "missing_referer": 1}


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
