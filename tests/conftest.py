"""Session fixtures: one simulator, gunicorn gateways in front of it, the agent CLIs.

Every test that talks to a gateway runs once per upstream surface (``surface`` is a
session-scoped parametrised fixture, so pytest groups the tests of each surface): the
gateway is started with ``MINIMAX_SURFACE`` forced to it and the simulator's stream host.
On the ``code`` surface (MiniMax Code) the minted accounts are code accounts: their
credential is the access token (``mmoat_…``), as a personal user passes it.
"""

from __future__ import annotations

import fcntl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.secrets import leaks, secrets_of
from tests.servers import ARTIFACTS, ARTIFACTS_ROOT, ROOT, Process, start_gateway, start_simulator
from tests.simulator.control import SimulatorControl
from tests.state.redis_server import redis_server

#: Every gateway process started in this session, for the log checks.
GATEWAYS: list[Process] = []
#: Every credential minted in this session, for the log checks.
MINTED: list[dict] = []
#: The base URL of every gateway started by `gateway_factory`, for the metrics sweep.
GATEWAY_URLS: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "last: run after every other test")
    config.addinivalue_line("markers", "slow: takes a minute or more (still run by default)")
    config.addinivalue_line("markers", "surfaces(*names): the tests that use the surface run on these only")


@pytest.hookimpl(tryfirst=True)  # before pytest reads the parametrize marks
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module or test marked ``surfaces(...)`` runs on those surfaces only: for tests that
    need a gateway but do not depend on its upstream surface (tests without one untouched)."""
    marker = metafunc.definition.get_closest_marker("surfaces")
    if marker is not None and "surface" in metafunc.fixturenames:
        # As a parametrize mark, which pytest then applies (and lets win over the fixture's params).
        metafunc.definition.add_marker(pytest.mark.parametrize("surface", list(marker.args), indirect=True))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_gateway_logs() -> Iterator[None]:
    """At the end of the session (of each xdist worker), no gateway log shows a secret.

    A teardown rather than a test so that every worker checks the gateways it started:
    with pytest-xdist, a test runs in one worker only. A leak is an error in the run.
    """
    began = time.time()
    yield
    # Gateways some suites start themselves (several hosts, sweeps) are in no list: all
    # of this worker's gateway logs written during the session are read.
    paths = {proc.log_path for proc in GATEWAYS} | {
        path for path in ARTIFACTS.glob("gateway*.log") if path.stat().st_mtime >= began}
    logs = [(path.name, path.read_text(errors="replace")) for path in sorted(paths)]
    found = leaks(logs, secrets_of(MINTED))
    assert not found, "secrets in gateway logs:\n" + "\n".join(found)


#: The upstream surfaces every end-to-end test runs on.
SURFACES = ("matrix", "session", "code")
#: The web app's surfaces (text in, text out): what the chat core emulates tools, JSON
#: mode and multi-turn on, and the only ones with web search and speech.
WEB_SURFACES = ("matrix", "session")


@pytest.fixture(scope="session")
def simulator_urls() -> Iterator[tuple[str, str]]:
    """The simulator's API host and stream host (the session surface's message POSTs)."""
    proc, url = start_simulator()
    yield url, str(proc.stream_url)
    proc.stop()


@pytest.fixture(scope="session")
def simulator_url(simulator_urls: tuple[str, str]) -> str:
    return simulator_urls[0]


@pytest.fixture(scope="session")
def stream_url(simulator_urls: tuple[str, str]) -> str:
    return simulator_urls[1]


@pytest.fixture(scope="session", params=SURFACES)
def surface(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass(frozen=True)
class Upstream:
    """What differs between the surfaces for a test: fault targets, counters, labels."""

    surface: str
    send_fault: str  # the simulator endpoint that accepts a turn
    answer_fault: str  # the one that delivers the answer (poll or stream)
    send_metric: str  # the gateway's upstream-call label of sending a turn
    uploads_stat: str  # the simulator's counter of stored uploads

    def sent_text(self, sim: SimulatorControl) -> str:
        """All the text the last turn sent upstream: the web surfaces' prompt, or the code
        surface's system text and every message's text, in order."""
        if self.surface != "code":
            return str(sim.log()[-1]["prompt"])
        body = next(entry["body"] for entry in reversed(sim.code_log()) if entry["path"].endswith("/messages"))
        blocks = [*body.get("system", []), *(b for m in body["messages"] for b in m["content"])]
        return "\n".join(str(b.get("text") or b.get("content") or b.get("thinking") or "") for b in blocks)

    def fail_mid_answer(self, sim: SimulatorControl, answer: dict[str, object]) -> Callable[[], None]:
        """Script ``answer`` so it fails once streaming; call the result when it should.

        Matrix polls start failing when told; a session stream is cut by the answer script.
        """
        if self.surface in ("session", "code"):
            sim.script([{**answer, "fault": "drop_mid", "fault_seconds": 1.0}])
            return lambda: None
        sim.script([answer])
        return lambda: sim.fault(self.answer_fault, "http_500", count=20)


UPSTREAMS = {
    "matrix": Upstream("matrix", "send_msg", "get_chat_detail", "send_msg", "uploads"),
    "session": Upstream("session", "session_message", "session_message", "message", "session_uploads"),
    "code": Upstream("code", "code_messages", "code_messages", "messages", "uploads"),
}


@pytest.fixture(scope="session")
def upstream(surface: str) -> Upstream:
    return UPSTREAMS[surface]


@pytest.fixture(scope="session")
def surface_env(surface: str, stream_url: str) -> dict[str, str]:
    """The settings that point a gateway (or the doctor) at one surface of the simulator."""
    return {"MINIMAX_SURFACE": surface, "MINIMAX_STREAM_BASE_URL": stream_url}


@pytest.fixture
def sim(simulator_url: str) -> SimulatorControl:
    """The simulator, reset for this test."""
    control = SimulatorControl(simulator_url)
    control.reset()
    return control


@pytest.fixture(scope="session")
def gateway_factory(simulator_url: str, surface_env: dict[str, str]) -> Iterator[Callable[..., str]]:
    """Start (once per distinct settings) a gunicorn gateway on this surface; its base URL."""
    started: dict[tuple, str] = {}

    def get(**env: str) -> str:
        env = {**surface_env, **env}
        key = tuple(sorted(env.items()))
        if key not in started:
            name = "gateway-" + env["MINIMAX_SURFACE"] + "".join(
                f"-{k.lower()}" for k in sorted(env) if k not in surface_env)
            proc, url = start_gateway(simulator_url, name, env)
            GATEWAYS.append(proc)
            GATEWAY_URLS.append(url)
            started[key] = url
        return started[key]

    yield get
    for proc in GATEWAYS:
        proc.stop()


@pytest.fixture
def gateway(gateway_factory: Callable[..., str]) -> str:
    return gateway_factory()


@pytest.fixture
def accounts(sim: SimulatorControl, surface: str) -> Callable[..., list[dict]]:
    """Mint simulator accounts of the surface's kind (remembered for the leak check)."""

    def mint(count: int = 1, **options: object) -> list[dict]:
        made = sim.add_code_accounts(count, **options) if surface == "code" else sim.add_accounts(count, **options)
        MINTED.extend(made)
        return made

    return mint


@pytest.fixture
def web_only(surface: str) -> None:
    """Skip on the code surface: the test is about what only the web surfaces have."""
    if surface not in WEB_SURFACES:
        pytest.skip("web surfaces only (the chat core's emulation, or the web app's own features)")


@pytest.fixture
def credential(accounts: Callable[..., list[dict]]) -> str:
    return accounts(1)[0]["credential"]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server (Debian's, installed when missing) on a free loopback port."""
    with redis_server() as url:
        yield url


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """The Redis server, emptied for this test."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()
    return redis_url


#: The agent CLIs the end-to-end tests drive (Claude Code, gemini-cli) are pinned to exact
#: releases in tests/cli/package.json, and only there. To bump one, edit its version in that
#: file (``npm view @anthropic-ai/claude-code version`` names the current release): the next
#: run sees the file changed and reinstalls into test-artifacts/cli.
CLI_PACKAGE = ROOT / "tests" / "cli"


@pytest.fixture(scope="session")
def cli_bin() -> Path:
    """The pinned agent CLIs (tests/cli/package.json), installed once into test-artifacts."""
    prefix = ARTIFACTS_ROOT / "cli"
    bin_dir = prefix / "node_modules" / ".bin"
    wanted = (CLI_PACKAGE / "package.json").read_text()
    stamp = prefix / "package.json"
    prefix.mkdir(parents=True, exist_ok=True)
    # xdist workers share the one install: the first installs, the others wait for it.
    with (ARTIFACTS_ROOT / "cli.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.exists() and stamp.read_text() == wanted and (bin_dir / "claude").exists()):
            stamp.write_text(wanted)
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix)],
                           check=True, capture_output=True, timeout=600)
    return bin_dir
