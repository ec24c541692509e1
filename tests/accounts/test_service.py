"""A gateway holding the accounts itself, behind client keys (two gunicorn workers).

Keys come from a file the test edits while the gateway runs; the MiniMax accounts from
another (on the code surface, MiniMax Code access tokens). Every response of the module is kept and searched, with the gateway's log, for
any credential or key at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import openai
import pytest
import requests
from google.genai import errors as genai_errors

from gateway.accounts.watch import CHECK_SECONDS
from tests.conftest import GATEWAYS, MINTED
from tests.gemini.test_generate import client as gemini_client
from tests.servers import Process, start_gateway
from tests.simulator.control import SimulatorControl

# One worker runs the whole module: its closing leak check reads every answer the module's
# keyed gateways gave, which xdist would otherwise split between workers.
pytestmark = pytest.mark.xdist_group("accounts-service")

ALPHA = "sk-alpha-4d1f0c9e8b7a6d5c"
#: One rpm=2 key per dialect: the limit is a sliding minute, so each test spends its own.
LIMITED = {dialect: f"sk-limited-{dialect}-9a8b7c6d5e4f" for dialect in ("openai", "anthropic", "gemini")}
SINGLE = "sk-single-1a2b3c4d5e6f7a8b"
REVOKED = "sk-revoked-7f6e5d4c3b2a1f0e"
ADMIN = "admin-5f4e3d2c1b0a9f8e"
KEYS = (ALPHA, *LIMITED.values(), SINGLE, REVOKED, ADMIN)


@dataclass
class Keyed:
    url: str
    keys_file: Path
    accounts_file: Path
    proc: Process
    accounts: list[dict]
    seen: list[requests.Response] = field(default_factory=list)

    def call(self, method: str, path: str, **options: object) -> requests.Response:
        response = requests.request(method, self.url + path, timeout=60, **options)  # type: ignore[arg-type]
        self.seen.append(response)
        return response


def mint(simulator_url: str, surface: str) -> list[dict]:
    """Two new accounts of the surface's kind (remembered for the leak check)."""
    control = SimulatorControl(simulator_url)
    made = control.add_code_accounts(2) if surface == "code" else control.add_accounts(2)
    MINTED.extend(made)
    return made


def generating(sim: SimulatorControl) -> int:
    """Upstream answers being generated, on any surface."""
    return int(sim.stats()["chats_generating"]) + int(sim.code_stats()["generating"])


@pytest.fixture(scope="module")
def keyed(simulator_url: str, surface_env: dict[str, str], surface: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Keyed]:
    made = mint(simulator_url, surface)
    folder = tmp_path_factory.mktemp("keyed")
    keys_file, accounts_file = folder / "keys.txt", folder / "accounts.txt"
    limited = "".join(f"{key} name=limited-{dialect} rpm=2\n" for dialect, key in LIMITED.items())
    keys_file.write_text(f"# client keys\n{ALPHA} name=alpha\n{limited}"
                         f"{SINGLE} name=single concurrency=1\n{REVOKED} name=leaving\n")
    accounts_file.write_text("# the pool\n" + "".join(f"{a['credential']}\n" for a in made))
    env = {**surface_env, "GATEWAY_WORKERS": "2", "GATEWAY_API_KEYS_FILE": str(keys_file),
           "GATEWAY_ACCOUNTS_FILE": str(accounts_file), "GATEWAY_ADMIN_KEY": ADMIN,
           # Each test brings new accounts (fresh_accounts): read their credits soon.
           "GATEWAY_SWEEP_INTERVAL": "2"}
    proc, url = start_gateway(simulator_url, f"gateway-{surface_env['MINIMAX_SURFACE']}-keyed", env)
    GATEWAYS.append(proc)
    yield Keyed(url, keys_file, accounts_file, proc, made)
    proc.stop()


@pytest.fixture(autouse=True)
def fresh_accounts(keyed: Keyed, simulator_url: str, surface: str) -> None:
    """New server-side accounts for each test: the simulator's reset forgets what an
    account did (its session configuration among it), which a gateway that served the
    account in an earlier test would not repeat."""
    keyed.accounts = mint(simulator_url, surface)
    keyed.accounts_file.write_text("# the pool\n" + "".join(f"{a['credential']}\n" for a in keyed.accounts))
    time.sleep(CHECK_SECONDS + 0.1)  # each worker looks at the file at most once a second


def chat(dialect: str, key: str | None, query_key: bool = False) -> tuple[str, dict, dict]:
    """(path, headers, body) of a small chat request in ``dialect``, with ``key`` where
    its clients put it."""
    if dialect == "openai":
        return ("/v1/chat/completions", {"Authorization": f"Bearer {key}"} if key else {},
                {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    if dialect == "anthropic":
        return ("/v1/messages", {"x-api-key": key} if key else {},
                {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    if query_key and key:
        path += f"?key={key}"
    return path, ({"x-goog-api-key": key} if key and not query_key else {}), {"contents": [{"parts": [{"text": "hi"}]}]}


def assert_dialect_error(response: requests.Response, dialect: str, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    if dialect == "openai":
        assert set(body["error"]) == {"message", "type", "param", "code"}
    elif dialect == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] in ("authentication_error", "rate_limit_error")
    else:
        assert body["error"]["code"] == status and body["error"]["status"]
    message: str = body["error"]["message"]
    return message


DIALECTS = [("openai", False), ("anthropic", False), ("gemini", False), ("gemini", True)]


@pytest.mark.parametrize(("dialect", "query_key"), DIALECTS)
def test_missing_wrong_and_credential_keys_are_401_in_each_dialect(keyed, sim, dialect, query_key) -> None:
    for key, hint in ((None, "requires one of its API keys"), ("sk-wrong-0000000000000000", "not valid"),
                      (keyed.accounts[0]["credential"], "not valid")):
        path, headers, body = chat(dialect, key, query_key)
        message = assert_dialect_error(keyed.call("POST", path, headers=headers, json=body), dialect, 401)
        assert hint in message
    assert sim.stats()["sends"] == 0


@pytest.mark.parametrize(("dialect", "query_key"), DIALECTS)
def test_a_key_is_answered_from_the_server_accounts(keyed, sim, dialect, query_key) -> None:
    sim.set_default({"length": 40, "cps": 2000})
    path, headers, body = chat(dialect, ALPHA, query_key)
    response = keyed.call("POST", path, headers=headers, json=body)
    assert response.status_code == 200, response.text
    (generated,) = sim.log()
    assert generated["answer"] in response.text
    assert generated["account"] in {account["real_user_id"] for account in keyed.accounts}


def test_the_official_sdks_use_the_key(keyed, sim) -> None:
    sim.set_default({"length": 30, "cps": 2000})
    reply = openai.OpenAI(base_url=keyed.url + "/v1", api_key=ALPHA, max_retries=0).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "a"}])
    message = anthropic.Anthropic(base_url=keyed.url, api_key=ALPHA, max_retries=0).messages.create(
        model="m", max_tokens=50, messages=[{"role": "user", "content": "b"}])
    api = gemini_client(keyed.url, ALPHA)
    answer = api.models.generate_content(model="gemini-2.5-flash", contents="c")
    answers = [entry["answer"] for entry in sim.log()]
    assert [reply.choices[0].message.content, message.content[0].text, answer.text] == answers  # type: ignore[union-attr]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=keyed.url + "/v1", api_key="sk-nope-000000000000000", max_retries=0
                      ).models.list()
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=keyed.url, api_key="sk-nope-000000000000000", max_retries=0
                            ).messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    refused = gemini_client(keyed.url, "sk-nope-000000000000000")
    with pytest.raises(genai_errors.ClientError) as info:
        refused.models.generate_content(model="g", contents="x")
    assert info.value.code == 401


def test_a_revoked_key_is_refused_once_the_file_changes(keyed, sim) -> None:
    path, headers, body = chat("openai", REVOKED)
    sim.set_default({"length": 20, "cps": 2000})
    assert keyed.call("POST", path, headers=headers, json=body).status_code == 200
    keyed.keys_file.write_text(keyed.keys_file.read_text().replace(f"{REVOKED} name=leaving\n", ""))
    deadline = time.monotonic() + 10
    statuses: list[int] = []
    while time.monotonic() < deadline and statuses[-4:] != [401] * 4:  # both workers
        statuses.append(keyed.call("GET", "/v1/models", headers=headers).status_code)
        time.sleep(0.1)
    assert statuses[-4:] == [401] * 4
    assert keyed.call("GET", "/v1/models", headers={"Authorization": f"Bearer {ALPHA}"}).status_code == 200


@pytest.mark.parametrize(("dialect", "query_key"), DIALECTS[:3])
def test_requests_per_minute_answer_429_with_retry_after(keyed, dialect, query_key) -> None:
    listing = {"openai": "/v1/models", "anthropic": "/v1/models", "gemini": "/v1beta/models"}[dialect]
    headers = chat(dialect, LIMITED[dialect], query_key)[1]
    if dialect == "anthropic":
        headers = {**headers, "anthropic-version": "2023-06-01"}
    statuses = [keyed.call("GET", listing, headers=headers) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert "2 requests per minute" in assert_dialect_error(statuses[2], dialect, 429)
    # Until the first request is a minute old: the sliding minute began with it.
    assert 50 <= int(statuses[2].headers["Retry-After"]) <= 60


def test_concurrency_limit_answers_429_until_the_stream_ends(keyed, sim) -> None:
    sim.set_default({"length": 60, "cps": 40})
    path, headers, body = chat("openai", SINGLE)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(keyed.call, "POST", path, headers=headers, json={**body, "stream": True})
        deadline = time.monotonic() + 10
        while not generating(sim) and time.monotonic() < deadline:
            time.sleep(0.05)
        second = keyed.call("POST", path, headers=headers, json=body)
        assert "1 requests at once" in assert_dialect_error(second, "openai", 429)
        assert second.headers["Retry-After"] == "1"
        assert first.result().status_code == 200
    sim.set_default({"length": 10, "cps": 2000})
    # The slot is freed when the server closes the response, a moment after its last byte.
    statuses = [keyed.call("POST", path, headers=headers, json=body).status_code]
    while statuses[-1] == 429 and len(statuses) < 20:
        time.sleep(0.1)
        statuses.append(keyed.call("POST", path, headers=headers, json=body).status_code)
    assert statuses[-1] == 200 and len(statuses) <= 5, statuses


def test_admin_accounts_show_the_pool_masked_with_usage_and_credits(keyed, sim, surface) -> None:
    sim.set_default({"length": 10, "cps": 2000})
    path, headers, body = chat("openai", ALPHA)
    assert keyed.call("POST", path, headers=headers, json=body).status_code == 200
    assert keyed.call("GET", "/admin/accounts").status_code == 401
    assert keyed.call("GET", "/admin/accounts", headers={"Authorization": f"Bearer {ALPHA}"}).status_code == 401
    # A code account's row has no web credits to wait for.
    overview = _overview(keyed, lambda o: surface == "code" or all(a["credits"] is not None for a in o["accounts"]))
    assert overview["mode"] == "keys"
    rows = {row["account"]: row for row in overview["accounts"]}
    assert len(rows) == 2 and all(row["source"] == "server" and "…" in row["account"] for row in rows.values())
    assert sum(row["answers_today"] for row in rows.values()) >= 1
    assert all(row["state"] == "free" for row in rows.values())
    assert surface == "code" or all(row["credits"] > 0 for row in rows.values())
    names = {row["name"]: row for row in overview["keys"]}
    assert set(names) >= {"alpha", "limited-openai", "single"}
    assert names["alpha"]["requests_today"] >= 1 and names["limited-openai"]["rpm"] == 2
    assert sum(overview["series"]["requests"]) >= 1 and len(overview["series"]["requests"]) == 60


def _overview(keyed: Keyed, ready: Callable[[dict], bool]) -> dict:
    deadline = time.monotonic() + 15
    while True:
        response = keyed.call("GET", "/admin/accounts", headers={"X-Admin-Key": ADMIN})
        assert response.status_code == 200, response.text
        overview: dict = response.json()
        if ready(overview) or time.monotonic() > deadline:
            return overview
        time.sleep(0.5)


def test_a_refused_account_is_confirmed_dead_and_skipped(keyed, sim, surface) -> None:
    # Late in the module: the account stays dead here until its re-probe.
    sim.set_default({"length": 10, "cps": 2000})
    dead, alive = keyed.accounts
    if surface == "code":
        sim.patch_code_account(dead["name"], expire_access=True)
    else:
        sim.patch_account(dead["real_user_id"], expired=True)
    path, headers, body = chat("openai", ALPHA)
    for _ in range(4):  # both accounts get tried: the refused one is never the answer
        assert keyed.call("POST", path, headers=headers, json=body).status_code == 200
    assert {entry["account"] for entry in sim.log()} == {alive["real_user_id"]}
    rows = {row["key"]: row for row in _overview(keyed, lambda o: True)["accounts"]}
    (refused,) = [row for row in rows.values() if row["state"] == "dead"]
    assert refused["last_error"].startswith("UpstreamUnauthorized") and refused["last_error_at"]
    calls = sim.stats()["requests"].get("user_info", 0), _code_calls(sim, dead)
    assert keyed.call("POST", path, headers=headers, json=body).status_code == 200
    assert (sim.stats()["requests"].get("user_info", 0), _code_calls(sim, dead)) == calls, "the dead one is skipped"


def _code_calls(sim: SimulatorControl, account: dict) -> int:
    """The code surface's calls made with ``account`` (0 for a web account)."""
    return sum(entry.get("account") == account.get("name") for entry in sim.code_log())


def test_no_credential_or_key_in_any_response_or_log(keyed) -> None:
    assert len(keyed.seen) > 20
    secrets = [ADMIN]
    for account in keyed.accounts:
        if "access_token" in account:  # a MiniMax Code account
            secrets += [account["access_token"], account["refresh_token"]]
            continue
        jwt = account["jwt"]
        secrets += [jwt, *jwt.split(".")[1:]]
    for response in keyed.seen:
        text = response.text + "".join(f"{k}: {v}\n" for k, v in response.headers.items())
        assert not [s for s in secrets if s in text], response.request.url
        assert not [k for k in KEYS if k in text]
    log = keyed.proc.log()
    assert "POST /v1/chat/completions 200" in log
    assert not [s for s in (*secrets, *KEYS) if s in log]
