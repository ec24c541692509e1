"""The simulator's MiniMax Code LLM host: /messages, count_tokens, the catalogue, wrong paths.

Role: drive a real simulator process with `requests` and check the page's (UPSTREAM-CODE.md
§2, §3) happy paths — streaming event order and usage placement, non-stream messages,
tool_use round trips, thinking per model, the catalogue — and every strictness rule:
auth forms, wrong paths, body size, models, thinking on M3.1, image_url, images, document,
tool pairing, first message, max_tokens, quota, faults, the concurrency counter.
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.simulator.control import SimulatorControl

MESSAGES = "/mavis/api/v1/llm/v1/messages"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(40)).decode()


@pytest.fixture()
def account(code_sim: SimulatorControl) -> dict[str, Any]:
    return code_sim.add_code_accounts(1)[0]


def body(model: str = "MiniMax-M2.7", content: Any = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 1000, "messages": [{"role": "user", "content": content}],
            **extra}


def post(sim: SimulatorControl, token: str | None, payload: Any, path: str = MESSAGES,
         stream: bool = False, **headers: str) -> requests.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(f"{sim.base_url}{path}", json=payload, headers=headers, timeout=30,
                         stream=stream)


def events(response: requests.Response) -> list[dict[str, Any]]:
    """Every SSE frame's data, checking that its event: line names the data's type."""
    buffer, out = b"", []
    for chunk in response.iter_content(chunk_size=None):
        buffer += chunk
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            lines = frame.decode().split("\n")
            data = json.loads(lines[1].removeprefix("data: "))
            assert lines[0] == f"event: {data['type']}"
            out.append(data)
    return out


def refused(response: requests.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]["message"], response.text


# --- Happy paths -------------------------------------------------------------------------------

def test_stream_plays_thinking_text_and_usage_in_order(code_sim: SimulatorControl,
                                                       account: dict[str, Any]) -> None:
    code_sim.script([{"text": "Hello — 中文 world", "thinking": "let me think",
                      "first_delay": 0, "cps": 200}])
    answer = post(code_sim, account["access_token"], body(stream=True), stream=True)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith(
        "text/event-stream")
    seen = events(answer)
    kinds = [e["type"] for e in seen]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert seen[0]["message"]["usage"]["input_tokens"] == 0
    starts = [e["content_block"]["type"] for e in seen if e["type"] == "content_block_start"]
    assert starts == ["thinking", "text"]
    deltas = [e["delta"] for e in seen if e["type"] == "content_block_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == "let me think"
    assert "".join(d.get("text", "") for d in deltas) == "Hello — 中文 world"
    signature = [d for d in deltas if d["type"] == "signature_delta"]
    assert len(signature) == 1 and signature[0]["signature"]
    usage = seen[-2]["usage"]
    assert usage["input_tokens"] > 0 and seen[-2]["delta"]["stop_reason"] == "end_turn"
    assert 0 < usage["output_tokens_details"]["thinking_tokens"] < usage["output_tokens"]
    counted = post(code_sim, account["access_token"], body(),
                   path=MESSAGES + "/count_tokens").json()
    assert counted == {"input_tokens": usage["input_tokens"]}


def test_pings_while_waiting_for_the_first_token(code_sim: SimulatorControl,
                                                 account: dict[str, Any]) -> None:
    code_sim.code_config(ping_seconds=0.2)
    code_sim.script([{"text": "late", "first_delay": 1.0}])
    seen = events(post(code_sim, account["access_token"], body(stream=True), stream=True))
    first_block = next(i for i, e in enumerate(seen) if e["type"] == "content_block_start")
    assert sum(e["type"] == "ping" for e in seen[:first_block]) >= 3


def test_non_stream_answers_one_message(code_sim: SimulatorControl,
                                        account: dict[str, Any]) -> None:
    code_sim.script([{"echo": "quoted", "first_delay": 0}])
    answer = post(code_sim, account["access_token"], body(content="say <<<exactly this>>>"))
    message = answer.json()
    assert message["type"] == "message" and message["stop_reason"] == "end_turn"
    assert [b["type"] for b in message["content"]] == ["thinking", "text"]  # M2.7 always thinks
    assert message["content"][1]["text"] == "exactly this"
    assert message["usage"]["output_tokens_details"]["thinking_tokens"] > 0


def test_tool_use_round_trip(code_sim: SimulatorControl, account: dict[str, Any]) -> None:
    code_sim.script([{"text": "", "first_delay": 0, "tool_calls": [
        {"name": "get_weather", "input": {"city": "Paris", "unit": "°C"}},
        {"name": "get_time", "input": {"tz": "Europe/Paris"}}]},
        {"echo": "quoted", "first_delay": 0}])
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}},
             {"name": "get_time", "input_schema": {"type": "object"}}]
    first = body(model="MiniMax-M3", tools=tools, stream=True)
    seen = events(post(code_sim, account["access_token"], first, stream=True))
    uses = [e["content_block"] for e in seen if e["type"] == "content_block_start"]
    assert [u["name"] for u in uses] == ["get_weather", "get_time"]
    pieces: dict[int, str] = {}
    for e in seen:
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta":
            pieces[e["index"]] = pieces.get(e["index"], "") + e["delta"]["partial_json"]
    assert sum(1 for e in seen if e.get("delta", {}).get("type") == "input_json_delta") > 2
    assert [json.loads(p) for p in pieces.values()] == [{"city": "Paris", "unit": "°C"},
                                                         {"tz": "Europe/Paris"}]
    assert seen[-2]["delta"]["stop_reason"] == "tool_use"
    turn = [{"type": "tool_use", "id": u["id"], "name": u["name"], "input": {}} for u in uses]
    results = [{"type": "tool_result", "tool_use_id": u["id"], "content": "<<<sunny>>>"}
               for u in uses]
    second = {**body(model="MiniMax-M3", tools=tools), "messages": [
        {"role": "user", "content": "weather?"}, {"role": "assistant", "content": turn},
        {"role": "user", "content": results}]}
    answer = post(code_sim, account["access_token"], second).json()
    assert answer["content"] == [{"type": "text", "text": "sunny"}]  # M3 without thinking
    assert code_sim.code_stats()["warnings"] == {}


def test_max_tokens_cuts_the_answer(code_sim: SimulatorControl, account: dict[str, Any]) -> None:
    code_sim.script([{"text": "x" * 400, "first_delay": 0}])
    answer = post(code_sim, account["access_token"],
                  {**body(model="MiniMax-M3"), "max_tokens": 10}).json()
    assert answer["stop_reason"] == "max_tokens" and len(answer["content"][0]["text"]) == 40


@pytest.mark.parametrize("model, thinking, thinks", [
    ("MiniMax-M3", None, False), ("MiniMax-M3", {"type": "disabled"}, False),
    ("MiniMax-M3", {"type": "adaptive"}, True), ("MiniMax-M2.7", {"type": "disabled"}, True),
    ("MiniMax-M2.7-highspeed", None, True), ("MiniMax-M3.1-Flash-Preview", {"type": "adaptive"}, True),
])
def test_thinking_per_model(code_sim: SimulatorControl, account: dict[str, Any], model: str,
                            thinking: dict[str, str] | None, thinks: bool) -> None:
    code_sim.script([{"text": "ok", "thinking": "hmm", "first_delay": 0}])
    extra = {} if thinking is None else {"thinking": thinking}
    content = post(code_sim, account["access_token"], body(model=model, **extra)).json()["content"]
    assert (content[0]["type"] == "thinking") is thinks


def test_catalogue(code_sim: SimulatorControl, account: dict[str, Any]) -> None:
    url = f"{code_sim.base_url}/mavis/api/v1/models"
    auth = {"Authorization": f"Bearer {account['access_token']}"}
    full = requests.get(url, params={"region": "cn", "buildEnv": "prod"}, headers=auth,
                        timeout=10).json()
    config = full["providers"][0]["config"]
    assert full["ttlSeconds"] == 300 and config["model_order"] == [
        "MiniMax-M3.1-Flash-Preview", "MiniMax-M3", "MiniMax-M2.7-highspeed", "MiniMax-M2.7"]
    flash = config["models"]["MiniMax-M3.1-Flash-Preview"]
    assert flash["limit"] == {"context": 512000, "output": 128000}
    assert flash["thinking_config"]["mode"] == "forced_on" and "image" in flash["modalities"]["input"]
    empty = requests.get(url, headers=auth, timeout=10).json()
    assert empty["providers"][0]["config"]["models"] == {}
    assert requests.get(url, params={"region": "cn", "buildEnv": "prod"},
                        timeout=10).status_code == 401


# --- Strictness ---------------------------------------------------------------------------------

def test_auth_forms(code_sim: SimulatorControl, account: dict[str, Any]) -> None:
    alone = post(code_sim, None, body(), **{"x-api-key": "sk-xxx"})
    assert alone.status_code == 401 and alone.json() == {"code": 401, "message": "token is required"}
    both = post(code_sim, account["access_token"], body(), **{"x-api-key": "sk-xxx"})
    assert both.status_code == 200
    unknown = post(code_sim, "mmoat_" + "a" * 54, body())
    assert unknown.status_code == 401 and unknown.json()["message"] != "token is required"


def test_web_tokens_are_refused_unless_configured(code_sim: SimulatorControl,
                                                  account: dict[str, Any]) -> None:
    code_sim.set_default({"text": "ok", "first_delay": 0})
    assert post(code_sim, account["web_jwt"], body()).status_code == 401
    code_sim.code_config(accept_web_tokens=True)
    assert post(code_sim, account["web_jwt"], body()).status_code == 200
    assert code_sim.code_log()[-1]["auth"] == "bearer_other"


@pytest.mark.parametrize("path", ["/mavis/api/v1/llm/v1/v1/messages", "/mavis/api/v1/llm/v1/models",
                                  "/mavis/api/v1/llm/models", "/mavis/api/v1/llm/v1/chat/completions",
                                  "/mavis/api/v1/llm/v1/responses"])
def test_wrong_paths_are_not_configured(code_sim: SimulatorControl, account: dict[str, Any],
                                        path: str) -> None:
    answer = post(code_sim, account["access_token"], body(), path=path)
    assert answer.status_code == 503 and answer.json() == {
        "errorCode": 50115, "errorReason": "direct_route_not_configured"}


def test_body_over_16_mib_is_refused(code_sim: SimulatorControl, account: dict[str, Any]) -> None:
    huge = body(content="a" * (16 * 1024 * 1024 + 1))
    answer = post(code_sim, account["access_token"], huge)
    refused(answer, 413, "exceeds 16777216 bytes")
    assert answer.json()["error"]["type"] == "request_too_large"


def image(data: str = PNG, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


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
])
def test_invalid_params_are_400_2013(code_sim: SimulatorControl, account: dict[str, Any],
                                     payload: dict[str, Any], fragment: str) -> None:
    answer = post(code_sim, account["access_token"], payload)
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
                                                account: dict[str, Any],
                                                messages: list[dict[str, Any]]) -> None:
    refused(post(code_sim, account["access_token"], {**body(), "messages": messages}), 400,
            "tool_result")


def test_unsigned_thinking_is_dropped_and_signed_kept(code_sim: SimulatorControl,
                                                      account: dict[str, Any]) -> None:
    code_sim.set_default({"text": "ok", "thinking": "deep", "first_delay": 0})
    first = post(code_sim, account["access_token"], body()).json()["content"]
    signed = first[0]
    history = [{"role": "user", "content": "q"},
               {"role": "assistant", "content": [signed, {"type": "text", "text": "ok"}]},
               {"role": "user", "content": "again"}]
    assert post(code_sim, account["access_token"], {**body(), "messages": history}).status_code == 200
    assert code_sim.code_stats()["warnings"] == {}
    history[1]["content"][0] = {"type": "thinking", "thinking": "deep"}
    assert post(code_sim, account["access_token"], {**body(), "messages": history}).status_code == 200
    assert code_sim.code_stats()["warnings"] == {"unsigned_thinking_dropped": 1}
    logged = code_sim.code_log()[-1]["body"]["messages"]
    assert logged[0]["content"] == "q" and logged[1]["content"][0] == {
        "type": "thinking", "thinking": "deep"}  # the log keeps what was sent


def test_quota_exhaustion_is_429_with_2056(code_sim: SimulatorControl) -> None:
    account = code_sim.add_code_accounts(1, quota=1)[0]
    code_sim.set_default({"text": "ok", "first_delay": 0})
    assert post(code_sim, account["access_token"], body()).status_code == 200
    wall = post(code_sim, account["access_token"], body())
    assert wall.status_code == 429 and wall.json()["base_resp"]["status_code"] == 2056
    assert wall.json()["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("kind, status", [("http_529", 529), ("http_429", 429), ("expired", 401),
                                          ("http_502", 502)])
def test_endpoint_faults(code_sim: SimulatorControl, account: dict[str, Any], kind: str,
                         status: int) -> None:
    code_sim.fault("code_messages", kind, seconds=3 if kind == "http_429" else None)
    answer = post(code_sim, account["access_token"], body())
    assert answer.status_code == status
    if kind == "http_429":
        assert answer.headers["Retry-After"] == "3"


def test_drop_mid_resets_the_stream(code_sim: SimulatorControl, account: dict[str, Any]) -> None:
    code_sim.fault("code_messages", "drop_mid")
    code_sim.set_default({"text": "a long answer " * 20, "first_delay": 0, "cps": 200})
    answer = post(code_sim, account["access_token"], body(stream=True), stream=True)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        events(answer)


def test_error_mid_sends_an_error_frame(code_sim: SimulatorControl, account: dict[str, Any]) -> None:
    code_sim.script([{"text": "partial answer", "first_delay": 0, "cps": 100,
                      "fault": "error_mid"}])
    seen = events(post(code_sim, account["access_token"], body(stream=True), stream=True))
    assert seen[-1]["type"] == "error" and seen[-1]["error"]["code"] == 2056
    assert "message_stop" not in [e["type"] for e in seen]


def test_concurrent_generations_are_counted(code_sim: SimulatorControl,
                                            account: dict[str, Any]) -> None:
    code_sim.set_default({"text": "ok", "first_delay": 0.5})
    assert code_sim.code_stats()["max_concurrent"] == 0
    post(code_sim, account["access_token"], body())
    assert code_sim.code_stats()["max_concurrent"] == 1
    with ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(lambda _: post(code_sim, account["access_token"], body()).status_code,
                              range(2)))
    assert codes == [200, 200]  # the page: limit unknown; answered, but counted
    stats = code_sim.code_stats()
    assert stats["max_concurrent"] == 2 and stats["generating"] == 0


def test_non_stream_faults(code_sim: SimulatorControl, account: dict[str, Any]) -> None:
    code_sim.script([{"text": "partial", "first_delay": 0, "fault": "error_mid"},
                     {"text": "partial", "first_delay": 0, "fault": "drop_mid"}])
    wall = post(code_sim, account["access_token"], body())
    assert wall.status_code == 429 and wall.json()["base_resp"]["status_code"] == 2056
    with pytest.raises(requests.exceptions.ConnectionError):
        post(code_sim, account["access_token"], body())
    assert code_sim.code_stats()["generating"] == 0


def test_m31_without_thinking_can_be_accepted_by_config(code_sim: SimulatorControl,
                                                        account: dict[str, Any]) -> None:
    code_sim.set_default({"text": "ok", "first_delay": 0})
    flash = body(model="MiniMax-M3.1-Flash-Preview")
    assert post(code_sim, account["access_token"], flash).status_code == 400
    code_sim.code_config(m31_thinking_omitted="accept")
    content = post(code_sim, account["access_token"], flash).json()["content"]
    assert content[0]["type"] == "thinking"  # forced on: it thinks anyway


def test_linked_account_plays_its_own_script(code_sim: SimulatorControl) -> None:
    web = code_sim.add_accounts(1)[0]
    linked = code_sim.add_code_accounts(1, of=web["real_user_id"])[0]
    other = code_sim.add_code_accounts(1)[0]
    assert linked["real_user_id"] == web["real_user_id"] and linked["web_jwt"] == web["jwt"]
    code_sim.set_default({"text": "default", "first_delay": 0})
    code_sim.script([{"text": "mine", "first_delay": 0}], account=web["real_user_id"])
    assert post(code_sim, other["access_token"], body(model="MiniMax-M3")).json()[
        "content"][0]["text"] == "default"
    assert post(code_sim, linked["access_token"], body(model="MiniMax-M3")).json()[
        "content"][0]["text"] == "mine"


def test_reset_clears_the_code_surface(code_sim: SimulatorControl, account: dict[str, Any]) -> None:
    code_sim.code_config(pending_form="400", accept_web_tokens=True)
    code_sim.patch_code_account(account["name"], quota_left=0)
    assert post(code_sim, account["access_token"], body()).status_code == 429
    code_sim.reset()
    assert code_sim.code_config()["pending_form"] == "200"
    assert code_sim.code_log() == [] and code_sim.code_stats()["rejections"] == {}
    assert code_sim.code_accounts()[0]["quota_left"] == 1500  # restored, account kept
    code_sim.reset(drop_accounts=True)
    assert code_sim.code_accounts() == []
    assert post(code_sim, account["access_token"], body()).status_code == 401


def test_expire_access_forces_a_401_that_a_refresh_cures(code_sim: SimulatorControl,
                                                         account: dict[str, Any]) -> None:
    code_sim.set_default({"text": "ok", "first_delay": 0})
    code_sim.patch_code_account(account["name"], expire_access=True)
    assert post(code_sim, account["access_token"], body()).status_code == 401
    fresh = requests.post(f"{code_sim.base_url}/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": account["refresh_token"],
        "client_id": "mcode-public", "scope": "agent.default", "audience": "agent-backend"})
    assert post(code_sim, fresh.json()["access_token"], body()).status_code == 200


def test_log_keeps_no_secret_and_summarises_images(code_sim: SimulatorControl,
                                                   account: dict[str, Any]) -> None:
    code_sim.set_default({"text": "ok", "first_delay": 0})
    post(code_sim, account["access_token"], body(content=[image(), {"type": "text", "text": "x"}]),
         **{"x-api-key": "sk-xxx", "anthropic-beta": "tools-2024"})
    entry = code_sim.code_log()[-1]
    assert account["access_token"] not in json.dumps(entry) and "sk-xxx" not in json.dumps(entry)
    assert entry["auth"] == "bearer_mmoat" and entry["headers"]["anthropic-beta"] == "tools-2024"
    data = entry["body"]["messages"][0]["content"][0]["source"]["data"]
    assert data.startswith(f"<base64: {len(PNG)} chars, sha256 ")


def test_control_refuses_bad_options(code_sim: SimulatorControl) -> None:
    with pytest.raises(RuntimeError, match="400"):
        code_sim.code_config(pending_form="201")
    with pytest.raises(RuntimeError, match="400"):
        code_sim.code_config(no_such_knob=True)
    with pytest.raises(RuntimeError, match="400"):
        code_sim.fault("send_msg", "http_529")  # a code-surface fault on a web endpoint
    with pytest.raises(RuntimeError, match="404"):
        code_sim.approve_device("NOPE-NOPE")


def test_warnings_for_what_the_page_does_not_pin(code_sim: SimulatorControl,
                                                 account: dict[str, Any]) -> None:
    code_sim.script([{"text": "", "first_delay": 0, "tool_calls": [{"name": "nowhere"}]}])
    post(code_sim, account["access_token"], body(thinking={"type": "enabled", "budget_tokens": 900}))
    assert code_sim.code_stats()["warnings"] == {"tool_call_not_offered": 1,
                                                 "thinking_type_enabled": 1}
