"""The OpenAI Agents SDK (Responses by default) runs an agent with one function tool to
completion through the gateway, plain and streamed."""

from __future__ import annotations

import asyncio

import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from tests.tooling import tool_answer, weather

ANSWER = "It is 21 degrees in Paris."


def weather_agent(gateway: str, credential: str, cities: list[str]) -> Agent:
    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        cities.append(city)
        return weather(city)

    client = AsyncOpenAI(base_url=gateway + "/v1", api_key=credential, max_retries=0)
    return Agent(name="Weather", instructions="Answer with the tool's data.", tools=[get_weather],
                 model=OpenAIResponsesModel(model="MiniMax-M2", openai_client=client))


async def streamed(agent: Agent, task: str) -> str:
    run = Runner.run_streamed(agent, task)
    async for _ in run.stream_events():
        pass
    return str(run.final_output)


@pytest.mark.parametrize("stream", [False, True])
def test_agent_with_a_function_tool_completes(gateway, sim, upstream, credential, stream) -> None:
    set_tracing_disabled(True)  # no trace export to OpenAI
    sim.script([
        tool_answer(upstream.surface, ("get_weather", {"city": "Paris"}), cps=5000),
        {"text": ANSWER, "cps": 5000},
    ])
    cities: list[str] = []
    agent = weather_agent(gateway, credential, cities)
    task = "What is the weather in Paris?"
    output = asyncio.run(streamed(agent, task)) if stream else Runner.run_sync(agent, task).final_output
    assert output == ANSWER and cities == ["Paris"]
    if upstream.surface == "code":  # a native tool and its result as a tool_result block
        first, second = (entry["body"] for entry in sim.code_log() if entry["path"].endswith("/messages"))
        assert [tool["name"] for tool in first["tools"]] == ["get_weather"]
        assert first["system"] == [{"type": "text", "text": "Answer with the tool's data."}]
        [call] = [block for block in second["messages"][1]["content"] if block["type"] == "tool_use"]
        assert (call["name"], call["input"]) == ("get_weather", {"city": "Paris"})
        assert second["messages"][2]["content"] == [
            {"type": "tool_result", "tool_use_id": call["id"], "content": weather("Paris")}]
    else:
        first, second = sim.log()
        assert "get_weather" in first["prompt"] and "Answer with the tool's data." in first["prompt"]
        assert "<tool_result" in second["prompt"] and '"temperature": 21' in second["prompt"]
