"""Uploading images and documents by the legacy STS steps: request_policy → OSS upload →
policy_callback (the matrix surface's way; the session surface's where uploads/prepare is
refused or missing, attaching the file by the ``ossPath`` the callback answers).

The upload goes to Alibaba Cloud OSS with the temporary STS credentials the upstream
hands out, signed with OSS's header signature (V1: HMAC-SHA1 over the verb, MD5, type,
date, ``x-oss-*`` headers and the resource). The body is streamed from the file object.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from gateway.errors import PayloadTooLarge, UpstreamBadAnswer
from gateway.upstream import constants as C
from gateway.upstream.client import UpstreamClient
from gateway.upstream.conversation import Attachment, Upload
from gateway.upstream.credentials import Credential


@dataclass(frozen=True, repr=False)
class Policy:
    """Temporary upload credentials and where to put the object."""

    access_key_id: str
    access_key_secret: str
    security_token: str
    bucket: str
    dir: str
    endpoint: str

    def __repr__(self) -> str:
        return f"Policy(bucket={self.bucket!r}, dir={self.dir!r})"

    @classmethod
    def from_answer(cls, data: dict[str, Any]) -> Policy:
        try:
            return cls(*(str(data[k]) for k in (
                "accessKeyId", "accessKeySecret", "securityToken", "bucketName", "dir", "endpoint")))
        except KeyError as missing:
            raise UpstreamBadAnswer(f"MiniMax upload policy lacks {missing}.") from None

    def object_url(self, key: str) -> str:
        """Path style for an endpoint with a scheme, virtual-hosted HTTPS for a bare host."""
        quoted = quote(key, safe="/")
        if "://" in self.endpoint:
            return f"{self.endpoint.rstrip('/')}/{self.bucket}/{quoted}"
        return f"https://{self.bucket}.{self.endpoint}/{quoted}"


def upload(client: UpstreamClient, cred: Credential, item: Upload) -> Attachment:
    if item.size > C.MAX_FILE_BYTES:
        raise PayloadTooLarge("An attached file exceeds the upstream's 100 MB limit.")
    policy = Policy.from_answer(client.call(cred, "GET", C.PATH_FILE_POLICY))
    extension = item.filename.rsplit(".", 1)[-1] if "." in item.filename else "bin"
    name = f"{uuid.uuid4()}.{extension}"
    key = f"{policy.dir.strip('/')}/{name}"
    item.file.seek(0)
    client.put_object(policy.object_url(key), oss_headers(policy, key, item), item.file)
    data = client.call(cred, "POST", C.PATH_FILE_CALLBACK, {
        "fileName": name, "originFileName": item.filename, "dir": policy.dir,
        "endpoint": policy.endpoint, "bucketName": policy.bucket, "size": str(item.size),
        "mimeType": item.mime_type,
    })
    file_id = data.get("fileID")
    if not file_id:
        raise UpstreamBadAnswer("MiniMax accepted the upload but returned no file id.")
    return Attachment(str(file_id), item.filename, item.mime_type, item.size, item.is_image,
                      oss_path=str(data.get("ossPath") or ""))


def oss_headers(policy: Policy, key: str, item: Upload, date: str | None = None) -> dict[str, str]:
    """Headers of a signed PUT (OSS signature V1)."""
    headers = {
        "Content-Type": item.mime_type,
        "Content-MD5": base64.b64encode(item.md5).decode(),
        "Content-Length": str(item.size),
        "Date": date or formatdate(usegmt=True),
        "x-oss-security-token": policy.security_token,
    }
    headers["Authorization"] = f"OSS {policy.access_key_id}:{oss_signature(policy, key, headers)}"
    return headers


def oss_signature(policy: Policy, key: str, headers: dict[str, str]) -> str:
    oss = sorted((k.lower(), v) for k, v in headers.items() if k.lower().startswith("x-oss-"))
    canonical = "".join(f"{k}:{v}\n" for k, v in oss)
    text = "\n".join(["PUT", headers["Content-MD5"], headers["Content-Type"], headers["Date"], ""])
    text += canonical + f"/{policy.bucket}/{key}"
    digest = hmac.new(policy.access_key_secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
