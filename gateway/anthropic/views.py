"""Anthropic Messages routes: ``/v1/messages`` (also ``?beta=true``) and count_tokens.

Views are thin: validate, translate, call the service, render.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from gateway import http
from gateway.anthropic import translate
from gateway.anthropic.schemas import CountTokensSchema, MessagesSchema

bp = Blueprint("anthropic", __name__)


def credentials() -> http.Credentials:
    """The caller's accounts, from ``x-api-key`` or ``Authorization: Bearer``."""
    return http.credentials(request.headers.get("x-api-key"), http.bearer_token())


@bp.post("/v1/messages")
def messages() -> Response:
    """Anthropic Messages, streamed or not."""
    creds = credentials()
    data = http.load(MessagesSchema, http.json_body())
    chat = http.pinned(translate.to_chat_request(data))
    thinking = translate.wants_thinking(data)
    generation = http.service().open(chat, creds, http.disconnect_probe())
    if data.get("stream"):
        stream = translate.EventStream(data["model"], generation.input_tokens, thinking)
        return http.stream(stream.frames(generation.events()), generation.close)
    return jsonify(translate.message(generation.result(), data["model"], thinking))


@bp.post("/v1/messages/count_tokens")
def count_tokens() -> Response:
    """Anthropic token count."""
    credentials()
    data = http.load(CountTokensSchema, http.json_body())
    tokens = http.service().count_tokens(translate.to_chat_request(data))
    return jsonify(translate.count_tokens(tokens))
