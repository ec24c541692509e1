"""OpenAI dialect end to end: the official SDK → gunicorn+gevent → the strict simulator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import openai
import pytest
import requests

T = TypeVar("T")


def client(gateway: str, credential: str, **options: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway + "/v1", api_key=credential, max_retries=0, **options)


def concurrently(call: Callable[[int], T], count: int) -> list[T]:
    """``call(0..count-1)`` all at once; every result, or the first error raised."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count), timeout=60))


def ask(text: str = "Hello there") -> list[dict]:
    return [{"role": "user", "content": text}]


def test_non_stream_answer_is_the_generated_text(gateway, sim, credential) -> None:
    sim.script([{"text": "Bonjour — 你好, world.\nSecond line.", "cps": 2000}])
    reply = client(gateway, credential).chat.completions.create(model="MiniMax-M2", messages=ask())
    generated = sim.log()[-1]
    assert reply.choices[0].message.content == generated["answer"]
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "MiniMax-M2"
    assert generated["prompt"] == "Hello there"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_stream_reassembles_letter_for_letter(gateway, sim, upstream, credential) -> None:
    sim.script([{"length": 3000, "cps": 3000}])
    stream = client(gateway, credential).chat.completions.create(
        model="gpt-4o", messages=ask(), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == sim.log()[-1]["answer"]
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 2
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1
    # Unknown names map to the default; the session surface then to its live catalogue's
    # first, the matrix surface to the first name its model option takes, the code surface
    # to its catalogue's first.
    expected = {"matrix": "MiniMax-M2", "session": "MiniMax-M3", "code": "MiniMax-M3.1-Flash-Preview"}
    assert sim.log()[-1]["model"] == expected[upstream.surface]


def test_reasoning_streams_and_is_returned(gateway, sim, credential) -> None:
    sim.script([{"thinking": "Let me think… step 1.", "text": "42", "cps": 500}] * 2)
    api = client(gateway, credential)
    reply = api.chat.completions.create(model="MiniMax-M2", messages=ask())
    message = reply.choices[0].message
    assert message.content == "42"
    assert message.model_extra["reasoning_content"] == "Let me think… step 1."
    chunks = list(api.chat.completions.create(model="MiniMax-M2", messages=ask(), stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert reasoning == "Let me think… step 1."
    first_content = next(i for i, d in enumerate(deltas) if d.content)
    last_reasoning = max(i for i, d in enumerate(deltas) if (d.model_extra or {}).get("reasoning_content"))
    assert last_reasoning < first_content


def test_multi_turn_history_reaches_the_upstream(gateway, sim, upstream, credential) -> None:
    messages = [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Enchantée, Ada."},
        {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]},
    ]
    reply = client(gateway, credential).chat.completions.create(model="MiniMax-M2", messages=messages)
    prompt = upstream.sent_text(sim)
    for piece in ("Answer in French.", "My name is Ada.", "Enchantée, Ada.", "What is my name?"):
        assert piece in prompt
    assert prompt.index("My name is Ada.") < prompt.index("What is my name?")
    assert reply.choices[0].message.content == sim.log()[-1]["answer"]


def test_stop_sequence_and_token_limit(gateway, sim, upstream, credential) -> None:
    sim.script([{"text": "one two STOP three", "cps": 1000}, {"text": "x" * 400, "cps": 4000}])
    api = client(gateway, credential)
    cut = api.chat.completions.create(model="MiniMax-M2", messages=ask(), stop=["STOP"])
    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("one two ", "stop")
    short = api.chat.completions.create(model="MiniMax-M2", messages=ask(), max_completion_tokens=5)
    if upstream.surface == "code":  # the limit goes upstream, where thinking (always on) spends it first
        assert short.choices[0].finish_reason == "length" and sim.code_log()[-1]["body"]["max_tokens"] == 5
    else:
        assert (short.choices[0].message.content, short.choices[0].finish_reason) == ("x" * 20, "length")
    assert sim.wait_idle(5)["chats_alive"] == 0


def test_two_accounts_six_concurrent_streams(gateway, sim, accounts) -> None:
    pool = ",".join(a["credential"] for a in accounts(2))
    sim.set_default({"length": 300, "cps": 600})
    api = client(gateway, pool, timeout=60)

    def run(i: int) -> str:
        chunks = api.chat.completions.create(model="MiniMax-M2", messages=ask(f"q{i}"), stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    results = concurrently(run, 6)
    log = sim.log()
    assert sorted(results) == sorted(entry["answer"] for entry in log)
    assert len({entry["account"] for entry in log}) == 2
    stats = sim.wait_idle(10)
    assert stats["double_generation_attempts"] == 0
    assert stats["chats_alive"] == 0


def test_client_disconnect_stops_and_cleans_up(gateway, sim, credential) -> None:
    sim.script([{"length": 5000, "cps": 100}, {"text": "next", "cps": 1000}])
    response = requests.post(
        gateway + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {credential}"},
        json={"model": "MiniMax-M2", "messages": ask(), "stream": True},
        stream=True, timeout=10,
    )
    for line in response.iter_lines():
        if b'"content":"' in line and b'"content":""' not in line:
            break
    response.close()
    closed_at = time.monotonic()
    deadline = closed_at + 5
    # The upstream sees the turn stopped (the code surface: its stream closed) within a second.
    while (sim.stats()["chats_alive"] or not sim.log()[0]["stopped"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.stats()["chats_alive"] == 0
    assert time.monotonic() - closed_at < 1.0
    entry = sim.log()[0]
    assert entry["stopped"] and len(entry["delivered"]) < 5000
    # The account is free again at once: the next request is served, not queued.
    reply = client(gateway, credential).chat.completions.create(model="MiniMax-M2", messages=ask())
    assert reply.choices[0].message.content == "next"
    assert sim.stats()["double_generation_attempts"] == 0


def test_heartbeat_comments_while_waiting(gateway_factory, sim, credential) -> None:
    gateway = gateway_factory(GATEWAY_HEARTBEAT="0.5")
    sim.script([{"text": "late", "first_delay": 2.0}])
    response = requests.post(
        gateway + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {credential}"},
        json={"model": "MiniMax-M2", "messages": ask(), "stream": True},
        stream=True, timeout=10,
    )
    body = response.content.decode()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert body.count(": keep-alive\n\n") >= 2
    # (the text may come in pieces, after reasoning on a surface that always thinks)
    assert body.index(": keep-alive") < body.index('"content":"l')
    assert body.endswith("data: [DONE]\n\n")


def test_models(gateway) -> None:
    api = openai.OpenAI(base_url=gateway + "/v1", api_key="unused", max_retries=0)
    # Without a code account: today's models, with the web surfaces' window (the prompt limit).
    assert [m.id for m in api.models.list()] == [
        "MiniMax-M3.1-Flash-Preview", "MiniMax-M3", "MiniMax-M2.7-highspeed", "MiniMax-M2.7"]
    assert api.models.retrieve("MiniMax-M2.7").owned_by == "minimax"
    assert api.models.retrieve("MiniMax-M3").model_extra == {"context_window": 200_000 // 4}
    with pytest.raises(openai.NotFoundError) as info:
        api.models.retrieve("nope")
    assert info.value.code == "model_not_found"


def test_ping_and_healthz(gateway) -> None:
    assert requests.get(gateway + "/ping", timeout=5).text == "pong"
    assert requests.get(gateway + "/healthz", timeout=5).json()["status"] == "ok"


@pytest.mark.slow
def test_long_answer_with_a_pause_arrives_whole(gateway, sim, credential) -> None:
    text = ("Long answer sentence number {}. " * 1000).format(*range(1000))[:4800]
    sim.script([{"text": text, "cps": 96, "pauses": [{"at": 2400, "seconds": 10}]}])
    started = time.monotonic()
    stream = client(gateway, credential, timeout=120).chat.completions.create(
        model="MiniMax-M2", messages=ask(), stream=True
    )
    received = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert time.monotonic() - started >= 60
    assert received == text == sim.log()[-1]["answer"]
    entry = sim.log()[-1]
    duration = entry["t_finish"] - entry["t_send"]
    assert entry["polls"] <= 5 * duration + 2


def test_json_response_formats(gateway, sim, upstream, credential) -> None:
    sim.script([
        {"text": "```json\n{\"ok\": true}\n```", "cps": 2000},
        {"text": "Result: [1, 2, 3] as asked", "cps": 2000},
        {"text": "no json here", "cps": 2000},
    ])
    api = client(gateway, credential)
    as_object = api.chat.completions.create(model="m", messages=ask(), response_format={"type": "json_object"})
    assert json.loads(as_object.choices[0].message.content) == {"ok": True}
    schema = {"name": "numbers", "schema": {"type": "array", "items": {"type": "integer"}}}
    chunks = api.chat.completions.create(model="m", messages=ask(), stream=True,
                                         response_format={"type": "json_schema", "json_schema": schema})
    assert json.loads("".join(c.choices[0].delta.content or "" for c in chunks if c.choices)) == [1, 2, 3]
    assert '"items": {"type": "integer"}' in upstream.sent_text(sim)
    with pytest.raises(openai.APIStatusError) as info:
        api.chat.completions.create(model="m", messages=ask(), response_format={"type": "json_object"})
    assert info.value.status_code == 502 and "JSON" in info.value.message


def test_stream_framing_byte_level(gateway, sim, credential) -> None:
    sim.script([{"thinking": "a\u2028b", "text": "line\u2028sep \u2029 para — 中文", "cps": 600}])
    response = requests.post(
        gateway + "/v1/chat/completions", headers={"Authorization": f"Bearer {credential}"},
        json={"model": "m", "messages": ask(), "stream": True, "stream_options": {"include_usage": True}},
        timeout=30,
    )
    assert "\u2028".encode() not in response.content and "\u2029".encode() not in response.content
    body = response.content.decode()
    assert body.endswith("data: [DONE]\n\n")
    frames = body.split("\n\n")[:-1]
    chunks = [json.loads(f[6:]) for f in frames[:-1] if not f.startswith(":")]
    assert all(f.startswith(("data: ", ": ")) and "\n" not in f for f in frames)
    assert all(c["object"] == "chat.completion.chunk" and "usage" in c for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in chunks if c["choices"])
    assert (text, reasoning) == ("line\u2028sep \u2029 para — 中文", "a\u2028b")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


def test_one_account_over_two_workers_never_generates_twice(gateway_factory, sim, credential) -> None:
    gateway = gateway_factory(GATEWAY_WORKERS="2")
    sim.set_default({"length": 200, "cps": 800})
    api = client(gateway, credential, timeout=60)
    concurrently(lambda i: api.chat.completions.create(model="m", messages=ask(f"w{i}")), 6)
    assert len(sim.log()) == 6
    stats = sim.wait_idle(10)
    assert stats["double_generation_attempts"] == 0 and stats["chats_alive"] == 0
