"""Tool use through the anthropic SDK: tool_use → execute → tool_result → answer."""

from __future__ import annotations

import pytest

from tests.anthropic.test_messages import client
from tests.openai.test_tools import last_body
from tests.tooling import WEATHER_SCHEMA, call_block, tool_answer, weather

TOOLS = [{"name": "get_weather", "description": "Current weather", "input_schema": WEATHER_SCHEMA}]


@pytest.mark.parametrize("stream", [False, True])
def test_two_step_tool_loop(gateway, sim, upstream, credential, stream) -> None:
    sim.script([
        tool_answer(upstream.surface, ("get_weather", {"city": "Lima"}), before="One moment.", thinking="Need weather.", cps=2000),
        {"text": "Lima is at 21 degrees.", "cps": 2000},
    ])
    api = client(gateway, credential)
    messages = [{"role": "user", "content": "Weather in Lima?"}]
    thinking = {"type": "enabled", "budget_tokens": 1024}
    if stream:
        with api.messages.stream(model="m", max_tokens=2000, messages=messages, tools=TOOLS, thinking=thinking) as s:
            reply = s.get_final_message()
    else:
        reply = api.messages.create(model="m", max_tokens=2000, messages=messages, tools=TOOLS, thinking=thinking)
    assert [b.type for b in reply.content] == ["thinking", "text", "tool_use"]
    assert reply.stop_reason == "tool_use" and reply.content[1].text == "One moment."
    use = reply.content[2]
    assert (use.name, use.input) == ("get_weather", {"city": "Lima"})
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": weather("Lima")}]},
    ]
    final = api.messages.create(model="m", max_tokens=2000, messages=messages, tools=TOOLS)
    assert final.content[0].text == "Lima is at 21 degrees." and final.stop_reason == "end_turn"
    if upstream.surface == "code":  # the signed thinking goes back as it came, beside the call
        replayed = last_body(sim)["messages"][1]["content"]
        assert replayed[0] == {"type": "thinking", "thinking": "Need weather.", "signature": reply.content[0].signature}
        assert replayed[-1] == {"type": "tool_use", "id": use.id, "name": "get_weather", "input": {"city": "Lima"}}
        assert sim.code_stats().get("unsigned_thinking_dropped", 0) == 0
    else:
        prompt = sim.log()[-1]["prompt"]
        assert f'"id": "{use.id}"' in prompt and f'<tool_result id="{use.id}"' in prompt
        assert "Need weather." not in prompt


def test_parallel_tool_uses_have_contiguous_blocks(gateway, sim, upstream, credential) -> None:
    sim.script([tool_answer(upstream.surface, ("get_weather", {"city": "A"}), ("get_weather", {"city": "B"}), cps=3000)])
    with client(gateway, credential).messages.stream(model="m", max_tokens=100, tools=TOOLS,
                                                     messages=[{"role": "user", "content": "A and B"}]) as s:
        events = list(s)
        reply = s.get_final_message()
    uses = [b for b in reply.content if b.type == "tool_use"]
    assert [b.input["city"] for b in uses] == ["A", "B"]
    starts = [e.index for e in events if e.type == "content_block_start"]
    assert starts == list(range(len(reply.content)))  # (a thinking block first on the code surface)


def test_tool_choice_any_and_tool(gateway, sim, web_only, credential) -> None:
    api = client(gateway, credential)
    sim.script([{"text": "chatting", "cps": 3000}, {"text": call_block(("get_weather", {"city": "X"})), "cps": 3000}])
    reply = api.messages.create(model="m", max_tokens=100, tools=TOOLS, tool_choice={"type": "any"},
                                messages=[{"role": "user", "content": "hi"}])
    assert reply.stop_reason == "tool_use"
    sim.script([{"text": "plain", "cps": 3000}])
    none = api.messages.create(model="m", max_tokens=100, tools=TOOLS, tool_choice={"type": "none"},
                               messages=[{"role": "user", "content": "hi"}])
    assert none.content[0].text == "plain" and "<tool_calls>" not in sim.log()[-1]["prompt"]
