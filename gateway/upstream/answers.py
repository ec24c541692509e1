"""How the web surfaces' answers become data or gateway errors: one place that reads every
envelope (``base_resp`` of matrix and session, ``statusInfo`` of the v1 calls) and maps
the upstream's status codes onto :mod:`gateway.errors`. Pure functions of the status and
bytes received; the client (:mod:`gateway.upstream.client`) calls them on every answer.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.errors import (
    AccountInUse,
    GatewayError,
    NoCredits,
    QuotaExhausted,
    UpstreamBadAnswer,
    UpstreamError,
    UpstreamRejectedSignature,
    UpstreamServerError,
    UpstreamUnauthorized,
    UpstreamWrongPath,
)
from gateway.upstream import constants as C


def classify(status: int, payload: bytes) -> dict[str, Any]:
    """Turn an HTTP answer into its unwrapped data, or raise the matching error."""
    if status == 401:
        raise UpstreamUnauthorized()
    if status == 404:
        raise UpstreamWrongPath("MiniMax answered HTTP 404 (wrong path or surface).")
    document = _json_object(payload, status)
    code, message = status_of(document)
    if status == 400 and code == C.CODE_INVALID_SIGNATURE:
        raise UpstreamRejectedSignature()
    if code != C.CODE_OK or status != 200:
        raise error_for(code, message, status)
    data = document.get("data", document)
    return data if isinstance(data, dict) else {"data": data}


def xml_code(payload: bytes) -> str:
    """The ``<Code>`` of an object-storage XML error, for the message."""
    text = payload[:2000].decode("utf-8", "replace")
    start, end = text.find("<Code>"), text.find("</Code>")
    return text[start + 6 : end] if 0 <= start < end else ""


def _json_object(payload: bytes, status: int) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except ValueError:
        if status >= 500:
            raise UpstreamServerError(f"MiniMax answered HTTP {status}.") from None
        if payload.lstrip()[:1] == b"<":
            raise UpstreamWrongPath() from None
        raise UpstreamBadAnswer(f"MiniMax answered HTTP {status} with a non-JSON body.") from None
    if not isinstance(document, dict):
        raise UpstreamBadAnswer()
    return document


def status_of(document: dict[str, Any]) -> tuple[int, str]:
    """The status code of any envelope: ``base_resp`` (matrix, session) or ``statusInfo`` (v1)."""
    envelope = document.get("base_resp") or document.get("statusInfo") or {}
    if not isinstance(envelope, dict):
        return -1, "malformed status"
    code = envelope.get("status_code", envelope.get("code", C.CODE_OK))
    message = envelope.get("status_msg", envelope.get("message", ""))
    return (code if isinstance(code, int) else -1), str(message)[:200]


def error_for(code: int, message: str, status: int) -> GatewayError:
    """The gateway error for an upstream status code (and its message)."""
    if code == C.CODE_CHAT_RUNNING or C.BUSY_STATUS_MSG in message.lower():
        return AccountInUse()
    if code == C.CODE_NO_CREDITS:
        return NoCredits()
    if code == C.CODE_QUOTA:
        return QuotaExhausted("The MiniMax account's plan quota is exhausted.")
    if status >= 500:
        return UpstreamServerError(f"MiniMax answered error {code} (HTTP {status}): {message}")
    return UpstreamError(f"MiniMax answered error {code} (HTTP {status}): {message}")


def credits_of(data: dict[str, Any]) -> float | None:
    """Credits left: ``op_credit_summary.total_remaining_amount`` when present (migrated
    accounts, where the old field reads 0), else ``total_remains_credit``."""
    summary = data.get("op_credit_summary")
    amount = summary.get("total_remaining_amount") if isinstance(summary, dict) else None
    if isinstance(amount, (str, int, float)) and not isinstance(amount, bool):
        try:
            return float(amount)
        except ValueError:
            pass
    old = data.get("total_remains_credit")
    return float(old) if isinstance(old, (int, float)) and not isinstance(old, bool) else None
