"""The /_sim/code/ control routes: code accounts, device approvals, config, stats, log.

Role: the knobs tests turn on the code surface (client side: `SimulatorControl`'s
code_* methods). JSON in, JSON out; a bad request is 400 {"error": ...}, an unknown
account or user code 404.
  POST  /_sim/code/accounts  {"count": 1, "of": realUserID (links to that web account;
                              count 1), "expires_in": s (the first pair's lifetime; a
                              refresh's is code_config's), "quota": total, "quota_left": n,
                              "web_token_accepted": false, "has_token_plan": true}
                             -> {"accounts": [{"name", "real_user_id", "access_token",
                                 "refresh_token", "credential" (= access_token),
                                 "expires_in", "web_jwt", "workspace_id", "op_group_id",
                                 "quota_total", "quota_left", ...}]}
  GET   /_sim/code/accounts  -> {"accounts": [...]} (no tokens)
  PATCH /_sim/code/accounts/<name>  {quota_left, quota_total, web_token_accepted,
                              has_token_plan, expire_access: true, revoke: true}
  POST  /_sim/code/approve   {"user_code", "account": name (default: a new account),
                              "deny": false} -> {"ok", "account"}
  GET   /_sim/code/devices   -> {"devices": [{"user_code", "verdict", "interval"}]}
  POST  /_sim/code/config    {pending_form "200"|"400", slow_down_once, slow_down_step,
                              expires_in, device_expires_in, interval, accept_web_tokens,
                              m31_thinking_omitted "accept"|"refuse", token_extras,
                              refresh_keeps_token, ping_seconds, device_variant
                              "standard"|"user_code"}; GET returns it
  GET   /_sim/code/stats, GET /_sim/code/log
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response

from tests.simulator.app import ControlError, _control_body, _control_guard, _only_keys, _want
from tests.simulator.code_http import json_response
from tests.simulator.code_world import CodeWorld
from tests.simulator.state import SimState

MAX_CODE_ACCOUNTS_PER_CALL: int = 100
ACCOUNT_KEYS: tuple[str, ...] = ("count", "of", "expires_in", "quota", "quota_left",
                                 "web_token_accepted", "has_token_plan")
PATCH_KEYS: tuple[str, ...] = ("quota_left", "quota_total", "web_token_accepted",
                               "has_token_plan", "expire_access", "revoke")


def _count_of(body: dict[str, Any]) -> int:
    count = _want(body, "count", int, 1)
    if not 1 <= count <= MAX_CODE_ACCOUNTS_PER_CALL:
        raise ControlError(f"count must be 1..{MAX_CODE_ACCOUNTS_PER_CALL}")
    if body.get("of") is not None and count != 1:
        raise ControlError("of links one account: count must be 1")
    return count


def _non_negative(body: dict[str, Any], key: str, kind: Any) -> Any:
    value = _want(body, key, kind, None)
    if value is not None and value < 0:
        raise ControlError(f"{key} must be >= 0")
    return value


def add_code_accounts(state: SimState, world: CodeWorld, body: dict[str, Any]) -> list[dict[str, Any]]:
    _only_keys(body, ACCOUNT_KEYS)
    count, of = _count_of(body), _want(body, "of", str, None)
    if of is not None and not state.has_account(of):
        raise KeyError(of)
    expires_in = _non_negative(body, "expires_in", (int, float))
    quota, left = _non_negative(body, "quota", int), _non_negative(body, "quota_left", int)
    accepted = _want(body, "web_token_accepted", bool, False)
    plan = _want(body, "has_token_plan", bool, True)
    created = []
    for _ in range(count):
        web = (next(a for a in state.list_accounts() if a["real_user_id"] == of) if of
               else state.add_accounts(1)[0])
        account = world.add_account(web["real_user_id"], quota, left, accepted, plan)
        tokens = world.issue(account.name, state.clock(), expires_in)
        created.append({**account.public(), **tokens, "credential": tokens["access_token"],
                        "web_jwt": web["jwt"]})
    return created


def _patch(body: dict[str, Any]) -> dict[str, Any]:
    _only_keys(body, PATCH_KEYS)
    for key in ("quota_left", "quota_total"):
        _non_negative(body, key, int)
    for key in ("web_token_accepted", "has_token_plan", "expire_access", "revoke"):
        _want(body, key, bool, None)
    return body


def _approve(state: SimState, world: CodeWorld, body: dict[str, Any]) -> dict[str, Any]:
    _only_keys(body, ("user_code", "account", "deny"))
    user_code = _want(body, "user_code", str, None)
    if user_code is None:
        raise ControlError("user_code is required")
    account, deny = _want(body, "account", str, None), _want(body, "deny", bool, False)
    if account is not None and not world.has(account):
        raise KeyError(account)
    if account is None and not deny:
        if not any(d["user_code"] == user_code and d["verdict"] == "pending"
                   for d in world.devices()):
            raise KeyError(user_code)
        web = state.add_accounts(1)[0]
        account = world.add_account(web["real_user_id"], None, None, False, True).name
    world.approve(user_code, account, deny)
    return {"ok": True, "account": account}


def register_code_control(app: Flask, state: SimState, world: CodeWorld) -> None:
    def route(rule: str, methods: list[str], name: str, func: Any) -> None:
        def view(**kwargs: Any) -> Response:
            try:
                return func(**kwargs)
            except KeyError as exc:
                return json_response({"error": f"unknown {exc.args[0]}"}, 404)
            except ValueError as exc:
                raise ControlError(str(exc)) from exc

        view.__name__ = name
        app.add_url_rule(rule, endpoint=f"control_code_{name}", view_func=_control_guard(view),
                         methods=methods)

    route("/_sim/code/accounts", ["POST"], "add_accounts", lambda: json_response(
        {"accounts": add_code_accounts(state, world, _control_body())}))
    route("/_sim/code/accounts", ["GET"], "accounts",
          lambda: json_response({"accounts": world.listing()}))
    route("/_sim/code/accounts/<name>", ["PATCH"], "patch_account",
          lambda name: json_response(world.patch(name, _patch(_control_body()), state.clock())))
    route("/_sim/code/approve", ["POST"], "approve",
          lambda: json_response(_approve(state, world, _control_body())))
    route("/_sim/code/devices", ["GET"], "devices",
          lambda: json_response({"devices": world.devices()}))
    route("/_sim/code/config", ["POST"], "configure",
          lambda: json_response(world.configure(_control_body())))
    route("/_sim/code/config", ["GET"], "config", lambda: json_response(world.configure({})))
    route("/_sim/code/stats", ["GET"], "stats", lambda: json_response(world.stats()))
    route("/_sim/code/log", ["GET"], "log", lambda: json_response(world.log()))
