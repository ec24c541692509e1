"""Gemini dialect end to end: google-genai → gunicorn+gevent → the simulator."""

from __future__ import annotations

import json

import pytest
import requests
from google import genai
from google.genai import types


def client(gateway: str, credential: str, version: str | None = None) -> genai.Client:
    """A google-genai client on the gateway. Hold it in a variable while using it: the
    SDK closes a collected client's connection pool, even under a call in progress."""
    options = types.HttpOptions(base_url=gateway, api_version=version) if version else types.HttpOptions(base_url=gateway)
    return genai.Client(api_key=credential, http_options=options)


@pytest.mark.parametrize("version", [None, "v1beta"])
def test_generate_content(gateway, sim, credential, version) -> None:
    sim.script([{"text": "Gemini says héllo — 你好", "cps": 2000}])
    api = client(gateway, credential, version)
    reply = api.models.generate_content(model="gemini-2.5-flash", contents="Hi!")
    assert reply.text == sim.log()[-1]["answer"]
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    usage = reply.usage_metadata
    assert usage.prompt_token_count > 0 and usage.candidates_token_count > 0
    # Gemini counts thoughts apart: the total is prompt + candidates + thoughts.
    assert usage.total_token_count == (usage.prompt_token_count + usage.candidates_token_count
                                       + (usage.thoughts_token_count or 0))
    assert reply.model_version == "gemini-2.5-flash"


@pytest.mark.parametrize("version", [None, "v1beta"])
def test_stream_generate_content(gateway, sim, credential, version) -> None:
    sim.script([{"length": 2000, "cps": 3000}])
    api = client(gateway, credential, version)
    chunks = list(api.models.generate_content_stream(
        model="models/gemini-2.5-pro", contents="Tell me a story"))
    assert "".join(c.text or "" for c in chunks) == sim.log()[-1]["answer"]
    assert len(chunks) > 2
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count > 0


def test_thoughts_when_included(gateway, sim, credential) -> None:
    sim.script([{"thinking": "Pondering.", "text": "Done.", "cps": 1000}] * 2)
    api = client(gateway, credential, "v1beta")
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    reply = api.models.generate_content(model="gemini-2.5-pro", contents="q", config=config)
    parts = reply.candidates[0].content.parts
    assert [(p.thought, p.text) for p in parts] == [(True, "Pondering."), (None, "Done.")]
    assert reply.usage_metadata.thoughts_token_count > 0
    plain = api.models.generate_content(model="gemini-2.5-pro", contents="q")
    assert [p.text for p in plain.candidates[0].content.parts] == ["Done."]


def test_multi_turn_and_system_instruction(gateway, sim, upstream, credential) -> None:
    contents = [
        types.Content(role="user", parts=[types.Part(text="I live in Oslo.")]),
        types.Content(role="model", parts=[types.Part(text="Nice city.")]),
        types.Content(role="user", parts=[types.Part(text="Where do I live?")]),
    ]
    config = types.GenerateContentConfig(system_instruction="Answer in one word.", stop_sequences=["zz"],
                                         temperature=0.1)
    api = client(gateway, credential)
    api.models.generate_content(model="gemini-2.5-flash", contents=contents, config=config)
    prompt = upstream.sent_text(sim)
    assert prompt.index("Answer in one word.") < prompt.index("I live in Oslo.") < prompt.index("Nice city.") < prompt.index("Where do I live?")


def test_snake_case_request_accepted(gateway, sim, upstream, credential) -> None:
    sim.script([{"text": "a b STOP c", "cps": 1000}])
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "system_instruction": {"parts": [{"text": "SYS"}]},
            "generation_config": {"stop_sequences": ["STOP"], "max_output_tokens": 50}}
    reply = requests.post(gateway + "/v1beta/models/gemini-2.5-flash:generateContent",
                          headers={"x-goog-api-key": credential}, json=body, timeout=30).json()
    assert reply["candidates"][0]["content"]["parts"][0]["text"] == "a b "
    assert "SYS" in upstream.sent_text(sim)


def test_key_query_and_bearer_accepted(gateway, sim, credential) -> None:
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    url = gateway + "/v1beta/models/gemini-2.5-flash:generateContent"
    assert requests.post(url, params={"key": credential}, json=body, timeout=30).status_code == 200
    assert requests.post(url, headers={"Authorization": f"Bearer {credential}"}, json=body, timeout=30).status_code == 200


def test_max_output_tokens(gateway, sim, upstream, credential) -> None:
    sim.script([{"text": "z" * 400, "cps": 4000}])
    config = types.GenerateContentConfig(max_output_tokens=4)
    api = client(gateway, credential)
    reply = api.models.generate_content(model="g", contents="q", config=config)
    assert reply.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    if upstream.surface == "code":  # the limit goes upstream, where thinking (always on) spends it first
        assert sim.code_log()[-1]["body"]["max_tokens"] == 4
    else:
        assert reply.text == "z" * 16


def test_count_tokens(gateway, credential) -> None:
    api = client(gateway, credential, "v1beta")
    small = api.models.count_tokens(model="gemini-2.5-flash", contents="hi")
    large = api.models.count_tokens(model="gemini-2.5-flash", contents="hello world " * 50)
    assert 0 < small.total_tokens < large.total_tokens


def test_json_mode_with_schema(gateway, sim, upstream, credential) -> None:
    sim.script([{"text": "Sure! {\"reasoning\": \"simple\", \"next_speaker\": \"user\"} Hope it helps.", "cps": 2000}])
    schema = {"type": "object", "properties": {"reasoning": {"type": "string"}, "next_speaker": {"type": "string"}}}
    config = types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=schema)
    api = client(gateway, credential, "v1beta")
    reply = api.models.generate_content(model="gemini-2.5-flash", contents="who next?", config=config)
    assert json.loads(reply.text) == {"reasoning": "simple", "next_speaker": "user"}
    assert "next_speaker" in upstream.sent_text(sim)


def test_json_mode_without_json_fails_clearly(gateway, sim, credential) -> None:
    sim.script([{"text": "I cannot answer in JSON, sorry.", "cps": 2000}])
    body = {"contents": [{"parts": [{"text": "q"}]}], "generationConfig": {"responseMimeType": "application/json"}}
    response = requests.post(gateway + "/v1beta/models/g:generateContent", headers={"x-goog-api-key": credential},
                             json=body, timeout=30)
    assert response.status_code == 502
    assert response.json()["error"]["status"] == "INTERNAL" and "JSON" in response.json()["error"]["message"]


def test_sse_framing_byte_level(gateway, sim, credential) -> None:
    sim.script([{"thinking": "t\u2028t", "text": "para\u2029graph and line\u2028sep", "cps": 600}])
    body = {"contents": [{"parts": [{"text": "q"}]}], "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}
    response = requests.post(gateway + "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
                             headers={"x-goog-api-key": credential}, json=body, timeout=30)
    raw = response.content
    assert raw.isascii()
    assert raw.endswith(b"\n\n")
    frames = raw.decode().split("\n\n")[:-1]
    objects = []
    for frame in frames:
        assert frame.startswith("data: ") and "\n" not in frame, frame
        objects.append(json.loads(frame[6:]))
    assert all("error" not in o for o in objects)
    text = "".join(p["text"] for o in objects for p in o["candidates"][0]["content"]["parts"] if not p.get("thought"))
    thoughts = "".join(p["text"] for o in objects for p in o["candidates"][0]["content"]["parts"] if p.get("thought"))
    assert (text, thoughts) == ("para\u2029graph and line\u2028sep", "t\u2028t")
    assert objects[-1]["candidates"][0]["finishReason"] == "STOP" and "usageMetadata" in objects[-1]
    assert all("finishReason" not in o["candidates"][0] for o in objects[:-1])


def test_stream_without_alt_is_one_json_array(gateway, sim, credential) -> None:
    sim.script([{"text": "array form", "cps": 50}])
    response = requests.post(gateway + "/v1beta/models/g:streamGenerateContent",
                             headers={"x-goog-api-key": credential},
                             json={"contents": [{"parts": [{"text": "q"}]}]}, timeout=30)
    items = response.json()
    assert isinstance(items, list) and len(items) > 1
    assert "".join(i["candidates"][0]["content"]["parts"][0]["text"] for i in items) == "array form"


def test_models(gateway, upstream, credential) -> None:
    api = client(gateway, credential, "v1beta")
    names = [m.name for m in api.models.list()]
    assert names == ["models/MiniMax-M3.1-Flash-Preview", "models/MiniMax-M3", "models/MiniMax-M2.7-highspeed",
                     "models/MiniMax-M2.7"]
    # MiniMax's own window on the code surface; the prompt limit the gateway folds to elsewhere.
    assert api.models.get(model="MiniMax-M3").input_token_limit == (512000 if upstream.surface == "code" else 50_000)
    assert api.models.get(model="gemini-2.5-pro").name == "models/gemini-2.5-pro"
    api = client(gateway, credential)
    assert api.models.get(model="gemini-2.5-flash").name == "models/gemini-2.5-flash"
