"""The LLM host of the MiniMax Code surface: /messages, count_tokens, the catalogue, wrong paths.

Role: page §2 and §3 as routes, and the registration of the whole code surface into the
simulator's app (`register_code_surface`, called by `create_simulator_app`):
- POST /mavis/api/v1/llm/v1/messages: Bearer mmoat_ required (x-api-key alone or no
  token → 401 {"code":401,"message":"token is required"}; an expired or unknown token →
  401 with another body, see `code_shapes`); a web JWT as Bearer is refused the same
  way unless code_config(accept_web_tokens=True) or its code account says
  web_token_accepted (the page: [unknown]); a body over 16 MiB → 413; then the rules of
  `code_rules`, the faults of the fault board (endpoint "code_messages"), the quota
  (used up → 429 + 2056), and the next scripted answer, streamed or as one message;
- POST …/messages/count_tokens → {"input_tokens": N} (the same estimate as the usage);
- GET /mavis/api/v1/models?region=cn|en&buildEnv=prod → the catalogue (empty without);
- anything else under /mavis/api/v1/llm/ → 503 direct_route_not_configured.
Every /messages and count_tokens call is logged (code_log): path, how it authenticated
(never the token), headers minus secrets, the body with image data replaced by its size
and sha256, the status and the refusal reason.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Flask, Response, request

from tests.simulator.app import _drop
from tests.simulator.code_account_app import register_account_routes
from tests.simulator.code_http import (
    after_fault,
    auth_kind,
    bearer,
    fault_answer,
    json_response,
    logged_headers,
    stream_fault,
    take,
)
from tests.simulator.code_rules import CodeReject, MessagesRequest, parse_messages
from tests.simulator.code_shapes import (
    ACCESS_PREFIX,
    COUNT_TOKENS_PATH,
    DIRECT_ROUTE,
    LLM_PREFIX,
    MAX_BODY_BYTES,
    MESSAGES_PATH,
    MODELS_PATH,
    TOKEN_INVALID,
    TOKEN_REQUIRED,
    catalogue,
    invalid_params,
    too_large,
    usage_limit,
)
from tests.simulator.code_stream import AnswerStream, CodeAnswer, CodeGeneration, plan_answer, signature_ok
from tests.simulator.code_world import CodeAccount, CodeWorld
from tests.simulator.state import SimState
from tests.simulator.stream import STREAM_TICK_SECONDS, _ClientGone, _Waiter, socket_probe

WORLD_EXTENSION_KEY: str = "minimax_simulator.code"
EVENT_STREAM_MIMETYPE: str = "text/event-stream"


# --- Authentication ---------------------------------------------------------------------------------

def authenticate(state: SimState, world: CodeWorld) -> CodeAccount:
    """The calling account, or CodeReject 401 in the page's two forms."""
    token = bearer()
    if token is None:
        raise CodeReject(401, TOKEN_REQUIRED, "token_required")
    now = state.clock()
    if token.startswith(ACCESS_PREFIX):
        account, reason = world.authenticate(token, now)
        if account is None:
            raise CodeReject(401, TOKEN_INVALID, reason)
        return account
    web, _ = state.authenticate(token, now)
    if web is None:
        raise CodeReject(401, TOKEN_INVALID, "unknown_token")
    linked = world.by_real_user(web.real_user_id)
    if not (world.config["accept_web_tokens"] or (linked and linked.web_token_accepted)):
        raise CodeReject(401, TOKEN_INVALID, "web_token_refused")
    world.count("web_token_calls")
    return linked or world.add_account(web.real_user_id, None, None, True, False)


# --- /messages and count_tokens ------------------------------------------------------------------------

def _redacted(value: Any) -> Any:
    """The body for the log: each base64 image's data replaced by its size and digest."""
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if not isinstance(value, dict):
        return value
    if value.get("type") == "base64" and isinstance(value.get("data"), str):
        data = value["data"]
        digest = hashlib.sha256(data.encode("ascii", errors="replace")).hexdigest()
        return {**value, "data": f"<base64: {len(data)} chars, sha256 {digest}>"}
    return {key: _redacted(item) for key, item in value.items()}


def _read_body(entry: dict[str, Any]) -> Any:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise CodeReject(413, too_large(), "body_too_large")
    raw = request.get_data()
    if len(raw) > MAX_BODY_BYTES:
        raise CodeReject(413, too_large(), "body_too_large")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise CodeReject(400, invalid_params("body is not JSON"), "malformed_body") from exc
    entry["body"] = _redacted(body)
    return body


def _note_thinking(world: CodeWorld, checked: MessagesRequest) -> None:
    """Warnings (never refusals) a test may assert away: what the page does not pin."""
    if (checked.body.get("thinking") or {}).get("type") == "enabled":
        world.count("thinking_enabled", warning="thinking_type_enabled")  # page: adaptive|disabled
    if "bedrock-lane" in request.headers:
        world.count("dev_headers", warning="bedrock_lane_header")  # dev/test only; never in prod
    if checked.unsigned_thinking_dropped:
        world.count("unsigned_thinking_dropped", warning="unsigned_thinking_dropped")
    for message in checked.body["messages"]:
        for block in message["content"]:
            if block.get("type") == "thinking" and not signature_ok(
                    str(block.get("thinking", "")), str(block["signature"])):
                world.count("foreign_signatures", warning="thinking_signature_unknown")


def _play_whole(state: SimState, answer: CodeAnswer) -> Response:
    """The non-stream answer: wait for the timeline's end, then one message JSON."""
    waiter = _Waiter(state, socket_probe(request.environ))
    first = answer.timeline.first_content_time() or answer.timeline.t_finish
    try:
        if answer.fault is not None:
            waiter.pause(max(0.0, first - state.clock()))
            if answer.fault == "drop_mid":
                return _drop()
            if answer.fault == "error_mid":
                return json_response(usage_limit(), 429)
            waiter.pause(answer.fault_seconds)
        while state.clock() < answer.timeline.t_finish:
            waiter.pause(min(STREAM_TICK_SECONDS, answer.timeline.t_finish - state.clock()))
    except _ClientGone:
        return _drop()
    return json_response(answer.message())


def _generate(state: SimState, world: CodeWorld, account: CodeAccount,
              checked: MessagesRequest) -> Response:
    fault = take(state, "code_messages")
    forced = fault_answer(fault)
    if forced is not None:
        return forced
    if not world.begin(account.name):
        raise CodeReject(429, usage_limit(), "quota_exhausted")
    world.count("generations")
    spec = state.next_answer(account.real_user_id)
    offered = {tool.get("name") for tool in checked.body.get("tools") or []}
    if any(call.name not in offered for call in spec.tool_calls):
        world.count("unoffered_tool_calls", warning="tool_call_not_offered")  # a script bug
    answer = plan_answer(spec, checked, state.clock(), stream_fault(fault))
    generation = CodeGeneration(account.real_user_id, checked.prompt, answer)
    world.generated(generation)

    def end() -> None:
        generation.ended(state.clock())
        world.end(account.name)

    if checked.stream:
        body = AnswerStream(answer, state, socket_probe(request.environ),
                            float(world.config["ping_seconds"]), end)
        return after_fault(fault, Response(body, status=200, content_type=EVENT_STREAM_MIMETYPE,
                                           headers={"Cache-Control": "no-cache"},
                                           direct_passthrough=True))
    try:
        return after_fault(fault, _play_whole(state, answer))
    finally:
        end()


def _messages(state: SimState, world: CodeWorld, count_only: bool) -> Response:
    state.count_request(request.path)
    world.count("count_tokens_calls" if count_only else "messages_calls")
    entry: dict[str, Any] = {"t": state.clock(), "path": request.path, "auth": auth_kind(),
                             "headers": logged_headers(), "status": 200, "reason": None}
    try:
        account = authenticate(state, world)
        entry["account"] = account.name
        checked = parse_messages(_read_body(entry), count_only,
                                 world.config["m31_thinking_omitted"])
        _note_thinking(world, checked)
        entry["extra_fields"] = checked.extra_fields
        if count_only:
            fault = take(state, "code_count_tokens")
            forced = fault_answer(fault)
            return forced or after_fault(fault, json_response(
                {"input_tokens": checked.input_tokens}))
        response = _generate(state, world, account, checked)
        entry["status"] = response.status_code
        return response
    except CodeReject as exc:
        world.count("refusals", reason=exc.reason)
        entry.update(status=exc.status, reason=exc.reason)
        return json_response(exc.body, exc.status)
    finally:
        world.record(entry)


def _models(state: SimState, world: CodeWorld) -> Response:
    state.count_request(request.path)
    world.count("models_calls")
    try:
        authenticate(state, world)
    except CodeReject as exc:
        world.count("refusals", reason=exc.reason)
        return json_response(exc.body, exc.status)
    fault = take(state, "code_models")
    forced = fault_answer(fault)
    region, build = request.args.get("region"), request.args.get("buildEnv")
    if forced is None and not (region and build):
        world.count("empty_catalogues", warning="catalogue_without_region")
    return forced or after_fault(fault, json_response(catalogue(region, build)))


def _wrong_route(state: SimState, world: CodeWorld) -> Response:
    state.count_request("<llm wrong route>")
    world.count("wrong_routes", reason="direct_route_not_configured")
    return json_response(DIRECT_ROUTE, 503)


# --- Registration ----------------------------------------------------------------------------------

def register_code_surface(app: Flask, state: SimState) -> CodeWorld:
    """Add the code surface (LLM host, account host, control) to the simulator's app."""
    from tests.simulator.code_control import register_code_control

    world = CodeWorld()
    app.extensions[WORLD_EXTENSION_KEY] = world
    state.on_reset(world.reset)
    app.add_url_rule(MESSAGES_PATH, endpoint="code_messages", methods=["POST"],
                     view_func=lambda: _messages(state, world, count_only=False))
    app.add_url_rule(COUNT_TOKENS_PATH, endpoint="code_count_tokens", methods=["POST"],
                     view_func=lambda: _messages(state, world, count_only=True))
    app.add_url_rule(MODELS_PATH, endpoint="code_models", methods=["GET"],
                     view_func=lambda: _models(state, world))
    app.add_url_rule(f"{LLM_PREFIX}<path:rest>", endpoint="code_wrong_route",
                     methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
                     view_func=lambda rest: _wrong_route(state, world))
    register_account_routes(app, state, world)
    register_code_control(app, state, world)
    return world


def code_world(app: Flask) -> CodeWorld:
    """The code surface's state behind an app from create_simulator_app."""
    world: CodeWorld = app.extensions[WORLD_EXTENSION_KEY]
    return world
