"""Gemini-dialect errors: Google's shape and status names, and the SDK's exceptions."""

from __future__ import annotations

import pytest
import requests
from google.genai import errors

from tests.gemini.test_generate import client

URL = "/v1beta/models/gemini-2.5-flash:generateContent"


def post(gateway: str, body: object, credential: str | None = None, raw: bytes | None = None):
    headers = {"x-goog-api-key": credential} if credential else {}
    if raw is not None:
        return requests.post(gateway + URL, data=raw, headers=headers, timeout=30)
    return requests.post(gateway + URL, json=body, headers=headers, timeout=30)


def assert_error(response: requests.Response, status: int, name: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (status, name) and error["message"]
    return error


@pytest.mark.parametrize(("body", "field"), [
    ({}, "contents"),
    ({"contents": []}, "contents"),
    ({"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}, "contents[0].role"),
    ({"contents": [{"parts": [{"unknown": 1}]}]}, "contents[0].parts[0]"),
    ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": "lots"}}, "generationConfig.maxOutputTokens"),
])
def test_invalid_arguments(gateway, sim, credential, body, field) -> None:
    error = assert_error(post(gateway, body, credential), 400, "INVALID_ARGUMENT")
    assert field in error["message"]
    assert sim.stats()["sends"] == 0


@pytest.mark.parametrize("parts", [[], [{"text": ""}]])
def test_a_turn_without_content_is_400_not_502(gateway, sim, credential, parts) -> None:
    # Found by tests/system/test_fuzz.py: the upstream refuses an empty turn, which was a 502.
    assert_error(post(gateway, {"contents": [{"parts": parts}]}, credential), 400, "INVALID_ARGUMENT")
    assert sim.stats()["sends"] == 0


def test_malformed_json(gateway, credential) -> None:
    assert_error(post(gateway, None, credential, raw=b"[1,"), 400, "INVALID_ARGUMENT")


def test_authentication(gateway, web_only, accounts) -> None:
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    assert_error(post(gateway, body), 401, "UNAUTHENTICATED")
    (expired,) = accounts(1, exp_seconds=-5)
    assert_error(post(gateway, body, expired["credential"]), 401, "UNAUTHENTICATED")


def test_sdk_raises_client_and_server_errors(gateway, sim, upstream, accounts) -> None:
    (empty,) = accounts(1, quota_left=0) if upstream.surface == "code" else accounts(1, credits=0)
    with pytest.raises(errors.ClientError) as info:
        api = client(gateway, empty["credential"])
        api.models.generate_content(model="g", contents="x")
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
    (live,) = accounts(1)
    sim.fault(upstream.send_fault, "http_500")
    with pytest.raises(errors.ServerError) as info:
        api = client(gateway, live["credential"])
        api.models.generate_content(model="g", contents="x")
    assert info.value.code == 502


def test_unknown_method_and_route(gateway, credential) -> None:
    response = requests.post(gateway + "/v1beta/models/g:embedEverything", headers={"x-goog-api-key": credential}, json={}, timeout=5)
    assert_error(response, 404, "NOT_FOUND")
    assert_error(requests.get(gateway + "/v1beta/nothing", timeout=5), 404, "NOT_FOUND")


@pytest.mark.parametrize("version", ["v1beta", "v1"])
@pytest.mark.parametrize("method", ["generateContent", "streamGenerateContent", "countTokens"])
def test_a_get_of_a_method_is_405_not_a_made_up_model(gateway, credential, version, method) -> None:
    # A model id never contains ':': models/{model}:{method} only takes a POST.
    response = requests.get(f"{gateway}/{version}/models/gemini-2.5-flash:{method}",
                            headers={"x-goog-api-key": credential}, timeout=5)
    assert_error(response, 405, "INVALID_ARGUMENT")
    assert method in response.json()["error"]["message"]


def test_a_get_of_an_unknown_method_is_404(gateway, credential) -> None:
    response = requests.get(gateway + "/v1beta/models/g:embedEverything",
                            headers={"x-goog-api-key": credential}, timeout=5)
    assert_error(response, 404, "NOT_FOUND")
    # The plain model is still there.
    plain = requests.get(gateway + "/v1beta/models/g", headers={"x-goog-api-key": credential}, timeout=5)
    assert plain.status_code == 200 and plain.json()["name"] == "models/g"


def test_error_after_stream_began(gateway, sim, upstream, credential) -> None:
    inject = upstream.fail_mid_answer(sim, {"length": 2000, "cps": 400})
    api = client(gateway, credential, "v1beta")
    with pytest.raises(errors.APIError):
        for index, _ in enumerate(api.models.generate_content_stream(model="g", contents="x")):
            if index == 1:
                inject()
    assert sim.wait_idle(10)["chats_alive"] == 0
