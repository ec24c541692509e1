"""End to end: the gateway follows the web surfaces' drift (UPSTREAM-SESSION.md addendum).

- a search step's ``tool_call_status`` as a word or a number: the citations survive both;
- session uploads fall back to the legacy STS steps when uploads/prepare is missing or
  refused, attaching the image in the public clients' form;
- the signing constants follow the web app's own bundle when the refresh is on, and
  nothing is fetched when it is off.
"""

from __future__ import annotations

import json

import openai
import pytest

from tests.media_files import data_url, png
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


def image_request(shade: int) -> list[dict]:
    image = png(shade=shade)
    return [{"role": "user", "content": [{"type": "text", "text": "What is in this image?"},
                                         {"type": "image_url", "image_url": {"url": data_url(image, "image/png")}}]}]


def prepare_asked(sim, mode: str) -> int:
    requests = sim.stats()["requests"]
    return sum(n for path, n in requests.items()
               if path.endswith("/uploads/prepare") or (mode == "missing" and path == "<session unknown path>"))


@pytest.mark.parametrize("mode", ["missing", "refused"])
def test_session_uploads_fall_back_to_the_legacy_sts_steps(gateway, sim, upstream, credential, mode) -> None:
    session_only(upstream)
    sim.config(uploads_prepare=mode)
    api = client(gateway, credential)
    reply = api.chat.completions.create(model="m", messages=image_request(200))
    entry = sim.log()[-1]
    assert reply.choices[0].message.content == entry["answer"]
    (sent,) = entry["attachment_details"]
    assert sent["oss_path"] and sent["sniffed_image"] == "image/png" and sent["file_type"] == 2
    assert prepare_asked(sim, mode) == 1
    api.chat.completions.create(model="m", messages=image_request(100))  # another image
    assert sim.log()[-1]["attachment_details"][0]["oss_path"] != sent["oss_path"]
    assert prepare_asked(sim, mode) == 1  # known unavailable for this account: not asked again


ROTATED = {"bundle_salt": "Zq9!rotated#Salt%2026", "bundle_yy_suffix": "tailv", "bundle_version_code": "33333"}
SITE_FETCHES = ("/", "/static/js/*")


def web_only(upstream) -> None:
    if upstream.surface not in ("session", "matrix"):
        pytest.skip("the web surfaces' signing")


def fetched(sim) -> int:
    return sum(sim.stats()["requests"].get(path, 0) for path in SITE_FETCHES)


def test_with_the_refresh_on_a_rotated_build_is_followed(gateway_factory, sim, upstream, credential) -> None:
    web_only(upstream)
    gateway = gateway_factory(MINIMAX_BUNDLE_REFRESH="on")
    sim.config(**ROTATED)  # a new build of the web app, before the gateway's first call
    api = client(gateway, credential)
    reply = api.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hello"}])
    assert reply.choices[0].message.content == sim.log()[-1]["answer"]
    assert fetched(sim) >= 2
    stats = sim.stats()
    assert not stats["rejections"].get("bad_signature") and not stats["warnings"].get("stale_version_code")
    sim.config(bundle_salt="An0ther&Build*Salt", bundle_yy_suffix="ouio", bundle_version_code="44444")
    reply = api.chat.completions.create(model="m", messages=[{"role": "user", "content": "Again"}])
    assert reply.choices[0].message.content == sim.log()[-1]["answer"]
    stats = sim.stats()
    assert stats["rejections"].get("bad_signature") == 1  # once refused, read again, sent again


def test_with_the_refresh_off_nothing_is_fetched(gateway, sim, upstream, credential) -> None:
    web_only(upstream)
    sim.config(**ROTATED)
    with pytest.raises(openai.APIStatusError) as info:
        client(gateway, credential).chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}])
    assert info.value.status_code == 502
    assert fetched(sim) == 0 and sim.stats()["rejections"].get("bad_signature")
