"""Gemini routes: ``/{v1beta|v1}/models/{model}:generateContent``, ``:streamGenerateContent``,
``:countTokens``, and the model list under ``/v1beta``.

Views are thin: validate, translate, call the service, render.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from gateway import web
from gateway.chat.pool import Accounts
from gateway.errors import NotFound
from gateway.gemini import translate
from gateway.gemini.schemas import CountTokensSchema, GenerateContentSchema

bp = Blueprint("gemini", __name__)

VERSIONS = "<any(v1beta, v1, v1alpha):version>"


def credentials() -> Accounts:
    """The caller's accounts, from ``x-goog-api-key``, ``?key=`` or ``Authorization: Bearer``."""
    return web.credentials(
        request.headers.get("x-goog-api-key"), request.args.get("key"), web.bearer_token()
    )


@bp.post(f"/{VERSIONS}/models/<path:target>")
def model_action(version: str, target: str) -> Response:
    """Gemini {model}:generateContent, :streamGenerateContent, :countTokens."""
    model, _, action = translate.model_name(target).rpartition(":")
    handlers = dict(zip(translate.METHODS, (_generate, _generate, _count_tokens), strict=True))
    if not model or action not in handlers:
        raise NotFound(f"Unknown method '{action or target}'.")
    return handlers[action](model, action == "streamGenerateContent")


def _generate(model: str, streamed: bool) -> Response:
    accounts = credentials()
    data = web.load(GenerateContentSchema, web.json_body())
    chat = web.pinned(translate.to_chat_request(data, model))
    thoughts = translate.wants_thoughts(data)
    generation = web.service().open(chat, accounts, web.disconnect_probe())
    if not streamed:
        return jsonify(translate.response(generation.result(), model, thoughts))
    renderer = translate.ResponseStream(model, thoughts)
    if request.args.get("alt") == "sse":
        return web.stream(renderer.sse_frames(generation.events()), generation.close)
    return web.stream(renderer.json_array(generation.events()), generation.close, "application/json")


def _count_tokens(model: str, _streamed: bool) -> Response:
    accounts = credentials()
    data = web.load(CountTokensSchema, web.json_body())
    tokens = web.service().count_tokens(translate.to_count_request(data, model), accounts.credentials)
    return jsonify(translate.count_tokens(tokens))


@bp.get("/v1beta/models")
def list_models() -> Response:
    """Gemini model list."""
    return jsonify(translate.model_list(web.service().models(web.caller_accounts())))


@bp.get("/v1beta/models/<path:model>")
def get_model(model: str) -> Response:
    """Gemini model info."""
    return jsonify(translate.model_info(model, web.service().models(web.caller_accounts())))
