"""The upkeep round against the simulator: dead accounts re-probed with the identity
check, credits read, one process at a time."""

from __future__ import annotations

import pytest

from gateway.accounts.maintenance import MAINTENANCE_LOCK, Maintenance
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
from gateway.upstream.surfaces import build_surfaces

# In process, with the web drivers only (the surface setting plays no part): once.
pytestmark = pytest.mark.surfaces("session")


class Clock:
    def __init__(self) -> None:
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def chat(simulator_url: str, surface_env: dict[str, str]) -> ChatService:
    settings = Settings.from_env({"MINIMAX_BASE_URL": simulator_url, **surface_env})
    upstream = settings.upstream()
    client = UpstreamClient(upstream)
    service = ChatService(client, build_surfaces(client, upstream), AccountPool(open_state("")), Janitor(),
                          settings.chat(), MediaResolver(settings.fetch()))
    return service


def test_a_dead_account_is_reprobed_until_it_answers(chat: ChatService, sim, accounts) -> None:
    (account,) = accounts(1, credits=77)
    cred, clock = parse_one(account["credential"]), Clock()
    chat.health = AccountHealth(chat.pool.state, clock)
    upkeep = Maintenance(chat, lambda: [cred], interval=60, credits_interval=600)
    chat.health.dead(cred.key, UpstreamUnauthorized())
    sim.patch_account(account["real_user_id"], expired=True)
    assert upkeep.run_once()
    assert chat.health.of(cred.key).probes == 1, "not due yet: not probed"
    clock.now = chat.health.of(cred.key).probe_at  # type: ignore[assignment]
    assert upkeep.run_once()
    assert chat.health.is_dead(cred.key) and chat.health.of(cred.key).probes == 2
    sim.patch_account(account["real_user_id"], expired=False)
    clock.now = chat.health.of(cred.key).probe_at  # type: ignore[assignment]
    assert upkeep.run_once()
    assert chat.health.of(cred.key).state == "ok"
    assert upkeep.run_once()  # alive again: its credits are read
    assert chat.health.of(cred.key).credits == 77


def test_one_round_at_a_time(chat: ChatService) -> None:
    state = chat.pool.state
    assert state.try_lease("t", [MAINTENANCE_LOCK], "another-host", 30).account == MAINTENANCE_LOCK
    assert not Maintenance(chat, lambda: [], interval=60, credits_interval=600).run_once()
    state.release(MAINTENANCE_LOCK, "another-host")
    assert Maintenance(chat, lambda: [], interval=60, credits_interval=600).run_once()
