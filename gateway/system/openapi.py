"""The OpenAPI 3.1 document of the gateway, served at ``GET /openapi.json``.

Request bodies come from each dialect's marshmallow schemas through apispec's
:class:`~apispec.ext.marshmallow.MarshmallowPlugin`; responses are loose objects where
no response schema exists, ``text/event-stream`` for streams, and the error shape of the
route's dialect for every status the gateway returns. The document is built on the
first request and kept on the app (``app.extensions``), never at import time. Every
operation carries ``x-flask-rule``, the werkzeug rule it documents, so a test can check
that no route of the URL map is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, current_app, jsonify
from marshmallow import Schema

from gateway.anthropic import schemas as anthropic_schemas
from gateway.gemini import schemas as gemini_schemas
from gateway.openai import schemas as openai_schemas

bp = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.1.0"
EXTENSION_KEY = "gateway.openapi"
#: Statuses the gateway's error handlers really produce, with their meaning.
ERROR_STATUSES: dict[int, str] = {
    400: "Invalid request",
    401: "Missing or unknown client key",
    404: "Unknown model or path",
    413: "Body over the size limit",
    429: "Every account busy or rate limited",
    502: "Upstream failed",
    503: "No account available",
    504: "Upstream timed out",
}
LOOSE_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
SSE: dict[str, Any] = {"text/event-stream": {"schema": {"type": "string"}}}
ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "OpenAIError": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["message", "type"], "properties": {
            "message": {"type": "string"}, "type": {"type": "string"},
            "param": {"type": ["string", "null"]}, "code": {"type": ["string", "integer", "null"]},
        }}},
    },
    "AnthropicError": {
        "type": "object",
        "required": ["type", "error"],
        "properties": {
            "type": {"const": "error"},
            "error": {"type": "object", "required": ["type", "message"], "properties": {
                "type": {"type": "string"}, "message": {"type": "string"}}},
            "request_id": {"type": "string"},
        },
    },
    "GeminiError": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message", "status"], "properties": {
            "code": {"type": "integer"}, "message": {"type": "string"}, "status": {"type": "string"}}}},
    },
}
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "xApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "xGoogApiKey": {"type": "apiKey", "in": "header", "name": "x-goog-api-key"},
    "keyQuery": {"type": "apiKey", "in": "query", "name": "key"},
}
DIALECT_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "OpenAI": [{"bearer": []}],
    "Anthropic": [{"xApiKey": []}, {"bearer": []}],
    "Gemini": [{"xGoogApiKey": []}, {"keyQuery": []}, {"bearer": []}],
    "": [],
}


@dataclass(frozen=True)
class Operation:
    """One documented method of one path."""

    rule: str  # the werkzeug rule it documents
    path: str  # OpenAPI's spelling
    method: str
    summary: str
    dialect: str = ""  # "OpenAI", "Anthropic", "Gemini" or "" (no API dialect)
    body: type[Schema] | None = None
    stream: bool = False  # answers text/event-stream (or JSON when not asked to stream)
    content: dict[str, Any] = field(default_factory=lambda: {"application/json": {"schema": LOOSE_OBJECT}})
    parameters: tuple[dict[str, Any], ...] = ()


def _path_param(name: str, **schema: Any) -> dict[str, Any]:
    """A required path parameter."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", **schema}}


GEMINI_RULE = "/<any(v1beta, v1, v1alpha):version>/models/<path:target>"
VERSION = _path_param("version", enum=["v1beta", "v1", "v1alpha"])
TEXT: dict[str, Any] = {"text/plain": {"schema": {"type": "string"}}}
HTML: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}


def operations() -> list[Operation]:
    """Every documented operation, one per (path, method)."""
    gemini_actions = [
        Operation(GEMINI_RULE, "/{version}/models/{model}:" + action, "POST", summary, "Gemini",
                  schema, stream=action.startswith("stream"), parameters=(VERSION, _path_param("model")))
        for action, summary, schema in (
            ("generateContent", "Gemini generateContent, not streamed", gemini_schemas.GenerateContentSchema),
            ("streamGenerateContent", "Gemini generateContent, streamed (?alt=sse)",
             gemini_schemas.GenerateContentSchema),
            ("countTokens", "Gemini token count", gemini_schemas.CountTokensSchema),
        )
    ]
    return [
        Operation("/v1/chat/completions", "/v1/chat/completions", "POST", "OpenAI Chat Completions",
                  "OpenAI", openai_schemas.ChatCompletionSchema, stream=True),
        Operation("/v1/audio/speech", "/v1/audio/speech", "POST", "OpenAI text to speech", "OpenAI",
                  openai_schemas.SpeechSchema, content={"audio/*": {"schema": {"type": "string"}}}),
        Operation("/v1/audio/transcriptions", "/v1/audio/transcriptions", "POST", "OpenAI speech recognition",
                  "OpenAI", openai_schemas.TranscriptionSchema),
        Operation("/v1/messages", "/v1/messages", "POST", "Anthropic Messages", "Anthropic",
                  anthropic_schemas.MessagesSchema, stream=True),
        Operation("/v1/messages/count_tokens", "/v1/messages/count_tokens", "POST", "Anthropic token count",
                  "Anthropic", anthropic_schemas.CountTokensSchema),
        *gemini_actions,
        Operation("/v1beta/models", "/v1beta/models", "GET", "Gemini model list", "Gemini"),
        Operation("/v1beta/models/<path:model>", "/v1beta/models/{model}", "GET", "Gemini model info",
                  "Gemini", parameters=(_path_param("model"),)),
        Operation("/v1/models", "/v1/models", "GET", "Model list, in the caller's dialect", "OpenAI"),
        Operation("/v1/models/<path:model_id>", "/v1/models/{model_id}", "GET", "Model info", "OpenAI",
                  parameters=(_path_param("model_id"),)),
        Operation("/token/check", "/token/check", "POST", "Diagnose a MiniMax credential", "OpenAI"),
        Operation("/", "/", "GET", "Docs homepage (HTML, or JSON with Accept: application/json)",
                  content={**HTML, "application/json": {"schema": LOOSE_OBJECT}}),
        Operation("/openapi.json", "/openapi.json", "GET", "This OpenAPI document"),
        Operation("/ping", "/ping", "GET", "Liveness: pong", content=TEXT),
        Operation("/healthz", "/healthz", "GET", "Process up, with account counts"),
        Operation("/readyz", "/readyz", "GET", "Ready (200) or not (503)"),
        Operation("/metrics", "/metrics", "GET", "Prometheus metrics", content=TEXT),
        Operation("/admin", "/admin", "GET", "Admin page", content=HTML),
        Operation("/admin/accounts", "/admin/accounts", "GET", "Admin data as JSON"),
        Operation("/admin/login", "/admin/login", "POST", "Admin log in (form field key)", content=HTML),
        Operation("/admin/logout", "/admin/logout", "POST", "Admin log out", content=HTML),
    ]


def _error_responses(dialect: str) -> dict[str, Any]:
    """The error statuses of a dialect's route, each with the dialect's error shape."""
    if not dialect:
        return {}
    ref = {"$ref": f"#/components/schemas/{dialect}Error"}
    return {str(status): {"description": text, "content": {"application/json": {"schema": ref}}}
            for status, text in ERROR_STATUSES.items()}


def _operation_dict(op: Operation) -> dict[str, Any]:
    """The OpenAPI operation object of ``op``."""
    content = dict(op.content)
    if op.stream:
        content.update(SSE)
    spec: dict[str, Any] = {
        "summary": op.summary,
        "x-flask-rule": op.rule,
        "security": DIALECT_SECURITY[op.dialect],
        "responses": {"200": {"description": "Success", "content": content}, **_error_responses(op.dialect)},
    }
    if op.dialect:
        spec["tags"] = [op.dialect]
    if op.parameters:
        spec["parameters"] = list(op.parameters)
    if op.body is not None:
        media = "multipart/form-data" if op.path == "/v1/audio/transcriptions" else "application/json"
        spec["requestBody"] = {"required": True, "content": {media: {"schema": op.body}}}
    return spec


def build_spec() -> dict[str, Any]:
    """The whole document as a dict."""
    marshmallow = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(title="MiniMax Free API", version="1", openapi_version=OPENAPI_VERSION,
                   plugins=[marshmallow])
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for name, schema in ERROR_SCHEMAS.items():
        spec.components.schema(name, schema)
    # Custom fields (StopField, ToolChoiceField, Arguments) and Raw accept several JSON
    # types: apispec gives them no "type", which is what they mean; nothing to map.
    by_path: dict[str, dict[str, Any]] = {}
    for op in operations():
        by_path.setdefault(op.path, {})[op.method.lower()] = _operation_dict(op)
    for path, ops in by_path.items():
        spec.path(path=path, operations=ops)
    return spec.to_dict()


def _schema_name(schema: Any) -> str:
    """A component name unique across dialects: ``OpenAIChatCompletion``."""
    cls = schema if isinstance(schema, type) else type(schema)
    dialect = cls.__module__.split(".")[1].capitalize()
    name = cls.__name__.removesuffix("Schema") or cls.__name__
    return f"{dialect}{name}"


@bp.route("/openapi.json", methods=["GET", "HEAD"])
def openapi_json() -> Response:
    """The OpenAPI 3.1 document of every public endpoint, built from the request schemas."""
    document = current_app.extensions.get(EXTENSION_KEY)
    if document is None:
        document = current_app.extensions[EXTENSION_KEY] = build_spec()
    return jsonify(document)
