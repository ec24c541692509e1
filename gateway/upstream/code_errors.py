"""How the MiniMax Code surface's error answers become gateway errors (page §2's table).

The inner business ``status_code`` wins over the outer HTTP status; the official client
reads it from ``base_resp``, a top-level ``status_code``, the error object, or a ``(NNNN)``
at the end of the message, and so does :func:`code_error`. Messages carry the upstream's
reason (it names a parameter, never a credential), cut to a readable length.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from gateway.errors import (
    GatewayError,
    NoCredits,
    QuotaExhausted,
    UpstreamBadAnswer,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamRefusedRequest,
    UpstreamServerError,
    UpstreamUnauthorized,
    UpstreamWrongPath,
)

#: Business codes of the official ``UPSTREAM_STATUS_CODE_MAP`` (page §2, errors and quota).
INVALID_PARAMS: Final = 2013
QUOTA_CODES: Final = frozenset({2056, 2067})
CREDIT_CODES: Final = frozenset({1400010161, 1008})
RATE_CODES: Final = frozenset({2045, 2046, 2047, 1039, 1041})
WRONG_ROUTE: Final = 50115
QUOTA_WORDS: Final = ("usage limit exceeded", "token plan limit", "package quota has reached")
CREDIT_WORDS: Final = ("insufficient balance", "hibernation")
#: Seconds to tell a client to wait after the upstream's own 429 without a Retry-After
#: ([unknown] on the page: its behaviour is not documented).
DEFAULT_RETRY_AFTER: Final = 10.0
#: How much of the upstream's reason a message repeats.
REASON_CHARS: Final = 300
_TRAILING_CODE = re.compile(r"\((\d{3,10})\)\s*$")


def code_error(status: int, payload: bytes, retry_after: str | None = None) -> GatewayError:
    """The gateway error for an HTTP answer other than 200 (or an in-stream error frame,
    given as status 200 and its ``error`` object)."""
    document = _document(payload)
    code, reason = _business(document)
    lowered = reason.lower()
    if status == 401:
        return UpstreamUnauthorized()
    if code == WRONG_ROUTE or "direct_route_not_configured" in lowered:
        return UpstreamWrongPath("MiniMax Code answered direct_route_not_configured (wrong path).")
    if code in QUOTA_CODES or any(word in lowered for word in QUOTA_WORDS):
        return QuotaExhausted(f"The MiniMax Code quota of this account is used up: {reason}"[:REASON_CHARS])
    if status == 402 or code in CREDIT_CODES or any(word in lowered for word in CREDIT_WORDS):
        return NoCredits()
    if status == 429 or code in RATE_CODES:
        return UpstreamRateLimited(retry_after=_seconds(retry_after))
    if status == 529 or "overloaded" in lowered:
        return UpstreamOverloaded()
    if status in (400, 422) or code == INVALID_PARAMS:
        return UpstreamRefusedRequest(f"MiniMax refused the request: {reason or 'invalid params'}"[:REASON_CHARS])
    if status >= 500:
        return UpstreamServerError(f"MiniMax Code answered HTTP {status}.")
    if status == 200:
        return UpstreamError(f"MiniMax Code ended the answer with an error: {reason}"[:REASON_CHARS])
    return UpstreamBadAnswer(f"MiniMax Code answered HTTP {status}.")


def _document(payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except ValueError:
        return {}
    if isinstance(document, dict) and isinstance(document.get("responseBody"), str):
        return _document(document["responseBody"].encode())  # an AI-SDK wrapper (page §2)
    return document if isinstance(document, dict) else {}


def _business(document: dict[str, Any]) -> tuple[int | None, str]:
    """The business code and the reason, wherever the answer put them."""
    error, base = _object(document.get("error")), _object(document.get("base_resp"))
    reason = str(error.get("message") or base.get("status_msg") or document.get("message")
                 or document.get("errorReason") or "")
    for value in (base.get("status_code"), document.get("status_code"), error.get("code"),
                  document.get("errorCode"), document.get("code")):
        if isinstance(value, int) and not isinstance(value, bool) and value not in (0, 401):
            return value, reason
    found = _TRAILING_CODE.search(reason)
    return (int(found.group(1)) if found else None), reason


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _seconds(value: str | None) -> float:
    try:
        seconds = float(value) if value else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER
    return seconds if 0 < seconds < 3600 else DEFAULT_RETRY_AFTER
