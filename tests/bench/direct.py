"""The direct signed client: the yardstick the gateway's non-stream figures are divided by.

What a program that signs its own calls would do for one non-stream answer, without the
gateway in between: ``gateway.upstream``'s own :class:`UpstreamClient` and
:class:`MatrixDriver` (one client per process, shared by every thread, as one worker
shares it), ``send_msg`` then polls until the chat is finished. The chat's deletion goes
to one background thread, as the gateway's janitor does it off the reply's path. The
same simulator, the same accounts, the same concurrency as the gateway's run.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from typing import Any

from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.upstream.client import UpstreamClient
from gateway.upstream.conversation import Conversation, TurnFailed, TurnFinished, TurnInput, UpText
from gateway.upstream.credentials import Credential, parse_one
from gateway.upstream.matrix import MatrixDriver

MODEL = "MiniMax-M2"
JOIN_TIMEOUT_S = 300.0
BARRIER_TIMEOUT_S = 60.0


def one_answer(driver: MatrixDriver, cred: Credential, prompt: str,
               deletions: queue.Queue[tuple[Credential, Conversation]]) -> dict[str, Any]:
    """Send, poll to the end; returns the row (round trip, text, error)."""
    row: dict[str, Any] = {"error": None}
    t0 = time.time()
    try:
        turn = driver.send(cred, Conversation("matrix"), TurnInput(prompt, MODEL))
        parts = []
        for event in turn.events():
            if isinstance(event, UpText):
                parts.append(event.text)
            elif isinstance(event, TurnFailed):
                row["error"] = type(event.error).__name__
            elif isinstance(event, TurnFinished):
                break
        row["text"] = "".join(parts)
        deletions.put((cred, turn.conversation))
    except GatewayError as error:
        row["error"] = type(error).__name__
    row["rtt"] = time.time() - t0
    return row


def run_direct(sim_url: str, credentials: list[str], clients: int, requests_per_client: int,
               warmup: int) -> dict[str, Any]:
    """``clients`` threads, one account each, ``requests_per_client`` answers back to back."""
    settings = dataclasses.replace(Settings.from_env().upstream(), base_url=sim_url)
    client = UpstreamClient(settings)
    driver = MatrixDriver(client, settings)
    deletions: queue.Queue[tuple[Credential, Conversation]] = queue.Queue()
    janitor = threading.Thread(target=_delete_all, args=(driver, deletions), daemon=True)
    janitor.start()
    rows: list[list[dict[str, Any]]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1, timeout=BARRIER_TIMEOUT_S)

    def worker(index: int) -> None:
        cred = parse_one(credentials[index])
        for w in range(warmup):
            one_answer(driver, cred, f"direct warm {index} {w}", deletions)
        barrier.wait()
        for r in range(requests_per_client):
            rows[index].append(one_answer(driver, cred, f"direct {clients} {index} {r}", deletions))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.monotonic()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    wall = time.monotonic() - started
    deletions.put(None)  # type: ignore[arg-type]
    janitor.join(JOIN_TIMEOUT_S)
    client.close()
    flat = [row for per_client in rows for row in per_client]
    return {"clients": clients, "rows": flat, "wall_s": wall,
            "errors": sum(1 for row in flat if row["error"] or not row.get("text")),
            "throughput_rps": len(flat) / wall if wall > 0 else None}


def _delete_all(driver: MatrixDriver, deletions: queue.Queue[tuple[Credential, Conversation]]) -> None:
    while (item := deletions.get()) is not None:
        try:
            driver.discard(*item)
        except GatewayError:
            pass  # the simulator keeps the chat: it does not change the figures
