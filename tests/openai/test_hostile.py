"""Hostile input end to end in the OpenAI dialect: a 4xx in its shape, no crash, no leak.

Issue 12, part 4; the shared helpers and payloads are in :mod:`tests.hostile`.
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

# A refusal happens before any upstream call, the same on every surface: once. What is
# answered, and media (each surface carries images its own way), runs on every surface.
pytestmark = pytest.mark.surfaces("session")

URL = "/v1/chat/completions"


def post(gateway: str, credential: str, raw: bytes, **headers: str) -> requests.Response:
    return hostile.post(gateway, URL, raw, {"Authorization": f"Bearer {credential}", **headers})


def test_json_nested_100000_deep(gateway: str, credential: str) -> None:
    response = post(gateway, credential, hostile.DEEP_JSON)
    assert_refused(gateway, response, credential)
    assert response.json()["error"]["message"]


@pytest.mark.parametrize("max_tokens", [10**30, -1])
def test_absurd_max_tokens(gateway: str, credential: str, max_tokens: int) -> None:
    body = ('{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":%d}' % max_tokens).encode()
    assert_refused(gateway, post(gateway, credential, body), credential)


def test_absurd_n(gateway: str, credential: str) -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"n":1000000000}'
    assert_refused(gateway, post(gateway, credential, body), credential)


def test_headers_of_60_kb(gateway: str, credential: str) -> None:
    response = post(gateway, credential, b"{}", **hostile.HUGE_HEADER)
    assert_refused(gateway, response, credential)


def test_thousand_comma_joined_credentials(gateway: str, credential: str) -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":"x"}'
    response = post(gateway, ",".join([credential] * 1000), body)
    assert_refused(gateway, response, credential)


def test_body_over_the_limit_is_413_at_once(gateway_factory: Callable[..., str], credential: str) -> None:
    gateway = gateway_factory(GATEWAY_MAX_BODY_MB="1")
    answer, took = hostile.over_the_limit(gateway, URL, f"Authorization: Bearer {credential}")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert took < 5
    assert credential not in answer
    assert requests.get(gateway + "/healthz", timeout=10).status_code == 200


def chat_body(content: object, **extra: object) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": content}], **extra}).encode()


def test_lone_surrogate_is_refused(gateway: str, credential: str) -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"a\\ud800b"}]}'
    response = post(gateway, credential, body)
    assert_refused(gateway, response, credential)
    assert "surrogate" in response.json()["error"]["message"]


@pytest.mark.surfaces(*SURFACES)
def test_nul_in_text_is_answered(gateway: str, credential: str, sim) -> None:
    sim.set_default({"length": 10, "cps": 2000})
    response = post(gateway, credential, chat_body("a\u0000b"))
    assert response.status_code == 200, response.text[:300]


def test_crlf_in_request_id_is_not_echoed(gateway: str, credential: str) -> None:
    # An obs-fold continuation line is the one way to smuggle a line break into a header value.
    hostile.assert_no_smuggled_header(raw_exchange(gateway, hostile.crlf_request_id()))
    assert requests.get(gateway + "/healthz", timeout=10).status_code == 200


@pytest.mark.surfaces(*SURFACES)
@pytest.mark.parametrize("url", [f"data:image/png;base64,{hostile.BAD_BASE64}",
                                 f"data:image/png;base64,{hostile.NOT_AN_IMAGE}"])
def test_bad_data_urls(gateway: str, credential: str, url: str) -> None:
    body = chat_body([{"type": "text", "text": "what is it"}, {"type": "image_url", "image_url": {"url": url}}])
    response = post(gateway, credential, body)
    assert_refused(gateway, response, credential)
    assert response.json()["error"]["message"]


def test_invalid_json_schema_in_tools(gateway: str, credential: str) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "no-such-type"}}}]
    response = post(gateway, credential, chat_body("hi", tools=tools))
    assert_refused(gateway, response, credential)


@pytest.mark.surfaces(*SURFACES)
def test_fifty_thousand_tiny_messages(gateway: str, credential: str, sim) -> None:
    sim.set_default({"length": 10, "cps": 2000})
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": "x"} for i in range(49_999)]
    body = json.dumps({"model": "m", "messages": messages}).encode()
    started = time.monotonic()
    response = post(gateway, credential, body)
    assert response.status_code == 200, response.text[:300]
    assert time.monotonic() - started < 30
    assert credential not in response.text
