"""Flask face of the session surface: its handlers, its prefix router, the upload POST.

Role: serve /tmp/session-contract.md on the two hosts. The API host (the simulator's main
app) serves config, agents, sessions, archive, delete and uploads/prepare under the one
configured prefix, plus the unsigned multipart upload POST; the stream host (a second
Flask app over the same `SimState`, on its own port) serves the message POST and
`/events`. Both go through the same signed-call gate as the matrix side (`app`).

Routing is done here rather than by Flask rules because the prefix is a runtime setting
and because wrong paths must look like the real site: any /archon/... or
/minimax-cloud/... path that is not served answers 200 with the web app's HTML page on
the API host; on the stream host, and for a path of the other host, 404 JSON.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

from tests.simulator.app import (
    Call,
    Handler,
    _after_fault,
    _forced_by,
    _json,
    _oss_error,
    _oss_semantic_fault,
    _own_url,
    _spa_page,
    handle_protocol,
)
from tests.simulator.bundle import register_bundle_routes
from tests.simulator.oss import OssError
from tests.simulator.protocol import Refusal
from tests.simulator.session_protocol import (
    match_route,
    parse_archive_body,
    parse_create_body,
    parse_message_body,
    parse_prepare_body,
    pattern_of,
)
from tests.simulator.session_shapes import (
    UPLOAD_REFUSED_CODE,
    UPLOAD_REFUSED_MSG,
    UPLOAD_ROUTE,
    agents_answer,
    archive_answer,
    config_answer,
    created_answer,
    delete_answer,
    ok,
    prepare_answer,
    status_answer,
)
from tests.simulator.sessions import UploadError, parse_upload_form
from tests.simulator.state import SimState
from tests.simulator.stream import TurnStream, events_stream, socket_probe

EVENT_STREAM_MIMETYPE: str = "text/event-stream"
HOST_API: str = "api"
HOST_STREAM: str = "stream"
PREFIX_ROOTS: tuple[str, ...] = ("/archon", "/minimax-cloud")


# --- Handlers -------------------------------------------------------------------------------------

def _arg(call: Call, name: str) -> str:
    return (call.path_args or {})[name]


def _config(state: SimState, call: Call) -> dict[str, Any]:
    state.mark_configured(call.account.real_user_id)
    return config_answer()


def _agents(state: SimState, call: Call) -> dict[str, Any]:
    return agents_answer(state.agents(call.account.real_user_id))


def _create(state: SimState, call: Call) -> dict[str, Any]:
    model_id = parse_create_body(call.body)
    session = state.create_session(call.account.real_user_id, _arg(call, "agent_id"), model_id,
                                   state.clock())
    # A role word or a foreign id as the agent: 200 with no session, as observed.
    return ok() if session is None else created_answer(session.chat_id, session.agent_name)


def _status(state: SimState, call: Call) -> dict[str, Any]:
    return status_answer(state.session_status(call.account.real_user_id,
                                              _arg(call, "session_id"), state.clock()))


def _archive(state: SimState, call: Call) -> dict[str, Any]:
    state.archive_session(call.account.real_user_id, _arg(call, "session_id"),
                          parse_archive_body(call.body), state.clock())
    return archive_answer()


def _delete(state: SimState, call: Call) -> dict[str, Any]:
    state.delete_session(call.account.real_user_id, _arg(call, "session_id"), state.clock())
    return delete_answer()


def _prepare(state: SimState, call: Call) -> dict[str, Any]:
    if state.drift.uploads_prepare == "refused":
        state.reject("uploads_prepare_refused")
        raise Refusal(UPLOAD_REFUSED_CODE, UPLOAD_REFUSED_MSG, "uploads_prepare_refused", status=403)
    body = parse_prepare_body(call.body, state.settings.max_upload_bytes)
    upload = state.prepare_upload(call.account.real_user_id, body, state.clock())
    return prepare_answer(upload.object_key, _own_url(UPLOAD_ROUTE),
                          [[name, value] for name, value in upload.fields])


def _stream_response(body: Any) -> Response:
    return Response(body, status=200, content_type=EVENT_STREAM_MIMETYPE,
                    headers={"Cache-Control": "no-cache"}, direct_passthrough=True)


def _message(state: SimState, call: Call) -> Response:
    body = parse_message_body(call.body)
    if not body.key_order_ok:
        state.warn("message_key_order")
    generation = state.start_turn(call.account.real_user_id, _arg(call, "session_id"), body,
                                  state.clock())
    return _stream_response(TurnStream(state, generation, socket_probe(request.environ)))


def _events(state: SimState, call: Call) -> Response:
    return _stream_response(events_stream(state, socket_probe(request.environ)))


SESSION_HANDLERS: dict[str, Handler] = {
    "session_config": _config,
    "session_agents": _agents,
    "session_create": _create,
    "session_status": _status,
    "session_archive": _archive,
    "session_delete": _delete,
    "uploads_prepare": _prepare,
    "session_message": _message,
    "session_events": _events,
}


# --- The prefix router ---------------------------------------------------------------------------

def _not_here(state: SimState, reason: str) -> Response:
    state.reject(reason)
    return _json({"error": "Not Found"}, 404)


def _route(state: SimState, host: str) -> Response:
    prefix, path = state.session_prefix, request.path
    if not path.startswith(prefix + "/"):
        state.count_request("<session wrong prefix>")
        if host == HOST_STREAM:
            return _not_here(state, "session_wrong_prefix")
        state.reject("session_wrong_prefix")
        return _spa_page()
    spec, args, known = match_route(path[len(prefix):], request.method)
    if spec is not None and spec.name == "uploads_prepare" and state.drift.uploads_prepare == "missing":
        spec, known = None, False  # a site without it: the web app's page, as any unserved path
    if spec is None:
        state.count_request("<session unknown path>")
        if host == HOST_STREAM or known:
            return _not_here(state, "wrong_method" if known else "unknown_endpoint")
        state.reject("session_unknown_path")
        return _spa_page()
    if spec.host != host:
        state.count_request(pattern_of(spec, prefix))
        return _not_here(state, f"{spec.name}_on_{host}_host")
    return handle_protocol(state, spec, SESSION_HANDLERS[spec.name], pattern_of(spec, prefix),
                           args)


def register_session_routes(app: Flask, state: SimState, host: str) -> None:
    """The catch-all routes of both prefix roots, dispatched by `_route`."""
    methods = ["GET", "POST", "DELETE", "PUT", "PATCH"]

    def session_route(rest: str) -> Response:
        return _route(state, host)

    for root in PREFIX_ROOTS:
        app.add_url_rule(f"{root}/<path:rest>", endpoint=f"session_{root.strip('/')}",
                         view_func=session_route, methods=methods)
    if host == HOST_API:
        app.add_url_rule(UPLOAD_ROUTE, endpoint="session_upload",
                         view_func=lambda: _upload_post(state), methods=["POST"])
        register_bundle_routes(app, state)


# --- The unsigned upload POST --------------------------------------------------------------------

def _upload_post(state: SimState) -> Response:
    state.count_request(UPLOAD_ROUTE)
    fault = state.take_fault("upload_post")
    forced = _forced_by(fault, _oss_semantic_fault)
    if forced is not None:
        return forced
    try:
        form = parse_upload_form(request.mimetype, request.mimetype_params.get("boundary"),
                                 request.get_data())
        state.accept_upload(form, state.clock())
    except UploadError as exc:
        if exc.reason == "upload_not_multipart":
            state.reject(exc.reason)  # accept_upload counts the others
        return _oss_error(OssError(exc.status, exc.code, exc.message, exc.reason))
    return _after_fault(fault, Response(b"", status=204))


# --- The stream host -------------------------------------------------------------------------------

def create_stream_app(state: SimState) -> Flask:
    """The stream host: message POST and /events, on the same state as the API app."""
    from tests.simulator.app import DropMiddleware

    stream = Flask("minimax_simulator_stream")
    register_session_routes(stream, state, HOST_STREAM)

    @stream.errorhandler(404)
    @stream.errorhandler(405)
    def unknown(error: Any) -> Response:
        state.count_request(request.path)
        state.reject("unknown_endpoint_stream_host")
        return _json({"error": getattr(error, "name", "Not Found")}, getattr(error, "code", 404))

    stream.wsgi_app = DropMiddleware(stream.wsgi_app)  # type: ignore[method-assign]
    return stream

