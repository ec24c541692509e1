"""Remote URLs naming a private address in disguise are refused before any connection."""

from __future__ import annotations

import socket
import urllib.parse
from collections.abc import Callable, Iterator

import pytest

from gateway.chat import media
from gateway.errors import InvalidRequest
from tests.chat.test_media import fetch, server  # noqa: F401  (the module-scoped fixture)


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Record (and forbid) every socket connect, so a refusal provably sent nothing."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError(f"connected to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield attempts


@pytest.mark.parametrize("url", [
    "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/", "http://127.1/",
    "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://localhost./", "http://localhost/",
    "http://example.com@127.0.0.1/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/",
])
def test_private_address_in_disguise_is_refused(url: str, no_connect: list[object]) -> None:
    with pytest.raises(InvalidRequest, match="Refused to fetch|non-public"):
        fetch(url)
    assert no_connect == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.com/x"])
def test_non_http_schemes_are_refused(url: str, no_connect: list[object]) -> None:
    with pytest.raises(InvalidRequest, match="Only http"):
        fetch(url)
    assert no_connect == []


def test_one_private_address_among_several_is_refused(
        monkeypatch: pytest.MonkeyPatch, no_connect: list[object]) -> None:
    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                for address in ("93.184.216.34", "10.0.0.7")]

    resolver: Callable[..., list[tuple]] = resolve
    monkeypatch.setattr(media.socket, "getaddrinfo", resolver)
    with pytest.raises(InvalidRequest, match="non-public address 10.0.0.7"):
        fetch("http://public-and-private.example/img")
    assert no_connect == []


@pytest.mark.parametrize("target", [
    "http://localhost:{port}/img", "http://2130706433:{port}/img", "http://0x7f000001:{port}/img",
    "http://0177.0.0.1:{port}/img", "http://127.1:{port}/img", "http://[::ffff:127.0.0.1]:{port}/img",
    "http://0.0.0.0:{port}/img", "http://localhost.:{port}/img", "http://127.0.0.1:{port}@localhost:{port}/img",
    "file:///etc/passwd",
])
def test_redirect_to_a_disguised_private_address_is_refused(server: str, target: str) -> None:  # noqa: F811
    # Only the test server itself is allowed: wherever it redirects in disguise is refused.
    location = urllib.parse.quote(target.format(port=server.rsplit(":", 1)[1]), safe="")
    with pytest.raises(InvalidRequest, match="Refused to fetch|non-public|Only http"):
        fetch(f"http://{server}/redirect?to={location}", allow_hosts=frozenset({server}))
