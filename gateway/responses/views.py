"""Responses API routes: create (streamed or not), get and delete a stored response.

Views are thin: validate, translate, call the service, render, store.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from gateway import web
from gateway.chat.pool import Accounts
from gateway.errors import NotFound
from gateway.responses import translate
from gateway.responses.schemas import HistorySchema, ResponsesSchema
from gateway.responses.store import ResponseStore, Stored
from gateway.responses.stream import ResponseStream

bp = Blueprint("responses", __name__)


def credentials() -> Accounts:
    """The caller's accounts, from ``Authorization: Bearer``."""
    return web.credentials(web.bearer_token())


def store() -> ResponseStore:
    """The stored responses of the authenticated caller."""
    settings = web.settings()
    return ResponseStore(web.state(), web.caller_scope(), settings.responses_ttl, settings.responses_max_kb * 1024)


def stored(responses: ResponseStore, response_id: str, param: str | None = None) -> Stored:
    found = responses.load(response_id)
    if found is None:
        raise NotFound(f"Response with id '{response_id}' not found.", param=param)
    return found


@bp.post("/v1/responses")
def create() -> Response:
    """OpenAI Responses, streamed or not (previous_response_id continues a stored one)."""
    accounts = credentials()
    raw = web.json_body()
    data = web.load(ResponsesSchema, raw)
    responses = store()
    history: list[dict[str, Any]] = []
    if data.get("previous_response_id"):
        history = stored(responses, data["previous_response_id"], "previous_response_id").items
    earlier = web.load(HistorySchema, {"input": history})["input"] if history else []
    chat = web.pinned(translate.to_chat_request(data, earlier))
    shape = translate.Shape.of(data, raw)
    sent = [*history, *translate.input_items(raw.get("input"))]

    def keep(body: dict[str, Any]) -> None:
        if data.get("store") is not False:
            responses.save(body, [*sent, *body["output"]])

    generation = web.service().open(chat, accounts, web.disconnect_probe())
    if data.get("stream"):
        stream = ResponseStream(shape, generation.input_tokens, keep)
        return web.stream(stream.frames(generation.events()), generation.close)
    body = translate.response(generation.result(), shape)
    keep(body)
    return jsonify(body)


@bp.route("/v1/responses/<response_id>", methods=["GET", "DELETE"])
def stored_response(response_id: str) -> Response:
    """A stored response, by id: GET returns it, DELETE deletes it."""
    credentials()
    responses = store()
    if request.method == "DELETE":
        if not responses.delete(response_id):
            raise NotFound(f"Response with id '{response_id}' not found.")
        return jsonify({"id": response_id, "object": "response", "deleted": True})
    return jsonify(stored(responses, response_id).response)
