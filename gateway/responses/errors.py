"""Rendering gateway errors in the Responses API's shapes: the HTTP error body
``{"error": {message, type, param, code}}`` and the ``error`` of a ``response.failed``
event (``{code, message}``, with the codes Codex and the SDKs act on)."""

from __future__ import annotations

import math
from typing import Any

from flask import Response

from gateway.errors import GatewayError, PromptTooLong
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
#: The code of a prompt over the size limit (clients compact their history on it).
CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
#: neutral kind -> ``response.failed`` error code; every other kind is a server error.
FAILURE_CODES: dict[str, str] = {"rate_limit": "rate_limit_exceeded", "quota": "insufficient_quota"}
SERVER_ERROR = "server_error"


def _code(error: GatewayError) -> str | None:
    if isinstance(error, PromptTooLong):
        return CONTEXT_LENGTH_EXCEEDED
    return KINDS.get(error.kind, KINDS["internal"])[1]


def error_body(error: GatewayError) -> dict[str, Any]:
    kind = KINDS.get(error.kind, KINDS["internal"])[0]
    return {"error": {"message": error.message, "type": kind, "param": error.param, "code": _code(error)}}


def failure(error: GatewayError) -> dict[str, str]:
    """The ``error`` of a failed response; a retry delay is said the way Codex reads it."""
    if isinstance(error, PromptTooLong):
        code = CONTEXT_LENGTH_EXCEEDED
    else:
        code = FAILURE_CODES.get(error.kind, SERVER_ERROR)
    message = error.message
    if error.retry_after is not None:
        message += f" Please try again in {math.ceil(error.retry_after)}s."
    return {"code": code, "message": message}


def render(error: GatewayError) -> Response:
    return error_response(error_body(error), error)
