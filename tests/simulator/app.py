"""Flask app of the strict upstream simulator: protocol endpoints and /_sim/ control endpoints.

Role: the HTTP face of the simulator (its API host; the session surface's routes and the
stream host are added by `session_app`). Every signed request of either surface goes
through one gate that checks it the way CAPTURES.md and UPSTREAM.md pin it (parameter
set and order, axios encoding, tokens, user id, surfaces, clocks, x-signature, yy under
the configured `yy_variant`, device id, body shape) and answers a violation exactly as
documented there; only then are test faults applied and the handler run on `SimState`.

Rejection answers (and the reason names counted in /_sim/stats):
- 401, empty body: missing_param, missing_header, token_mismatch (header and query
  tokens of different accounts), bad_token_signature, unknown_token, expired_token,
  wrong_user_id (any call but user/info), surface_off (matrix chat calls of an account
  whose matrix surface is off).
- 400 invalid signature (base_resp 1000400): param_order (the 21 (+region) present but
  out of order, duplicated or with extras: the order is signed), param_encoding (a value
  not encoded as axios would), timestamp_skew, unix_skew, unix_not_timestamp (captured
  rule: unix must be x-timestamp * 1000), bad_signature, bad_yy.
- 400 invalid params (base_resp INVALID_PARAMS_CODE): param_value, malformed_body;
  400 1406010011 invalid_model; 400 UNEXPECTED_ERROR 1406011050 bad_device_id (session
  calls with a non-numeric device_id).
- 200 text/html (the SPA page): surface_off (session calls of an account whose session
  surface is off), session_wrong_prefix, session_unknown_path.
- Warnings (counted, never rejected): region_on_matrix, body_not_compact_json,
  content_type_not_json, missing_referer, missing_user_agent, message_key_order, ...
- 200 with a business code: chat_not_found, chat_running, account_busy, no_credits,
  quota_exhausted, delete_running; callback_object_not_found, callback_size_mismatch
  (policy_callback); attachment_not_found, attachment_not_image (send_msg);
  tts_msg_not_found, tts_not_an_answer, tts_msg_generating, tts_voice_mismatch (msg_tts).
- 400 invalid audio (base_resp INVALID_AUDIO_CODE): asr_not_mp3 (phone_msg).

phone_msg is the one multipart endpoint: its signed `body` is a digest of the form (see
`PhoneMsgForm.signing_body`), and it answers a server-sent event stream written in
7-byte pieces with CRLF line ends, so clients that mishandle either break here.

Two unsigned routes complete the protocol: `PUT /_oss/<bucket>/<key>` (an OSS stand-in
checking header signature V1 against the STS grant from request_policy, rejections as
OSS XML errors, reasons `oss_*`) and `GET /_media/<id>.mp3` (msg_tts's audio).
"""

from __future__ import annotations

import errno
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from tests.simulator.accounts import ACCOUNT_FLAGS, SURFACES, Account
from tests.simulator.faults import (
    CODE_FAULT_ENDPOINTS,
    CODE_ONLY_FAULTS,
    DEFAULT_HANG_SECONDS,
    FAULT_ENDPOINTS,
    FAULT_KINDS,
    Fault,
)
from tests.simulator.media import NotMp3, analyse_mp3, synthesize_mp3
from tests.simulator.oss import (
    OSS_PATH_PREFIX,
    XML_MIMETYPE,
    OssError,
    OssPut,
    body_error,
    content_md5,
    error_xml,
    etag_of,
    new_request_id,
)
from tests.simulator.protocol import (
    CHAT_RUNNING_CODE,
    CHAT_RUNNING_MSG,
    ENDPOINTS,
    INVALID_AUDIO_CODE,
    INVALID_AUDIO_MSG,
    INVALID_PARAMS_CODE,
    INVALID_SIGNATURE_CODE,
    INVALID_SIGNATURE_MSG,
    NOT_ENOUGH_CREDITS_CODE,
    NOT_ENOUGH_CREDITS_MSG,
    QUOTA_EXHAUSTED_CODE,
    QUOTA_EXHAUSTED_MSG,
    REGION_PARAM,
    REQUIRED_HEADERS,
    TTS_DONE,
    BadBody,
    EndpointSpec,
    PhoneMsgForm,
    Refusal,
    api_ok,
    asr_event,
    audio_event,
    badly_encoded_params,
    family_error,
    is_ascii_digits,
    is_compact_json,
    matrix_error,
    matrix_ok,
    missing_params,
    param_value_problems,
    params_in_order,
    parse_chat_id_body,
    parse_device_register_body,
    parse_json_object,
    parse_list_chat_body,
    parse_phone_msg_form,
    parse_policy_callback_body,
    parse_raw_query,
    parse_robot_config_body,
    parse_send_msg_body,
    tts_query_problems,
)
from tests.simulator.scripts import parse_answer
from tests.simulator.session_protocol import InvalidModel
from tests.simulator.session_shapes import (
    BUSY_MSG_CODE,
    BUSY_MSG_MSG,
    INVALID_MODEL_CODE,
    INVALID_MODEL_MSG,
    SPA_HTML,
    bad_device,
)
from tests.simulator.settings import CONFIG_KEYS, SimSettings
from tests.simulator.signing import YY_CAPTURED, verify_signatures
from tests.simulator.speech import TtsJob, TtsPlan
from tests.simulator.state import SimState

STATE_EXTENSION_KEY: str = "minimax_simulator"
STREAM_EXTENSION_KEY: str = "minimax_simulator.stream_app"
CODE_WORLD_EXTENSION_KEY: str = "minimax_simulator.code_world"
DROP_ENVIRON_KEY: str = "minimax_simulator.drop"
JSON_MIMETYPE: str = "application/json; charset=utf-8"
EVENT_STREAM_MIMETYPE: str = "text/event-stream; charset=utf-8"
MP3_MIMETYPE: str = "audio/mpeg"
MAX_ACCOUNTS_PER_CALL: int = 1000
MAX_TRANSCRIPTS_PER_CALL: int = 10_000
# phone_msg's stream goes out in pieces this small, with a pause between them, so that
# events, lines and even UTF-8 characters arrive split across reads.
ASR_STREAM_PIECE_BYTES: int = 7
ASR_STREAM_PIECE_PAUSE: float = 0.002
ASR_AUDIO_JUNK_BYTES: int = 48

_HTML_ERRORS: dict[str, tuple[int, str]] = {
    "http_500": (500, "Internal Server Error"),
    "http_502": (502, "Bad Gateway"),
    "http_503": (503, "Service Temporarily Unavailable"),
}


# --- Responses -------------------------------------------------------------------------------

def _json(payload: Any, status: int = 200) -> Response:
    # ensure_ascii=False: the real service sends raw UTF-8, so decoding bugs must show.
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status=status, content_type=JSON_MIMETYPE)


def _unauthorized() -> Response:
    return Response(b"", status=401, content_type="text/plain")


def _invalid_signature() -> Response:
    return _json(matrix_error(INVALID_SIGNATURE_CODE, INVALID_SIGNATURE_MSG), 400)


def _invalid_params(detail: str) -> Response:
    return _json(matrix_error(INVALID_PARAMS_CODE, f"invalid params: {detail}"), 400)


def _html_error(kind: str) -> Response:
    status, title = _HTML_ERRORS[kind]
    page = (f"<html><head><title>{status} {title}</title></head><body><center><h1>{status} "
            f"{title}</h1></center><hr><center>nginx</center></body></html>")
    return Response(page, status=status, content_type="text/html")


def _spa_page() -> Response:
    """What the real site answers on a path it does not serve: its web app's HTML, 200."""
    return Response(SPA_HTML, status=200, content_type="text/html; charset=utf-8")


def _drop() -> Response:
    # The middleware sees the flag and kills the connection instead of sending this.
    request.environ[DROP_ENVIRON_KEY] = True
    return Response(b"", status=500)


class DropMiddleware:
    """Turns a flagged response into a connection closed without any response bytes.

    gevent.pywsgi has not written anything yet when the app returns (headers go out on
    the first body write), and it treats an ECONNRESET raised by the app as a vanished
    client: it closes the socket silently. The client thus sees the connection end with
    no response at all. Under a test client the exception simply propagates.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        result = self.app(environ, start_response)
        if not environ.get(DROP_ENVIRON_KEY):
            return result
        close = getattr(result, "close", None)
        if close is not None:
            close()
        raise ConnectionResetError(errno.ECONNRESET, "simulated connection drop")


# --- The protocol gate ------------------------------------------------------------------------

class GateRejection(Exception):
    def __init__(self, reason: str, response: Response) -> None:
        super().__init__(reason)
        self.reason, self.response = reason, response


class _DropConnection(Exception):
    """Raised by a handler whose generation asks for its poll to be dropped."""


@dataclass(frozen=True)
class Call:
    """A request that passed the gate."""

    spec: EndpointSpec
    account: Account
    query: dict[str, str]
    body: dict[str, Any]
    form: PhoneMsgForm | None = None  # multipart endpoints only
    path_args: dict[str, str] | None = None  # session endpoints: {session_id}, {agent_id}


def _check_query(state: SimState, spec: EndpointSpec, raw_query: str) -> dict[str, str]:
    params = parse_raw_query(raw_query)
    variant = state.yy_variant
    if missing_params(params, spec):
        raise GateRejection("missing_param", _unauthorized())
    if not params_in_order(params, spec, variant):
        raise GateRejection("param_order", _invalid_signature())
    if badly_encoded_params(params, variant):
        raise GateRejection("param_encoding", _invalid_signature())
    query = {p.name: p.value for p in params}
    if spec.family != "session" and REGION_PARAM in query and variant == YY_CAPTURED:
        state.warn("region_on_matrix")  # tolerated, but the browser never sends it there
    return query


def _check_identity(state: SimState, spec: EndpointSpec, query: dict[str, str],
                    now: float) -> Account:
    headers = request.headers
    if any(not headers.get(name) for name in REQUIRED_HEADERS):
        raise GateRejection("missing_header", _unauthorized())
    account, reason = state.authenticate(headers["token"], now)
    if account is None:
        raise GateRejection(reason, _unauthorized())
    if query["token"] != headers["token"]:
        # Right after a renewal the browser sends the new JWT in the header only.
        other, other_reason = state.authenticate(query["token"], now)
        if other is not account:
            expired = other is None and other_reason == "expired_token"
            raise GateRejection("expired_token" if expired else "token_mismatch",
                                _unauthorized())
    if not spec.user_id_optional and query.get("user_id") != account.real_user_id:
        raise GateRejection("wrong_user_id", _unauthorized())
    return account


def _check_surface(spec: EndpointSpec, account: Account) -> None:
    """An account's surface switched off answers like a service that lacks it."""
    if spec.family == "session" and not account.surface_on("session"):
        raise GateRejection("surface_off", _spa_page())
    if spec.path.startswith("/matrix/api/v1/chat/") and not account.surface_on("matrix"):
        raise GateRejection("surface_off", _unauthorized())


def _check_clocks(state: SimState, query: dict[str, str], now: float) -> None:
    skew = state.max_skew_seconds
    stamp = request.headers["x-timestamp"]
    if not is_ascii_digits(stamp) or abs(int(stamp) - now) > skew:
        raise GateRejection("timestamp_skew", _invalid_signature())
    unix = query["unix"]
    if not is_ascii_digits(unix) or abs(int(unix) / 1000 - now) > skew:
        raise GateRejection("unix_skew", _invalid_signature())
    # The browser sends one clock reading: unix is x-timestamp in milliseconds.
    if state.yy_variant == YY_CAPTURED and unix != stamp + "000":
        raise GateRejection("unix_not_timestamp", _invalid_signature())


def _origin(spec: EndpointSpec) -> str | None:
    """On the stream host T is absolute: the URL as the client requested it."""
    return f"{request.scheme}://{request.host}" if spec.host == "stream" else None


def _check_signatures(state: SimState, spec: EndpointSpec, query: dict[str, str],
                      raw_query: str, body: bytes) -> None:
    headers = request.headers
    reason = verify_signatures(
        variant=state.yy_variant, signature_mode=state.signature_mode, surface=spec.family,
        path=request.path, raw_query=raw_query, body=body, timestamp=headers["x-timestamp"],
        token=headers["token"], x_sig=headers["x-signature"], yy=headers["yy"],
        unix_ms=query["unix"], origin=_origin(spec), salt=state.drift.bundle_salt,
        yy_suffix=state.drift.bundle_yy_suffix)
    if reason is not None:
        raise GateRejection(reason, _invalid_signature())


def _check_device(spec: EndpointSpec, query: dict[str, str]) -> None:
    if spec.family == "session" and not is_ascii_digits(query["device_id"]):
        raise GateRejection("bad_device_id", _json(bad_device(), 400))


def _phone_msg_form() -> PhoneMsgForm:
    # get_data(cache=True) ran first; werkzeug then parses the form from the cached bytes.
    fields = {name: request.form.getlist(name) for name in request.form}
    files = {name: [part.read() for part in request.files.getlist(name)]
             for name in request.files}
    return parse_phone_msg_form(request.mimetype, fields, files)


def _signed_body(spec: EndpointSpec, body: bytes) -> tuple[bytes, PhoneMsgForm | None]:
    """The bytes x-signature and yy cover: the body itself, or a multipart form's digest."""
    if spec.body_kind != "multipart":
        return body, None
    form = _phone_msg_form()
    return form.signing_body(), form


def _limit_problems(query: dict[str, str]) -> list[str]:
    return [] if is_ascii_digits(query.get("limit", "1")) else ["limit not digits"]


_QUERY_CHECKS: dict[str, Callable[[dict[str, str]], list[str]]] = {
    "msg_tts": tts_query_problems,
    "session_agents": _limit_problems,
}


def _parse_body(state: SimState, spec: EndpointSpec, body: bytes,
                form: PhoneMsgForm | None) -> dict[str, Any]:
    if form is not None:
        problems = form.problems()
        if problems:
            raise BadBody("; ".join(problems))
        return {}
    if spec.body_kind == "none":
        if body:
            raise BadBody(f"{spec.method} {spec.path} takes no body")
        return {}
    if spec.body_kind == "optional" and not body:
        return {}
    parsed = parse_json_object(body)
    # Not rejections: the real service tolerates these, but the pinned client never does them.
    if not request.headers.get("Content-Type", "").startswith("application/json"):
        state.warn("content_type_not_json")
    if not is_compact_json(body, parsed):
        state.warn("body_not_compact_json")
    return parsed


def _note_client_quirks(state: SimState, account: Account, query: dict[str, str]) -> None:
    """Count (never reject) what the real service may tolerate but the pinned client avoids."""
    # No Origin: the captured browser sends it only on CORS preflights.
    for header in ("Referer", "User-Agent"):
        if not request.headers.get(header):
            state.warn(f"missing_{header.lower().replace('-', '_')}")
    if not request.headers.get("Referer", "/").endswith("/"):
        state.warn("referer_without_trailing_slash")
    if not state.device_id_plausible(account.real_user_id, query["device_id"]):
        state.warn("unregistered_device_id")
    if query["version_code"] != state.drift.bundle_version_code:
        state.warn("stale_version_code")  # the web app of another build


def _gate(state: SimState, spec: EndpointSpec, path_args: dict[str, str] | None = None) -> Call:
    """Check one protocol request; raises GateRejection or BadBody on the first violation."""
    now = state.clock()
    raw_query = request.query_string.decode("latin-1")
    query = _check_query(state, spec, raw_query)
    account = _check_identity(state, spec, query, now)
    _check_surface(spec, account)
    _check_clocks(state, query, now)
    body = request.get_data(cache=True)
    signed, form = _signed_body(spec, body)
    _check_signatures(state, spec, query, raw_query, signed)
    _check_device(spec, query)
    problems = param_value_problems(query)
    if spec.name in _QUERY_CHECKS:
        problems += _QUERY_CHECKS[spec.name](query)
    if problems:
        raise GateRejection("param_value", _invalid_params("; ".join(problems)))
    parsed = _parse_body(state, spec, body, form)
    _note_client_quirks(state, account, query)
    return Call(spec, account, query, parsed, form, path_args)


# --- Faults ------------------------------------------------------------------------------------

def _sleep(seconds: float) -> None:
    # Looked up at call time so gevent's monkey-patched sleep is used when active.
    time.sleep(seconds)


_SEMANTIC_FAULT_ERRORS: dict[str, tuple[int, str]] = {
    "no_credits": (NOT_ENOUGH_CREDITS_CODE, NOT_ENOUGH_CREDITS_MSG),
    "quota": (QUOTA_EXHAUSTED_CODE, QUOTA_EXHAUSTED_MSG),
    "busy": (CHAT_RUNNING_CODE, CHAT_RUNNING_MSG),
    "busy_msg": (BUSY_MSG_CODE, BUSY_MSG_MSG),
}


def _fault_response(fault: Fault, semantic: Callable[[str], Response]) -> Response | None:
    """The reply a fault forces, or None when the call should then proceed normally."""
    if fault.kind in _HTML_ERRORS:
        return _html_error(fault.kind)
    if fault.kind == "hang":
        _sleep(fault.seconds if fault.seconds is not None else DEFAULT_HANG_SECONDS)
        return None
    if fault.kind == "drop":
        return _drop()
    if fault.kind == "expired" or fault.kind in _SEMANTIC_FAULT_ERRORS:
        return semantic(fault.kind)
    return None  # drop_after: handled once the call has taken effect


def _signed_semantic_fault(spec: EndpointSpec) -> Callable[[str], Response]:
    def respond(kind: str) -> Response:
        if kind == "expired":
            return _unauthorized()
        code, msg = _SEMANTIC_FAULT_ERRORS[kind]
        return _json(family_error(spec.family, code, msg))
    return respond


def _forced_by(fault: Fault | None, semantic: Callable[[str], Response]) -> Response | None:
    return _fault_response(fault, semantic) if fault is not None else None


def _after_fault(fault: Fault | None, response: Response) -> Response:
    """A drop_after fault lets the call take effect, then loses the answer."""
    if fault is None or fault.kind != "drop_after":
        return response
    response.close()  # a lost turn stream ends its turn, as a dropped connection would
    return _drop()


# --- Protocol handlers ---------------------------------------------------------------------------

Handler = Callable[[SimState, Call], dict[str, Any] | Response]


def _device_register(state: SimState, call: Call) -> dict[str, Any]:
    device_uuid = parse_device_register_body(call.body)
    if device_uuid != call.query["uuid"]:
        state.warn("register_uuid_differs_from_query")
    device_id = state.register_device(call.account.real_user_id, device_uuid)
    return api_ok({"deviceIDStr": device_id, "realUserID": call.account.real_user_id})


def _user_info(state: SimState, call: Call) -> dict[str, Any]:
    view = state.account_view(call.account.real_user_id)
    return api_ok({"userInfo": {"realUserID": view["real_user_id"], "name": view["name"]}})


def _user_renewal(state: SimState, call: Call) -> dict[str, Any]:
    return api_ok({"token": state.renew(call.account.real_user_id, state.clock())})


def _membership(state: SimState, call: Call) -> dict[str, Any]:
    view = state.account_view(call.account.real_user_id)
    # Migrated accounts (the default) keep their credits in op_credit_summary only.
    migrated = view["migrated"]
    amount = f"{view['credits']:.2f}" if migrated else "0.00"
    return matrix_ok(plan_name="Free", plan_type=1,
                     total_remains_credit=0 if migrated else view["credits"],
                     is_migrated_to_op=migrated,
                     op_credit_summary={"total_remaining_amount": amount})


def _send_msg(state: SimState, call: Call) -> dict[str, Any]:
    body = parse_send_msg_body(call.body)
    chat_id, msg_id = state.send(call.account.real_user_id, body, state.clock())
    return matrix_ok(chat_id=chat_id, msg_id=msg_id)


def _get_chat_detail(state: SimState, call: Call) -> dict[str, Any]:
    chat_id = parse_chat_id_body(call.body)
    user = call.account.real_user_id
    poll_fault = state.take_poll_fault(user, chat_id, state.clock())
    if poll_fault is not None:
        kind, seconds = poll_fault
        if kind == "drop_mid":
            raise _DropConnection()
        if kind == "error_mid":
            return matrix_error(QUOTA_EXHAUSTED_CODE, QUOTA_EXHAUSTED_MSG)
        _sleep(seconds)
    return matrix_ok(**state.chat_detail(user, chat_id, state.clock()))


def _stop_run_agent(state: SimState, call: Call) -> dict[str, Any]:
    state.stop(call.account.real_user_id, parse_chat_id_body(call.body), state.clock())
    return matrix_ok()


def _delete_chat(state: SimState, call: Call) -> dict[str, Any]:
    state.delete(call.account.real_user_id, parse_chat_id_body(call.body), state.clock())
    return matrix_ok()


def _list_chat(state: SimState, call: Call) -> dict[str, Any]:
    return matrix_ok(**state.list_chats(call.account.real_user_id, parse_list_chat_body(call.body)))


def _own_url(path: str) -> str:
    """An absolute URL on this simulator, as the client reached it (scheme, host, port)."""
    return f"{request.scheme}://{request.host}{path}"


def _request_policy(state: SimState, call: Call) -> dict[str, Any]:
    endpoint = _own_url(OSS_PATH_PREFIX)  # with a scheme: clients then use path style
    return api_ok(state.issue_policy(call.account.real_user_id, endpoint, state.clock()))


def _policy_callback(state: SimState, call: Call) -> dict[str, Any]:
    body = parse_policy_callback_body(call.body)
    file_id = state.register_file(call.account.real_user_id, body)
    return api_ok({"fileID": file_id, "ossPath": state.oss_path(body), "coverUrl": ""})


def _update_robot_custom_config(state: SimState, call: Call) -> dict[str, Any]:
    state.set_robot_voice(call.account.real_user_id, parse_robot_config_body(call.body))
    return api_ok({})


def _render(plan: TtsPlan) -> list[tuple[str, float, bytes]]:
    return [(text, seconds, synthesize_mp3(text, seconds)) for text, seconds in plan.segments()]


def _msg_tts(state: SimState, call: Call) -> dict[str, Any]:
    found = state.tts_lookup(call.account.real_user_id, int(call.query["msgID"]),
                             call.query["timbre"], state.clock())
    if isinstance(found, TtsJob):
        status, paths = state.tts_answer(found, state.clock())
    else:
        # Encoding happens outside the lock; the first call always answers "in progress".
        job = state.tts_register(found, _render(found))
        status, paths = state.tts_answer(job, found.first_call)
    data: dict[str, Any] = {"requestStatus": status}
    if status == TTS_DONE:
        data["result"] = [_own_url(path) for path in paths]
    return api_ok(data)


def _phone_msg(state: SimState, call: Call) -> Response:
    if call.form is None:
        raise BadBody("phone_msg takes a multipart form")
    user, voice = call.account.real_user_id, call.form.voice
    try:
        info = analyse_mp3(voice)
    except NotMp3 as exc:
        state.asr_reject(user, len(voice), state.clock(), str(exc))
        return _json(matrix_error(INVALID_AUDIO_CODE, f"{INVALID_AUDIO_MSG}: {exc}"), 400)
    code, text = state.asr_transcribe(user, info, len(voice), state.clock())
    return _event_stream(_asr_stream(code, text))


def _asr_stream(code: int, text: str) -> bytes:
    """asr_chunk with the transcript, then 2 or 3 audio_chunk events of random bytes."""
    audio = [audio_event(secrets.token_bytes(ASR_AUDIO_JUNK_BYTES))
             for _ in range(2 + len(text) % 2)]
    return asr_event(code, text) + b"".join(audio)


def _trickle(data: bytes) -> Iterator[bytes]:
    for offset in range(0, len(data), ASR_STREAM_PIECE_BYTES):
        if offset:
            _sleep(ASR_STREAM_PIECE_PAUSE)
        yield data[offset:offset + ASR_STREAM_PIECE_BYTES]


def _event_stream(data: bytes) -> Response:
    return Response(_trickle(data), content_type=EVENT_STREAM_MIMETYPE,
                    headers={"Cache-Control": "no-cache"})


HANDLERS: dict[str, Handler] = {
    "device_register": _device_register,
    "user_info": _user_info,
    "user_renewal": _user_renewal,
    "membership": _membership,
    "send_msg": _send_msg,
    "get_chat_detail": _get_chat_detail,
    "stop_run_agent": _stop_run_agent,
    "delete_chat": _delete_chat,
    "list_chat": _list_chat,
    "request_policy": _request_policy,
    "policy_callback": _policy_callback,
    "update_robot_custom_config": _update_robot_custom_config,
    "msg_tts": _msg_tts,
    "phone_msg": _phone_msg,
}


def _serve(state: SimState, spec: EndpointSpec, handler: Handler,
           path_args: dict[str, str] | None = None) -> Response:
    call = _gate(state, spec, path_args)
    fault = state.take_fault(spec.name)
    forced = _forced_by(fault, _signed_semantic_fault(spec))
    if forced is not None:
        return forced
    answer = handler(state, call)
    return _after_fault(fault, answer if isinstance(answer, Response) else _json(answer))


def handle_protocol(state: SimState, spec: EndpointSpec, handler: Handler, counter_key: str,
                    path_args: dict[str, str] | None = None) -> Response:
    """Serve one signed call of either surface, answering each failure as documented."""
    state.count_request(counter_key)
    try:
        return _serve(state, spec, handler, path_args)
    except GateRejection as exc:
        state.reject(exc.reason)
        return exc.response
    except InvalidModel as exc:
        state.reject("invalid_model")
        return _json(matrix_error(INVALID_MODEL_CODE, f"{INVALID_MODEL_MSG}: {exc}"), 400)
    except BadBody as exc:
        state.reject("malformed_body")
        return _invalid_params(str(exc))
    except Refusal as exc:
        return _json(family_error(spec.family, exc.code, exc.msg), exc.status)
    except _DropConnection:
        return _drop()


def _protocol_view(state: SimState, spec: EndpointSpec, handler: Handler) -> Callable[[], Response]:
    def view() -> Response:
        return handle_protocol(state, spec, handler, spec.path)

    view.__name__ = f"protocol_{spec.name}"
    return view


# --- Unsigned routes: the OSS stand-in and the TTS media ------------------------------------------

OSS_ROUTE: str = f"{OSS_PATH_PREFIX}/<bucket>/<path:key>"
MEDIA_ROUTE: str = "/_media/<media_id>.mp3"


def _oss_semantic_fault(kind: str) -> Response:
    if kind == "expired":
        error = OssError(403, "SecurityTokenExpired",
                         "The security token you provided has expired.", "fault")
    else:
        error = OssError(403, "AccessDenied", f"Simulated fault: {kind}.", "fault")
    return _oss_error(error)


def _oss_error(error: OssError) -> Response:
    request_id = new_request_id()
    return Response(error_xml(error, request_id, request.host), status=error.status,
                    content_type=XML_MIMETYPE, headers={"x-oss-request-id": request_id})


def _oss_request(bucket: str, key: str) -> OssPut:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        low = name.lower()
        headers[low] = f"{headers[low]},{value}" if low in headers else value
    return OssPut(bucket, key, request.query_string.decode("latin-1"), headers,
                  request.content_length)


def _oss_put(state: SimState, bucket: str, key: str) -> Response:
    put = _oss_request(bucket, key)
    grant = state.authorize_put(put, state.clock())
    fault = state.take_fault("oss_put")
    forced = _forced_by(fault, _oss_semantic_fault)
    if forced is not None:
        return forced
    body = request.get_data()
    error = body_error(put, body, state.settings.max_upload_bytes)
    if error is not None:
        state.reject(error.reason)
        raise error
    state.store_object(grant, put, body, state.clock())
    headers = {"ETag": etag_of(body), "Content-MD5": content_md5(body),
               "x-oss-request-id": new_request_id()}
    return _after_fault(fault, Response(b"", status=200, headers=headers))


def _media_semantic_fault(kind: str) -> Response:
    return Response(f"simulated fault: {kind}".encode(), status=403, content_type="text/plain")


def _media(state: SimState, media_id: str) -> Response:
    audio = state.media(media_id)
    if audio is None:
        state.reject("media_not_found")
        return Response(b"not found", status=404, content_type="text/plain")
    fault = state.take_fault("media")
    forced = _forced_by(fault, _media_semantic_fault)
    if forced is not None:
        return forced
    return _after_fault(fault, Response(audio, status=200, content_type=MP3_MIMETYPE))


def _register_unsigned(app: Flask, state: SimState) -> None:
    def oss_put(bucket: str, key: str) -> Response:
        state.count_request(OSS_ROUTE)
        try:
            return _oss_put(state, bucket, key)
        except OssError as exc:
            return _oss_error(exc)

    def media(media_id: str) -> Response:
        state.count_request(MEDIA_ROUTE)
        return _media(state, media_id)

    app.add_url_rule(OSS_ROUTE, endpoint="oss_put", view_func=oss_put, methods=["PUT"])
    app.add_url_rule(MEDIA_ROUTE, endpoint="media", view_func=media, methods=["GET"])


def _register_protocol(app: Flask, state: SimState) -> None:
    for spec in ENDPOINTS:
        app.add_url_rule(spec.path, endpoint=f"protocol_{spec.name}",
                         view_func=_protocol_view(state, spec, HANDLERS[spec.name]),
                         methods=[spec.method])
    _register_unsigned(app, state)

    @app.errorhandler(404)
    @app.errorhandler(405)
    def unknown_endpoint(error: HTTPException) -> Response:
        if not request.path.startswith("/_sim/"):
            state.count_request(request.path)
            state.reject("unknown_endpoint" if error.code == 404 else "wrong_method")
        return _json({"error": error.name}, error.code or 404)


# --- Control endpoints ---------------------------------------------------------------------------
#
# JSON in, JSON out, no signing; a bad request is 400 {"error": ...}, an unknown account 404.
#   POST  /_sim/reset      {"drop_accounts": false}  clears chats, scripts, default answer,
#                          faults, counters, log, config; kept accounts get their creation
#                          flags back (credits, busy, expired, quota_exhausted).
#   POST  /_sim/accounts   {"count": 1, "credits": 1000, "expired": false, "busy": false,
#                           "quota_exhausted": false, "exp_seconds": 2592000 (negative:
#                           already expired), "migrated": true, "surfaces": {"matrix": true,
#                           "session": true}}  (jwt_user_id_differs is accepted and ignored:
#                           the JWT's user.id always differs from realUserID)
#                          -> {"accounts": [{"real_user_id", "jwt", "credential",
#                              "device_id", "jwt_user_id", "name", "credits", ...}]}
#   GET   /_sim/accounts   -> {"accounts": [...]}
#   PATCH /_sim/accounts/<real_user_id>  {credits | busy | expired | quota_exhausted |
#                                         migrated | surfaces}
#   POST  /_sim/script     {"answers": [answer, ...], "account": optional real_user_id}
#   POST  /_sim/default    {"answer": answer}   used when both script queues are empty
#   POST  /_sim/faults     {"endpoint", "kind", "count": 1, "seconds": null}
#   GET   /_sim/faults     -> {"faults": [pending...]}
#   POST  /_sim/config     {"signature_mode", "max_skew_seconds", "yy_variant",
#                           "session_prefix", "heartbeat_seconds", "linger_seconds",
#                           "bundle_salt", "bundle_yy_suffix", "bundle_version_code",
#                           "tool_status_form", "uploads_prepare"}  (see web_drift)
#                          GET /_sim/config
#   GET   /_sim/info       -> {"api_url", "stream_url" (null until the server sets it),
#                              "session_prefix"}
#   GET   /_sim/sessions   -> {"sessions": [status view + account, turns, model_id]}
#   GET   /_sim/uploads    -> {"uploads": [object_key, account, file_name, mime_type,
#                              size_bytes, uploaded, sha256]}
#   GET   /_sim/stats, GET /_sim/log
#   GET   /_sim/files      -> {"files": [stored OSS objects: bucket, key, account, size,
#                              sha256, content_type, sniffed_image, file_id, mime_type, ...]}
#   GET   /_sim/tts_log    -> [{"account", "chat_id", "msg_id", "voice", "text", "segments",
#                              "duration" (= "total_duration"), "calls", "delivered", ...}]
#   POST  /_sim/asr        {"texts": ["...", ...]}  transcripts for the next phone_msg calls
#   GET   /_sim/asr_log    -> [{"account", "duration", "sample_rate", "channels", "rms",
#                              "transcript", "status_code", "bytes", "error", "t"}]

class ControlError(ValueError):
    """A bad control request: answered 400 with {"error": message}."""


def _control_body() -> dict[str, Any]:
    if not request.get_data():
        return {}
    try:
        body = json.loads(request.get_data())
    except ValueError as exc:
        raise ControlError(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ControlError("body must be a JSON object")
    return body


def _only_keys(body: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = set(body) - set(allowed)
    if unknown:
        raise ControlError(f"unknown fields: {sorted(unknown)}")


def _want(body: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = body.get(key, default)
    # bool is rejected where an int is wanted: a test passing True for a count is a typo.
    bad_bool = isinstance(value, bool) and kind in (int, (int, float))
    if value is not default and (bad_bool or not isinstance(value, kind)):
        raise ControlError(f"{key} has the wrong type")
    return value


def _surfaces(value: Any) -> dict[str, bool]:
    if (not isinstance(value, dict) or not set(value) <= set(SURFACES)
            or not all(isinstance(flag, bool) for flag in value.values())):
        raise ControlError(f"surfaces must map some of {SURFACES} to booleans")
    return value


def _account_options(body: dict[str, Any]) -> dict[str, Any]:
    _only_keys(body, ("count", "credits", "expired", "busy", "quota_exhausted",
                      "jwt_user_id_differs", "exp_seconds", "migrated", "surfaces"))
    count = _want(body, "count", int, 1)
    if not 1 <= count <= MAX_ACCOUNTS_PER_CALL:
        raise ControlError(f"count must be 1..{MAX_ACCOUNTS_PER_CALL}")
    credits = _want(body, "credits", int, None)
    if credits is not None and credits < 0:
        raise ControlError("credits must be >= 0")
    return {
        "count": count, "credits": credits,
        "expired": _want(body, "expired", bool, False),
        "busy": _want(body, "busy", bool, False),
        "quota_exhausted": _want(body, "quota_exhausted", bool, False),
        "jwt_user_id_differs": _want(body, "jwt_user_id_differs", bool, True),
        "exp_seconds": _want(body, "exp_seconds", (int, float), None),
        "migrated": _want(body, "migrated", bool, True),
        "surfaces": _surfaces(body.get("surfaces", {})),
    }


def _account_patch(body: dict[str, Any]) -> dict[str, Any]:
    _only_keys(body, ACCOUNT_FLAGS)
    changes: dict[str, Any] = {}
    for key, value in body.items():
        if key == "credits":
            if type(value) is not int or value < 0:
                raise ControlError("credits must be an integer >= 0")
        elif key == "surfaces":
            value = _surfaces(value)
        elif not isinstance(value, bool):
            raise ControlError(f"{key} must be a boolean")
        changes[key] = value
    return changes


def _fault_options(body: dict[str, Any]) -> dict[str, Any]:
    _only_keys(body, ("endpoint", "kind", "count", "seconds"))
    endpoint, kind = body.get("endpoint"), body.get("kind")
    if endpoint not in FAULT_ENDPOINTS:
        raise ControlError(f"endpoint must be one of {FAULT_ENDPOINTS}")
    if kind not in FAULT_KINDS:
        raise ControlError(f"kind must be one of {FAULT_KINDS}")
    if kind in CODE_ONLY_FAULTS and endpoint not in CODE_FAULT_ENDPOINTS:
        raise ControlError(f"{kind} is a code-surface fault: endpoint one of {CODE_FAULT_ENDPOINTS}")
    count = _want(body, "count", int, 1)
    seconds = _want(body, "seconds", (int, float), None)
    if count < 1 or (seconds is not None and seconds < 0):
        raise ControlError("count must be >= 1 and seconds >= 0")
    return {"endpoint": endpoint, "kind": kind, "count": count,
            "seconds": None if seconds is None else float(seconds)}


def _answers(raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise ControlError("answers must be a list")
    try:
        return [parse_answer(item) for item in raw]
    except ValueError as exc:
        raise ControlError(str(exc)) from exc


def _transcripts(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(text, str) for text in raw):
        raise ControlError("texts must be a list of strings")
    if len(raw) > MAX_TRANSCRIPTS_PER_CALL:
        raise ControlError(f"at most {MAX_TRANSCRIPTS_PER_CALL} texts per call")
    return raw


def _control_guard(func: Callable[..., Response]) -> Callable[..., Response]:
    def guarded(*args: Any, **kwargs: Any) -> Response:
        try:
            return func(*args, **kwargs)
        except ControlError as exc:
            return _json({"error": str(exc)}, 400)

    guarded.__name__ = func.__name__
    return guarded


def _register_control(app: Flask, state: SimState) -> None:
    def route(rule: str, methods: list[str]) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        def decorate(func: Callable[..., Response]) -> Callable[..., Response]:
            app.add_url_rule(rule, endpoint=f"control_{func.__name__}",
                             view_func=_control_guard(func), methods=methods)
            return func
        return decorate

    @route("/_sim/reset", ["POST"])
    def reset() -> Response:
        body = _control_body()
        _only_keys(body, ("drop_accounts",))
        state.reset(drop_accounts=_want(body, "drop_accounts", bool, False))
        return _json({"ok": True})

    @route("/_sim/accounts", ["POST"])
    def add_accounts() -> Response:
        options = _account_options(_control_body())
        return _json({"accounts": state.add_accounts(**options)})

    @route("/_sim/accounts", ["GET"])
    def list_accounts() -> Response:
        return _json({"accounts": state.list_accounts()})

    @route("/_sim/accounts/<real_user_id>", ["PATCH"])
    def patch_account(real_user_id: str) -> Response:
        changes = _account_patch(_control_body())
        try:
            return _json(state.patch_account(real_user_id, changes))
        except KeyError:
            return _json({"error": f"unknown account {real_user_id}"}, 404)

    @route("/_sim/script", ["POST"])
    def script() -> Response:
        body = _control_body()
        _only_keys(body, ("answers", "account"))
        account = _want(body, "account", str, None)
        if account is not None and not state.has_account(account):
            return _json({"error": f"unknown account {account}"}, 404)
        queued = state.add_script(_answers(body.get("answers")), account)
        return _json({"ok": True, "queued": queued})

    @route("/_sim/default", ["POST"])
    def set_default() -> Response:
        body = _control_body()
        _only_keys(body, ("answer",))
        state.set_default(_answers([body.get("answer", {})])[0])
        return _json({"ok": True})

    @route("/_sim/faults", ["POST"])
    def add_fault() -> Response:
        pending = state.add_fault(**_fault_options(_control_body()))
        return _json({"ok": True, "pending": pending})

    @route("/_sim/faults", ["GET"])
    def list_faults() -> Response:
        return _json({"faults": state.pending_faults()})

    @route("/_sim/config", ["POST"])
    def configure() -> Response:
        body = _control_body()
        _only_keys(body, CONFIG_KEYS)
        try:
            return _json(state.configure(body))
        except ValueError as exc:
            raise ControlError(str(exc)) from exc

    @route("/_sim/config", ["GET"])
    def get_config() -> Response:
        return _json(state.configure({}))

    @route("/_sim/stats", ["GET"])
    def stats() -> Response:
        return _json(state.stats())

    @route("/_sim/log", ["GET"])
    def log() -> Response:
        """Every generation of every surface, in the order they started."""
        world = current_app.extensions.get(CODE_WORLD_EXTENSION_KEY)
        code = world.generation_log(state.clock()) if world is not None else []
        return _json(sorted(state.log() + code, key=lambda entry: entry["t_send"]))

    @route("/_sim/info", ["GET"])
    def info() -> Response:
        return _json({"api_url": f"{request.scheme}://{request.host}",
                      "stream_url": state.stream_url, "session_prefix": state.session_prefix})

    @route("/_sim/sessions", ["GET"])
    def sessions() -> Response:
        return _json({"sessions": state.sessions_listing()})

    @route("/_sim/uploads", ["GET"])
    def uploads() -> Response:
        return _json({"uploads": state.upload_listing()})

    @route("/_sim/files", ["GET"])
    def files() -> Response:
        return _json({"files": state.file_listing()})

    @route("/_sim/tts_log", ["GET"])
    def tts_log() -> Response:
        return _json(state.tts_log())

    @route("/_sim/asr", ["POST"])
    def asr() -> Response:
        body = _control_body()
        _only_keys(body, ("texts",))
        return _json({"ok": True, "queued": state.asr_enqueue(_transcripts(body.get("texts")))})

    @route("/_sim/asr_log", ["GET"])
    def asr_log() -> Response:
        return _json(state.asr_log())


# --- Factory ----------------------------------------------------------------------------------------

def create_simulator_app(settings: SimSettings | None = None) -> Flask:
    """A fresh simulator (its own state) as a Flask app: the API host. `stream_app(app)`
    is its stream host (same state); serve each with gevent.pywsgi on its own port."""
    from tests.simulator.code_app import register_code_surface
    from tests.simulator.session_app import create_stream_app, register_session_routes

    state = SimState(settings or SimSettings())
    app = Flask("minimax_simulator")
    app.extensions[STATE_EXTENSION_KEY] = state
    _register_protocol(app, state)
    register_session_routes(app, state, "api")
    _register_control(app, state)
    app.extensions[CODE_WORLD_EXTENSION_KEY] = register_code_surface(app, state)
    app.wsgi_app = DropMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    app.extensions[STREAM_EXTENSION_KEY] = create_stream_app(state)
    return app


def simulator_state(app: Flask) -> SimState:
    """The state behind an app from create_simulator_app, for in-process tests."""
    return app.extensions[STATE_EXTENSION_KEY]


def stream_app(app: Flask) -> Flask:
    """The stream host app (message POST, /events) sharing `app`'s state."""
    return app.extensions[STREAM_EXTENSION_KEY]
