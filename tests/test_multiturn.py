"""Native multi-turn: a conversation continues its upstream chat instead of re-folding.

Each SDK holds a 10-turn conversation (streamed and not, in turn): every turn after the
first reaches the upstream as only its new message, in one upstream chat; an edited
history at turn 6 folds into a new chat, which the next turns continue. The guards (an
answer cut by max_tokens or a stop sequence, an error, a tool-call retry), the account
wait, the pins and the idle sweep are checked on the upstream's own log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
import requests
from google import genai
from google.genai import types as gtypes

from tests.simulator.control import SimulatorControl
from tests.tooling import WEATHER_SCHEMA, call_block, weather

SYSTEM = "You are terse. " * 20
TURNS = 10
EDIT_AT = 6
#: The settings of a gateway that keeps conversations (the test gateways fold by default).
KEEPING = {"GATEWAY_CONVERSATION_TTL": "600", "GATEWAY_CONVERSATION_WAIT": "1"}
FOLD_PREFACE = "Below is a conversation transcript."

Turn = Callable[[list[tuple[str, str]], str, bool], str]  # (history, question, stream) -> answer


# Keeping an upstream conversation is for the web surfaces; the code surface takes the whole
# structured history every turn (tests/chat/test_native.py).
pytestmark = pytest.mark.surfaces("matrix", "session")  # the web surfaces' emulation only


@pytest.fixture
def keeping(gateway_factory: Callable[..., str]) -> str:
    return gateway_factory(**KEEPING)


# -- one turn through each SDK ------------------------------------------------------------
def openai_turn(base: str, credential: str) -> Turn:
    client = openai.OpenAI(base_url=base + "/v1", api_key=credential, max_retries=0)

    def turn(history: list[tuple[str, str]], question: str, stream: bool) -> str:
        messages: list[Any] = [{"role": "system", "content": SYSTEM}]
        for asked, answered in history:
            messages += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
        messages.append({"role": "user", "content": question})
        if stream:
            chunks = client.chat.completions.create(model="m", messages=messages, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return client.chat.completions.create(model="m", messages=messages).choices[0].message.content or ""

    return turn


def anthropic_turn(base: str, credential: str) -> Turn:
    client = anthropic.Anthropic(base_url=base, api_key=credential, max_retries=0)

    def turn(history: list[tuple[str, str]], question: str, stream: bool) -> str:
        messages: list[Any] = []
        for asked, answered in history:
            messages += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
        messages.append({"role": "user", "content": question})
        if stream:
            with client.messages.stream(model="m", max_tokens=500, system=SYSTEM, messages=messages) as events:
                return events.get_final_text()
        reply = client.messages.create(model="m", max_tokens=500, system=SYSTEM, messages=messages)
        return "".join(block.text for block in reply.content if block.type == "text")

    return turn


def gemini_turn(base: str, credential: str) -> Turn:
    client = genai.Client(api_key=credential, http_options=gtypes.HttpOptions(base_url=base))
    config = gtypes.GenerateContentConfig(system_instruction=SYSTEM)

    def turn(history: list[tuple[str, str]], question: str, stream: bool) -> str:
        contents: list[Any] = []
        for asked, answered in history:
            contents += [gtypes.Content(role="user", parts=[gtypes.Part(text=asked)]),
                         gtypes.Content(role="model", parts=[gtypes.Part(text=answered)])]
        contents.append(gtypes.Content(role="user", parts=[gtypes.Part(text=question)]))
        if stream:
            chunks = client.models.generate_content_stream(model="m", contents=contents, config=config)
            return "".join(chunk.text or "" for chunk in chunks)
        return client.models.generate_content(model="m", contents=contents, config=config).text or ""

    return turn


SDKS = {"openai": openai_turn, "anthropic": anthropic_turn, "gemini": gemini_turn}


def script_answers(sim: SimulatorControl, count: int) -> list[str]:
    answers = [f"Answer number {i}, exactly." for i in range(1, count + 1)]
    sim.script([{"text": text, "cps": 5000} for text in answers])
    return answers


def wait_turns(sim: SimulatorControl, count: int) -> list[dict[str, Any]]:
    """The upstream's log once it holds ``count`` finished turns."""
    deadline = time.monotonic() + 10
    while len(log := sim.log()) < count or any(entry["status"] == "generating" for entry in log):
        assert time.monotonic() < deadline, f"{len(log)} turns logged, {count} expected"
        time.sleep(0.05)
    return log


# -- the 10-turn conversation -------------------------------------------------------------
@pytest.mark.parametrize("sdk", SDKS)
def test_ten_turns_run_in_one_upstream_chat_and_an_edit_folds(keeping, sim, credential, sdk) -> None:
    turn = SDKS[sdk](keeping, credential)
    answers = script_answers(sim, TURNS)
    history: list[tuple[str, str]] = []
    for number in range(1, TURNS + 1):
        if number == EDIT_AT:  # the client rewrites an earlier question: no longer the same chat
            history[1] = ("an edited second question", history[1][1])
        question = f"Question number {number}?"
        got = turn(history, question, number % 2 == 0)
        assert got == answers[number - 1]
        history.append((question, got))
    log = wait_turns(sim, TURNS)
    first, second = log[0]["chat_id"], log[EDIT_AT - 1]["chat_id"]
    assert first != second
    assert [entry["chat_id"] for entry in log] == [first] * (EDIT_AT - 1) + [second] * (TURNS - EDIT_AT + 1)
    assert SYSTEM.strip() in log[0]["prompt"] and FOLD_PREFACE in log[0]["prompt"]
    for number in [*range(2, EDIT_AT), *range(EDIT_AT + 1, TURNS + 1)]:
        assert log[number - 1]["prompt"] == f"Question number {number}?", f"turn {number}"
    edited = log[EDIT_AT - 1]["prompt"]
    assert FOLD_PREFACE in edited and "an edited second question" in edited and SYSTEM.strip() in edited
    assert sim.stats()["chats_alive"] == 2  # the first chat is swept later, like the kept one


def test_without_keeping_every_turn_folds_into_a_new_chat(gateway, sim, credential) -> None:
    """The test gateways' default (GATEWAY_CONVERSATION_TTL=0): every turn folds, as before."""
    turn = openai_turn(gateway, credential)
    answers = script_answers(sim, 2)
    first = turn([], "one?", False)
    assert turn([("one?", first)], "two?", False) == answers[1]
    log = wait_turns(sim, 2)
    assert log[0]["chat_id"] != log[1]["chat_id"] and FOLD_PREFACE in log[1]["prompt"]
    assert sim.wait_idle(10)["chats_alive"] == 0


# -- the guards ---------------------------------------------------------------------------
def chat_turn(base: str, credential: str, messages: list[dict[str, Any]], **extra: Any) -> requests.Response:
    response = requests.post(base + "/v1/chat/completions", headers={"Authorization": f"Bearer {credential}"},
                             json={"model": "m", "messages": messages, **extra}, timeout=30)
    assert response.status_code == 200, response.text
    return response


def answer_of(response: requests.Response) -> dict[str, Any]:
    message = response.json()["choices"][0]["message"]
    return {key: message[key] for key in ("role", "content", "tool_calls") if message.get(key) is not None}


def second_turn_chat(sim: SimulatorControl) -> tuple[str, str]:
    log = wait_turns(sim, 2)
    return log[0]["chat_id"], log[1]["chat_id"]


@pytest.mark.parametrize(("answer", "extra"), [
    ({"text": "one two three four five six seven eight nine ten"}, {"max_tokens": 3}),
    ({"text": "alpha STOP beta"}, {"stop": ["STOP"]}),
], ids=["max_tokens", "stop"])
def test_a_cut_answer_is_not_continued(keeping, sim, credential, answer, extra) -> None:
    sim.script([answer, {"text": "fine"}])
    question = [{"role": "user", "content": "go"}]
    first = chat_turn(keeping, credential, question, **extra)
    chat_turn(keeping, credential, [*question, answer_of(first), {"role": "user", "content": "again"}])
    one, two = second_turn_chat(sim)
    assert one != two and FOLD_PREFACE in sim.log()[1]["prompt"]


def test_an_answer_that_failed_is_not_continued(gateway_factory, sim, credential) -> None:
    keeping = gateway_factory(**KEEPING, GATEWAY_ANSWER_TIMEOUT="2")
    # Part of the answer arrives, then it stalls past the answer deadline: an error frame.
    sim.script([{"text": "partial answer that breaks", "cps": 200, "pauses": [{"at": 8, "seconds": 4}]},
                {"text": "fine"}])
    question = [{"role": "user", "content": "go"}]
    failed = requests.post(keeping + "/v1/chat/completions", headers={"Authorization": f"Bearer {credential}"},
                           json={"model": "m", "messages": question, "stream": True}, timeout=60)
    assert '"error"' in failed.text
    # The client keeps exactly the part it received: only the guard tells the turns apart.
    frames = [json.loads(line[6:]) for line in failed.text.splitlines() if line.startswith("data: {")]
    got = "".join((c.get("delta") or {}).get("content") or "" for f in frames for c in f.get("choices") or ())
    assert got and "partial answer that breaks".startswith(got), failed.text
    partial = {"role": "assistant", "content": got}
    chat_turn(keeping, credential, [*question, partial, {"role": "user", "content": "again"}])
    one, two = second_turn_chat(sim)
    assert one != two and FOLD_PREFACE in sim.log()[1]["prompt"]


def test_a_tool_call_retry_is_not_continued(keeping, sim, credential) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}]
    sim.script([{"text": "<tool_calls>\n[{\"name\": \"get_weather\", \"arguments\": {}}]\n</tool_calls>"},
                {"text": call_block(("get_weather", {"city": "Paris"}))}, {"text": "21 degrees"}])
    question = [{"role": "user", "content": "weather in Paris?"}]
    first = chat_turn(keeping, credential, question, tools=tools)
    call = first.json()["choices"][0]["message"]["tool_calls"][0]
    result = {"role": "tool", "tool_call_id": call["id"], "content": weather("Paris")}
    chat_turn(keeping, credential, [*question, answer_of(first), result], tools=tools)
    log = wait_turns(sim, 3)
    assert log[2]["chat_id"] != log[0]["chat_id"] and FOLD_PREFACE in log[2]["prompt"]


def test_tool_round_trips_continue_with_the_results_only(keeping, sim, credential) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}]
    sim.script([{"text": call_block(("get_weather", {"city": "Paris"}), before="Let me look. ")},
                {"text": call_block(("get_weather", {"city": "Lyon", "unit": "F"}))}, {"text": "Both mild."}])
    messages: list[dict[str, Any]] = [{"role": "user", "content": "weather in Paris and Lyon?"}]
    for _ in range(2):
        reply = chat_turn(keeping, credential, messages, tools=tools)
        call = reply.json()["choices"][0]["message"]["tool_calls"][0]
        messages += [answer_of(reply), {"role": "tool", "tool_call_id": call["id"],
                                        "content": weather(json.loads(call["function"]["arguments"])["city"])}]
    assert chat_turn(keeping, credential, messages, tools=tools).json()["choices"][0]["message"]["content"] == "Both mild."
    log = wait_turns(sim, 3)
    assert len({entry["chat_id"] for entry in log}) == 1
    for entry in log[1:]:
        assert entry["prompt"].startswith("[Tool]") and "<tool_result" in entry["prompt"]
        assert "get_weather" not in entry["prompt"].split("<tool_result")[0], "tool list re-sent"


# -- accounts, pins, lifetime -------------------------------------------------------------
def test_a_busy_account_is_waited_for_briefly_then_another_folds(keeping, sim, accounts) -> None:
    minted = accounts(2)
    pool = ",".join(account["credential"] for account in minted)
    sim.script([{"text": "first"}])
    question = [{"role": "user", "content": "go"}]
    first = chat_turn(keeping, pool, question)
    owner = wait_turns(sim, 1)[0]["account"]
    owner_credential = next(a["credential"] for a in minted if a["real_user_id"] == owner)
    # A long answer on the conversation's account alone keeps it busy.
    sim.script([{"text": "long " * 50, "cps": 25}], account=owner)
    sim.script([{"text": "second"}])
    holder = requests.post(keeping + "/v1/chat/completions", headers={"Authorization": f"Bearer {owner_credential}"},
                           json={"model": "m", "messages": [{"role": "user", "content": "other"}], "stream": True},
                           timeout=60, stream=True)
    chunks = holder.iter_content(None)  # kept: a dropped iterator closes the connection
    next(chunks)
    started = time.monotonic()
    chat_turn(keeping, pool, [*question, answer_of(first), {"role": "user", "content": "again"}])
    waited = time.monotonic() - started
    holder.close()
    log = sim.log()
    assert log[1]["account"] == owner and log[2]["account"] != owner
    assert FOLD_PREFACE in log[2]["prompt"] and 1.0 <= waited < 10
    assert log[0]["chat_id"] not in {entry["chat_id"] for entry in log[1:]}
    deadline = time.monotonic() + 10
    while sim.stats()["chats_alive"] != 1:  # only the new, kept chat: the one given up on is gone
        assert time.monotonic() < deadline, "the chat given up on was not deleted"
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["header", "metadata"])
def test_a_pinned_conversation_continues_even_when_the_history_differs(keeping, sim, credential, how) -> None:
    sim.script([{"text": "first"}, {"text": "second"}])
    pin = {"headers": {"X-Conversation-Id": "my-chat-1"}} if how == "header" else {}
    extra = {"metadata": {"conversation_id": "my-chat-1"}} if how == "metadata" else {}

    def post(messages: list[dict[str, Any]]) -> requests.Response:
        return requests.post(keeping + "/v1/chat/completions", json={"model": "m", "messages": messages, **extra},
                             headers={"Authorization": f"Bearer {credential}", **pin.get("headers", {})}, timeout=30)

    assert post([{"role": "user", "content": "go"}]).status_code == 200
    # The client's copy of the answer differs (it trimmed it): the pin still continues.
    rewritten = [{"role": "user", "content": "go"}, {"role": "assistant", "content": "fir"},
                 {"role": "user", "content": "and then?"}]
    assert post(rewritten).json()["choices"][0]["message"]["content"] == "second"
    one, two = second_turn_chat(sim)
    assert one == two and sim.log()[1]["prompt"] == "and then?"


def test_a_pin_that_is_too_long_is_refused(keeping, credential) -> None:
    response = requests.post(keeping + "/v1/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": "go"}]}, headers={"Authorization": f"Bearer {credential}",
                                                      "X-Conversation-Id": "x" * 201}, timeout=30)
    assert response.status_code == 400 and "X-Conversation-Id" in response.json()["error"]["message"]


#: The README's bound on a kept chat: its idle time, one sweep interval, and this for the
#: sweep itself (a deletion upstream, on a machine the whole suite loads).
SWEEP_SLACK = 3.0


def test_a_kept_chat_is_deleted_once_idle_for_its_time(gateway_factory, sim, credential) -> None:
    ttl, interval = 6.0, 1.0
    base = gateway_factory(GATEWAY_CONVERSATION_TTL=str(ttl), GATEWAY_SWEEP_INTERVAL=str(interval))
    sim.script([{"text": "kept a moment"}])
    chat_turn(base, credential, [{"role": "user", "content": "go"}])
    idle_since = time.monotonic()
    assert wait_turns(sim, 1) and sim.stats()["chats_alive"] == 1  # kept for the next turn
    while sim.stats()["chats_alive"]:
        assert time.monotonic() - idle_since < ttl + interval + SWEEP_SLACK, "the idle chat was not deleted in time"
        time.sleep(0.1)


def test_personal_callers_with_one_pin_never_touch_each_others_chat(keeping, sim, accounts) -> None:
    a, b, c = (account["credential"] for account in accounts(3))
    sim.script([{"text": "for a"}, {"text": "for b"}, {"text": "a again"}, {"text": "for a and c"}])

    def post(credential: str, texts: list[str]) -> requests.Response:
        messages = [{"role": ("user", "assistant")[i % 2], "content": text} for i, text in enumerate(texts)]
        response = requests.post(keeping + "/v1/chat/completions", json={"model": "m", "messages": messages},
                                 headers={"Authorization": f"Bearer {credential}", "X-Conversation-Id": "one-pin"},
                                 timeout=30)
        assert response.status_code == 200, response.text
        return response

    post(a, ["a asks"])
    post(b, ["b asks"])  # another caller (no account in common), the same pin
    post(a, ["a asks", "for a", "a again?"])  # still a's own chat
    # A caller whose pool merely includes a's account, with a longer history of its own.
    post(f"{a},{c}", ["x asks", "x's answer", "x again", "x's answer", "x third?"])
    log = wait_turns(sim, 4)
    assert log[2]["chat_id"] == log[0]["chat_id"] and log[2]["prompt"] == "a again?", "a's pin was displaced"
    assert log[3]["chat_id"] not in {entry["chat_id"] for entry in log[:3]}, "sent into another caller's chat"
    assert FOLD_PREFACE in log[3]["prompt"] and "x asks" in log[3]["prompt"]


@pytest.mark.parametrize("dialect", ["anthropic-metadata", "gemini-header"])
def test_pins_in_the_other_dialects(keeping, sim, credential, dialect) -> None:
    sim.script([{"text": "first"}, {"text": "second"}])
    if dialect == "anthropic-metadata":
        url, headers = keeping + "/v1/messages", {"x-api-key": credential}

        def body(texts: list[str]) -> dict[str, Any]:
            roles = ["user", "assistant"] * len(texts)
            return {"model": "m", "max_tokens": 50, "metadata": {"conversation_id": "pin-a"},
                    "messages": [{"role": r, "content": t} for r, t in zip(roles, texts, strict=False)]}
    else:
        url = keeping + "/v1beta/models/m:generateContent"
        headers = {"x-goog-api-key": credential, "X-Conversation-Id": "pin-g"}

        def body(texts: list[str]) -> dict[str, Any]:
            roles = ["user", "model"] * len(texts)
            return {"contents": [{"role": r, "parts": [{"text": t}]} for r, t in zip(roles, texts, strict=False)]}

    assert requests.post(url, json=body(["go"]), headers=headers, timeout=30).status_code == 200
    assert requests.post(url, json=body(["go", "(trimmed)", "next?"]), headers=headers, timeout=30).ok
    one, two = second_turn_chat(sim)
    assert one == two and sim.log()[1]["prompt"] == "next?"
