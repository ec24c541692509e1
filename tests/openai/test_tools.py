"""Tool calling through the openai SDK: call → execute → result → answer."""

from __future__ import annotations

import json

import pytest

from tests.openai.test_chat_completions import client
from tests.tooling import WEATHER_SCHEMA, tool_answer, weather

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                           "parameters": WEATHER_SCHEMA}}]


def assemble_stream(chunks) -> tuple[str, list[dict], str]:
    """Text, tool calls (from their deltas, as the SDK user would) and finish reason."""
    text, calls, finish = "", {}, None
    for chunk in chunks:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        text += choice.delta.content or ""
        for delta in choice.delta.tool_calls or ():
            entry = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            entry["id"] = delta.id or entry["id"]
            if delta.function and delta.function.name:
                entry["name"] = delta.function.name
            entry["arguments"] += (delta.function.arguments or "") if delta.function else ""
        finish = choice.finish_reason or finish
    return text, [calls[i] for i in sorted(calls)], finish


def last_body(sim) -> dict:
    """The code surface's last /messages body."""
    return next(entry["body"] for entry in reversed(sim.code_log()) if entry["path"].endswith("/messages"))


@pytest.mark.parametrize("stream", [False, True])
def test_two_step_tool_loop(gateway, sim, upstream, credential, stream) -> None:
    sim.script([
        tool_answer(upstream.surface, ("get_weather", {"city": "Paris"}), before="Let me check.\n", cps=2000),
        {"text": "It is 21 degrees in Paris.", "cps": 2000},
    ])
    api = client(gateway, credential)
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        text, calls, finish = assemble_stream(api.chat.completions.create(
            model="m", messages=messages, tools=TOOLS, stream=True))
    else:
        reply = api.chat.completions.create(model="m", messages=messages, tools=TOOLS)
        message = reply.choices[0].message
        text, finish = message.content, reply.choices[0].finish_reason
        calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in message.tool_calls]
    assert finish == "tool_calls" and text == "Let me check.\n"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [("get_weather", {"city": "Paris"})]
    if upstream.surface == "code":  # native: the tool's definition goes as it is
        assert last_body(sim)["tools"] == [{"name": "get_weather", "description": "Current weather",
                                            "input_schema": WEATHER_SCHEMA}]
    else:
        assert "get_weather" in sim.log()[-1]["prompt"] and '"required":["city"]' in sim.log()[-1]["prompt"]
    call_id = calls[0]["id"]
    messages += [
        {"role": "assistant", "content": text, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": calls[0]["arguments"]}}]},
        {"role": "tool", "tool_call_id": call_id, "content": weather("Paris")},
    ]
    final = api.chat.completions.create(model="m", messages=messages, tools=TOOLS)
    assert final.choices[0].message.content == "It is 21 degrees in Paris."
    assert final.choices[0].finish_reason == "stop" and not final.choices[0].message.tool_calls
    if upstream.surface == "code":  # the call and its result as blocks, the result in one user turn
        turns = last_body(sim)["messages"]
        assert {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {"city": "Paris"}} in turns[1]["content"]
        assert turns[2] == {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call_id, "content": weather("Paris")}]}
    else:
        prompt = sim.log()[-1]["prompt"]
        assert f'"id": "{call_id}"' in prompt and f'<tool_result id="{call_id}"' in prompt
        assert '"temperature": 21' in prompt
    assert sim.wait_idle(5)["chats_alive"] == 0


def test_parallel_calls(gateway, sim, upstream, credential) -> None:
    sim.script([tool_answer(upstream.surface, ("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Rome", "unit": "F"}), cps=3000)])
    text, calls, finish = assemble_stream(client(gateway, credential).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Oslo and Rome?"}], tools=TOOLS, stream=True,
        parallel_tool_calls=True))
    assert finish == "tool_calls" and text == ""
    assert [json.loads(c["arguments"]) for c in calls] == [{"city": "Oslo"}, {"city": "Rome", "unit": "F"}]
    assert len({c["id"] for c in calls}) == 2


def test_malformed_call_is_repaired_by_one_retry(gateway, sim, web_only, upstream, credential) -> None:
    sim.script([
        tool_answer(upstream.surface, ("get_weather", {"city": "Oslo", "unit": "K"}), cps=3000),
        tool_answer(upstream.surface, ("get_weather", {"city": "Oslo", "unit": "C"}), cps=3000),
    ])
    reply = client(gateway, credential).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Oslo?"}], tools=TOOLS)
    call = reply.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"city": "Oslo", "unit": "C"}
    log = sim.log()
    assert len(log) == 2 and log[1]["chat_id"] == log[0]["chat_id"]  # the retry continues the chat
    assert "unit" in log[1]["prompt"] and "corrected" in log[1]["prompt"]
    assert sim.wait_idle(5)["chats_alive"] == 0 and sim.stats()["double_generation_attempts"] == 0


def test_unrepairable_call_comes_back_as_text(gateway, sim, web_only, upstream, credential) -> None:
    bad = tool_answer(upstream.surface, ("launch_rocket", {}))["text"]
    sim.script([{"text": bad, "cps": 3000}, {"text": "still no", "cps": 3000}])
    reply = client(gateway, credential).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "go"}], tools=TOOLS)
    assert reply.choices[0].message.content == bad and reply.choices[0].finish_reason == "stop"
    assert not reply.choices[0].message.tool_calls


def test_tool_choice_none_required_and_named(gateway, sim, web_only, upstream, credential) -> None:
    api = client(gateway, credential)
    messages = [{"role": "user", "content": "hi"}]
    sim.script([{"text": "plain", "cps": 3000}])
    none = api.chat.completions.create(model="m", messages=messages, tools=TOOLS, tool_choice="none")
    assert none.choices[0].message.content == "plain" and "<tool_calls>" not in sim.log()[-1]["prompt"]
    sim.script([{"text": "no call", "cps": 3000}, tool_answer(upstream.surface, ("get_weather", {"city": "Lima"}), cps=3000)])
    required = api.chat.completions.create(model="m", messages=messages, tools=TOOLS, tool_choice="required")
    assert required.choices[0].finish_reason == "tool_calls"
    assert "MUST call at least one tool" in sim.log()[-2]["prompt"]
    sim.script([tool_answer(upstream.surface, ("get_weather", {"city": "Kyiv"}), cps=3000)])
    named = api.chat.completions.create(model="m", messages=messages, tools=TOOLS,
                                        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert named.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert "MUST call the tool `get_weather`" in sim.log()[-1]["prompt"]


def test_tool_choice_goes_upstream_natively(gateway, sim, upstream, credential) -> None:
    if upstream.surface != "code":
        pytest.skip("the web surfaces get tool choice as prompt text (test_tool_choice_none_required_and_named)")
    api = client(gateway, credential)
    messages = [{"role": "user", "content": "hi"}]
    sim.script([tool_answer(upstream.surface, ("get_weather", {"city": "Lima"}), cps=3000)])
    api.chat.completions.create(model="m", messages=messages, tools=TOOLS, tool_choice="required")
    assert last_body(sim)["tool_choice"] == {"type": "any"}
    sim.script([tool_answer(upstream.surface, ("get_weather", {"city": "Kyiv"}), cps=3000)])
    api.chat.completions.create(model="m", messages=messages, tools=TOOLS,
                                tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert last_body(sim)["tool_choice"] == {"type": "tool", "name": "get_weather"}
