"""The simulator's MiniMax Code LLM host: what a good call gets, faults, quota, control.

Role: drive a real simulator process with `requests` and check the page's (UPSTREAM-CODE.md
§2, §3) happy paths — streaming event order and usage placement, pings, non-stream
messages, tool_use round trips, max_tokens, the catalogue — and the quota wall, faults,
the concurrency counter, linked accounts, reset and the control API. The strictness
rules are in test_code_rules.py.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.simulator.control import SimulatorControl
from tests.simulator_tests.code_client import MESSAGES, PNG, body, events, image, post


def test_stream_plays_thinking_text_and_usage_in_order(code_sim: SimulatorControl,
                                                       code_account: dict[str, Any]) -> None:
    code_sim.script([{"text": "Hello — 中文 world", "thinking": "let me think",
                      "first_delay": 0, "cps": 200}])
    answer = post(code_sim, code_account["access_token"], body(stream=True), stream=True)
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
    counted = post(code_sim, code_account["access_token"], body(),
                   path=MESSAGES + "/count_tokens").json()
    assert counted == {"input_tokens": usage["input_tokens"]}


def test_pings_while_waiting_for_the_first_token(code_sim: SimulatorControl,
                                                 code_account: dict[str, Any]) -> None:
    code_sim.code_config(ping_seconds=0.2)
    code_sim.script([{"text": "late", "first_delay": 1.0}])
    seen = events(post(code_sim, code_account["access_token"], body(stream=True), stream=True))
    first_block = next(i for i, e in enumerate(seen) if e["type"] == "content_block_start")
    assert sum(e["type"] == "ping" for e in seen[:first_block]) >= 3


def test_non_stream_answers_one_message(code_sim: SimulatorControl,
                                        code_account: dict[str, Any]) -> None:
    code_sim.script([{"echo": "quoted", "first_delay": 0}])
    answer = post(code_sim, code_account["access_token"], body(content="say <<<exactly this>>>"))
    message = answer.json()
    assert message["type"] == "message" and message["stop_reason"] == "end_turn"
    assert [b["type"] for b in message["content"]] == ["thinking", "text"]  # M2.7 always thinks
    assert message["content"][1]["text"] == "exactly this"
    assert message["usage"]["output_tokens_details"]["thinking_tokens"] > 0


def test_tool_use_round_trip(code_sim: SimulatorControl, code_account: dict[str, Any]) -> None:
    code_sim.script([{"text": "", "first_delay": 0, "tool_calls": [
        {"name": "get_weather", "input": {"city": "Paris", "unit": "°C"}},
        {"name": "get_time", "input": {"tz": "Europe/Paris"}}]},
        {"echo": "quoted", "first_delay": 0}])
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}},
             {"name": "get_time", "input_schema": {"type": "object"}}]
    first = body(model="MiniMax-M3", tools=tools, stream=True)
    seen = events(post(code_sim, code_account["access_token"], first, stream=True))
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
    answer = post(code_sim, code_account["access_token"], second).json()
    assert answer["content"] == [{"type": "text", "text": "sunny"}]  # M3 without thinking
    assert code_sim.code_stats()["warnings"] == {}


def test_max_tokens_cuts_the_answer(code_sim: SimulatorControl, code_account: dict[str, Any]) -> None:
    code_sim.script([{"text": "x" * 400, "first_delay": 0}])
    answer = post(code_sim, code_account["access_token"],
                  {**body(model="MiniMax-M3"), "max_tokens": 10}).json()
    assert answer["stop_reason"] == "max_tokens" and len(answer["content"][0]["text"]) == 40


def test_catalogue(code_sim: SimulatorControl, code_account: dict[str, Any]) -> None:
    url = f"{code_sim.base_url}/mavis/api/v1/models"
    auth = {"Authorization": f"Bearer {code_account['access_token']}"}
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

def test_quota_exhaustion_is_429_with_2056(code_sim: SimulatorControl) -> None:
    code_account = code_sim.add_code_accounts(1, quota=1)[0]
    code_sim.set_default({"text": "ok", "first_delay": 0})
    assert post(code_sim, code_account["access_token"], body()).status_code == 200
    wall = post(code_sim, code_account["access_token"], body())
    assert wall.status_code == 429 and wall.json()["base_resp"]["status_code"] == 2056
    assert wall.json()["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("kind, status", [("http_529", 529), ("http_429", 429), ("expired", 401),
                                          ("http_502", 502), ("no_credits", 402), ("quota", 429)])
def test_endpoint_faults(code_sim: SimulatorControl, code_account: dict[str, Any], kind: str,
                         status: int) -> None:
    code_sim.fault("code_messages", kind, seconds=3 if kind == "http_429" else None)
    answer = post(code_sim, code_account["access_token"], body())
    assert answer.status_code == status
    if kind == "http_429":
        assert answer.headers["Retry-After"] == "3"


def test_drop_mid_resets_the_stream(code_sim: SimulatorControl, code_account: dict[str, Any]) -> None:
    code_sim.fault("code_messages", "drop_mid")
    code_sim.set_default({"text": "a long answer " * 20, "first_delay": 0, "cps": 200})
    answer = post(code_sim, code_account["access_token"], body(stream=True), stream=True)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        events(answer)


def test_error_mid_sends_an_error_frame(code_sim: SimulatorControl, code_account: dict[str, Any]) -> None:
    code_sim.script([{"text": "partial answer", "first_delay": 0, "cps": 100,
                      "fault": "error_mid"}])
    seen = events(post(code_sim, code_account["access_token"], body(stream=True), stream=True))
    assert seen[-1]["type"] == "error" and seen[-1]["error"]["code"] == 2056
    assert "message_stop" not in [e["type"] for e in seen]


def test_concurrent_generations_are_counted(code_sim: SimulatorControl,
                                            code_account: dict[str, Any]) -> None:
    code_sim.set_default({"text": "ok", "first_delay": 0.5})
    assert code_sim.code_stats()["max_concurrent"] == 0
    post(code_sim, code_account["access_token"], body())
    assert code_sim.code_stats()["max_concurrent"] == 1
    with ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(lambda _: post(code_sim, code_account["access_token"], body()).status_code,
                              range(2)))
    assert codes == [200, 200]  # the page: limit unknown; answered, but counted
    stats = code_sim.code_stats()
    assert stats["max_concurrent"] == 2 and stats["generating"] == 0


def test_non_stream_faults(code_sim: SimulatorControl, code_account: dict[str, Any]) -> None:
    code_sim.script([{"text": "partial", "first_delay": 0, "fault": "error_mid"},
                     {"text": "partial", "first_delay": 0, "fault": "drop_mid"}])
    wall = post(code_sim, code_account["access_token"], body())
    assert wall.status_code == 429 and wall.json()["base_resp"]["status_code"] == 2056
    with pytest.raises(requests.exceptions.ConnectionError):
        post(code_sim, code_account["access_token"], body())
    assert code_sim.code_stats()["generating"] == 0

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


def test_reset_clears_the_code_surface(code_sim: SimulatorControl, code_account: dict[str, Any]) -> None:
    code_sim.code_config(pending_form="400", accept_web_tokens=True)
    code_sim.patch_code_account(code_account["name"], quota_left=0)
    assert post(code_sim, code_account["access_token"], body()).status_code == 429
    code_sim.reset()
    assert code_sim.code_config()["pending_form"] == "200"
    assert code_sim.code_log() == [] and code_sim.code_stats()["rejections"] == {}
    assert code_sim.code_accounts()[0]["quota_left"] == 1500  # restored, account kept
    code_sim.reset(drop_accounts=True)
    assert code_sim.code_accounts() == []
    assert post(code_sim, code_account["access_token"], body()).status_code == 401


def test_expire_access_forces_a_401_that_a_refresh_cures(code_sim: SimulatorControl,
                                                         code_account: dict[str, Any]) -> None:
    code_sim.set_default({"text": "ok", "first_delay": 0})
    code_sim.patch_code_account(code_account["name"], expire_access=True)
    assert post(code_sim, code_account["access_token"], body()).status_code == 401
    fresh = requests.post(f"{code_sim.base_url}/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": code_account["refresh_token"],
        "client_id": "mcode-public", "scope": "agent.default", "audience": "agent-backend"})
    assert post(code_sim, fresh.json()["access_token"], body()).status_code == 200


def test_log_keeps_no_secret_and_summarises_images(code_sim: SimulatorControl,
                                                   code_account: dict[str, Any]) -> None:
    code_sim.set_default({"text": "ok", "first_delay": 0})
    post(code_sim, code_account["access_token"], body(content=[image(), {"type": "text", "text": "x"}]),
         **{"x-api-key": "sk-xxx", "anthropic-beta": "tools-2024"})
    entry = code_sim.code_log()[-1]
    assert code_account["access_token"] not in json.dumps(entry) and "sk-xxx" not in json.dumps(entry)
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


def test_sim_log_shows_code_generations_beside_the_web_ones(code_sim: SimulatorControl,
                                                            code_account: dict[str, Any]) -> None:
    code_sim.script([{"text": "logged", "thinking": "t", "first_delay": 0}])
    post(code_sim, code_account["access_token"], body(content="the prompt"))
    entry = code_sim.log()[-1]
    assert entry["surface"] == "code" and entry["account"] == code_account["real_user_id"]
    assert entry["prompt"] == "the prompt" and entry["answer"] == "logged"
    assert entry["status"] == "finished" and entry["delivered"] == "logged"


def test_hang_mid_stalls_then_finishes(code_sim: SimulatorControl,
                                       code_account: dict[str, Any]) -> None:
    code_sim.script([{"text": "slow but whole", "first_delay": 0, "cps": 100,
                      "fault": "hang_mid", "fault_seconds": 0.3}])
    seen = events(post(code_sim, code_account["access_token"], body(stream=True), stream=True))
    text = "".join(e["delta"].get("text", "") for e in seen if e["type"] == "content_block_delta")
    assert text == "slow but whole" and seen[-1]["type"] == "message_stop"


@pytest.mark.parametrize("stream", [False, True])
def test_stop_sequences_end_the_text(code_sim: SimulatorControl, code_account: dict[str, Any],
                                     stream: bool) -> None:
    code_sim.script([{"text": "one zzz two ### three", "first_delay": 0}])
    payload = body(model="MiniMax-M3", stop_sequences=["###", "zzz"], stream=stream)
    answer = post(code_sim, code_account["access_token"], payload, stream=stream)
    if stream:
        seen = events(answer)
        text = "".join(e["delta"].get("text", "") for e in seen if e["type"] == "content_block_delta")
        end = seen[-2]["delta"]
    else:
        message = answer.json()
        text, end = message["content"][0]["text"], message
    assert text == "one " and end["stop_reason"] == "stop_sequence" and end["stop_sequence"] == "zzz"
