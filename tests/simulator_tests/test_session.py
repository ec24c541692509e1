"""Tests of the simulator's session surface (/tmp/session-contract.md).

Role: prove the opening sequence, agents, sessions, uploads, the stream host's message
SSE (framing quirks, deltas, tool steps, the closing message, [DONE], the lingering
connection), one generation per account across both surfaces, disconnects stopping the
turn, the surfaces switches, the wrong-prefix HTML page and the session faults. In
process with a fake clock whose advance is also the simulator's sleep (streams then play
instantly and deterministically); the last group runs the real two-port server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Iterator

import pytest
import requests
from flask import Flask
from urllib3 import encode_multipart_formdata

from tests.simulator import SimSettings, create_simulator_app
from tests.simulator.app import stream_app
from tests.simulator.control import SimulatorControl
from tests.simulator_tests.helpers import (
    REPO_ROOT,
    TTS,
    FakeClock,
    Reply,
    Transport,
    Upstream,
    add_accounts,
    script,
    sim_log,
    stats,
)

P = "/archon/api/v1"
CHAT_RUNNING = 1400010170
NOT_CONFIGURED = 1400010501


@pytest.fixture()
def app(clock: FakeClock) -> Flask:
    """Overrides conftest's: streams sleep on the fake clock, so they play instantly."""
    settings = SimSettings(seed=7, clock=clock, sleep=clock.advance)
    return create_simulator_app(settings)


def client_transport(client: Any) -> Transport:
    def send(method: str, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        response = client.open(url, method=method, data=body, headers=headers)
        return Reply(response.status_code, response.get_data(), dict(response.headers))

    return send


@pytest.fixture()
def up(app: Flask, account: dict[str, Any], clock: FakeClock) -> Upstream:
    return Upstream(client_transport(app.test_client()), account, clock,
                    stream_transport=client_transport(stream_app(app).test_client()))


class Streaming:
    """A message POST whose body is read lazily (to disconnect mid-stream)."""

    def __init__(self, app: Flask) -> None:
        self.client = stream_app(app).test_client()
        self.response: Any = None

    def __call__(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        self.response = self.client.open(url, method=method, data=body, headers=headers,
                                         buffered=False)
        return Reply(self.response.status_code, b"", dict(self.response.headers))

    def pieces(self) -> Iterator[bytes]:
        return iter(self.response.response)


# --- Helpers ---------------------------------------------------------------------------------------

def message_body(content: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"content": content}
    body.update(extra.pop("before_model", {}))
    body.update({"model": {"provider_id": "minimax", "model_id": "MiniMax-M3",
                           "variant": "thinking"},
                 "turn_id": str(uuid.uuid4()), "enable_team": True, "worktreeMode": False})
    body.update(extra)
    return body


def open_session(up: Upstream) -> str:
    """The opening sequence, then a new session of the mavis agent."""
    assert up.call("GET", f"{P}/config").status == 200
    agents = up.call("GET", f"{P}/agent", lead="limit=20&").json()["agents"]
    agent = next(a for a in agents if a["agent_role"] == "mavis")["name"]
    reply = up.call("POST", f"{P}/agent/{agent}/session", {"model": "minimax/MiniMax-M3"})
    assert reply.status == 200, reply.raw
    return reply.json()["session_id"]


def send_message(up: Upstream, session_id: str, content: str = "hello",
                 **extra: Any) -> Reply:
    return up.call("POST", f"{P}/session/{session_id}/message", message_body(content, **extra),
                   stream=True)


def frames(raw: bytes) -> list[Any]:
    """The data of each SSE frame: parsed JSON, or the string "[DONE]"."""
    out: list[Any] = []
    for block in raw.decode("utf-8").split("\n\n"):
        if not block:
            continue
        assert block.startswith("data:") and not block.startswith("data: "), block
        data = block[len("data:"):]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def chunks(items: list[Any]) -> list[dict[str, Any]]:
    return [f["agent_message_chunk"] for f in items if isinstance(f, dict) and f.get("type") == 6]


def is_heartbeat(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") in ("heartbeat", 10)


def config(control: Any, **changes: Any) -> None:
    response = control.post("/_sim/config", json=changes)
    assert response.status_code == 200, response.get_data()


# --- Opening sequence, agents, sessions -----------------------------------------------------------

def test_message_before_config_is_not_configured(up: Upstream, control: Any) -> None:
    agents = up.call("GET", f"{P}/agent", lead="limit=20&").json()["agents"]
    session_id = up.call("POST", f"{P}/agent/{agents[0]['name']}/session",
                         {"model": "minimax/MiniMax-M3"}).json()["session_id"]
    reply = send_message(up, session_id)
    assert reply.status == 500
    assert reply.json() == {"base_resp": {"status_code": NOT_CONFIGURED,
                                          "status_msg": "Environment Variables not configured"}}
    assert stats(control)["sends"] == 0
    assert up.call("GET", f"{P}/config").json()["models"][0]["model_id"] == "MiniMax-M3"
    assert send_message(up, session_id).status == 200


def test_agents_are_per_account_and_mavis_first(app: Flask, up: Upstream, control: Any,
                                                clock: FakeClock) -> None:
    mine = up.call("GET", f"{P}/agent", lead="limit=20&").json()
    assert mine["base_resp"]["status_code"] == 0
    assert [a["agent_role"] for a in mine["agents"]] == ["mavis", "general"]
    assert all(re.fullmatch(r"\d{15}", a["name"]) for a in mine["agents"])
    assert up.call("GET", f"{P}/agent").status == 200  # limit is optional
    other = add_accounts(control)[0]
    theirs = Upstream(client_transport(app.test_client()), other, clock).call(
        "GET", f"{P}/agent").json()["agents"]
    assert {a["name"] for a in theirs}.isdisjoint(a["name"] for a in mine["agents"])
    # Another account's agent (or a role word) creates nothing.
    for agent in (theirs[0]["name"], "mavis"):
        reply = up.call("POST", f"{P}/agent/{agent}/session", {"model": "minimax/MiniMax-M3"})
        assert reply.status == 200 and "session_id" not in reply.json()


def test_session_create_status_archive_delete(up: Upstream, control: Any) -> None:
    session_id = open_session(up)
    assert re.fullmatch(r"\d{15}", session_id)
    view = up.call("GET", f"{P}/session/{session_id}").json()["session"]
    assert view["session_id"] == session_id and view["status"] == {"type": 0}
    assert view["archived"] is False and stats(control)["chats_alive"] == 1
    reply = up.call("POST", f"{P}/session/{session_id}/archive", {"archived": True}).json()
    assert reply["success"] is True and stats(control)["chats_alive"] == 0
    assert up.call("DELETE", f"{P}/session/{session_id}").json()["base_resp"]["status_code"] == 0
    gone = up.call("GET", f"{P}/session/{session_id}").json()["base_resp"]
    assert gone["status_code"] != 0
    counters = stats(control)
    assert (counters["sessions_created"], counters["archives"], counters["deletes"]) == (1, 1, 1)


def test_invalid_model_and_body(up: Upstream, control: Any) -> None:
    up.call("GET", f"{P}/config")
    agent = up.call("GET", f"{P}/agent").json()["agents"][0]["name"]
    reply = up.call("POST", f"{P}/agent/{agent}/session", {"model": "minimax/GPT-9"})
    assert reply.status == 400 and reply.json()["base_resp"]["status_code"] == 1406010011
    session_id = open_session(up)
    reply = send_message(up, session_id, model="MiniMax-M3")
    assert reply.status == 400 and reply.json()["base_resp"]["status_code"] == 1406010011
    reply = send_message(up, session_id, turn_id="not-a-uuid")
    assert reply.status == 400 and stats(control)["rejections"]["malformed_body"] == 1


# --- The stream ------------------------------------------------------------------------------------

def test_message_stream_framing_and_linger(up: Upstream, control: Any) -> None:
    config(control, linger_seconds=1.2, heartbeat_seconds=0.5)
    script(control, [{"text": "Hello — 中文 answer", "thinking": "think hard", "cps": 20,
                      "pauses": [{"at": 5, "seconds": 1.5}]}])
    session_id = open_session(up)
    reply = send_message(up, session_id, "你好 there")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/event-stream"
    assert reply.headers["Cache-Control"] == "no-cache"
    items = frames(reply.raw)
    echo = items[0]["agent_message"]
    assert items[0]["type"] == 2 and echo["role"] == "user" and echo["msg_content"] == "你好 there"
    parts = chunks(items)
    assert "".join(c["msg_content"] for c in parts) == "Hello — 中文 answer"
    assert "".join(c["thinking_content"] for c in parts) == "think hard"
    assert [c["chunk_index"] for c in parts] == list(range(1, len(parts) + 1))
    assert parts[-1]["finish"] is True and parts[-1]["finish_reason"] == "stop"
    assert all(c["role"] == "assistant" and c["kind"] == "text" for c in parts)
    done = items.index("[DONE]")
    final = items[done - 1]["agent_message"]
    assert final["role"] == "assistant" and final["msg_content"] == "Hello — 中文 answer"
    assert final["thinking_content"] == "think hard" and final["usage"]["total_tokens"] > 0
    assert final["msg_id"] == parts[-1]["msg_id"] != echo["msg_id"]
    # Heartbeats of both forms during the pause, and after [DONE] while lingering.
    beats = [item for item in items[:done] if is_heartbeat(item)]
    assert {b["type"] for b in beats} == {"heartbeat", 10}, beats
    after = items[done + 1:]
    assert len(after) >= 2 and all(is_heartbeat(item) for item in after)
    assert {b["type"] for b in after} == {"heartbeat", 10}, after
    entry = sim_log(control)[0]
    assert entry["surface"] == "session" and entry["chat_id"] == session_id
    assert entry["delivered"] == "Hello — 中文 answer" and entry["status"] == "finished"
    counters = stats(control)
    assert counters["sends"] == counters["stream_messages"] == 1
    assert counters["chats_generating"] == 0 and counters["rejections"] == {}


def test_tool_steps_in_the_stream(up: Upstream, control: Any) -> None:
    config(control, linger_seconds=0)
    script(control, [{"text": "found it", "tool_steps": [
        {"name": "web_search", "content": "[{\"title\":\"t\"}]", "seconds": 0.4}]}])
    items = frames(send_message(up, open_session(up), "search please").raw)
    calls = [c["tool_calls"][0] for c in chunks(items) if "tool_calls" in c]
    assert [c["tool_call_status"] for c in calls] == ["running", "done"]
    assert calls[0]["tool_call_id"] == calls[1]["tool_call_id"]
    assert calls[1]["tool_call_result_data"] == "[{\"title\":\"t\"}]"
    assert json.loads(calls[0]["tool_call_args"])["query"] == "search please"
    texts = [c for c in chunks(items) if c["msg_content"]]
    assert "".join(c["msg_content"] for c in texts) == "found it"
    assert items[-1] == "[DONE]"


def test_follow_up_turn_keeps_history(up: Upstream, control: Any) -> None:
    config(control, linger_seconds=0)
    session_id = open_session(up)
    send_message(up, session_id, "first")
    send_message(up, session_id, "second")
    log = sim_log(control)
    assert [e["turn"] for e in log] == [1, 2] and {e["chat_id"] for e in log} == {session_id}
    assert up.call("GET", f"{P}/session/{session_id}").json()["session"]["title"] == "first"


def test_message_on_the_api_host_is_404(up: Upstream, control: Any) -> None:
    session_id = open_session(up)
    reply = up.call("POST", f"{P}/session/{session_id}/message", message_body("hi"))
    assert reply.status == 404 and reply.json() == {"error": "Not Found"}
    assert stats(control)["sends"] == 0


def test_wrong_prefix_and_unknown_path_answer_the_html_page(up: Upstream, control: Any) -> None:
    for path in ("/minimax-cloud/api/v1/config", f"{P}/nothing/here"):
        reply = up.call("GET", path)
        assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
        assert reply.raw.startswith(b"<!DOCTYPE html>")
    config(control, session_prefix="/minimax-cloud/api/v1")
    assert up.call("GET", "/minimax-cloud/api/v1/config").json()["base_resp"]["status_code"] == 0
    assert up.call("GET", f"{P}/config").headers["Content-Type"].startswith("text/html")


def test_busy_across_surfaces(app: Flask, up: Upstream, control: Any, clock: FakeClock) -> None:
    config(control, linger_seconds=0)
    session_id = open_session(up)
    script(control, [{"text": "x" * 40, "cps": 10}])
    assert up.send("matrix first").json()["base_resp"]["status_code"] == 0
    reply = send_message(up, session_id)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["base_resp"] == {"status_code": CHAT_RUNNING,
                                         "status_msg": "chat is running"}
    clock.advance(10)
    streaming = LazyMessage(app, up)
    script(control, [{"text": "y" * 40, "cps": 10}])
    assert streaming.call(session_id).status == 200
    assert up.send("matrix second").json()["base_resp"]["status_code"] == CHAT_RUNNING
    assert up.call("GET", f"{P}/session/{session_id}").json()["session"]["status"] == {"type": 1}
    assert stats(control)["double_generation_attempts"] == 2
    assert stats(control)["chats_generating"] == 1


class LazyMessage:
    """Send a message through a lazily read stream of `app`'s stream host."""

    def __init__(self, app: Flask, up: Upstream) -> None:
        self.up = up
        self.streaming = Streaming(app)

    def call(self, session_id: str, content: str = "hello") -> Reply:
        saved = self.up.stream_transport
        self.up.stream_transport = self.streaming
        try:
            return send_message(self.up, session_id, content)
        finally:
            self.up.stream_transport = saved


def test_disconnect_mid_stream_stops_the_turn(app: Flask, up: Upstream, control: Any) -> None:
    session_id = open_session(up)
    script(control, [{"text": "z" * 200, "cps": 20}])
    streaming = LazyMessage(app, up)
    assert streaming.call(session_id).status == 200
    pieces = streaming.streaming.pieces()
    got = b""
    while b"msg_content\":\"z" not in got:
        got += next(pieces)
    streaming.streaming.response.close()
    counters = stats(control)
    assert counters["stops"] == 1 and counters["chats_generating"] == 0
    entry = sim_log(control)[0]
    assert entry["status"] == "stopped" and 0 < len(entry["delivered"]) < 200
    assert up.send("free again").json()["base_resp"]["status_code"] == 0


def test_delete_of_a_running_session_ends_its_turn(app: Flask, up: Upstream,
                                                  control: Any) -> None:
    session_id = open_session(up)
    script(control, [{"text": "z" * 200, "cps": 20}])
    assert LazyMessage(app, up).call(session_id).status == 200
    assert up.call("DELETE", f"{P}/session/{session_id}").json()["base_resp"]["status_code"] == 0
    assert stats(control)["chats_generating"] == 0 and stats(control)["chats_alive"] == 0


def test_drop_mid_closes_the_stream(app: Flask, up: Upstream, control: Any) -> None:
    session_id = open_session(up)
    script(control, [{"text": "z" * 100, "cps": 50, "fault": "drop_mid"}])
    streaming = LazyMessage(app, up)
    assert streaming.call(session_id).status == 200
    with pytest.raises(ConnectionResetError):
        for _ in streaming.streaming.pieces():
            pass
    counters = stats(control)
    assert counters["stream_drops"] == 1 and counters["chats_generating"] == 0
    assert counters["faults_applied"] == {"session_message:drop_mid": 1}


def test_hang_mid_stalls_without_heartbeats(up: Upstream, control: Any, clock: FakeClock) -> None:
    config(control, linger_seconds=0)
    script(control, [{"text": "abcdef", "cps": 100, "fault": "hang_mid", "fault_seconds": 3}])
    start = clock.now
    items = frames(send_message(up, open_session(up)).raw)
    assert "".join(c["msg_content"] for c in chunks(items)) == "abcdef"
    assert clock.now - start >= 3
    assert not any(is_heartbeat(item) for item in items)


# --- Identity and switches ---------------------------------------------------------------------------

def test_non_numeric_device_id_on_session_calls(up: Upstream, control: Any) -> None:
    up.account = dict(up.account, device_id="web-abc")
    reply = up.call("GET", f"{P}/config")
    assert reply.status == 400
    assert reply.json() == {"error": "internal error", "code": "UNEXPECTED_ERROR",
                            "base_resp": {"status_code": 1406011050,
                                          "status_msg": "internal error"}}
    assert stats(control)["rejections"] == {"bad_device_id": 1}
    assert up.call("GET", "/v1/api/user/info").status == 400  # matrix side: invalid params


def test_session_calls_need_the_real_user_id(up: Upstream, control: Any) -> None:
    up.account = dict(up.account, real_user_id=up.account["jwt_user_id"])
    reply = up.call("GET", f"{P}/config")
    assert reply.status == 401 and reply.raw == b""


def test_surfaces_switches(app: Flask, control: Any, clock: FakeClock) -> None:
    no_matrix, no_session = add_accounts(control, surfaces={"matrix": False})[0], \
        add_accounts(control, surfaces={"session": False})[0]
    up = Upstream(client_transport(app.test_client()), no_matrix, clock)
    reply = up.send("hi")
    assert reply.status == 401 and reply.raw == b""
    assert up.call("GET", "/v1/api/user/info").status == 200
    assert up.call("GET", f"{P}/config").status == 200
    up = Upstream(client_transport(app.test_client()), no_session, clock)
    reply = up.call("GET", f"{P}/config")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
    assert up.send("hi").json()["base_resp"]["status_code"] == 0
    patched = control.patch(f"/_sim/accounts/{no_session['real_user_id']}",
                            json={"surfaces": {"session": True}})
    assert patched.status_code == 200
    assert up.call("GET", f"{P}/config").json()["base_resp"]["status_code"] == 0


# --- Faults --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,status", [("http_502", 502), ("busy", 200), ("busy_msg", 200),
                                         ("expired", 401)])
def test_faults_on_the_message(up: Upstream, control: Any, kind: str, status: int) -> None:
    session_id = open_session(up)
    control.post("/_sim/faults", json={"endpoint": "session_message", "kind": kind})
    reply = send_message(up, session_id)
    assert reply.status == status
    if kind.startswith("busy"):
        assert reply.json()["base_resp"]["status_msg"] == "chat is running"
    assert stats(control)["sends"] == 0


def test_drop_after_on_the_message_ends_the_turn(up: Upstream, control: Any) -> None:
    session_id = open_session(up)
    control.post("/_sim/faults", json={"endpoint": "session_message", "kind": "drop_after"})
    with pytest.raises(ConnectionResetError):
        send_message(up, session_id)
    counters = stats(control)
    assert counters["sends"] == 1 and counters["chats_generating"] == 0


@pytest.mark.parametrize("endpoint", ["session_config", "session_agents", "session_status",
                                      "uploads_prepare"])
def test_faults_on_session_endpoints(up: Upstream, control: Any, endpoint: str) -> None:
    control.post("/_sim/faults", json={"endpoint": endpoint, "kind": "http_503"})
    session_id = open_session(up) if endpoint in ("session_status", "uploads_prepare") else "1"
    calls = {"session_config": ("GET", f"{P}/config", None),
             "session_agents": ("GET", f"{P}/agent", None),
             "session_status": ("GET", f"{P}/session/{session_id}", None),
             "uploads_prepare": ("POST", f"{P}/uploads/prepare", {
                 "purpose": 1, "file_name": "a.txt", "mime_type": "text/plain", "size_bytes": 3})}
    method, path, body = calls[endpoint]
    assert up.call(method, path, body).status == 503
    assert up.call(method, path, body).status == 200


# --- Uploads -------------------------------------------------------------------------------------------

def prepare(up: Upstream, data: bytes, name: str = "notes.txt",
            mime: str = "text/plain") -> dict[str, Any]:
    reply = up.call("POST", f"{P}/uploads/prepare", {"purpose": 1, "file_name": name,
                                                      "mime_type": mime, "size_bytes": len(data)})
    assert reply.status == 200, reply.raw
    return reply.json()


def post_form(app: Flask, instruction: dict[str, Any], data: bytes,
              fields: list[tuple[str, Any]] | None = None) -> Any:
    parts = fields if fields is not None else [
        *[(name, value) for name, value in instruction["form_fields"]],
        ("file", ("notes.txt", data, "text/plain"))]
    body, content_type = encode_multipart_formdata(parts)
    path = instruction["url"].split("localhost", 1)[1]
    return app.test_client().post(path, data=body, headers={"Content-Type": content_type})


def test_upload_and_attach(app: Flask, up: Upstream, control: Any) -> None:
    config(control, linger_seconds=0)
    data = "hello — 中文".encode()
    prepared = prepare(up, data)
    instruction = prepared["upload_instruction"]
    assert instruction["method"] == "POST" and instruction["url"].endswith("/_upload")
    assert [name for name, _ in instruction["form_fields"]][0] == "key"
    assert post_form(app, instruction, data).status_code == 204
    attachment = {"meta": {"attachment_type": "file", "file_name": "notes.txt",
                           "mime_type": "text/plain", "size_bytes": len(data)},
                  "cloud": {"object_key": prepared["object_key"]}}
    session_id = open_session(up)
    reply = send_message(up, session_id, " ", before_model={"attachments": [attachment]})
    assert reply.status == 200, reply.raw
    entry = sim_log(control)[0]
    assert entry["attachments"] == [{"file_type": 6, "file_id": prepared["object_key"],
                                     "file_name": "notes.txt"}]
    assert entry["attachment_details"][0]["size"] == len(data)
    assert stats(control)["warnings"] == {}


@pytest.mark.parametrize("mistake,reason", [
    ("order", "upload_field_order"), ("file_first", "upload_field_order"),
    ("size", "upload_size_mismatch"), ("signature", "upload_bad_signature"),
    ("no_file", "upload_no_file"), ("unknown_key", "upload_unknown_key"),
])
def test_upload_post_rejections(app: Flask, up: Upstream, control: Any, mistake: str,
                                reason: str) -> None:
    data = b"abc"
    instruction = prepare(up, data)["upload_instruction"]
    fields = [(name, value) for name, value in instruction["form_fields"]]
    file_part = ("file", ("a.txt", data, "text/plain"))
    parts: list[tuple[str, Any]] = {
        "order": [fields[1], fields[0], *fields[2:], file_part],
        "file_first": [file_part, *fields],
        "size": [*fields, ("file", ("a.txt", b"abcd", "text/plain"))],
        "signature": [*fields[:-1], ("signature", "0" * 64), file_part],
        "no_file": fields,
        "unknown_key": [("key", "uploads/x/y"), *fields[1:], file_part],
    }[mistake]
    response = post_form(app, instruction, data, parts)
    assert response.status_code in (400, 403)
    assert b"<Error>" in response.get_data()
    assert stats(control)["rejections"] == {reason: 1}


def test_attachment_of_another_account_is_refused(app: Flask, up: Upstream, control: Any,
                                                  clock: FakeClock) -> None:
    data = b"abc"
    prepared = prepare(up, data)
    post_form(app, prepared["upload_instruction"], data)
    other = Upstream(client_transport(app.test_client()), add_accounts(control)[0], clock,
                     stream_transport=up.stream_transport)
    attachment = {"meta": {"attachment_type": "file", "file_name": "a.txt",
                           "mime_type": "text/plain", "size_bytes": 3},
                  "cloud": {"object_key": prepared["object_key"]}}
    reply = send_message(other, open_session(other), "x",
                         before_model={"attachments": [attachment]})
    assert reply.status == 200 and reply.json()["base_resp"]["status_code"] != 0
    assert stats(control)["rejections"] == {"attachment_not_found": 1}


# --- TTS of a session answer --------------------------------------------------------------------------

def test_msg_tts_accepts_a_session_answer(up: Upstream, control: Any) -> None:
    config(control, linger_seconds=0)
    script(control, [{"text": "speak this"}])
    items = frames(send_message(up, open_session(up)).raw)
    msg_id = chunks(items)[-1]["msg_id"]
    robot = {"robotID": "1", "config": {"robotVoiceID": "female-shaonv"}}
    assert up.call("POST", "/v1/api/chat/update_robot_custom_config", robot).status == 200
    reply = up.call("GET", TTS, lead=f"msgID={msg_id}&timbre=female-shaonv&")
    assert reply.status == 200 and reply.json()["statusInfo"]["code"] == 0, reply.raw


# --- The real two-port server ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.simulator", "--port", "0", "--stream-port", "0"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    api_url = stream_url = ""
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not api_url:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("SIMULATOR STREAM "):
            stream_url = line.split()[2]
        if line.startswith("SIMULATOR READY "):
            api_url = line.split()[2]
    assert api_url and stream_url, process.stderr.read() if process.stderr else "no output"
    yield api_url, stream_url
    process.terminate()
    process.wait(timeout=10)


def http(base_url: str, session: requests.Session, **options: Any) -> Transport:
    def send(method: str, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        response = session.request(method, base_url + url, data=body, headers=headers,
                                   timeout=10, **options)
        return Reply(response.status_code, response.content, dict(response.headers))

    return send


def real_upstream(api_url: str, stream_url: str, account: dict[str, Any]) -> Upstream:
    session = requests.Session()
    return Upstream(http(api_url, session), account, stream_transport=http(stream_url, session),
                    stream_origin=stream_url)


def open_stream(up: Upstream, stream_url: str, session_id: str) -> requests.Response:
    """A message POST read incrementally: the connection lingers after [DONE]."""
    holder: dict[str, requests.Response] = {}

    def send(method: str, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        holder["r"] = requests.request(method, stream_url + url, data=body, headers=headers,
                                       timeout=10, stream=True)
        return Reply(holder["r"].status_code, b"", dict(holder["r"].headers))

    saved, up.stream_transport = up.stream_transport, send
    try:
        assert send_message(up, session_id, "over http").status == 200
    finally:
        up.stream_transport = saved
    return holder["r"]


def test_server_stream_lingers_after_done(server: tuple[str, str]) -> None:
    api_url, stream_url = server
    sim = SimulatorControl(api_url)
    sim.reset()
    assert sim.stream_url == stream_url
    sim.script([{"text": "Hello — 中文 over http", "cps": 200, "first_delay": 0.05}])
    up = real_upstream(api_url, stream_url, sim.add_accounts(1)[0])
    response = open_stream(up, stream_url, open_session(up))
    lines = response.iter_lines()
    seen: list[bytes] = []
    for line in lines:
        seen.append(line)
        if line == b"data:[DONE]":
            break
    text = "".join(json.loads(line[5:])["agent_message_chunk"]["msg_content"]
                   for line in seen if line.startswith(b"data:{\"type\":6"))
    assert text == "Hello — 中文 over http"
    started = time.monotonic()
    beat = next(line for line in lines if line)
    assert is_heartbeat(json.loads(beat[5:])) and time.monotonic() - started < 2
    response.close()
    assert sim.stats()["stops"] == 0 and sim.log()[0]["status"] == "finished"


def test_server_disconnect_stops_the_turn_quickly(server: tuple[str, str]) -> None:
    api_url, stream_url = server
    sim = SimulatorControl(api_url)
    sim.reset()
    sim.script([{"text": "w" * 2000, "cps": 100, "first_delay": 0.05}])
    account = sim.add_accounts(1)[0]
    up = real_upstream(api_url, stream_url, account)
    response = open_stream(up, stream_url, open_session(up))
    for line in response.iter_lines():
        if b"\"msg_content\":\"w" in line:
            break
    response.close()
    closed = time.monotonic()
    while sim.stats()["stops"] == 0:
        assert time.monotonic() - closed < 0.6, "disconnect not noticed within ~0.5 s"
        time.sleep(0.02)
    assert sim.stats()["chats_generating"] == 0
    assert up.send("free").json()["base_resp"]["status_code"] == 0


def test_server_concurrent_streams(server: tuple[str, str]) -> None:
    api_url, stream_url = server
    sim = SimulatorControl(api_url)
    sim.reset()
    sim.config(linger_seconds=0)
    sim.set_default({"length": 300, "cps": 2000, "first_delay": 0.02})
    accounts = sim.add_accounts(10)
    errors: list[str] = []

    def run(account: dict[str, Any]) -> None:
        up = real_upstream(api_url, stream_url, account)
        items = frames(send_message(up, open_session(up)).raw)
        if len("".join(c["msg_content"] for c in chunks(items))) != 300:
            errors.append(account["real_user_id"])

    threads = [threading.Thread(target=run, args=(a,)) for a in accounts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and sim.stats()["stream_messages"] == 10


def test_error_mid_sends_an_error_frame(up: Upstream, control: Any) -> None:
    script(control, [{"text": "q" * 50, "cps": 50, "fault": "error_mid"}])
    items = frames(send_message(up, open_session(up)).raw)
    assert items[-2] == {"type": "error", "errorCode": 2056, "message": "quota exhausted"}
    assert items[-1] == "[DONE]"
    assert stats(control)["chats_generating"] == 0 and stats(control)["generation_errors"] == 1
    assert sim_log(control)[0]["status"] == "stopped"


def test_error_mid_on_the_matrix_side(up: Upstream, control: Any, clock: FakeClock) -> None:
    script(control, [{"text": "q" * 50, "cps": 50, "fault": "error_mid"}])
    chat_id = up.send("hi").json()["chat_id"]
    clock.advance(0.5)
    assert up.detail(chat_id).json()["base_resp"]["status_code"] == 2056
    assert up.detail(chat_id).json()["chat"]["chat_status"] == 2


def test_events_stream_is_heartbeats_only(up: Upstream, control: Any) -> None:
    config(control, linger_seconds=1.0)
    items = frames(up.call("GET", f"{P}/events", stream=True).raw)
    assert len(items) >= 2 and all(is_heartbeat(item) for item in items)
