"""Real processes for end-to-end tests: the upstream simulator and gunicorn.

Each runs as its own process on a free loopback port, exactly as a user would start it,
and is stopped at the end of the session. Gateway logs go to files under
``test-artifacts/`` so the suite can search them for leaked credentials.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
#: Shared by every pytest-xdist worker (the installed agent CLIs live here).
ARTIFACTS_ROOT = ROOT / "test-artifacts"
#: This process's logs and screenshots: one folder per xdist worker, so two workers that
#: start a gateway of the same name never write the same log file.
ARTIFACTS = ARTIFACTS_ROOT / os.environ["PYTEST_XDIST_WORKER"] if "PYTEST_XDIST_WORKER" in os.environ else ARTIFACTS_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A child process with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"{name}.log"
        self.stream_url: str | None = None  # the simulator's stream host, when it is one
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **env}, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.log_path.name} exited early:\n{self.log()}")
            try:
                requests.get(url, timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"{url} did not come up:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def start_simulator(name: str = "simulator", *extra_args: str) -> tuple[Process, str]:
    """Start the simulator; returns (process, API-host URL).

    The stream host (session message POST, /events) listens on a second port: its URL
    is `process.stream_url` (also `simulator_stream_url(url)` and
    `SimulatorControl(url).stream_url`). `extra_args` go to `python -m tests.simulator`
    (e.g. "--yy-variant", "legacy").
    """
    port, stream_port = free_port(), free_port()
    argv = [sys.executable, "-m", "tests.simulator", "--port", str(port),
            "--stream-port", str(stream_port), *extra_args]
    proc = Process(name, argv, {})
    url = f"http://127.0.0.1:{port}"
    proc.wait_http(url + "/_sim/stats")
    proc.stream_url = f"http://127.0.0.1:{stream_port}"
    return proc, url


def simulator_stream_url(url: str) -> str:
    """The stream-host URL of the simulator whose API host is `url`."""
    return requests.get(f"{url}/_sim/info", timeout=10).json()["stream_url"]


def start_gateway(upstream: str, name: str, env: dict[str, str] | None = None) -> tuple[Process, str]:
    port = free_port()
    data = ARTIFACTS / "data"
    data.mkdir(parents=True, exist_ok=True)
    settings = {
        "GATEWAY_BIND": f"127.0.0.1:{port}",
        # Each gateway its own data folder (state, control socket) unless a test shares one.
        "GATEWAY_DATA_DIR": tempfile.mkdtemp(prefix=f"{name[:40]}-", dir=data),
        "MINIMAX_BASE_URL": upstream,
        # The simulator plays the MiniMax Code hosts too (OAuth, LLM, quota).
        "MINIMAX_ACCOUNT_BASE_URL": upstream,
        "MINIMAX_CODE_BASE_URL": upstream,
        "MINIMAX_QUOTA_BASE_URL": upstream,
        "GATEWAY_LOG_LEVEL": "debug",
        "GATEWAY_GRACEFUL_TIMEOUT": "3",
        # Suites check that each turn's chat is deleted; tests/test_multiturn.py turns
        # keeping (the production default) back on.
        "GATEWAY_CONVERSATION_TTL": "0",
        **(env or {}),
    }
    argv = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"]
    proc = Process(name, argv, settings)
    url = f"http://127.0.0.1:{port}"
    proc.wait_http(url + "/ping")
    return proc, url
