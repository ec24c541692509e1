"""Kept chats outlive no gateway: a graceful stop alone on its state deletes them; one
sharing its state leaves them to the other's sweep; after a crash the next gateway on the
same (default, lasting) state deletes them once their idle time is up; a chat kept by a
worker that was killed is continued by the next one, then deleted once idle."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import pytest
import requests

from tests.bench.common import child_pids
from tests.conftest import GATEWAYS
from tests.servers import Process, start_gateway
from tests.simulator.control import SimulatorControl

# Chats kept upstream are the web surfaces' (the code surface keeps nothing upstream).
pytestmark = [pytest.mark.timeout(240), pytest.mark.surfaces("matrix", "session")]

TTL, SWEEP = 6.0, 1.0
#: The README's bound on a kept chat: idle time, one sweep interval, and this for the sweep itself.
SWEEP_SLACK = 3.0
#: Beyond the bound when a new gateway must start first (a loaded machine starts slowly).
START_SLACK = 15.0


def keeping(data: Path, ttl: float = TTL) -> dict[str, str]:
    return {"GATEWAY_DATA_DIR": str(data), "GATEWAY_CONVERSATION_TTL": str(ttl),
            "GATEWAY_SWEEP_INTERVAL": str(SWEEP)}


def gateway(simulator_url: str, surface_env: dict[str, str], name: str, env: dict[str, str]) -> tuple[Process, str]:
    proc, url = start_gateway(simulator_url, f"gateway-{surface_env['MINIMAX_SURFACE']}-{name}", {**surface_env, **env})
    GATEWAYS.append(proc)
    return proc, url


def two_answers(url: str, credential: str, sim: SimulatorControl) -> float:
    """Two conversations answered (and kept); returns when the second ended."""
    sim.script([{"text": "first kept"}, {"text": "second kept"}])
    for question in ("one?", "two?"):
        response = requests.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {credential}"},
                                 json={"model": "m", "messages": [{"role": "user", "content": question}]}, timeout=30)
        assert response.status_code == 200, response.text
    answered = time.monotonic()
    assert sim.stats()["chats_alive"] == 2  # kept for their next turns
    return answered


def wait_no_chats(sim: SimulatorControl, deadline: float, what: str) -> None:
    while sim.stats()["chats_alive"]:
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_a_graceful_stop_deletes_the_kept_chats_and_a_restart_starts_clean(
        simulator_url, surface_env, sim, credential, tmp_path) -> None:
    data = tmp_path / "data"
    proc, url = gateway(simulator_url, surface_env, "restart-graceful", keeping(data, ttl=600))
    two_answers(url, credential, sim)
    proc.stop()  # SIGTERM; returns once the master exited
    assert sim.stats()["chats_alive"] == 0, proc.log()
    assert "deleted 2 kept upstream conversation(s) on stop" in proc.log()
    assert stat.S_IMODE((data / "state.db").stat().st_mode) == 0o600
    again, url = gateway(simulator_url, surface_env, "restart-graceful-again", keeping(data, ttl=600))
    try:
        assert requests.get(url + "/healthz", timeout=10).json()["state"] == "lasting"
        assert two_answers(url, credential, sim)  # the new master on the same state works as before
    finally:
        again.stop()
    assert sim.stats()["chats_alive"] == 0


def test_the_chats_kept_by_a_gateway_that_died_are_deleted_by_the_next_one(
        simulator_url, surface_env, sim, credential, tmp_path) -> None:
    data = tmp_path / "data"
    proc, url = gateway(simulator_url, surface_env, "restart-crash", keeping(data))
    answered = two_answers(url, credential, sim)
    os.killpg(proc.proc.pid, signal.SIGKILL)  # the master and its workers: nothing cleans up
    proc.stop()
    assert sim.stats()["chats_alive"] == 2
    again, _ = gateway(simulator_url, surface_env, "restart-crash-again", keeping(data))
    restarted = time.monotonic()
    try:
        due = max(answered + TTL, restarted)
        wait_no_chats(sim, due + SWEEP + SWEEP_SLACK + START_SLACK, "the next gateway did not delete the kept chats")
        assert "swept" in again.log()
    finally:
        again.stop()


def test_a_gateway_sharing_its_state_leaves_the_kept_chats_to_the_others_sweep(
        simulator_url, surface_env, sim, credential, tmp_path) -> None:
    data = tmp_path / "data"
    other, _ = gateway(simulator_url, surface_env, "shared-other", keeping(data))
    proc, url = gateway(simulator_url, surface_env, "shared-stopping", keeping(data))
    try:
        time.sleep(1)  # both have beaten at least once
        answered = two_answers(url, credential, sim)
        proc.stop()
        assert sim.stats()["chats_alive"] == 2, "a gateway sharing its state deleted chats still kept"
        assert "leaving the kept chats to the sweep of 1 other gateway(s)" in proc.log()
        wait_no_chats(sim, answered + TTL + SWEEP + SWEEP_SLACK + START_SLACK, "the other gateway did not sweep them")
    finally:
        other.stop()


def test_a_chat_kept_by_a_worker_that_was_killed_is_continued_then_deleted(
        simulator_url, surface_env, sim, credential, tmp_path) -> None:
    proc, url = gateway(simulator_url, surface_env, "kept-worker-killed", keeping(tmp_path / "data"))
    try:
        sim.script([{"text": "first"}, {"text": "second"}])
        question = [{"role": "user", "content": "go"}]

        def post(messages: list[dict[str, str]]) -> dict:
            response = requests.post(url + "/v1/chat/completions", json={"model": "m", "messages": messages},
                                     headers={"Authorization": f"Bearer {credential}"}, timeout=30)
            assert response.status_code == 200, response.text
            return response.json()["choices"][0]["message"]

        answer = post(question)
        for worker in child_pids(proc.proc.pid):  # the worker that kept it, whichever it was
            os.kill(worker, signal.SIGKILL)
        proc.wait_http(url + "/ping")  # the master starts a new worker
        post([*question, {"role": "assistant", "content": answer["content"]}, {"role": "user", "content": "more"}])
        log = sim.log()
        assert log[1]["chat_id"] == log[0]["chat_id"] and log[1]["prompt"] == "more"
        answered = time.monotonic()
        wait_no_chats(sim, answered + TTL + SWEEP + SWEEP_SLACK, "the kept chat was not deleted once idle")
    finally:
        proc.stop()


def test_a_gateway_that_cannot_keep_its_state_says_so(simulator_url, surface_env, tmp_path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a folder below a file cannot be made, not even by root
    proc, url = gateway(simulator_url, surface_env, "state-temporary", {"GATEWAY_DATA_DIR": str(blocked / "data")})
    try:
        health = requests.get(url + "/healthz", timeout=10).json()
        assert health["state"] == "temporary" and str(blocked / "data") in health["warnings"][0]
        assert "the shared state is temporary" in proc.log()
    finally:
        proc.stop()
