"""Files part of the simulator's world: STS grants, OSS objects, registered file ids.

Role: what request_policy, the OSS PUT, policy_callback and send_msg attachments share.
`FileStore` holds no lock of its own: `SimState` owns one and calls it only while holding
its lock. Rejections are raised as `OssError` (the OSS PUT) or `Refusal` (the signed
endpoints), each carrying the reason name counted in /_sim/stats.

The OSS checks run in a fixed order, so each test of one mistake sees one answer: a
plain PUT (no query string), Authorization present and well-formed, AccessKeyId issued,
x-oss-security-token equal to the issued token, credentials not expired, Date valid and
within 15 minutes, signature, bucket, key under the issued dir and shaped
`<dir>/<uuid>.<ext>`, declared Content-Length; then (once the body is read) size and
Content-MD5.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from typing import Any

from tests.simulator.media import sniff_image
from tests.simulator.oss import (
    DATE_SKEW_SECONDS,
    OSS_BUCKET,
    SECURITY_TOKEN_HEADER,
    STS_LIFETIME_SECONDS,
    OssError,
    OssPut,
    StsCredentials,
    key_in_dir,
    key_name_ok,
    mint_sts_credentials,
    object_key,
    oss_signature,
    parse_authorization,
    parse_http_date,
    policy_dir,
    string_to_sign,
    too_large,
)
from tests.simulator.protocol import (
    FILE_NOT_FOUND_CODE,
    FILE_NOT_FOUND_MSG,
    FILE_NOT_IMAGE_CODE,
    FILE_NOT_IMAGE_MSG,
    FILE_TYPE_IMAGE,
    FILE_TYPE_OTHER,
    UPLOAD_NOT_FOUND_CODE,
    UPLOAD_NOT_FOUND_MSG,
    UPLOAD_SIZE_MISMATCH_CODE,
    UPLOAD_SIZE_MISMATCH_MSG,
    Attachment,
    PolicyCallbackBody,
    Refusal,
)


@dataclass(frozen=True)
class StsGrant:
    """One request_policy answer, remembered so uploads can be checked against it."""

    account: str
    credentials: StsCredentials
    bucket: str
    directory: str
    endpoint: str
    issued: float
    expires: float

    def policy(self) -> dict[str, str]:
        creds = self.credentials
        return {"accessKeyId": creds.access_key_id, "accessKeySecret": creds.access_key_secret,
                "securityToken": creds.security_token, "bucketName": self.bucket,
                "dir": self.directory, "endpoint": self.endpoint}


@dataclass(eq=False)
class StoredObject:
    bucket: str
    key: str
    grant: StsGrant
    data: bytes
    content_type: str
    sha256: str
    uploaded: float
    file_id: str | None = None
    origin_file_name: str | None = None
    mime_type: str | None = None  # as declared in policy_callback

    def public(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "account": self.grant.account,
                "access_key_id": self.grant.credentials.access_key_id, "size": len(self.data),
                "sha256": self.sha256, "content_type": self.content_type,
                "sniffed_image": sniff_image(self.data), "uploaded": self.uploaded,
                "file_id": self.file_id, "origin_file_name": self.origin_file_name,
                "mime_type": self.mime_type}


class FileStore:
    """Grants by AccessKeyId, objects by (bucket, key), registered files by fileID."""

    def __init__(self, rng: random.Random, max_object_bytes: int) -> None:
        self._rng = rng
        self.max_object_bytes = max_object_bytes
        self._grants: dict[str, StsGrant] = {}
        self._objects: dict[tuple[str, str], StoredObject] = {}
        self._files: dict[str, StoredObject] = {}
        self.uploads = 0
        self.upload_bytes = 0

    # -- request_policy -------------------------------------------------------------------

    def issue(self, account: str, endpoint: str, now: float) -> StsGrant:
        # Expired grants are kept: an upload with them must say "expired", not "unknown".
        grant = StsGrant(account, mint_sts_credentials(), OSS_BUCKET, policy_dir(account, now),
                         endpoint, now, now + STS_LIFETIME_SECONDS)
        self._grants[grant.credentials.access_key_id] = grant
        return grant

    # -- OSS PUT ----------------------------------------------------------------------------

    def authorize_put(self, put: OssPut, now: float) -> StsGrant:
        """The grant a PUT is signed with; raises OssError for the first problem found."""
        if put.query:
            raise OssError(400, "InvalidArgument", "This simulator accepts a plain PUT only.",
                           "oss_query")
        grant, signature = self._grant_of(put)
        self._check_token_and_date(put, grant, now)
        self._check_signature(put, grant, signature)
        if put.bucket != grant.bucket:
            raise OssError(404, "NoSuchBucket", "The specified bucket does not exist.",
                           "oss_bad_bucket", (("BucketName", put.bucket),))
        if not key_in_dir(put.key, grant.directory):
            raise OssError(403, "AccessDenied", "The object key is outside the policy's dir.",
                           "oss_key_outside_dir")
        if not key_name_ok(put.key, grant.directory):
            raise OssError(400, "InvalidObjectName", "The key must be <dir>/<uuid>.<ext>.",
                           "oss_bad_key")
        if put.content_length is not None and put.content_length > self.max_object_bytes:
            raise too_large(self.max_object_bytes)
        return grant

    def _grant_of(self, put: OssPut) -> tuple[StsGrant, str]:
        """The grant named by the Authorization header, and the signature given there."""
        authorization = put.header("authorization")
        if not authorization:
            raise OssError(403, "AccessDenied", "You have no right to access this object.",
                           "oss_no_authorization")
        parsed = parse_authorization(authorization)
        if parsed is None:
            raise OssError(400, "InvalidArgument", "Authorization header is invalid.",
                           "oss_bad_authorization")
        grant = self._grants.get(parsed[0])
        if grant is None:
            raise OssError(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided "
                           "does not exist in our records.", "oss_unknown_key",
                           (("OSSAccessKeyId", parsed[0]),))
        return grant, parsed[1]

    @staticmethod
    def _check_token_and_date(put: OssPut, grant: StsGrant, now: float) -> None:
        token = put.header(SECURITY_TOKEN_HEADER)
        if not hmac.compare_digest(token.encode(), grant.credentials.security_token.encode()):
            raise OssError(403, "InvalidSecurityToken", "The security token you provided is "
                           "invalid.", "oss_bad_token")
        if now >= grant.expires:
            raise OssError(403, "SecurityTokenExpired", "The security token you provided has "
                           "expired.", "oss_token_expired")
        date = parse_http_date(put.header("date"))
        if date is None:
            raise OssError(403, "AccessDenied", "OSS authentication requires a valid Date "
                           "(RFC 1123, GMT).", "oss_bad_date")
        if abs(date - now) > DATE_SKEW_SECONDS:
            raise OssError(403, "RequestTimeTooSkewed", "The difference between the request "
                           "time and the current time is too large.", "oss_date_skew")

    @staticmethod
    def _check_signature(put: OssPut, grant: StsGrant, given: str) -> None:
        text = string_to_sign(put)
        expected = oss_signature(grant.credentials.access_key_secret, text)
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise OssError(403, "SignatureDoesNotMatch", "The request signature we calculated "
                           "does not match the signature you provided.", "oss_bad_signature",
                           (("StringToSign", text), ("SignatureProvided", given)))

    def store(self, grant: StsGrant, put: OssPut, body: bytes, now: float) -> StoredObject:
        stored = StoredObject(put.bucket, put.key, grant, body, put.header("content-type"),
                              hashlib.sha256(body).hexdigest(), now)
        self._objects[(put.bucket, put.key)] = stored  # OSS overwrites an existing key
        self.uploads += 1
        self.upload_bytes += len(body)
        return stored

    # -- policy_callback ---------------------------------------------------------------------

    def register(self, account: str, body: PolicyCallbackBody) -> str:
        """The fileID of an object this account uploaded; the same id on a repeat."""
        stored = self._objects.get((body.bucket, object_key(body.directory, body.file_name)))
        if (stored is None or stored.grant.account != account
                or stored.grant.directory != body.directory
                or stored.grant.endpoint != body.endpoint):
            raise Refusal(UPLOAD_NOT_FOUND_CODE, UPLOAD_NOT_FOUND_MSG, "callback_object_not_found")
        if body.size != len(stored.data):
            raise Refusal(UPLOAD_SIZE_MISMATCH_CODE, UPLOAD_SIZE_MISMATCH_MSG,
                          "callback_size_mismatch")
        if stored.file_id is None:
            stored.file_id = self._new_file_id()
            self._files[stored.file_id] = stored
        stored.origin_file_name, stored.mime_type = body.origin_file_name, body.mime_type
        return stored.file_id

    def _new_file_id(self) -> str:
        # Above 2**53 like the user ids: a client that turns it into a float corrupts it.
        while True:
            candidate = str(self._rng.randint(3 * 10**17, 9 * 10**18))
            if candidate not in self._files:
                return candidate

    # -- send_msg attachments ------------------------------------------------------------------

    def attachment_details(self, account: str,
                           attachments: tuple[Attachment, ...]) -> tuple[dict[str, Any], ...]:
        """What the log records per attachment; raises Refusal for a foreign or fake one."""
        return tuple(self._detail(account, item) for item in attachments)

    def _detail(self, account: str, item: Attachment) -> dict[str, Any]:
        stored = self._files.get(item.file_id)
        if stored is None or stored.grant.account != account:
            raise Refusal(FILE_NOT_FOUND_CODE, FILE_NOT_FOUND_MSG, "attachment_not_found")
        sniffed = sniff_image(stored.data)
        if item.file_type == FILE_TYPE_IMAGE and sniffed is None:
            raise Refusal(FILE_NOT_IMAGE_CODE, FILE_NOT_IMAGE_MSG, "attachment_not_image")
        return {**item.as_dict(), "size": len(stored.data), "sha256": stored.sha256,
                "mime_type": stored.mime_type, "sniffed_image": sniffed,
                "origin_file_name": stored.origin_file_name}

    def oss_path_detail(self, account: str, oss_path: str, file_name: str, image: bool) -> dict[str, Any]:
        """A session attachment by the ``ossPath`` policy_callback answered (the legacy STS
        upload); raises Refusal for a foreign, unregistered or (as an image) non-image one."""
        stored = self._objects.get((OSS_BUCKET, oss_path))
        if stored is None or stored.file_id is None or stored.grant.account != account:
            raise Refusal(FILE_NOT_FOUND_CODE, FILE_NOT_FOUND_MSG, "attachment_not_found")
        sniffed = sniff_image(stored.data)
        if image and sniffed is None:
            raise Refusal(FILE_NOT_IMAGE_CODE, FILE_NOT_IMAGE_MSG, "attachment_not_image")
        return {"file_type": FILE_TYPE_IMAGE if image else FILE_TYPE_OTHER, "file_id": stored.file_id,
                "file_name": file_name, "oss_path": oss_path, "size": len(stored.data),
                "sha256": stored.sha256, "mime_type": stored.mime_type, "sniffed_image": sniffed,
                "origin_file_name": stored.origin_file_name}

    def image_sent_as_file(self, attachments: tuple[Attachment, ...]) -> bool:
        return any(item.file_type != FILE_TYPE_IMAGE and item.file_id in self._files
                   and sniff_image(self._files[item.file_id].data) is not None
                   for item in attachments)

    # -- views -------------------------------------------------------------------------------

    def listing(self) -> list[dict[str, Any]]:
        return [stored.public() for stored in self._objects.values()]

    def counters(self) -> dict[str, int]:
        return {"uploads": self.uploads, "upload_bytes": self.upload_bytes,
                "objects": len(self._objects), "files": len(self._files)}
