"""Request signing, exactly as the captured browser signs: the query, ``x-signature``, ``yy``.

The rule (``shared/CAPTURES.md``, reproduced bit for bit by the captured vectors)::

    seconds     = the x-timestamp header;  unix (query) = seconds * 1000
    x-signature = md5(seconds + SALT + wire body)                  ("" without a body)
    yy          = md5(encodeURIComponent(T) + "_" + B + md5(unix) + SUFFIX)

T is ``path?query`` as sent (the absolute URL on the stream host) with
``op_ticket=undefined`` inserted after the ``user_id`` pair; B is ``{}`` for a call
without a body, the body itself on matrix and v1 calls, and the body JSON-encoded once
more as a string on session calls. Each of those choices is a :class:`SigningVariant`
field, so an older form can be switched back on without code changes. Both signatures
cover the exact body text put on the wire: serialise once with :func:`dump_body`.
SALT, SUFFIX (``ooui`` in the captures) and the query's ``version_code`` belong to the web
app's build: they are a :class:`WebConstants` (settings, optionally read from the live
bundle by :mod:`gateway.upstream.bundle`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from gateway.upstream import constants as C

#: Characters ``encodeURIComponent`` leaves as they are (besides letters and digits).
_URI_COMPONENT_SAFE = "-_.!~*'()"
#: What axios puts back after encodeURIComponent when it builds a query string.
_AXIOS_RAW = (("%3A", ":"), ("%24", "$"), ("%2C", ","), ("%20", "+"), ("%5B", "["), ("%5D", "]"))


#: ``encodeURIComponent`` of each ASCII character, for :meth:`str.translate`.
_ASCII_ESCAPES = {code: (chr(code) if chr(code).isalnum() or chr(code) in _URI_COMPONENT_SAFE
                         else f"%{code:02X}") for code in range(128)}


def encode_uri_component(text: str) -> str:
    """JavaScript's ``encodeURIComponent``: UTF-8, space as ``%20``."""
    # Every call encodes the whole ~700-character target for yy: translate runs in C,
    # quote's per-byte Python loop cost a quarter of a millisecond a call.
    if text.isascii():
        return text.translate(_ASCII_ESCAPES)
    return quote(text, safe=_URI_COMPONENT_SAFE)


#: Distinct query values whose encoding is kept: all but ``unix`` repeat on every call of
#: an account (the ~600-character token is the costliest to encode), so a worker's
#: accounts times a handful of values fit.
ENCODED_VALUES_CACHED = 8192


@functools.lru_cache(maxsize=ENCODED_VALUES_CACHED)
def axios_encode(text: str) -> str:
    """A query value as the web app's HTTP library writes it (``+`` for space, raw commas)."""
    encoded = encode_uri_component(text)
    for escaped, raw in _AXIOS_RAW:
        encoded = encoded.replace(escaped, raw)
    return encoded


def md5_hex(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.md5(data).hexdigest()  # noqa: S324 - the protocol's choice, not ours


def dump_body(payload: Mapping[str, object]) -> str:
    """Compact JSON exactly as the web app sends it."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class SigningVariant:
    """Which form of each signing detail to use; the defaults are the captured ones."""

    salt_mode: str  # "bundle" (the site's salt) or "jwt" (very old clients)
    op_ticket: bool
    empty_body: str  # key of C.EMPTY_BODY_VARIANTS
    region: str  # C.REGION_VARIANTS
    session_body: str  # C.SESSION_BODY_VARIANTS

    def describe(self) -> str:
        """One line for the doctor and logs."""
        captured = dataclasses.replace(self, salt_mode=CAPTURED.salt_mode) == CAPTURED
        return (f"{'captured' if captured else 'custom'}: salt={self.salt_mode}, "
                f"op_ticket={'on' if self.op_ticket else 'off'}, empty body={self.empty_body}, "
                f"region on {self.region} calls, session body={self.session_body}")


@dataclass(frozen=True)
class WebConstants:
    """The web app build's signing constants; the defaults are the captured build's."""

    salt: str = C.BUNDLE_SALT
    yy_suffix: str = C.YY_SUFFIX
    version_code: str = C.VERSION_CODE


CAPTURED_CONSTANTS = WebConstants()

#: What the June 2026 browser does (shared/CAPTURES.md).
CAPTURED = SigningVariant(salt_mode="bundle", op_ticket=True, empty_body="braces", region="session",
                          session_body="string")


@dataclass(frozen=True, repr=False)
class Identity:
    """The per-account values that go into every query string."""

    uuid: str
    device_id: str
    user_id: str
    token: str
    region: str = C.DEFAULT_LOCALE[0]
    lang: str = C.DEFAULT_LOCALE[1]

    def __repr__(self) -> str:
        return f"Identity(device_id={self.device_id})"


def build_query(
    identity: Identity, unix_ms: int, leading: Iterable[tuple[str, str]] = (),
    with_region: bool = False, version_code: str = C.VERSION_CODE,
) -> str:
    """The sent query string: ``leading`` pairs, the standard ones in order, ``region``."""
    dynamic = {
        "version_code": version_code, "unix": str(unix_ms), "uuid": identity.uuid, "device_id": identity.device_id,
        "user_id": identity.user_id, "token": identity.token,
        "sys_language": identity.lang, "lang": identity.lang,
    }
    pairs = list(leading) + [
        (name, dynamic[name] if value is None else value) for name, value in C.QUERY_TEMPLATE
    ]
    if with_region:
        pairs.append(("region", identity.region))
    return "&".join(f"{name}={axios_encode(value)}" for name, value in pairs)


def carries_region(session_call: bool, variant: SigningVariant) -> bool:
    return session_call or variant.region == "all"


def yy_target(url_or_target: str, variant: SigningVariant) -> str:
    """T: the request target as sent, with the signed-only op_ticket pair after user_id."""
    if not variant.op_ticket:
        return url_or_target
    head, sep, query = url_or_target.partition("?")
    if not sep:
        return url_or_target
    pairs = query.split("&")
    at = next((i + 1 for i, pair in enumerate(pairs) if pair.startswith("user_id=")), len(pairs))
    pairs.insert(at, C.OP_TICKET_PAIR)
    return f"{head}?{'&'.join(pairs)}"


def yy_body(body: str | None, session_call: bool, variant: SigningVariant) -> str:
    """B: what yy signs for this body (``None``: the call has no body)."""
    if body is None:
        return C.EMPTY_BODY_VARIANTS[variant.empty_body]
    if session_call and variant.session_body == "string":
        return json.dumps(body, ensure_ascii=False)
    return body


def x_signature(seconds: int, body: str, mode: str, token: str, salt: str = C.BUNDLE_SALT) -> str:
    """``md5_hex(seconds + SALT + body)``; SALT is the bundle salt or, for old clients, the JWT."""
    return md5_hex(f"{seconds}{token if mode == 'jwt' else salt}{body}")


def yy_signature(target: str, body: str, unix_ms: int, suffix: str = C.YY_SUFFIX) -> str:
    """``md5_hex(encodeURIComponent(T) + "_" + B + md5_hex(unix_ms) + SUFFIX)``."""
    signed = encode_uri_component(target)
    return md5_hex(f"{signed}_{body}{md5_hex(str(unix_ms))}{suffix}")


def signatures(
    *, target: str, body: str | None, seconds: int, token: str, session_call: bool,
    variant: SigningVariant, constants: WebConstants = CAPTURED_CONSTANTS,
) -> dict[str, str]:
    """``x-timestamp``, ``x-signature`` and ``yy`` for a request.

    ``target`` is ``path?query`` as sent (the absolute URL on the stream host); ``body``
    is the exact wire body, or ``None`` for a call without one.
    """
    return {
        "x-timestamp": str(seconds),
        "x-signature": x_signature(seconds, body or "", variant.salt_mode, token, constants.salt),
        "yy": yy_signature(yy_target(target, variant), yy_body(body, session_call, variant),
                           seconds * 1000, constants.yy_suffix),
    }
