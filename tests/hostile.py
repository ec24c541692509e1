"""Dialect-neutral helpers for the end-to-end hostile-input tests (issue 12, part 4).

Each dialect's ``test_hostile.py`` builds its bodies and reads its own error shape;
what is shared is how a request is sent, what "refused" means (a 4xx, no credential in
the answer, the gateway still healthy), raw-socket exchanges for what ``requests`` will
not send, and the hostile payloads themselves.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import requests

#: JSON nested far deeper than any parser's recursion limit.
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
#: A 60 KB header value, beyond gunicorn's per-field limit.
HUGE_HEADER = {"X-Padding": "a" * 60_000}
#: Not base64 at all, and valid base64 of bytes that are no image.
BAD_BASE64 = "!!!not-base64!!!"
NOT_AN_IMAGE = "aGVsbG8gd29ybGQ="
#: Loopback, spelled so a naive string check misses it; ``{port}`` is a listener's.
DISGUISED_PRIVATE_URLS = (
    "http://2130706433:{port}/img.png", "http://0x7f000001:{port}/img.png",
    "http://0177.0.0.1:{port}/img.png", "http://127.1:{port}/img.png",
    "http://[::ffff:127.0.0.1]:{port}/img.png", "http://localhost.:{port}/img.png",
    "http://example.com@127.0.0.1:{port}/img.png", "http://169.254.169.254/latest/meta-data/",
)


def post(gateway: str, path: str, raw: bytes, headers: dict[str, str]) -> requests.Response:
    """POST raw bytes as JSON to ``path``, with the dialect's credential headers."""
    return requests.post(gateway + path, data=raw, headers={"Content-Type": "application/json", **headers},
                         timeout=60)


def assert_refused(gateway: str, response: requests.Response, credential: str) -> None:
    """A 4xx that does not echo the credential, from a gateway that is still up."""
    assert 400 <= response.status_code < 500, f"{response.status_code} {response.text[:500]}"
    assert credential not in response.text
    assert requests.get(gateway + "/healthz", timeout=10).status_code == 200


def assert_refused_by_the_server(gateway: str, response: requests.Response, credential: str) -> None:
    """A request line or header past gunicorn's limits: gunicorn itself refuses it (400,
    414 or 431, in its own plain text, before any dialect sees it), echoing none of it."""
    assert response.status_code in (400, 414, 431), f"{response.status_code} {response.text[:500]}"
    assert credential not in response.text and any(word in response.text.lower() for word in ("limit", "too large", "too long")), response.text[:500]
    assert requests.get(gateway + "/healthz", timeout=10).status_code == 200


def raw_exchange(gateway: str, request: bytes) -> str:
    """Send bytes as they are and read the whole answer (the request should say close)."""
    parts = urlsplit(gateway)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode("latin-1")


def over_the_limit(gateway: str, path: str, auth_header: str) -> tuple[str, float]:
    """Announce a 50 MB body, send one byte of it; the first answer and how long it took.

    Only the head is sent, so a gateway that reads the body before refusing would hang.
    """
    parts = urlsplit(gateway)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth_header}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {50 * 2**20}\r\n\r\n{{").encode())
        answer = _read_answer(sock)
    return answer, time.monotonic() - started


def _read_answer(sock: socket.socket) -> str:
    """One answer, head and Content-Length body, without waiting for the socket to close
    (the gateway may keep it open, waiting for the body it will never read)."""
    data = sock.recv(65536)
    while b"\r\n\r\n" not in data and (more := sock.recv(65536)):
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length and (more := sock.recv(65536)):
        body += more
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def body_of(answer: str) -> str:
    """The body of a raw HTTP/1.1 answer (sized by Content-Length, as the gateway sends it)."""
    head, _, body = answer.partition("\r\n\r\n")
    assert "content-length" in head.lower(), head
    return body


def crlf_request_id(path: str = "/ping") -> bytes:
    """A request whose X-Request-Id folds onto a Set-Cookie line (obs-fold smuggling)."""
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "X-Request-Id: abc\r\n Set-Cookie: evil=1\r\n\r\n").encode()


def assert_no_smuggled_header(answer: str) -> None:
    head = answer.split("\r\n\r\n", 1)[0]
    assert "evil" not in head
    assert not any(line.lower().startswith("set-cookie") for line in head.split("\r\n"))


@contextmanager
def listener() -> Iterator[tuple[int, list[object]]]:
    """A loopback TCP port that records every connection made to it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, address = server.accept()
            except OSError:
                continue
            accepted.append(address)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()
