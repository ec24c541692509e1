"""Tests of the simulator's world: chats, generations and their timeline, faults, control API.

Role: `tests/simulator/state.py` (the facade) and the parts it composes (accounts.py,
chats.py, generations.py, timeline.py, scripts.py, faults.py, tally.py, settings.py)
through the /_sim/ endpoints and the protocol, with a fake clock so that timelines are
deterministic; test_parts.py tests the parts one by one.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask

from tests.simulator_tests.helpers import (
    CHAT_NOT_FOUND,
    CHAT_RUNNING,
    DELETE,
    FILE_NOT_FOUND,
    IMAGES,
    LIST,
    MEMBERSHIP,
    NO_CREDITS,
    POLICY,
    QUOTA,
    STOP,
    USER_INFO,
    FakeClock,
    Reply,
    Uploader,
    Upstream,
    add_accounts,
    answer_message,
    attach,
    finished_answer,
    flask_transport,
    make_audio,
    oss_code,
    phone_msg,
    script,
    set_voice,
    sim_log,
    stats,
    tts,
)

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
