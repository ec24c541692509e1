"""The OpenAPI 3.1 document of the gateway, served at ``GET /openapi.json``.

Request bodies come from each dialect's marshmallow schemas through apispec's
:class:`~apispec.ext.marshmallow.MarshmallowPlugin`; the chat and token-count answers
and every other JSON answer have their own schemas (:data:`RESPONSE_SCHEMAS`,
hand-written: no marshmallow schema renders them), a stream's schema describes each of its
events, and each route lists, in its dialect's error shape, the statuses it really
returns (``tests/system/test_fuzz.py`` holds the gateway to all of it). The document is built on the
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
from gateway.responses import schemas as responses_schemas
from gateway.validation import TextOrList

bp = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.1.0"
EXTENSION_KEY = "gateway.openapi"
#: Statuses the gateway's error handlers produce, with their meaning; each route names
#: the ones it can return (:data:`CHAT_ERRORS` and the like).
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
#: A route that sends a turn upstream: every error status there is.
CHAT_ERRORS: tuple[int, ...] = tuple(ERROR_STATUSES)
#: Validated and answered locally (token counts): no upstream status.
LOCAL_ERRORS: tuple[int, ...] = (400, 401, 404, 413, 429)
#: Model lists and infos: a key check (when keys are configured) and unknown models.
LOOKUP_ERRORS: tuple[int, ...] = (401, 404, 429)
#: OpenAPI 3.1 has a text/event-stream schema describe each event, not the stream.
SSE_EVENT: dict[str, Any] = {"type": "object", "required": ["data"], "properties": {
    "event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"},
    "retry": {"type": "integer"}}}
SSE: dict[str, Any] = {"text/event-stream": {"schema": SSE_EVENT}}
NULLABLE_STRING: dict[str, Any] = {"type": ["string", "null"]}
COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
RESPONSE_SCHEMAS: dict[str, dict[str, Any]] = {
    "OpenAIChatCompletionResponse": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
            "id": {"type": "string"}, "object": {"const": "chat.completion"},
            "created": {"type": "integer"}, "model": {"type": "string"},
            "choices": {"type": "array", "items": {"type": "object", "required": ["index", "message"], "properties": {
                "index": {"type": "integer"}, "finish_reason": NULLABLE_STRING,
                "message": {"type": "object", "required": ["role"], "properties": {
                    "role": {"const": "assistant"}, "content": NULLABLE_STRING,
                    "tool_calls": {"type": "array", "items": {"type": "object"}}}}}}},
            "usage": {"type": "object", "properties": {
                "prompt_tokens": COUNT, "completion_tokens": COUNT, "total_tokens": COUNT}},
        },
    },
    "ResponsesResponse": {
        "type": "object",
        "required": ["id", "object", "created_at", "status", "model", "output"],
        "properties": {
            "id": {"type": "string"}, "object": {"const": "response"}, "created_at": {"type": "integer"},
            "status": {"enum": ["completed", "incomplete", "failed", "in_progress"]}, "model": {"type": "string"},
            "output": {"type": "array", "items": {"type": "object", "required": ["type"],
                                                  "properties": {"type": {"type": "string"}}}},
            "error": {"type": ["object", "null"]}, "incomplete_details": {"type": ["object", "null"]},
            "usage": {"type": ["object", "null"], "properties": {
                "input_tokens": COUNT, "output_tokens": COUNT, "total_tokens": COUNT}},
        },
    },
    "CodexModelCatalogue": {"type": "object", "required": ["models"], "properties": {"models": {
        "type": "array", "items": {"type": "object", "required": ["slug", "context_window", "apply_patch_tool_type"],
                                   "properties": {"slug": {"type": "string"}, "context_window": COUNT,
                                                  "apply_patch_tool_type": {"type": "string"}}}}}},
    "ResponsesDeleted": {"type": "object", "required": ["id", "object", "deleted"], "properties": {
        "id": {"type": "string"}, "object": {"const": "response"}, "deleted": {"const": True}}},
    "AnthropicMessageResponse": {
        "type": "object",
        "required": ["id", "type", "role", "model", "content", "stop_reason", "usage"],
        "properties": {
            "id": {"type": "string"}, "type": {"const": "message"}, "role": {"const": "assistant"},
            "model": {"type": "string"},
            "content": {"type": "array", "items": {"type": "object", "required": ["type"],
                                                   "properties": {"type": {"type": "string"}}}},
            "stop_reason": NULLABLE_STRING, "stop_sequence": NULLABLE_STRING,
            "usage": {"type": "object", "required": ["input_tokens", "output_tokens"],
                      "properties": {"input_tokens": COUNT, "output_tokens": COUNT}},
        },
    },
    "AnthropicTokenCount": {"type": "object", "required": ["input_tokens"], "properties": {"input_tokens": COUNT}},
    "GeminiGenerateContentResponse": {
        "type": "object",
        "required": ["candidates"],
        "properties": {
            "candidates": {"type": "array", "items": {"type": "object", "properties": {
                "content": {"type": "object", "properties": {
                    "role": {"type": "string"}, "parts": {"type": "array", "items": {"type": "object"}}}},
                "finishReason": {"type": "string"}, "index": {"type": "integer"}}}},
            "usageMetadata": {"type": "object", "properties": {
                "promptTokenCount": COUNT, "candidatesTokenCount": COUNT, "totalTokenCount": COUNT}},
            "modelVersion": {"type": "string"}, "responseId": {"type": "string"},
        },
    },
    "GeminiTokenCount": {"type": "object", "required": ["totalTokens"], "properties": {"totalTokens": COUNT}},
    "OpenAIModel": {"type": "object", "required": ["id", "object", "created", "owned_by"], "properties": {
        "id": {"type": "string"}, "object": {"const": "model"}, "created": {"type": "integer"},
        "owned_by": {"type": "string"}, "context_window": COUNT, "max_output_tokens": COUNT}},
    "OpenAIModelList": {"type": "object", "required": ["object", "data"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": {"$ref": "#/components/schemas/OpenAIModel"}}}},
    "AnthropicModel": {"type": "object", "required": ["type", "id", "display_name", "created_at"], "properties": {
        "type": {"const": "model"}, "id": {"type": "string"}, "display_name": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"}, "max_input_tokens": COUNT, "max_tokens": COUNT}},
    "AnthropicModelList": {"type": "object", "required": ["data", "has_more", "first_id", "last_id"], "properties": {
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/AnthropicModel"}},
        "has_more": {"type": "boolean"}, "first_id": NULLABLE_STRING, "last_id": NULLABLE_STRING}},
    "GeminiModel": {"type": "object", "required": ["name", "displayName", "supportedGenerationMethods"], "properties": {
        "name": {"type": "string", "pattern": "^models/"}, "version": {"type": "string"},
        "displayName": {"type": "string"}, "description": {"type": "string"},
        "inputTokenLimit": COUNT, "outputTokenLimit": COUNT,
        "supportedGenerationMethods": {"type": "array", "items": {"type": "string"}}}},
    "GeminiModelList": {"type": "object", "required": ["models"], "properties": {
        "models": {"type": "array", "items": {"$ref": "#/components/schemas/GeminiModel"}}}},
    "OpenAITranscription": {"type": "object", "required": ["text"], "properties": {
        "text": {"type": "string"}, "task": {"const": "transcribe"}, "language": {"type": "string"},
        "duration": {"type": "number", "minimum": 0},
        "segments": {"type": "array", "items": {"type": "object", "required": ["id", "start", "end", "text"],
                                                "properties": {"id": COUNT, "start": {"type": "number"},
                                                               "end": {"type": "number"},
                                                               "text": {"type": "string"}}}}}},
    "TokenCheckReport": {
        "type": "object",
        "required": ["live", "credits", "surface", "failed_stage", "likely_cause", "stages", "surfaces", "seconds"],
        "properties": {
            "live": {"type": "boolean"}, "credits": {"type": ["number", "null"]}, "surface": NULLABLE_STRING,
            "signing": {"type": "string"}, "failed_stage": NULLABLE_STRING, "likely_cause": NULLABLE_STRING,
            "constants": {"type": "array", "items": {
                "type": "object", "required": ["name", "source", "age_seconds"], "properties": {
                    "name": {"type": "string"}, "source": {"enum": ["default", "setting", "bundle"]},
                    "age_seconds": {"type": ["number", "null"]}, "setting": {"type": "string"},
                    "script": {"type": "string"}}}},
            "stages": {"type": "array", "items": {"$ref": "#/components/schemas/TokenCheckStage"}},
            "surfaces": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["ok", "failed_stage", "stages"], "properties": {
                    "ok": {"type": "boolean"}, "failed_stage": NULLABLE_STRING,
                    "stages": {"type": "array", "items": {"$ref": "#/components/schemas/TokenCheckStage"}}}}},
            "seconds": {"type": "number", "minimum": 0},
        },
    },
    "TokenCheckStage": {"type": "object", "required": ["name", "ok", "detail"], "properties": {
        "name": {"type": "string"}, "ok": {"type": "boolean"}, "detail": {"type": "string"},
        "cause": {"type": "string"}, "label": {"type": "string"}}},
    "Health": {"type": "object", "required": ["status", "accounts", "surface", "surfaces"], "properties": {
        "status": {"const": "ok"},
        "accounts": {"type": "object", "required": ["busy", "cooling", "dead", "free"],
                     "properties": {name: COUNT for name in ("busy", "cooling", "dead", "free")}},
        "surface": {"type": "string"}, "surfaces": {"type": "object", "additionalProperties": {"type": "string"}},
        "state": {"enum": ["lasting", "temporary"]}, "warnings": {"type": "array", "items": {"type": "string"}}}},
    "Readiness": {"type": "object", "required": ["ready", "config", "upstream"], "properties": {
        "ready": {"type": "boolean"}, "config": {"type": "string"}, "upstream": {"type": "string"}}},
    "OpenAPIDocument": {"type": "object", "required": ["openapi", "info", "paths"], "properties": {
        "openapi": {"const": OPENAPI_VERSION}, "info": {"type": "object"}, "paths": {"type": "object"},
        "components": {"type": "object"}}},
    "Homepage": {"type": "object", "required": ["name", "endpoints"], "properties": {
        "name": {"type": "string"}, "endpoints": {"type": "array", "items": {"type": "string"}}}},
    "AdminOverview": {"type": "object", "required": ["generated_at", "mode", "accounts", "keys", "series"],
                      "properties": {"generated_at": {"type": "number"}, "mode": {"enum": ["keys", "personal"]},
                                     "accounts": {"type": "array", "items": {"type": "object"}},
                                     "keys": {"type": "array", "items": {"type": "object"}},
                                     "series": {"type": "object"},
                                     "warnings": {"type": "array", "items": {"type": "string"}}}},
    "AdminCodeAccounts": {"type": "object", "required": ["accounts"], "properties": {
        "accounts": {"type": "array", "items": {"type": "object", "required": [
            "name", "key", "region", "expires_at", "state", "reason", "quota"], "properties": {
            "name": {"type": "string"}, "key": {"type": "string"}, "region": {"type": "string"},
            "expires_at": {"type": "number"}, "state": {"enum": ["ok", "dead"]}, "reason": NULLABLE_STRING,
            "quota": {"type": ["object", "null"]}}}}}},
    "AdminSigninStatus": {"type": "object", "required": ["status", "message"], "properties": {
        "status": {"enum": ["pending", "ok", "denied", "expired", "failed"]}, "message": {"type": "string"},
        "interval": {"type": "number"}, "name": {"type": "string"}, "detail": {"type": "string"}}},
}
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
    content: dict[str, Any] = field(default_factory=dict)  # the 200 body by media type; each route names its own
    parameters: tuple[dict[str, Any], ...] = ()
    errors: tuple[int, ...] = ()  # the error statuses it returns, in its dialect's shape
    #: A route every dialect shares: its errors come in the caller's dialect's shape.
    any_dialect: bool = False
    example: dict[str, Any] | None = None  # a request body the gateway answers
    other: tuple[tuple[int, str], ...] = ()  # other statuses (status, description), no body schema


def _json(name: str) -> dict[str, Any]:
    """A JSON 200 body of the named response schema."""
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _any_json(*names: str) -> dict[str, Any]:
    """A JSON 200 body of any one of the named response schemas (which one: the caller's dialect)."""
    return {"application/json": {"schema": {"anyOf": [{"$ref": f"#/components/schemas/{n}"} for n in names]}}}


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    """An optional query parameter."""
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _path_param(name: str, example: str | None = None, **schema: Any) -> dict[str, Any]:
    """A required path parameter."""
    param = {"name": name, "in": "path", "required": True, "schema": {"type": "string", **schema}}
    if example is not None:
        param["example"] = example
    return param


HELLO = "Say hello."
#: Request bodies the gateway answers, one per chat dialect (shown by doc viewers, and
#: the fuzz's explicit examples: each gets answered once whatever the draw).
EXAMPLES: dict[str, dict[str, Any]] = {
    "OpenAI": {"model": "gpt-4o", "messages": [{"role": "user", "content": HELLO}]},
    "Responses": {"model": "MiniMax-M2", "input": HELLO},
    "Anthropic": {"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": [{"role": "user", "content": HELLO}]},
    "Gemini": {"contents": [{"role": "user", "parts": [{"text": HELLO}]}]},
}


GEMINI_RULE = "/<any(v1beta, v1, v1alpha):version>/models/<path:target>"
STORED_RULE = "/v1/responses/<response_id>"
CLIENT_VERSION = _query("client_version", "Sent by Codex CLI: the answer is its model catalogue", type="string")
RESPONSE_ID = _path_param("response_id", "resp_0123")
VERSION = _path_param("version", "v1beta", enum=["v1beta", "v1", "v1alpha"])
TEXT: dict[str, Any] = {"text/plain": {"schema": {"type": "string"}}}
HTML: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
ALT = _query("alt", "sse: a text/event-stream; otherwise one JSON array of responses", type="string")
BETA = _query("beta", "Sent by the Anthropic SDK's beta client; changes nothing", type="string")
LANG = _query("lang", "Page language (else Accept-Language)", type="string", enum=["en", "zh"])
ADMIN_OFF = ((404, "No admin key configured: the admin routes do not exist"),)
ADMIN_CSRF = (403, "The form's CSRF token is missing or wrong")


def operations() -> list[Operation]:
    """Every documented operation, one per (path, method)."""
    gemini_params = (VERSION, _path_param("model", "gemini-2.5-flash"))
    gemini_answer = _json("GeminiGenerateContentResponse")
    gemini_array = {"application/json": {"schema": {
        "type": "array", "items": {"$ref": "#/components/schemas/GeminiGenerateContentResponse"}}}}
    gemini_body = gemini_schemas.GenerateContentSchema
    return [
        Operation("/v1/chat/completions", "/v1/chat/completions", "POST", "OpenAI Chat Completions",
                  "OpenAI", openai_schemas.ChatCompletionSchema, stream=True,
                  content=_json("OpenAIChatCompletionResponse"), errors=CHAT_ERRORS, example=EXAMPLES["OpenAI"]),
        Operation("/v1/responses", "/v1/responses", "POST", "OpenAI Responses (previous_response_id continues a "
                  "stored one)", "OpenAI", responses_schemas.ResponsesSchema, stream=True,
                  content=_json("ResponsesResponse"), errors=CHAT_ERRORS, example=EXAMPLES["Responses"]),
        Operation(STORED_RULE, "/v1/responses/{response_id}", "GET", "A stored Responses answer", "OpenAI",
                  content=_json("ResponsesResponse"), parameters=(RESPONSE_ID,), errors=LOOKUP_ERRORS),
        Operation(STORED_RULE, "/v1/responses/{response_id}", "DELETE", "Delete a stored Responses answer",
                  "OpenAI", content=_json("ResponsesDeleted"), parameters=(RESPONSE_ID,), errors=LOOKUP_ERRORS),
        Operation("/v1/audio/speech", "/v1/audio/speech", "POST", "OpenAI text to speech", "OpenAI",
                  openai_schemas.SpeechSchema, content={"audio/*": {"schema": {"type": "string"}}},
                  errors=CHAT_ERRORS),
        Operation("/v1/audio/transcriptions", "/v1/audio/transcriptions", "POST", "OpenAI speech recognition",
                  "OpenAI", openai_schemas.TranscriptionSchema,
                  content={**_json("OpenAITranscription"), **TEXT, "text/vtt": {"schema": {"type": "string"}}},
                  errors=CHAT_ERRORS),
        Operation("/v1/messages", "/v1/messages", "POST", "Anthropic Messages", "Anthropic",
                  anthropic_schemas.MessagesSchema, stream=True, content=_json("AnthropicMessageResponse"),
                  parameters=(BETA,), errors=CHAT_ERRORS, example=EXAMPLES["Anthropic"]),
        Operation("/v1/messages/count_tokens", "/v1/messages/count_tokens", "POST", "Anthropic token count",
                  "Anthropic", anthropic_schemas.CountTokensSchema, content=_json("AnthropicTokenCount"),
                  parameters=(BETA,), errors=LOCAL_ERRORS),
        Operation(GEMINI_RULE, "/{version}/models/{model}:generateContent", "POST",
                  "Gemini generateContent, not streamed", "Gemini", gemini_body, content=gemini_answer,
                  parameters=gemini_params, errors=CHAT_ERRORS, example=EXAMPLES["Gemini"]),
        Operation(GEMINI_RULE, "/{version}/models/{model}:streamGenerateContent", "POST",
                  "Gemini generateContent, streamed (?alt=sse; else one JSON array)", "Gemini", gemini_body,
                  stream=True, content=gemini_array, parameters=(*gemini_params, ALT), errors=CHAT_ERRORS,
                  example=EXAMPLES["Gemini"]),
        Operation(GEMINI_RULE, "/{version}/models/{model}:countTokens", "POST", "Gemini token count", "Gemini",
                  gemini_schemas.CountTokensSchema, content=_json("GeminiTokenCount"),
                  parameters=gemini_params, errors=LOCAL_ERRORS),
        Operation("/v1beta/models", "/v1beta/models", "GET", "Gemini model list", "Gemini",
                  content=_json("GeminiModelList"), errors=LOOKUP_ERRORS),
        Operation("/v1beta/models/<path:model>", "/v1beta/models/{model}", "GET", "Gemini model info",
                  "Gemini", content=_json("GeminiModel"), parameters=(_path_param("model"),), errors=LOOKUP_ERRORS),
        Operation("/v1/models", "/v1/models", "GET", "Model list, in the caller's dialect", "OpenAI",
                  content=_any_json("OpenAIModelList", "AnthropicModelList", "GeminiModelList", "CodexModelCatalogue"),
                  parameters=(CLIENT_VERSION,), errors=LOOKUP_ERRORS, any_dialect=True),
        Operation("/v1/models/<path:model_id>", "/v1/models/{model_id}", "GET", "Model info", "OpenAI",
                  content=_any_json("OpenAIModel", "AnthropicModel", "GeminiModel"),
                  parameters=(_path_param("model_id"),), errors=LOOKUP_ERRORS, any_dialect=True),
        Operation("/token/check", "/token/check", "POST", "Diagnose a MiniMax credential", "OpenAI",
                  content=_json("TokenCheckReport"), errors=(400, 413)),
        Operation("/", "/", "GET", "Docs homepage (HTML, or JSON with Accept: application/json)",
                  content={**HTML, **_json("Homepage")}, parameters=(LANG,)),
        Operation("/openapi.json", "/openapi.json", "GET", "This OpenAPI document", content=_json("OpenAPIDocument")),
        Operation("/ping", "/ping", "GET", "Liveness: pong", content=TEXT),
        Operation("/healthz", "/healthz", "GET", "Process up, with account counts", content=_json("Health")),
        Operation("/readyz", "/readyz", "GET", "Ready (200) or not (503)", content=_json("Readiness"),
                  parameters=(LANG,), other=((503, "Not ready"),)),
        Operation("/metrics", "/metrics", "GET", "Prometheus metrics", content=TEXT),
        Operation("/admin", "/admin", "GET", "Admin page", content=HTML, parameters=(LANG,),
                  other=ADMIN_OFF),
        Operation("/admin/accounts", "/admin/accounts", "GET", "Admin data as JSON", content=_json("AdminOverview"),
                  other=((401, "Not logged in"), *ADMIN_OFF)),
        Operation("/admin/login", "/admin/login", "POST", "Admin log in (form fields key and csrf)", content=HTML,
                  parameters=(LANG,), other=((303, "Logged in: to the admin page"), (401, "Wrong key"),
                                             ADMIN_CSRF, *ADMIN_OFF)),
        Operation("/admin/logout", "/admin/logout", "POST", "Admin log out (form field csrf)", content=HTML,
                  other=((303, "Logged out: to the login page"), ADMIN_CSRF, *ADMIN_OFF)),
        Operation("/admin/signin/start", "/admin/signin/start", "POST",
                  "Start a MiniMax Code device login (form fields name, region)", content=HTML,
                  parameters=(LANG,), other=((303, "Started: to the login's page"), (401, "Not logged in"),
                                             (502, "The account host failed (a page says so)"),
                                             (503, "The account host was unreachable (a page says so)"),
                                             (504, "The account host did not answer in time (a page says so)"),
                                             *ADMIN_OFF)),
        Operation("/admin/signin/accounts", "/admin/signin/accounts", "GET",
                  "Signed-in MiniMax Code accounts with their quota, as JSON", content=_json("AdminCodeAccounts"),
                  other=((401, "Not logged in"), *ADMIN_OFF)),
        Operation("/admin/signin/<login_id>", "/admin/signin/{login_id}", "GET",
                  "A device login's page: user code, link, progress", content=HTML,
                  parameters=(_path_param("login_id"), LANG), other=((401, "Not logged in"), *ADMIN_OFF)),
        Operation("/admin/signin/<login_id>/poll", "/admin/signin/{login_id}/poll", "POST",
                  "One poll step of a device login", content=_json("AdminSigninStatus"),
                  parameters=(_path_param("login_id"), LANG), other=((401, "Not logged in"), *ADMIN_OFF)),
        Operation("/admin/signin/logout", "/admin/signin/logout", "POST",
                  "Log a MiniMax Code account out (form field name; local)", content=HTML,
                  other=((303, "Logged out: to the admin page"), (401, "Not logged in"), *ADMIN_OFF)),
    ]


def _error_responses(op: Operation) -> dict[str, Any]:
    """The error statuses of a route, each in its dialect's error shape; then the others."""
    ref: dict[str, Any] = {"$ref": f"#/components/schemas/{op.dialect}Error"}
    if op.any_dialect:
        ref = {"anyOf": [{"$ref": f"#/components/schemas/{name}Error"} for name in ("OpenAI", "Anthropic", "Gemini")]}
    found = {str(status): {"description": ERROR_STATUSES[status], "content": {"application/json": {"schema": ref}}}
             for status in op.errors}
    found.update({str(status): {"description": text} for status, text in op.other})
    return found


def _operation_dict(op: Operation) -> dict[str, Any]:
    """The OpenAPI operation object of ``op``."""
    content = dict(op.content)
    if op.stream:
        content.update(SSE)
    spec: dict[str, Any] = {
        "summary": op.summary,
        "x-flask-rule": op.rule,
        "security": DIALECT_SECURITY[op.dialect],
        "responses": {"200": {"description": "Success", "content": content}, **_error_responses(op)},
    }
    if op.dialect:
        spec["tags"] = [op.dialect]
    if op.parameters:
        spec["parameters"] = list(op.parameters)
    if op.body is not None:
        media = "multipart/form-data" if op.path == "/v1/audio/transcriptions" else "application/json"
        body: dict[str, Any] = {"schema": op.body}
        if op.example is not None:
            body["example"] = op.example
        spec["requestBody"] = {"required": True, "content": {media: body}}
    return spec


def build_spec() -> dict[str, Any]:
    """The whole document as a dict."""
    marshmallow = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(title="MiniMax Free API", version="1", openapi_version=OPENAPI_VERSION,
                   plugins=[marshmallow])
    assert marshmallow.converter is not None  # set by APISpec's plugin init
    marshmallow.converter.add_attribute_function(_text_or_list)  # type: ignore[no-untyped-call]  # unannotated upstream
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for name, schema in {**ERROR_SCHEMAS, **RESPONSE_SCHEMAS}.items():
        spec.components.schema(name, schema)
    # Custom fields (StopField, ToolChoiceField, Arguments) and Raw accept several JSON
    # types: apispec gives them no "type", which is what they mean; nothing to map.
    by_path: dict[str, dict[str, Any]] = {}
    for op in operations():
        by_path.setdefault(op.path, {})[op.method.lower()] = _operation_dict(op)
    for path, ops in by_path.items():
        spec.path(path=path, operations=ops)
    return spec.to_dict()


def _text_or_list(converter: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    """A :class:`TextOrList` (message content): a string, or a list of its items."""
    if not isinstance(field, TextOrList):
        return {}
    items = converter.field2property(field.items.inner)
    forms: list[dict[str, Any]] = [{"type": "string"}, {"type": "array", "items": items}]
    if field.allow_none:
        forms.append({"type": "null"})
    return {"anyOf": forms}


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
