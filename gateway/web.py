"""Flask-side helpers shared by every dialect's views.

Reading the JSON body, validating it with a marshmallow schema (errors name the field),
authenticating the caller (a client key, or their own MiniMax credential: see
:mod:`gateway.accounts`), noticing a client that went away, and building streaming
responses that no proxy buffers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import select
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from flask import Response, after_this_request, current_app, g, jsonify, request
from marshmallow import Schema, ValidationError

from gateway.accounts import AccountsService, Caller
from gateway.chat.pool import Accounts
from gateway.chat.service import ChatService
from gateway.chat.speech import SpeechService
from gateway.config import Settings
from gateway.errors import GatewayError, InvalidRequest
from gateway.parts import ChatRequest
from gateway.state import SharedState
from gateway.upstream.credentials import Credential
from gateway.validation import MAX_CONVERSATION_ID, first_error

log = logging.getLogger("gateway.web")

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
#: The accounts a request may use.


def service() -> ChatService:
    chat: ChatService = current_app.extensions["gateway.chat"]
    return chat


def speech() -> SpeechService:
    speaker: SpeechService = current_app.extensions["gateway.speech"]
    return speaker


def accounts() -> AccountsService:
    service: AccountsService = current_app.extensions["gateway.accounts"]
    return service


def settings() -> Settings:
    configured: Settings = current_app.extensions["gateway.settings"]
    return configured


def state() -> SharedState:
    shared: SharedState = current_app.extensions["gateway.state"]
    return shared


def _encodable(data: Any, raw: bytes) -> bool:
    """Whether the parsed body holds no lone surrogate, which Python decodes from a
    ``\\ud800``-style escape into a str no UTF-8 encoder (ours, upstream's) accepts.
    Only bodies with such an escape at all are encoded again to find out."""
    if b"\\ud" not in raw and b"\\uD" not in raw:
        return True
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 saying what is wrong with it."""
    try:
        data: Any = request.get_json(silent=True, force=True)
    except RecursionError:
        # silent=True only catches decode errors; JSON nested thousands deep overflows the
        # parser's stack instead, and that is the client's fault, not a 500.
        raise InvalidRequest("The request body is nested too deeply.") from None
    if data is None:
        raise InvalidRequest("The request body is not valid JSON.")
    if not _encodable(data, request.get_data(cache=True)):
        raise InvalidRequest("The request body holds a lone surrogate (\\ud800-\\udfff escape): "
                             "text must be valid Unicode.")
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    body: dict[str, Any] = data
    return body


def load(schema: type[Schema], data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``data`` with one shared instance of ``schema``; the first error becomes a
    400 naming its JSON path, both in the message and as ``param``
    (``messages[2].content[0].image_url.url``)."""
    try:
        loaded: dict[str, Any] = schema_instance(schema).load(data)
        return loaded
    except ValidationError as error:
        path, message = first_error(error.messages)
        raise InvalidRequest(f"Invalid '{path}': {message}", param=path) from None


@functools.cache
def schema_instance(schema: type[Schema]) -> Schema:
    """One instance per schema class and process: building one deep-copies every declared
    field (a few percent of a worker's CPU per request), and ``load`` keeps no state on
    the instance (marshmallow 4 has no ``context``)."""
    return schema()


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def credentials(*candidates: str | None) -> Accounts:
    """The accounts of the caller whose key (or credential) is the first text given;
    401 when there is none or it is not accepted, 429 past the key's limits.

    Authenticated once per request: a key's concurrency slot is held until the response
    is closed (a stream: when it ends).
    """
    caller: Caller | None = g.get("caller")
    if caller is None:
        caller = g.caller = accounts().caller(candidates)
        _release_when_done(caller)
    return caller.accounts


def caller_scope() -> str:
    """A stable, non-secret name of the authenticated caller (after :func:`credentials`):
    its client key's id, or in personal use a digest of its credentials' keys, so what
    one caller stores is never found by another."""
    caller: Caller = g.caller
    if caller.key is not None:
        return f"key.{caller.key.id}"
    keys = ",".join(sorted(cred.key for cred in caller.accounts.credentials))
    return "own." + hashlib.sha256(keys.encode()).hexdigest()[:32]


def key_checked() -> None:
    """For routes that use no account (model lists): with client keys configured, the
    request must still carry a valid one, wherever its dialect puts it."""
    if accounts().keyed:
        credentials(*_any_key())


def caller_accounts() -> tuple[Credential, ...]:
    """For routes that need no account but show more with one (model lists): the
    caller's accounts, after the key check; none when a personal caller sent none or
    one that is not accepted."""
    key_checked()
    given = _any_key()
    if accounts().keyed:
        return credentials(*given).credentials
    if not any(given):
        return ()
    try:
        return credentials(*given).credentials
    except GatewayError:
        return ()


def _any_key() -> tuple[str | None, ...]:
    return (bearer_token(), request.headers.get("x-api-key"), request.headers.get("x-goog-api-key"),
            request.args.get("key"))


def _release_when_done(caller: Caller) -> None:
    g.setdefault("closers", []).append(caller.done)  # a stream runs it when it ends (see stream())

    @after_this_request
    def hold_until_closed(response: Response) -> Response:
        response.call_on_close(caller.done)  # any other response (idempotent when both run)
        return response


#: The header pinning the upstream conversation a request continues (any dialect).
CONVERSATION_HEADER = "X-Conversation-Id"


def pinned(chat: ChatRequest) -> ChatRequest:
    """The chat, pinned to the conversation ``X-Conversation-Id`` names (over metadata)."""
    pin = request.headers.get(CONVERSATION_HEADER, "").strip()
    if not pin:
        return chat
    if len(pin) > MAX_CONVERSATION_ID:
        raise InvalidRequest(f"{CONVERSATION_HEADER} is longer than {MAX_CONVERSATION_ID} characters.")
    return replace(chat, conversation_id=pin)


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
    """A streamed response; ``on_close`` (then whatever the request holds until its
    response ends) runs when the server is done with it, however the stream ended
    (finished, failed, or the client went away)."""
    body = ClosingFrames(frames, [on_close, *g.get("closers", [])])
    return Response(body, mimetype=mimetype, headers=STREAM_HEADERS, direct_passthrough=True)


class ClosingFrames:
    """A response body that runs its closers when the WSGI server closes it.

    With ``direct_passthrough`` the server is handed this object itself (werkzeug's
    ``call_on_close`` hooks never run then), and every WSGI server calls ``close()``
    on the body it was given, even one it never started to iterate.
    """

    def __init__(self, frames: Iterable[bytes], closers: list[Callable[[], None]]) -> None:
        self._frames = frames
        self._closers = closers

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._frames)

    def close(self) -> None:
        try:
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()
        finally:
            closers, self._closers = self._closers, []
            for closer in closers:
                _run_closer(closer)


def _run_closer(closer: Callable[[], None]) -> None:
    # Each closer frees something of its own (a lease, a key's slot): one that fails must
    # not keep the others from running.
    try:
        closer()
    except Exception:
        log.exception("a response clean-up failed")
