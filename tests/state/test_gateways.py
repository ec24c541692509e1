"""Two gateways (separate gunicorn masters, two workers each, as on two hosts) sharing one
Redis state and one account: every answer exact, never two generations at once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.openai.test_chat_completions import ask, client, concurrently
from tests.servers import start_gateway

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def two_hosts(simulator_url: str, surface_env: dict[str, str], clean_redis: str) -> Iterator[list[str]]:
    env = {**surface_env, "GATEWAY_WORKERS": "2", "GATEWAY_STATE": clean_redis, "GATEWAY_QUEUE_TIMEOUT": "60"}
    started = [start_gateway(simulator_url, f"gateway-{surface_env['MINIMAX_SURFACE']}-redis-host{i}", env)
               for i in (1, 2)]
    yield [url for _, url in started]
    for proc, _ in started:
        proc.stop()


def test_two_hosts_on_one_redis_never_generate_twice_on_one_account(two_hosts, sim, credential) -> None:
    sim.set_default({"length": 200, "cps": 800})
    apis = [client(url, credential, timeout=90) for url in two_hosts]

    def run(i: int) -> tuple[str, str]:
        reply = apis[i % 2].chat.completions.create(model="m", messages=ask(f"h{i}"))
        return f"h{i}", reply.choices[0].message.content or ""

    answers = dict(concurrently(run, 10))
    log = sim.log()
    assert len(log) == 10
    assert answers == {entry["prompt"]: entry["answer"] for entry in log}
    stats = sim.wait_idle(10)
    assert stats["double_generation_attempts"] == 0 and stats["chats_alive"] == 0


KEY = "sk-two-hosts-5a4b3c2d1e0f"


@pytest.fixture
def two_pool_hosts(simulator_url: str, surface_env: dict[str, str], clean_redis: str, accounts
                   ) -> Iterator[list[str]]:
    """Two gateways serving one server-side account behind a client key."""
    (account,) = accounts(1)
    env = {**surface_env, "GATEWAY_WORKERS": "2", "GATEWAY_STATE": clean_redis, "GATEWAY_QUEUE_TIMEOUT": "60",
           "GATEWAY_API_KEYS": KEY, "MINIMAX_CREDENTIALS": account["credential"]}
    started = [start_gateway(simulator_url, f"gateway-{surface_env['MINIMAX_SURFACE']}-pool-host{i}", env)
               for i in (1, 2)]
    yield [url for _, url in started]
    for proc, _ in started:
        proc.stop()


def test_two_hosts_serve_a_server_account_first_come_first_served(two_pool_hosts, sim) -> None:
    sim.set_default({"length": 120, "cps": 600})
    apis = [client(url, KEY, timeout=90) for url in two_pool_hosts]

    def run(i: int) -> tuple[str, str]:
        time.sleep(0.15 * i)  # arrive in order, each while the account is busy
        reply = apis[i % 2].chat.completions.create(model="m", messages=ask(f"q{i}"))
        return f"q{i}", reply.choices[0].message.content or ""

    answers = dict(concurrently(run, 10))
    log = sim.log()
    assert [entry["prompt"] for entry in log] == [f"q{i}" for i in range(10)]  # first come, first served
    assert answers == {entry["prompt"]: entry["answer"] for entry in log}
    stats = sim.wait_idle(10)
    assert stats["double_generation_attempts"] == 0 and stats["chats_alive"] == 0
