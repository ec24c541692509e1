"""Claude Code (the real CLI, pinned) completes tasks that need tool round trips: folded
into a new chat each turn, or (keeping conversations) all in one upstream chat."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.openai.test_tools import last_body
from tests.tooling import tool_answer


def claude(cli_bin: Path, gateway: str, credential: str, tmp_path: Path, task: str,
           tools: str) -> subprocess.CompletedProcess[str]:
    """Run ``claude -p task`` in ``tmp_path/work`` against the gateway."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    env = {
        **os.environ, "HOME": str(home), "ANTHROPIC_BASE_URL": gateway, "ANTHROPIC_AUTH_TOKEN": credential,
        "ANTHROPIC_MODEL": "claude-opus-4-8[1m]", "ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-haiku-4-5",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS": "1",
    }
    return subprocess.run(
        [str(cli_bin / "claude"), "-p", task, "--output-format", "json", "--allowedTools", tools],
        cwd=work, env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )


def test_claude_code_writes_a_file(gateway, sim, upstream, credential, cli_bin: Path, tmp_path: Path) -> None:
    target = tmp_path / "work" / "hello.txt"
    sim.script([
        tool_answer(upstream.surface, ("Write", {"file_path": str(target), "content": "written by claude\n"}), cps=5000),
        {"text": "Done: hello.txt is written.", "cps": 5000},
    ])
    run = claude(cli_bin, gateway, credential, tmp_path, "Create hello.txt containing a greeting.", "Write")
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["is_error"] is False and result["result"] == "Done: hello.txt is written."
    assert target.read_text() == "written by claude\n"
    log = sim.log()
    assert len(log) == 2
    if upstream.surface == "code":  # Claude Code's own request, almost verbatim: tools, system blocks
        body = last_body(sim)
        assert "Write" in [tool["name"] for tool in body["tools"]]
        assert body["messages"][-1]["content"][0]["type"] == "tool_result"
        assert isinstance(body["system"], list) and body["system"]
        assert sim.code_stats()["rejections"] == {}
    else:
        assert "Write" in log[0]["prompt"] and "<tool_result" in log[1]["prompt"]
    assert sim.wait_idle(10)["chats_alive"] == 0


def test_claude_code_tool_round_trips_run_in_one_upstream_chat(gateway_factory, sim, web_only, upstream, credential,
                                                               cli_bin: Path, tmp_path: Path) -> None:
    gateway = gateway_factory(GATEWAY_CONVERSATION_TTL="600")
    work = tmp_path / "work"
    files = [work / f"part{i}.txt" for i in (1, 2, 3)]
    sim.script([
        *(tool_answer(upstream.surface, ("Write", {"file_path": str(path), "content": f"part {i}\n"}), cps=5000)
          for i, path in enumerate(files, 1)),
        {"text": "Done: three parts written.", "cps": 5000},
    ])
    run = claude(cli_bin, gateway, credential, tmp_path, "Write part1.txt, part2.txt and part3.txt, one by one.",
                 "Write")
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["result"] == "Done: three parts written."
    assert [path.read_text() for path in files] == ["part 1\n", "part 2\n", "part 3\n"]
    turns = sim.log()
    main = [entry for entry in turns if entry["chat_id"] == turns[0]["chat_id"]]
    assert len(turns) == len(main) == 4, [(e["chat_id"], e["prompt"][:80]) for e in turns]
    first = len(main[0]["prompt"])
    for entry in main[1:]:
        assert "<tool_result" in entry["prompt"] and "# Tools" not in entry["prompt"]
        assert len(entry["prompt"]) < first / 4, "a continuing turn re-sent the transcript"
