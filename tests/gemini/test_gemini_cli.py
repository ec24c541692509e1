"""gemini-cli (the real CLI, pinned) completes a task that needs a tool round trip."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.openai.test_tools import last_body
from tests.tooling import tool_answer

SETTINGS = {
    "privacy": {"usageStatisticsEnabled": False},
    "general": {"enableAutoUpdate": False},
    "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
}


def test_gemini_cli_writes_a_file(gateway, sim, upstream, credential, cli_bin: Path, tmp_path: Path) -> None:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(SETTINGS))
    target = work / "hello.txt"
    sim.script([
        tool_answer(upstream.surface, ("write_file", {"file_path": str(target), "content": "written by gemini\n"}), cps=5000),
        {"text": "Done: hello.txt is written.", "cps": 5000},
    ])
    env = {**os.environ, "HOME": str(home), "GOOGLE_GEMINI_BASE_URL": gateway, "GEMINI_API_KEY": credential}
    run = subprocess.run(
        [str(cli_bin / "gemini"), "-m", "gemini-2.5-flash", "-p", "Create hello.txt containing a greeting.",
         "-o", "json", "--approval-mode", "yolo"],
        cwd=work, env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["response"] == "Done: hello.txt is written."
    assert target.read_text() == "written by gemini\n"
    log = sim.log()
    if upstream.surface == "code":
        assert len(log) == 2 and last_body(sim)["messages"][-1]["content"][0]["type"] == "tool_result"
    else:
        assert len(log) == 2 and "<tool_result" in log[1]["prompt"]
    assert sim.wait_idle(10)["chats_alive"] == 0
