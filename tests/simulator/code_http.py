"""HTTP helpers the code surface's routes share: JSON answers, faults, the bearer, logging.

Role: the few pieces both `code_app` (LLM host, control) and `code_account_app` (OAuth,
matrix account calls, quota) need, so neither imports the other. Faults come from the
simulator's one fault board (`/_sim/faults`, endpoints code_device, code_token,
code_messages, code_count_tokens, code_models, code_quota) and play like this:
http_500/502/503 an nginx page, http_429 a rate-limit error (Retry-After from the fault's
`seconds` when given: its presence upstream is [unknown]), http_529 overloaded, quota the
Token Plan wall (429 + 2056), no_credits 402 + 1008 "insufficient balance", busy and
busy_msg a 429 rate limit, expired a 401 "other body", hang a stall then the normal
answer, drop a connection closed without an answer, drop_after the call's effect then a
drop; drop_mid / error_mid / hang_mid are played by the next answer's stream.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from tests.simulator.app import _drop, _fault_response, _json, _sleep
from tests.simulator.code_shapes import (
    TOKEN_INVALID,
    insufficient_balance,
    overloaded,
    rate_limited,
    usage_limit,
)
from tests.simulator.faults import DEFAULT_HANG_SECONDS, Fault
from tests.simulator.state import SimState

STREAM_FAULTS: tuple[str, ...] = ("drop_mid", "error_mid", "hang_mid")
SECRET_HEADERS: frozenset[str] = frozenset({"authorization", "x-api-key", "cookie", "token"})


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = _json(payload, status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _semantic(kind: str) -> Response:
    if kind == "expired":
        return json_response(TOKEN_INVALID, 401)
    if kind == "quota":
        return json_response(usage_limit(), 429)
    if kind == "no_credits":
        return json_response(insufficient_balance(), 402)
    return json_response(rate_limited(), 429)  # busy, busy_msg: a refusal


def fault_answer(fault: Fault | None) -> Response | None:
    """The reply a fault forces now, or None (the call proceeds; see `stream_fault`)."""
    if fault is None or fault.kind in STREAM_FAULTS or fault.kind == "drop_after":
        return None
    if fault.kind == "http_429":
        retry = {} if fault.seconds is None else {"Retry-After": str(int(fault.seconds))}
        return json_response(rate_limited(), 429, retry)
    if fault.kind == "http_529":
        return json_response(overloaded(), 529)
    if fault.kind == "hang":
        _sleep(fault.seconds if fault.seconds is not None else DEFAULT_HANG_SECONDS)
        return None
    return _fault_response(fault, _semantic)


def stream_fault(fault: Fault | None) -> str | None:
    return fault.kind if fault is not None and fault.kind in STREAM_FAULTS else None


def after_fault(fault: Fault | None, response: Response) -> Response:
    """drop_after: the call took effect, its answer is lost."""
    if fault is None or fault.kind != "drop_after":
        return response
    response.close()
    return _drop()


def take(state: SimState, endpoint: str) -> Fault | None:
    return state.take_fault(endpoint)


def bearer() -> str | None:
    """The Authorization: Bearer value, or None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def auth_kind() -> str:
    """How the caller authenticated, for the log (never the secret itself)."""
    token = bearer()
    if token is not None:
        return "bearer_mmoat" if token.startswith("mmoat_") else "bearer_other"
    return "x-api-key" if request.headers.get("x-api-key") else "none"


def logged_headers() -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()
            if name.lower() not in SECRET_HEADERS}
