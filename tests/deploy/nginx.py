"""A real nginx running the shipped site config, for the deployment tests.

Role: render ``deploy/nginx/minimax-free-api.conf`` for a test (only its listen address
and upstream server change; every other directive is the shipped one), wrap it in a
minimal main config, and run nginx in the foreground on a free loopback port.

The main config reproduces what could hide a bad site config: Debian's ``gzip on`` for
the whole http block (the site must turn it off), and ``proxy_ignore_headers
X-Accel-Buffering`` so the gateway's own no-buffering header cannot stand in for the
site's ``proxy_buffering off``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.servers import ARTIFACTS, ROOT, free_port

SITE = ROOT / "deploy" / "nginx" / "minimax-free-api.conf"
#: Seconds nginx may take to accept connections.
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0

MAIN_CONFIG = """\
daemon off;
worker_processes 1;
{user}
pid {prefix}/nginx.pid;
error_log {error_log} info;
events {{ worker_connections 256; }}
http {{
    # As in Debian's nginx.conf: compression on everywhere; the site must switch it off.
    sendfile on;
    tcp_nopush on;
    gzip on;
    gzip_min_length 1;
    gzip_types text/event-stream application/json text/plain;
    # The gateway sends X-Accel-Buffering: no; ignored here so that only the site's own
    # directives decide whether streams are buffered.
    proxy_ignore_headers X-Accel-Buffering;
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/site.conf;
}}
"""


def render_site(upstream: str, listen_port: int, replace: dict[str, str] | None = None) -> str:
    """The shipped site with the test's addresses; ``replace`` swaps more directives
    (for the negative control). Each pattern must occur exactly once, so a changed
    shipped file fails loudly instead of being tested half-rendered."""
    swaps = {
        "server 127.0.0.1:8000;": f"server {upstream.removeprefix('http://')};",
        "listen 80;": f"listen 127.0.0.1:{listen_port};",
        "listen [::]:80;": "",
        **(replace or {}),
    }
    text = SITE.read_text()
    for old, new in swaps.items():
        count = text.count(old)
        if count != 1:
            raise AssertionError(f"{SITE.name}: expected {old!r} once, found it {count} times")
        text = text.replace(old, new)
    return text


class Nginx:
    """nginx in the foreground with its own prefix directory and error log."""

    def __init__(self, binary: Path, prefix: Path, site: str, port: int, name: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.error_log = ARTIFACTS / f"{name}-error.log"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.error_log.write_text("")  # nginx appends; keep only this run's lines
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "site.conf").write_text(site)
        config = prefix / "nginx.conf"
        # Workers of a root master default to "nobody", who cannot enter a private temp dir.
        user = "user root;" if os.geteuid() == 0 else ""
        config.write_text(MAIN_CONFIG.format(prefix=prefix, error_log=self.error_log, user=user))
        argv = [str(binary), "-p", str(prefix), "-c", str(config), "-e", str(self.error_log)]
        check = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise AssertionError(f"nginx -t refused the config:\n{check.stderr}")
        self._out = (ARTIFACTS / f"{name}.log").open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_listening(port)

    def _wait_listening(self, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited early:\n{self.error_log.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen on {port}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT_SECONDS)
        self._out.close()


def start(binary: Path, prefix: Path, upstream: str, name: str,
          replace: dict[str, str] | None = None) -> Nginx:
    port = free_port()
    return Nginx(binary, prefix, render_site(upstream, port, replace), port, name)
