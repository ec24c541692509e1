"""Hostile input end to end in the Gemini dialect: a 4xx in its shape, no crash, no leak.

Issue 12, part 4: the cases of ``tests/openai/test_hostile.py`` against
``/v1beta/models/{model}:generateContent`` and ``:streamGenerateContent``, with the key
in ``x-goog-api-key`` (or ``?key=``). Each refusal must be
``{"error": {"code", "message", "status"}}`` and its message must name the problem.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import requests

from tests import hostile
from tests.conftest import SURFACES
from tests.hostile import assert_refused, raw_exchange
from tests.simulator.control import SimulatorControl

# A refusal happens before any upstream call, the same on every surface: once. What is
# answered, and media (each surface carries images its own way), runs on every surface.
pytestmark = pytest.mark.surfaces("session")

GENERATE = "/v1beta/models/m:generateContent"
STREAM = "/v1beta/models/m:streamGenerateContent"


def post(gateway: str, credential: str, raw: bytes, path: str = GENERATE, **headers: str) -> requests.Response:
    return hostile.post(gateway, path, raw, {"x-goog-api-key": credential, **headers})


def body(parts: list[dict[str, object]], **extra: object) -> bytes:
    return json.dumps({"contents": [{"role": "user", "parts": parts}], **extra}).encode()


def text(value: str = "hi") -> list[dict[str, object]]:
    return [{"text": value}]


def refusal(gateway: str, response: requests.Response, credential: str, *words: str) -> str:
    """The refusal's message, once it is a 4xx in Google's shape naming one of ``words``."""
    assert_refused(gateway, response, credential)
    error = response.json()["error"]
    assert error["code"] == response.status_code and error["status"], error
    message = str(error["message"])
    assert not words or any(word.lower() in message.lower() for word in words), message
    return message


@pytest.mark.parametrize("path", [GENERATE, STREAM])
def test_json_nested_100000_deep(gateway: str, credential: str, path: str) -> None:
    refusal(gateway, post(gateway, credential, hostile.DEEP_JSON, path), credential, "nest", "deep", "JSON")


@pytest.mark.parametrize("path", [GENERATE, STREAM])
def test_lone_surrogate_is_refused(gateway: str, credential: str, path: str) -> None:
    raw = b'{"contents":[{"parts":[{"text":"a\\ud800b"}]}]}'
    refusal(gateway, post(gateway, credential, raw, path), credential, "surrogate")


@pytest.mark.surfaces(*SURFACES)
def test_nul_in_text_is_answered(gateway: str, credential: str, sim: SimulatorControl) -> None:
    sim.set_default({"length": 10, "cps": 2000})
    response = post(gateway, credential, body(text("a\u0000b")))
    assert response.status_code == 200, response.text[:300]
    assert response.json()["candidates"]


@pytest.mark.surfaces(*SURFACES)
def test_fifty_thousand_tiny_contents(gateway: str, credential: str, sim: SimulatorControl) -> None:
    sim.set_default({"length": 10, "cps": 2000})
    contents = [{"role": "user" if i % 2 == 0 else "model", "parts": text("x")} for i in range(49_999)]
    started = time.monotonic()
    response = post(gateway, credential, json.dumps({"contents": contents}).encode())
    assert response.status_code == 200, response.text[:300]
    assert time.monotonic() - started < 30
    assert credential not in response.text


@pytest.mark.parametrize("path", [GENERATE, STREAM])
def test_body_over_the_limit_is_413_at_once(gateway_factory: Callable[..., str], credential: str,
                                            path: str) -> None:
    gateway = gateway_factory(GATEWAY_MAX_BODY_MB="1")
    answer, took = hostile.over_the_limit(gateway, path, f"x-goog-api-key: {credential}")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert took < 5
    error = json.loads(hostile.body_of(answer))["error"]
    assert error["code"] == 413 and error["status"] and "large" in error["message"], error
    assert credential not in answer
    assert requests.get(gateway + "/healthz", timeout=10).status_code == 200


def test_headers_of_60_kb(gateway: str, credential: str) -> None:
    hostile.assert_refused_by_the_server(gateway, post(gateway, credential, body(text()), **hostile.HUGE_HEADER),
                                         credential)


def test_thousand_comma_joined_keys_in_the_header(gateway: str, credential: str) -> None:
    raw = body(text(), generationConfig={"maxOutputTokens": "x"})
    hostile.assert_refused_by_the_server(gateway, post(gateway, ",".join([credential] * 1000), raw), credential)


def test_thousand_comma_joined_keys_in_the_query(gateway: str, credential: str) -> None:
    raw = body(text(), generationConfig={"maxOutputTokens": "x"})
    response = requests.post(gateway + GENERATE, params={"key": ",".join([credential] * 1000)}, data=raw,
                             headers={"Content-Type": "application/json"}, timeout=60)
    hostile.assert_refused_by_the_server(gateway, response, credential)


def test_crlf_in_request_id_is_not_echoed(gateway: str) -> None:
    hostile.assert_no_smuggled_header(raw_exchange(gateway, hostile.crlf_request_id("/v1beta/models")))
    assert requests.get(gateway + "/healthz", timeout=10).status_code == 200


@pytest.mark.surfaces(*SURFACES)
@pytest.mark.parametrize("model", ["..%2F..%2Fetc%2Fpasswd", "%2e%2e", "m%00x", "a%2Fb%2Fc", "..%5C..",
                                   "m:generateContent%0d%0aSet-Cookie:%20evil=1"])
def test_path_tricks_in_the_model(gateway: str, credential: str, model: str, sim: SimulatorControl) -> None:
    sim.set_default({"length": 10, "cps": 2000})
    response = requests.post(f"{gateway}/v1beta/models/{model}:generateContent",
                             headers={"x-goog-api-key": credential}, json={"contents": [{"parts": text()}]},
                             timeout=60)
    assert response.status_code in (200, 400, 404), response.text[:300]
    if response.status_code != 200:
        refusal(gateway, response, credential)
    assert "evil" not in str(response.headers)
    assert credential not in response.text


@pytest.mark.surfaces(*SURFACES)
@pytest.mark.parametrize("data", [hostile.BAD_BASE64, hostile.NOT_AN_IMAGE])
def test_bad_inline_data(gateway: str, credential: str, data: str) -> None:
    parts = [*text("what is it"), {"inlineData": {"mimeType": "image/png", "data": data}}]
    refusal(gateway, post(gateway, credential, body(parts)), credential, "base64", "image")


@pytest.mark.surfaces(*SURFACES)
@pytest.mark.parametrize("url", hostile.DISGUISED_PRIVATE_URLS)
def test_file_uri_naming_a_private_address_is_refused(gateway: str, credential: str, url: str) -> None:
    with hostile.listener() as (port, accepted):
        parts = [*text("what is it"), {"fileData": {"mimeType": "image/png", "fileUri": url.format(port=port)}}]
        refusal(gateway, post(gateway, credential, body(parts)), credential, "Refused to fetch", "non-public")
    assert accepted == []


@pytest.mark.parametrize("field", ["parameters", "parametersJsonSchema"])
@pytest.mark.parametrize("schema", [{"type": "no-such-type"}, {"type": "object", "properties": 3}, "str"])
def test_invalid_json_schema_in_function_declarations(gateway: str, credential: str, field: str,
                                                      schema: object) -> None:
    tools = [{"functionDeclarations": [{"name": "f", "description": "d", field: schema}]}]
    refusal(gateway, post(gateway, credential, body(text(), tools=tools)), credential, "schema", field)


@pytest.mark.parametrize("config", [
    {"maxOutputTokens": 10**30}, {"maxOutputTokens": -1}, {"maxOutputTokens": 0}, {"maxOutputTokens": 1.5},
    {"candidateCount": 10**9}, {"candidateCount": 0}, {"candidateCount": -1},
])
def test_absurd_generation_config(gateway: str, credential: str, config: dict[str, object]) -> None:
    name = next(iter(config))
    raw = body(text(), generationConfig=config)
    refusal(gateway, post(gateway, credential, raw), credential, name)


@pytest.mark.parametrize("path", [GENERATE, STREAM])
def test_refusal_with_the_key_in_the_query(gateway: str, credential: str, path: str) -> None:
    # The key in the URL is the likeliest to be echoed (in a "bad URL" message): it is not.
    raw = body([{"inlineData": {"mimeType": "image/png", "data": hostile.BAD_BASE64}}])
    response = requests.post(gateway + path, params={"key": credential}, data=raw,
                             headers={"Content-Type": "application/json"}, timeout=60)
    refusal(gateway, response, credential, "base64")
