"""Claude Code (the real CLI, pinned) completes a task that needs a tool round trip."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.tooling import call_block


def test_claude_code_writes_a_file(gateway, sim, credential, cli_bin: Path, tmp_path: Path) -> None:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    target = work / "hello.txt"
    sim.script([
        {"text": call_block(("Write", {"file_path": str(target), "content": "written by claude\n"})), "cps": 5000},
        {"text": "Done: hello.txt is written.", "cps": 5000},
    ])
    env = {
        **os.environ, "HOME": str(home), "ANTHROPIC_BASE_URL": gateway, "ANTHROPIC_AUTH_TOKEN": credential,
        "ANTHROPIC_MODEL": "claude-opus-4-8[1m]", "ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-haiku-4-5",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS": "1",
    }
    run = subprocess.run(
        [str(cli_bin / "claude"), "-p", "Create hello.txt containing a greeting.", "--output-format", "json",
         "--allowedTools", "Write"],
        cwd=work, env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["is_error"] is False and result["result"] == "Done: hello.txt is written."
    assert target.read_text() == "written by claude\n"
    log = sim.log()
    assert len(log) == 2
    assert "Write" in log[0]["prompt"] and "<tool_result" in log[1]["prompt"]
    assert sim.wait_idle(10)["chats_alive"] == 0
