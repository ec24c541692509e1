"""The account host of the code surface: OAuth device login, refresh, and the mcode account calls.

Role: page §1 and §4 as routes over `CodeWorld`:
- POST /oauth2/device/code (form; JSON tolerated and counted as a warning): client_id
  must be mcode-public (invalid_client), scope agent.default (else invalid_scope; a
  missing one is tolerated with a warning, as measured), audience agent-backend,
  code_challenge with method S256 (invalid_request);
- POST /oauth2/token: the device_code grant (PKCE verified, pending in the configured
  form, slow_down, expired_token, access_denied, then the grant; with
  code_config(device_variant="user_code") the official client's variant: no device_code
  in the device answer, `expired_in` epoch ms, `interval` ms, polls by user_code) and the refresh_token
  grant (single-use rotation; reuse → 400 invalid_grant "this refresh token can no
  longer be used"); app_id on this endpoint → invalid_request, as measured;
- POST /oauth2/revoke → 404 (measured on both prod origins);
- the mcode form of GET /v1/api/user/info and POST /matrix/api/v1/user/get_user_extra_info
  and /matrix/api/v1/commerce/get_membership_info (the 13-parameter mcode query in order,
  Bearer mmoat_, yy and x-signature per §4), and GET
  /v1/api/openplatform/coding_plan/remains (Bearer + X-Group-Id only). The web forms of
  user/info and membership stay with `app`: a call whose query says
  device_platform=mcode comes here.
[assumed] answers: a missing or bad Bearer on the matrix calls is HTTP 401 with
statusInfo 1000048 (the client treats both as "log in again"); a wrong X-Group-Id on
remains is 200 with base_resp 1004; usage counts in remains are REMAINING counts (the
live captures' counter-intuitive naming).
"""

from __future__ import annotations

from typing import Any, Callable

from flask import Flask, Response, request

from tests.simulator.code_http import after_fault, bearer, fault_answer, json_response, take
from tests.simulator.code_world import CodeAccount, CodeWorld, Verdict
from tests.simulator.protocol import api_ok, matrix_error, matrix_ok
from tests.simulator.signing import BUNDLE_SALT, same_digest, x_signature, yy_signature
from tests.simulator.state import SimState

CLIENT_ID: str = "mcode-public"
SCOPE: str = "agent.default"
AUDIENCE: str = "agent-backend"
DEVICE_GRANT: str = "urn:ietf:params:oauth:grant-type:device_code"
VERIFICATION_PATH: str = "/oauth-authorize"
MCODE_PARAMS: tuple[str, ...] = (
    "device_platform", "biz_id", "app_id", "version_code", "unix", "timezone_offset",
    "sys_language", "lang", "device_id", "os_name", "browser_name", "user_id", "client")
MCODE_FIXED: dict[str, str] = {"device_platform": "mcode", "biz_id": "3", "app_id": "3001",
                               "version_code": "22201", "device_id": "0",
                               "browser_name": "mcode", "client": "mcode"}
NEED_LOGIN: dict[str, Any] = {"statusInfo": {"code": 1000048, "message": "need login"}}
INVALID_SIGNATURE: dict[str, Any] = matrix_error(1000400, "invalid signature")
GROUP_MISMATCH: dict[str, Any] = matrix_error(1004, "cookie is missing")
INTERVAL_MS: int = 5 * 3600 * 1000
WEEK_MS: int = 7 * 86400 * 1000


def _oauth_error(error: str, description: str = "", status: int = 400) -> Response:
    body = {"error": error, **({"error_description": description} if description else {})}
    return json_response(body, status)


def _form(world: CodeWorld) -> dict[str, str]:
    if request.mimetype == "application/json":
        world.count("oauth_json_bodies", warning="oauth_json_body")
        body = request.get_json(silent=True)
        return {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
    if request.mimetype != "application/x-www-form-urlencoded":
        return {}
    return {key: request.form[key] for key in request.form}


def _device_code(state: SimState, world: CodeWorld) -> Response:
    form = _form(world)
    if form.get("client_id") != CLIENT_ID:
        world.count("device_refusals", reason="invalid_client")
        return _oauth_error("invalid_client", "unknown client_id", 401)
    for key, expected, error in (("scope", SCOPE, "invalid_scope"),
                                 ("audience", AUDIENCE, "invalid_request")):
        if key not in form:
            world.count("device_lenient", warning=f"device_without_{key}")
        elif form[key].split() != [expected]:
            world.count("device_refusals", reason=error)
            return _oauth_error(error, f"{key} must be {expected}")
    if not form.get("code_challenge") or form.get("code_challenge_method") != "S256":
        world.count("device_refusals", reason="pkce_missing")
        return _oauth_error("invalid_request", "code_challenge with method S256 is required")
    if "X-User-Pre" in request.headers:
        world.count("device_lenient", warning="staging_header_x_user_pre")  # staging builds only
    device = world.start_device(form["code_challenge"], state.clock())
    base = request.host_url.rstrip("/") + VERIFICATION_PATH
    answer: dict[str, Any] = {
        "device_code": device.device_code, "user_code": device.user_code,
        "verification_uri": base,
        "verification_uri_complete": f"{base}?user_code={device.user_code}",
        "expires_in": int(world.config["device_expires_in"]), "interval": world.config["interval"]}
    if world.config["device_variant"] == "user_code":
        del answer["device_code"], answer["expires_in"]
        answer.update(expired_in=int(device.expires_at * 1000),
                      interval=int(world.config["interval"] * 1000))
    return json_response(answer)


_STATUS_WORDS: dict[str, str] = {"authorization_pending": "pending", "slow_down": "slow_down",
                                 "access_denied": "denied", "expired_token": "expired"}


def _verdict(world: CodeWorld, verdict: Verdict) -> Response:
    if verdict.error in _STATUS_WORDS and world.config["pending_form"] == "200":
        return json_response({"status": _STATUS_WORDS[verdict.error]})
    return _oauth_error(verdict.error, verdict.description)


def _token(state: SimState, world: CodeWorld) -> Response:
    form = _form(world)
    if "app_id" in form:
        world.count("token_refusals", reason="app_id_on_token")
        return _oauth_error("invalid_request", "app_id is not a parameter of this endpoint")
    if form.get("client_id") != CLIENT_ID:
        world.count("token_refusals", reason="invalid_client")
        return _oauth_error("invalid_client", "unknown client_id", 401)
    grant = form.get("grant_type")
    try:
        if grant == DEVICE_GRANT:
            by_user = world.config["device_variant"] == "user_code"
            code = form.get("user_code" if by_user else "device_code")
            if not code or not form.get("code_verifier"):
                return _oauth_error("invalid_request", "device_code (user_code in the user_code "
                                    "variant) and code_verifier required")
            return json_response(world.poll(code, form["code_verifier"], state.clock(),
                                            by_user)[1])
        if grant == "refresh_token":
            problem = _refresh_problem(world, form)
            return problem or json_response(world.refresh(form.get("refresh_token", ""),
                                                          state.clock()))
    except Verdict as verdict:
        return _verdict(world, verdict)
    return _oauth_error("unsupported_grant_type", f"grant_type {grant!r}")


def _refresh_problem(world: CodeWorld, form: dict[str, str]) -> Response | None:
    for key, expected in (("scope", SCOPE), ("audience", AUDIENCE)):
        if key not in form:
            world.count("refresh_lenient", warning=f"refresh_without_{key}")
        elif form[key].split() != [expected]:
            world.count("token_refusals", reason=f"refresh_bad_{key}")
            return _oauth_error("invalid_scope" if key == "scope" else "invalid_request",
                                f"{key} must be {expected}")
    return None


# --- The mcode account calls (page §4) --------------------------------------------------------------

class _Refused(Exception):
    def __init__(self, reason: str, response: Response) -> None:
        super().__init__(reason)
        self.reason, self.response = reason, response


def _raw_pairs(raw: str) -> list[tuple[str, str]]:
    return [(pair.partition("=")[0], pair.partition("=")[2]) for pair in raw.split("&") if pair]


def _check_query(state: SimState, account: CodeAccount, is_user_info: bool) -> bool:
    """Raise _Refused for a call the page's rules refuse; True when user_id=0 was used
    beyond user/info (the bootstrap call): tolerated, counted as a warning."""
    raw = request.query_string.decode("latin-1")
    pairs = _raw_pairs(raw)
    if [name for name, _ in pairs] != list(MCODE_PARAMS):
        raise _Refused("mcode_param_order", json_response(INVALID_SIGNATURE, 400))
    query = dict(pairs)
    if any(query[key] != value for key, value in MCODE_FIXED.items()) or not (
            query["lang"] in ("zh", "en") and query["sys_language"] in ("zh", "en")):
        raise _Refused("mcode_param_value", json_response(matrix_error(1000001,
                                                                       "invalid params"), 400))
    if query["user_id"] not in (account.real_user_id, "0"):
        raise _Refused("mcode_wrong_user_id", json_response(NEED_LOGIN, 401))
    headers, now = request.headers, state.clock()
    stamp, unix = headers.get("x-timestamp", ""), query["unix"]
    if not (stamp.isdigit() and unix.isdigit()) or int(unix) // 1000 != int(stamp) or abs(
            int(stamp) - now) > state.max_skew_seconds:
        raise _Refused("mcode_clock", json_response(INVALID_SIGNATURE, 400))
    body = request.get_data() if request.method == "POST" else b""
    path_query = f"{request.path}?{raw}"
    expected_yy = yy_signature(path_query, body or b"{}", unix)
    if not (same_digest(x_signature(stamp, BUNDLE_SALT, body), headers.get("x-signature", ""))
            and same_digest(expected_yy, headers.get("yy", ""))):
        raise _Refused("mcode_bad_signature", json_response(INVALID_SIGNATURE, 400))
    return query["user_id"] == "0" and not is_user_info


def _account(state: SimState, world: CodeWorld) -> CodeAccount:
    token = bearer()
    account, _ = world.authenticate(token, state.clock()) if token else (None, "")
    if account is None:
        raise _Refused("mcode_no_login", json_response(NEED_LOGIN, 401))
    return account


def _workspace(account: CodeAccount) -> dict[str, Any]:
    return {"workspace_id": account.workspace_id, "workspace_type": 0,
            "workspace_name": "Personal", "op_group_id": account.op_group_id,
            "has_token_plan": account.has_token_plan}


def _membership(account: CodeAccount) -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or str(body.get("workspace_id")) != account.workspace_id:
        raise _Refused("membership_workspace", json_response(
            matrix_error(1000001, "invalid params: workspace_id"), 400))
    left = f"{account.quota_left / 100:.2f}"
    return matrix_ok(has_token_plan=account.has_token_plan,
                     token_plan_tier="plus" if account.has_token_plan else "",
                     token_plan_expires_at=0,
                     op_credit_summary={"total_remaining_amount": left,
                                        "free_remaining_amount": left,
                                        "purchased_remaining_amount": "0.00"})


def _mcode_view(state: SimState, world: CodeWorld, name: str) -> Response:
    try:
        account = _account(state, world)
        zero = _check_query(state, account, name == "user_info")
        world.count(f"mcode_{name}", warning="mcode_user_id_zero" if zero else None)
        if name == "user_info":
            return json_response(api_ok({"userInfo": {"realUserID": account.real_user_id,
                                                      "name": f"Sim-{account.name}",
                                                      "email": f"{account.name}@sim.invalid"}}))
        if name == "extra_info":
            return json_response(matrix_ok(workspaces=[_workspace(account)]))
        return json_response(_membership(account))
    except _Refused as refused:
        world.count("mcode_refusals", reason=refused.reason)
        return refused.response


def _remains(state: SimState, world: CodeWorld) -> Response:
    token = bearer()
    account, _ = world.authenticate(token, state.clock()) if token else (None, "")
    if account is None:
        world.count("quota_refusals", reason="remains_no_login")
        return json_response({"code": 401, "message": "token is required"}, 401)
    if request.headers.get("X-Group-Id") != account.op_group_id:
        world.count("quota_refusals", reason="remains_group_id")
        return json_response(GROUP_MISMATCH)
    world.count("quota_calls")
    now_ms = int(state.clock() * 1000)
    start, week = now_ms - now_ms % INTERVAL_MS, now_ms - now_ms % WEEK_MS
    total, left = account.quota_total, account.quota_left
    percent = 0 if total <= 0 else round(left * 100 / total)
    entry = {"model_name": "general", "start_time": start, "end_time": start + INTERVAL_MS,
             "remains_time": start + INTERVAL_MS - now_ms,
             "current_interval_total_count": total, "current_interval_usage_count": left,
             "current_interval_status": 1, "current_interval_remaining_percent": percent,
             "weekly_start_time": week, "weekly_end_time": week + WEEK_MS,
             "weekly_remains_time": week + WEEK_MS - now_ms,
             "current_weekly_total_count": total * 10,
             "current_weekly_usage_count": total * 9 + left,
             "current_weekly_status": 1, "current_weekly_remaining_percent": percent}
    return json_response(matrix_ok(model_remains=[entry]))


# --- Registration ----------------------------------------------------------------------------------

def _faulted(state: SimState, endpoint: str, handler: Callable[[], Response]) -> Response:
    state.count_request(request.path)
    fault = take(state, endpoint)
    forced = fault_answer(fault)
    return forced if forced is not None else after_fault(fault, handler())


def _beside_web(app: Flask, endpoint: str, mcode: Callable[[], Response]) -> None:
    """The web route keeps its calls; a device_platform=mcode call goes to `mcode`."""
    web = app.view_functions[endpoint]

    def dispatch(**kwargs: Any) -> Any:
        if request.args.get("device_platform") == "mcode":
            return mcode()
        return web(**kwargs)

    app.view_functions[endpoint] = dispatch


def register_account_routes(app: Flask, state: SimState, world: CodeWorld) -> None:
    def route(rule: str, methods: list[str], endpoint: str,
              handler: Callable[[], Response]) -> None:
        app.add_url_rule(rule, endpoint=f"code_{handler.__name__}", methods=methods,
                         view_func=lambda: _faulted(state, endpoint, handler))

    def device_code() -> Response:
        return _device_code(state, world)

    def token() -> Response:
        return _token(state, world)

    def remains() -> Response:
        return _remains(state, world)

    def extra_info() -> Response:
        return _faulted(state, "code_quota", lambda: _mcode_view(state, world, "extra_info"))

    def revoke() -> Response:
        world.count("revokes")
        return Response("404 page not found\n", status=404, content_type="text/plain")

    route("/oauth2/device/code", ["POST"], "code_device", device_code)
    route("/oauth2/token", ["POST"], "code_token", token)
    route("/v1/api/openplatform/coding_plan/remains", ["GET"], "code_quota", remains)
    app.add_url_rule("/oauth2/revoke", endpoint="code_revoke", view_func=revoke,
                     methods=["POST"])
    app.add_url_rule("/matrix/api/v1/user/get_user_extra_info", endpoint="code_extra_info",
                     view_func=extra_info, methods=["POST"])
    _beside_web(app, "protocol_user_info", lambda: _faulted(
        state, "code_quota", lambda: _mcode_view(state, world, "user_info")))
    _beside_web(app, "protocol_membership", lambda: _faulted(
        state, "code_quota", lambda: _mcode_view(state, world, "membership")))
