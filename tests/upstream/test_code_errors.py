"""Every row of the code surface's error table (UPSTREAM-CODE.md §2) as a gateway error."""

from __future__ import annotations

import json

import pytest

from gateway.errors import (
    GatewayError,
    NoCredits,
    QuotaExhausted,
    UpstreamBadAnswer,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamRefusedRequest,
    UpstreamServerError,
    UpstreamUnauthorized,
    UpstreamWrongPath,
)
from gateway.upstream.code_errors import DEFAULT_RETRY_AFTER, code_error

ANTHROPIC_400 = {"type": "error", "error": {"type": "invalid_request_error", "message": (
    "invalid params, model \"MiniMax-M3.1-Flash-Preview\" requires adaptive thinking; thinking.type=\"disabled\" "
    "(including reasoning.effort=none) is not allowed (2013)")}}


@pytest.mark.parametrize(("status", "body", "error"), [
    (401, {"code": 401, "message": "token is required"}, UpstreamUnauthorized),
    (401, {}, UpstreamUnauthorized),
    (400, ANTHROPIC_400, UpstreamRefusedRequest),
    (400, {"type": "error", "error": {"type": "invalid_request_error",
                                      "message": "unsupported content type 'image_url' (2013)"}}, UpstreamRefusedRequest),
    (503, {"errorCode": 50115, "errorReason": "direct_route_not_configured"}, UpstreamWrongPath),
    (429, {"type": "error", "error": {"type": "rate_limit_error", "message": "rate limit (2045)"}}, UpstreamRateLimited),
    (429, {"type": "error", "error": {"message": "usage limit exceeded (2056)"}, "base_resp": {"status_code": 2056}},
     QuotaExhausted),
    (200, {"status_code": 2067, "message": "Token Plan limit reached and auto credit consumption off"}, QuotaExhausted),
    (500, {"statusCode": 500, "responseBody": json.dumps({"status_code": 2056})}, QuotaExhausted),  # an AI-SDK wrapper
    (402, {}, NoCredits),
    (200, {"base_resp": {"status_code": 1008, "status_msg": "insufficient balance"}}, NoCredits),
    (529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, UpstreamOverloaded),
    (502, {}, UpstreamServerError),
    (404, {}, UpstreamBadAnswer),
])
def test_error_table(status: int, body: dict, error: type[GatewayError]) -> None:
    assert type(code_error(status, json.dumps(body).encode())) is error


def test_the_upstreams_reason_is_kept_for_a_refused_request() -> None:
    error = code_error(400, json.dumps(ANTHROPIC_400).encode())
    assert error.status == 400 and "requires adaptive thinking" in error.message and "(2013)" in error.message


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), (None, DEFAULT_RETRY_AFTER), ("soon", DEFAULT_RETRY_AFTER)])
def test_a_rate_limit_carries_retry_after(header: str | None, seconds: float) -> None:
    assert code_error(429, b"{}", header).retry_after == seconds


def test_a_body_that_is_not_json_is_still_classified_by_status() -> None:
    assert type(code_error(529, b"<html>busy</html>")) is UpstreamOverloaded
