"""Capacity of ONE gevent worker: 500 concurrent streams, errors and memory per stream.

    python -m tests.bench.bench_capacity [--streams 500] [--cps 20] [--length 500-800]
                                         [--first-delay 0.5] [--py-spy SECONDS]
                                         [--surface matrix|session|code] [--signed-in]

The gateway runs with ``GATEWAY_WORKERS=1``. Each stream has its own simulator account
and a slow answer (500-800 characters at 20 chars/s: 25-40 s), so all of them are open
together. The client is this process: one thread (and one connection) per stream, all
released at once.

Memory: VmRSS of the gunicorn WORKER (the only child of the master) is read from
/proc/<pid>/status after one warm-up stream (baseline: the median of 3 readings one
second apart) and then every second; the peak while all streams are open and none has
finished gives ``(peak - baseline) / streams``. The baseline is taken after a single
warm-up, so the growth also includes per-account state (a device registration per
account) and the heap the first burst of 500 requests needs — an upper bound on the
cost of one open stream.

Correctness: a stream counts as an error if its HTTP status is not 200, it carries an
error frame, it ends without ``[DONE]``, or its text differs from the simulator's answer
for its chat (matched by a unique prompt).

Load: the gateway polls each stream every 0.25 s while text flows (spaced from when the
previous poll's answer arrived), so 500 streams ask for at most ~2000 upstream polls a
second; the simulator is one gevent process. Reported: polls per second achieved while
all streams were open, the resulting mean poll interval per stream, the polling rate
and shortest gap between polls per stream (never faster than 5/s), added TTFT/tail
against the simulator's timeline, and CPU of the gateway worker, the simulator and this
client process.
``--surface session`` runs the gateway on the session surface (``MINIMAX_SURFACE=session``
and the simulator's stream host): each stream is one upstream SSE read, never polled, so
the polling rows give way to a "zero polls" goal (the simulator's poll counter and every
generation's ``polls`` stay 0).
``--surface code`` runs it on MiniMax Code (``MINIMAX_SURFACE=code``, model
``MiniMax-M3``): one code account per stream, its access token sent by the client (with
``--signed-in``: signed in to the gateway's shared state, the clients sending an API
key); each stream is one relayed upstream SSE read. Goals there: the same 500 streams
at <= 100 KB RSS each with 0 errors, and zero token refreshes during the run (no
``/oauth2/token`` call reached the simulator). No tap: TTFT and tail include the
simulator's 50 ms tick.
Results: a Markdown table on stdout and ``bench-results/bench_capacity.json``
(``bench_capacity-surface-session.json``, ``bench_capacity-surface-code.json``).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import threading
import time
from typing import Any

import requests

from tests.bench.common import (
    RESULTS_DIR,
    SURFACES,
    Stack,
    StreamResult,
    cpu_seconds,
    environment,
    machine_busy_seconds,
    match_entry,
    ms,
    num,
    poll_breakdown,
    poll_spacing,
    port_of,
    result_name,
    rss_kb,
    sim_log_by_prompt,
    stream_chat,
    summarize,
    table,
    unique_prompt,
    unread_bytes,
    verdict,
    write_results,
)

NAME = "bench_capacity"
GOAL_RSS_KB_PER_STREAM = 100.0
#: Issue 12: one worker keeps this many streams open at full poll cadence.
TARGET_STREAMS_AT_CADENCE = 250
#: "Full cadence": a mean poll interval per stream on the plateau within this of the
#: steady interval (GATEWAY_POLL_STEADY, 0.25 s, plus one answer's round trip).
FULL_CADENCE_INTERVAL_S = 0.30
SAMPLE_EVERY_S = 1.0
THREAD_STACK_BYTES = 512 * 1024
STREAM_DEADLINE_S = 240.0
RUN_DEADLINE_S = 300.0
START_TIMEOUT_S = 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_capacity")
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--cps", type=float, default=20.0)
    parser.add_argument("--length", default="500-800", help="answer length range, chars")
    parser.add_argument("--first-delay", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--py-spy", type=float, default=0, metavar="SECONDS",
                        help="also sample the worker with py-spy (if installed) for SECONDS from the start")
    parser.add_argument("--surface", choices=SURFACES, default="matrix",
                        help="upstream surface of the gateway (MINIMAX_SURFACE)")
    parser.add_argument("--signed-in", action="store_true",
                        help="code: signed-in server-side accounts behind an API key "
                             "(default: each client sends its account's access token)")
    args = parser.parse_args(argv)
    if args.signed_in and args.surface != "code":
        parser.error("--signed-in is for --surface code")
    load_start = os.getloadavg()  # the machine is shared: the report says how busy it was
    low, high = (int(part) for part in args.length.split("-"))
    rng = random.Random(args.seed)
    started = time.monotonic()
    env = {"GATEWAY_WORKERS": "1", "GATEWAY_LOG_LEVEL": "warning", "GATEWAY_QUEUE_TIMEOUT": "60",
           "GATEWAY_WORKER_CONNECTIONS": str(max(2000, 2 * args.streams + 100))}

    with Stack("capacity", env, surface=args.surface, signed_in=args.signed_in) as stack:
        sim = stack.sim
        worker, simulator, me = stack.worker_pid(), stack.simulator_pid, os.getpid()
        accounts = stack.add_accounts(args.streams + 1)
        warm_account, stream_accounts = accounts[0], accounts[1:]
        tokens_before = stack.token_calls()

        # Warm-up: one short stream, then let the background deletion finish.
        stack.script([{"first_delay": 0, "length": 50, "cps": 1000}], account=warm_account)
        with requests.Session() as session:
            warm = stream_chat(session, stack.gw_url, warm_account["credential"],
                               unique_prompt("warmup"), deadline_s=30, model=stack.model)
        sim.wait_idle(timeout=30)
        readings = []
        for _ in range(3):
            time.sleep(1.0)
            readings.append(rss_kb(worker))
        baseline = statistics.median(r for r in readings if r is not None)
        sim_baseline = rss_kb(simulator)

        answers = [{"first_delay": args.first_delay, "length": rng.randint(low, high), "cps": args.cps}
                   for _ in stream_accounts]
        sim.script(answers)  # the global queue: each send takes the next answer
        results = [StreamResult(unique_prompt(f"cap{i}")) for i in range(args.streams)]
        ended = [False] * args.streams
        go = threading.Event()

        def client(index: int) -> None:
            try:
                if not go.wait(START_TIMEOUT_S):
                    results[index].error = "never started"
                    return
                with requests.Session() as session:
                    stream_chat(session, stack.gw_url, stream_accounts[index]["credential"],
                                results[index].prompt, deadline_s=STREAM_DEADLINE_S,
                                read_timeout=60.0, result=results[index], model=stack.model)
            except Exception as error:  # counted as an error, never hidden
                results[index].error = results[index].error or f"{type(error).__name__}: {error}"
            finally:
                ended[index] = True

        threading.stack_size(THREAD_STACK_BYTES)
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.streams)]
        for thread in threads:
            thread.start()
        profiler = start_profiler(worker, args.py_spy)
        try:
            t_go = time.time()
            go.set()
            queues = {"client_unread": port_of(stack.gw_url), "gateway_unread": port_of(stack.sim_url)}
            samples = sample_until_done(results, ended, worker, simulator, me, t_go, queues)
            for thread in threads:
                thread.join(max(0.1, RUN_DEADLINE_S - (time.time() - t_go)))
            t_all_ended = time.time()
        finally:
            go.set()  # never leave client threads waiting
            profile = finish_profiler(profiler)
        try:
            sim.wait_idle(timeout=60)
            idle = True
        except TimeoutError:
            idle = False
        time.sleep(1.0)
        rss_after = rss_kb(worker)
        log = sim_log_by_prompt(sim)
        sim_stats = sim.stats()
        code_stats = sim.code_stats() if args.surface == "code" else {}
        tokens_after = stack.token_calls()
        gateway_log_tail = stack.gw_proc.log()[-3000:] if stack.gw_proc else ""

    summary = analyse(args, results, log, samples, baseline, rss_after, t_go, t_all_ended)
    per_stream = summary.pop("per_stream")
    summary["profile"] = profile
    summary.update(
        warmup_ok=warm.ok(), baseline_readings_kb=readings, simulator_rss_baseline_kb=sim_baseline,
        simulator_idle_after=idle, wall_s=time.monotonic() - started, load_avg_start=load_start,
        token_calls={k: tokens_after[k] - tokens_before[k] for k in tokens_after},
        code_stats={k: code_stats.get(k) for k in ("messages_calls", "generations", "quota_calls",
                                                   "models_calls", "rejections", "max_concurrent")
                    if k in code_stats},
        simulator_stats={k: sim_stats.get(k) for k in ("requests", "rejections", "warnings",
                                                       "polls", "sends", "stops", "deletes",
                                                       "chats_alive", "sessions_created",
                                                       "stream_messages", "archives",
                                                       "stream_drops")},
    )
    report = render(args, summary)
    print(report)
    name = result_name(NAME, surface=None if args.surface == "matrix" else args.surface,
                       signed_in=args.signed_in, pyspy=args.py_spy > 0)
    path = write_results(name, {
        "benchmark": NAME, "environment": environment(), "args": vars(args), "gateway_env": env,
        "goal": {"rss_kb_per_stream": GOAL_RSS_KB_PER_STREAM}, "summary": summary,
        "samples": samples, "per_stream": per_stream,
        "streams": [r.as_dict() | {"text": None, "chars": len(r.text)} for r in results],
        "gateway_log_tail": gateway_log_tail, "markdown": report,
    })
    print(f"\nJSON: {path}")
    return 0


PROFILE_PATH = "bench_capacity.pyspy.txt"


def start_profiler(worker: int, seconds: float) -> subprocess.Popen | None:
    """py-spy sampling the worker (optional; py-spy is not a project dependency)."""
    exe = shutil.which("py-spy")
    if seconds <= 0 or exe is None:
        return None
    RESULTS_DIR.mkdir(exist_ok=True)
    return subprocess.Popen(
        [exe, "record", "-p", str(worker), "-d", str(int(seconds)), "-r", "100", "--nonblocking",
         "-f", "raw", "-o", str(RESULTS_DIR / PROFILE_PATH)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish_profiler(proc: subprocess.Popen | None) -> dict[str, Any] | None:
    if proc is None:
        return None
    try:
        proc.wait(timeout=RUN_DEADLINE_S)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=10)
    path = RESULTS_DIR / PROFILE_PATH
    if not path.exists():
        return None
    return summarize_profile(path.read_text().splitlines())


#: Inclusive-time buckets (first matching frame wins, outermost first is not needed:
#: a stack counts for each bucket whose marker appears anywhere in it).
PROFILE_BUCKETS: dict[str, str] = {
    "upstream call (UpstreamClient.call, all of it)": "UpstreamClient.call ",
    "  requests Session.request": "Session.request ",
    "  signing (signed_headers + build_query)": "signed_headers ",
    "  build_query": "build_query ",
    "  classify / JSON decode of answers": "classify ",
    "read_snapshot (parse a poll)": "read_snapshot ",
    "Generation._poll (whole poll loop)": "Generation._poll ",
    "Janitor (background deletes)": "Janitor._run ",
    "disconnect probe": "closed (gateway/web.py",
    "gunicorn handle_request (per-request Flask + write)": "AsyncWorker.handle_request ",
    "ChunkStream.frames (SSE encode)": "ChunkStream.frames ",
    "gevent hub idle / loop": "Hub.run ",
    # the code surface's relay
    "code: CodeTurn.events (read + parse the upstream SSE)": "CodeTurn.events ",
    "  sseclient (SSE decoding)": "sseclient",
    "  EventReader.read (Anthropic events -> chat events)": "EventReader.read ",
    "chat core (gateway/chat)": "gateway/chat/",
    "OpenAI dialect stream (gateway/openai)": "gateway/openai/",
    "SSE encoding (gateway/sse.py)": "gateway/sse.py",
}


def summarize_profile(lines: list[str]) -> dict[str, Any]:
    total, leaves, buckets = 0, {}, dict.fromkeys(PROFILE_BUCKETS, 0)
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        leaf = stack.rsplit(";", 1)[-1]
        leaves[leaf] = leaves.get(leaf, 0) + count
        for name, marker in PROFILE_BUCKETS.items():
            if marker in stack + " ":
                buckets[name] += count
    top = sorted(leaves.items(), key=lambda item: -item[1])[:15]
    return {"samples": total,
            "inclusive_percent": {k: round(100 * v / total, 1) for k, v in buckets.items()} if total else {},
            "top_self_percent": [(leaf, round(100 * v / total, 1)) for leaf, v in top] if total else []}


def sample_until_done(results: list[StreamResult], ended: list[bool], worker: int,
                      simulator: int, me: int, t_go: float,
                      queues: dict[str, int]) -> list[dict[str, Any]]:
    """One sample a second (bounded in count and time) until every client thread ended.

    ``queues``: name -> port; each sample holds the bytes left unread on the sockets
    connected to that port (:func:`unread_bytes`), to tell who is behind on a backlog."""
    samples: list[dict[str, Any]] = []
    for _ in range(int(RUN_DEADLINE_S / SAMPLE_EVERY_S) + 1):
        now = time.time()
        opened = sum(1 for r in results if r.status == 200)
        done = sum(ended)
        samples.append({
            "t": now, "since_start_s": now - t_go,
            "worker_rss_kb": rss_kb(worker), "simulator_rss_kb": rss_kb(simulator),
            "worker_cpu_s": cpu_seconds(worker), "simulator_cpu_s": cpu_seconds(simulator),
            "client_cpu_s": cpu_seconds(me), "machine_busy_s": machine_busy_seconds(),
            "opened": opened, "first_content": sum(1 for r in results if r.t_first_content),
            **{f"{name}_bytes": value for name, value in unread_bytes(queues).items()},
            "ended": done, "open_now": sum(1 for r, e in zip(results, ended, strict=True) if r.status == 200 and not e),
        })
        if done == len(results) or now - t_go > RUN_DEADLINE_S:
            break
        time.sleep(max(0.0, SAMPLE_EVERY_S - (time.time() - now)))
    return samples


def cpu_share(samples: list[dict[str, Any]], key: str) -> float | None:
    if len(samples) < 2 or samples[0][key] is None or samples[-1][key] is None:
        return None
    return 100.0 * (samples[-1][key] - samples[0][key]) / (samples[-1]["t"] - samples[0]["t"])


def analyse(args: argparse.Namespace, results: list[StreamResult], log: dict[str, dict[str, Any]],
            samples: list[dict[str, Any]], baseline: float, rss_after: int | None, t_go: float,
            t_all_ended: float) -> dict[str, Any]:
    streams = len(results)
    errors: list[str] = []
    per_stream: list[dict[str, Any]] = []
    for result in results:
        entry = match_entry(log, result.prompt)
        problem = result.error
        if problem is None and result.status != 200:
            problem = f"HTTP {result.status}"
        if problem is None and result.t_done is None:
            problem = "no [DONE]"
        if problem is None and entry is None:
            problem = "no simulator generation"
        if problem is None and result.text != entry["answer"]:
            problem = f"text differs ({len(result.text)} vs {len(entry['answer'])} chars)"
        if problem:
            errors.append(problem)
        if entry is not None:
            span = (entry["t_finish"] or 0) - entry["t_send"]
            per_stream.append({
                "prompt": result.prompt, "t_request": result.t_request, "t_send": entry["t_send"],
                "t_first_content_sim": entry["t_first_content"],
                "t_first_content_client": result.t_first_content, "t_finish_sim": entry["t_finish"],
                "t_done_client": result.t_done, "polls": entry["polls"],
                "surface": entry.get("surface"),
                "t_last_content_client": result.t_last_content,
                "t_finish_reason_client": result.t_finish_reason,
                # the finish_reason chunk is written before Generation.close(), [DONE] after it
                "finish_reason_to_done": (result.t_done - result.t_finish_reason
                                          if result.t_done and result.t_finish_reason else None),
                "added_ttft": (result.t_first_content - entry["t_first_content"]
                               if result.t_first_content and entry["t_first_content"] else None),
                "added_tail": (result.t_done - entry["t_finish"]
                               if result.t_done and entry["t_finish"] else None),
                "polls_per_s": entry["polls"] / span if span > 0 else None,
                "request_to_send": entry["t_send"] - result.t_request,
                "poll_times": entry["poll_times"],
                **poll_spacing(entry["poll_times"]),
                **poll_breakdown(entry, result.t_first_content, result.t_done),
            })

    # The plateau: every stream open, none ended yet.
    plateau = [s for s in samples if s["open_now"] == streams]
    max_open = max((s["open_now"] for s in samples), default=0)
    window = plateau or [s for s in samples if s["open_now"] == max_open and max_open > 0]
    peak = max((s["worker_rss_kb"] for s in window if s["worker_rss_kb"]), default=None)
    overall_peak = max((s["worker_rss_kb"] for s in samples if s["worker_rss_kb"]), default=None)
    t_all_open = next((s["t"] for s in samples if s["opened"] == streams), None)
    t_from, t_to = (window[0]["t"], window[-1]["t"]) if len(window) >= 2 else (None, None)
    polls_in_window = None
    if t_from is not None:
        polls_in_window = sum(1 for s in per_stream for t in s["poll_times"] if t_from <= t < t_to)
    window_s = (t_to - t_from) if t_from is not None else None
    achieved = polls_in_window / window_s if polls_in_window is not None and window_s else None
    for s in per_stream:
        s.pop("poll_times")
    return {
        "per_stream": per_stream,
        "polls_total": sum(s["polls"] or 0 for s in per_stream),
        "surfaces": sorted({str(s["surface"]) for s in per_stream}),
        "streams": streams, "errors": len(errors), "error_kinds": _count(errors),
        "all_open_simultaneously": bool(plateau), "max_open_at_once": max_open,
        "ramp_up_s": (t_all_open - t_go) if t_all_open else None,
        "total_wall_s": t_all_ended - t_go,
        "rss_baseline_kb": baseline, "rss_peak_all_open_kb": peak, "rss_peak_overall_kb": overall_peak,
        "rss_after_kb": rss_after,
        "rss_kb_per_stream": (peak - baseline) / streams if peak else None,
        "plateau_s": window_s, "plateau_samples": len(window),
        "polls_in_plateau": polls_in_window, "polls_per_s_achieved": achieved,
        "polls_per_s_asked": streams / 0.25,
        "mean_poll_interval_s": (streams / achieved) if achieved else None,
        "cpu_percent_plateau": {
            "gateway_worker": cpu_share(window, "worker_cpu_s"),
            "simulator": cpu_share(window, "simulator_cpu_s"),
            "bench_client": cpu_share(window, "client_cpu_s"),
            "machine_total": cpu_share(window, "machine_busy_s"),
        },
        "cpu_percent_whole_run": {
            "gateway_worker": cpu_share(samples, "worker_cpu_s"),
            "simulator": cpu_share(samples, "simulator_cpu_s"),
            "bench_client": cpu_share(samples, "client_cpu_s"),
            "machine_total": cpu_share(samples, "machine_busy_s"),
        },
        "chars_streamed": sum(len(r.text) for r in results),
        "unread_kb_plateau": {
            name: summarize(s[f"{name}_bytes"] / 1024 for s in window if s.get(f"{name}_bytes") is not None)
            for name in ("client_unread", "gateway_unread")},
        "added_ttft": summarize(s["added_ttft"] for s in per_stream),
        "added_tail": summarize(s["added_tail"] for s in per_stream),
        "request_to_send": summarize(s["request_to_send"] for s in per_stream),
        "polls_per_s_per_stream": summarize(s["polls_per_s"] for s in per_stream),
        **{key: summarize(s[key] for s in per_stream)
           for key in ("ttft_poll_wait", "ttft_delivery", "tail_poll_wait", "tail_delivery",
                       "max_poll_gap", "finish_reason_to_done", "poll_rate", "min_poll_gap",
                       "send_to_first_poll",
                       "max_polls_in_1s")},
    }


def _count(items: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        key = item[:120]
        counts[key] = counts.get(key, 0) + 1
    return counts


def per_poll_rows(s: dict[str, Any]) -> list[list[Any]]:
    """Worker CPU per upstream poll on the plateau, and what a whole core would hold at
    that cost: the figure that survives a machine shared with other work."""
    worker = s["cpu_percent_plateau"].get("gateway_worker")
    achieved = s["polls_per_s_achieved"]
    if not worker or not achieved:
        return []
    per_poll = worker / 100 / achieved
    return [["(info) worker CPU per poll on the plateau (ms, the stream's SSE writes included)",
             num(per_poll * 1000), "", "–"],
            ["(info) streams one whole core could poll at full cadence at that cost",
             num(FULL_CADENCE_INTERVAL_S / per_poll, 0), f"≥ {TARGET_STREAMS_AT_CADENCE} (extrapolated)",
             "–"]]


def cadence_target(s: dict[str, Any]) -> list[Any]:
    """Issue 12's row: ≥ 250 streams open together, each polled at full cadence."""
    interval = s["mean_poll_interval_s"]
    met = (s["all_open_simultaneously"] and s["streams"] >= TARGET_STREAMS_AT_CADENCE
           and interval is not None and interval <= FULL_CADENCE_INTERVAL_S)
    return [f"streams open at full poll cadence (mean interval ≤ {FULL_CADENCE_INTERVAL_S} s)",
            f"{s['streams']} at {num(interval, 2)} s",
            f"≥ {TARGET_STREAMS_AT_CADENCE} streams", "PASS" if met else "FAIL"]


def render(args: argparse.Namespace, s: dict[str, Any]) -> str:
    per = s["rss_kb_per_stream"]
    cpu, cpu_all = s["cpu_percent_plateau"], s["cpu_percent_whole_run"]
    ttft, tail, pps = s["added_ttft"], s["added_tail"], s["polls_per_s_per_stream"]
    rate, gap = s["poll_rate"], s["min_poll_gap"]
    rows = [
        ["concurrent streams (one worker)", s["streams"], "all open together",
         "PASS" if s["all_open_simultaneously"] else "FAIL"],
        ["errors (status, error frame, no [DONE], text ≠ simulator)", s["errors"], "0",
         "PASS" if s["errors"] == 0 else "FAIL"],
        ["max streams open at once", s["max_open_at_once"], "", ""],
        [f"ramp-up until all {s['streams']} had headers (s)", num(s["ramp_up_s"], 1), "", ""],
        ["total wall time, go → last stream ended (s)", num(s["total_wall_s"], 1), "", ""],
        ["worker RSS baseline (KB)", num(s["rss_baseline_kb"], 0), "", ""],
        ["worker RSS peak while all open (KB)", num(s["rss_peak_all_open_kb"], 0), "", ""],
        ["RSS growth per open stream (KB)", num(per, 1), "≤ 100 KB", verdict(per, GOAL_RSS_KB_PER_STREAM)],
        ["worker RSS overall peak / after the run (KB)",
         f"{num(s['rss_peak_overall_kb'], 0)} / {num(s['rss_after_kb'], 0)}", "", ""],
        ["plateau used (s, samples)", f"{num(s['plateau_s'], 1)} s, {s['plateau_samples']}", "", ""],
        ["upstream polls/s achieved on the plateau (asked: ~streams/0.25 s)",
         f"{num(s['polls_per_s_achieved'], 0)} (asked ~{num(s['polls_per_s_asked'], 0)})", "", ""],
        ["→ mean poll interval per stream (s)", num(s["mean_poll_interval_s"], 2), "0.25 design", ""],
        cadence_target(s),
        ["(info) streams one worker could poll at full cadence: polls/s achieved × "
         f"{FULL_CADENCE_INTERVAL_S} s", num((s["polls_per_s_achieved"] or 0) * FULL_CADENCE_INTERVAL_S, 0),
         "only a bound when the worker is saturated", "–"],
        *per_poll_rows(s),
    ]
    polling = [
        ["polling rate per stream, (polls−1)/(last poll − first poll), p50 / max",
         f"{num(rate['p50'])} / {num(rate['max'])}", "max ≤ 5/s", verdict(rate["max"], 5.0)],
        ["shortest gap between two polls of one stream, min over streams / p50 (ms)",
         f"{ms(gap['min'])} / {ms(gap['p50'])}", "min ≥ 200 ms",
         "n/a" if gap["min"] is None else ("PASS" if gap["min"] >= 0.2 else "FAIL")],
        ["most polls of one stream in any 1 s window, max",
         num(s["max_polls_in_1s"]["max"], 0), "≤ 5", verdict(s["max_polls_in_1s"]["max"], 5.0)],
        ["naive polls/(t_finish−t_send) per stream, p50 / max (not a rate, see README)",
         f"{num(pps['p50'])} / {num(pps['max'])}", "info", "–"],
    ]
    latency = [
        ["added TTFT p50 / p90 / max (ms)",
         f"{ms(ttft['p50'])} / {ms(ttft['p90'])} / {ms(ttft['max'])}", "", ""],
    ]
    poll_split = [
        ["  of which: content visible → poll that saw it, p50 / p90 / max (ms)",
         f"{ms(s['ttft_poll_wait']['p50'])} / {ms(s['ttft_poll_wait']['p90'])} / "
         f"{ms(s['ttft_poll_wait']['max'])}", "", ""],
        ["upstream send → first poll (the gateway polls at once), p50 / p90 / max (ms)",
         f"{ms(s['send_to_first_poll']['p50'])} / {ms(s['send_to_first_poll']['p90'])} / "
         f"{ms(s['send_to_first_poll']['max'])}", "", ""],
    ]
    tail_rows = [
        ["added tail p50 / p90 / max (ms)",
         f"{ms(tail['p50'])} / {ms(tail['p90'])} / {ms(tail['max'])}", "", ""],
    ]
    tail_split = [
        ["  of which: finish visible → poll that saw it, p50 / p90 / max (ms)",
         f"{ms(s['tail_poll_wait']['p50'])} / {ms(s['tail_poll_wait']['p90'])} / "
         f"{ms(s['tail_poll_wait']['max'])}", "", ""],
        ["  of which: that poll → client got [DONE], p50 / p90 / max (ms)",
         f"{ms(s['tail_delivery']['p50'])} / {ms(s['tail_delivery']['p90'])} / "
         f"{ms(s['tail_delivery']['max'])}", "", ""],
    ]
    rest = [
        ["  of which: finish_reason chunk → [DONE] chunk (spans Generation.close()), p50 / p90 / max (ms)",
         f"{ms(s['finish_reason_to_done']['p50'])} / {ms(s['finish_reason_to_done']['p90'])} / "
         f"{ms(s['finish_reason_to_done']['max'])}", "", ""],
    ]
    max_gap = [
        ["longest gap between two polls of one stream, p50 / p90 / max (ms)",
         f"{ms(s['max_poll_gap']['p50'])} / {ms(s['max_poll_gap']['p90'])} / "
         f"{ms(s['max_poll_gap']['max'])}", "", ""],
    ]
    unread = s["unread_kb_plateau"]
    worker_cpu_s = (cpu_all["gateway_worker"] or 0) / 100 * (s["total_wall_s"] or 0)
    tail_end = [
        ["(info) worker CPU per streamed character, whole run (µs; one upstream delta per "
         "character at 20 chars/s and a 50 ms tick)",
         num(1e6 * worker_cpu_s / s["chars_streamed"], 0) if s["chars_streamed"] else "–", "", ""],
        ["backlog on the plateau, KB unread by the gateway (upstream sockets) p50 / max",
         f"{num(unread['gateway_unread']['p50'], 0)} / {num(unread['gateway_unread']['max'], 0)}", "", ""],
        ["backlog on the plateau, KB unread by the clients (gateway sockets) p50 / max",
         f"{num(unread['client_unread']['p50'], 0)} / {num(unread['client_unread']['max'], 0)}", "", ""],
        ["request → upstream send p50 / max (ms)",
         f"{ms(s['request_to_send']['p50'])} / {ms(s['request_to_send']['max'])}", "", ""],
        ["CPU % of one core on the plateau: gateway worker / simulator / client / whole machine (max 200)",
         f"{num(cpu['gateway_worker'], 0)} / {num(cpu['simulator'], 0)} / {num(cpu['bench_client'], 0)}"
         f" / {num(cpu['machine_total'], 0)}", "", ""],
        ["CPU % whole run: gateway worker / simulator / client / whole machine (max 200)",
         f"{num(cpu_all['gateway_worker'], 0)} / {num(cpu_all['simulator'], 0)} / "
         f"{num(cpu_all['bench_client'], 0)} / {num(cpu_all['machine_total'], 0)}", "", ""],
    ]
    if args.surface == "code":
        calls, code = s["token_calls"], s["code_stats"]
        no_refresh = calls.get("oauth2_token") == 0 and calls.get("refreshes") == 0
        only_code = s["surfaces"] == ["code"] and s["polls_total"] == 0
        rows = rows[:10] + [
            ["token calls during the run: /oauth2/token / refreshes / invalid_grant",
             f"{calls.get('oauth2_token')} / {calls.get('refreshes')} / {calls.get('invalid_grants')}",
             "0 refreshes", "PASS" if no_refresh else "FAIL"],
            ["simulator: /messages calls / generations / most at once on one account / polls",
             f"{code.get('messages_calls')} / {code.get('generations')} / {code.get('max_concurrent')}"
             f" / {s['polls_total']}", "only code, no polls", "PASS" if only_code else "FAIL"],
        ] + latency + tail_rows + rest + tail_end
    elif args.surface == "session":
        counter = s["simulator_stats"].get("polls")
        zero = s["polls_total"] == 0 and counter == 0 and s["surfaces"] == ["session"]
        rows = rows[:10] + [
            ["upstream polls of these generations / simulator poll counter",
             f"{s['polls_total']} / {counter}", "0", "PASS" if zero else "FAIL"],
            ["simulator: sessions created / stream messages / stream drops",
             f"{s['simulator_stats'].get('sessions_created')} / "
             f"{s['simulator_stats'].get('stream_messages')} / "
             f"{s['simulator_stats'].get('stream_drops')}", "", ""],
        ] + latency + tail_rows + rest + tail_end
    else:
        rows = rows + polling + latency + poll_split + tail_rows + tail_split + rest + max_gap + tail_end
    lines = [
        f"## bench_capacity — {s['streams']} concurrent streams on one gevent worker, "
        f"{args.surface} surface{' (signed-in accounts)' if args.signed_in else ''} "
        f"(answers {args.length} chars at {args.cps:g} chars/s, first_delay {args.first_delay} s)",
        "",
        table(["measure", "value", "goal", "result"], rows),
        "",
        f"Simulator idle afterwards (every chat deleted): {s['simulator_idle_after']}. "
        f"Wall time of the whole benchmark {s['wall_s']:.1f} s. Load average (1/5/15 min) at "
        f"the start {' '.join(f'{v:.2f}' for v in s['load_avg_start'])}.",
    ]
    if s.get("profile"):
        profile = s["profile"]
        lines += ["", f"py-spy profile of the worker ({profile['samples']} samples, % of samples; "
                  "the worker's CPU share is in the table above):", "",
                  table(["where (inclusive)", "% of samples"],
                        list(profile["inclusive_percent"].items())),
                  "", table(["hottest frames (self)", "% of samples"], profile["top_self_percent"])]
    for kind, count in list(s["error_kinds"].items())[:10]:
        lines.append(f"- {count} × {kind}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
