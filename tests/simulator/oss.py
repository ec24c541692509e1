"""Alibaba Cloud OSS rules for the simulator's upload endpoint (PUT /_oss/<bucket>/<key>).

Role: the simulator's own reading of OSS header signing V1 and of the temporary STS
credentials that request_policy hands out, independent of the gateway's signer. Pure
functions, plus `OssError`: every rejected PUT becomes one, answered as OSS answers, an
XML error document.

The string a client signs (HMAC-SHA1 with the AccessKeySecret, then base64), sent as
`Authorization: OSS <AccessKeyId>:<signature>`:

    VERB \\n Content-MD5 \\n Content-Type \\n Date \\n CanonicalizedOSSHeaders CanonicalizedResource

where CanonicalizedOSSHeaders is every `x-oss-*` header, name lower-cased, sorted, each as
`name:value\\n`, and CanonicalizedResource is `/<bucket>/<key>` (the key not percent-encoded).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from xml.sax.saxutils import escape

# [simulator's choice] the bucket name, the credential shapes and the dir layout; the
# lifetimes, the 15-minute date window and the 100 MB limit follow UPSTREAM.md and OSS.
OSS_BUCKET: str = "sim-matrix-files"
OSS_PATH_PREFIX: str = "/_oss"
POLICY_DIR_ROOT: str = "matrix"
STS_LIFETIME_SECONDS: float = 15 * 60
DATE_SKEW_SECONDS: float = 15 * 60
MAX_OBJECT_BYTES: int = 100 * 1024 * 1024
OSS_HEADER_PREFIX: str = "x-oss-"
SECURITY_TOKEN_HEADER: str = "x-oss-security-token"
XML_MIMETYPE: str = "application/xml"

_ALPHANUMERIC: str = string.ascii_letters + string.digits
_AUTHORIZATION = re.compile(r"OSS ([A-Za-z0-9.]+):([A-Za-z0-9+/]+={0,2})")
_RFC1123_DATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d{2}:\d{2}:\d{2} GMT")
_OBJECT_NAME = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[A-Za-z0-9]{1,16}")


# --- STS credentials and upload policy ---------------------------------------------------

@dataclass(frozen=True)
class StsCredentials:
    access_key_id: str
    access_key_secret: str
    security_token: str


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def mint_sts_credentials() -> StsCredentials:
    """Fresh random credentials shaped like Alibaba's STS ones (the token holds + / =)."""
    token = base64.b64encode(secrets.token_bytes(200)).decode("ascii")
    return StsCredentials(f"STS.{_random_text(25)}", _random_text(44), f"CAIS{token}")


def policy_dir(real_user_id: str, now: float) -> str:
    """The per-account prefix uploads must go under: matrix/<UTC yyyymmdd>/<realUserID>."""
    return f"{POLICY_DIR_ROOT}/{time.strftime('%Y%m%d', time.gmtime(now))}/{real_user_id}"


def object_key(directory: str, file_name: str) -> str:
    return f"{directory.strip('/')}/{file_name}"


def key_in_dir(key: str, directory: str) -> bool:
    return key.startswith(directory.strip("/") + "/")


def key_name_ok(key: str, directory: str) -> bool:
    """True for `<dir>/<uuid>.<ext>`, the uuid canonical lower-case hex, nothing nested."""
    return key_in_dir(key, directory) and bool(
        _OBJECT_NAME.fullmatch(key[len(directory.strip("/")) + 1:]))


# --- Header signing V1 ----------------------------------------------------------------------

@dataclass(frozen=True)
class OssPut:
    """One PUT as received; header names lower-cased, repeated headers joined with ','."""

    bucket: str
    key: str
    query: str
    headers: dict[str, str]
    content_length: int | None

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def canonicalized_oss_headers(headers: dict[str, str]) -> str:
    names = sorted(name for name in headers if name.startswith(OSS_HEADER_PREFIX))
    return "".join(f"{name}:{headers[name].strip()}\n" for name in names)


def string_to_sign(put: OssPut) -> str:
    head = "\n".join(["PUT", put.header("content-md5"), put.header("content-type"),
                      put.header("date"), ""])
    return head + canonicalized_oss_headers(put.headers) + f"/{put.bucket}/{put.key}"


def oss_signature(secret: str, text: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def parse_authorization(value: str) -> tuple[str, str] | None:
    """(AccessKeyId, signature) from `OSS <id>:<signature>`, or None when malformed."""
    match = _AUTHORIZATION.fullmatch(value)
    return (match.group(1), match.group(2)) if match else None


def parse_http_date(value: str) -> float | None:
    """Epoch seconds of an RFC 1123 date (`Sun, 06 Nov 1994 08:49:37 GMT`), else None."""
    if not _RFC1123_DATE.fullmatch(value):
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode("ascii")


def etag_of(body: bytes) -> str:
    """OSS's ETag of a simple upload: the quoted upper-case MD5 hex."""
    return f'"{hashlib.md5(body).hexdigest().upper()}"'


def new_request_id() -> str:
    return secrets.token_hex(12).upper()


# --- Errors ----------------------------------------------------------------------------------

class OssError(Exception):
    """A rejected PUT: HTTP status, OSS error code, message, and our rejection reason."""

    def __init__(self, status: int, code: str, message: str, reason: str,
                 details: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.reason, self.details = reason, details


def error_xml(error: OssError, request_id: str, host_id: str) -> bytes:
    fields = (("Code", error.code), ("Message", error.message), ("RequestId", request_id),
              ("HostId", host_id), *error.details)
    inner = "".join(f"  <{name}>{escape(value)}</{name}>\n" for name, value in fields)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n{inner}</Error>\n'.encode("utf-8")


def body_error(put: OssPut, body: bytes, max_bytes: int) -> OssError | None:
    """Size and Content-MD5 problems of a PUT whose credentials already passed."""
    if len(body) > max_bytes:
        return too_large(max_bytes)
    declared = put.header("content-md5")
    if declared and declared != content_md5(body):
        return OssError(400, "InvalidDigest",
                        "The Content-MD5 you specified did not match what was received.",
                        "oss_bad_md5")
    return None


def too_large(max_bytes: int) -> OssError:
    return OssError(413, "EntityTooLarge",
                    f"Your proposed upload exceeds the maximum allowed size ({max_bytes} bytes).",
                    "oss_too_large")
