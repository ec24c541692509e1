"""Anthropic-dialect errors: status, body shape, and the SDK's exception classes."""

from __future__ import annotations

import anthropic
import pytest
import requests

from tests.anthropic.test_messages import client, user


def post(gateway: str, body: object, credential: str | None = None, raw: bytes | None = None):
    headers = {"x-api-key": credential} if credential else {}
    if raw is not None:
        return requests.post(gateway + "/v1/messages", data=raw, headers=headers, timeout=30)
    return requests.post(gateway + "/v1/messages", json=body, headers=headers, timeout=30)


def assert_error(response: requests.Response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["request_id"].startswith("req_")
    assert body["error"]["type"] == type_ and body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(("body", "field"), [
    ({"model": "m", "messages": user()}, "max_tokens"),
    ({"model": "m", "max_tokens": 10}, "messages"),
    ({"model": "m", "max_tokens": 10, "messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages[0].content[0].type"),
    ({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}, "messages[0].content[0].tool_use_id"),
    ({"model": "m", "max_tokens": "many", "messages": user()}, "max_tokens"),
])
def test_invalid_requests(gateway, sim, credential, body, field) -> None:
    error = assert_error(post(gateway, body, credential), 400, "invalid_request_error")
    assert field in error["message"]
    assert sim.stats()["sends"] == 0


@pytest.mark.parametrize("content", ["", []])
def test_a_message_without_content_is_400_not_502(gateway, sim, credential, content) -> None:
    # Found by tests/system/test_fuzz.py: the upstream refuses an empty turn, which was a 502.
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": content}]}
    assert_error(post(gateway, body, credential), 400, "invalid_request_error")
    assert sim.stats()["sends"] == 0


def test_malformed_json(gateway, credential) -> None:
    assert_error(post(gateway, None, credential, raw=b"{"), 400, "invalid_request_error")


def test_authentication(gateway, web_only, accounts) -> None:
    assert_error(post(gateway, {"model": "m", "max_tokens": 5, "messages": user()}), 401, "authentication_error")
    (expired,) = accounts(1, exp_seconds=-5)
    error = assert_error(post(gateway, {"model": "m", "max_tokens": 5, "messages": user()}, expired["credential"]),
                         401, "authentication_error")
    assert "expired" in error["message"]
    with pytest.raises(anthropic.AuthenticationError):
        client(gateway, "nonsense").messages.create(model="m", max_tokens=5, messages=user())


def test_no_credits(gateway, web_only, accounts) -> None:
    (account,) = accounts(1, credits=0)
    with pytest.raises(anthropic.RateLimitError):
        client(gateway, account["credential"]).messages.create(model="m", max_tokens=5, messages=user())


def test_upstream_failures(gateway, sim, upstream, credential) -> None:
    sim.fault(upstream.send_fault, "http_500")
    assert_error(post(gateway, {"model": "m", "max_tokens": 5, "messages": user()}, credential), 502, "api_error")
    sim.fault(upstream.send_fault, "drop")
    assert_error(post(gateway, {"model": "m", "max_tokens": 5, "messages": user()}, credential), 503, "overloaded_error")


def test_unknown_route_in_anthropic_shape(gateway, credential) -> None:
    response = requests.get(gateway + "/v1/nope", headers={"x-api-key": credential, "anthropic-version": "2023-06-01"}, timeout=5)
    assert_error(response, 404, "not_found_error")
    response = requests.get(gateway + "/v1/models/nope", headers={"anthropic-version": "2023-06-01"}, timeout=5)
    assert_error(response, 404, "not_found_error")


def test_error_after_stream_began_is_an_error_event(gateway, sim, upstream, credential) -> None:
    inject = upstream.fail_mid_answer(sim, {"length": 2000, "cps": 400})
    with pytest.raises(anthropic.APIStatusError) as info:
        with client(gateway, credential).messages.stream(model="m", max_tokens=4000, messages=user()) as stream:
            for index, _ in enumerate(stream.text_stream):
                if index == 1:
                    inject()
    assert "MiniMax" in str(info.value)
    assert sim.wait_idle(10)["chats_alive"] == 0
