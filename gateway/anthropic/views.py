"""Anthropic Messages routes: ``/v1/messages`` (also ``?beta=true``) and count_tokens.

Views are thin: validate, translate, call the service, render.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from gateway import web
from gateway.anthropic import translate
from gateway.anthropic.schemas import CountTokensSchema, MessagesSchema
from gateway.chat.pool import Accounts

bp = Blueprint("anthropic", __name__)


def credentials() -> Accounts:
    """The caller's accounts, from ``x-api-key`` or ``Authorization: Bearer``."""
    return web.credentials(request.headers.get("x-api-key"), web.bearer_token())


@bp.post("/v1/messages")
def messages() -> Response:
    """Anthropic Messages, streamed or not."""
    accounts = credentials()
    data = web.load(MessagesSchema, web.json_body())
    chat = web.pinned(translate.to_chat_request(data))
    thinking = translate.wants_thinking(data)
    generation = web.service().open(chat, accounts, web.disconnect_probe())
    if data.get("stream"):
        stream = translate.EventStream(data["model"], generation.input_tokens, thinking)
        return web.stream(stream.frames(generation.events()), generation.close)
    return jsonify(translate.message(generation.result(), data["model"], thinking))


@bp.post("/v1/messages/count_tokens")
def count_tokens() -> Response:
    """Anthropic token count."""
    accounts = credentials()
    data = web.load(CountTokensSchema, web.json_body())
    tokens = web.service().count_tokens(translate.to_chat_request(data), accounts.credentials)
    return jsonify(translate.count_tokens(tokens))
