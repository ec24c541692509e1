"""Logs: request ids, JSON lines, trusted proxies (no credential in them: the session
teardown in tests/conftest.py and tests/test_secrets.py)."""

from __future__ import annotations

import json
import time

import requests

from tests.conftest import GATEWAYS


def json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    return predicate()


def test_request_id_is_accepted_or_made_and_echoed(gateway) -> None:
    given = requests.get(gateway + "/healthz", headers={"X-Request-Id": "trace-42.a"}, timeout=5)
    assert given.headers["X-Request-Id"] == "trace-42.a"
    made = requests.get(gateway + "/healthz", headers={"X-Request-Id": "bad id with spaces"}, timeout=5)
    assert len(made.headers["X-Request-Id"]) == 32 and made.headers["X-Request-Id"] != given.headers["X-Request-Id"]


def test_json_logs_carry_the_request_id_and_no_prompt(gateway_factory, surface, sim, credential) -> None:
    gateway = gateway_factory(GATEWAY_LOG_FORMAT="json", GATEWAY_TRUSTED_PROXIES="127.0.0.1")
    secret_prompt = "my very private prompt text"
    requests.post(gateway + "/v1/chat/completions",
                  headers={"Authorization": f"Bearer {credential}", "X-Request-Id": "req-json-1",
                           "X-Forwarded-For": "203.0.113.9"},
                  json={"model": "m", "messages": [{"role": "user", "content": secret_prompt}]}, timeout=30)
    requests.get(gateway + "/healthz", headers={"X-Request-Id": "req-json-2"}, timeout=5)
    proc = next(p for p in GATEWAYS if p.log_path.name == f"gateway-{surface}-gateway_log_format-gateway_trusted_proxies.log")
    access = wait_for(lambda: [entry for entry in json_lines(proc.log()) if entry.get("request_id") == "req-json-1"
                               and entry["logger"] == "gateway.access"])
    assert access and access[0]["status"] == 200 and access[0]["dialect"] == "openai"
    assert access[0]["client"] == "203.0.113.9"  # believed: the peer is a trusted proxy
    assert access[0]["path"] == "/v1/chat/completions" and access[0]["duration_ms"] > 0
    assert secret_prompt not in proc.log()


def test_forwarded_headers_from_untrusted_peers_are_ignored(gateway_factory, surface, sim) -> None:
    gateway = gateway_factory(GATEWAY_LOG_FORMAT="json")
    requests.get(gateway + "/healthz", headers={"X-Request-Id": "req-untrusted", "X-Forwarded-For": "198.51.100.7"},
                 timeout=5)
    proc = next(p for p in GATEWAYS if p.log_path.name == f"gateway-{surface}-gateway_log_format.log")
    lines = wait_for(lambda: [entry for entry in json_lines(proc.log()) if entry.get("request_id") == "req-untrusted"])
    assert lines and lines[0]["client"] == "127.0.0.1"
