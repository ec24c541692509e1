"""Anthropic dialect end to end: the official SDKs → gunicorn+gevent → the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import anthropic
import pytest
import requests

from tests.servers import ARTIFACTS

#: The newest 1.x release: it sends x-api-key and anthropic-version 2023-06-01.
SDK_1X = "1.17.0"


def client(gateway: str, credential: str, **options: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway, api_key=credential, max_retries=0, **options)


def user(text: str = "Hello there") -> list[dict]:
    return [{"role": "user", "content": text}]


def sse_frames(body: str) -> list[tuple[str, dict]]:
    """Parse a Messages stream strictly: every frame is an event line plus one data line."""
    frames = []
    assert body.endswith("\n\n")
    for raw in body.split("\n\n")[:-1]:
        lines = raw.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), raw
        name, data = lines[0][7:], json.loads(lines[1][6:])
        assert data["type"] == name
        frames.append((name, data))
    return frames


def test_non_stream_message(gateway, sim, credential) -> None:
    sim.script([{"text": "Hi — 你好!", "cps": 2000}])
    reply = client(gateway, credential).messages.create(model="claude-opus-4-8[1m]", max_tokens=100, messages=user())
    assert reply.content[0].type == "text" and reply.content[0].text == sim.log()[-1]["answer"]
    assert len(reply.content) == 1
    assert (reply.stop_reason, reply.stop_sequence, reply.model) == ("end_turn", None, "claude-opus-4-8[1m]")
    assert reply.id.startswith("msg_") and reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    raw = requests.post(gateway + "/v1/messages?beta=true", headers={"x-api-key": credential},
                        json={"model": "m", "max_tokens": 10, "messages": user()}, timeout=30).json()
    assert "stop_sequence" in raw and raw["stop_sequence"] is None


def test_stream_helper_assembles_the_final_message(gateway, sim, credential) -> None:
    sim.script([{"length": 2000, "cps": 3000}])
    with client(gateway, credential).messages.stream(model="m", max_tokens=4000, messages=user()) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == final.content[0].text == sim.log()[-1]["answer"]
    assert len(pieces) > 2 and final.stop_reason == "end_turn"


def test_stream_event_sequence_byte_level(gateway, sim, credential) -> None:
    sim.script([{"thinking": "Hmm\u2028ok", "text": "Line\u2028sep and \u2029 para", "cps": 800}])
    response = requests.post(
        gateway + "/v1/messages?beta=true",
        headers={"Authorization": f"Bearer {credential}", "anthropic-version": "2026-10-21",
                 "anthropic-beta": "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"},
        json={"model": "m", "max_tokens": 1000, "messages": user(), "stream": True,
              "thinking": {"type": "enabled", "budget_tokens": 1024}},
        timeout=30,
    )
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert "\u2028".encode() not in response.content and "\u2029".encode() not in response.content
    frames = [f for f in sse_frames(response.text) if f[0] != "ping"]
    names = [name for name, _ in frames]
    assert names[0] == "message_start" and names.count("message_start") == 1
    assert names[-2:] == ["message_delta", "message_stop"]
    start = frames[0][1]["message"]
    assert start["content"] == [] and set(start["usage"]) >= {"input_tokens", "output_tokens"}
    blocks: dict[int, dict] = {}
    open_index = None
    for name, data in frames[1:-2]:
        if name == "content_block_start":
            assert open_index is None and data["index"] == len(blocks)
            open_index = data["index"]
            blocks[open_index] = {"block": data["content_block"], "deltas": []}
        elif name == "content_block_delta":
            assert data["index"] == open_index
            blocks[open_index]["deltas"].append(data["delta"])
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
    assert open_index is None
    assert [b["block"]["type"] for b in blocks.values()] == ["thinking", "text"]
    thinking = "".join(d.get("thinking", "") for d in blocks[0]["deltas"])
    assert thinking == "Hmm\u2028ok"
    assert blocks[0]["deltas"][-1]["type"] == "signature_delta"
    assert {d["type"] for d in blocks[1]["deltas"]} == {"text_delta"}
    assert "".join(d["text"] for d in blocks[1]["deltas"]) == "Line\u2028sep and \u2029 para"
    delta = frames[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] > 0


def test_thinking_only_when_enabled(gateway, sim, credential) -> None:
    sim.script([{"thinking": "Reasoning here.", "text": "Answer.", "cps": 1000}] * 2)
    api = client(gateway, credential)
    plain = api.messages.create(model="m", max_tokens=100, messages=user())
    assert [b.type for b in plain.content] == ["text"]
    thought = api.messages.create(model="m", max_tokens=2000, messages=user(),
                                  thinking={"type": "enabled", "budget_tokens": 1024})
    assert [b.type for b in thought.content] == ["thinking", "text"]
    assert thought.content[0].thinking == "Reasoning here." and thought.content[0].signature


def test_multi_turn_with_system_blocks_and_history(gateway, sim, upstream, credential) -> None:
    # Sent raw: the SDK refuses unknown keyword arguments, the API must tolerate them.
    body = {
        "model": "m", "max_tokens": 100,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "My cat is Tom."}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "old thoughts", "signature": "sig"},
                {"type": "text", "text": "Noted."}]},
            {"role": "user", "content": "Name my cat."},
        ],
        "metadata": {"user_id": "someone"}, "temperature": 0.2, "some_future_field": {"x": 1},
    }
    reply = requests.post(gateway + "/v1/messages", headers={"x-api-key": credential}, json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    prompt = upstream.sent_text(sim)
    assert prompt.index("You are terse.") < prompt.index("My cat is Tom.") < prompt.index("Noted.") < prompt.index("Name my cat.")
    # A folded prompt never holds earlier thinking; the code surface gets it back as the
    # client sent it, signed (whether the signature is MiniMax's is for MiniMax to judge).
    assert ("old thoughts" in prompt) is (upstream.surface == "code")


def test_stop_sequences_and_max_tokens(gateway, sim, upstream, credential) -> None:
    sim.script([{"text": "alpha beta ### gamma", "cps": 1000}, {"text": "y" * 400, "cps": 4000}])
    api = client(gateway, credential)
    cut = api.messages.create(model="m", max_tokens=100, messages=user(), stop_sequences=["###", "zzz"])
    assert (cut.content[0].text, cut.stop_reason, cut.stop_sequence) == ("alpha beta ", "stop_sequence", "###")
    short = api.messages.create(model="m", max_tokens=3, messages=user())
    if upstream.surface == "code":  # the limit goes upstream, where thinking (always on) spends it first
        assert short.stop_reason == "max_tokens" and sim.code_log()[-1]["body"]["max_tokens"] == 3
    else:
        assert (short.content[0].text, short.stop_reason) == ("y" * 12, "max_tokens")


def test_count_tokens(gateway, credential) -> None:
    api = client(gateway, credential)
    small = api.messages.count_tokens(model="m", messages=user("hi"))
    large = api.messages.count_tokens(model="m", messages=user("hello world " * 100), system="Be kind.")
    assert 0 < small.input_tokens < large.input_tokens


def test_json_output_config(gateway, sim, upstream, credential) -> None:
    sim.script([{"text": "Here you go:\n```json\n{\"city\": \"Paris\"}\n```", "cps": 2000}])
    body = {"model": "m", "max_tokens": 100, "messages": user("city?"),
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}
    reply = requests.post(gateway + "/v1/messages", headers={"x-api-key": credential}, json=body, timeout=30).json()
    assert json.loads(reply["content"][0]["text"]) == {"city": "Paris"}
    assert '"type": "object"' in upstream.sent_text(sim)


def test_models_in_anthropic_shape(gateway, credential) -> None:
    page = client(gateway, credential).models.list()
    assert [m.id for m in page.data] == ["MiniMax-M3.1-Flash-Preview", "MiniMax-M3", "MiniMax-M2.7-highspeed",
                                         "MiniMax-M2.7"]
    assert page.data[0].type == "model" and page.data[0].display_name == "M3.1-Flash-Preview"


def test_ping_while_waiting(gateway_factory, sim, credential) -> None:
    gateway = gateway_factory(GATEWAY_HEARTBEAT="0.5")
    sim.script([{"text": "late", "first_delay": 2.0}])
    response = requests.post(gateway + "/v1/messages", headers={"x-api-key": credential},
                             json={"model": "m", "max_tokens": 1000, "messages": user(), "stream": True}, timeout=30)
    names = [name for name, _ in sse_frames(response.text)]
    first_block = names.index("content_block_start")
    assert names[:first_block].count("ping") >= 3


@pytest.fixture(scope="session")
def sdk_1x() -> Path:
    """anthropic 1.x installed apart, for a run in a subprocess."""
    target = ARTIFACTS / f"anthropic-{SDK_1X}"
    if not (target / "anthropic").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
                        f"anthropic=={SDK_1X}"], check=True)
    return target


def test_sdk_1x_with_x_api_key_and_2023_version(gateway, sim, credential, sdk_1x) -> None:
    sim.script([{"text": "old sdk ok", "cps": 1000}, {"text": "streamed too", "cps": 1000}])
    script = textwrap.dedent("""
        import json, sys, anthropic
        client = anthropic.Anthropic(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
        raw = client.messages.with_raw_response.create(
            model="m", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
        headers = raw.http_request.headers
        with client.messages.stream(model="m", max_tokens=50,
                                    messages=[{"role": "user", "content": "hi"}]) as stream:
            streamed = stream.get_final_message().content[0].text
        print(json.dumps({"version": anthropic.__version__, "text": raw.parse().content[0].text,
                          "streamed": streamed, "x_api_key": "x-api-key" in headers,
                          "authorization": "authorization" in headers,
                          "anthropic_version": headers.get("anthropic-version")}))
    """)
    env = {**os.environ, "PYTHONPATH": str(sdk_1x)}
    run = subprocess.run([sys.executable, "-c", script, gateway, credential], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["version"] == SDK_1X
    assert result["x_api_key"] and not result["authorization"]
    assert result["anthropic_version"] == "2023-06-01"
    assert (result["text"], result["streamed"]) == ("old sdk ok", "streamed too")


def test_sdk_2x_sends_bearer_and_new_version(gateway, sim, credential) -> None:
    raw = client(gateway, credential).messages.with_raw_response.create(model="m", max_tokens=20, messages=user())
    headers = raw.http_request.headers
    assert headers["authorization"].startswith("Bearer ") and "x-api-key" not in headers
    assert headers["anthropic-version"] == "2026-10-21"
    assert raw.parse().content[0].text == sim.log()[-1]["answer"]
