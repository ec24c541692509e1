"""Latency an account lease adds, per shared-state backend, under gevent (issue 11).

    python -m tests.bench.bench_lease [--concurrency 1,64] [--cycles N] [--warmup 5]
                                      [--backends memory,sqlite,redis] [--lease-ttl 600]
                                      [--no-state-only] [--json]

Role: a script, not a test (nothing is asserted). It measures one lease round trip as a
generation makes it, ``AccountPool.acquire([credential]) + Lease.release()``
(:mod:`gateway.chat.pool`), with three :class:`~gateway.state.SharedState` backends:

- ``memory``: :class:`MemoryState` below, a dict under one ``threading.Lock`` with the
  same rules (FIFO tickets, least recently used first, cooldowns): the in-process pool
  of before the shared state, the baseline;
- ``sqlite``: :class:`~gateway.state.sqlite_state.SQLiteState` on a file in a fresh
  temporary folder;
- ``redis``: :class:`~gateway.state.redis_state.RedisState` on a real ``redis-server``
  on loopback (``tests.state.redis_server``, installed with apt when missing).

The process is monkey-patched by gevent first thing, as gunicorn's gevent worker is, so
locks, sleeps, the lease renewer thread and redis-py's sockets are cooperative. At each
concurrency level a fresh pool and one account per greenlet (nobody ever waits for an
account: what is measured is the state's overhead); each greenlet runs ``--warmup``
unmeasured cycles, then, all released together, ``--cycles`` measured ones (default
2000 in all, at least 50 each: 1×2000 and 64×50), yielding to the hub between two
(``gevent.sleep(0)``, outside the timed part) as a request does between its I/O. The
pool is the real one, metrics gauge included (its recount of every known account runs in
a background thread at most every ``GAUGE_SECONDS``, off the acquire path).

Its renewer renews the held leases every TTL / ``RENEWALS_PER_TTL`` s. The default
``--lease-ttl 600`` keeps it out of the run (the TTL is only an argument to the state, it
changes no cost); ``--lease-ttl 8`` (the gateway's ``LEASE_TTL``) lets it run. An acquire
that times out (``AccountsBusy``) is counted as an error, not timed; what the pool logs
(lost leases, failed releases) is counted by message instead of printed.

A second table times the backend's two calls alone (``try_lease`` + ``release``, no
pool), which separates the state's own cost from the pool's bookkeeping around it.

Results: a Markdown table on stdout (``--json``: the summary as JSON instead) and the
full data, every sample included, in ``bench-results/bench_lease.json``
(``bench_lease-ttl-<TTL>.json`` for another ``--lease-ttl``).
"""
from __future__ import annotations

from gevent import monkey

# Must run before anything imports socket, ssl or threading (redis-py pulls in both).
monkey.patch_all()

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Iterator, Mapping, Sequence  # noqa: E402
from contextlib import AbstractContextManager, ExitStack, contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from gateway.chat.pool import RENEWALS_PER_TTL, AccountPool  # noqa: E402
from gateway.errors import AccountsBusy  # noqa: E402
from gateway.state import LEASE_TTL, TICKET_TTL, AccountView, Attempt, SharedState  # noqa: E402
from gateway.upstream.credentials import Credential  # noqa: E402


def _untyped(module: str) -> Any:
    """A test helper module, imported at run time only: mypy follows static imports, and
    tests/servers.py and the simulator under tests.bench.common are not strict-clean, so a
    static import would make ``mypy tests/bench/bench_lease.py`` report their errors."""
    return importlib.import_module(module)


_common = _untyped("tests.bench.common")
percentile: Callable[[Sequence[float], float], float | None] = _common.percentile
table: Callable[[Sequence[str], Sequence[Sequence[Any]]], str] = _common.table
environment: Callable[[], dict[str, Any]] = _common.environment
write_results: Callable[[str, dict[str, Any]], Path] = _common.write_results
CpuMeter: Callable[[dict[str, int]], Any] = _common.CpuMeter
redis_server: Callable[[], AbstractContextManager[str]] = _untyped("tests.state.redis_server").redis_server

NAME = "bench_lease"
BACKENDS = ("memory", "sqlite", "redis")
#: An acquire never waits here (one account per greenlet); this only bounds a broken run.
ACQUIRE_TIMEOUT_S = 5.0
#: Measured cycles per greenlet by default: this many in all, but at least MIN_CYCLES each.
DEFAULT_TOTAL_CYCLES = 2000
MIN_CYCLES = 50
#: Long enough that the pool's renewer (every TTL / RENEWALS_PER_TTL) never runs in a run.
DEFAULT_LEASE_TTL = 600.0
JOIN_TIMEOUT_S = 300.0


# --- the baseline ---------------------------------------------------------------------------

class MemoryState:
    """:class:`~gateway.state.SharedState` in one process's memory: dicts under one lock.

    The same rules as the real backends (a ticket queues on every account it asks for and
    is granted only at the head of a queue; least recently used first; cooldowns; leases
    and tickets expire), without I/O or serialization: what the in-process pool of before
    cost. ``calls`` counts the calls by method, to show what one pool cycle asks of a state.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[str, float]] = {}  # account → (holder, until)
        self._cooldowns: dict[str, float] = {}  # account → until
        self._used: dict[str, float] = {}  # account → last lease
        self._queues: dict[str, dict[str, int]] = {}  # account → ticket → seq (in seq order)
        self._tickets: dict[str, tuple[int, float]] = {}  # ticket → (seq, expires)
        self._seq = itertools.count(1)
        self._values: dict[str, tuple[str, float | None]] = {}
        self._hits: dict[str, int] = {}
        self._records: dict[str, dict[str, str]] = {}
        self.calls: Counter[str] = Counter()

    def try_lease(self, ticket: str, accounts: Sequence[str], holder: str, ttl: float) -> Attempt:
        now = time.monotonic()
        with self._lock:
            self.calls["try_lease"] += 1
            known = self._tickets.get(ticket)
            seq = known[0] if known is not None else next(self._seq)
            self._tickets[ticket] = (seq, now + TICKET_TTL)
            best: str | None = None
            best_used = 0.0
            cooling: float | None = None
            for account in accounts:
                queue = self._queues.setdefault(account, {})
                queue.setdefault(ticket, seq)  # a ticket joins all its queues on its first try
                head = self._live_head(queue, now)
                lease = self._leases.get(account)
                leased = lease is not None and lease[1] > now
                cool = self._cooldowns.get(account, 0.0) - now
                if not leased and cool > 0 and (cooling is None or cool < cooling):
                    cooling = cool
                if head == ticket and not leased and cool <= 0:
                    used = self._used.get(account, 0.0)
                    if best is None or used < best_used:
                        best, best_used = account, used
            if best is None:
                return Attempt(None, cooling)
            self._leases[best] = (holder, now + ttl)
            self._used[best] = now
            for account in accounts:
                self._queues[account].pop(ticket, None)
            del self._tickets[ticket]
            return Attempt(best)

    def _live_head(self, queue: dict[str, int], now: float) -> str | None:
        """The oldest ticket of ``queue`` still alive (dead waiters' tickets leave it)."""
        for ticket in list(queue):
            alive = self._tickets.get(ticket)
            if alive is not None and alive[1] >= now:
                return ticket
            del queue[ticket]
            self._tickets.pop(ticket, None)
        return None

    def withdraw(self, ticket: str, accounts: Sequence[str]) -> None:
        with self._lock:
            self.calls["withdraw"] += 1
            for account in accounts:
                self._queues.get(account, {}).pop(ticket, None)
            self._tickets.pop(ticket, None)

    def renew(self, held: Mapping[str, str], ttl: float) -> set[str]:
        now = time.monotonic()
        lost = set()
        with self._lock:
            self.calls["renew"] += 1
            for account, holder in held.items():
                # As SQLiteState: the holder keeps an expired lease nobody took, but a
                # released one stays released.
                lease = self._leases.get(account)
                if lease is not None and lease[0] == holder:
                    self._leases[account] = (holder, now + ttl)
                else:
                    lost.add(account)
        return lost

    def release(self, account: str, holder: str, cooldown: float = 0.0) -> None:
        now = time.monotonic()
        with self._lock:
            self.calls["release"] += 1
            lease = self._leases.get(account)
            if lease is not None and lease[0] == holder:
                del self._leases[account]
            if cooldown > 0:
                self._cooldowns[account] = max(self._cooldowns.get(account, 0.0), now + cooldown)

    def accounts(self, accounts: Sequence[str]) -> dict[str, AccountView]:
        now = time.monotonic()
        views = {}
        with self._lock:
            self.calls["accounts"] += 1
            for account in accounts:
                lease = self._leases.get(account)
                leased = lease is not None and lease[1] > now
                views[account] = AccountView(leased, max(0.0, self._cooldowns.get(account, 0.0) - now),
                                             lease[0] if lease is not None and leased else None)
        return views

    def get(self, key: str) -> str | None:
        with self._lock:
            found = self._values.get(key)
        if found is None or (found[1] is not None and found[1] <= time.monotonic()):
            return None
        return found[0]

    def put(self, key: str, value: str, ttl: float | None = None) -> None:
        with self._lock:
            self._values[key] = (value, None if ttl is None else time.monotonic() + ttl)

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)

    def hit(self, key: str, window: float, keep: float = 0.0) -> int:
        name = f"{key}@{math.floor(time.time() / window)}"  # kept for the process's life
        with self._lock:
            self._hits[name] = self._hits.get(name, 0) + 1
            return self._hits[name]

    def counts(self, key: str, window: float, windows: int = 1) -> list[int]:
        current = math.floor(time.time() / window)
        with self._lock:
            return [self._hits.get(f"{key}@{current - back}", 0) for back in range(windows - 1, -1, -1)]

    def add_record(self, kind: str, name: str, value: str) -> None:
        with self._lock:
            self._records.setdefault(kind, {})[name] = value

    def remove_record(self, kind: str, name: str) -> None:
        with self._lock:
            self._records.get(kind, {}).pop(name, None)

    def records(self, kind: str) -> dict[str, str]:
        with self._lock:
            return dict(self._records.get(kind, {}))

    def close(self) -> None:
        pass


# --- the backends -------------------------------------------------------------------------------

@contextmanager
def open_backend(name: str) -> Iterator[tuple[SharedState, dict[str, Any]]]:
    """The backend ``name`` and what to report about it (a ``pids`` entry: processes whose
    CPU to measure besides this one); stopped and removed on exit."""
    with ExitStack() as stack:
        info: dict[str, Any] = {"pids": {}}
        state: SharedState
        if name == "memory":
            state = MemoryState()
        elif name == "sqlite":
            from gateway.state.sqlite_state import SQLiteState

            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-lease-"))
            state = SQLiteState(os.path.join(folder, "state.db"))
            info["path"] = state.path
        elif name == "redis":
            from gateway.state.redis_state import RedisState

            url = stack.enter_context(redis_server())
            probe = redis.Redis.from_url(url, decode_responses=True)
            server = probe.info("server")
            probe.close()
            info.update(url=url, redis_version=server.get("redis_version"))
            info["pids"]["redis-server"] = int(server["process_id"])
            state = RedisState(url, prefix=f"bench-lease-{uuid.uuid4().hex[:8]}:")
        else:
            raise ValueError(f"unknown backend {name!r}; one of {BACKENDS}")
        stack.callback(state.close)
        yield state, info


# --- the measurement ----------------------------------------------------------------------------

class PoolWarnings(logging.Handler):
    """Counts what the pool logs (lost leases, failed releases...) by message, instead of
    printing a traceback per occurrence."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[str(record.msg)] += 1


def bench_credential(label: str) -> Credential:
    """A credential of one made-up account: only its ``key`` (a hash of the JWT) is used."""
    return Credential(real_user_id=None, jwt=f"bench-lease.{label}.{uuid.uuid4().hex}")


def pool_cycle(pool: AccountPool, credential: Credential) -> None:
    """One lease round trip as a generation makes it (nobody else wants this account)."""
    lease = pool.acquire([credential], timeout=ACQUIRE_TIMEOUT_S)
    if lease.key != credential.key:
        raise RuntimeError(f"leased {lease.key}, asked for {credential.key}")
    lease.release()


def state_cycle(state: SharedState, key: str, ttl: float) -> None:
    """The backend's two calls of that round trip alone."""
    holder = uuid.uuid4().hex
    attempt = state.try_lease(uuid.uuid4().hex, [key], holder, ttl)
    if attempt.account != key:
        raise RuntimeError(f"account {key} was not granted: {attempt}")
    state.release(key, holder)


def run_level(state: SharedState, info: dict[str, Any], mode: str, concurrency: int, cycles: int,
              args: argparse.Namespace, warnings: PoolWarnings) -> dict[str, Any]:
    """``concurrency`` greenlets, each ``args.warmup`` then ``cycles`` round trips on its own
    account; returns every measured duration (seconds), the failures and the CPU used."""
    # A fresh pool per level: it knows only this level's accounts.
    pool = AccountPool(state, lease_ttl=args.lease_ttl)
    label = f"{mode}-{concurrency}-{uuid.uuid4().hex[:6]}"
    credentials = [bench_credential(f"{label}-{i}") for i in range(concurrency)]
    samples: list[list[float]] = [[] for _ in range(concurrency)]
    failures: list[float] = []  # acquires that timed out (AccountsBusy), and after how long

    def cycle(i: int) -> None:
        if mode == "pool":
            pool_cycle(pool, credentials[i])
        else:
            state_cycle(state, credentials[i].key, args.lease_ttl)

    def run(i: int, count: int, out: list[float] | None) -> None:
        for _ in range(count):
            started = time.perf_counter()
            try:
                cycle(i)
            except AccountsBusy:
                if out is not None:
                    failures.append(time.perf_counter() - started)
            else:
                if out is not None:
                    out.append(time.perf_counter() - started)
            gevent.sleep(0)  # let the other greenlets run, as a request's I/O would

    warned = Counter(warnings.counts)
    join([gevent.spawn(run, i, args.warmup, None) for i in range(concurrency)])
    calls_before = Counter(state.calls) if isinstance(state, MemoryState) else None
    gc.collect()
    meter = CpuMeter({"bench": os.getpid(), **info["pids"]})
    meter.start()
    cpu_started, started = time.process_time(), time.perf_counter()
    join([gevent.spawn(run, i, cycles, samples[i]) for i in range(concurrency)])  # all start together
    wall, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    shares: dict[str, float | None] = meter.stop()
    flat = [value for per_greenlet in samples for value in per_greenlet]
    done = len(flat) + len(failures)
    redis_share = shares.get("redis-server")
    result: dict[str, Any] = {
        "mode": mode, "concurrency": concurrency, "cycles_per_greenlet": cycles, "warmup": args.warmup,
        "lease_ttl_s": args.lease_ttl, "n": len(flat), "errors": len(failures), "wall_s": wall,
        "cycles_per_s": done / wall if wall > 0 else None,
        "cpu_us_per_cycle": {
            "bench": 1e6 * cpu_s / done if done else None,
            "redis-server": None if redis_share is None or not done else 1e4 * redis_share * wall / done,
        },
        "cpu_percent": shares, **summary(flat),
        "pool_warnings": dict(warnings.counts - warned), "samples_s": flat, "error_samples_s": failures,
    }
    if calls_before is not None and isinstance(state, MemoryState):
        delta = state.calls - calls_before
        result["state_calls_per_cycle"] = {method: count / done for method, count in sorted(delta.items())}
    return result


def join(greenlets: list[Any]) -> None:
    """Wait for every greenlet; the first one's error is raised here, after the others are
    stopped (so the backend is never closed under a running greenlet)."""
    try:
        gevent.joinall(greenlets, timeout=JOIN_TIMEOUT_S, raise_error=True)
    finally:
        unfinished = [g for g in greenlets if not g.ready()]
        gevent.killall(unfinished, block=True, timeout=10)
    if unfinished:
        raise RuntimeError(f"{len(unfinished)} greenlet(s) still running after {JOIN_TIMEOUT_S} s")


def summary(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50_s": percentile(values, 50), "p95_s": percentile(values, 95), "p99_s": percentile(values, 99),
        "max_s": max(values) if values else None, "mean_s": sum(values) / len(values) if values else None,
    }


# --- the report ---------------------------------------------------------------------------------

def fmt_ms(seconds: float | None, digits: int = 3) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.{digits}f}"


def fmt_num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}".replace(",", " ")


def render(rows: list[dict[str, Any]], args: argparse.Namespace, wall: float) -> str:
    baseline = {(r["mode"], r["concurrency"]): r for r in rows if r["backend"] == "memory"}

    def added(row: dict[str, Any]) -> str:
        base = baseline.get((row["mode"], row["concurrency"]))
        if base is None or row["backend"] == "memory" or row["p50_s"] is None or base["p50_s"] is None:
            return "–"
        return f"{(row['p50_s'] - base['p50_s']) * 1000:+.3f}"

    def cpu(row: dict[str, Any]) -> str:
        per_cycle = row["cpu_us_per_cycle"]
        text = fmt_num(per_cycle["bench"])
        return text + (f" / {fmt_num(per_cycle['redis-server'])}" if per_cycle["redis-server"] is not None else "")

    headers = ["backend", "greenlets", "cycles", "p50 (ms)", "p95", "p99", "mean", "max",
               "p50 added vs memory", "cycles/s", "CPU µs/cycle bench / redis-server",
               "CPU % other processes", "errors"]

    def lines_for(mode: str) -> list[list[Any]]:
        return [[r["backend"], r["concurrency"], f"{r['concurrency']}×{r['cycles_per_greenlet']}",
                 fmt_ms(r["p50_s"]), fmt_ms(r["p95_s"]), fmt_ms(r["p99_s"]), fmt_ms(r["mean_s"]),
                 fmt_ms(r["max_s"]), added(r), fmt_num(r["cycles_per_s"]), cpu(r),
                 fmt_num(r["cpu_percent"].get("other_processes")), r["errors"]]
                for r in rows if r["mode"] == mode]

    out = [
        f"## bench_lease — AccountPool.acquire + Lease.release under gevent, one account per greenlet "
        f"(warm-up {args.warmup} cycles each, lease TTL {args.lease_ttl:g} s)",
        "",
        table(headers, lines_for("pool")),
    ]
    if any(r["mode"] == "state" for r in rows):
        out += ["", "### The backend's calls alone: try_lease + release, no AccountPool", "",
                table(headers, lines_for("state"))]
    out.append("")
    for row in rows:
        if row["mode"] == "pool" and "state_calls_per_cycle" in row:
            out.append(f"- state calls per pool cycle at {row['concurrency']} greenlet(s) (memory): " + ", ".join(
                f"{method} {count:.2f}" for method, count in row["state_calls_per_cycle"].items()))
    for row in rows:
        for message, count in row["pool_warnings"].items():
            out.append(f"- {row['backend']} {row['mode']} at {row['concurrency']}: pool warning ×{count}: {message}")
    out.append(f"- wall time {wall:.1f} s; {os.cpu_count()} CPUs; errors = acquires that timed out "
               f"after {ACQUIRE_TIMEOUT_S:g} s (AccountsBusy), not in the percentiles")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_lease",
                                     description="Latency of an account lease per shared-state backend.")
    parser.add_argument("--concurrency", default="1,64", help="comma-separated greenlet counts")
    parser.add_argument("--cycles", type=int, default=None,
                        help=f"measured cycles per greenlet (default: {DEFAULT_TOTAL_CYCLES} in all, "
                             f"at least {MIN_CYCLES} each: 2000 at 1, 64×{MIN_CYCLES} at 64)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured cycles per greenlet")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated, among " + ", ".join(BACKENDS))
    parser.add_argument("--lease-ttl", type=float, default=DEFAULT_LEASE_TTL,
                        help=f"the pool's lease TTL (s); its renewer runs every TTL/{RENEWALS_PER_TTL} s, so "
                             f"the default keeps renewals out of the run; {LEASE_TTL:g} is the gateway's")
    parser.add_argument("--no-state-only", action="store_true",
                        help="skip the table of the backend's calls alone (try_lease + release)")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as JSON instead of the Markdown table")
    args = parser.parse_args(argv)
    levels = [int(part) for part in args.concurrency.split(",") if part.strip()]
    backends = [part.strip() for part in args.backends.split(",") if part.strip()]
    if not levels or min(levels) < 1:
        parser.error("--concurrency needs positive greenlet counts")
    if args.cycles is not None and args.cycles < 1:
        parser.error("--cycles must be at least 1")
    if args.lease_ttl <= 0:
        parser.error("--lease-ttl must be positive")
    if unknown := sorted(set(backends) - set(BACKENDS)):
        parser.error(f"unknown backend(s) {unknown}; choose among {BACKENDS}")
    modes = ["pool"] if args.no_state_only else ["pool", "state"]

    warnings = PoolWarnings()
    pool_log = logging.getLogger("gateway.pool")
    pool_log.addHandler(warnings)
    pool_log.propagate = False
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    backend_info: dict[str, dict[str, Any]] = {}
    for backend in backends:
        with open_backend(backend) as (state, info):
            backend_info[backend] = info
            for mode in modes:
                for concurrency in levels:
                    cycles = args.cycles or max(MIN_CYCLES, DEFAULT_TOTAL_CYCLES // concurrency)
                    row = run_level(state, info, mode, concurrency, cycles, args, warnings)
                    rows.append({"backend": backend, **row})
    wall = time.perf_counter() - started

    report = render(rows, args, wall)
    summaries = [{k: v for k, v in row.items() if k not in ("samples_s", "error_samples_s")} for row in rows]
    name = NAME if args.lease_ttl == DEFAULT_LEASE_TTL else f"{NAME}-ttl-{args.lease_ttl:g}"
    path = write_results(name, {
        "benchmark": NAME, "environment": environment(), "args": vars(args), "wall_s": wall,
        "backends": backend_info, "rows": rows, "markdown": report,
    })
    if args.json:
        print(json.dumps({"benchmark": NAME, "wall_s": wall, "cpus": os.cpu_count(), "args": vars(args),
                          "backends": backend_info, "rows": summaries, "results_file": str(path)},
                         indent=2, default=str))
    else:
        print(report)
        print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
