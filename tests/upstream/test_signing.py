"""Signing: every captured browser request reproduced bit for bit, and the variants."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import string
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from gateway.config import Settings
from gateway.upstream import constants as C
from gateway.upstream.signing import (
    CAPTURED,
    Identity,
    SigningVariant,
    axios_encode,
    build_query,
    dump_body,
    encode_uri_component,
    signatures,
    x_signature,
    yy_body,
    yy_signature,
    yy_target,
)

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "captures" / "vectors.json"
def variant(**changes: object) -> SigningVariant:
    return dataclasses.replace(CAPTURED, **changes)  # type: ignore[arg-type]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _vectors() -> list[dict[str, Any]]:
    if not VECTORS.exists():
        pytest.skip(f"the captured vectors are not at {VECTORS}")
    return json.loads(VECTORS.read_text())


def _target(vector: dict[str, Any]) -> tuple[str, bool]:
    """What the gateway signs for a captured URL: absolute on the stream host."""
    url = urlsplit(vector["url"])
    relative = f"{url.path}?{url.query}"
    stream_host = url.hostname is not None and url.hostname.startswith("agent-stream.")
    session_call = url.path.startswith(C.SESSION_PREFIXES)
    return (vector["url"] if stream_host else relative), session_call


def test_the_capture_file_holds_vectors() -> None:
    assert len(_vectors()) >= 8


@pytest.mark.parametrize("index", range(8))
def test_every_captured_vector_is_reproduced(index: int) -> None:
    vector = _vectors()[index]
    target, session_call = _target(vector)
    headers = vector["headers"]
    got = signatures(
        target=target, body=vector["body"] or None, seconds=int(headers["x-timestamp"]),
        token=headers["token"], session_call=session_call, variant=CAPTURED,
    )
    assert got["x-signature"] == headers["x-signature"], vector["note"]
    assert got["yy"] == headers["yy"], vector["note"]
    inputs = vector["yy_inputs"]
    assert yy_target(target, CAPTURED) == inputs["T"]
    assert yy_body(vector["body"] or None, session_call, CAPTURED) == inputs["B"]


def test_the_gateway_query_is_encoded_like_the_captured_one() -> None:
    vector = _vectors()[0]
    query = urlsplit(vector["url"]).query
    pairs = [pair.split("=", 1) for pair in query.split("&")]
    assert [name for name, _ in pairs[:-1]] == [name for name, _ in C.QUERY_TEMPLATE]
    assert pairs[-1][0] == "region"
    assert axios_encode("Linux x86_64") == "Linux+x86_64"
    assert axios_encode("a,b:c$[d]") == "a,b:c$[d]"


def test_encode_uri_component_matches_javascript() -> None:
    assert encode_uri_component("a b+c/d?e=f&g") == "a%20b%2Bc%2Fd%3Fe%3Df%26g"
    assert encode_uri_component("-_.!~*'()") == "-_.!~*'()"
    assert encode_uri_component("中") == "%E4%B8%AD"


def test_query_order_region_only_when_asked() -> None:
    identity = Identity("u-u-i-d", "12345678", "9007199254740993123", "a.b.c", "en", "en")
    query = build_query(identity, 1700000000000, leading=[("msgID", "5")])
    names = [pair.split("=")[0] for pair in query.split("&")]
    assert names == ["msgID"] + [name for name, _ in C.QUERY_TEMPLATE]
    assert "user_id=9007199254740993123" in query and "lang=en" in query
    with_region = build_query(identity, 1700000000000, with_region=True)
    assert with_region.endswith("&client=web&region=en")


def test_op_ticket_goes_after_user_id_and_only_into_the_signature() -> None:
    assert yy_target("/p?a=1&user_id=7&b=2", CAPTURED) == "/p?a=1&user_id=7&op_ticket=undefined&b=2"
    assert yy_target("/p?a=1&user_id=7", variant(op_ticket=False)) == "/p?a=1&user_id=7"


def test_body_variants() -> None:
    assert yy_body(None, False, CAPTURED) == "{}"
    assert yy_body(None, True, variant(empty_body="empty")) == ""
    assert yy_body('{"a":"中"}', True, CAPTURED) == '"{\\"a\\":\\"中\\"}"'
    assert yy_body('{"a":1}', True, variant(session_body="raw")) == '{"a":1}'
    assert yy_body('{"a":1}', False, CAPTURED) == '{"a":1}'


def test_x_signature_bundle_and_jwt_salts() -> None:
    assert x_signature(1700000000, '{"a":1}', "bundle", "tok") == md5(
        '1700000000I*7Cf%WZ#S&%1RlZJ&C2{"a":1}'
    )
    assert x_signature(1700000000, "", "jwt", "tok") == md5("1700000000tok")


def test_yy_covers_encoded_target_body_and_time() -> None:
    expected = md5(encode_uri_component("/p?x=1") + "_" + "{}" + md5("1700000000000") + "ooui")
    assert yy_signature("/p?x=1", "{}", 1700000000000) == expected


def test_unix_is_the_timestamp_in_whole_seconds_times_1000() -> None:
    got = signatures(target="/p?user_id=1", body=None, seconds=1700000001, token="t",
                     session_call=False, variant=CAPTURED)
    assert got["x-timestamp"] == "1700000001"
    assert got["yy"] == yy_signature("/p?user_id=1&op_ticket=undefined", "{}", 1700000001000)


def test_body_is_compact_utf8_json() -> None:
    assert dump_body({"text": "中 文", "n": 1}) == '{"text":"中 文","n":1}'


def test_variant_description_names_the_captured_form() -> None:
    assert CAPTURED.describe().startswith("captured")
    assert variant(op_ticket=False).describe().startswith("custom")


def test_the_default_settings_sign_as_captured() -> None:
    assert Settings.from_env({}).signing() == CAPTURED


@pytest.mark.parametrize("text", [
    "", "abc-_.!~*'()", "a b&c=d/e?f", "[x]:$,+%", "\x00\x7f\t\n", "中文 é", "😀 a", string.printable,
])
def test_encode_uri_component_is_quote_with_the_javascript_safe_set(text: str) -> None:
    # The fast path (str.translate for ASCII) must equal the reference encoding.
    assert encode_uri_component(text) == quote(text, safe="-_.!~*'()")
