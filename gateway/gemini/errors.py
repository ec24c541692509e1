"""Rendering gateway errors in Google's shape: ``{"error": {code, message, status}}``."""

from __future__ import annotations

from typing import Any

from flask import Response

from gateway.errors import GatewayError
from gateway.web import error_response

#: neutral kind -> Google status name.
KINDS: dict[str, str] = {
    "invalid_request": "INVALID_ARGUMENT",
    "authentication": "UNAUTHENTICATED",
    "permission": "PERMISSION_DENIED",
    "not_found": "NOT_FOUND",
    "model_not_found": "NOT_FOUND",
    "too_large": "INVALID_ARGUMENT",
    "rate_limit": "RESOURCE_EXHAUSTED",
    "quota": "RESOURCE_EXHAUSTED",
    "upstream": "INTERNAL",
    "unavailable": "UNAVAILABLE",
    "timeout": "DEADLINE_EXCEEDED",
    "internal": "INTERNAL",
}


def error_body(error: GatewayError) -> dict[str, Any]:
    return {"error": {"code": error.status, "message": error.message,
                      "status": KINDS.get(error.kind, KINDS["internal"])}}


def render(error: GatewayError) -> Response:
    return error_response(error_body(error), error)
