"""Rendering gateway errors in Anthropic's shape:
``{"type": "error", "error": {"type", "message"}, "request_id"}``."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response

from gateway.errors import GatewayError
from gateway.web import error_response

#: neutral kind -> Anthropic error type.
KINDS: dict[str, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "model_not_found": "not_found_error",
    "too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "quota": "rate_limit_error",
    "upstream": "api_error",
    "unavailable": "overloaded_error",
    "timeout": "timeout_error",
    "internal": "api_error",
}


def error_body(error: GatewayError) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": KINDS.get(error.kind, KINDS["internal"]), "message": error.message},
        "request_id": f"req_{uuid.uuid4().hex[:24]}",
    }


def render(error: GatewayError) -> Response:
    return error_response(error_body(error), error)
