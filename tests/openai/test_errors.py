"""Every OpenAI-dialect error path: status, shape, and no upstream call where none is due."""

from __future__ import annotations

import json
import time

import openai
import pytest
import requests

from tests.openai.test_chat_completions import ask, client

URL = "/v1/chat/completions"


def post(gateway: str, body: object, credential: str | None = None, raw: bytes | None = None):
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    if raw is not None:
        return requests.post(gateway + URL, data=raw, headers=headers, timeout=30)
    return requests.post(gateway + URL, json=body, headers=headers, timeout=30)


def assert_openai_error(response: requests.Response, status: int, type_: str, code=None, param=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == type_ and error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


def test_malformed_json(gateway, credential) -> None:
    assert_openai_error(post(gateway, None, credential, raw=b"{not json"), 400, "invalid_request_error")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": ask()}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": 5, "messages": ask()}, "model"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": 7}]}, "messages[0].content"),
        ({"model": "m", "messages": ask(), "max_tokens": "ten"}, "max_tokens"),
        ({"model": "m", "messages": ask(), "n": 2}, "n"),
        ({"model": "m", "messages": ask(), "stop": [1]}, "stop"),
    ],
)
def test_invalid_fields_are_named(gateway, sim, credential, body, param) -> None:
    error = assert_openai_error(post(gateway, body, credential), 400, "invalid_request_error", param=param)
    assert param.split(".")[0] in error["message"]
    assert sim.stats()["sends"] == 0


@pytest.mark.parametrize("content", ["", []])
def test_a_message_without_content_is_400_not_502(gateway, sim, credential, content) -> None:
    # Found by tests/system/test_fuzz.py: the upstream refuses an empty turn, which was a 502.
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    assert_openai_error(post(gateway, body, credential), 400, "invalid_request_error", param="messages")
    assert sim.stats()["sends"] == 0


def test_missing_and_malformed_credentials(gateway, sim) -> None:
    assert_openai_error(post(gateway, {"model": "m", "messages": ask()}), 401, "invalid_request_error", "invalid_api_key")
    error = assert_openai_error(
        post(gateway, {"model": "m", "messages": ask()}, "12345+not-a-jwt"), 401, "invalid_request_error"
    )
    assert "not-a-jwt" not in error["message"]
    with pytest.raises(openai.AuthenticationError):
        client(gateway, "garbage").chat.completions.create(model="m", messages=ask())


def test_expired_jwt_is_refused_without_calling_upstream(gateway, web_only, sim, accounts) -> None:
    (expired,) = accounts(1, exp_seconds=-60)

    def chat_calls() -> int:
        # The maintenance thread reads other accounts' credits in the background meanwhile.
        return sum(n for path, n in sim.stats()["requests"].items() if "get_membership_info" not in path)

    before = chat_calls()
    error = assert_openai_error(
        post(gateway, {"model": "m", "messages": ask()}, expired["credential"]), 401, "invalid_request_error"
    )
    assert "expired" in error["message"]
    assert chat_calls() == before


def test_token_revoked_upstream_is_401(gateway, web_only, sim, accounts) -> None:
    (account,) = accounts(1)
    sim.patch_account(account["real_user_id"], expired=True)
    assert_openai_error(post(gateway, {"model": "m", "messages": ask()}, account["credential"]), 401, "invalid_request_error")


def test_no_credits_is_429_insufficient_quota(gateway, web_only, sim, accounts) -> None:
    (account,) = accounts(1, credits=0)
    response = post(gateway, {"model": "m", "messages": ask()}, account["credential"])
    assert_openai_error(response, 429, "insufficient_quota", "insufficient_quota")


def test_pool_moves_past_an_account_without_credits(gateway, web_only, sim, accounts) -> None:
    empty, full = accounts(1, credits=0) + accounts(1)
    pool = f"{empty['credential']},{full['credential']}"
    reply = client(gateway, pool).chat.completions.create(model="m", messages=ask())
    assert reply.choices[0].message.content == sim.log()[-1]["answer"]
    assert sim.log()[-1]["account"] == full["real_user_id"]


def test_all_accounts_busy_past_queue_timeout(gateway_factory, web_only, sim, accounts) -> None:
    gateway = gateway_factory(GATEWAY_QUEUE_TIMEOUT="1.5")
    (account,) = accounts(1, busy=True)
    started = time.monotonic()
    response = post(gateway, {"model": "m", "messages": ask()}, account["credential"])
    assert_openai_error(response, 429, "requests", "rate_limit_exceeded")
    assert int(response.headers["Retry-After"]) >= 1
    assert 1.0 <= time.monotonic() - started < 5
    assert sim.stats()["double_generation_attempts"] == 0


def test_busy_account_is_used_once_free(gateway, web_only, sim, accounts) -> None:
    (account,) = accounts(1, busy=True)
    import threading

    threading.Timer(1.0, lambda: sim.patch_account(account["real_user_id"], busy=False)).start()
    reply = client(gateway, account["credential"]).chat.completions.create(model="m", messages=ask())
    assert reply.choices[0].message.content == sim.log()[-1]["answer"]


@pytest.mark.parametrize(("kind", "status", "code"), [
    ("http_500", 502, "upstream_error"),
    ("drop", 503, "upstream_unavailable"),
])
def test_upstream_failures_on_send(gateway, sim, upstream, credential, kind, status, code) -> None:
    sim.fault(upstream.send_fault, kind)
    response = post(gateway, {"model": "m", "messages": ask()}, credential)
    assert_openai_error(response, status, "server_error", code)
    assert credential.split("+")[-1] not in response.text


def test_upstream_hang_is_504(gateway_factory, sim, upstream, credential) -> None:
    gateway = gateway_factory(MINIMAX_READ_TIMEOUT="1")
    sim.fault(upstream.send_fault, "hang", seconds=2)
    assert_openai_error(post(gateway, {"model": "m", "messages": ask()}, credential), 504, "server_error", "upstream_timeout")
    # The hung send still creates its chat upstream once it wakes; the gateway never
    # learnt its id. Let it land here rather than in the next test's fresh state.
    deadline = time.monotonic() + 5
    while not sim.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sim.log(), "the hung send never completed in the simulator"


def test_transient_poll_failures_are_retried(gateway, sim, upstream, credential) -> None:
    if upstream.surface == "session":
        pytest.skip("the session surface has no polls; its stream failures are tested below")
    sim.script([{"text": "survived", "cps": 200}])
    sim.fault("get_chat_detail", "http_502", count=2)
    reply = client(gateway, credential).chat.completions.create(model="m", messages=ask())
    assert reply.choices[0].message.content == "survived"


def test_failure_after_stream_began_is_an_error_frame(gateway, sim, upstream, credential) -> None:
    inject = upstream.fail_mid_answer(sim, {"length": 2000, "cps": 400})
    response = requests.post(
        gateway + URL, headers={"Authorization": f"Bearer {credential}"},
        json={"model": "m", "messages": ask(), "stream": True}, stream=True, timeout=30,
    )
    assert response.status_code == 200
    frames = []
    for line in response.iter_lines():
        if line.startswith(b"data: {"):
            frames.append(json.loads(line[6:]))
            if len(frames) == 3:
                inject()
    assert "error" in frames[-1] and frames[-1]["error"]["type"] == "server_error"
    assert all("error" not in f for f in frames[:-1])
    assert not any((f.get("choices") or [{}])[0].get("finish_reason") for f in frames[:-1])
    # ...and the SDK raises it rather than returning it as text.
    inject = upstream.fail_mid_answer(sim, {"length": 2000, "cps": 400})
    stream = client(gateway, credential).chat.completions.create(model="m", messages=ask(), stream=True)
    with pytest.raises(openai.APIError):
        for index, _ in enumerate(stream):
            if index == 2:
                inject()
    assert sim.wait_idle(10)["chats_alive"] == 0


def test_unknown_route_and_method(gateway) -> None:
    assert_openai_error(requests.get(gateway + "/v1/nothing", timeout=5), 404, "invalid_request_error")
    assert_openai_error(requests.get(gateway + URL, timeout=5), 405, "invalid_request_error")
