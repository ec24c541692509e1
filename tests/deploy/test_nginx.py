"""The shipped nginx site (deploy/nginx/minimax-free-api.conf) in front of a real gunicorn
gateway: streams pass through unbuffered and uncompressed, long streams with pauses are
not cut, large and chunked bodies reach the gateway up to its own limit, and the Host header
(port included) reaches the gateway so the homepage shows the address the user typed.

Streaming is measured, not assumed: the simulator writes an answer slowly, the same
stream is read once directly from gunicorn and once through nginx, and the arrival times
of the bytes are compared. A negative control runs the same measurement through the
site with ``proxy_buffering on`` and without its ``gzip off`` and must see the bytes
bunch up, which shows the measurement can tell the difference. nginx is installed from
the Debian package on first use.
"""

from __future__ import annotations

import json
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from gateway.config import Settings
from tests.deploy import nginx
from tests.deploy.debian import require
from tests.simulator.control import SimulatorControl

# The first run may install nginx from the Debian archive.
# nginx relays whatever the gateway streams, whichever the
# upstream surface: the tests with a gateway run on one.
pytestmark = [pytest.mark.timeout(900), pytest.mark.surfaces("session")]


NGINX = "/usr/sbin/nginx"
#: A slowly written answer: 79 characters at 20 a second, about 4 s of streaming.
SLOW_TEXT = "Streaming through nginx — naïve café 中文, one frame at a time, never held back. "
SLOW_CPS = 20
#: How far apart (seconds) the direct and proxied streams may reach the same progress.
TOLERANCE_SECONDS = 0.6
#: Progress points compared between the direct and the proxied stream.
QUANTILES = (0.25, 0.5, 0.75)
#: Longest wait for one read, and for one whole stream.
READ_TIMEOUT_SECONDS = 30.0
STREAM_LIMIT_SECONDS = 150.0


@dataclass
class Timed:
    """One streamed response: when each piece arrived, and the whole body."""

    arrivals: list[tuple[float, int]]  # (seconds since the request, bytes)
    body: bytes
    headers: requests.structures.CaseInsensitiveDict

    @property
    def end(self) -> float:
        return self.arrivals[-1][0]

    def time_at(self, fraction: float) -> float:
        """Seconds until ``fraction`` of the body had arrived."""
        total, seen = len(self.body), 0
        for seconds, size in self.arrivals:
            seen += size
            if seen >= fraction * total:
                return seconds
        return self.end

    def longest_silence(self) -> float:
        times = [0.0] + [seconds for seconds, _ in self.arrivals]
        return max(later - earlier for earlier, later in zip(times, times[1:], strict=False))


@dataclass(frozen=True)
class Dialect:
    """How to ask for a stream in one API, and how to read its text back."""

    name: str
    path: str
    headers: Callable[[str], dict[str, str]]
    body: dict
    text: Callable[[bytes], str]


def _openai_text(body: bytes) -> str:
    frames = [line[6:] for line in body.decode().splitlines() if line.startswith("data: ")]
    assert frames and frames[-1] == "[DONE]", "the stream did not end with [DONE]"
    chunks = [json.loads(frame) for frame in frames[:-1]]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def _gemini_text(body: bytes) -> str:
    # Without ?alt=sse Gemini streams one JSON array, written element by element.
    items = json.loads(body)
    return "".join(part.get("text", "") for item in items for cand in item.get("candidates", [])
                   for part in cand.get("content", {}).get("parts", []))


DIALECTS = {
    "openai-sse": Dialect(
        "openai-sse", "/v1/chat/completions",
        lambda key: {"Authorization": f"Bearer {key}"},
        {"model": "MiniMax-M2", "stream": True, "messages": [{"role": "user", "content": "Stream, please."}]},
        _openai_text,
    ),
    "gemini-json-array": Dialect(
        "gemini-json-array", "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        lambda key: {"x-goog-api-key": key},
        {"contents": [{"role": "user", "parts": [{"text": "Stream, please."}]}]},
        _gemini_text,
    ),
}


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nginx_binary() -> Path:
    return require(NGINX, "nginx")


@pytest.fixture(scope="module")
def upstream(gateway_factory: Callable[..., str]) -> str:
    return gateway_factory()


@pytest.fixture(scope="module")
def proxy(nginx_binary: Path, upstream: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="nginx-site-") as prefix:
        server = nginx.start(nginx_binary, Path(prefix), upstream, "nginx")
        try:
            yield server.url
        finally:
            server.stop()


def timed_stream(url: str, dialect: Dialect, key: str) -> Timed:
    started = time.monotonic()
    arrivals: list[tuple[float, int]] = []
    parts: list[bytes] = []
    with requests.post(url + dialect.path, json=dialect.body, headers=dialect.headers(key),
                       stream=True, timeout=(5, READ_TIMEOUT_SECONDS)) as response:
        assert response.status_code == 200, response.text
        for chunk in response.iter_content(chunk_size=None):
            elapsed = time.monotonic() - started
            assert elapsed < STREAM_LIMIT_SECONDS, "the stream did not end in time"
            arrivals.append((elapsed, len(chunk)))
            parts.append(chunk)
        headers = response.headers
    return Timed(arrivals, b"".join(parts), headers)


def slow_stream(sim: SimulatorControl, url: str, dialect: Dialect, key: str, **answer: object) -> Timed:
    sim.script([{"text": SLOW_TEXT, "cps": SLOW_CPS, **answer}])
    return timed_stream(url, dialect, key)


# --- streaming -----------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS.values(), ids=DIALECTS.keys())
def test_streams_pass_through_unbuffered(sim: SimulatorControl, credential: str, upstream: str,
                                         proxy: str, dialect: Dialect) -> None:
    direct = slow_stream(sim, upstream, dialect, credential)
    proxied = slow_stream(sim, proxy, dialect, credential)

    assert dialect.text(direct.body) == dialect.text(proxied.body) == SLOW_TEXT
    assert "Content-Encoding" not in proxied.headers, "nginx compressed a stream"
    assert proxied.headers["Content-Type"] == direct.headers["Content-Type"]
    # The answer takes ~4 s to write; through nginx the first quarter must arrive long
    # before the end, at the same pace as when read straight from gunicorn.
    assert proxied.end - proxied.time_at(QUANTILES[0]) > 1.5, proxied.arrivals
    for fraction in QUANTILES:
        gap = abs(proxied.time_at(fraction) - direct.time_at(fraction))
        assert gap < TOLERANCE_SECONDS, (fraction, direct.arrivals, proxied.arrivals)
    assert len(proxied.arrivals) >= len(direct.arrivals) // 2, "nginx merged the frames"


def test_negative_control_buffered_and_compressed_is_detected(
    sim: SimulatorControl, credential: str, upstream: str, nginx_binary: Path
) -> None:
    # The same site with buffering on and without its `gzip off` (so the http block's
    # gzip applies, as in a Debian nginx.conf that compresses event streams): the
    # measurement must see the bytes held back. Measured on nginx 1.22: either setting
    # alone still lets the frames through in time (a compressed stream is flushed frame
    # by frame when unbuffered), so the site keeps both.
    dialect = DIALECTS["openai-sse"]
    unsafe = {"gzip off;": "", "proxy_buffering off;": "proxy_buffering on;"}
    with tempfile.TemporaryDirectory(prefix="nginx-unsafe-") as prefix:
        server = nginx.start(nginx_binary, Path(prefix), upstream, "nginx-unsafe", replace=unsafe)
        try:
            direct = slow_stream(sim, upstream, dialect, credential)
            held = slow_stream(sim, server.url, dialect, credential)
        finally:
            server.stop()
    assert held.headers.get("Content-Encoding") == "gzip"
    assert dialect.text(held.body) == SLOW_TEXT
    assert held.time_at(QUANTILES[0]) - direct.time_at(QUANTILES[0]) > 1.0, held.arrivals


@pytest.mark.slow
def test_long_stream_with_a_pause_is_not_cut(sim: SimulatorControl, credential: str, proxy: str) -> None:
    # 1200 characters at 20 a second with a 10 s stall: over a minute through nginx.
    dialect = DIALECTS["openai-sse"]
    text = (SLOW_TEXT * 15)[:1200]
    sim.script([{"text": text, "cps": SLOW_CPS, "pauses": [{"at": 600, "seconds": 10}]}])
    timed = timed_stream(proxy, dialect, credential)
    assert timed.end > 60, f"the stream took only {timed.end:.1f} s"
    assert dialect.text(timed.body) == text
    assert '"finish_reason":"stop"' in timed.body.decode().replace(" ", "")
    # The gateway's keep-alive frames cross the stall, so the client never waits long.
    assert ": keep-alive" in timed.body.decode()
    assert timed.longest_silence() < Settings().heartbeat + 2


# --- requests ------------------------------------------------------------------------


def test_large_bodies_reach_the_gateway(credential: str, upstream: str, proxy: str) -> None:
    # nginx's own default (1 MB) would refuse this with its HTML 413. The gateway reads
    # and parses all 5 MB: only then can it see that the message is over its prompt limit
    # (a cut or missing body would be invalid JSON), the same answer as from gunicorn.
    body = {"model": "MiniMax-M2", "messages": [{"role": "user", "content": "x" * 5_000_000}]}
    headers = {"x-api-key": credential, "anthropic-version": "2023-06-01"}
    direct, proxied = (requests.post(url + "/v1/messages/count_tokens", json=body, timeout=60, headers=headers)
                       for url in (upstream, proxy))
    for response in (direct, proxied):
        assert response.status_code == 400, response.text[:300]
        assert "GATEWAY_PROMPT_MAX_CHARS" in response.json()["error"]["message"], response.text[:300]
    assert proxied.json()["error"] == direct.json()["error"]


def test_body_limit_matches_the_gateway() -> None:
    shipped = re.search(r"^\s*client_max_body_size\s+(\d+)m;", nginx.SITE.read_text(), re.M)
    assert shipped and int(shipped[1]) == Settings().max_body_mb


def test_bodies_over_the_limit_are_refused_up_front(proxy: str) -> None:
    # Announce one byte more than the limit: nginx answers 413 before any body is sent.
    limit = Settings().max_body_mb * 1024 * 1024
    host, port = proxy.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {limit + 1}\r\n\r\n".encode())
        status = sock.recv(4096).split(b"\r\n", 1)[0]
    assert b" 413 " in status, status


def test_homepage_shows_the_address_the_user_typed(proxy: str) -> None:
    page = requests.get(proxy + "/", headers={"Accept": "text/html"}, timeout=10).text
    assert f'base_url="{proxy}/v1"' in page


def test_head_and_health_through_nginx(proxy: str) -> None:
    assert requests.head(proxy + "/", timeout=10).status_code == 200
    health = requests.get(proxy + "/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_site_keeps_the_streaming_directives() -> None:
    # What the timing tests cannot single out (see the negative control) is pinned here.
    site = nginx.SITE.read_text()
    directives = {re.sub(r"\s+", " ", line.split("#", 1)[0].strip()) for line in site.splitlines()}
    for needed in ("proxy_buffering off;", "proxy_cache off;", "proxy_http_version 1.1;",
                   "chunked_transfer_encoding on;", "gzip off;", "server 127.0.0.1:8000;",
                   'proxy_set_header Connection "";',
                   "proxy_set_header X-Real-IP $remote_addr;",
                   "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                   "proxy_set_header X-Forwarded-Proto $scheme;",
                   "proxy_set_header X-Forwarded-Host $http_host;"):
        assert needed in directives, f"{needed} is missing from {nginx.SITE.name}"
    for timeout in ("proxy_read_timeout", "proxy_send_timeout"):
        value = re.search(rf"^\s*{timeout}\s+(\d+)s;", site, re.M)
        assert value and int(value[1]) >= 3600, timeout


def test_chunked_request_bodies_reach_the_gateway(credential: str, proxy: str) -> None:
    # With proxy_request_buffering off nginx forwards a chunked upload as it comes.
    body = json.dumps({"model": "MiniMax-M2", "messages": [{"role": "user", "content": "count me"}]}).encode()
    pieces = (body[index:index + 16] for index in range(0, len(body), 16))
    response = requests.post(proxy + "/v1/messages/count_tokens", data=pieces, timeout=30,
                             headers={"x-api-key": credential, "anthropic-version": "2023-06-01",
                                      "Content-Type": "application/json"})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["input_tokens"] > 0
