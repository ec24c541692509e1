"""The MiniMax Code OAuth client: every row of the page's poll table, the token answer's
checks, PKCE, slow_down, transient failures and single-use refresh tokens.

The answer parsers are tested on the page's shapes directly; the client itself against
the simulator's account host (which checks the form body, the PKCE challenge and the
rotation of refresh tokens).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.config import Settings
from gateway.errors import (
    DeviceLoginDenied,
    DeviceLoginExpired,
    DeviceLoginFailed,
    RateLimited,
    SignInRevoked,
    UpstreamBadAnswer,
    UpstreamServerError,
)
from gateway.upstream.oauth import OAuthClient, Pending, TokenPair, parse_device, parse_grant, poll_answer
from tests.simulator.control import SimulatorControl

NOW = 1_800_000_000.0
GRANT = {"access_token": "mmoat_" + "a" * 54, "refresh_token": "mmort_" + "r" * 54,
         "token_type": "Bearer", "expires_in": 3600, "scope": "agent.default"}


# -- the device answer ----------------------------------------------------------------------

def test_a_standard_device_answer() -> None:
    auth = parse_device({"device_code": "dc-1", "user_code": "ABCD-EFGH",
                         "verification_uri": "https://account.minimax.io/oauth-authorize",
                         "verification_uri_complete": "https://account.minimax.io/oauth-authorize?user_code=ABCD-EFGH",
                         "expires_in": 300, "interval": 3}, "verifier", NOW)
    assert (auth.device_code, auth.user_code, auth.interval, auth.expires_at) == ("dc-1", "ABCD-EFGH", 3, NOW + 300)
    assert auth.link.endswith("?user_code=ABCD-EFGH")


def test_a_device_answer_without_interval_polls_every_five_seconds_and_takes_verification_url() -> None:
    auth = parse_device({"device_code": "dc", "user_code": "ABCD-EFGH", "expires_in": 300,
                         "verification_url": "https://account.minimax.cn/oauth-authorize"}, "v", NOW)
    assert auth.interval == 5.0 and auth.link == "https://account.minimax.cn/oauth-authorize"


def test_the_official_clients_user_code_variant() -> None:
    """No device_code: poll with the user code; expired_in in epoch ms, interval in ms."""
    auth = parse_device({"user_code": "WXYZ-1234", "expired_in": (NOW + 120) * 1000, "interval": 2000,
                         "verification_uri": "https://account.minimax.cn/x"}, "v", NOW)
    assert auth.device_code is None and auth.interval == 2.0 and auth.expires_at == pytest.approx(NOW + 120)


@pytest.mark.parametrize("change", [
    {"device_code": None}, {"user_code": None}, {"expires_in": 0}, {"verification_uri": None},
    {"verification_uri": "javascript:alert(1)"}, {"user_code": "AB\x1b[2J"},
    {"verification_uri": "https://evil.example/\x1b[31m"},
], ids=["no-device-code", "no-user-code", "no-lifetime", "no-link", "not-http", "escape-in-code", "escape-in-link"])
def test_an_unusable_device_answer_is_refused(change: dict[str, Any]) -> None:
    answer = {"device_code": "dc", "user_code": "ABCD-EFGH", "expires_in": 300,
              "verification_uri": "https://account.minimax.io/oauth-authorize"}
    answer.update(change)
    with pytest.raises(UpstreamBadAnswer):
        parse_device({k: v for k, v in answer.items() if v is not None}, "v", NOW)


# -- poll answers ---------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "body", "expected"), [
    (200, {"status": "pending"}, Pending()),
    (400, {"error": "authorization_pending"}, Pending()),
    (200, {"status": "slow_down"}, Pending(slow_down=True)),
    (400, {"error": "slow_down"}, Pending(slow_down=True)),
], ids=["200-pending", "400-pending", "200-slow-down", "400-slow-down"])
def test_waiting_answers(status: int, body: dict[str, Any], expected: Pending) -> None:
    assert poll_answer(status, body, NOW) == expected


@pytest.mark.parametrize(("status", "body", "error"), [
    (200, {"status": "denied"}, DeviceLoginDenied), (200, {"status": "access_denied"}, DeviceLoginDenied),
    (400, {"error": "access_denied"}, DeviceLoginDenied),
    (200, {"status": "expired"}, DeviceLoginExpired), (200, {"status": "expired_token"}, DeviceLoginExpired),
    (400, {"error": "expired_token"}, DeviceLoginExpired),
    (400, {"error": "invalid_grant"}, DeviceLoginFailed),
    (500, {"error": "server_error"}, UpstreamServerError), (429, {}, RateLimited),
], ids=lambda value: str(value) if not isinstance(value, dict) else "-".join(map(str, value.values())))
def test_final_and_transient_answers(status: int, body: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        poll_answer(status, body, NOW)
    if error is DeviceLoginFailed:
        assert "invalid_grant" in str(raised.value)


def test_a_granted_poll_gives_the_token_pair() -> None:
    tokens = poll_answer(200, {**GRANT, "account_id": 42, "nickname": "alice"}, NOW)
    assert isinstance(tokens, TokenPair)
    assert (tokens.expires_at, tokens.account_id, tokens.nickname) == (NOW + 3600, "42", "alice")


# -- token answers --------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "problem"), [
    ({"token_type": "mac"}, "bearer"), ({"expires_in": 0}, "expires_in"), ({"expires_in": "3600"}, "expires_in"),
    ({"scope": "other"}, "agent.default"), ({"refresh_token": None}, "refresh_token"),
    ({"access_token": "mmoat_ with space"}, "access_token"),
], ids=["type", "zero-lifetime", "string-lifetime", "scope", "no-refresh", "bad-access"])
def test_a_token_answer_is_checked_like_the_official_clients(change: dict[str, Any], problem: str) -> None:
    answer = {k: v for k, v in {**GRANT, **change}.items() if v is not None}
    with pytest.raises(UpstreamBadAnswer) as raised:
        parse_grant(answer, NOW)
    assert problem in str(raised.value)
    assert GRANT["refresh_token"] not in str(raised.value)


def test_a_refresh_answer_without_refresh_token_keeps_the_old_one_and_scopes_may_be_a_list() -> None:
    answer = {k: v for k, v in GRANT.items() if k != "refresh_token"} | {"scope": ["agent.default", "x"]}
    tokens = parse_grant(answer, NOW, previous_refresh="mmort_" + "o" * 54)
    assert tokens.refresh_token == "mmort_" + "o" * 54 and tokens.scope == "agent.default x"


def test_reprs_hide_every_secret() -> None:
    tokens = parse_grant(GRANT, NOW)
    auth = parse_device({"device_code": "device-secret-123", "user_code": "ABCD-EFGH", "expires_in": 300,
                         "verification_uri": "https://a.example/x"}, "verifier-secret-456", NOW)
    shown = repr(tokens) + str(tokens) + repr(auth) + str(auth)
    for secret in (GRANT["access_token"], GRANT["refresh_token"], "device-secret-123", "verifier-secret-456"):
        assert secret not in shown


# -- the client against the simulator -------------------------------------------------------

@pytest.fixture
def oauth(simulator_url: str) -> Iterator[OAuthClient]:
    settings = Settings.from_env({"MINIMAX_ACCOUNT_BASE_URL": simulator_url})
    client = OAuthClient(settings.code())
    yield client
    client.close()


class Sleeps:
    """Records each requested sleep, and sleeps it (the simulator answers slow_down to a
    client that polls faster than the interval)."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        time.sleep(seconds)


@pytest.mark.parametrize("pending_form", ["200", "400"])
def test_a_device_login_approved_in_the_browser(sim: SimulatorControl, oauth: OAuthClient,
                                                 pending_form: str) -> None:
    sim.code_config(pending_form=pending_form, interval=1, device_expires_in=30)
    auth = oauth.start()
    pending: list[Pending] = []
    assert oauth.poll(auth) == Pending()
    sim.approve_device(auth.user_code)
    tokens = oauth.wait(auth, sleep=Sleeps(), on_pending=pending.append)
    assert tokens.access_token.startswith("mmoat_") and tokens.refresh_token.startswith("mmort_")
    assert sim.code_stats()["grants"] == 1


def test_slow_down_adds_five_seconds_to_the_interval(sim: SimulatorControl, oauth: OAuthClient) -> None:
    sim.code_config(slow_down_once=True, interval=1, device_expires_in=30)
    auth = oauth.start()
    sleeps, seen = Sleeps(), []

    def on_pending(answer: Pending) -> None:
        seen.append(answer)
        if len(seen) == 2:
            sim.approve_device(auth.user_code)

    oauth.wait(auth, sleep=sleeps, on_pending=on_pending)
    assert seen[0] == Pending(slow_down=True)
    assert sleeps.asked[:2] == [6.0, 6.0]  # 1 s + 5 s, and it stays longer


@pytest.mark.parametrize("deny", [True, False], ids=["denied", "expired"])
def test_denial_and_expiry_end_the_login(sim: SimulatorControl, oauth: OAuthClient, deny: bool) -> None:
    sim.code_config(interval=1, device_expires_in=2)
    auth = oauth.start()
    if deny:
        sim.approve_device(auth.user_code, deny=True)
    with pytest.raises(DeviceLoginDenied if deny else DeviceLoginExpired):
        oauth.wait(auth, sleep=Sleeps())


def test_server_errors_while_polling_are_retried(sim: SimulatorControl, oauth: OAuthClient) -> None:
    sim.code_config(interval=1, device_expires_in=30)
    auth = oauth.start()
    sim.approve_device(auth.user_code)
    sim.fault("code_token", "http_503", count=2)
    sleeps = Sleeps()
    assert oauth.wait(auth, sleep=sleeps).access_token.startswith("mmoat_")
    assert sleeps.asked[:2] == [1.0, 2.0]  # backoff from the interval, doubled


def test_the_device_request_is_a_pkce_form(sim: SimulatorControl, oauth: OAuthClient) -> None:
    """The simulator refuses JSON bodies' absence of a challenge and a wrong verifier."""
    auth = oauth.start()
    sim.approve_device(auth.user_code)
    wrong = dataclasses.replace(auth, code_verifier="x" * 43)
    with pytest.raises(DeviceLoginFailed):
        oauth.poll(wrong)
    stats = sim.code_stats()
    assert not stats["warnings"].get("oauth_json_body")
    assert isinstance(oauth.poll(auth), TokenPair)


def test_refresh_tokens_are_single_use(sim: SimulatorControl, oauth: OAuthClient) -> None:
    account = sim.add_code_accounts(1)[0]
    first = oauth.refresh(account["refresh_token"])
    assert first.access_token != account["access_token"] and first.refresh_token != account["refresh_token"]
    second = oauth.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    with pytest.raises(SignInRevoked):
        oauth.refresh(account["refresh_token"])
    stats = sim.code_stats()
    assert (stats["refreshes"], stats["invalid_grants"]) == (2, 1)


def test_a_refresh_answer_without_refresh_token_keeps_it(sim: SimulatorControl, oauth: OAuthClient) -> None:
    sim.code_config(refresh_keeps_token=True)
    account = sim.add_code_accounts(1)[0]
    assert oauth.refresh(account["refresh_token"]).refresh_token == account["refresh_token"]


def test_the_user_agent_names_the_gateway(sim: SimulatorControl, simulator_url: str) -> None:
    import requests

    seen: list[str] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, **_: seen.append(response.request.headers["User-Agent"]))
    settings = Settings.from_env({"MINIMAX_ACCOUNT_BASE_URL": simulator_url,
                                  "MINIMAX_CODE_USER_AGENT": "MiniMaxAgent"})
    OAuthClient(settings.code(), session=session).start()
    default = Settings.from_env({"MINIMAX_ACCOUNT_BASE_URL": simulator_url}).code()
    OAuthClient(default, session=session).start()
    assert seen == ["MiniMaxAgent", "MiniMax-Free-API/1.0 (self-hosted gateway)"]
