"""The code driver's own choices (gateway/upstream/code.py): which host an account's calls go
to, and the one refresh-and-replay of a signed-in account's 401."""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from gateway.config import Settings
from gateway.errors import UpstreamUnauthorized
from gateway.parts import ChatRequest, Message, TextPart
from gateway.upstream.code import CodeDriver
from gateway.upstream.credentials import parse_one, signed_in


class Counter(http.server.BaseHTTPRequestHandler):
    """Answers count_tokens; 401 for the token named in ``server.refused``."""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        token = self.headers["Authorization"].removeprefix("Bearer ")
        self.server.seen.append((self.path, token))  # type: ignore[attr-defined]
        refused = token in self.server.refused  # type: ignore[attr-defined]
        body = json.dumps({"code": 401, "message": "expired"} if refused else {"input_tokens": 7}).encode()
        self.send_response(401 if refused else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hosts() -> Iterator[dict[str, http.server.ThreadingHTTPServer]]:
    servers = {}
    for region in ("cn", "global"):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counter)
        server.seen, server.refused = [], set()  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers[region] = server
    yield servers
    for server in servers.values():
        server.shutdown()


class Tokens:
    """Two signed-in accounts, one per region; a refresh hands out the next token."""

    def __init__(self) -> None:
        self.current = {"asia": "mmoat_asia_one_aaaaaaaa", "world": "mmoat_world_one_aaaaaaa"}
        self.refreshes: list[tuple[str, str | None]] = []

    def access_token(self, name: str) -> str:
        return self.current[name]

    def refresh(self, name: str, seen_access: str | None = None) -> str:
        self.refreshes.append((name, seen_access))
        self.current[name] = self.current[name].replace("one", "two")
        return self.current[name]

    def region_of(self, name: str) -> str | None:
        return {"asia": "cn", "world": "global"}[name]


def driver(hosts: dict[str, http.server.ThreadingHTTPServer], tokens: Tokens) -> CodeDriver:
    urls = {region: f"http://127.0.0.1:{server.server_address[1]}" for region, server in hosts.items()}
    settings = Settings.from_env()
    code = dataclasses.replace(settings.code("cn"), code_url=urls["cn"])
    return CodeDriver(code, settings.upstream(), tokens=tokens, hosts=urls)


REQUEST = ChatRequest("MiniMax-M2.7", (Message("user", (TextPart("hi"),)),))


def test_a_signed_in_account_is_called_on_its_own_regions_host(hosts) -> None:
    tokens = Tokens()
    code = driver(hosts, tokens)
    assert code.count_tokens(signed_in("world"), REQUEST, "MiniMax-M2.7") == 7
    assert code.count_tokens(signed_in("asia"), REQUEST, "MiniMax-M2.7") == 7
    assert [token for _, token in hosts["global"].seen] == [tokens.current["world"]]
    assert [token for _, token in hosts["cn"].seen] == [tokens.current["asia"]]


def test_a_401_refreshes_once_and_replays_the_same_call_once(hosts) -> None:
    tokens = Tokens()
    hosts["cn"].refused.add("mmoat_asia_one_aaaaaaaa")
    code = driver(hosts, tokens)
    assert code.count_tokens(signed_in("asia"), REQUEST, "MiniMax-M2.7") == 7
    assert tokens.refreshes == [("asia", "mmoat_asia_one_aaaaaaaa")]
    assert [token for _, token in hosts["cn"].seen] == ["mmoat_asia_one_aaaaaaaa", "mmoat_asia_two_aaaaaaaa"]
    hosts["cn"].refused.add("mmoat_asia_two_aaaaaaaa")  # the refreshed one is refused too
    with pytest.raises(UpstreamUnauthorized):  # refused after its refresh too: no second replay
        code.count_tokens(signed_in("asia"), REQUEST, "MiniMax-M2.7")
    assert len(tokens.refreshes) == 2


def test_a_client_given_token_is_never_refreshed(hosts) -> None:
    tokens = Tokens()
    hosts["cn"].refused.add("mmoat_given_by_a_client_x")
    with pytest.raises(UpstreamUnauthorized):
        driver(hosts, tokens).count_tokens(parse_one("mmoat_given_by_a_client_x"), REQUEST, "MiniMax-M2.7")
    assert tokens.refreshes == []
