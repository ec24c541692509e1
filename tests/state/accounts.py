"""Credentials that are the same in every test process (the key is the JWT's hash)."""

from __future__ import annotations

from gateway.upstream.credentials import Credential, parse_one
from tests.upstream.test_credentials import jwt

#: A fixed expiry far ahead, so every process mints the same JWTs.
EXPIRES = 4_102_444_800  # 2100-01-01


def creds(n: int) -> list[Credential]:
    return [parse_one(f"{10**17 + i}+" + jwt({"exp": EXPIRES, "user": {"id": str(10**17 + i), "deviceID": "42"},
                                              "n": i})) for i in range(n)]
