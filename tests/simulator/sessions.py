"""Uploads part of the session surface: prepared uploads and the unsigned multipart POST.

Role: what uploads/prepare, the upload POST and a message's attachments share. Like
`FileStore`, `UploadDesk` holds no lock: `SimState` calls it only under its own lock.
The multipart form is parsed here with werkzeug's event decoder, which keeps the order
of the parts (a form parser that builds dicts would hide a wrong order).

The signature of the form is the simulator's own design (the real one is unknown): an
HMAC-SHA256, with a secret kept per prepared upload, over the key, policy and credential
values; the client only has to repeat the fields it was given, in order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder

from tests.simulator.protocol import Refusal
from tests.simulator.session_protocol import PrepareBody, SessionAttachment
from tests.simulator.session_shapes import (
    UPLOAD_FIELD_NAMES,
    UPLOAD_FILE_FIELD,
    UPLOAD_LIFETIME_SECONDS,
    UPLOAD_MISMATCH_CODE,
    UPLOAD_MISMATCH_MSG,
    UPLOAD_NOT_FOUND_CODE,
    UPLOAD_NOT_FOUND_MSG,
    UPLOAD_SUCCESS_STATUS,
    attachment_type_of,
)


class UploadError(Exception):
    """A rejected upload POST: HTTP status, an OSS-like error code, the counted reason."""

    def __init__(self, status: int, code: str, message: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.reason = status, code, message, reason


@dataclass(eq=False)
class PreparedUpload:
    object_key: str
    account: str
    file_name: str
    mime_type: str
    size_bytes: int
    fields: tuple[tuple[str, str], ...]
    secret: str
    expires: float
    data: bytes | None = None
    sha256: str | None = None

    def public(self) -> dict[str, Any]:
        return {"object_key": self.object_key, "account": self.account,
                "file_name": self.file_name, "mime_type": self.mime_type,
                "size_bytes": self.size_bytes, "uploaded": self.data is not None,
                "sha256": self.sha256}


def _form_signature(secret: str, values: list[str]) -> str:
    return hmac.new(secret.encode(), "\n".join(values).encode(), hashlib.sha256).hexdigest()


def _policy(object_key: str, size: int, expires: float) -> str:
    document = {"expiration": int(expires), "conditions": [
        {"key": object_key}, ["content-length-range", size, size]]}
    return base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()


@dataclass(frozen=True)
class UploadForm:
    """The parts of an upload POST, in order."""

    fields: list[tuple[str, str]]
    file_name: str | None  # the file part's filename
    data: bytes
    file_last: bool


class UploadDesk:
    """Prepared uploads by object key."""

    def __init__(self) -> None:
        self._uploads: dict[str, PreparedUpload] = {}
        self.counters: dict[str, int] = {"uploads_prepared": 0, "session_uploads": 0}

    def prepare(self, account: str, body: PrepareBody, now: float) -> PreparedUpload:
        object_key = str(uuid.uuid4())
        secret, expires = secrets.token_hex(16), now + UPLOAD_LIFETIME_SECONDS
        key = f"uploads/{account}/{object_key}"
        credential = f"sim-{secrets.token_hex(8)}"
        policy = _policy(key, body.size_bytes, expires)
        signature = _form_signature(secret, [key, policy, credential])
        values = (key, policy, credential, UPLOAD_SUCCESS_STATUS, signature)
        upload = PreparedUpload(object_key, account, body.file_name, body.mime_type,
                                body.size_bytes, tuple(zip(UPLOAD_FIELD_NAMES, values, strict=True)),
                                secret, expires)
        self._uploads[object_key] = upload
        self.counters["uploads_prepared"] += 1
        return upload

    def accept(self, form: UploadForm, now: float) -> PreparedUpload:
        """Store a correct upload POST; raises UploadError for the first problem."""
        upload = self._upload_of(form)
        if [name for name, _ in form.fields] != list(UPLOAD_FIELD_NAMES) or not form.file_last:
            raise UploadError(400, "InvalidArgument", "Form fields must come in the given "
                              "order, the file part last.", "upload_field_order")
        values = dict(form.fields)
        expected = _form_signature(upload.secret, [values["key"], values["policy"],
                                                   values["x-sim-credential"]])
        if (not hmac.compare_digest(expected, values["signature"])
                or tuple(form.fields) != upload.fields):
            raise UploadError(403, "SignatureDoesNotMatch", "The form signature does not "
                              "match the prepared upload.", "upload_bad_signature")
        if now >= upload.expires:
            raise UploadError(403, "AccessDenied", "Invalid according to Policy: Policy "
                              "expired.", "upload_expired")
        if len(form.data) != upload.size_bytes:
            raise UploadError(400, "EntityTooLarge" if len(form.data) > upload.size_bytes
                              else "EntityTooSmall", "Size does not match size_bytes.",
                              "upload_size_mismatch")
        upload.data, upload.sha256 = form.data, hashlib.sha256(form.data).hexdigest()
        self.counters["session_uploads"] += 1
        return upload

    def _upload_of(self, form: UploadForm) -> PreparedUpload:
        key = dict(form.fields).get("key", "")
        upload = self._uploads.get(key.rsplit("/", 1)[-1])
        if upload is None or upload.fields[0][1] != key:
            raise UploadError(403, "AccessDenied", "Unknown upload key.", "upload_unknown_key")
        if form.file_name is None:
            raise UploadError(400, "InvalidArgument", f"A file part named "
                              f"{UPLOAD_FILE_FIELD!r} is required.", "upload_no_file")
        return upload

    def attachment_details(self, account: str,
                           items: tuple[SessionAttachment, ...]) -> tuple[dict[str, Any], ...]:
        """What the log records per attachment; raises Refusal for a foreign or fake one."""
        return tuple(self._detail(account, item) for item in items)

    def _detail(self, account: str, item: SessionAttachment) -> dict[str, Any]:
        upload = self._uploads.get(item.object_key)
        if upload is None or upload.account != account or upload.data is None:
            raise Refusal(UPLOAD_NOT_FOUND_CODE, UPLOAD_NOT_FOUND_MSG, "attachment_not_found")
        if upload.size_bytes != item.size_bytes or upload.mime_type != item.mime_type:
            raise Refusal(UPLOAD_MISMATCH_CODE, UPLOAD_MISMATCH_MSG, "attachment_mismatch")
        return {"file_type": attachment_type_of(upload.mime_type), "file_id": upload.object_key,
                "file_name": item.file_name, "size": upload.size_bytes, "sha256": upload.sha256,
                "mime_type": upload.mime_type, "sniffed_image": None,
                "origin_file_name": upload.file_name}

    def listing(self) -> list[dict[str, Any]]:
        return [upload.public() for upload in self._uploads.values()]


def parse_upload_form(content_type: str, boundary: str | None, body: bytes) -> UploadForm:
    """The parts of a multipart body in order; raises UploadError when it is not one."""
    if content_type != "multipart/form-data" or not boundary:
        raise UploadError(400, "InvalidArgument", "Content-Type must be multipart/form-data "
                          "with a boundary.", "upload_not_multipart")
    decoder = MultipartDecoder(boundary.encode("latin-1"))
    decoder.receive_data(body)
    decoder.receive_data(None)
    return _collect_parts(decoder)


def _collect_parts(decoder: MultipartDecoder) -> UploadForm:
    fields: list[tuple[str, str]] = []
    file_name: str | None = None
    data, current, file_last = bytearray(), bytearray(), False
    in_file = False
    try:
        while True:
            event = decoder.next_event()
            if isinstance(event, (Field, File)):
                in_file = isinstance(event, File) and event.name == UPLOAD_FILE_FIELD
                file_last = in_file
                if in_file:
                    file_name = event.filename or ""
                current = data if in_file else bytearray()
                name = event.name
            elif isinstance(event, Data):
                current.extend(event.data)
                if not event.more_data and not in_file:
                    fields.append((name, current.decode("utf-8", "replace")))
            elif isinstance(event, Epilogue) or event is None or type(event).__name__ == "NeedData":
                break
    except ValueError as exc:
        raise UploadError(400, "MalformedPOSTRequest", f"Bad multipart body: {exc}",
                          "upload_not_multipart") from exc
    return UploadForm(fields, file_name, bytes(data), file_last)
