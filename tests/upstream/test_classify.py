"""The upstream answer classifier: (HTTP status, body) -> unwrapped data or a gateway error.

``classify``, ``status_of`` and ``error_for`` in gateway/upstream/client.py are pure;
each row names the answer and the exact error class it must become (exact, not a
superclass: the pool and the dialects act on the precise class).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import (
    AccountInUse,
    GatewayError,
    NoCredits,
    QuotaExhausted,
    UpstreamBadAnswer,
    UpstreamError,
    UpstreamRejectedSignature,
    UpstreamServerError,
    UpstreamUnauthorized,
    UpstreamWrongPath,
)
from gateway.upstream import constants as C
from gateway.upstream.answers import classify, error_for, status_of

HTML = b"<!DOCTYPE html><html><head><title>MiniMax Agent</title></head><body></body></html>"


def envelope(code: int = 0, msg: str = "success", kind: str = "base_resp", **data: Any) -> bytes:
    status = {"status_code": code, "status_msg": msg} if kind == "base_resp" else {"code": code, "message": msg}
    return json.dumps({**data, kind: status}).encode()


ERROR_CASES = [
    # (id, status, body, error class)
    ("401 with an empty body", 401, b"", UpstreamUnauthorized),
    ("401 with a JSON body", 401, envelope(0), UpstreamUnauthorized),
    ("404", 404, b"Not Found", UpstreamWrongPath),
    ("404 with JSON", 404, envelope(0), UpstreamWrongPath),
    ("HTML page with 200", 200, HTML, UpstreamWrongPath),
    ("HTML page after whitespace", 200, b"\n  " + HTML, UpstreamWrongPath),
    ("non-JSON 502", 502, b"Bad Gateway", UpstreamServerError),
    ("HTML 503", 503, HTML, UpstreamServerError),
    ("empty 500", 500, b"", UpstreamServerError),
    ("non-JSON 200", 200, b"ok", UpstreamBadAnswer),
    ("empty 200", 200, b"", UpstreamBadAnswer),
    ("JSON array", 200, b"[1, 2]", UpstreamBadAnswer),
    ("JSON string", 200, b'"hello"', UpstreamBadAnswer),
    ("invalid signature (400)", 400, envelope(C.CODE_INVALID_SIGNATURE, "invalid signature"), UpstreamRejectedSignature),
    ("busy by code", 200, envelope(C.CODE_CHAT_RUNNING, "busy"), AccountInUse),
    ("busy by message", 200, envelope(1234567, "chat is running"), AccountInUse),
    ("busy by message, any case, in a sentence", 200, envelope(1, "The Chat Is Running, please wait"), AccountInUse),
    ("busy in a statusInfo envelope", 200, envelope(99, "chat is running", kind="statusInfo"), AccountInUse),
    ("busy with an HTTP error status", 429, envelope(C.CODE_CHAT_RUNNING, "busy"), AccountInUse),
    ("no credits", 200, envelope(C.CODE_NO_CREDITS, "credits not enough"), NoCredits),
    ("no credits in statusInfo", 200, envelope(C.CODE_NO_CREDITS, "x", kind="statusInfo"), NoCredits),
    ("quota 2056", 200, envelope(C.CODE_QUOTA, "usage limit"), QuotaExhausted),
    ("other code with 200", 200, envelope(1400010999, "something odd"), UpstreamError),
    ("other code in statusInfo", 200, envelope(7, "nope", kind="statusInfo"), UpstreamError),
    ("JSON 500", 500, envelope(5, "internal"), UpstreamServerError),
    ("JSON 500 with code 0", 500, envelope(0), UpstreamServerError),
    ("JSON 400 with code 0", 400, envelope(0), UpstreamError),
    ("malformed envelope", 200, json.dumps({"base_resp": "broken"}).encode(), UpstreamError),
    ("non-integer code", 200, json.dumps({"base_resp": {"status_code": "0"}}).encode(), UpstreamError),
]


@pytest.mark.parametrize(("status", "body", "error"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_error_answers(status: int, body: bytes, error: type[GatewayError]) -> None:
    with pytest.raises(GatewayError) as raised:
        classify(status, body)
    assert type(raised.value) is error


DATA_CASES = [
    # (id, body, unwrapped data)
    ("base_resp with data", envelope(0, data={"chat_id": 5}), {"chat_id": 5}),
    ("statusInfo with data", envelope(0, kind="statusInfo", data={"userInfo": {"realUserID": "1"}}), {"userInfo": {"realUserID": "1"}}),
    ("no data: the document itself", envelope(0, chat_id=5), {"chat_id": 5, "base_resp": {"status_code": 0, "status_msg": "success"}}),
    ("no envelope at all", b'{"token": "a.b.c"}', {"token": "a.b.c"}),
    ("data that is a list is wrapped", envelope(0, data=[1, 2]), {"data": [1, 2]}),
    ("data null is wrapped", envelope(0, data=None), {"data": None}),
    ("envelope without a code means OK", b'{"base_resp": {"status_msg": ""}, "data": {"x": 1}}', {"x": 1}),
    ("UTF-8 text", '{"data": {"title": "你好\u2028"}}'.encode(), {"title": "你好\u2028"}),
]


@pytest.mark.parametrize(("body", "data"), [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_successful_answers_are_unwrapped(body: bytes, data: dict[str, Any]) -> None:
    assert classify(200, body) == data


STATUS_CASES = [
    ("base_resp", {"base_resp": {"status_code": 12, "status_msg": "bad"}}, (12, "bad")),
    ("statusInfo", {"statusInfo": {"code": 34, "message": "worse"}}, (34, "worse")),
    ("base_resp wins", {"base_resp": {"status_code": 1, "status_msg": "a"}, "statusInfo": {"code": 2, "message": "b"}}, (1, "a")),
    ("empty base_resp falls back to statusInfo", {"base_resp": {}, "statusInfo": {"code": 2, "message": "b"}}, (2, "b")),
    ("none", {"data": {}}, (C.CODE_OK, "")),
    ("not a dict", {"base_resp": ["x"]}, (-1, "malformed status")),
    ("code not an int", {"base_resp": {"status_code": "12"}}, (-1, "")),
    ("message not a string", {"statusInfo": {"code": 3, "message": 42}}, (3, "42")),
    ("long message cut to 200", {"base_resp": {"status_code": 1, "status_msg": "x" * 500}}, (1, "x" * 200)),
]


@pytest.mark.parametrize(("document", "expected"), [c[1:] for c in STATUS_CASES], ids=[c[0] for c in STATUS_CASES])
def test_status_of(document: dict[str, Any], expected: tuple[int, str]) -> None:
    assert status_of(document) == expected


ERROR_FOR_CASES = [
    ("chat running code", C.CODE_CHAT_RUNNING, "", 200, AccountInUse),
    ("chat running message", 42, "Chat is running", 200, AccountInUse),
    ("busy beats a 5xx", 42, "chat is running", 502, AccountInUse),
    ("no credits", C.CODE_NO_CREDITS, "", 200, NoCredits),
    ("quota", C.CODE_QUOTA, "", 200, QuotaExhausted),
    ("5xx", 42, "down", 503, UpstreamServerError),
    ("anything else", 42, "odd", 200, UpstreamError),
]


@pytest.mark.parametrize(("code", "message", "status", "error"), [c[1:] for c in ERROR_FOR_CASES], ids=[c[0] for c in ERROR_FOR_CASES])
def test_error_for(code: int, message: str, status: int, error: type[GatewayError]) -> None:
    assert type(error_for(code, message, status)) is error


def test_generic_errors_name_the_code_and_status_for_the_operator() -> None:
    text = str(error_for(1400010999, "something odd", 200))
    assert "1400010999" in text and "200" in text and "something odd" in text


@pytest.mark.parametrize(("status", "body"), [(c[1], c[2]) for c in ERROR_CASES])
def test_no_error_message_echoes_a_query_string(status: int, body: bytes) -> None:
    """Classifier messages are fixed text plus codes: never a URL (whose query holds the token)."""
    with pytest.raises(GatewayError) as raised:
        classify(status, body)
    assert "token=" not in raised.value.message and "://" not in raised.value.message


def test_busy_is_a_rate_limit_not_an_upstream_failure() -> None:
    from gateway.errors import AccountInUse, RateLimited, UpstreamError

    busy = error_for(C.CODE_CHAT_RUNNING, "chat is running", 200)
    assert isinstance(busy, AccountInUse) and isinstance(busy, RateLimited) and busy.status == 429
    assert not isinstance(busy, UpstreamError)  # an `except UpstreamError` must not swallow "busy"
