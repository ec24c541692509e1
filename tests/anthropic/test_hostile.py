"""Hostile input end to end in the Anthropic dialect: a 4xx in its shape, no crash, no leak.

Issue 12, part 4: the cases of ``tests/openai/test_hostile.py`` against ``/v1/messages``,
with the credential in ``x-api-key`` (or ``Authorization: Bearer``). Each refusal must be
``{"type": "error", "error": {"type", "message"}}`` and its message must name the problem.
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

URL = "/v1/messages"


def post(gateway: str, credential: str, raw: bytes, **headers: str) -> requests.Response:
    return hostile.post(gateway, URL, raw, {"x-api-key": credential, "anthropic-version": "2023-06-01",
                                            **headers})


def body(content: object, **extra: object) -> bytes:
    return json.dumps({"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": content}],
                       **extra}).encode()


def image(source: dict[str, str]) -> list[dict[str, object]]:
    return [{"type": "text", "text": "what is it"}, {"type": "image", "source": source}]


def refusal(gateway: str, response: requests.Response, credential: str, *words: str) -> str:
    """The refusal's message, once it is a 4xx in Anthropic's shape naming one of ``words``."""
    assert_refused(gateway, response, credential)
    answer = response.json()
    assert answer["type"] == "error" and answer["error"]["type"], answer
    message = str(answer["error"]["message"])
    assert not words or any(word.lower() in message.lower() for word in words), message
    return message


def test_json_nested_100000_deep(gateway: str, credential: str) -> None:
    refusal(gateway, post(gateway, credential, hostile.DEEP_JSON), credential, "nest", "deep", "JSON")


def test_lone_surrogate_is_refused(gateway: str, credential: str) -> None:
    raw = b'{"model":"m","max_tokens":64,"messages":[{"role":"user","content":"a\\ud800b"}]}'
    refusal(gateway, post(gateway, credential, raw), credential, "surrogate")


@pytest.mark.surfaces(*SURFACES)
def test_nul_in_text_is_answered(gateway: str, credential: str, sim: SimulatorControl) -> None:
    sim.set_default({"length": 10, "cps": 2000})
    response = post(gateway, credential, body("a\u0000b"))
    assert response.status_code == 200, response.text[:300]
    assert response.json()["type"] == "message"


@pytest.mark.surfaces(*SURFACES)
def test_fifty_thousand_tiny_messages(gateway: str, credential: str, sim: SimulatorControl) -> None:
    sim.set_default({"length": 10, "cps": 2000})
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": "x"} for i in range(49_999)]
    raw = json.dumps({"model": "m", "max_tokens": 64, "messages": messages}).encode()
    started = time.monotonic()
    response = post(gateway, credential, raw)
    assert response.status_code == 200, response.text[:300]
    assert time.monotonic() - started < 30
    assert credential not in response.text


def test_body_over_the_limit_is_413_at_once(gateway_factory: Callable[..., str], credential: str) -> None:
    gateway = gateway_factory(GATEWAY_MAX_BODY_MB="1")
    answer, took = hostile.over_the_limit(gateway, URL, f"x-api-key: {credential}")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert took < 5
    error = json.loads(hostile.body_of(answer))["error"]
    assert error["type"] == "request_too_large" and "large" in error["message"], error
    assert credential not in answer
    assert requests.get(gateway + "/healthz", timeout=10).status_code == 200


def test_headers_of_60_kb(gateway: str, credential: str) -> None:
    response = post(gateway, credential, body("hi"), **hostile.HUGE_HEADER)
    hostile.assert_refused_by_the_server(gateway, response, credential)


@pytest.mark.parametrize("header", ["x-api-key", "Authorization"])
def test_thousand_comma_joined_credentials(gateway: str, credential: str, header: str) -> None:
    joined = ",".join([credential] * 1000)
    value = joined if header == "x-api-key" else f"Bearer {joined}"
    response = hostile.post(gateway, URL, body("hi", max_tokens="x"), {header: value})
    hostile.assert_refused_by_the_server(gateway, response, credential)


def test_crlf_in_request_id_is_not_echoed(gateway: str) -> None:
    hostile.assert_no_smuggled_header(raw_exchange(gateway, hostile.crlf_request_id("/v1/models")))
    assert requests.get(gateway + "/healthz", timeout=10).status_code == 200


@pytest.mark.surfaces(*SURFACES)
@pytest.mark.parametrize("data", [hostile.BAD_BASE64, hostile.NOT_AN_IMAGE])
def test_bad_base64_image_source(gateway: str, credential: str, data: str) -> None:
    source = {"type": "base64", "media_type": "image/png", "data": data}
    refusal(gateway, post(gateway, credential, body(image(source))), credential, "base64", "image")


@pytest.mark.surfaces(*SURFACES)
@pytest.mark.parametrize("url", hostile.DISGUISED_PRIVATE_URLS)
def test_image_url_naming_a_private_address_is_refused(gateway: str, credential: str, url: str) -> None:
    with hostile.listener() as (port, accepted):
        response = post(gateway, credential, body(image({"type": "url", "url": url.format(port=port)})))
        refusal(gateway, response, credential, "Refused to fetch", "non-public")
    assert accepted == []


@pytest.mark.parametrize("schema", [{"type": "no-such-type"}, {"type": "object", "properties": 3}, "str"])
def test_invalid_json_schema_in_tools(gateway: str, credential: str, schema: object) -> None:
    tools = [{"name": "f", "description": "d", "input_schema": schema}]
    refusal(gateway, post(gateway, credential, body("hi", tools=tools)), credential, "schema", "input_schema")


@pytest.mark.parametrize("max_tokens", [10**30, -1, 0, 1.5, "64"])
def test_absurd_max_tokens(gateway: str, credential: str, max_tokens: object) -> None:
    refusal(gateway, post(gateway, credential, body("hi", max_tokens=max_tokens)), credential, "max_tokens")


def test_refusal_with_the_credential_as_bearer(gateway: str, credential: str) -> None:
    # Same refusal, other credential header: the Bearer token must not be echoed either.
    response = hostile.post(gateway, URL, hostile.DEEP_JSON, {"Authorization": f"Bearer {credential}"})
    refusal(gateway, response, credential, "nest", "deep", "JSON")
