"""Where a gateway worker's CPU goes while it serves non-stream requests and matrix polls.

    python -m tests.bench.profile_gateway [--seconds 15] [--clients 16] [--streams 40]
                                          [--top 25]

Starts a fresh simulator and, in a child process, the gateway app exactly as a gunicorn
gevent worker runs it (``gevent.monkey.patch_all()``, then ``wsgi:app`` served by
``gevent.pywsgi``) under ``cProfile``. The parent then drives ``--clients`` threads that
send non-stream chat completions back to back (instant answers: send, one poll, the
background delete) and, at the same time, ``--streams`` streamed requests with answers
of a few seconds each (polls at the full cadence). After ``--seconds`` the child is
stopped, dumps its profile to ``bench-results/profile_gateway.prof`` and the parent
prints the top entries by cumulative and by own time, plus CPU microseconds per upstream
call (worker CPU / simulator calls). Nothing is asserted.

cProfile sees every greenlet of the one thread: own times (tottime) are exact, cumulative
times of functions that switch greenlets (the hub, ``time.sleep``) include other work.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from tests.bench.common import chat_body, cpu_seconds, raise_fd_limit, unique_prompt
from tests.servers import ROOT, free_port, start_simulator
from tests.simulator.control import SimulatorControl

RESULTS = ROOT / "bench-results"
PROFILE_PATH = RESULTS / "profile_gateway.prof"
INSTANT_ANSWER = {"first_delay": 0, "length": 40, "cps": 10_000_000}
STREAM_ANSWER = {"first_delay": 0.3, "length": 200, "cps": 100}
STOP_TIMEOUT_S = 20.0
#: Answers queued per streamed account: more than one stream can use in the run.
STREAM_ANSWERS_QUEUED = 100


def serve(port: int, out: str) -> None:
    """The child (already monkey-patched): the app under gevent's WSGI server, profiled
    until SIGTERM."""
    import gevent
    from gevent.pywsgi import WSGIServer

    from wsgi import app

    profiler = cProfile.Profile()
    server = WSGIServer(("127.0.0.1", port), app, log=None, error_log=None)
    gevent.signal_handler(signal.SIGTERM, server.stop)
    profiler.enable()
    try:
        server.serve_forever()
    finally:
        profiler.disable()
        profiler.dump_stats(out)


def start_child(sim_url: str, port: int) -> subprocess.Popen[bytes]:
    state = tempfile.mkdtemp(prefix="profile-state-")
    env = {**os.environ, "MINIMAX_BASE_URL": sim_url, "GATEWAY_LOG_LEVEL": "warning",
           "MINIMAX_SURFACE": "matrix", "GATEWAY_CONVERSATION_TTL": "0",
           "GATEWAY_STATE": f"sqlite://{state}/state.db",
           "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="profile-metrics-")}
    # gevent patches before anything imports requests or ssl, as in a gunicorn worker.
    code = ("from gevent import monkey; monkey.patch_all(); "
            f"from tests.bench.profile_gateway import serve; serve({port}, {str(PROFILE_PATH)!r})")
    argv = [sys.executable, "-c", code]
    return subprocess.Popen(argv, cwd=ROOT, env=env)


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/ping", timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("the profiled gateway did not come up")


def drive(gw: str, creds: list[str], stream: bool, until: float, counts: dict[str, int]) -> None:
    """One client: requests back to back until ``until`` (streams read to the end)."""
    with requests.Session() as session:
        for cred in creds:
            while time.monotonic() < until:
                body = chat_body(unique_prompt("profile"), stream)
                try:
                    response = session.post(f"{gw}/v1/chat/completions", json=body, stream=stream,
                                            headers={"Authorization": f"Bearer {cred}"}, timeout=(5, 60))
                    for _ in response.iter_content(chunk_size=None):
                        pass
                    counts["ok" if response.status_code == 200 else "failed"] += 1
                except requests.RequestException:
                    counts["failed"] += 1


def top(path: Path, sort: str, limit: int) -> str:
    buffer = io.StringIO()
    stats = pstats.Stats(str(path), stream=buffer)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    return buffer.getvalue()


def run(args: argparse.Namespace) -> int:
    raise_fd_limit()
    RESULTS.mkdir(exist_ok=True)
    sim_proc, sim_url = start_simulator("bench-profile-simulator")
    child = None
    try:
        sim = SimulatorControl(sim_url)
        sim.set_default(INSTANT_ANSWER)
        nonstream = [a["credential"] for a in sim.add_accounts(args.clients)] if args.clients else []
        stream_accounts = sim.add_accounts(args.streams) if args.streams else []
        port = free_port()
        child = start_child(sim_url, port)
        gw = f"http://127.0.0.1:{port}"
        wait_up(gw)
        counts = {"ok": 0, "failed": 0}
        stream_counts = {"ok": 0, "failed": 0}
        until = time.monotonic() + args.seconds
        cpu0 = cpu_seconds(child.pid) or 0.0
        calls0 = _calls(sim)
        threads = [threading.Thread(target=drive, args=(gw, [c], False, until, counts), daemon=True)
                   for c in nonstream]
        for account in stream_accounts:  # a few seconds of text per streamed answer
            sim.script([STREAM_ANSWER] * STREAM_ANSWERS_QUEUED, account=account["real_user_id"])
        threads += [threading.Thread(target=drive_streams, args=(gw, a["credential"], until, stream_counts),
                                     daemon=True) for a in stream_accounts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(args.seconds + 60)
        cpu = (cpu_seconds(child.pid) or 0.0) - cpu0
        calls = _calls(sim) - calls0
    finally:
        if child is not None:
            child.send_signal(signal.SIGTERM)
            child.wait(STOP_TIMEOUT_S)
        sim_proc.stop()
    print(f"non-stream requests: {counts}, streams: {stream_counts}, worker CPU {cpu:.2f} s, "
          f"upstream calls {calls} → {1e6 * cpu / max(calls, 1):.0f} µs of worker CPU per call, "
          f"{1e3 * cpu / max(counts['ok'], 1):.2f} ms per non-stream request (streams included)")
    print(top(PROFILE_PATH, "cumulative", args.top))
    print(top(PROFILE_PATH, "tottime", args.top))
    print(f"profile: {PROFILE_PATH} (python -m pstats)")
    return 0


def drive_streams(gw: str, cred: str, until: float, counts: dict[str, int]) -> None:
    drive(gw, [cred], True, until, counts)


def _calls(sim: SimulatorControl) -> int:
    return int(sum(sim.stats()["requests"].values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.profile_gateway")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=16, help="non-stream clients")
    parser.add_argument("--streams", type=int, default=40, help="concurrent streamed clients")
    parser.add_argument("--top", type=int, default=25)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
