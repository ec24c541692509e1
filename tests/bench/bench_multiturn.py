"""Native multi-turn benchmark: upstream bytes and first-token time per turn, folding vs
continuing, over a 20-turn agent session with a 74 KB system prompt and 24 tools.

Each mode runs the same scripted session on a fresh stack: ``fold`` has
``GATEWAY_CONVERSATION_TTL=0`` (every turn re-sends the transcript), ``continue`` keeps
the upstream chat. Every third turn is a tool round trip. Per turn it records the bytes
of the prompt the upstream received (``/_sim/log``), the client's request body, the
client's time to the first content (text or tool call) and the gateway-added part of it
(client time minus the simulator's own send → first-content time).

    python -m tests.bench.bench_multiturn            # ~0.5 min
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

import requests

from tests.bench.common import MODEL, WEB_SURFACES, Stack, environment, ms, percentile, table, write_results
from tests.tooling import call_block

TURNS = 20
SYSTEM_BYTES = 74 * 1024
TOOLS = 24
TOOL_EVERY = 3


def system_prompt() -> str:
    line = "You are an agent working in a repository; follow the house rules exactly. "
    return (line * (SYSTEM_BYTES // len(line) + 1))[:SYSTEM_BYTES]


def tools() -> list[dict[str, Any]]:
    schema = {"type": "object", "properties": {"path": {"type": "string"}, "text": {"type": "string"}},
              "required": ["path"]}
    return [{"type": "function", "function": {"name": f"tool_{i}", "description": f"Tool number {i}.",
                                              "parameters": schema}} for i in range(TOOLS)]


def script(turn: int) -> dict[str, Any]:
    if turn % TOOL_EVERY == 0:
        return {"text": call_block(("tool_1", {"path": f"src/file_{turn}.py"})), "cps": 20000}
    return {"text": f"Turn {turn} done: the change is in place and the tests pass.", "cps": 20000}


def first_content(response: requests.Response) -> tuple[float | None, dict[str, Any]]:
    """Read an OpenAI stream: when the first text or tool call arrived, and the message."""
    first: float | None = None
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    for line in response.iter_lines():
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        for choice in json.loads(line[6:]).get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content") or delta.get("tool_calls"):
                first = first or time.time()
            text.append(delta.get("content") or "")
            for part in delta.get("tool_calls") or ():  # the id first, then the arguments in pieces
                call = calls.setdefault(part["index"], {"type": "function", "function": {"name": "", "arguments": ""}})
                call["id"] = part.get("id") or call.get("id")
                function = part.get("function") or {}
                call["function"]["name"] += function.get("name") or ""
                call["function"]["arguments"] += function.get("arguments") or ""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text)}
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    return first, message


def run_session(stack: Stack) -> list[dict[str, Any]]:
    assert stack.sim is not None
    credential = stack.sim.add_accounts(1)[0]["credential"]
    stack.sim.script([script(turn) for turn in range(1, TURNS + 1)])
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt()}]
    rows = []
    http = requests.Session()
    for turn in range(1, TURNS + 1):
        if messages[-1]["role"] != "assistant" or "tool_calls" not in messages[-1]:
            messages.append({"role": "user", "content": f"Step {turn}: {uuid.uuid4().hex} " + "details " * 30})
        body = json.dumps({"model": MODEL, "messages": messages, "tools": tools(), "stream": True})
        sent = time.time()
        with http.post(f"{stack.gw_url}/v1/chat/completions", data=body, timeout=60, stream=True,
                       headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/json"}) as reply:
            first, message = first_content(reply)
        messages.append(message)
        for call in message.get("tool_calls") or ():
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": "ok " * 100})
        entry = stack.sim.log()[-1]
        upstream = entry["t_first_content"] - entry["t_send"] if entry["t_first_content"] else None
        client = first - sent if first else None
        rows.append({"turn": turn, "upstream_prompt_bytes": len(entry["prompt"].encode()),
                     "client_body_bytes": len(body), "chat_id": entry["chat_id"], "ttft_s": client,
                     "added_ttft_s": client - upstream if client is not None and upstream is not None else None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--surface", choices=WEB_SURFACES, default="matrix")
    args = parser.parse_args()
    modes = {"fold": "0", "continue": "600"}
    results: dict[str, list[dict[str, Any]]] = {}
    for mode, ttl in modes.items():
        with Stack(f"multiturn-{mode}", {"GATEWAY_CONVERSATION_TTL": ttl}, surface=args.surface) as stack:
            results[mode] = run_session(stack)
    print(report(results))
    write_results(f"bench_multiturn-surface-{args.surface}" if args.surface != "matrix" else "bench_multiturn",
                  {"environment": environment(), "results": results})


def report(results: dict[str, list[dict[str, Any]]]) -> str:
    fold, cont = results["fold"], results["continue"]
    rows = [(f["turn"], f["upstream_prompt_bytes"], c["upstream_prompt_bytes"], ms(f["added_ttft_s"]),
             ms(c["added_ttft_s"])) for f, c in zip(fold, cont, strict=True)]
    lines = [table(["turn", "fold: upstream bytes", "continue: upstream bytes", "fold: added TTFT",
                    "continue: added TTFT"], rows), ""]
    for mode, data in results.items():
        sizes = [row["upstream_prompt_bytes"] for row in data]
        added = [row["added_ttft_s"] for row in data[1:]]
        lines.append(f"{mode}: {sum(sizes)} upstream bytes in all, turns 2-{TURNS} from {min(sizes[1:])} to "
                     f"{max(sizes[1:])} bytes, {len({row['chat_id'] for row in data})} upstream chat(s), "
                     f"added TTFT p50 {ms(percentile(added, 50))} (turns 2-{TURNS})")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
