"""The application factory: settings in, a Flask app with every blueprint out.

The upstream client, the account pool, the janitor and the chat service are built once
per process here and stored in ``app.extensions``; views reach them through
:func:`gateway.http.service`. Errors of every kind are rendered by the dialect that owns
the route (see :mod:`gateway.dialects`).
"""

from __future__ import annotations

import atexit
import logging
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from gateway import anthropic, dialects, gemini, logs, openai, system
from gateway.chat.janitor import Janitor
from gateway.chat.pool import AccountPool
from gateway.chat.service import ChatService
from gateway.config import Settings
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)
from gateway.upstream.client import UpstreamClient

log = logging.getLogger("gateway.access")

HTTP_ERRORS: dict[int, type[GatewayError]] = {
    400: InvalidRequest,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
}
#: Seconds a stopping worker waits for pending chat deletions.
SHUTDOWN_DRAIN_SECONDS = 5.0


def build_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    logs.configure(settings.log_level)
    app = Flask("gateway", template_folder="../templates")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_mb * 1024 * 1024
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    app.extensions["gateway.settings"] = settings
    app.extensions["gateway.chat"] = _chat_service(settings)
    for blueprint in (system.bp, openai.bp, anthropic.bp, gemini.bp):
        app.register_blueprint(blueprint)
    _register_error_handlers(app)
    _register_access_log(app)
    return app


def _chat_service(settings: Settings) -> ChatService:
    client = UpstreamClient(settings.upstream())
    janitor = Janitor(client)
    atexit.register(janitor.drain, SHUTDOWN_DRAIN_SECONDS)
    return ChatService(client, AccountPool(), janitor, settings.chat())


def _render(error: GatewayError) -> Response:
    return dialects.of(request).render_error(error)


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(GatewayError)
    def gateway_error(error: GatewayError) -> Response:
        return _render(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        kind = HTTP_ERRORS.get(error.code or 500, GatewayError)
        return _render(kind(error.description if kind is InvalidRequest else None))

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        logging.getLogger("gateway").exception("unhandled error on %s", request.path)
        return _render(GatewayError())


def _register_access_log(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def access_line(response: Response) -> Response:
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        # The path only: query strings may carry keys (?key=...).
        log.info("%s %s %s %.1fms", request.method, request.path, response.status_code, elapsed)
        return response
