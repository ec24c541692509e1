"""Chat Completions against the Responses API on the same turns, in the same run.

    python -m tests.bench.bench_dialects [--sequential 24] [--batches 4] [--concurrency 8]
                                         [--seed 1] [--surface matrix|session]

The same answers as :mod:`tests.bench.bench_latency` (0.4-0.6 s first delay, 100-300
characters at 100 chars/s), streamed alternately through ``POST /v1/chat/completions``
and ``POST /v1/responses``: sequential requests alternate dialects, and each concurrent
batch has half its clients on each. Measured per dialect, against the simulator's
timeline as in bench_latency:

* added TTFT = first content delta (``choices[0].delta.content`` / ``response.output_text.delta``)
  - simulator ``t_first_content``
* added tail = the end of the stream (``data: [DONE]`` / ``response.completed``) - simulator ``t_finish``

Goal (the Responses dialect adds no measurable work): its added TTFT and tail p50 within
2 ms of the chat dialect's. Results: a Markdown table on stdout and
``bench-results/bench_dialects.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
from typing import Any

import requests

from tests.bench.bench_latency import JOIN_TIMEOUT_S, _stats, answer, measure
from tests.bench.common import (
    MODEL,
    SURFACES,
    CpuMeter,
    Stack,
    StreamResult,
    environment,
    match_entry,
    ms,
    num,
    result_name,
    sim_log_by_prompt,
    stream_chat,
    table,
    unique_prompt,
    write_results,
)

NAME = "bench_dialects"
DIALECTS = ("chat", "responses")
#: The Responses dialect may add at most this much over chat (p50 of added TTFT and tail).
GOAL_DIFFERENCE = 0.002
MAX_FRAMES_PER_STREAM = 10_000


def stream_responses(session: requests.Session, gateway_url: str, credential: str, prompt: str,
                     deadline_s: float = 60.0) -> StreamResult:
    """One streamed ``POST /v1/responses`` read frame by frame with arrival times."""
    result = StreamResult(prompt)
    deadline = time.time() + deadline_s
    result.t_request = time.time()
    body = {"model": MODEL, "input": prompt, "stream": True, "store": False}
    try:
        with session.post(f"{gateway_url}/v1/responses", json=body, stream=True, timeout=(5.0, 60.0),
                          headers={"Authorization": f"Bearer {credential}"}) as response:
            result.status = response.status_code
            if response.status_code != 200:
                result.error = f"HTTP {response.status_code}: {response.text[:300]}"
                return result
            buffer, parts = b"", []
            for chunk in response.iter_content(chunk_size=None):
                now = time.time()
                buffer += chunk
                while b"\n\n" in buffer:
                    frame, buffer = buffer.split(b"\n\n", 1)
                    _read_event(result, frame, now, parts)
                if result.t_done is not None or result.error is not None:
                    break
                if result.frames > MAX_FRAMES_PER_STREAM or now > deadline:
                    result.error = "client deadline or frame bound reached"
                    break
            result.text = "".join(parts)
            if result.t_done is None and result.error is None:
                result.error = "stream ended without response.completed"
    except requests.RequestException as error:
        result.error = f"{type(error).__name__}: {str(error)[:200]}"
    return result


def _read_event(result: StreamResult, frame: bytes, now: float, parts: list[str]) -> None:
    result.frames += 1
    for line in frame.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        event = json.loads(line[5:])
        kind = event["type"]
        if kind == "response.output_text.delta" and event["delta"]:
            if result.t_first_content is None:
                result.t_first_content = now
            result.content_frames += 1
            parts.append(event["delta"])
        elif kind == "response.completed":
            result.t_done = now
        elif kind in ("response.failed", "response.incomplete"):
            result.error = f"{kind}: {json.dumps(event['response'].get('error'))[:300]}"


def run_one(dialect: str, session: requests.Session, gw: str, cred: str, label: str) -> StreamResult:
    prompt = unique_prompt(f"{dialect}-{label}")
    if dialect == "responses":
        return stream_responses(session, gw, cred, prompt)
    return stream_chat(session, gw, cred, prompt, deadline_s=60.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_dialects")
    parser.add_argument("--sequential", type=int, default=24, help="sequential requests per dialect")
    parser.add_argument("--batches", type=int, default=4, help="concurrent batches")
    parser.add_argument("--concurrency", type=int, default=8, help="clients per batch (half per dialect)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--surface", choices=SURFACES, default="matrix")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    started = time.monotonic()
    results: list[tuple[str, StreamResult]] = []
    with Stack("dialects", surface=args.surface) as stack:
        sim = stack.sim
        accounts = sim.add_accounts(max(1, args.concurrency))
        creds = [a["credential"] for a in accounts]
        for account in accounts:  # warm-up, not measured
            sim.script([{"first_delay": 0, "length": 20, "cps": 10000}] * 2, account=account["real_user_id"])
        with requests.Session() as warm:
            for index, cred in enumerate(creds):
                for dialect in DIALECTS:
                    run_one(dialect, warm, stack.gw_url, cred, f"warm{index}")
        sim.wait_idle(timeout=30)
        meter = CpuMeter({"gateway_worker": stack.worker_pid(), "simulator": stack.simulator_pid,
                          "bench_client": os.getpid()})
        meter.start()
        sequence = [DIALECTS[i % 2] for i in range(2 * args.sequential)]
        sim.script([answer(rng) for _ in sequence], account=accounts[0]["real_user_id"])
        with requests.Session() as session:
            for i, dialect in enumerate(sequence):
                results.append((dialect, run_one(dialect, session, stack.gw_url, creds[0], f"seq{i}")))
        for batch in range(args.batches):
            sim.wait_idle(timeout=30)
            for account in accounts:
                sim.script([answer(rng)], account=account["real_user_id"])
            results += _batch(args, stack.gw_url, creds, batch)
        cpu = meter.stop()
        sim.wait_idle(timeout=30)
        log = sim_log_by_prompt(sim)
        rows = [measure(result, match_entry(log, result.prompt), dialect) for dialect, result in results]
    stats = {dialect: _stats([row for row in rows if row["phase"] == dialect]) for dialect in DIALECTS}
    report = render(stats, rows, args, time.monotonic() - started, cpu)
    print(report)
    name = result_name(NAME, surface=None if args.surface == "matrix" else args.surface)
    path = write_results(name, {"benchmark": NAME, "environment": environment(), "args": vars(args),
                                "goal_difference_s": GOAL_DIFFERENCE, "stats": stats, "cpu_percent": cpu,
                                "requests": rows, "markdown": report})
    print(f"\nJSON: {path}")
    return 0


def _batch(args: argparse.Namespace, gw: str, creds: list[str], batch: int) -> list[tuple[str, StreamResult]]:
    """One batch: every client at once, half of them on each dialect (alternating per batch)."""
    out: list[tuple[str, StreamResult] | None] = [None] * args.concurrency
    gate = threading.Barrier(args.concurrency, timeout=30)

    def client(index: int) -> None:
        dialect = DIALECTS[(index + batch) % 2]
        with requests.Session() as session:
            gate.wait()
            out[index] = (dialect, run_one(dialect, session, gw, creds[index], f"b{batch}c{index}"))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    return [entry if entry is not None else ("?", StreamResult("?", error="client thread hung")) for entry in out]


def render(stats: dict[str, Any], rows: list[dict[str, Any]], args: argparse.Namespace, wall: float,
           cpu: dict[str, Any]) -> str:
    chat, resp = stats["chat"], stats["responses"]
    lines = [
        f"## bench_dialects ({args.surface}) — {len(rows)} streamed requests "
        f"({args.sequential}×2 sequential + {args.batches}×{args.concurrency} concurrent)", "",
        table(["dialect", "requests", "errors", "added TTFT p50/p90 (ms)", "added tail p50/p90 (ms)"],
              [[name, stats[name]["requests"], stats[name]["errors"],
                f"{ms(stats[name]['added_ttft']['p50'])}/{ms(stats[name]['added_ttft']['p90'])}",
                f"{ms(stats[name]['added_tail']['p50'])}/{ms(stats[name]['added_tail']['p90'])}"]
               for name in DIALECTS]),
        "",
    ]
    rows_out = []
    for label, key in (("added TTFT p50", "added_ttft"), ("added tail p50", "added_tail")):
        a, b = chat[key]["p50"], resp[key]["p50"]
        difference = None if a is None or b is None else b - a
        result = "n/a" if difference is None else ("PASS" if difference <= GOAL_DIFFERENCE else "FAIL")
        rows_out.append([label, ms(a), ms(b), ms(difference), f"≤ {GOAL_DIFFERENCE * 1000:.0f} ms", result])
    lines += [table(["metric", "chat (ms)", "responses (ms)", "responses − chat (ms)", "goal", "result"], rows_out),
              "",
              f"CPU during the measured phase (% of one core): gateway worker {num(cpu.get('gateway_worker'), 1)}, "
              f"simulator {num(cpu.get('simulator'), 1)}, this client {num(cpu.get('bench_client'), 1)}, other "
              f"processes {num(cpu.get('other_processes'), 1)} (of 200 for 2 cores). Wall time {wall:.1f} s."]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
