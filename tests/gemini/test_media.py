"""Inline images and documents, and Google Search grounding, through google-genai."""

from __future__ import annotations

import hashlib
import json

import pytest
from google.genai import types

from tests.gemini.test_generate import client
from tests.media_files import pdf, png
from tests.openai.test_media import SEARCH_RESULTS


def test_inline_image_and_pdf(gateway, web_only, sim, credential) -> None:
    image, document = png(shade=140), pdf("Gemini document")
    api = client(gateway, credential, "v1beta")
    reply = api.models.generate_content(model="gemini-2.5-flash", contents=[
        types.Part.from_bytes(data=image, mime_type="image/png"),
        types.Part.from_bytes(data=document, mime_type="application/pdf"),
        "Describe both.",
    ])
    entry = sim.log()[-1]
    assert reply.text == entry["answer"]
    assert [(a["file_type"], a["sha256"]) for a in entry["attachment_details"]] == [
        (2, hashlib.sha256(image).hexdigest()), (6, hashlib.sha256(document).hexdigest())]


def test_file_data_uri_refused_when_private(gateway, credential) -> None:
    from google.genai import errors

    api = client(gateway, credential, "v1beta")
    with pytest.raises(errors.ClientError) as info:
        api.models.generate_content(model="g", contents=[
            types.Part.from_uri(file_uri="http://127.0.0.1:9/secret.png", mime_type="image/png"), "look"])
    assert info.value.code == 400 and "non-public" in info.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_google_search_grounding(gateway, web_only, sim, credential, stream) -> None:
    sim.script([{"text": "Grounded answer.", "cps": 2000,
                 "tool_steps": [{"name": "web_search", "content": json.dumps(SEARCH_RESULTS), "seconds": 0.2}]}])
    api = client(gateway, credential, "v1beta")
    config = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    if stream:
        chunks = list(api.models.generate_content_stream(model="g", contents="Who is MiniMax?", config=config))
        text = "".join(c.text or "" for c in chunks)
        metadata = chunks[-1].candidates[0].grounding_metadata
    else:
        reply = api.models.generate_content(model="g", contents="Who is MiniMax?", config=config)
        text, metadata = reply.text, reply.candidates[0].grounding_metadata
    assert text == "Grounded answer."
    assert [c.web.uri for c in metadata.grounding_chunks] == [r["url"] for r in SEARCH_RESULTS]
    assert metadata.web_search_queries == ["Who is MiniMax?"]
