import base64
import json
import time

import pytest

from gateway.errors import AuthenticationFailed, ExpiredCredentials, MissingCredentials
from gateway.upstream.credentials import parse_one, parse_pool, token_expiry


def jwt(payload: dict) -> str:
    def seg(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{seg({'alg': 'HS256'})}.{seg(payload)}.c2lnbmF0dXJl"


LIVE = {"exp": time.time() + 3600, "user": {"id": "123456789012345678", "deviceID": "42"}}


def test_explicit_real_user_id_stays_a_string_beyond_2_53() -> None:
    cred = parse_one("9007199254740993123+" + jwt(LIVE))
    assert cred.real_user_id == "9007199254740993123"
    assert cred.explicit_user_id and cred.device_hint == "42"


def test_bare_jwt_never_takes_the_jwt_user_id_as_real_user_id() -> None:
    cred = parse_one(jwt(LIVE))
    assert cred.real_user_id is None and cred.jwt_user_id == "123456789012345678"
    assert not cred.explicit_user_id


def test_token_expiry_reads_exp() -> None:
    assert token_expiry(jwt(LIVE)) == LIVE["exp"]
    assert token_expiry("not-a-jwt") is None


def test_repr_never_shows_the_token() -> None:
    token = jwt(LIVE)
    cred = parse_one("9007199254740993123+" + token)
    assert token not in repr(cred) and token not in str(cred)
    assert "9007199254740993123" not in repr(cred)


def test_pool_drops_expired_but_refuses_all_expired() -> None:
    expired = jwt({"exp": time.time() - 10, "user": {"id": "1"}})
    assert len(parse_pool(f"{jwt(LIVE)}, {expired}")) == 1
    with pytest.raises(ExpiredCredentials):
        parse_pool(expired)


@pytest.mark.parametrize("text", ["", " , "])
def test_empty_pool_is_missing(text: str) -> None:
    with pytest.raises(MissingCredentials):
        parse_pool(text)


# Fixed ids: the JWT holds the current time, and pytest-xdist workers must collect alike.
@pytest.mark.parametrize("text", ["not-a-jwt", "12+a.b", "x.!!!.y", "abc+" + jwt(LIVE), "\u00b2+" + jwt(LIVE),
                                  jwt(LIVE) + "\r\nX-Injected: 1", jwt(LIVE) + "\u2019", jwt(LIVE) + "\x00"],
                         ids=["not-a-jwt", "no-jwt", "bad-base64", "non-numeric-id", "superscript-id",
                              "crlf-in-signature", "non-latin-1-signature", "nul-in-signature"])
def test_malformed_credentials_are_refused_without_echoing(text: str) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        parse_one(text)
    assert text not in str(info.value)
