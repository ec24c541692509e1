"""A real Redis server for tests: Debian's ``redis-server`` (installed on first use) on a
free loopback port, without persistence, stopped at the end."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from tests.deploy.debian import require
from tests.servers import ARTIFACTS, free_port

REDIS_SERVER = "/usr/bin/redis-server"


@contextmanager
def redis_server() -> Iterator[str]:
    """Yields the server's URL (database 0)."""
    binary = require(REDIS_SERVER, "redis-server")
    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = (ARTIFACTS / f"redis-{port}.log").open("wb")
    proc = subprocess.Popen([str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--daemonize", "no"], stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start; see " + log.name) from None
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
        log.close()
