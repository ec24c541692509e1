"""Signing against values worked out by hand from UPSTREAM.md's formulas."""

import hashlib

from gateway.upstream import constants as C
from gateway.upstream.signing import (
    Identity,
    build_query,
    dump_body,
    encode_uri_component,
    signed_headers,
    x_signature,
    yy_signature,
)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_encode_uri_component_matches_javascript() -> None:
    assert encode_uri_component("a b+c/d?e=f&g") == "a%20b%2Bc%2Fd%3Fe%3Df%26g"
    assert encode_uri_component("-_.!~*'()") == "-_.!~*'()"
    assert encode_uri_component("中") == "%E4%B8%AD"


def test_query_has_the_22_parameters_in_signed_order() -> None:
    identity = Identity("u-u-i-d", "123", "9007199254740993123", "a.b.c")
    query = build_query(identity, 1700000000123, leading=[("msgID", "5")])
    names = [pair.split("=")[0] for pair in query.split("&")]
    assert names == ["msgID"] + [name for name, _ in C.QUERY_TEMPLATE]
    assert len(C.QUERY_TEMPLATE) == 22
    assert "user_id=9007199254740993123" in query
    assert "unix=1700000000123" in query


def test_x_signature_bundle_and_jwt_salts() -> None:
    assert x_signature(1700000000, '{"a":1}', "bundle", "tok") == md5(
        '1700000000I*7Cf%WZ#S&%1RlZJ&C2{"a":1}'
    )
    assert x_signature(1700000000, "", "jwt", "tok") == md5("1700000000tok")


def test_yy_covers_encoded_path_query_body_and_time() -> None:
    expected = md5(
        encode_uri_component("/p?x=1") + "_" + "{}" + md5("1700000000123") + "ooui"
    )
    assert yy_signature("/p", "x=1", "{}", 1700000000123) == expected


def test_headers_use_seconds_of_the_same_instant() -> None:
    headers = signed_headers(
        base_url="https://h", path="/p", query="q=1", body="", token="t",
        unix_ms=1700000000999, mode="bundle",
    )
    assert headers["x-timestamp"] == "1700000000"
    assert headers["Referer"] == "https://h/"
    assert headers["token"] == "t"


def test_body_is_compact_utf8_json() -> None:
    assert dump_body({"text": "中 文", "n": 1}) == '{"text":"中 文","n":1}'
