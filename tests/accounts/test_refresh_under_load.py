"""Two gateways (two gunicorn masters, two workers each, as on two hosts) on one Redis,
serving one account signed in with ``python -m gateway login`` whose access token lives
a few seconds, under a steady load of streams that span token rotations. Twice during
the load the simulator expires the token early and token counts (which take no account
lease) hit both gateways at once, so several processes ask to refresh the same token at
the same moment while the token endpoint is slow.

What must hold (issue 22, token lifecycle): every rotation is exactly one refresh
upstream (none refused with ``invalid_grant``, one per early expiry, none otherwise
before the token was due, each one persisted), no stream is cut, refused or answered
short, and the account never generates twice at once.

Every write of the sign-in record is read from Redis's MONITOR, so the test sees each
pair the gateways stored, in order, however briefly it lived.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
import redis

from tests.accounts.test_cli import Login
from tests.conftest import GATEWAYS, MINTED
from tests.servers import start_gateway
from tests.simulator.control import SimulatorControl

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

KEY = "sk-refresh-load-7e6d5c4b3a2f1e0d"
MODEL = "MiniMax-M2.7"
#: Seconds an access token lives at the simulator (refreshed pairs too).
LIFETIME = 8
#: MINIMAX_REFRESH_BEFORE: the upkeep refreshes min(this, LIFETIME / 2) s before expiry.
REFRESH_BEFORE = 5
#: Seconds of clock slack between processes when checking that a refresh was due.
CLOCK_SLACK = 1.0
#: The load: this many clients, each starting streams for this long (and at most this many).
CLIENTS = 6
LOAD_SECONDS = 15.0
STREAMS_PER_CLIENT = 8
#: Characters per second of each answer, and its length range: a stream lasts 1-2.5 s
#: at that rate (up to about 3.5 s on a loaded machine).
CPS = 100
LENGTHS = (100, 250)
#: Seconds into the load when the simulator expires the account's access tokens, and how
#: many token counts then hit the two gateways at once.
BURSTS_AT = (3.0, 9.0)
BURST_CALLS = 8
#: Seconds the token endpoint takes to answer the first refresh of each burst.
SLOW_REFRESH = 0.5
FILLER = ("alpha", "naïve", "café", "中文", "omega", "kappa", "über", "—")


@dataclass(frozen=True)
class Stream:
    """One streamed answer as a client saw it (times on this machine's clock)."""

    wanted: str
    text: str
    finish: str | None
    began: float
    ended: float


@dataclass(frozen=True)
class Pair:
    """One token pair the gateways wrote to the sign-in record (no repr: it holds secrets)."""

    access: str
    refresh: str
    expires_at: float
    issued_at: float  # refreshed_at, or created_at for the login's pair
    state: str

    def __repr__(self) -> str:
        return f"Pair(issued_at={self.issued_at:.2f}, expires_at={self.expires_at:.2f}, {self.state})"

    @property
    def due_at(self) -> float:
        """When the upkeep may refresh it first: never before half its lifetime."""
        lifetime = self.expires_at - self.issued_at
        return self.expires_at - min(REFRESH_BEFORE, lifetime / 2)


class RecordWrites:
    """Every HSET of the sign-in records on the Redis server, from MONITOR, in order."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=120)
        self._stop = f"stop-watching-{uuid.uuid4().hex}"
        self.pairs: list[Pair] = []
        self.error: BaseException | None = None
        self._closed = False
        self._monitor = self._client.monitor().__enter__()  # MONITOR is on before it returns
        self._thread = threading.Thread(target=self._watch, name="record-writes", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._client.echo(self._stop)
            self._thread.join(60)
        self._monitor.__exit__()
        self._client.close()

    def _watch(self) -> None:
        try:
            for _ in range(10_000_000):  # bounded; the stop word ends it long before
                command = str(self._monitor.next_command()["command"])
                if command.startswith("ECHO") and self._stop in command:
                    return
                if command.startswith("HSET") and "rec:signin" in command:
                    self.pairs.append(_pair(command))
        except BaseException as error:  # reported by stop()
            self.error = error

    def rotation_count(self) -> int:
        return len(rotations(list(self.pairs)))

    def stop(self) -> list[Pair]:
        """Stop reading (after every command sent so far); the pairs written."""
        self.close()
        assert not self._thread.is_alive(), "the MONITOR reader did not stop"
        assert self.error is None, f"reading MONITOR failed: {self.error!r}"
        return self.pairs


def _pair(command: str) -> Pair:
    """The pair in ``HSET <key> <name> <json>`` as MONITOR shows it (the JSON is ASCII)."""
    record = json.loads(command[command.index("{"):])
    issued = record["refreshed_at"] if record["refreshed_at"] is not None else record["created_at"]
    return Pair(record["access_token"], record["refresh_token"], float(record["expires_at"]), float(issued),
                str(record["state"]))


def rotations(pairs: list[Pair]) -> list[Pair]:
    """Each distinct access token's first write, in order (a rewrite of one is no rotation)."""
    seen: set[str] = set()
    first = []
    for pair in pairs:
        if pair.access not in seen:
            seen.add(pair.access)
            first.append(pair)
    return first


@pytest.fixture
def watched(clean_redis: str) -> Iterator[RecordWrites]:
    writes = RecordWrites(clean_redis)
    yield writes
    writes.close()


@pytest.fixture
def signed_in(sim: SimulatorControl, clean_redis: str, watched: RecordWrites, simulator_url: str) -> str:
    """One account signed in through the CLI into the Redis state; its simulator name."""
    sim.code_config(interval=1, device_expires_in=30, expires_in=LIFETIME)
    env = {"MINIMAX_ACCOUNT_BASE_URL": simulator_url, "MINIMAX_CODE_BASE_URL": simulator_url,
           "GATEWAY_STATE": clean_redis}
    login = Login({**_clean_environ(), **env}, "--name", "busy")
    account = str(sim.approve_device(login.device["user_code"])["account"])
    code, outcome, err = login.outcome()
    assert code == 0 and outcome["ok"] is True, err
    return account


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "MINIMAX_"))}


@pytest.fixture
def two_hosts(simulator_url: str, clean_redis: str, signed_in: str) -> Iterator[list[str]]:
    env = {"GATEWAY_WORKERS": "2", "GATEWAY_API_KEYS": KEY, "GATEWAY_STATE": clean_redis,
           "MINIMAX_SURFACE": "auto", "MINIMAX_REFRESH_BEFORE": str(REFRESH_BEFORE),
           "GATEWAY_QUEUE_TIMEOUT": "60"}
    with ThreadPoolExecutor(2) as pool:  # started side by side: each takes seconds on a loaded machine
        started = list(pool.map(lambda i: start_gateway(simulator_url, f"gateway-refresh-load-host{i}", env), (1, 2)))
    GATEWAYS.extend(proc for proc, _ in started)
    yield [url for _, url in started]
    for proc, _ in started:
        proc.stop()


def answer_text(tag: str, rng: random.Random) -> str:
    """A unique answer of 100-250 characters (non-ASCII included) to echo back."""
    length = rng.randint(*LENGTHS)
    words = [tag]
    while sum(len(w) + 1 for w in words) < length:
        words.append(rng.choice(FILLER))
    return " ".join(words)[:length]


def stream_once(api: openai.OpenAI, wanted: str) -> Stream:
    began = time.time()
    prompt = f"Repeat exactly what is between the markers: <<<{wanted}>>>"
    chunks = api.chat.completions.create(model=MODEL, stream=True, messages=[{"role": "user", "content": prompt}])
    parts: list[str] = []
    finish = None
    for chunk in chunks:
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return Stream(wanted, "".join(parts), finish, began, time.time())


def client_load(urls: list[str], index: int, load_end: float) -> list[Stream]:
    """One client: streams on the two gateways in turn until the load ends (bounded)."""
    rng = random.Random(index)
    apis = [openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=90) for url in urls]
    time.sleep(0.2 * index)
    done = []
    for n in range(STREAMS_PER_CLIENT):
        if time.monotonic() >= load_end:
            break
        done.append(stream_once(apis[(index + n) % 2], answer_text(f"c{index}s{n}", rng)))
    return done


@dataclass(frozen=True)
class Burst:
    """The account's access tokens expired at the simulator, then counts asked at once."""

    began: float
    ended: float
    counts: list[int]


def expire_and_count(sim: SimulatorControl, account: str, urls: list[str]) -> Burst:
    """Every process may hold the now-expired token: each count's 401 asks for a refresh of
    the same token at the same moment (counts take no account lease, unlike generations)."""
    apis = [anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0, timeout=60) for url in urls]
    began = time.time()
    # A slow token endpoint (as a real one can be) keeps the refresh open while the others ask.
    sim.fault("code_token", "hang", count=1, seconds=SLOW_REFRESH)
    sim.patch_code_account(account, expire_access=True)

    def count(i: int) -> int:
        messages: list[Any] = [{"role": "user", "content": f"count {i}: " + "naïve café 中文 " * (i + 1)}]
        return apis[i % 2].messages.count_tokens(model=MODEL, messages=messages).input_tokens

    with ThreadPoolExecutor(BURST_CALLS) as pool:
        counts = list(pool.map(count, range(BURST_CALLS), timeout=120))
    return Burst(began, time.time(), counts)


def bursts_during(sim: SimulatorControl, account: str, urls: list[str], writes: RecordWrites,
                  load_start: float) -> list[Burst]:
    """Each burst right after a rotation: the upkeep leaves a fresh token alone for half its
    lifetime, so the burst's refresh is the only one until it ends."""
    done = []
    for at in BURSTS_AT:
        time.sleep(max(0.0, load_start + at - time.monotonic()))
        seen, deadline = writes.rotation_count(), time.monotonic() + 2 * LIFETIME
        while writes.rotation_count() == seen:
            assert time.monotonic() < deadline, "the upkeep did not rotate the token"
            time.sleep(0.02)
        done.append(expire_and_count(sim, account, urls))
    return done


def run_load(sim: SimulatorControl, account: str, urls: list[str], writes: RecordWrites
             ) -> tuple[list[Stream], list[Burst]]:
    load_start = time.monotonic()
    with ThreadPoolExecutor(CLIENTS + 1) as pool:
        futures = [pool.submit(client_load, urls, i, load_start + LOAD_SECONDS) for i in range(CLIENTS)]
        bursts = pool.submit(bursts_during, sim, account, urls, writes, load_start)
        streams = [stream for future in futures for stream in future.result(timeout=180)]
        return streams, bursts.result(timeout=180)


def test_two_gateways_refresh_one_account_once_per_rotation_under_load(
        sim: SimulatorControl, watched: RecordWrites, two_hosts: list[str], signed_in: str) -> None:
    sim.set_default({"echo": "quoted", "cps": CPS, "first_delay": 0.1})
    streams, bursts = run_load(sim, signed_in, two_hosts, watched)
    sim.wait_idle(30)
    stats, calls = sim.code_stats(), sim.code_log()
    pairs = watched.stop()
    MINTED.extend({"credential": p.access, "access_token": p.access, "refresh_token": p.refresh} for p in pairs)
    rotated = rotations(pairs)
    forced = [[p for p in rotated if b.began <= p.issued_at <= b.ended] for b in bursts]
    upkept = [p for p in rotated[1:] if not any(p in f for f in forced)]
    # Shown when an assertion fails: what happened, when (seconds after the login).
    print(f"streams={len(streams)} refreshes={stats['refreshes']} invalid_grants={stats['invalid_grants']} "
          f"rejections={stats['rejections']} rotations at {[round(p.issued_at - pairs[0].issued_at, 1) for p in rotated]} "
          f"bursts at {[round(b.began - pairs[0].issued_at, 1) for b in bursts]}")

    # No stream interrupted: each one finished whole, with its finish reason.
    assert len(streams) >= CLIENTS
    cut = [(s.wanted[:8], len(s.text), len(s.wanted), s.finish) for s in streams
           if s.text != s.wanted or s.finish != "stop"]
    assert not cut, f"streams cut or changed (tag, got, wanted, finish): {cut}"
    # Every count was MiniMax's, after one refresh and replay (a failed call falls back to an estimate).
    counted = [c for c in calls if c["path"].endswith("/count_tokens")]
    assert sum(c["status"] == 200 for c in counted) == BURST_CALLS * len(BURSTS_AT), [c["status"] for c in counted]
    assert all(count > 0 for burst in bursts for count in burst.counts)
    refused = [(c["path"], c["status"], c["reason"]) for c in calls if c["status"] != 200]
    assert all(reason == "expired_token" for _, _, reason in refused), refused

    # Rotations happened, by the upkeep too, while streams were running.
    assert stats["refreshes"] >= 3, stats
    assert all(p.state == "ok" for p in pairs), pairs
    assert any(s.began < p.issued_at < s.ended for p in upkept for s in streams), \
        "the upkeep rotated no token during a stream: the load did not test what it should"

    # Exactly one refresh per rotation: none refused, each stored, one per expiry burst,
    # and otherwise none before the token was due (a second refresh of one rotation
    # comes right after the first).
    assert stats["invalid_grants"] == 0, stats
    assert stats["refreshes"] == len(rotated) - 1, (stats["refreshes"], rotated)
    assert [len(f) for f in forced] == [1] * len(bursts), f"refreshes per expiry burst: {[len(f) for f in forced]}"
    early = [(old, new) for old, new in zip(rotated, rotated[1:], strict=False)
             if new in upkept and new.issued_at < old.due_at - CLOCK_SLACK]
    assert not early, f"refreshed before the token was due (a rotation refreshed twice): {early}"

    # One generation at a time on the one account, across both gateways.
    account = stats["accounts"][signed_in]
    assert account["max_active"] == 1 and stats["max_concurrent"] == 1, stats
    assert account["refreshes"] == stats["refreshes"]
