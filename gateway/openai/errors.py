"""Rendering gateway errors in OpenAI's shape: ``{"error": {message, type, param, code}}``."""

from __future__ import annotations

from typing import Any

from flask import Response

from gateway.errors import GatewayError
from gateway.openai_family import error_kind
from gateway.web import error_response


def error_body(error: GatewayError) -> dict[str, Any]:
    kind, code = error_kind(error.kind)
    return {"error": {"message": error.message, "type": kind, "param": error.param, "code": code}}


def render(error: GatewayError) -> Response:
    return error_response(error_body(error), error)
