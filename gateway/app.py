"""The application factory: settings in, a Flask app with every blueprint out.

The shared state, the upstream client, the account pool, the janitor, the chat service
and the accounts service (client keys, server-side accounts, their upkeep) are built
once per process here and stored in ``app.extensions``; views reach them through
:mod:`gateway.web`. Every request gets a request id (``X-Request-Id``, accepted or made,
echoed back and put on every log line), an access log line without query string, and
metrics. ``X-Forwarded-*`` headers are believed only from ``GATEWAY_TRUSTED_PROXIES``.
Errors of every kind are rendered by the dialect the request speaks
(:mod:`gateway.dialects`).
"""

from __future__ import annotations

import atexit
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, cast

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import anthropic, dialects, gemini, logs, metrics, openai, responses, system
from gateway.accounts import AccountsService
from gateway.accounts.keys import KeyRing, parse_keys
from gateway.accounts.maintenance import Maintenance, on_stop
from gateway.accounts.quotas import build_quotas
from gateway.accounts.roster import parse_roster
from gateway.accounts.signins import build_signins, protect_state_file
from gateway.accounts.watch import Listing, setting_entries
from gateway.chat.janitor import Janitor
from gateway.chat.media import MediaResolver
from gateway.chat.pool import AccountPool
from gateway.chat.service import ChatService
from gateway.chat.speech import SpeechService
from gateway.config import Settings
from gateway.doctor import Doctor
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)
from gateway.state import open_state, temporary_reason
from gateway.state.presence import Presence
from gateway.system.ops import UpstreamProbe
from gateway.upstream.client import UpstreamClient
from gateway.upstream.code import CodeDriver
from gateway.upstream.constants import CODE_REGIONS
from gateway.upstream.credentials import Credential, signed_in
from gateway.upstream.signins import SignIns
from gateway.upstream.surfaces import build_surfaces

log = logging.getLogger("gateway.access")

HTTP_ERRORS: dict[int, type[GatewayError]] = {
    400: InvalidRequest,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
}
#: Seconds a stopping worker waits for pending chat deletions (then, alone on its state,
#: it deletes its kept chats within GATEWAY_GRACEFUL_TIMEOUT, or this when longer).
SHUTDOWN_DRAIN_SECONDS = 5.0
REQUEST_ID_HEADER = "X-Request-Id"
#: The blueprints whose requests the admin page's chart counts.
API_BLUEPRINTS = (openai.bp.name, anthropic.bp.name, gemini.bp.name, responses.bp.name)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def build_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    logs.configure(settings.log_level, settings.log_format)
    app = Flask("gateway", template_folder="../templates")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_mb * 1024 * 1024
    provider = cast(DefaultJSONProvider, app.json)
    provider.sort_keys, provider.ensure_ascii = False, False
    _build_services(app, settings)
    for blueprint in (system.bp, system.ops_bp, system.openapi_bp, system.admin_bp, system.admin_signin_bp,
                      openai.bp, anthropic.bp, gemini.bp, responses.bp):
        app.register_blueprint(blueprint)
    _register_error_handlers(app)
    _register_request_hooks(app)
    app.wsgi_app = TrustedProxies(app.wsgi_app, settings.trusted_proxies)  # type: ignore[method-assign]
    return app


def _build_services(app: Flask, settings: Settings) -> None:
    probe = UpstreamProbe(lambda: client.ping())

    def observe(path: str, error_kind: str | None) -> None:
        metrics.upstream_observer(path, error_kind)
        probe.note(path, error_kind)

    upstream = settings.upstream()
    protect_state_file(settings.state)  # it holds the sign-ins' refresh tokens
    state = open_state(settings.state)
    client = UpstreamClient(upstream, observer=observe, tokens=state)  # renewed tokens are shared
    signins = build_signins(settings, state)
    code = CodeDriver(settings.code(), upstream, tokens=signins, observer=observe,
                      hosts={region: settings.code(region).code_url for region in CODE_REGIONS})
    surfaces = build_surfaces(client, upstream, metrics.set_surface, code=code)
    pool = AccountPool(state, on_change=metrics.set_accounts)
    janitor = Janitor(on_gone=lambda conversation: chat.ledger.removed(conversation))
    chat = ChatService(client, surfaces, pool, janitor, settings.chat(), MediaResolver(settings.fetch()))
    presence = Presence(state)
    presence.start()
    atexit.register(on_stop, chat, presence, SHUTDOWN_DRAIN_SECONDS,
                    max(SHUTDOWN_DRAIN_SECONDS, float(settings.graceful_timeout)))
    accounts = _accounts_service(settings, chat, signins)
    quotas = build_quotas(settings, state, signins, metrics.set_quota)
    Maintenance(chat, lambda: _upkept(accounts, pool, signins), settings.sweep_interval, settings.credits_interval,
                quotas=quotas, signins=signins).start()
    if reason := temporary_reason(state):
        logging.getLogger("gateway").warning(
            "the shared state is temporary (%s): kept chats, renewed tokens and the record of chats to delete "
            "are lost when this gateway stops; set GATEWAY_DATA_DIR to a writable folder", reason)
    app.extensions.update({
        "gateway.settings": settings,
        "gateway.state": state,
        "gateway.signins": signins,
        "gateway.quotas": quotas,
        "gateway.accounts": accounts,
        "gateway.chat": chat,
        "gateway.speech": SpeechService(chat),
        "gateway.doctor": Doctor(client, build_surfaces(client, upstream, code=code), settings.models[0],
                                 quota=quotas.reader, signins=signins),
        "gateway.upstream_probe": probe,
    })


def _accounts_service(settings: Settings, chat: ChatService, signins: SignIns) -> AccountsService:
    keys: Listing[KeyRing] = Listing(parse_keys, setting_entries("GATEWAY_API_KEYS", settings.api_keys),
                                     settings.api_keys_file)
    roster: Listing[tuple[Credential, ...]] = Listing(
        parse_roster, setting_entries("MINIMAX_CREDENTIALS", settings.server_credentials), settings.accounts_file)
    service = AccountsService(keys, roster, chat, signins=signins,
                              keys_named=bool(settings.api_keys or settings.api_keys_file))
    if roster.current() and not service.keyed:
        logging.getLogger("gateway").warning(
            "server-side accounts are configured but no client keys (GATEWAY_API_KEYS): they stay unused")
    if problem := service.keys_problem():
        logging.getLogger("gateway").warning("%s", problem)
    return service


def _upkept(accounts: AccountsService, pool: AccountPool, signins: SignIns) -> list[Credential]:
    """The accounts whose health and credits (or quota) this process keeps up: the
    server's, the callers' own it has seen, and the signed-in MiniMax Code accounts."""
    known = {cred.key: cred for cred in pool.known()}
    known.update((cred.key, cred) for cred in accounts.server_accounts())
    known.update((sign_in.key, signed_in(sign_in.name)) for sign_in in signins.all())
    return list(known.values())


class TrustedProxies:
    """Applies ``X-Forwarded-*`` (one hop) only to requests from a trusted peer."""

    def __init__(self, app: Callable[..., Iterable[bytes]], trusted: Iterable[str]) -> None:
        self._app = app
        self._trusted = frozenset(trusted)
        self._fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REMOTE_ADDR") in self._trusted:
            return self._fixed(environ, start_response)
        return self._app(environ, start_response)


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


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def start() -> None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        logs.request_id.set(g.request_id)
        g.started = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        dialect = dialects.of(request).name
        route = request.url_rule.rule if request.url_rule else "unmatched"
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "-")
        metrics.metrics().requests.labels(dialect, route, str(response.status_code)).inc()
        metrics.metrics().latency.labels(dialect, route).observe(elapsed)
        if request.blueprint in API_BLUEPRINTS:
            app.extensions["gateway.chat"].activity.request(failed=response.status_code >= 400)
        # The path only: query strings may carry keys (?key=...).
        log.info("%s %s %s %.1fms", request.method, request.path, response.status_code, elapsed * 1000,
                 extra={"method": request.method, "path": request.path, "status": response.status_code,
                        "duration_ms": round(elapsed * 1000, 1), "dialect": dialect,
                        "client": request.remote_addr})
        return response
