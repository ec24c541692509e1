"""Images, documents and web search through the openai SDK."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator

import openai
import pytest

from tests.media_files import data_url, pdf, png
from tests.openai.test_chat_completions import client

SEARCH_RESULTS = [{"title": "MiniMax", "url": "https://www.minimaxi.com/", "snippet": "MiniMax home"},
                  {"title": "News", "url": "https://example.org/news", "snippet": "Latest"}]


def image_message(url: str, text: str = "What is in this image?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def attachments(entry: dict) -> list[dict]:
    return entry["attachment_details"]


def test_image_and_pdf_are_uploaded_and_attached(gateway, web_only, sim, credential) -> None:
    image, document = png(), pdf()
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "Compare these."},
        {"type": "image_url", "image_url": {"url": data_url(image, "image/png"), "detail": "high"}},
        {"type": "file", "file": {"filename": "report.pdf", "file_data": data_url(document, "application/pdf")}},
    ]}]
    reply = client(gateway, credential).chat.completions.create(model="m", messages=messages)
    entry = sim.log()[-1]
    assert reply.choices[0].message.content == entry["answer"]
    sent = attachments(entry)
    assert [(a["file_type"], a["sha256"]) for a in sent] == [
        (2, hashlib.sha256(image).hexdigest()), (6, hashlib.sha256(document).hexdigest())]
    assert sent[1]["file_name"] == "report.pdf"
    assert "Compare these." in entry["prompt"]


def test_same_image_twice_uploads_once(gateway, web_only, sim, upstream, credential) -> None:
    image = png(shade=77)
    api = client(gateway, credential)
    history = image_message(data_url(image, "image/png")) + [
        {"role": "assistant", "content": "A square."},
        {"role": "user", "content": [{"type": "text", "text": "Again:"},
                                     {"type": "image_url", "image_url": {"url": data_url(image, "image/png")}}]},
    ]
    api.chat.completions.create(model="m", messages=history)
    api.chat.completions.create(model="m", messages=image_message(data_url(image, "image/png")))
    assert sim.stats()[upstream.uploads_stat] == 1
    ids = {a["file_id"] for entry in sim.log() for a in attachments(entry)}
    assert len(ids) == 1 and len(attachments(sim.log()[0])) == 2


class ImageServer(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path == "/redirect-away":
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{port}/cat.png")
            self.end_headers()
            return
        body = png(shade=9) if self.path == "/cat.png" else b"x" * 3_000_000
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def image_host() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ImageServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_remote_url_only_when_allowed(gateway_factory, web_only, sim, credential, image_host) -> None:
    url = f"{image_host}/cat.png"
    with pytest.raises(openai.BadRequestError) as refused:
        client(gateway_factory(), credential).chat.completions.create(model="m", messages=image_message(url))
    assert "non-public address" in refused.value.message
    allowed = gateway_factory(GATEWAY_FETCH_ALLOW_HOSTS="127.0.0.1", GATEWAY_FETCH_MAX_MB="1")
    api = client(allowed, credential)
    api.chat.completions.create(model="m", messages=image_message(url))
    assert attachments(sim.log()[-1])[0]["sha256"] == hashlib.sha256(png(shade=9)).hexdigest()
    with pytest.raises(openai.BadRequestError) as redirected:
        api.chat.completions.create(model="m", messages=image_message(f"{image_host}/redirect-away"))
    assert "localhost" in redirected.value.message
    with pytest.raises(openai.BadRequestError) as oversize:  # a refusal: 400, saying why
        api.chat.completions.create(model="m", messages=image_message(f"{image_host}/huge.png"))
    assert "1 MB fetch limit" in oversize.value.message
    assert len(sim.log()) == 1


def test_bad_data_url_is_a_400(gateway, credential) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway, credential).chat.completions.create(
            model="m", messages=image_message("data:image/png;base64,@@@not-base64@@@"))
    assert "base64" in info.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_web_search_citations(gateway, web_only, sim, upstream, credential, stream) -> None:
    sim.script([{"text": "MiniMax is an AI company.", "cps": 2000,
                 "tool_steps": [{"name": "web_search", "content": json.dumps(SEARCH_RESULTS), "seconds": 0.2}]}])
    api = client(gateway, credential)
    messages = [{"role": "user", "content": "What is MiniMax?"}]
    if stream:
        chunks = list(api.chat.completions.create(model="MiniMax-M2-search", messages=messages, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        found = [a for c in chunks if c.choices for a in (c.choices[0].delta.model_extra or {}).get("annotations") or []]
    else:
        reply = api.chat.completions.create(model="m", messages=messages, extra_body={"web_search_options": {}})
        text = reply.choices[0].message.content
        found = [a.model_dump() for a in reply.choices[0].message.annotations]
    assert text == "MiniMax is an AI company."
    assert [a["url_citation"]["url"] for a in found] == [r["url"] for r in SEARCH_RESULTS]
    assert all(a["type"] == "url_citation" for a in found)
    # Matrix is asked to search; on the session surface the agent searches by itself.
    assert sim.log()[-1]["web_search"] is (upstream.surface == "matrix")
