"""Tests of the simulator's files: request_policy, the OSS PUT (header signing V1), policy_callback,
attachments.

Role: `tests/simulator/files.py` and `oss.py` through the HTTP surface.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from email.utils import formatdate
from typing import Any

import pytest
from flask import Flask

from tests.simulator import SimSettings, create_simulator_app
from tests.simulator_tests.helpers import (
    FILE_NOT_FOUND,
    FILE_NOT_IMAGE,
    IMAGE_MIMES,
    IMAGES,
    INVALID_PARAMS,
    UPLOAD_NOT_FOUND,
    UPLOAD_SIZE_MISMATCH,
    FakeClock,
    Uploader,
    Upstream,
    _other_secret,
    add_accounts,
    attach,
    flask_put,
    flask_transport,
    oss_code,
    sim_log,
    stats,
)

# --- Files: request_policy, OSS PUT (header signing V1), policy_callback -----------------------------

def test_upload_flow_and_image_attachment(up: Upstream, uploader: Uploader, control: Any,
                                          clock: FakeClock) -> None:
    policy = uploader.policy()
    assert set(policy) == {"accessKeyId", "accessKeySecret", "securityToken", "bucketName",
                           "dir", "endpoint"}
    assert policy["endpoint"] == "http://localhost/_oss"
    day = time.strftime("%Y%m%d", time.gmtime(clock.now))
    assert policy["dir"] == f"matrix/{day}/{up.account['real_user_id']}"
    again = uploader.policy()
    assert again["accessKeyId"] != policy["accessKeyId"]
    assert again["securityToken"] != policy["securityToken"]
    name = f"{uuid.uuid4()}.png"
    stored = uploader.put(policy, IMAGES["png"], name=name)
    assert stored.status == 200 and stored.raw == b""
    assert stored.headers["ETag"] == f'"{hashlib.md5(IMAGES["png"]).hexdigest().upper()}"'
    reply = uploader.callback(policy, name, IMAGES["png"])
    file_id = reply.json()["data"]["fileID"]
    assert isinstance(file_id, str) and file_id.isdigit() and int(file_id) > 2**53
    assert uploader.callback(policy, name, IMAGES["png"]).json()["data"]["fileID"] == file_id
    assert up.send("look", attachments=[attach(file_id)]).code == 0
    entry = sim_log(control)[0]
    assert entry["attachments"] == [attach(file_id)]
    assert entry["attachment_details"] == [{
        "file_type": 2, "file_id": file_id, "file_name": "a.png", "size": len(IMAGES["png"]),
        "sha256": hashlib.sha256(IMAGES["png"]).hexdigest(), "mime_type": "image/png",
        "sniffed_image": "image/png", "origin_file_name": "original.png"}]
    current = stats(control)
    assert (current["uploads"], current["upload_bytes"], current["files"],
            current["objects"]) == (1, len(IMAGES["png"]), 1, 1)
    listed = control.get("/_sim/files").get_json()["files"]
    assert listed[0]["key"] == f"{policy['dir']}/{name}" and listed[0]["file_id"] == file_id
    assert listed[0]["account"] == up.account["real_user_id"]
    assert listed[0]["content_type"] == "image/png" and current["rejections"] == {}


@pytest.mark.parametrize("mistake, status, code, reason", [
    ("wrong_secret", 403, "SignatureDoesNotMatch", "oss_bad_signature"),
    ("unsigned_oss_header", 403, "SignatureDoesNotMatch", "oss_bad_signature"),
    ("signed_other_type", 403, "SignatureDoesNotMatch", "oss_bad_signature"),
    ("wrong_token", 403, "InvalidSecurityToken", "oss_bad_token"),
    ("no_token", 403, "InvalidSecurityToken", "oss_bad_token"),
    ("unknown_key_id", 403, "InvalidAccessKeyId", "oss_unknown_key"),
    ("no_authorization", 403, "AccessDenied", "oss_no_authorization"),
    ("expired_credentials", 403, "SecurityTokenExpired", "oss_token_expired"),
    ("stale_date", 403, "RequestTimeTooSkewed", "oss_date_skew"),
    ("iso_date", 403, "AccessDenied", "oss_bad_date"),
    ("outside_dir", 403, "AccessDenied", "oss_key_outside_dir"),
    ("not_uuid_name", 400, "InvalidObjectName", "oss_bad_key"),
    ("other_bucket", 404, "NoSuchBucket", "oss_bad_bucket"),
    ("md5_mismatch", 400, "InvalidDigest", "oss_bad_md5"),
])
def test_oss_put_rejections(uploader: Uploader, control: Any, clock: FakeClock, mistake: str,
                            status: int, code: str, reason: str) -> None:
    policy = uploader.policy()
    data = IMAGES["png"]
    options: dict[str, Any] = {
        "wrong_secret": {"secret": _other_secret(policy)},
        "unsigned_oss_header": {"headers": lambda h: {**h, "x-oss-meta-note": "added"}},
        "signed_other_type": {"headers": lambda h: {**h, "Content-Type": "image/jpeg"}},
        "wrong_token": {"signed": lambda h: {**h, "x-oss-security-token": "CAISnope"}},
        "no_token": {"signed": lambda h: {k: v for k, v in h.items()
                                          if k != "x-oss-security-token"}},
        "unknown_key_id": {"headers": lambda h: {
            **h, "Authorization": h["Authorization"].replace("STS.", "STS.X")}},
        "no_authorization": {"headers": lambda h: {k: v for k, v in h.items()
                                                   if k != "Authorization"}},
        "stale_date": {"date": formatdate(clock.now - 16 * 60, usegmt=True)},
        "iso_date": {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now))},
        "outside_dir": {"key": f"matrix/other/{uuid.uuid4()}.png"},
        "not_uuid_name": {"name": "photo.png"},
        "other_bucket": {"bucket": "someone-else"},
        "md5_mismatch": {"signed": lambda h: {
            **h, "Content-MD5": base64.b64encode(hashlib.md5(b"x").digest()).decode()}},
    }.get(mistake, {})
    if mistake == "expired_credentials":
        clock.advance(15 * 60 + 1)
    reply = uploader.put(policy, data, **options)
    assert reply.status == status, reply.raw
    assert reply.raw.startswith(b"<?xml") and oss_code(reply) == code
    assert stats(control)["rejections"] == {reason: 1}
    assert stats(control)["uploads"] == 0 and control.get("/_sim/files").get_json()["files"] == []


def test_oss_signature_error_shows_string_to_sign(uploader: Uploader) -> None:
    policy = uploader.policy()
    reply = uploader.put(policy, IMAGES["png"], secret=_other_secret(policy))
    assert b"<StringToSign>PUT\n" in reply.raw and b"x-oss-security-token:CAIS" in reply.raw


def test_oss_put_without_content_md5_and_type(uploader: Uploader, control: Any) -> None:
    policy = uploader.policy()
    reply = uploader.put(policy, b"plain bytes", signed=lambda h: {
        k: v for k, v in h.items() if k not in ("Content-MD5", "Content-Type")})
    assert reply.status == 200 and stats(control)["upload_bytes"] == len(b"plain bytes")


def test_oss_put_over_the_size_limit_is_413(clock: FakeClock) -> None:
    small = create_simulator_app(SimSettings(seed=7, clock=clock, max_upload_bytes=16))
    account = add_accounts(small.test_client())[0]
    uploader = Uploader(Upstream(flask_transport(small), account, clock), flask_put(small))
    policy = uploader.policy()
    assert uploader.put(policy, b"x" * 16, ext="txt", mime="text/plain").status == 200
    reply = uploader.put(policy, b"x" * 17, ext="txt", mime="text/plain")
    assert reply.status == 413 and oss_code(reply) == "EntityTooLarge"


def test_oss_credentials_of_one_account_cannot_register_for_another(
        app: Flask, uploader: Uploader, control: Any, clock: FakeClock) -> None:
    policy, name = uploader.policy(), f"{uuid.uuid4()}.png"
    assert uploader.put(policy, IMAGES["png"], name=name).status == 200
    other = Uploader(Upstream(flask_transport(app), add_accounts(control)[0], clock),
                     flask_put(app))
    reply = other.callback(policy, name, IMAGES["png"])
    assert reply.json()["statusInfo"]["code"] == UPLOAD_NOT_FOUND


@pytest.mark.parametrize("changes, code", [
    ({"size": "1"}, UPLOAD_SIZE_MISMATCH),
    ({"fileName": f"{uuid.uuid4()}.png"}, UPLOAD_NOT_FOUND),
    ({"dir": "matrix/19700101/1"}, UPLOAD_NOT_FOUND),
    ({"bucketName": "elsewhere"}, UPLOAD_NOT_FOUND),
    ({"endpoint": "https://oss-cn-hangzhou.aliyuncs.com"}, UPLOAD_NOT_FOUND),
])
def test_policy_callback_rejections(uploader: Uploader, control: Any, changes: dict[str, Any],
                                    code: int) -> None:
    policy, name = uploader.policy(), f"{uuid.uuid4()}.png"
    assert uploader.put(policy, IMAGES["png"], name=name).status == 200
    reply = uploader.callback(policy, name, IMAGES["png"], **changes)
    assert reply.status == 200 and reply.json()["statusInfo"]["code"] == code
    assert reply.json()["data"] is None and stats(control)["files"] == 0


@pytest.mark.parametrize("changes", [{"size": 10}, {"size": ""}, {"mimeType": "png"},
                                     {"originFileName": None}])
def test_policy_callback_malformed(uploader: Uploader, changes: dict[str, Any]) -> None:
    policy, name = uploader.policy(), f"{uuid.uuid4()}.png"
    uploader.put(policy, IMAGES["png"], name=name)
    reply = uploader.callback(policy, name, IMAGES["png"], **changes)
    assert reply.status == 400 and reply.json()["base_resp"]["status_code"] == INVALID_PARAMS


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_image_types_are_sniffed(up: Upstream, uploader: Uploader, control: Any,
                                 kind: str) -> None:
    file_id = uploader.upload(IMAGES[kind], ext=kind, mime=f"image/{kind}")
    assert up.send("see", attachments=[attach(file_id, 2, f"x.{kind}")]).code == 0
    assert sim_log(control)[0]["attachment_details"][0]["sniffed_image"] == IMAGE_MIMES[kind]


def test_attachment_checks(app: Flask, up: Upstream, uploader: Uploader, control: Any,
                           clock: FakeClock) -> None:
    text_id = uploader.upload(b"%PDF-1.4 not an image", ext="pdf", mime="application/pdf")
    png_id = uploader.upload(IMAGES["png"])
    assert up.send("x", attachments=[attach(text_id, 2)]).code == FILE_NOT_IMAGE
    assert up.send("x", attachments=[attach("123456789")]).code == FILE_NOT_FOUND
    other = Uploader(Upstream(flask_transport(app), add_accounts(control)[0], clock),
                     flask_put(app))
    foreign_id = other.upload(IMAGES["gif"], ext="gif", mime="image/gif")
    assert up.send("x", attachments=[attach(foreign_id)]).code == FILE_NOT_FOUND
    current = stats(control)
    assert current["sends"] == 0 and current["rejections"] == {
        "attachment_not_image": 1, "attachment_not_found": 2}
    both = [attach(text_id, 6, "doc.pdf"), attach(png_id, 6, "pic.png")]
    assert up.send("x", attachments=both).code == 0
    assert stats(control)["warnings"] == {"image_sent_as_file": 1}
    logged = sim_log(control)[0]["attachment_details"]
    assert [(a["file_type"], a["mime_type"], a["size"]) for a in logged] == [
        (6, "application/pdf", 21), (6, "image/png", len(IMAGES["png"]))]
