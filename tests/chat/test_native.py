"""The native path (gateway/chat/native.py) end to end on the MiniMax Code surface: what goes
upstream as it is (images, thinking, effort, tools), the page's limits refused up front, the
upstream's errors per dialect, and what only the web surfaces have refused with a clear 400.

Runs on the code surface only; the suites of each dialect cover the common behaviour on all
three surfaces.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

import anthropic
import openai
import pytest
import requests
from google.genai import types

from tests.gemini.test_generate import client as gemini_client
from tests.openai.test_chat_completions import ask
from tests.openai.test_chat_completions import client as openai_client
from tests.openai.test_media import image_host, png  # noqa: F401  (a fixture)
from tests.openai.test_tools import last_body

pytestmark = pytest.mark.parametrize("surface", ["code"], indirect=True)


def anthropic_client(gateway: str, credential: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway, api_key=credential, max_retries=0)


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_message(*urls: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         *({"type": "image_url", "image_url": {"url": u}} for u in urls)]}]


def test_images_go_upstream_as_base64_blocks(gateway_factory, sim, credential, image_host) -> None:  # noqa: F811
    api = openai_client(gateway_factory(GATEWAY_FETCH_ALLOW_HOSTS="127.0.0.1"), credential)
    api.chat.completions.create(model="m", messages=image_message(data_url(png(shade=3)), f"{image_host}/cat.png"))
    blocks = last_body(sim)["messages"][0]["content"]
    assert [b["type"] for b in blocks] == ["text", "image", "image"]
    digests = [b["source"]["data"].split("sha256 ")[1].rstrip(">") for b in blocks[1:]]
    expected = [hashlib.sha256(base64.b64encode(png(shade=s))).hexdigest() for s in (3, 9)]
    assert digests == expected  # the remote one fetched (SSRF guard allowing it) and inlined
    assert sim.code_stats()["rejections"] == {}


@pytest.mark.parametrize(("content", "words"), [
    ([data_url(png(shade=s)) for s in range(5)], "at most 4 images"),
    ([data_url(b"%PDF-1.4 tiny", "application/pdf")], "not application/pdf"),
])
def test_what_the_upstream_refuses_is_a_400_before_any_call(gateway, sim, credential, content, words) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client(gateway, credential).chat.completions.create(model="m", messages=image_message(*content))
    assert words in refused.value.message
    assert sim.code_stats().get("messages_calls", 0) == 0


@pytest.mark.parametrize(("knob", "model", "thinking", "effort"), [
    ({"reasoning_effort": "high"}, "MiniMax-M3", {"type": "adaptive"}, "high"),
    ({"reasoning_effort": "none"}, "MiniMax-M3", {"type": "disabled"}, None),
    ({"reasoning_effort": "none"}, "MiniMax-M3.1-Flash-Preview", {"type": "adaptive"}, None),
    ({}, "MiniMax-M2", None, None),  # an older name: its alias, which always thinks
])
def test_openai_reasoning_effort_reaches_the_upstream(gateway, sim, credential, knob, model, thinking, effort) -> None:
    openai_client(gateway, credential).chat.completions.create(model=model, messages=ask(), **knob)
    body = last_body(sim)
    assert body["model"] == ("MiniMax-M2.7" if model == "MiniMax-M2" else model)
    assert body.get("thinking") == thinking
    assert (body.get("output_config") or {}).get("effort") == effort


def test_anthropic_effort_cache_control_and_extras(gateway, sim, credential) -> None:
    api = anthropic_client(gateway, credential)
    api.messages.create(
        model="MiniMax-M3", max_tokens=300, messages=[{"role": "user", "content": "hi"}],
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        thinking={"type": "enabled", "budget_tokens": 4000}, metadata={"user_id": "u-1"},
        extra_headers={"anthropic-beta": "context-management-2025-06-27"},
        extra_body={"context_management": {"edits": []}})
    body = last_body(sim)
    assert body["system"] == [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    assert body["thinking"] == {"type": "adaptive"} and body["output_config"] == {"effort": "medium"}
    assert "metadata" not in body and "context_management" not in body  # not taken upstream: dropped
    entry = next(e for e in reversed(sim.code_log()) if e["path"].endswith("/messages"))
    assert "anthropic-beta" not in entry["headers"]


def test_gemini_thinking_budget_zero_is_no_thinking(gateway, sim, credential) -> None:
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=0))
    api = gemini_client(gateway, credential)  # held: the SDK closes a client it collects
    api.models.generate_content(model="MiniMax-M3", contents="hi", config=config)
    assert last_body(sim)["thinking"] == {"type": "disabled"}


def test_usage_is_the_upstreams_own(gateway, sim, credential) -> None:
    sim.script([{"text": "abc " * 50, "thinking": "ponder " * 20, "cps": 4000}])
    reply = openai_client(gateway, credential).chat.completions.create(model="MiniMax-M3", messages=ask())
    counted = requests.post(f"{gateway}/v1/messages/count_tokens", headers={"x-api-key": credential}, timeout=10,
                            json={"model": "MiniMax-M3", "messages": [{"role": "user", "content": "Hello there"}]})
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
    assert sim.code_stats()["count_tokens_calls"] == 1  # the upstream's count, not an estimate
    assert reply.usage.completion_tokens_details.reasoning_tokens > 0
    assert reply.usage.completion_tokens > reply.usage.completion_tokens_details.reasoning_tokens


def test_signed_thinking_comes_back_to_anthropic_clients_streamed(gateway, sim, credential) -> None:
    sim.script([{"text": "Yes.", "thinking": "Let me think.", "cps": 4000}])
    with anthropic_client(gateway, credential).messages.stream(
            model="MiniMax-M3", max_tokens=500, messages=[{"role": "user", "content": "ok?"}],
            thinking={"type": "adaptive"}) as stream:
        events = [event.type for event in stream]
        reply = stream.get_final_message()
    thinking = reply.content[0]
    assert (thinking.type, thinking.thinking) == ("thinking", "Let me think.") and len(thinking.signature) > 20
    assert "ping" in events or "content_block_start" in events
    # Elsewhere a signature is never text: OpenAI shows the reasoning only.
    sim.script([{"text": "Yes.", "thinking": "Let me think.", "cps": 4000}])
    message = openai_client(gateway, credential).chat.completions.create(model="MiniMax-M3", messages=ask()).choices[0].message
    assert message.content == "Yes." and thinking.signature not in json.dumps(message.model_dump())


@pytest.mark.parametrize("service", ["speech", "search"])
def test_what_only_the_web_app_has_is_a_clear_400(gateway, sim, credential, service) -> None:
    api = openai_client(gateway, credential)
    with pytest.raises(openai.BadRequestError) as refused:
        if service == "speech":
            api.audio.speech.create(model="tts-1", voice="alloy", input="hello")
        else:
            api.chat.completions.create(model="MiniMax-M3-search", messages=ask(), extra_body={"web_search_options": {}})
    assert "needs a MiniMax Agent web account" in refused.value.message


def test_rate_limit_is_429_with_retry_after_in_each_dialect(gateway, sim, credential) -> None:
    sim.fault("code_messages", "http_429", count=3, seconds=7)
    openai_reply = requests.post(f"{gateway}/v1/chat/completions", headers={"Authorization": f"Bearer {credential}"},
                                 json={"model": "m", "messages": ask()}, timeout=30)
    assert openai_reply.status_code == 429 and openai_reply.headers["Retry-After"] == "7"
    assert openai_reply.json()["error"]["code"] == "rate_limit_exceeded"
    time.sleep(0.1)
    other = requests.post(f"{gateway}/v1/messages", headers={"x-api-key": credential}, timeout=30,
                          json={"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]})
    # The account now sits out its Retry-After: the next request waits for it or is told so.
    assert other.status_code == 429 and other.json()["error"]["type"] == "rate_limit_error"


def test_overloaded_is_retried_with_backoff(gateway, sim, credential) -> None:
    sim.fault("code_messages", "http_529", count=2)
    sim.script([{"text": "made it", "cps": 4000}])
    reply = openai_client(gateway, credential).chat.completions.create(model="m", messages=ask())
    assert reply.choices[0].message.content == "made it"
    assert sim.code_stats()["messages_calls"] == 3


def test_quota_exhausted_moves_to_another_account_and_skips_the_first(gateway, sim, accounts) -> None:
    spent, fresh = accounts(2)
    sim.patch_code_account(spent["name"], quota_left=0)
    pool = f"{spent['credential']},{fresh['credential']}"
    answered = set()
    for _ in range(3):
        openai_client(gateway, pool).chat.completions.create(model="m", messages=ask())
        answered.add(sim.log()[-1]["account"])
    assert answered == {fresh["real_user_id"]}
    assert sim.code_stats()["accounts"][spent["name"]]["messages"] <= 1  # tried once, then skipped
    with pytest.raises(openai.RateLimitError) as alone:
        openai_client(gateway, spent["credential"]).chat.completions.create(model="m", messages=ask())
    assert alone.value.code == "insufficient_quota"


def test_a_revoked_client_token_is_401_in_each_dialect(gateway, sim, accounts) -> None:
    account = accounts(1)[0]
    sim.patch_code_account(account["name"], expire_access=True)
    with pytest.raises(openai.AuthenticationError):
        openai_client(gateway, account["credential"]).chat.completions.create(model="m", messages=ask())
    with pytest.raises(anthropic.AuthenticationError):
        anthropic_client(gateway, account["credential"]).messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}])


def test_one_generation_per_account_at_a_time(gateway, sim, credential) -> None:
    sim.script([{"text": f"answer {i}", "cps": 400} for i in range(8)])
    api = openai_client(gateway, credential)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: api.chat.completions.create(model="m", messages=ask()), range(8)))
    assert sorted(r.choices[0].message.content for r in replies) == sorted(f"answer {i}" for i in range(8))
    assert sim.code_stats()["max_concurrent"] == 1


def test_every_turn_carries_the_whole_history_and_nothing_is_kept(gateway_factory, sim, credential) -> None:
    api = openai_client(gateway_factory(GATEWAY_CONVERSATION_TTL="600"), credential)
    messages: list[dict] = [{"role": "system", "content": "Be terse."}]
    for turn in range(1, 4):
        sim.script([{"text": f"answer {turn}", "cps": 4000}])
        messages.append({"role": "user", "content": f"question {turn}"})
        answer = api.chat.completions.create(model="m", messages=messages).choices[0].message.content
        messages.append({"role": "assistant", "content": answer})
        body = last_body(sim)
        texts = [block["text"] for m in body["messages"] for block in m["content"] if block["type"] == "text"]
        assert texts == [m["content"] for m in messages[1:-1]] and body["system"][0]["text"] == "Be terse."
    assert sim.wait_idle(5)["chats_alive"] == 0 and sim.stats().get("sends", 0) == 0  # no web chat at all


def test_a_hosted_search_tool_the_client_only_offers_is_ignored_where_no_surface_searches(gateway, sim,
                                                                                           credential) -> None:
    sim.script([{"text": "Answered without searching.", "cps": 4000}])
    reply = requests.post(f"{gateway}/v1/responses", headers={"Authorization": f"Bearer {credential}"}, timeout=30,
                          json={"model": "MiniMax-M3", "input": "news?", "tools": [{"type": "web_search"}]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["output"][-1]["content"][0]["text"] == "Answered without searching."
    assert "tools" not in last_body(sim)  # nothing of the hosted tool goes upstream
