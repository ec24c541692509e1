"""MINIMAX_SURFACE=auto end to end: each account is probed, the working surface is used,
remembered, shown, and probed again after a refusal; identity and token renewal."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest
import requests

from tests.simulator.control import SimulatorControl

PROBE_ENV = {"MINIMAX_SURFACE": "auto"}


@pytest.fixture
def auto_gateway(gateway_factory: Callable[..., str], surface: str) -> str:
    if surface != "session":  # auto mode is one set of tests, not one per forced surface
        pytest.skip("surface choice is tested once, under the session parametrisation")
    return gateway_factory(**PROBE_ENV)


def ask(gateway: str, credential: str, text: str = "hi") -> str:
    api = openai.OpenAI(base_url=gateway + "/v1", api_key=credential, max_retries=0)
    reply = api.chat.completions.create(model="MiniMax-M2", messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content or ""


def surfaces_shown(gateway: str) -> dict[str, str]:
    return requests.get(gateway + "/healthz", timeout=10).json()["surfaces"]


def test_matrix_refused_with_an_empty_401_means_session(auto_gateway, sim: SimulatorControl, accounts) -> None:
    (account,) = accounts(1, surfaces={"matrix": False})
    sim.script([{"text": "from the session", "cps": 5000}])
    assert ask(auto_gateway, account["credential"]) == "from the session"
    assert sim.log()[-1]["surface"] == "session"
    assert "session" in surfaces_shown(auto_gateway).values()


def test_session_path_answering_html_means_matrix(auto_gateway, sim: SimulatorControl, accounts) -> None:
    (account,) = accounts(1, surfaces={"session": False})
    sim.script([{"text": "from matrix", "cps": 5000}])
    assert ask(auto_gateway, account["credential"]) == "from matrix"
    assert sim.log()[-1]["surface"] == "matrix"
    metrics = requests.get(auto_gateway + "/metrics", timeout=10).text
    assert 'gateway_account_surface{account="' in metrics and 'surface="matrix"} 1.0' in metrics


def test_both_failing_is_a_clear_502_naming_both(auto_gateway, sim: SimulatorControl, accounts) -> None:
    (account,) = accounts(1, surfaces={"session": False, "matrix": False})
    api = openai.OpenAI(base_url=auto_gateway + "/v1", api_key=account["credential"], max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        api.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502
    message = info.value.response.json()["error"]["message"]
    assert "session API" in message and "matrix API" in message
    assert sim.stats()["sends"] == 0


def test_the_choice_is_remembered_then_re_probed_after_a_refusal(auto_gateway, sim, accounts) -> None:
    (account,) = accounts(1, surfaces={"session": False})
    sim.script([{"text": "one", "cps": 5000}, {"text": "two", "cps": 5000}, {"text": "three", "cps": 5000}])
    assert ask(auto_gateway, account["credential"]) == "one"
    config_calls = sum(n for path, n in sim.stats()["requests"].items() if path.endswith("/config"))
    assert ask(auto_gateway, account["credential"]) == "two"  # remembered: no new probe
    assert sum(n for path, n in sim.stats()["requests"].items() if path.endswith("/config")) == config_calls
    sim.patch_account(account["real_user_id"], surfaces={"session": True, "matrix": False})
    assert ask(auto_gateway, account["credential"]) == "three"  # 401 on matrix → probe → session
    assert [entry["surface"] for entry in sim.log()] == ["matrix", "matrix", "session"]
    assert sim.wait_idle(10)["chats_alive"] == 0


def test_a_bare_jwt_works_its_real_user_id_is_learned(gateway, web_only, sim: SimulatorControl, accounts) -> None:
    (account,) = accounts(1)
    assert account["jwt_user_id"] != account["real_user_id"]
    sim.script([{"text": "bare", "cps": 5000}])
    assert ask(gateway, account["jwt"]) == "bare"
    assert sim.log()[-1]["account"] == account["real_user_id"]
    assert sim.stats()["requests"].get("/v1/api/user/info", 0) >= 1


def test_a_token_near_its_expiry_is_renewed_and_the_new_one_used(gateway, web_only, sim, accounts) -> None:
    (account,) = accounts(1, exp_seconds=3600)  # within MINIMAX_RENEW_BEFORE (a day)
    sim.script([{"text": "a", "cps": 5000}, {"text": "b", "cps": 5000}])
    assert ask(gateway, account["credential"]) == "a"
    assert ask(gateway, account["credential"]) == "b"
    assert sim.stats()["requests"].get("/v1/api/user/renewal", 0) == 1
    # The probe's look at the first prefix the simulator does not serve is its only refusal.
    assert set(sim.stats()["rejections"]) <= {"session_wrong_prefix"}


def test_a_surface_refusing_a_valid_token_is_a_502_not_a_dead_account(gateway, web_only, surface, sim, accounts) -> None:
    (account,) = accounts(1, surfaces={surface: False})
    dead_before = requests.get(gateway + "/healthz", timeout=10).json()["accounts"]["dead"]  # other tests' accounts
    api = openai.OpenAI(base_url=gateway + "/v1", api_key=account["credential"], max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        api.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502
    assert "refused this account although its token is valid" in info.value.response.json()["error"]["message"]
    assert requests.get(gateway + "/healthz", timeout=10).json()["accounts"]["dead"] == dead_before
    sim.patch_account(account["real_user_id"], surfaces={surface: True})
    sim.script([{"text": "back", "cps": 5000}])
    assert ask(gateway, account["credential"]) == "back"


def test_a_web_token_is_tried_once_on_the_code_surface(auto_gateway, sim: SimulatorControl, accounts) -> None:
    (refused,) = accounts(1)  # the simulator's default: web tokens are no Bearer on the code endpoint
    sim.script([{"text": "from the web", "cps": 5000}, {"text": "again", "cps": 5000}])
    assert ask(auto_gateway, refused["credential"]) == "from the web"
    assert ask(auto_gateway, refused["credential"]) == "again"
    assert sim.code_stats()["count_tokens_calls"] == 1  # tried once, remembered
    sim.code_config(accept_web_tokens=True)
    (taken,) = accounts(1)
    sim.script([{"text": "from code", "cps": 5000}])
    assert ask(auto_gateway, taken["credential"]) == "from code"
    assert sim.log()[-1]["surface"] == "code"
    assert "code" in surfaces_shown(auto_gateway).values()


def test_the_code_probe_of_web_tokens_can_be_switched_off(gateway_factory, surface, sim, accounts) -> None:
    if surface != "session":
        pytest.skip("surface choice is tested once, under the session parametrisation")
    gateway = gateway_factory(MINIMAX_SURFACE="auto", MINIMAX_CODE_PROBE_WEB_TOKENS="off")
    sim.code_config(accept_web_tokens=True)
    (account,) = accounts(1)
    sim.script([{"text": "from the web", "cps": 5000}])
    assert ask(gateway, account["credential"]) == "from the web"
    assert sim.code_stats().get("count_tokens_calls", 0) == 0
