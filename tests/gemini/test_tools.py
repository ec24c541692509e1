"""Function calling through google-genai: functionCall → execute → functionResponse → answer."""

from __future__ import annotations

import pytest
from google.genai import types

from tests.gemini.test_generate import client
from tests.openai.test_tools import last_body
from tests.tooling import WEATHER_SCHEMA, tool_answer

TOOL = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Current weather", parameters_json_schema=WEATHER_SCHEMA)])


@pytest.mark.parametrize("stream", [False, True])
def test_two_step_function_loop(gateway, sim, upstream, credential, stream) -> None:
    sim.script([
        tool_answer(upstream.surface, ("get_weather", {"city": "Cairo"}), cps=2000),
        {"text": "Cairo: 21 degrees.", "cps": 2000},
    ])
    api = client(gateway, credential, "v1beta")
    config = types.GenerateContentConfig(tools=[TOOL], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    contents = [types.Content(role="user", parts=[types.Part(text="Weather in Cairo?")])]
    if stream:
        chunks = list(api.models.generate_content_stream(model="gemini-2.5-flash", contents=contents, config=config))
        calls = [fc for c in chunks for fc in (c.function_calls or [])]
        assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    else:
        reply = api.models.generate_content(model="gemini-2.5-flash", contents=contents, config=config)
        calls = reply.function_calls
        assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Cairo"})]
    call = calls[0]
    contents += [
        types.Content(role="model", parts=[types.Part(function_call=call)]),
        types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
            id=call.id, name="get_weather", response={"temperature": 21}))]),
    ]
    final = api.models.generate_content(model="gemini-2.5-flash", contents=contents, config=config)
    assert final.text == "Cairo: 21 degrees."
    if upstream.surface == "code":
        result = last_body(sim)["messages"][2]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == call.id and '"temperature": 21' in result["content"]
    else:
        prompt = sim.log()[-1]["prompt"]
        assert f'<tool_result id="{call.id}" name="get_weather">' in prompt and '"temperature": 21' in prompt


def test_mode_any_with_allowed_name(gateway, sim, upstream, credential) -> None:
    sim.script([tool_answer(upstream.surface, ("get_weather", {"city": "Quito"}), cps=3000)])
    config = types.GenerateContentConfig(tools=[TOOL], tool_config=types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(mode="ANY", allowed_function_names=["get_weather"])))
    api = client(gateway, credential)
    reply = api.models.generate_content(model="g", contents="Quito?", config=config)
    assert reply.function_calls[0].args == {"city": "Quito"}
    if upstream.surface == "code":
        assert last_body(sim)["tool_choice"] == {"type": "tool", "name": "get_weather"}
    else:
        assert "MUST call the tool `get_weather`" in sim.log()[-1]["prompt"]
