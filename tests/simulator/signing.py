"""The two signing rules the simulator verifies: the captured one and the legacy one.

Role: the simulator's own reading of /work/shared/CAPTURES.md ("captured", the default,
reproducing every genuine browser request in /work/shared/captures/vectors.json) and of
the older /work/shared/UPSTREAM.md rule ("legacy", for gateways configured that way).
Pure functions only: `verify_signatures` is what the request gate runs and what the
vector test feeds the captured requests to, so both check exactly the same code.

Captured rule, in short:
    x-signature = md5(seconds + SALT + wire_body)
    yy          = md5(encodeURIComponent(T) + "_" + B + md5(unix_ms) + "ooui")
    T = path?query as sent, with `op_ticket=undefined` inserted after the user_id pair
        (absolute URL on the stream host); B = "{}" without a body, the exact body on
        /matrix and /v1/api, the body re-encoded as a JSON string on the session prefix.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from urllib.parse import quote

BUNDLE_SALT: str = "I*7Cf%WZ#S&%1RlZJ&C2"
YY_SUFFIX: str = "ooui"
VERSION_CODE: str = "22201"
OP_TICKET_PAIR: str = "op_ticket=undefined"
EMPTY_BODY_B: str = "{}"

YY_CAPTURED: str = "captured"
YY_LEGACY: str = "legacy"
YY_VARIANTS: tuple[str, ...] = (YY_CAPTURED, YY_LEGACY)

SURFACE_API: str = "api"  # /v1/api/*
SURFACE_MATRIX: str = "matrix"  # /matrix/*
SURFACE_SESSION: str = "session"  # the session prefix (/archon/api/v1 or /minimax-cloud/api/v1)

# encodeURIComponent leaves exactly these (plus ASCII letters and digits) unescaped.
URI_COMPONENT_SAFE: str = "-_.!~*'()"
# What axios' default params serializer undoes after encodeURIComponent.
AXIOS_UNESCAPES: tuple[tuple[str, str], ...] = (
    ("%3A", ":"), ("%24", "$"), ("%2C", ","), ("%20", "+"), ("%5B", "["), ("%5D", "]"),
)

# Fast path: a signed query string is already percent-encoded, so encoding it again only
# touches these few characters; str.replace does that at C speed. urllib's quote walks
# the bytes in Python and used to dominate the per-request cost (T is ~700 chars).
_QUERY_ESCAPES: tuple[tuple[str, str], ...] = (
    ("%", "%25"), ("&", "%26"), ("=", "%3D"), ("/", "%2F"), ("?", "%3F"), ("+", "%2B"),
    (",", "%2C"), (":", "%3A"),
)
_OUTSIDE_FAST_PATH = re.compile(r"[^A-Za-z0-9\-_.!~*'()%&=/?+,:]")


def md5_hex(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.md5(raw).hexdigest()


def encode_uri_component(value: str) -> str:
    """JavaScript encodeURIComponent: UTF-8 percent-encoding, JS's unreserved set kept."""
    if _OUTSIDE_FAST_PATH.search(value):
        return quote(value, safe=URI_COMPONENT_SAFE)
    for char, escape in _QUERY_ESCAPES:
        if char in value:
            value = value.replace(char, escape)
    return value


def axios_encode(value: str) -> str:
    """A query value as axios sends it: encodeURIComponent, then a few escapes undone."""
    encoded = quote(value, safe=URI_COMPONENT_SAFE)
    for escape, char in AXIOS_UNESCAPES:
        encoded = encoded.replace(escape, char)
    return encoded


def same_digest(expected: str, given: str) -> bool:
    # compare_digest raises on non-ASCII str; a header with such bytes is simply wrong.
    return given.isascii() and hmac.compare_digest(expected, given)


# --- x-signature -------------------------------------------------------------------------

def x_signature(timestamp: str, salt: str, body: bytes) -> str:
    """md5_hex(str(seconds) + SALT + body), computed over the exact body bytes."""
    return md5_hex(timestamp.encode("utf-8") + salt.encode("utf-8") + body)


def x_signature_ok(mode: str, timestamp: str, token: str, body: bytes, given: str,
                   salt: str = BUNDLE_SALT) -> bool:
    """Accept the salt(s) the configured mode allows: the bundle salt, the JWT, or either."""
    if mode in ("bundle", "either") and same_digest(
            x_signature(timestamp, salt, body), given):
        return True
    if mode in ("jwt", "either") and same_digest(x_signature(timestamp, token, body), given):
        return True
    return False


# --- yy ------------------------------------------------------------------------------------

def with_op_ticket(raw_query: str) -> str:
    """The query with the signed-only `op_ticket=undefined` right after the user_id pair.

    [simulator's choice] without a user_id pair (user/info may omit it) the pair goes where
    user_id would be, after browser_platform; failing that, at the end.
    """
    pairs = raw_query.split("&") if raw_query else []
    names = [pair.partition("=")[0] for pair in pairs]
    for anchor in ("user_id", "browser_platform"):
        if anchor in names:
            pairs.insert(names.index(anchor) + 1, OP_TICKET_PAIR)
            return "&".join(pairs)
    return "&".join(pairs + [OP_TICKET_PAIR])


def yy_target(variant: str, path: str, raw_query: str, origin: str | None) -> str:
    """T: path?query (captured: with op_ticket), prefixed by scheme://host on the stream host."""
    query = with_op_ticket(raw_query) if variant == YY_CAPTURED else raw_query
    return f"{origin or ''}{path}?{query}"


def yy_body(variant: str, surface: str, body: bytes) -> bytes:
    """B: what yy signs in place of the body."""
    if variant == YY_LEGACY:
        return body
    if not body:
        return EMPTY_BODY_B.encode("ascii")
    if surface == SURFACE_SESSION:
        # The archon fetch wrapper JSON.stringify's the already serialised body once more.
        text = body.decode("utf-8", errors="surrogateescape")
        return json.dumps(text, ensure_ascii=False).encode("utf-8", errors="surrogateescape")
    return body


def yy_signature(target: str, b: bytes, unix_ms: str, suffix: str = YY_SUFFIX) -> str:
    """md5_hex(encodeURIComponent(T) + "_" + B + md5_hex(unix_ms) + "ooui")."""
    head = encode_uri_component(target) + "_"
    tail = md5_hex(unix_ms) + suffix
    return md5_hex(head.encode("utf-8") + b + tail.encode("utf-8"))


def expected_yy(variant: str, surface: str, path: str, raw_query: str, body: bytes,
                unix_ms: str, origin: str | None, suffix: str = YY_SUFFIX) -> str:
    return yy_signature(yy_target(variant, path, raw_query, origin),
                        yy_body(variant, surface, body), unix_ms, suffix)


# --- Both at once ----------------------------------------------------------------------------

def verify_signatures(*, variant: str, signature_mode: str, surface: str, path: str,
                      raw_query: str, body: bytes, timestamp: str, token: str,
                      x_sig: str, yy: str, unix_ms: str, origin: str | None,
                      salt: str = BUNDLE_SALT, yy_suffix: str = YY_SUFFIX) -> str | None:
    """None when both signatures are right, else the rejection reason.

    `origin` is scheme://host[:port] for a stream-host call (T is then absolute), None
    on the API host. `body` is what the signatures cover: the wire body, or a multipart
    form's digest for phone_msg. `salt` and `yy_suffix` are the web bundle's constants
    in force (they rotate with the site's builds).
    """
    if not x_signature_ok(signature_mode, timestamp, token, body, x_sig, salt):
        return "bad_signature"
    if not same_digest(expected_yy(variant, surface, path, raw_query, body, unix_ms, origin,
                                   yy_suffix), yy):
        return "bad_yy"
    return None


def surface_of(path: str, session_prefixes: tuple[str, ...]) -> str:
    """Which signing surface a path belongs to."""
    if any(path.startswith(prefix + "/") for prefix in session_prefixes):
        return SURFACE_SESSION
    return SURFACE_MATRIX if path.startswith("/matrix/") else SURFACE_API


