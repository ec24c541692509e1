"""Flask-side helpers shared by every dialect's views.

Reading the JSON body, validating it with a marshmallow schema (errors name the field),
finding the caller's MiniMax credentials, noticing a client that went away, and building
streaming responses that no proxy buffers.
"""

from __future__ import annotations

import math
import select
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Response, current_app, jsonify, request
from marshmallow import Schema, ValidationError

from gateway.chat.service import ChatService
from gateway.chat.speech import SpeechService
from gateway.config import Settings
from gateway.errors import GatewayError, InvalidRequest, MissingCredentials
from gateway.upstream.credentials import Credential, parse_pool
from gateway.validation import first_error

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
#: The accounts a request may use, as parsed from its credential header.
Credentials = list[Credential]


def service() -> ChatService:
    chat: ChatService = current_app.extensions["gateway.chat"]
    return chat


def speech() -> SpeechService:
    speaker: SpeechService = current_app.extensions["gateway.speech"]
    return speaker


def settings() -> Settings:
    configured: Settings = current_app.extensions["gateway.settings"]
    return configured


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 saying what is wrong with it."""
    data: Any = request.get_json(silent=True, force=True)
    if data is None:
        raise InvalidRequest("The request body is not valid JSON.")
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    body: dict[str, Any] = data
    return body


def load(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``data``; the first error becomes a 400 naming its JSON path, both in the
    message and as ``param`` (``messages[2].content[0].image_url.url``)."""
    try:
        loaded: dict[str, Any] = schema.load(data)
        return loaded
    except ValidationError as error:
        path, message = first_error(error.messages)
        raise InvalidRequest(f"Invalid '{path}': {message}", param=path) from None


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def credentials(*candidates: str | None) -> Credentials:
    """Parse the first credential text given; 401 when there is none."""
    for text in candidates:
        if text and text.strip():
            return parse_pool(text)
    raise MissingCredentials()


def disconnect_probe() -> Callable[[], bool]:
    """A cheap check of whether the client closed its connection.

    Under gunicorn the WSGI environ carries the client socket: it turns readable with
    zero bytes pending once the peer has closed. Elsewhere (tests, other servers) the
    probe reports "connected" and disconnects are noticed when a write fails.
    """
    sock = request.environ.get("gunicorn.socket")
    if sock is None:
        return lambda: False

    def closed() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    return closed


def error_response(body: dict[str, Any], error: GatewayError) -> Response:
    """A dialect's error body with the error's status (and Retry-After when it has one)."""
    response = jsonify(body)
    response.status_code = error.status
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(math.ceil(error.retry_after))
    return response


def stream(
    frames: Iterable[bytes],
    on_close: Callable[[], None],
    mimetype: str = "text/event-stream",
) -> Response:
    """A streamed response; ``on_close`` runs when the server is done with it, however
    the stream ended (finished, failed, or the client went away)."""
    response = Response(frames, mimetype=mimetype, headers=STREAM_HEADERS, direct_passthrough=True)
    response.call_on_close(on_close)
    return response
