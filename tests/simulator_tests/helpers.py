"""Shared pieces of the simulator's tests: an independent signer and client, fake clock, helpers.

Role: everything the test modules of tests/simulator_tests/ share that is not a fixture.
The signer is written here from /work/shared/CAPTURES.md, independently of both the
simulator's signing module and the gateway, so a signing bug on either side shows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import math
import re
import time
import uuid
from array import array
from email.utils import formatdate
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlsplit

import av
import requests
from flask import Flask
from urllib3 import encode_multipart_formdata

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


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
RENEWAL = "/v1/api/user/renewal"
COMMON_CONFIG = "/v1/api/config/web/common_config"
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
SESSION_ROOTS = ("/archon/", "/minimax-cloud/")


def js_encode(value: str) -> str:
    """encodeURIComponent."""
    return quote(value, safe="-_.!~*'()")


def axios_value(value: str) -> str:
    """A query value the way axios sends it."""
    encoded = js_encode(value)
    for escape, char in (("%3A", ":"), ("%24", "$"), ("%2C", ","), ("%20", "+"),
                         ("%5B", "["), ("%5D", "]")):
        encoded = encoded.replace(escape, char)
    return encoded


def is_session_path(path: str) -> bool:
    return any(root in path for root in SESSION_ROOTS)


def md5(data: bytes | str) -> str:
    return hashlib.md5(data.encode() if isinstance(data, str) else data).hexdigest()


def compact(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def standard_params(account: dict[str, Any], unix_ms: str, device_uuid: str,
                    session: bool = False) -> list[list[str]]:
    """The 21 parameters of every call; session-prefix calls add region last."""
    pairs = [
        ["device_platform", "web"], ["biz_id", "3"], ["app_id", "3001"],
        ["version_code", "22201"], ["unix", unix_ms], ["timezone_offset", "28800"],
        ["sys_language", "zh"], ["lang", "zh"], ["uuid", device_uuid],
        ["device_id", account["device_id"]], ["os_name", "Mac"], ["browser_name", "chrome"],
        ["device_memory", "8"], ["cpu_core_num", "11"], ["browser_language", "zh-CN"],
        ["browser_platform", "MacIntel"], ["user_id", account["real_user_id"]],
        ["screen_width", "1920"], ["screen_height", "1080"], ["token", account["jwt"]],
        ["client", "web"],
    ]
    return pairs + [["region", "cn"]] if session else pairs


def with_op_ticket(query: str) -> str:
    parts = query.split("&")
    names = [part.split("=", 1)[0] for part in parts]
    at = names.index("user_id") + 1 if "user_id" in names else names.index("browser_platform") + 1
    return "&".join(parts[:at] + ["op_ticket=undefined"] + parts[at:])


def yy_body(path: str, body: bytes) -> bytes:
    if not body:
        return b"{}"
    if is_session_path(path):
        return json.dumps(body.decode(), ensure_ascii=False).encode()
    return body


def yy_of(path: str, query: str, body: bytes, unix_ms: str) -> str:
    """The captured rule; `path` is absolute (scheme://host/path) on the stream host."""
    target = f"{path}?{with_op_ticket(query)}"
    return md5(js_encode(target).encode() + b"_" + yy_body(path, body)
               + (md5(unix_ms) + "ooui").encode())


def legacy_yy_of(path: str, query: str, body: bytes, unix_ms: str) -> str:
    """UPSTREAM.md's older rule: no op_ticket, the exact body ("" for GET)."""
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
                 clock: Callable[[], float] = time.time, *,
                 stream_transport: Transport | None = None,
                 stream_origin: str = "http://localhost") -> None:
        self.transport, self.account, self.clock = transport, account, clock
        self.stream_transport, self.stream_origin = stream_transport, stream_origin
        self.device_uuid = str(uuid.uuid4())

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
             raw_body: bytes | None = None,
             params: Callable[[list[list[str]]], list[list[str]]] | None = None,
             query_text: Callable[[str], str] | None = None,
             headers: Callable[[dict[str, str]], dict[str, str]] | None = None,
             salt: str | None = None, ts_shift: float = 0, unix_ms: str | None = None,
             yy: Callable[[str, str, bytes, str], str] | None = None,
             sign_as: bytes | None = None, stream: bool = False, lead: str = "") -> Reply:
        """sign_as: the bytes the signatures cover when they are not the body (multipart);
        stream: send to the stream host (T is then the absolute URL); lead: endpoint
        parameters before the standard ones, already encoded ("limit=20&")."""
        stamp = str(int(self.clock() + ts_shift))
        unix = unix_ms if unix_ms is not None else stamp + "000"  # one clock reading
        pairs = standard_params(self.account, unix, self.device_uuid, is_session_path(path))
        pairs = params(pairs) if params else pairs
        query = lead + "&".join(f"{k}={axios_value(v)}" for k, v in pairs)
        query = query_text(query) if query_text else query
        raw = raw_body if raw_body is not None else (b"" if body is None else compact(body))
        covered = raw if sign_as is None else sign_as
        target = f"{self.stream_origin}{path}" if stream else path
        signed = {
            "token": self.account["jwt"], "x-timestamp": stamp,
            "x-signature": md5(stamp.encode() + (salt or SALT).encode() + covered),
            "yy": (yy or yy_of)(target, query, covered, unix),
            "Content-Type": "application/json",
            "Referer": "https://agent.minimaxi.com/", "User-Agent": "Mozilla/5.0 Chrome/149",
        }
        signed = headers(signed) if headers else signed
        transport = self.stream_transport if stream else self.transport
        assert transport is not None, "no stream transport"
        return transport(method, f"{path}?{query}", raw, signed)

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


def add_accounts(control: Any, count: int = 1, **opts: Any) -> list[dict[str, Any]]:
    response = control.post("/_sim/accounts", json={"count": count, **opts})
    assert response.status_code == 200, response.get_data()
    return response.get_json()["accounts"]


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


def assert_rejected(reply: Reply, control: Any, reason: str, status: int) -> None:
    assert reply.status == status, reply.raw
    if status == 401:
        assert reply.raw == b""
    assert stats(control)["rejections"].get(reason) == 1, stats(control)["rejections"]


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


def attach(file_id: str, file_type: int = 2, name: str = "a.png") -> dict[str, Any]:
    return {"file_type": file_type, "file_id": file_id, "file_name": name}


def _other_secret(policy: dict[str, str]) -> str:
    return policy["accessKeySecret"][::-1]


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


def http_put(session: requests.Session) -> PutTransport:
    def put(url: str, body: bytes, headers: dict[str, str]) -> Reply:
        response = session.put(url, data=body, headers=headers, timeout=10)
        return Reply(response.status_code, response.content, dict(response.headers))

    return put
