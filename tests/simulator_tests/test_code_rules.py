"""The simulator's MiniMax Code LLM host is as strict as the page (UPSTREAM-CODE.md §2).

Role: every refusal rule, each answered as the page says: auth forms (x-api-key alone,
unknown tokens, web JWTs), wrong paths (503 direct_route_not_configured), body size,
models, thinking per model and on M3.1, image_url, images, document, tool pairing,
first message, max_tokens, effort, tools; unsigned thinking dropped; the warnings.
"""

from __future__ import annotations

import base64
import socket
from typing import Any

import pytest

from tests.simulator.control import SimulatorControl
from tests.simulator_tests.code_client import PNG, body, image, post, refused


@pytest.mark.parametrize("model, thinking, thinks", [
    ("MiniMax-M3", None, False), ("MiniMax-M3", {"type": "disabled"}, False),
    ("MiniMax-M3", {"type": "adaptive"}, True), ("MiniMax-M2.7", {"type": "disabled"}, True),
    ("MiniMax-M2.7-highspeed", None, True), ("MiniMax-M3.1-Flash-Preview", {"type": "adaptive"}, True),
])
def test_thinking_per_model(code_sim: SimulatorControl, code_account: dict[str, Any], model: str,
                            thinking: dict[str, str] | None, thinks: bool) -> None:
    code_sim.script([{"text": "ok", "thinking": "hmm", "first_delay": 0}])
    extra = {} if thinking is None else {"thinking": thinking}
    content = post(code_sim, code_account["access_token"], body(model=model, **extra)).json()["content"]
    assert (content[0]["type"] == "thinking") is thinks


def test_auth_forms(code_sim: SimulatorControl, code_account: dict[str, Any]) -> None:
    alone = post(code_sim, None, body(), **{"x-api-key": "sk-xxx"})
    assert alone.status_code == 401 and alone.json() == {"code": 401, "message": "token is required"}
    both = post(code_sim, code_account["access_token"], body(), **{"x-api-key": "sk-xxx"})
    assert both.status_code == 200
    unknown = post(code_sim, "mmoat_" + "a" * 54, body())
    assert unknown.status_code == 401 and unknown.json()["message"] != "token is required"


def test_web_tokens_are_refused_unless_configured(code_sim: SimulatorControl,
                                                  code_account: dict[str, Any]) -> None:
    code_sim.set_default({"text": "ok", "first_delay": 0})
    assert post(code_sim, code_account["web_jwt"], body()).status_code == 401
    code_sim.code_config(accept_web_tokens=True)
    assert post(code_sim, code_account["web_jwt"], body()).status_code == 200
    assert code_sim.code_log()[-1]["auth"] == "bearer_other"


def test_one_account_may_accept_its_web_token(code_sim: SimulatorControl,
                                              code_account: dict[str, Any]) -> None:
    code_sim.set_default({"text": "ok", "first_delay": 0})
    accepting = code_sim.add_code_accounts(1, web_token_accepted=True)[0]
    count = "/mavis/api/v1/llm/v1/messages/count_tokens"  # what a gateway's probe would use
    assert post(code_sim, accepting["web_jwt"], body(), path=count).status_code == 200
    assert post(code_sim, code_account["web_jwt"], body(), path=count).status_code == 401
    web = post(code_sim, accepting["web_jwt"], body())
    assert web.status_code == 200
    stats = code_sim.code_stats()
    assert stats["accounts"][accepting["name"]]["messages"] == 1 and stats["web_token_calls"] == 2


@pytest.mark.parametrize("path", ["/mavis/api/v1/llm/v1/v1/messages", "/mavis/api/v1/llm/v1/models",
                                  "/mavis/api/v1/llm/models", "/mavis/api/v1/llm/v1/chat/completions",
                                  "/mavis/api/v1/llm/v1/responses"])
def test_wrong_paths_are_not_configured(code_sim: SimulatorControl, code_account: dict[str, Any],
                                        path: str) -> None:
    answer = post(code_sim, code_account["access_token"], body(), path=path)
    assert answer.status_code == 503 and answer.json() == {
        "errorCode": 50115, "errorReason": "direct_route_not_configured"}


def test_body_over_16_mib_is_refused(code_sim: SimulatorControl, code_account: dict[str, Any]) -> None:
    huge = body(content="a" * (16 * 1024 * 1024 + 1))
    answer = post(code_sim, code_account["access_token"], huge)
    refused(answer, 413, "exceeds 16777216 bytes")
    assert answer.json()["error"]["type"] == "request_too_large"


def test_an_announced_oversize_body_is_refused_before_it_is_read(
        code_sim: SimulatorControl, code_account: dict[str, Any]) -> None:
    host, port = code_sim.base_url.removeprefix("http://").split(":")
    head = (f"POST /mavis/api/v1/llm/v1/messages HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {code_account['access_token']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 17000000\r\n\r\n{")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())  # the rest never comes: only the header can be judged
        assert sock.recv(64).startswith(b"HTTP/1.1 413")


M31_DISABLED = ('invalid params, model "MiniMax-M3.1-Flash-Preview" requires adaptive thinking; '
                'thinking.type="disabled" (including reasoning.effort=none) is not allowed (2013)')


@pytest.mark.parametrize("payload, fragment", [
    (body(model="MiniMax-M9"), "unknown model"),
    (body(model="minimax-m2.7"), "unknown model"),  # ids are case-sensitive
    (body(model="MiniMax-M3.1-Flash-Preview", thinking={"type": "disabled"}), M31_DISABLED),
    (body(model="MiniMax-M3.1-Flash-Preview"), "requires adaptive thinking"),
    (body(content=[{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]),
     "unsupported content type 'image_url' (2013)"),
    (body(content=[{"type": "document", "source": {"type": "base64", "data": PNG}}]),
     "unsupported content type 'document' (2013)"),
    (body(content=[{"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}]),
     "base64"),
    (body(content=[image(media_type="image/tiff")]), "media_type"),
    (body(content=[image(data="not base64!")]), "bare base64"),
    (body(content=[image(data=base64.b64encode(bytes(10 * 1024 * 1024 + 1)).decode())]),
     "image exceeds"),
    (body(content=[image()] * 5), "at most 4 attachments"),
    ({**body(), "max_tokens": None}, "max_tokens"),
    ({**body(), "max_tokens": 128001}, "max_tokens"),
    ({**body(), "messages": [{"role": "assistant", "content": "hi"}]}, "first message"),
    ({**body(), "messages": []}, "non-empty"),
    (body(output_config={"effort": "huge"}), "effort"),
    (body(tools=[{"name": "t"}]), "input_schema"),
    (body(stop_sequences=[""]), "stop_sequences"),
])
def test_invalid_params_are_400_2013(code_sim: SimulatorControl, code_account: dict[str, Any],
                                     payload: dict[str, Any], fragment: str) -> None:
    answer = post(code_sim, code_account["access_token"], payload)
    refused(answer, 400, fragment)
    assert "(2013)" in answer.json()["error"]["message"]


def tool_turn(ids: list[str]) -> dict[str, Any]:
    return {"role": "assistant", "content": [
        {"type": "tool_use", "id": i, "name": "t", "input": {}} for i in ids]}


def results(ids: list[str]) -> dict[str, Any]:
    return {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": i, "content": "r"} for i in ids]}


@pytest.mark.parametrize("messages", [
    [results(["a"])],  # a result without its call
    [{"role": "user", "content": "q"}, tool_turn(["a", "b"]), results(["a"]), results(["b"])],
    [{"role": "user", "content": "q"}, tool_turn(["a"]), {"role": "user", "content": "late"},
     results(["a"])],
    [{"role": "user", "content": "q"}, tool_turn(["a"])],
])
def test_split_or_late_tool_results_are_refused(code_sim: SimulatorControl,
                                                code_account: dict[str, Any],
                                                messages: list[dict[str, Any]]) -> None:
    refused(post(code_sim, code_account["access_token"], {**body(), "messages": messages}), 400,
            "tool_result")


def test_unsigned_thinking_is_dropped_and_signed_kept(code_sim: SimulatorControl,
                                                      code_account: dict[str, Any]) -> None:
    code_sim.set_default({"text": "ok", "thinking": "deep", "first_delay": 0})
    first = post(code_sim, code_account["access_token"], body()).json()["content"]
    signed = first[0]
    history = [{"role": "user", "content": "q"},
               {"role": "assistant", "content": [signed, {"type": "text", "text": "ok"}]},
               {"role": "user", "content": "again"}]
    assert post(code_sim, code_account["access_token"], {**body(), "messages": history}).status_code == 200
    assert code_sim.code_stats()["warnings"] == {}
    history[1]["content"][0] = {"type": "thinking", "thinking": "deep"}
    assert post(code_sim, code_account["access_token"], {**body(), "messages": history}).status_code == 200
    assert code_sim.code_stats()["warnings"] == {"unsigned_thinking_dropped": 1}
    logged = code_sim.code_log()[-1]["body"]["messages"]
    assert logged[0]["content"] == "q" and logged[1]["content"][0] == {
        "type": "thinking", "thinking": "deep"}  # the log keeps what was sent


def test_m31_without_thinking_can_be_accepted_by_config(code_sim: SimulatorControl,
                                                        code_account: dict[str, Any]) -> None:
    code_sim.set_default({"text": "ok", "first_delay": 0})
    flash = body(model="MiniMax-M3.1-Flash-Preview")
    assert post(code_sim, code_account["access_token"], flash).status_code == 400
    code_sim.code_config(m31_thinking_omitted="accept")
    content = post(code_sim, code_account["access_token"], flash).json()["content"]
    assert content[0]["type"] == "thinking"  # forced on: it thinks anyway


def test_warnings_for_what_the_page_does_not_pin(code_sim: SimulatorControl,
                                                 code_account: dict[str, Any]) -> None:
    code_sim.script([{"text": "", "first_delay": 0, "tool_calls": [{"name": "nowhere"}]}])
    post(code_sim, code_account["access_token"], body(thinking={"type": "enabled", "budget_tokens": 900}),
         **{"bedrock-lane": "dev"})
    assert code_sim.code_stats()["warnings"] == {"tool_call_not_offered": 1,
                                                 "thinking_type_enabled": 1,
                                                 "bedrock_lane_header": 1}
