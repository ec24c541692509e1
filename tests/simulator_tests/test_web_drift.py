"""The simulator's web drift knobs (tests/simulator/web_drift.py): rotated signing
constants verified by the gate and shown by the served page and bundle, the tool status
forms of a session stream, uploads/prepare missing or refused and the legacy STS
attachment form."""
# ruff: noqa: F811  (the fixtures imported from test_session are parameters here)

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from tests.media_files import png
from tests.simulator.bundle import VENDOR_SCRIPT
from tests.simulator_tests.helpers import assert_rejected, script, stats
from tests.simulator_tests.test_session import (  # noqa: F401  (the fake-clock app fixture)
    app,
    chunks,
    config,
    frames,
    open_session,
    send_message,
    up,
)

ROTATED = {"bundle_salt": "Zq9!rotated#Salt%2026", "bundle_yy_suffix": "tailv", "bundle_version_code": "33333"}


def page_scripts(control: Any) -> list[str]:
    page = control.get("/").get_data(as_text=True)
    return re.findall(r'<script[^>]+src="([^"]+)"', page)


def test_the_page_names_its_scripts_and_the_bundle_holds_the_constants(control: Any) -> None:
    scripts = page_scripts(control)
    assert scripts[0] == f"/static/js/{VENDOR_SCRIPT}" and scripts[1].startswith("/static/js/main.")
    bundle = control.get(scripts[1]).get_data(as_text=True)
    assert "I*7Cf%WZ#S&%1RlZJ&C2${" in bundle and "toString())}ooui`" in bundle
    assert 'version_code:"22201"' in bundle
    config(control, **ROTATED)
    rotated = page_scripts(control)[1]
    assert rotated != scripts[1] and control.get(scripts[1]).status_code == 404  # a new build
    bundle = control.get(rotated).get_data(as_text=True)
    assert all(value in bundle for value in ROTATED.values())
    assert stats(control)["requests"]["/static/js/*"] == 3


def test_rotated_constants_are_what_the_gate_verifies(up: Any, control: Any) -> None:
    assert up.call("GET", "/v1/api/user/info").status == 200
    config(control, bundle_salt=ROTATED["bundle_salt"])
    assert_rejected(up.call("GET", "/v1/api/user/info"), control, "bad_signature", 400)
    config(control, bundle_salt="I*7Cf%WZ#S&%1RlZJ&C2", bundle_yy_suffix="tailv")
    assert_rejected(up.call("GET", "/v1/api/user/info"), control, "bad_yy", 400)


def test_a_stale_version_code_is_only_a_warning(up: Any, control: Any) -> None:
    config(control, bundle_version_code="33333")
    assert up.call("GET", "/v1/api/user/info").status == 200
    assert stats(control)["warnings"]["stale_version_code"] == 1


def test_bad_drift_values_are_refused(control: Any) -> None:
    for change in ({"bundle_salt": "short"}, {"bundle_salt": "has`backtick"}, {"bundle_yy_suffix": "a b"},
                   {"bundle_version_code": "v1"}, {"tool_status_form": "emoji"}, {"uploads_prepare": "maybe"}):
        assert control.post("/_sim/config", json=change).status_code == 400, change


def test_tool_status_as_numbers(up: Any, control: Any) -> None:
    config(control, linger_seconds=0, tool_status_form="number")
    script(control, [{"text": "found it", "tool_steps": [{"name": "web_search", "content": "[]", "seconds": 0.4}]}])
    items = frames(send_message(up, open_session(up), "search please").raw)
    calls = [c["tool_calls"][0] for c in chunks(items) if "tool_calls" in c]
    assert [c["tool_call_status"] for c in calls] == [1, 2]
    assert "tool_call_result_data" not in calls[0] and calls[1]["tool_call_result_data"] == "[]"


def test_reset_restores_the_captured_build(app: Flask, control: Any) -> None:
    config(control, **ROTATED, tool_status_form="number")
    control.post("/_sim/reset", json={})
    current = control.get("/_sim/config").get_json()
    assert current["bundle_salt"] == "I*7Cf%WZ#S&%1RlZJ&C2" and current["tool_status_form"] == "word"


def sts_upload(uploader: Any, data: bytes) -> str:
    """The legacy STS steps; the ossPath policy_callback answers."""
    policy, name = uploader.policy(), "f0f0f0f0-0000-4000-8000-000000000001.png"
    assert uploader.put(policy, data, name=name).status == 200
    reply = uploader.callback(policy, name, data).json()
    assert reply["data"]["fileID"] and reply["data"]["ossPath"] == f"{policy['dir']}/{name}"
    return reply["data"]["ossPath"]


def sts_entry(oss_path: str, kind: str = "image", name: str = "cat.png") -> dict[str, str]:
    return {"type": kind, "file_path": name, "file_name": name, "mime_type": "image/png", "data_url": oss_path}


def test_an_image_attached_by_its_oss_path(up: Any, control: Any, uploader: Any) -> None:
    config(control, linger_seconds=0)
    oss_path = sts_upload(uploader, png())
    reply = send_message(up, open_session(up), "what is this?", attachments=[sts_entry(oss_path)])
    assert reply.status == 200 and frames(reply.raw)[-1] == "[DONE]"
    (detail,) = control.get("/_sim/log").get_json()[-1]["attachment_details"]
    assert detail["oss_path"] == oss_path and detail["sniffed_image"] == "image/png" and detail["file_name"] == "cat.png"


def test_a_foreign_or_fake_oss_path_is_refused(up: Any, control: Any, uploader: Any) -> None:
    oss_path = sts_upload(uploader, png())
    session = open_session(up)
    for entry in (sts_entry(oss_path + "x"), {**sts_entry(oss_path), "cdn_url": "x"}, sts_entry(oss_path, "video")):
        reply = send_message(up, session, "x", attachments=[entry])
        assert reply.status in (200, 400) and b"[DONE]" not in reply.raw, entry


@pytest.mark.parametrize(("mode", "status"), [("missing", 200), ("refused", 403)])
def test_uploads_prepare_missing_or_refused(up: Any, control: Any, mode: str, status: int) -> None:
    open_session(up)
    config(control, uploads_prepare=mode)
    body = {"purpose": 1, "file_name": "a.png", "mime_type": "image/png", "size_bytes": 3}
    reply = up.call("POST", "/archon/api/v1/uploads/prepare", body)
    assert reply.status == status
    if mode == "missing":
        assert reply.raw.lstrip().startswith(b"<!DOCTYPE html>")
    else:
        assert reply.json()["base_resp"]["status_code"] != 0
