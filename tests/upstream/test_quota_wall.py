"""End to end: a quota wall that a web surface writes as its answer is each dialect's quota
error, streamed or not, never the answer (both web surfaces: the ``gateway`` fixture).

The simulator plays the wall as an ordinary scripted answer (HTTP 200, assistant text).
"""

from __future__ import annotations

import anthropic
import openai
import pytest
import requests
from google.genai import errors

from tests.anthropic.test_messages import client as anthropic_client
from tests.gemini.test_generate import client as gemini_client
from tests.openai.test_chat_completions import client as openai_client

WALL = "42212: Token Plan usage limit reached: Upgrade your Token Plan or purchase Credits for more usage. (2056)"
ASK = [{"role": "user", "content": "Hello"}]


# A wall written as answer text is a web-surface behaviour (the code surface's is an error
# answer: tests/faults/test_matrix.py).
pytestmark = pytest.mark.surfaces("matrix", "session")


@pytest.fixture
def walled(sim, credential) -> str:
    sim.script([{"text": WALL, "cps": 400}])
    return credential


def test_openai(gateway, walled) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        openai_client(gateway, walled).chat.completions.create(model="m", messages=ASK)
    assert info.value.code == "insufficient_quota" and "Token Plan" in info.value.message


def test_openai_stream(gateway, walled) -> None:
    response = requests.post(gateway + "/v1/chat/completions", timeout=30,
                             headers={"Authorization": f"Bearer {walled}"},
                             json={"model": "m", "messages": ASK, "stream": True})
    body = response.text
    assert "insufficient_quota" in body and "Upgrade your Token Plan" not in body


def test_anthropic(gateway, walled) -> None:
    with pytest.raises(anthropic.RateLimitError):
        anthropic_client(gateway, walled).messages.create(model="m", max_tokens=50, messages=ASK)


def test_anthropic_stream(gateway, walled) -> None:
    text: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as info:
        with anthropic_client(gateway, walled).messages.stream(model="m", max_tokens=50, messages=ASK) as stream:
            text.extend(stream.text_stream)
    assert text == [] and "Token Plan" in str(info.value)


@pytest.mark.parametrize("stream", [False, True])
def test_gemini(gateway, walled, stream) -> None:
    api = gemini_client(gateway, walled)
    with pytest.raises(errors.APIError) as info:
        if stream:
            list(api.models.generate_content_stream(model="g", contents="Hello"))
        else:
            api.models.generate_content(model="g", contents="Hello")
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"


def test_an_answer_about_the_wall_is_an_answer(gateway, sim, credential) -> None:
    text = "The message 'Token Plan usage limit reached' means the plan is spent."
    sim.script([{"text": text, "cps": 400}])
    reply = openai_client(gateway, credential).chat.completions.create(model="m", messages=ASK)
    assert reply.choices[0].message.content == text


def test_the_walled_account_is_then_skipped(gateway, sim, accounts) -> None:
    walled, fresh = accounts(2)
    sim.script([{"text": WALL, "cps": 400}], account=walled["real_user_id"])
    with pytest.raises(openai.RateLimitError):
        openai_client(gateway, walled["credential"]).chat.completions.create(model="m", messages=ASK)
    generations = len(sim.log())
    with pytest.raises(openai.RateLimitError):  # its window has not reset: not even asked
        openai_client(gateway, walled["credential"]).chat.completions.create(model="m", messages=ASK)
    assert len(sim.log()) == generations
    pool = f"{walled['credential']},{fresh['credential']}"
    reply = openai_client(gateway, pool).chat.completions.create(model="m", messages=ASK)
    assert reply.choices[0].message.content == sim.log()[-1]["answer"]
    assert sim.log()[-1]["account"] == fresh["real_user_id"]
