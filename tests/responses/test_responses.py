"""The Responses API through the openai SDK: create, stream, previous_response_id, get
and delete, each caller seeing only its own stored responses."""

from __future__ import annotations

import json

import openai
import pytest
from openai._models import construct_type
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel

from gateway.responses.translate import SIGNATURE_PREFIX
from gateway.upstream.code_messages import CUSTOM_INPUT_SCHEMA
from tests.openai.test_tools import last_body
from tests.tooling import WEATHER_SCHEMA, tool_answer

TOOLS = [{"type": "function", "name": "get_weather", "description": "Current weather", "parameters": WEATHER_SCHEMA}]


def client(gateway: str, credential: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway + "/v1", api_key=credential, max_retries=0)


#: ``response.failed`` codes the API sends and Codex acts on that the SDK's Literal lacks.
CODEX_FAILURE_CODES = ("insufficient_quota", "context_length_exceeded")


def validated(data: dict) -> BaseModel:
    """One event as the SDK's own type for it (picked by ``type``, as the SDK does), strictly
    validated: every field present with the right type; an unknown event fails."""
    event = construct_type(type_=ResponseStreamEvent, value=data)
    assert isinstance(event, BaseModel), f"unknown event {data.get('type')}"
    error = (data.get("response") or {}).get("error") or {}
    if error.get("code") in CODEX_FAILURE_CODES:  # checked as the one code the Literal has
        checked = type(event).model_validate({**data, "response": {**data["response"], "error": {
            **error, "code": "server_error"}}})
        return checked.model_copy(update={"response": checked.response.model_copy(update={
            "error": checked.response.error.model_copy(update={"code": error["code"]})})})
    return type(event).model_validate(data)


def checked_events(api: openai.OpenAI, **request: object) -> list:
    """The raw stream, every event validated by the SDK's own event types, in order."""
    events = []
    with api.responses.with_streaming_response.create(stream=True, **request) as raw:
        for line in raw.iter_lines():
            if line.startswith("data: "):
                events.append(validated(json.loads(line[6:])))
    numbers = [event.sequence_number for event in events]
    assert numbers == sorted(set(numbers)) and numbers[0] == 0
    assert events[0].type == "response.created" and events[1].type == "response.in_progress"
    assert events[-1].type in ("response.completed", "response.incomplete", "response.failed")
    return events


def test_create_answers_text(gateway, sim, upstream, credential) -> None:
    sim.script([{"text": "Hello from MiniMax.", "cps": 5000}])
    response = client(gateway, credential).responses.create(
        model="MiniMax-M2", input="Say hello.", instructions="Be brief.", store=False,
        include=["reasoning.encrypted_content"], prompt_cache_key="abc", service_tier="auto")
    assert response.status == "completed" and response.output_text == "Hello from MiniMax."
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    if upstream.surface == "code":  # the instructions as the system text, the input as the user turn
        body = last_body(sim)
        assert body["system"] == [{"type": "text", "text": "Be brief."}]
        assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}]
    else:
        prompt = sim.log()[-1]["prompt"]
        assert "Be brief." in prompt and "Say hello." in prompt


def test_stream_event_sequence(gateway, sim, credential) -> None:
    sim.script([{"text": "Streamed answer.", "thinking": "Let me think.", "cps": 2000}])
    events = checked_events(client(gateway, credential), model="MiniMax-M2", input="Hi",
                            reasoning={"effort": "high", "summary": "auto"})
    kinds = [event.type for event in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed"
    final = events[-1].response
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == "Let me think."
    assert final.output_text == "Streamed answer."
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Streamed answer."
    assert isinstance(final.usage.total_tokens, int) and final.usage.total_tokens > 0


def test_sdk_stream_helper_and_function_call(gateway, sim, upstream, credential) -> None:
    sim.script([tool_answer(upstream.surface, ("get_weather", {"city": "Paris"}), cps=5000)])
    api = client(gateway, credential)
    with api.responses.stream(model="MiniMax-M2", input="Weather in Paris?", tools=TOOLS) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    [call] = final.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    if upstream.surface == "code":  # a native tool, as it was defined
        assert last_body(sim)["tools"] == [{"name": "get_weather", "description": "Current weather",
                                            "input_schema": WEATHER_SCHEMA}]
    sim.script([{"text": "It is 21 degrees.", "cps": 5000}])
    answer = api.responses.create(
        model="MiniMax-M2", previous_response_id=final.id, tools=TOOLS,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature": 21}'}])
    assert answer.output_text == "It is 21 degrees."
    if upstream.surface == "code":  # the stored turn replayed: the question, the call, its output
        assert last_body(sim)["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": call.call_id, "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call.call_id, "content": '{"temperature": 21}'}]},
        ]
    else:
        prompt = sim.log()[-1]["prompt"]
        assert "Weather in Paris?" in prompt and '{"temperature": 21}' in prompt


def test_previous_response_id_get_delete_and_scoping(gateway, sim, upstream, accounts) -> None:
    mine, theirs = (account["credential"] for account in accounts(2))
    api, other = client(gateway, mine), client(gateway, theirs)
    sim.script([{"text": "First answer.", "cps": 5000}, {"text": "Second answer.", "cps": 5000}])
    first = api.responses.create(model="MiniMax-M2", input="Remember the word zebra.")
    second = api.responses.create(model="MiniMax-M2", input="Which word?", previous_response_id=first.id)
    if upstream.surface == "code":  # nothing is kept upstream: the stored turn is sent again
        assert last_body(sim)["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "Remember the word zebra."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "First answer."}]},
            {"role": "user", "content": [{"type": "text", "text": "Which word?"}]},
        ]
    else:
        prompt = sim.log()[-1]["prompt"]
        assert "zebra" in prompt and "First answer." in prompt and "Which word?" in prompt
    assert api.responses.retrieve(second.id).output_text == "Second answer."
    for call in (lambda: other.responses.retrieve(first.id),
                 lambda: other.responses.create(model="MiniMax-M2", input="x", previous_response_id=first.id),
                 lambda: other.responses.delete(first.id)):
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        assert caught.value.body["code"] == "not_found"
    api.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        api.responses.retrieve(first.id)
    assert api.responses.retrieve(second.id).id == second.id


def test_store_false_keeps_nothing(gateway, sim, credential) -> None:
    sim.script([{"text": "Not kept.", "cps": 5000}])
    api = client(gateway, credential)
    response = api.responses.create(model="MiniMax-M2", input="Hi", store=False)
    with pytest.raises(openai.NotFoundError):
        api.responses.retrieve(response.id)


def test_client_keys_scope_stored_responses_on_shared_accounts(gateway_factory, sim, credential) -> None:
    alpha, beta = "sk-responses-alpha-4d1f0c9e8b7a", "sk-responses-beta-9a8b7c6d5e4f"
    gateway = gateway_factory(GATEWAY_API_KEYS=f"{alpha} name=alpha,{beta} name=beta", MINIMAX_CREDENTIALS=credential)
    sim.script([{"text": "Kept for alpha.", "cps": 5000}])
    first = client(gateway, alpha).responses.create(model="MiniMax-M2", input="Hi")
    assert client(gateway, alpha).responses.retrieve(first.id).output_text == "Kept for alpha."
    with pytest.raises(openai.NotFoundError):  # the same server account, another key
        client(gateway, beta).responses.retrieve(first.id)


PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
FREEFORM_TOOLS = [
    {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch",
     "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}},
    {"type": "namespace", "name": "crm", "description": "The CRM", "tools": [
        {"type": "function", "name": "find_customer", "parameters": {
            "type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]}}]},
]


def test_custom_and_namespaced_tool_calls(gateway, sim, upstream, credential) -> None:
    sim.script([tool_answer(upstream.surface, ("apply_patch", {"input": PATCH}),
                            ("crm.find_customer", {"email": "a@b.c"}), cps=5000)])
    events = checked_events(client(gateway, credential), model="MiniMax-M2", input="Add hello.txt, find a@b.c",
                            tools=FREEFORM_TOOLS)
    patch, lookup = events[-1].response.output
    assert (patch.type, patch.name, patch.input) == ("custom_tool_call", "apply_patch", PATCH)  # raw, not JSON
    assert (lookup.type, lookup.namespace, lookup.name) == ("function_call", "crm", "find_customer")
    assert "".join(e.delta for e in events if e.type == "response.custom_tool_call_input.delta") == PATCH
    if upstream.surface == "code":  # the freeform tool takes its raw text as one string
        patch_tool, lookup_tool = last_body(sim)["tools"]
        assert patch_tool["name"] == "apply_patch" and patch_tool["input_schema"] == CUSTOM_INPUT_SCHEMA
        assert "start: begin_patch hunk+ end_patch" in patch_tool["description"]
        assert lookup_tool == {"name": "crm.find_customer", "description": "",
                               "input_schema": FREEFORM_TOOLS[1]["tools"][0]["parameters"]}
    else:
        prompt = sim.log()[-1]["prompt"]
        assert "lark grammar:\nstart: begin_patch" in prompt and "crm.find_customer" in prompt


def test_json_mode_returns_only_the_json(gateway, sim, upstream, credential) -> None:
    sim.script([{"text": 'Here you go:\n```json\n{"city": "Paris"}\n```', "cps": 5000}])
    response = client(gateway, credential).responses.create(
        model="MiniMax-M2", input="City as JSON", text={"format": {"type": "json_object"}})
    assert json.loads(response.output_text) == {"city": "Paris"}
    if upstream.surface == "code":  # the JSON instruction as system text, the input as it was
        body = last_body(sim)
        assert "valid JSON" in body["system"][-1]["text"]
        assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "City as JSON"}]}]
    else:
        assert "valid JSON" in sim.log()[-1]["prompt"]


@pytest.mark.surfaces("code")  # the one surface that signs its thinking
@pytest.mark.parametrize("stream", [False, True])
def test_signed_thinking_is_replayed_with_the_tool_call(gateway, sim, upstream, credential, stream) -> None:
    """The code surface's signed thinking comes out as the reasoning item's encrypted_content
    and goes back upstream as a thinking block before its call: from the stored response
    (previous_response_id), and from the items a stateless client (Codex) sends back."""
    sim.script([tool_answer(upstream.surface, ("get_weather", {"city": "Paris"}), thinking="Check the weather.",
                            cps=5000), {"text": "It is 21 degrees.", "cps": 5000}])
    api = client(gateway, credential)
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    request = {"model": "MiniMax-M3", "tools": TOOLS, "reasoning": {"effort": "high", "summary": "auto"}}
    if stream:
        first = checked_events(api, input=ask, store=False, include=["reasoning.encrypted_content"],
                               **request)[-1].response
    else:
        first = api.responses.create(input=ask, **request)
    reasoning, call = first.output
    assert reasoning.summary[0].text == "Check the weather." and reasoning.encrypted_content
    signature = reasoning.encrypted_content.removeprefix(SIGNATURE_PREFIX)
    assert len(signature) > 20 and signature != reasoning.encrypted_content
    output = [{"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature": 21}'}]
    if stream:  # the client sends the whole conversation back, reasoning included
        api.responses.create(input=[*ask, *(item.model_dump(exclude_none=True) for item in first.output), *output],
                             store=False, **request)
    else:
        api.responses.create(input=output, previous_response_id=first.id, **request)
    assert last_body(sim)["messages"][1] == {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Check the weather.", "signature": signature},
        {"type": "tool_use", "id": call.call_id, "name": "get_weather", "input": {"city": "Paris"}}]}
