"""Codex CLI (the real CLI, pinned) against the gateway: a plain answer, a command round
trip, and an edit through its freeform apply_patch tool (which Codex offers because the
gateway's model catalogue says so)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gateway.upstream.code_messages import CUSTOM_INPUT_SCHEMA
from tests.tooling import call_block, tool_answer

MODEL = "MiniMax-M3"
#: The provider block of the README, word for word (the base URL filled in).
CONFIG = """model = "{model}"
model_provider = "minimax"

[model_providers.minimax]
name = "MiniMax Free API"
base_url = "{gateway}/v1"
wire_api = "responses"
auth = {{ command = "sh", args = ["-c", "printf %s \\"$MINIMAX_API_KEY\\""] }}
"""
PATCH = """*** Begin Patch
*** Update File: notes.txt
@@
 alpha
-beta
+gamma
*** End Patch
"""


def codex(cli_bin: Path, gateway: str, credential: str, tmp_path: Path, task: str) -> subprocess.CompletedProcess[str]:
    """Run ``codex exec task`` in ``tmp_path/work`` with a fresh HOME; the last message is in ``tmp_path/last.txt``."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir(exist_ok=True)
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    (home / ".codex" / "config.toml").write_text(CONFIG.format(model=MODEL, gateway=gateway))
    env = {**os.environ, "HOME": str(home), "MINIMAX_API_KEY": credential}
    overrides = ["model_providers.minimax.request_max_retries=0", "model_providers.minimax.stream_max_retries=0",
                 "analytics.enabled=false"]
    return subprocess.run(
        [str(cli_bin / "codex"), "exec", "--skip-git-repo-check", "--disable", "plugins",
         "--sandbox", "workspace-write", "-o", str(tmp_path / "last.txt"),
         *(arg for override in overrides for arg in ("-c", override)), task],
        cwd=work, env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )


def last_message(tmp_path: Path) -> str:
    return (tmp_path / "last.txt").read_text().strip()


def code_bodies(sim) -> list[dict]:
    """The code surface's /messages bodies, in order."""
    return [entry["body"] for entry in sim.code_log() if entry["path"].endswith("/messages")]


def tool_results(body: dict) -> list[dict]:
    """The tool_result blocks of a code surface body's last (user) turn."""
    return [block for block in body["messages"][-1]["content"] if block["type"] == "tool_result"]


def test_codex_plain_answer(gateway, sim, upstream, credential, cli_bin: Path, tmp_path: Path) -> None:
    sim.script([{"text": "Hello from MiniMax through Codex.", "cps": 5000}])
    run = codex(cli_bin, gateway, credential, tmp_path, "Say hello.")
    assert run.returncode == 0, run.stderr[-3000:]
    assert last_message(tmp_path) == "Hello from MiniMax through Codex."
    assert "Model metadata" not in run.stderr  # the gateway's catalogue was read
    if upstream.surface == "code":  # Codex's tools go as native tools
        [body] = code_bodies(sim)
        assert "Say hello." in upstream.sent_text(sim) and "apply_patch" in {tool["name"] for tool in body["tools"]}
    else:
        [turn] = sim.log()
        assert "Say hello." in turn["prompt"] and "apply_patch" in turn["prompt"]
    assert sim.wait_idle(10)["chats_alive"] == 0


def test_codex_runs_a_command_and_uses_its_output(gateway, sim, upstream, credential, cli_bin: Path,
                                                  tmp_path: Path) -> None:
    sim.script([
        tool_answer(upstream.surface, ("exec_command", {"cmd": "echo gateway-$((6*7))"}), cps=5000),
        {"text": "The command printed gateway-42.", "cps": 5000},
    ])
    run = codex(cli_bin, gateway, credential, tmp_path, "Run the command and tell me what it printed.")
    assert run.returncode == 0, run.stderr[-3000:]
    assert last_message(tmp_path) == "The command printed gateway-42."
    if upstream.surface == "code":  # the command's output came back as the call's tool_result
        first, second = code_bodies(sim)
        assert "exec_command" in {tool["name"] for tool in first["tools"]}
        [call] = [block for block in second["messages"][-2]["content"] if block["type"] == "tool_use"]
        [result] = tool_results(second)
        assert call["input"]["cmd"] == "echo gateway-$((6*7))" and result["tool_use_id"] == call["id"]
        assert "gateway-42" in str(result["content"])
    else:
        first, second = sim.log()
        assert "exec_command" in first["prompt"]
        assert "<tool_result" in second["prompt"] and "gateway-42" in second["prompt"]  # the shell's output came back


def test_codex_edits_a_file_with_freeform_apply_patch(gateway, sim, upstream, credential, cli_bin: Path,
                                                     tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    target = tmp_path / "work" / "notes.txt"
    target.write_text("alpha\nbeta\n")
    sim.script([
        tool_answer(upstream.surface, ("apply_patch", {"input": PATCH}), cps=5000),
        {"text": "Done: notes.txt now says gamma.", "cps": 5000},
    ])
    run = codex(cli_bin, gateway, credential, tmp_path, "In notes.txt, replace beta with gamma.")
    assert run.returncode == 0, run.stderr[-3000:]
    assert target.read_text() == "alpha\ngamma\n"
    assert last_message(tmp_path) == "Done: notes.txt now says gamma."
    if upstream.surface == "code":  # offered as a freeform tool: one string, the raw patch
        first, second = code_bodies(sim)
        [tool] = [tool for tool in first["tools"] if tool["name"] == "apply_patch"]
        assert tool["input_schema"] == CUSTOM_INPUT_SCHEMA
        assert {"input": PATCH} in [block.get("input") for block in second["messages"][-2]["content"]]
        [result] = tool_results(second)
        assert "incompatible payload" not in str(result["content"])
    else:
        first, second = sim.log()
        assert "`input` is the tool's raw input text" in first["prompt"]  # offered as a custom (freeform) tool
        assert "<tool_result" in second["prompt"] and "incompatible payload" not in second["prompt"]


def test_codex_round_trip_continues_one_upstream_chat(gateway_factory, sim, credential, cli_bin: Path,
                                                      tmp_path: Path, web_only) -> None:
    # The web surfaces' kept chat; the code surface keeps nothing upstream (every turn is whole).
    gateway = gateway_factory(GATEWAY_CONVERSATION_TTL="600")
    sim.script([
        {"text": call_block(("exec_command", {"cmd": "echo gateway-$((6*7))"})), "cps": 5000},
        {"text": "The command printed gateway-42.", "cps": 5000},
    ])
    run = codex(cli_bin, gateway, credential, tmp_path, "Run the command and tell me what it printed.")
    assert run.returncode == 0, run.stderr[-3000:]
    assert last_message(tmp_path) == "The command printed gateway-42."
    first, second = sim.log()
    assert second["chat_id"] == first["chat_id"]  # only the tool's output went upstream
    assert "# Tools" not in second["prompt"] and len(second["prompt"]) < len(first["prompt"]) / 4
    assert "gateway-42" in second["prompt"]
