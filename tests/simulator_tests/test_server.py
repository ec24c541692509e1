"""Tests of the simulator as a real server: `python -m tests.simulator` over HTTP.

Role: what only a real socket shows: drops, hangs, concurrency, streaming in small pieces.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest
import requests

from tests.simulator.control import SimulatorControl
from tests.simulator_tests.helpers import (
    DELETE,
    IMAGES,
    REPO_ROOT,
    USER_INFO,
    Reply,
    Uploader,
    Upstream,
    account_from_credential,
    answer_of,
    attach,
    decode_audio,
    http_put,
    http_transport,
    make_audio,
    phone_msg,
    set_voice,
    sse_events,
    tts,
)

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
