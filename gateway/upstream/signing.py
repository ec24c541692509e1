"""Request signing: the ordered query string and the ``x-signature`` / ``yy`` headers.

Both signatures cover the exact body text put on the wire, so callers serialise once
with :func:`dump_body` and sign and send those same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from gateway.upstream import constants as C

#: Characters ``encodeURIComponent`` leaves as they are (besides letters and digits).
_URI_COMPONENT_SAFE = "-_.!~*'()"


def encode_uri_component(text: str) -> str:
    """JavaScript's ``encodeURIComponent``: UTF-8, space as ``%20``."""
    return quote(text, safe=_URI_COMPONENT_SAFE)


def md5_hex(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.md5(data).hexdigest()  # noqa: S324 - the protocol's choice, not ours


def dump_body(payload: Mapping[str, object]) -> str:
    """Compact JSON exactly as the web app sends it."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, repr=False)
class Identity:
    """The per-account values that go into every query string."""

    uuid: str
    device_id: str
    user_id: str
    token: str

    def __repr__(self) -> str:
        return f"Identity(device_id={self.device_id})"


def build_query(
    identity: Identity, unix_ms: int, leading: Iterable[tuple[str, str]] = ()
) -> str:
    """The signed query string: ``leading`` pairs, then the 22 standard ones in order."""
    dynamic = {
        "unix": str(unix_ms),
        "uuid": identity.uuid,
        "device_id": identity.device_id,
        "user_id": identity.user_id,
        "token": identity.token,
    }
    pairs = list(leading) + [
        (name, dynamic[name] if value is None else value) for name, value in C.QUERY_TEMPLATE
    ]
    return "&".join(f"{name}={encode_uri_component(value)}" for name, value in pairs)


def x_signature(seconds: int, body: str, mode: str, token: str) -> str:
    """``md5_hex(seconds + SALT + body)``; SALT is the bundle salt or, for old clients, the JWT."""
    salt = token if mode == "jwt" else C.BUNDLE_SALT
    return md5_hex(f"{seconds}{salt}{body}")


def yy_signature(path: str, query: str, body: str, unix_ms: int) -> str:
    """``md5_hex(encodeURIComponent(path?query) + "_" + body + md5_hex(unix_ms) + "ooui")``."""
    signed = encode_uri_component(f"{path}?{query}")
    return md5_hex(f"{signed}_{body}{md5_hex(str(unix_ms))}{C.YY_SUFFIX}")


def signed_headers(
    *, base_url: str, path: str, query: str, body: str, token: str, unix_ms: int, mode: str
) -> dict[str, str]:
    """Every header a signed request carries, except ``Content-Type`` for multipart."""
    seconds = unix_ms // 1000
    return {
        "token": token,
        "x-timestamp": str(seconds),
        "x-signature": x_signature(seconds, body, mode, token),
        "yy": yy_signature(path, query, body, unix_ms),
        "Origin": base_url,
        "Referer": base_url + "/",
        "User-Agent": C.USER_AGENT,
        "Accept": "application/json, text/plain, */*",
    }
