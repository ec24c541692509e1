"""End to end: the gateway follows the web surfaces' drift (UPSTREAM-SESSION.md addendum).

- a search step's ``tool_call_status`` as a word or a number: the citations survive both;
- session uploads fall back to the legacy STS steps when uploads/prepare is missing or
  refused, attaching the image in the public clients' form;
- the signing constants follow the web app's own bundle when the refresh is on, and
  nothing is fetched when it is off.
"""

from __future__ import annotations

import json

import pytest

from tests.openai.test_chat_completions import client

SEARCH_RESULTS = [{"title": "MiniMax", "url": "https://www.minimaxi.com/", "snippet": "MiniMax home"},
                  {"title": "News", "url": "https://example.org/news", "snippet": "Latest"}]


def session_only(upstream) -> None:
    if upstream.surface != "session":
        pytest.skip("a session-surface shape")


@pytest.mark.parametrize("form", ["word", "number"])
@pytest.mark.parametrize("stream", [False, True])
def test_search_citations_whatever_the_tool_status_form(gateway, sim, upstream, credential, form, stream) -> None:
    session_only(upstream)
    sim.config(tool_status_form=form)
    sim.script([{"text": "MiniMax is an AI company.", "cps": 2000,
                 "tool_steps": [{"name": "web_search", "content": json.dumps(SEARCH_RESULTS), "seconds": 0.2}]}])
    api = client(gateway, credential)
    messages = [{"role": "user", "content": "What is MiniMax?"}]
    if stream:
        chunks = list(api.chat.completions.create(model="MiniMax-M2-search", messages=messages, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        found = [a for c in chunks if c.choices for a in (c.choices[0].delta.model_extra or {}).get("annotations") or []]
    else:
        reply = api.chat.completions.create(model="MiniMax-M2-search", messages=messages)
        text = reply.choices[0].message.content
        found = [a.model_dump() for a in reply.choices[0].message.annotations]
    assert text == "MiniMax is an AI company."
    assert [a["url_citation"]["url"] for a in found] == [r["url"] for r in SEARCH_RESULTS]
