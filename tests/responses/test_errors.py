"""Responses-dialect errors over HTTP: status and ``{"error": {message, type, param, code}}``
shape, a prompt over the limit as context_length_exceeded, a failure mid-stream as
``response.failed``; and the model list in Codex's catalogue shape when Codex asks."""

from __future__ import annotations

import json

import requests

from tests.openai.test_errors import assert_openai_error
from tests.responses.test_responses import validated

URL = "/v1/responses"


def post(gateway: str, body: object, credential: str | None = None, **options: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    return requests.post(gateway + URL, json=body, headers=headers, timeout=30, **options)


def test_bad_input_is_400_naming_the_field(gateway, sim, credential) -> None:
    body = {"model": "MiniMax-M2", "input": [{"type": "function_call_output", "output": "x"}]}
    assert_openai_error(post(gateway, body, credential), 400, "invalid_request_error", param="input[0].call_id")
    assert_openai_error(post(gateway, {"input": "hi"}, credential), 400, "invalid_request_error", param="model")
    assert sim.log() == []


def test_missing_credentials_and_unknown_ids(gateway, sim, credential) -> None:
    assert_openai_error(post(gateway, {"model": "MiniMax-M2", "input": "hi"}), 401, "invalid_request_error",
                        "invalid_api_key")
    headers = {"Authorization": f"Bearer {credential}"}
    for method in ("GET", "DELETE"):
        response = requests.request(method, gateway + URL + "/resp_unknown", headers=headers, timeout=10)
        assert_openai_error(response, 404, "invalid_request_error", "not_found")
    response = post(gateway, {"model": "MiniMax-M2", "input": "hi", "previous_response_id": "resp_unknown"}, credential)
    assert_openai_error(response, 404, "invalid_request_error", "not_found", "previous_response_id")
    assert sim.log() == []


def test_prompt_over_the_limit_is_context_length_exceeded(gateway_factory, sim, credential, web_only) -> None:
    # The web surfaces' prompt limit (the folded prompt's length); the code surface folds
    # nothing and has no such limit (the gateway maps no upstream over-long-context answer).
    gateway = gateway_factory(GATEWAY_PROMPT_MAX_CHARS="300")
    response = post(gateway, {"model": "MiniMax-M2", "input": "x" * 400}, credential)
    assert_openai_error(response, 400, "invalid_request_error", "context_length_exceeded")


def test_no_credits_is_429_insufficient_quota(gateway, sim, upstream, accounts) -> None:
    # The code surface's equivalent of a web account without credits: its quota used up.
    (account,) = accounts(1, quota_left=0) if upstream.surface == "code" else accounts(1, credits=0)
    response = post(gateway, {"model": "MiniMax-M2", "input": "hi", "stream": True}, account["credential"])
    assert_openai_error(response, 429, "insufficient_quota", "insufficient_quota")


def test_failure_after_the_stream_began_is_response_failed(gateway, sim, upstream, credential) -> None:
    inject = upstream.fail_mid_answer(sim, {"length": 20_000, "cps": 400})
    response = post(gateway, {"model": "MiniMax-M2", "input": "hi", "stream": True}, credential, stream=True)
    assert response.status_code == 200
    events = []
    for line in response.iter_lines():
        if line.startswith(b"data: "):
            events.append(validated(json.loads(line[6:])))
            if events[-1].type == "response.output_text.delta" and len(events) == 5:
                inject()  # once the answer flows
    assert events[-1].type == "response.failed" and events[-1].response.error.code == "server_error"
    assert not any(e.type in ("response.completed", "response.incomplete") for e in events)
    assert sim.wait_idle(10)["chats_alive"] == 0


def test_max_output_tokens_cut_is_incomplete(gateway, sim, credential) -> None:
    sim.script([{"text": "word " * 200, "cps": 5000}])
    response = post(gateway, {"model": "MiniMax-M2", "input": "hi", "max_output_tokens": 5}, credential)
    body = response.json()
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}


def test_codex_gets_its_model_catalogue(gateway, upstream, credential) -> None:
    headers = {"Authorization": f"Bearer {credential}"}
    catalogue = requests.get(gateway + "/v1/models", params={"client_version": "0.171.0"}, headers=headers,
                             timeout=10).json()
    assert [m["slug"] for m in catalogue["models"]] == ["MiniMax-M3.1-Flash-Preview", "MiniMax-M3", "MiniMax-M2.7-highspeed", "MiniMax-M2.7"]
    assert catalogue["models"][0]["apply_patch_tool_type"] == "freeform"
    # The code surface's catalogue has each model's own window; else the prompt limit's tokens.
    assert catalogue["models"][0]["context_window"] == (512_000 if upstream.surface == "code" else 200_000 // 4)
    plain = requests.get(gateway + "/v1/models", headers=headers, timeout=10).json()
    assert plain["object"] == "list" and [m["id"] for m in plain["data"]] == [m["slug"] for m in catalogue["models"]]
