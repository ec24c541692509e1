"""The shipped systemd unit, env example, Dockerfile, .dockerignore and compose.yaml:
checked by the tools that will read them where that is possible here, and kept in step
with the README and the settings.

Docker itself is not available on this machine, so the image is approximated: exactly
the files the Dockerfile copies are put in an empty directory, the image's CMD is run
there (gunicorn, on a free loopback port, in front of the simulator) and the image's
HEALTHCHECK command must pass against it. systemd units are checked offline with
``systemd-analyze verify`` and ``security`` (from the Debian package ``systemd``,
installed on first use).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.accounts.keys import parse_keys
from gateway.accounts.roster import parse_roster
from gateway.config import Settings, env_table
from tests.deploy.debian import require
from tests.servers import ARTIFACTS, ROOT, free_port

pytestmark = pytest.mark.timeout(900)

UNIT = ROOT / "deploy" / "systemd" / "minimax-free-api.service"
ENV_EXAMPLE = ROOT / "deploy" / "systemd" / "minimax-free-api.env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "compose.yaml"
README = ROOT / "README.md"
SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"
#: systemd's exposure score (0-100 here, 10x the printed 0.0-10.0) the unit must stay under.
MAX_EXPOSURE = 40
HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "Restart": "on-failure", "KillSignal": "SIGTERM", "EnvironmentFile": "/etc/minimax-free-api.env",
    "User": "minimax", "Group": "minimax",
}
#: Seconds the approximated container may take to start and to stop.
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0


#: Where the README's commands, the unit and the image keep the virtual environment: in
#: ``.venv`` beside the code.
VENV_GUNICORN = ".venv/bin/gunicorn"


def readme_command() -> list[str]:
    """The gunicorn command of the README's "Set up" section (``.venv/bin/gunicorn …``)."""
    found = re.search(rf"({re.escape(VENV_GUNICORN)} [^`\n]+)", README.read_text())
    assert found, "the README no longer shows the gunicorn command"
    return shlex.split(found[1])


def unit_settings() -> dict[str, str]:
    pairs = [line.split("=", 1) for line in UNIT.read_text().splitlines()
             if "=" in line and not line.lstrip().startswith(("#", ";"))]
    return {key.strip(): value.strip() for key, value in pairs}


def env_file(path: Path) -> dict[str, str]:
    """The active VAR=value lines, read the way systemd and compose read them."""
    return dict(line.split("=", 1) for line in path.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#"))


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def dockerfile(instruction: str) -> list[str]:
    return [args for name, args in dockerfile_instructions() if name == instruction]


# --- systemd -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def systemd_analyze() -> Path:
    return require(SYSTEMD_ANALYZE, "systemd")


@pytest.fixture
def checkable_unit(tmp_path: Path) -> Path:
    # verify insists that ExecStart's program exists: point it at this interpreter.
    text = UNIT.read_text().replace(f"/opt/minimax-free-api/{VENV_GUNICORN}", sys.executable)
    path = tmp_path / UNIT.name
    path.write_text(text)
    return path


def test_unit_passes_systemd_verify(systemd_analyze: Path, checkable_unit: Path) -> None:
    done = subprocess.run([str(systemd_analyze), "verify", str(checkable_unit)],
                          capture_output=True, text=True, timeout=60)
    # verify exits 0 even for unknown keys or bad values; its complaints go to stderr.
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def test_unit_is_hardened(systemd_analyze: Path, checkable_unit: Path) -> None:
    settings = unit_settings()
    for key, value in HARDENING.items():
        assert settings.get(key) == value, f"{key}={settings.get(key)}"
    assert int(settings["TimeoutStopSec"]) > Settings().graceful_timeout
    done = subprocess.run([str(systemd_analyze), "security", "--offline=yes", f"--threshold={MAX_EXPOSURE}",
                           str(checkable_unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr


def test_unit_runs_the_readme_command() -> None:
    exec_start = shlex.split(unit_settings()["ExecStart"])
    assert exec_start[0] == f"/opt/minimax-free-api/{VENV_GUNICORN}"
    assert exec_start[1:] == readme_command()[1:]
    assert unit_settings()["WorkingDirectory"] == "/opt/minimax-free-api"


def test_env_example_lists_every_setting() -> None:
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    known = {name for name, _, _ in env_table()}
    assert known - listed == set(), "settings missing from the env example"
    assert listed - known == set(), "the env example names settings that do not exist"


def test_env_example_is_valid_as_shipped() -> None:
    active = env_file(ENV_EXAMPLE)
    # Behind the shipped nginx: loopback only, and nginx's forwarded headers believed.
    assert active["GATEWAY_BIND"] == "127.0.0.1:8000"
    assert active["GATEWAY_TRUSTED_PROXIES"] == "127.0.0.1"
    shipped = Settings.from_env(active)
    # The commented lines show the real defaults: uncommenting them changes nothing.
    defaults = dict(re.findall(r"^#\s*([A-Z][A-Z0-9_]+)=(.*)$", ENV_EXAMPLE.read_text(), re.M))
    assert Settings.from_env({**defaults, **active}) == shipped


# --- Docker --------------------------------------------------------------------------


def test_dockerfile_shape() -> None:
    assert dockerfile("FROM") == ["python:3.11-slim"]
    users = dockerfile("USER")
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    assert "python3 -m venv .venv && .venv/bin/pip install --no-cache-dir -r requirements.txt" in dockerfile("RUN")
    assert dockerfile("WORKDIR") == ["/app"]
    assert dockerfile("EXPOSE") == ["8000"]
    assert json.loads(dockerfile("CMD")[-1]) == [f"/app/{VENV_GUNICORN}", *readme_command()[1:]]
    healthcheck = dockerfile("HEALTHCHECK")[-1]
    assert "urllib.request" in healthcheck and "/healthz" in healthcheck and "curl" not in healthcheck
    # The lasting state is a volume the non-root user owns.
    assert dockerfile("VOLUME") == ["/data"] and "GATEWAY_DATA_DIR=/data" in dockerfile("ENV")
    assert any("chown minimax:minimax /data" in run for run in dockerfile("RUN"))


def test_unit_keeps_the_state_in_its_state_directory() -> None:
    settings = unit_settings()
    assert settings["StateDirectory"] == "minimax-free-api" and settings["StateDirectoryMode"] == "0700"
    assert "GATEWAY_DATA_DIR=/var/lib/minimax-free-api" in settings["Environment"]


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    for needed in ("tests", ".git", "test-artifacts", ".pytest_cache", "**/__pycache__"):
        assert needed in patterns, f"{needed} is not ignored"


def test_compose_service() -> None:
    text = COMPOSE.read_text()
    assert re.search(r"^services:\n  gateway:\n", text, re.M)
    for needed in (r"^    build: \.$", r"^    env_file: ", r"^    ports:\n(      #.*\n)*      - \"127\.0\.0\.1:8000:8000\"",
                   r"^    restart: unless-stopped$", r"^    healthcheck:\n      test: \[.*/healthz",
                   r"^    stop_grace_period: (\d+)s$", r"Redis"):
        assert re.search(needed, text, re.M), needed
    grace = int(re.search(r"stop_grace_period: (\d+)s", text)[1])
    assert grace > Settings().graceful_timeout


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """Exactly what the Dockerfile copies (minus what .dockerignore drops), nothing else."""
    app = tmp_path / "app"
    app.mkdir()
    for args in dockerfile("COPY"):
        *sources, _destination = args.split()
        for source in sources:
            origin = ROOT / source.rstrip("/")
            target = app / source.rstrip("/")
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(origin, target)
    return app


@pytest.fixture
def container(image_dir: Path, simulator_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The image's CMD, run in the image's files, on a free port; yields (url, env)."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # The image's /data volume: a folder of this test's own.
    env.update({"GATEWAY_BIND": f"127.0.0.1:{port}", "MINIMAX_BASE_URL": simulator_url,
                "PYTHONDONTWRITEBYTECODE": "1", "GATEWAY_DATA_DIR": str(image_dir.parent / "data")})
    command = json.loads(dockerfile("CMD")[-1])
    command[:1] = [sys.executable, "-m", "gunicorn"]  # the image's .venv/bin/gunicorn: the same gunicorn here
    log = (ARTIFACTS / "image-cmd.log").open("wb")
    proc = subprocess.Popen(command, cwd=image_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(proc, url)
        yield url, env
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT_SECONDS)
        log.close()


def _wait_up(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        assert proc.poll() is None, (ARTIFACTS / "image-cmd.log").read_text(errors="replace")
        try:
            requests.get(url + "/ping", timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError(f"the image's CMD did not come up at {url}")


def test_image_files_run_and_pass_the_healthcheck(container: tuple[str, dict[str, str]], image_dir: Path) -> None:
    url, env = container
    page = requests.get(url + "/", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200 and "Connect a client" in page.text, "templates/ missing from the image?"
    healthcheck = dockerfile("HEALTHCHECK")[-1]
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip())
    command[0] = sys.executable
    done = subprocess.run(command, cwd=image_dir, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_healthcheck_fails_when_nothing_listens(image_dir: Path) -> None:
    # The check must be able to fail, or Docker would call a dead gateway healthy.
    healthcheck = dockerfile("HEALTHCHECK")[-1]
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip())
    command[0] = sys.executable
    env = {**os.environ, "GATEWAY_BIND": f"127.0.0.1:{free_port()}"}
    done = subprocess.run(command, cwd=image_dir, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0


# --- Example accounts and keys files ---------------------------------------------------

EXAMPLES = ROOT / "deploy" / "examples"


def example_entries(name: str) -> tuple[str, list[str]]:
    """The example file with its sample lines (``# `` then an entry) uncommented."""
    lines = (EXAMPLES / name).read_text().splitlines()
    samples = [line[2:] for line in lines if re.match(r"^# (sk-|sha256:|\d+\+eyJ|eyJ)", line)]
    assert samples, f"{name} shows no sample entry"
    return name, samples


def test_example_files_parse_once_uncommented() -> None:
    keys = parse_keys([example_entries("api-keys.txt")])
    assert [(key.name, key.rpm, key.concurrency) for key in keys.keys] == [("laptop", 60, 2), ("ci", 30, None)]
    assert len(parse_roster([example_entries("accounts.txt")])) == 2
    # As shipped, every line is a comment: the files configure nothing until edited.
    assert not parse_keys([("api-keys.txt", (EXAMPLES / "api-keys.txt").read_text().splitlines())])
