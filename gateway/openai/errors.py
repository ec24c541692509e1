"""Rendering gateway errors in OpenAI's shape: ``{"error": {message, type, param, code}}``."""

from __future__ import annotations

from typing import Any

from flask import Response

from gateway.errors import GatewayError
from gateway.web import error_response

#: neutral kind -> (error type, error code), as the real API names them.
KINDS: dict[str, tuple[str, str | None]] = {
    "invalid_request": ("invalid_request_error", None),
    "authentication": ("invalid_request_error", "invalid_api_key"),
    "permission": ("invalid_request_error", "permission_denied"),
    "not_found": ("invalid_request_error", "not_found"),
    "model_not_found": ("invalid_request_error", "model_not_found"),
    "too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit": ("requests", "rate_limit_exceeded"),
    "quota": ("insufficient_quota", "insufficient_quota"),
    "upstream": ("server_error", "upstream_error"),
    "unavailable": ("server_error", "upstream_unavailable"),
    "timeout": ("server_error", "upstream_timeout"),
    "internal": ("server_error", "internal_error"),
}


def error_body(error: GatewayError) -> dict[str, Any]:
    kind, code = KINDS.get(error.kind, KINDS["internal"])
    return {"error": {"message": error.message, "type": kind, "param": error.param, "code": code}}


def render(error: GatewayError) -> Response:
    return error_response(error_body(error), error)
