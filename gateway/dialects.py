"""Which dialect a request speaks, for the routes and errors that several dialects share.

``GET /v1/models`` is the same path in all the APIs, and a request that matched no
route still deserves an error in its caller's shape. Each dialect is recognised by the
blueprint that served it, else by its paths and headers; OpenAI is the fallback. Codex
asks for ``/v1/models?client_version=…`` and gets its own catalogue (the Responses
dialect's): context windows, reasoning levels and the freeform ``apply_patch`` tool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Request, Response

from gateway import anthropic, gemini, openai, responses, web
from gateway.anthropic import translate as anthropic_translate
from gateway.chat.tokens import CHARS_PER_TOKEN
from gateway.errors import GatewayError
from gateway.gemini import translate as gemini_translate
from gateway.openai import translate as openai_translate
from gateway.parts import ModelInfo
from gateway.responses import translate as responses_translate


@dataclass(frozen=True)
class Dialect:
    name: str
    claims: Callable[[Request], bool]
    render_error: Callable[[GatewayError], Response]
    #: ``model_list(models)`` and ``model_info(model_id, models)``: the same signatures in
    #: every dialect's translate module.
    model_list: Callable[[tuple[ModelInfo, ...]], dict[str, Any]]
    model_info: Callable[[str, tuple[ModelInfo, ...]], dict[str, Any]]


def _anthropic(request: Request) -> bool:
    headers = request.headers
    return (
        request.blueprint == "anthropic"
        or request.path.startswith("/v1/messages")
        or "anthropic-version" in headers
        or "x-api-key" in headers
    )


def _gemini(request: Request) -> bool:
    return (
        request.blueprint == "gemini"
        or request.path.startswith(("/v1beta/", "/v1alpha/"))
        or "x-goog-api-key" in request.headers
        or "key" in request.args
        or (request.path.startswith("/v1/models/") and ":" in request.path)
    )


def _responses(request: Request) -> bool:
    return (request.blueprint == "responses" or request.path.startswith("/v1/responses")
            or "client_version" in request.args)


def _codex_models(models: tuple[ModelInfo, ...]) -> dict[str, Any]:
    # The context window is what the gateway sends upstream at most: its prompt limit.
    window = web.settings().prompt_max_chars // CHARS_PER_TOKEN
    return responses_translate.model_catalog(models, window)


ANTHROPIC = Dialect("anthropic", _anthropic, anthropic.render_error,
                    anthropic_translate.model_list, anthropic_translate.model_info)
GEMINI = Dialect("gemini", _gemini, gemini.render_error,
                 gemini_translate.model_list, gemini_translate.model_info)
RESPONSES = Dialect("responses", _responses, responses.render_error,
                    _codex_models, openai_translate.model_info)
OPENAI = Dialect("openai", lambda request: True, openai.render_error,
                 openai_translate.model_list, openai_translate.model_info)
#: In the order they are asked; OpenAI claims everything left.
DIALECTS = (ANTHROPIC, GEMINI, RESPONSES, OPENAI)


def of(request: Request) -> Dialect:
    return next(d for d in DIALECTS if d.claims(request))
