"""Latency the gateway adds to a NON-stream request, at 1, 16 and 64 concurrent clients.

    python -m tests.bench.bench_nonstream [--levels 1,16,64] [--requests 30] [--warmup 3]
                                          [--workers 1] [--surface matrix|session]

The simulator answers instantly (``first_delay`` 0, 40 characters at 10^7 chars/s: the
chat is finished when it is created), and every client has its own account (one
credential per client, so no request ever queues for an account). Each client keeps one
HTTP connection (a ``requests.Session``), makes ``--warmup`` unmeasured requests, waits
for the others at a barrier, then makes ``--requests`` measured requests back to back.

Measured per request: the client round trip (``time.time()`` around the call). The
upstream's own generation time ``t_finish - t_send`` is ~0.01 ms here, so the gateway-added
latency is reported as the round trip minus that (the two are equal to 0.1 ms). The
round trip still includes the two upstream calls the gateway must make (send + one
poll) and the simulator's handling of them; the breakdown columns split it along the
simulator's timestamps: client send -> upstream ``t_send``, and last upstream poll ->
client receives the reply. A ``GET /ping`` round trip at the same concurrency shows the
floor of gunicorn + Flask + this Python client on this machine.

``--workers N`` runs the gateway with ``GATEWAY_WORKERS=N`` gevent workers (the kernel
spreads the clients' connections over them); the gateway CPU column is their sum.
Results: a Markdown table on stdout and ``bench-results/bench_nonstream.json``
(``bench_nonstream-workers-N.json`` for N > 1; ``-surface-session`` for the session
surface, where a reply is one upstream SSE read and "last poll→client" has no meaning).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

import requests

from tests.bench.common import (
    WEB_SURFACES,
    CpuMeter,
    Stack,
    chat_body,
    environment,
    match_entry,
    ms,
    num,
    result_name,
    sim_log_by_prompt,
    summarize,
    table,
    unique_prompt,
    verdict,
    write_results,
)
from tests.bench.direct import run_direct

NAME = "bench_nonstream"
GOAL_P99_AT_64 = 0.100
#: Issue 12 targets, as ratios within one run against the direct signed client
#: (tests/bench/direct.py) at the same concurrency.
TARGET_THROUGHPUT_RATIO_AT_64 = 0.60
TARGET_ADDED_P99_AT_16 = 0.100
INSTANT_ANSWER = {"first_delay": 0, "length": 40, "cps": 10_000_000}
BARRIER_TIMEOUT_S = 60.0
JOIN_TIMEOUT_S = 300.0


def one_request(session: requests.Session, gw: str, cred: str, label: str) -> dict[str, Any]:
    prompt = unique_prompt(label)
    row: dict[str, Any] = {"prompt": prompt, "error": None}
    t0 = time.time()
    try:
        response = session.post(f"{gw}/v1/chat/completions", json=chat_body(prompt, False),
                                headers={"Authorization": f"Bearer {cred}"}, timeout=(5, 30))
        t1 = time.time()
        row["status"] = response.status_code
        if response.status_code == 200:
            row["text"] = response.json()["choices"][0]["message"]["content"]
        else:
            row["error"] = f"HTTP {response.status_code}: {response.text[:200]}"
    except requests.RequestException as error:
        t1 = time.time()
        row["error"] = f"{type(error).__name__}: {str(error)[:200]}"
    row.update(t0=t0, t1=t1, rtt=t1 - t0)
    return row


def ping(session: requests.Session, gw: str) -> float | None:
    t0 = time.time()
    try:
        session.get(f"{gw}/ping", timeout=(5, 30)).raise_for_status()
    except requests.RequestException:
        return None
    return time.time() - t0


def run_level(stack: Stack, creds: list[str], clients: int, args: argparse.Namespace,
              pids: dict[str, int]) -> dict[str, Any]:
    rows: list[list[dict[str, Any]]] = [[] for _ in range(clients)]
    pings: list[list[float | None]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1, timeout=BARRIER_TIMEOUT_S)
    ping_barrier = threading.Barrier(clients + 1, timeout=BARRIER_TIMEOUT_S)
    failures: list[str] = []

    def client(index: int) -> None:
        try:
            with requests.Session() as session:
                for w in range(args.warmup):
                    one_request(session, stack.gw_url, creds[index], f"warm-c{clients}-{index}-{w}")
                ping_barrier.wait()
                pings[index] = [ping(session, stack.gw_url) for _ in range(args.requests)]
                barrier.wait()
                for r in range(args.requests):
                    rows[index].append(one_request(session, stack.gw_url, creds[index],
                                                   f"c{clients}-{index}-{r}"))
        except Exception as error:  # a broken barrier or a client bug: counted, not hidden
            failures.append(f"client {index}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    ping_barrier.wait()
    t_ping = time.monotonic()
    barrier.wait()
    ping_wall = time.monotonic() - t_ping
    meter = CpuMeter(pids)
    meter.start()
    t_start = time.monotonic()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    wall = time.monotonic() - t_start
    cpu = meter.stop()
    stack.sim.wait_idle(timeout=60)
    log = sim_log_by_prompt(stack.sim)

    flat = [row for per_client in rows for row in per_client]
    for row in flat:
        entry = match_entry(log, row["prompt"])
        if entry is None:
            row["error"] = row["error"] or "no simulator generation for this prompt"
            continue
        upstream = (entry["t_finish"] or entry["t_send"]) - entry["t_send"]
        row.update(
            upstream=upstream, added=row["rtt"] - upstream,
            to_send=entry["t_send"] - row["t0"],
            after_last_poll=(row["t1"] - entry["poll_times"][-1]) if entry["poll_times"] else None,
            polls=entry["polls"],
        )
        if row["error"] is None and row.get("text") != entry["answer"]:
            row["error"] = "reply text differs from the simulator's answer"
        row.pop("text", None)
    errors = [row for row in flat if row["error"]]
    return {
        "clients": clients, "requests": len(flat), "errors": len(errors) + len(failures),
        "client_failures": failures, "error_samples": [row["error"] for row in errors[:5]],
        "wall_s": wall, "throughput_rps": len(flat) / wall if wall > 0 else None,
        "rtt": summarize(row["rtt"] for row in flat if not row["error"]),
        "added": summarize(row.get("added") for row in flat if not row["error"]),
        "upstream": summarize(row.get("upstream") for row in flat if not row["error"]),
        "to_send": summarize(row.get("to_send") for row in flat if not row["error"]),
        "after_last_poll": summarize(row.get("after_last_poll") for row in flat if not row["error"]),
        "polls": summarize(row.get("polls") for row in flat if not row["error"]),
        "ping": summarize(p for per_client in pings for p in per_client),
        "ping_wall_s": ping_wall,
        "cpu_percent": cpu,
        "rows": flat,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_nonstream")
    parser.add_argument("--levels", default="1,16,64", help="comma-separated client counts")
    parser.add_argument("--requests", type=int, default=30, help="measured requests per client")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured requests per client")
    parser.add_argument("--workers", type=int, default=1,
                        help="gunicorn gevent workers of the gateway (GATEWAY_WORKERS)")
    parser.add_argument("--surface", choices=WEB_SURFACES, default="matrix",
                        help="upstream surface of the gateway (MINIMAX_SURFACE)")
    parser.add_argument("--no-direct", action="store_true",
                        help="skip the direct signed client's run at each level (matrix only)")
    args = parser.parse_args(argv)
    levels = [int(part) for part in args.levels.split(",") if part.strip()]
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    env = {"GATEWAY_WORKERS": str(args.workers)}
    with Stack("nonstream", env, surface=args.surface) as stack:
        stack.sim.set_default(INSTANT_ANSWER)
        creds = [a["credential"] for a in stack.sim.add_accounts(max(levels))]
        workers = stack.worker_pids(args.workers)
        if len(workers) != args.workers:
            raise RuntimeError(f"expected {args.workers} gunicorn workers, found {workers}")
        pids = {"gateway_worker": workers, "simulator": stack.simulator_pid,
                "bench_client": os.getpid()}
        for clients in levels:
            results.append(run_level(stack, creds, clients, args, pids))
            if args.surface == "matrix" and not args.no_direct:
                results[-1]["direct"] = direct_level(stack, creds, clients, args)
    wall = time.monotonic() - started
    report = render(results, args, wall)
    print(report)
    name = result_name(NAME, workers=None if args.workers == 1 else args.workers,
                       surface=None if args.surface == "matrix" else args.surface)
    path = write_results(name, {
        "benchmark": NAME, "environment": environment(), "args": vars(args), "wall_s": wall,
        "gateway_env": env, "worker_pids": workers,
        "goal": {"added_p99_at_64_s": GOAL_P99_AT_64}, "levels": results, "markdown": report,
    })
    print(f"\nJSON: {path}")
    return 0


def direct_level(stack: Stack, creds: list[str], clients: int, args: argparse.Namespace) -> dict[str, Any]:
    """The direct signed client at this level: same simulator, accounts and concurrency."""
    assert stack.sim is not None
    run = run_direct(stack.sim_url, creds, clients, args.requests, args.warmup)
    stack.sim.wait_idle(timeout=60)
    ok = [row["rtt"] for row in run.pop("rows") if not row["error"]]
    return {**run, "rtt": summarize(ok)}


def targets(results: list[dict[str, Any]]) -> list[list[Any]]:
    """Issue 12's non-stream targets: (target, measured, result) rows."""
    rows = []
    for level in results:
        direct = level.get("direct")
        if direct is None:
            continue
        ratio = (level["throughput_rps"] / direct["throughput_rps"]
                 if level["throughput_rps"] and direct["throughput_rps"] else None)
        added = (level["rtt"]["p99"] - direct["rtt"]["p99"]
                 if level["rtt"]["p99"] is not None and direct["rtt"]["p99"] is not None else None)
        clients = level["clients"]
        gateway_cpu = level["cpu_percent"].get("gateway_worker")
        cpu_ms = (gateway_cpu / 100 * level["wall_s"] / level["requests"] * 1000
                  if gateway_cpu is not None and level["requests"] else None)
        rows.append([
            clients, f"{num(level['throughput_rps'], 0)} / {num(direct['throughput_rps'], 0)}",
            num(ratio), f"{ms(level['rtt']['p99'])} / {ms(direct['rtt']['p99'])}", ms(added),
            direct["errors"], num(cpu_ms),
            f"throughput ≥ {TARGET_THROUGHPUT_RATIO_AT_64:.0%} of direct" if clients == 64 else
            f"added p99 ≤ {TARGET_ADDED_P99_AT_16 * 1000:.0f} ms" if clients == 16 else "–",
            ("PASS" if ratio is not None and ratio >= TARGET_THROUGHPUT_RATIO_AT_64 else "FAIL")
            if clients == 64 else verdict(added, TARGET_ADDED_P99_AT_16) if clients == 16 else "–",
        ])
    return rows


def render(results: list[dict[str, Any]], args: argparse.Namespace, wall: float) -> str:
    rows = []
    for level in results:
        added, cpu = level["added"], level["cpu_percent"]
        goal = verdict(added["p99"], GOAL_P99_AT_64) if level["clients"] == 64 else "–"
        rows.append([
            level["clients"], level["requests"], level["errors"],
            ms(added["p50"]), ms(added["p90"]), ms(added["p99"]), ms(added["max"]),
            num(level["throughput_rps"], 0),
            ms(level["to_send"]["p50"]), ms(level["after_last_poll"]["p50"]),
            num(level["polls"]["mean"], 2),
            f"{ms(level['ping']['p50'])} / {ms(level['ping']['p99'])}",
            f"{num(cpu.get('gateway_worker'), 0)} / {num(cpu.get('simulator'), 0)} / "
            f"{num(cpu.get('bench_client'), 0)} / {num(cpu.get('other_processes'), 0)}",
            "p99 ≤ 100 ms" if level["clients"] == 64 else "", goal,
        ])
    lines = [
        f"## bench_nonstream — {args.surface} surface, "
        f"{args.workers} gateway worker{'s' if args.workers > 1 else ''}, "
        f"instant upstream, {args.requests} measured requests per client "
        f"after {args.warmup} warm-up, one account per client",
        "",
        table(["clients", "requests", "errors", "added p50 (ms)", "p90", "p99", "max",
               "req/s", "client→upstream send p50 (ms)", "last poll→client p50 (ms)",
               "polls per request", "/ping RTT p50 / p99 (ms)",
               "CPU % gateway / simulator / client / others", "goal", "result"], rows),
        "",
        "added = client round trip − (simulator t_finish − t_send); the upstream generation "
        "time is ≤ 0.01 ms here, so this is the round trip itself. It includes the "
        "simulator's handling of the gateway's two upstream calls (send + poll). "
        f"Wall time {wall:.1f} s.",
    ]
    target_rows = targets(results)
    if target_rows:
        lines += ["", "### Issue 12 targets, against the direct signed client in the same run", "",
                  table(["clients", "req/s gateway / direct", "ratio", "RTT p99 gateway / direct (ms)",
                         "gateway-added p99 (ms)", "direct errors", "gateway CPU ms/request",
                         "target", "result"], target_rows),
                  "", "gateway-added p99 = gateway round-trip p99 − the direct client's p99 at the "
                  "same concurrency; the direct client is gateway.upstream's UpstreamClient + "
                  "MatrixDriver in threads of this process (tests/bench/direct.py)."]
    for level in results:
        for sample in level["error_samples"] + level["client_failures"]:
            lines.append(f"- {level['clients']} clients: {sample}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
