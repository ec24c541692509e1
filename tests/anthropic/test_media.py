"""Images, documents and web search through the anthropic SDK."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from tests.anthropic.test_messages import client
from tests.media_files import pdf, png
from tests.openai.test_media import SEARCH_RESULTS


def test_image_document_and_text_document(gateway, web_only, sim, credential) -> None:
    image, document = png(shade=31), pdf()
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(image).decode()}},
        {"type": "document", "title": "report.pdf",
         "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(document).decode()}},
        {"type": "document", "title": "notes.txt", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}},
        {"type": "text", "text": "Summarise all three."},
    ]
    reply = client(gateway, credential).messages.create(model="m", max_tokens=100,
                                                        messages=[{"role": "user", "content": content}])
    entry = sim.log()[-1]
    assert reply.content[0].text == entry["answer"]
    sent = entry["attachment_details"]
    assert [a["file_type"] for a in sent] == [2, 6, 6]
    assert sent[0]["sha256"] == hashlib.sha256(image).hexdigest()
    assert sent[1]["sha256"] == hashlib.sha256(document).hexdigest()
    assert sent[2]["sha256"] == hashlib.sha256(b"plain notes").hexdigest()
    assert [a["file_name"] for a in sent][1:] == ["report.pdf", "notes.txt"]


def test_image_in_an_earlier_turn_is_attached(gateway, web_only, sim, credential) -> None:
    image = png(shade=99)
    messages = [
        {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                   "data": base64.b64encode(image).decode()}},
                                     {"type": "text", "text": "Remember this."}]},
        {"role": "assistant", "content": "Remembered."},
        {"role": "user", "content": "What colour was it?"},
    ]
    client(gateway, credential).messages.create(model="m", max_tokens=50, messages=messages)
    assert [a["sha256"] for a in sim.log()[-1]["attachment_details"]] == [hashlib.sha256(image).hexdigest()]


@pytest.mark.parametrize("stream", [False, True])
def test_web_search_tool_results(gateway, web_only, sim, upstream, credential, stream) -> None:
    sim.script([{"text": "Found it.", "cps": 2000,
                 "tool_steps": [{"name": "web_search", "content": json.dumps(SEARCH_RESULTS), "seconds": 0.2}]}])
    api = client(gateway, credential)
    kwargs = dict(model="m", max_tokens=200, messages=[{"role": "user", "content": "Search MiniMax"}],
                  tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}])
    if stream:
        with api.messages.stream(**kwargs) as s:
            reply = s.get_final_message()
    else:
        reply = api.messages.create(**kwargs)
    assert [b.type for b in reply.content] == ["server_tool_use", "web_search_tool_result", "text"]
    assert reply.content[0].input == {"query": "Search MiniMax"}
    assert [r.url for r in reply.content[1].content] == [r["url"] for r in SEARCH_RESULTS]
    assert reply.content[1].tool_use_id == reply.content[0].id and reply.content[2].text == "Found it."
    assert sim.log()[-1]["web_search"] is (upstream.surface == "matrix")  # session agents search by themselves
