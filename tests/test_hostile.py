"""Hostile input end to end: a 4xx in the dialect's shape, no crash, no leak (issue 12, part 4)."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

URL = "/v1/chat/completions"


def post(gateway: str, credential: str, raw: bytes, **headers: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json", **headers}
    return requests.post(gateway + URL, data=raw, headers=headers, timeout=60)


def assert_refused(gateway: str, response: requests.Response, credential: str) -> None:
    assert 400 <= response.status_code < 500, response.text[:500]
    assert credential not in response.text
    assert requests.get(gateway + "/healthz", timeout=10).status_code == 200


def test_json_nested_100000_deep(gateway: str, credential: str) -> None:
    response = post(gateway, credential, b"[" * 100_000 + b"]" * 100_000)
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
    response = post(gateway, credential, b"{}", **{"X-Padding": "a" * 60_000})
    assert_refused(gateway, response, credential)


def test_thousand_comma_joined_credentials(gateway: str, credential: str) -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":"x"}'
    response = post(gateway, ",".join([credential] * 1000), body)
    assert_refused(gateway, response, credential)


def test_body_over_the_limit_is_413_at_once(gateway_factory, credential: str) -> None:
    gateway = gateway_factory(GATEWAY_MAX_BODY_MB="1")
    parts = urlsplit(gateway)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall((f"POST {URL} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {credential}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {50 * 2**20}\r\n\r\n{{").encode())
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 5
    assert credential not in answer
    assert requests.get(gateway + "/healthz", timeout=10).status_code == 200
