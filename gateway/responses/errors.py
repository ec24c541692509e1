"""Rendering gateway errors in the Responses API's shapes: the HTTP error body
``{"error": {message, type, param, code}}`` and the ``error`` of a ``response.failed``
event (``{code, message}``, with the codes Codex and the SDKs act on)."""

from __future__ import annotations

import math
from typing import Any

from flask import Response

from gateway.errors import GatewayError, PromptTooLong
from gateway.openai_family import error_kind
from gateway.web import error_response

#: The code of a prompt over the size limit (clients compact their history on it).
CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
#: neutral kind -> ``response.failed`` error code; every other kind is a server error.
FAILURE_CODES: dict[str, str] = {"rate_limit": "rate_limit_exceeded", "quota": "insufficient_quota"}
SERVER_ERROR = "server_error"


def _code(error: GatewayError) -> str | None:
    if isinstance(error, PromptTooLong):
        return CONTEXT_LENGTH_EXCEEDED
    return error_kind(error.kind)[1]


def error_body(error: GatewayError) -> dict[str, Any]:
    kind = error_kind(error.kind)[0]
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
