"""Tests of the simulator's speech: text to speech (msg_tts, real MP3) and recognition (phone_msg).

Role: `tests/simulator/speech.py` and `media.py` through the HTTP surface.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from urllib3 import encode_multipart_formdata

from tests.simulator_tests.helpers import (
    CHAT_RUNNING,
    DELETE,
    IMAGES,
    INVALID_AUDIO,
    INVALID_PARAMS,
    MSG_NOT_FOUND,
    PHONE,
    ROBOT,
    TTS,
    VOICE_MISMATCH,
    FakeClock,
    Upstream,
    add_accounts,
    answer_message,
    decode_audio,
    finished_answer,
    flask_transport,
    make_audio,
    md5,
    phone_msg,
    script,
    set_voice,
    sim_log,
    sse_events,
    stats,
    tts,
)

# --- Text to speech -------------------------------------------------------------------------------------

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
