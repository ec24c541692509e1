"""Code accounts' quota in the shared state and in the upkeep round, against the simulator.

The maintenance round reads a code account's quota (not web credits), keeps it for
every worker (and the metrics' callback), not again before the interval, and keeps the
last reading when one fails; a refused token marks the account dead and a later good
reading revives it. A spent window tells the pool until when the account is out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.accounts.maintenance import Maintenance
from gateway.accounts.quotas import Quotas, quota_reader
from gateway.chat.health import AccountHealth
from gateway.chat.janitor import Janitor
from gateway.chat.media import MediaResolver
from gateway.chat.pool import AccountPool
from gateway.chat.service import ChatService
from gateway.config import Settings
from gateway.errors import UpstreamUnauthorized
from gateway.state import open_state
from gateway.upstream.client import UpstreamClient
from gateway.upstream.credentials import parse_one
from gateway.upstream.quota_shapes import Quota
from gateway.upstream.surfaces import build_surfaces
from tests.simulator.control import SimulatorControl


@pytest.fixture
def settings(simulator_url: str) -> Settings:
    return Settings.from_env({"MINIMAX_BASE_URL": simulator_url, "MINIMAX_ACCOUNT_BASE_URL": simulator_url,
                              "MINIMAX_CODE_BASE_URL": simulator_url, "MINIMAX_QUOTA_BASE_URL": simulator_url})


@pytest.fixture
def chat(settings: Settings, tmp_path: Path) -> ChatService:
    upstream = settings.upstream()
    client = UpstreamClient(upstream)
    return ChatService(client, build_surfaces(client, upstream), AccountPool(open_state(f"sqlite:///{tmp_path}/s.db")),
                       Janitor(), settings.chat(), MediaResolver(settings.fetch()))


@pytest.fixture
def readings() -> list[tuple[str, Quota]]:
    return []


@pytest.fixture
def quotas(chat: ChatService, settings: Settings, readings: list[tuple[str, Quota]]) -> Quotas:
    return Quotas(chat.pool.state, quota_reader(settings), lambda key, quota: readings.append((key, quota)))


def test_the_round_reads_a_code_accounts_quota(chat: ChatService, quotas: Quotas, sim: SimulatorControl,
                                               readings: list[tuple[str, Quota]]) -> None:
    (account,) = sim.add_code_accounts(1, quota=200, quota_left=150)
    cred = parse_one(account["access_token"])
    upkeep = Maintenance(chat, lambda: [cred], interval=60, credits_interval=600, quotas=quotas)
    assert upkeep.run_once()
    kept = quotas.of(cred.key)
    assert kept is not None and kept.percent == 25.0 and kept.credits == "1.50"
    assert chat.health.of(cred.key).credits == 1.5
    assert [key for key, _ in readings] == [cred.key]
    assert sim.code_stats()["quota_calls"] == 1
    assert upkeep.run_once()  # read within the interval: not again
    assert sim.code_stats()["quota_calls"] == 1 and not quotas.due(cred.key)


def test_a_refused_token_is_dead_and_a_good_reading_revives_it(chat: ChatService, quotas: Quotas,
                                                               sim: SimulatorControl) -> None:
    (account,) = sim.add_code_accounts(1, quota=200, quota_left=150)
    cred = parse_one(account["access_token"])
    upkeep = Maintenance(chat, lambda: [cred], interval=60, credits_interval=600, quotas=quotas)
    assert upkeep.run_once()
    sim.patch_code_account(account["name"], expire_access=True)
    quotas.forget(cred.key)  # due again at once
    assert upkeep.run_once()
    assert chat.health.is_dead(cred.key)
    assert quotas.of(cred.key) is None  # forgotten; a failed reading never writes one


def test_a_failed_reading_keeps_the_last_one(chat: ChatService, quotas: Quotas, sim: SimulatorControl) -> None:
    (account,) = sim.add_code_accounts(1, quota=200, quota_left=150)
    cred = parse_one(account["access_token"])
    first = quotas.read(cred, interval=600)
    chat.pool.state.delete("quotatry:" + cred.key)
    sim.fault("code_quota", "http_500")
    upkeep = Maintenance(chat, lambda: [cred], interval=60, credits_interval=600, quotas=quotas)
    assert upkeep.run_once()
    assert quotas.of(cred.key) == first and not chat.health.is_dead(cred.key)
    assert not quotas.due(cred.key)  # tried: not again before the interval


def test_a_spent_window_says_until_when(quotas: Quotas, sim: SimulatorControl) -> None:
    (spent, fresh) = sim.add_code_accounts(2, quota=200, quota_left=0)
    sim.patch_code_account(fresh["name"], quota_left=200)
    spent_quota = quotas.read(parse_one(spent["access_token"]), interval=600)
    fresh_cred = parse_one(fresh["access_token"])
    quotas.read(fresh_cred, interval=600)
    now = spent_quota.read_at
    assert quotas.exhausted_until(parse_one(spent["access_token"]).key, now) == spent_quota.resets_at
    assert quotas.exhausted_until(fresh_cred.key, now) is None
    assert quotas.exhausted_until(parse_one(spent["access_token"]).key, (spent_quota.resets_at or 0) + 1) is None
    assert quotas.exhausted_until("never-read", now) is None


def test_a_dead_code_account_revives_on_a_good_reading(chat: ChatService, quotas: Quotas,
                                                       sim: SimulatorControl) -> None:
    (account,) = sim.add_code_accounts(1, quota=200, quota_left=150)
    cred, clock = parse_one(account["access_token"]), Clock()
    chat.health = AccountHealth(chat.pool.state, clock)
    chat.health.dead(cred.key, UpstreamUnauthorized())
    upkeep = Maintenance(chat, lambda: [cred], interval=60, credits_interval=600, quotas=quotas)
    assert upkeep.run_once()
    assert chat.health.is_dead(cred.key) and sim.code_stats().get("quota_calls", 0) == 0  # its re-probe is not due
    clock.now = chat.health.of(cred.key).probe_at or 0.0
    assert upkeep.run_once()
    assert chat.health.of(cred.key).state == "ok" and sim.code_stats()["quota_calls"] == 1


class Clock:
    def __init__(self) -> None:
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now
