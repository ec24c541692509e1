"""What OpenAI's two APIs, Chat Completions (:mod:`gateway.openai`) and Responses
(:mod:`gateway.responses`), share on the wire: the error type and code of each neutral
error kind, and the JSON-string ``arguments`` field of a function call. Each dialect keeps
its own folder (dialects never import each other); this module is below both.
"""

from __future__ import annotations

import json
from typing import Any

from marshmallow import ValidationError, fields

#: neutral kind -> (error type, error code), as the real API names them.
ERROR_KINDS: dict[str, tuple[str, str | None]] = {
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


def error_kind(kind: str) -> tuple[str, str | None]:
    """The (type, code) of a neutral error kind; unknown kinds are internal errors."""
    return ERROR_KINDS.get(kind, ERROR_KINDS["internal"])


class Arguments(fields.Field[dict[str, Any]]):
    """A function call's ``arguments``: a JSON string, loaded (``{}`` when empty or not an object)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        if value in (None, ""):
            return {}
        if not isinstance(value, str):
            raise ValidationError("Function call arguments must be a JSON string.")
        try:
            arguments = json.loads(value)
        except ValueError:
            raise ValidationError("Function call arguments must be a JSON string.") from None
        return arguments if isinstance(arguments, dict) else {}
