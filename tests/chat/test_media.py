"""Fetching URLs found in messages: only public addresses unless allowed, bounded, sniffed."""

from __future__ import annotations

import dataclasses
import http.server
import threading
import urllib.parse
from collections.abc import Iterator

import pytest

from gateway.chat.media import MediaResolver, sniff
from gateway.config import Settings
from gateway.errors import InvalidRequest
from gateway.parts import ChatRequest, MediaPart, Message

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        routes = {
            "/img": (200, {"Content-Type": "application/octet-stream"}, PNG),
            "/to-localhost": (302, {"Location": f"http://localhost:{port}/img"}, b""),
            "/to-self": (302, {"Location": "/img"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/big": (200, {}, b"x" * 3_000_000),
            "/missing": (404, {}, b"no"),
        }
        if self.path.startswith("/redirect?to="):  # a redirect to wherever the test says
            routes[self.path] = (302, {"Location": urllib.parse.unquote(self.path.split("=", 1)[1])}, b"")
        status, headers, body = routes[self.path]
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def fetch(url: str, **settings: object):
    resolver = MediaResolver(dataclasses.replace(Settings.from_env({}).fetch(), **settings))
    request = ChatRequest("m", (Message("user", (MediaPart("application/octet-stream", url=url),)),))
    return resolver.resolve(request)[0]


def test_loopback_is_refused_without_the_allow_setting(server: str) -> None:
    with pytest.raises(InvalidRequest, match="non-public address 127.0.0.1"):
        fetch(f"http://{server}/img")


def test_allowed_host_is_fetched_and_sniffed(server: str) -> None:
    blob = fetch(f"http://{server}/img", allow_hosts=frozenset({"127.0.0.1"}))
    assert (blob.mime_type, blob.size, blob.is_image, blob.filename) == ("image/png", len(PNG), True, "img.png")


def test_redirect_to_a_host_that_is_not_allowed_is_refused(server: str) -> None:
    allow = frozenset({"127.0.0.1"})
    assert fetch(f"http://{server}/to-self", allow_hosts=allow).size == len(PNG)
    with pytest.raises(InvalidRequest, match="localhost"):
        fetch(f"http://{server}/to-localhost", allow_hosts=allow)


@pytest.mark.parametrize(("path", "error", "match"), [
    ("/loop", InvalidRequest, "redirects"),
    ("/big", InvalidRequest, "fetch limit"),
    ("/missing", InvalidRequest, "HTTP 404"),
])
def test_bounds(server: str, path: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        fetch(f"http://{server}{path}", allow_hosts=frozenset({"127.0.0.1"}), max_bytes=1_000_000)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest, match="http"):
        fetch(url)


def test_sniffing_prefers_the_bytes() -> None:
    assert sniff(b"%PDF-1.7 ...", "application/octet-stream") == "application/pdf"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ", "") == "image/webp"
    assert sniff(b"\xff\xd8\xff\xe0", "text/plain") == "image/jpeg"
    assert sniff(b"hello", "text/plain") == "text/plain"
