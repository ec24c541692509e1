"""Parsing of what a user pastes as a MiniMax credential.

A web credential is ``REALUSERID+JWT`` or a bare JWT; several joined by ``,`` form a pool.
A MiniMax Code access token (``mmoat_…``, from the device login) is a *code* credential
for the code surface: used as it is, never refreshed (the client owns it). An account
signed in on the server (``python -m gateway login``) is a code credential too, named
by ``signin``: its tokens live in the shared state and are renewed there.
The JWT is decoded (not verified: only MiniMax can) to read ``exp`` and ``user.deviceID``.
Its ``user.id`` is *not* the realUserID (the captures show two different numbers): for a
bare JWT the upstream client learns the realUserID from the user-info call. realUserIDs
exceed 2**53, so they stay strings throughout.

A :class:`Credential` never shows its token: ``repr`` and ``str`` give a masked form and
``key`` is a short hash usable in logs and metrics.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from gateway.errors import AuthenticationFailed, ExpiredCredentials, MissingCredentials

BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")

POOL_SEPARATOR = ","
USER_ID_SEPARATOR = "+"
#: How a MiniMax Code access token begins (UPSTREAM-CODE.md §1: ``mmoat_…``, not a JWT).
CODE_TOKEN_PREFIX = "mmoat_"
CODE_TOKEN = re.compile(r"mmoat_[A-Za-z0-9_-]{8,200}")
CredentialKind = Literal["web", "code"]


@dataclass(frozen=True, repr=False)
class Credential:
    """One MiniMax account's login: its realUserID and JWT (web), or its MiniMax Code
    access token (code), or the name of an account signed in on the server (code)."""

    #: Given by the user (``REALUSERID+JWT``); None for a bare JWT until learned upstream.
    real_user_id: str | None
    #: The web JWT, or a code access token given by the client ("" for a signed-in account).
    jwt: str
    device_hint: str | None = None
    expires_at: float | None = None
    #: The JWT's ``user.id``: shown by the doctor, never sent as the realUserID.
    jwt_user_id: str = ""
    kind: CredentialKind = "web"
    #: A server-side signed-in account's name (its tokens are in the shared state).
    signin: str | None = None

    @property
    def explicit_user_id(self) -> bool:
        return self.real_user_id is not None

    @property
    def key(self) -> str:
        """A stable, non-reversible id for logs, metrics and caches (a signed-in account
        keeps its key across token rotations)."""
        if self.signin is not None:
            return signin_key(self.signin)
        return hashlib.sha256(self.jwt.encode()).hexdigest()[:12]

    def login(self) -> str:
        """The credential as it was pasted (``REALUSERID+JWT`` or the JWT): secret; only
        for the shared state, never for a log or a message."""
        return f"{self.real_user_id}{USER_ID_SEPARATOR}{self.jwt}" if self.real_user_id else self.jwt

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or time.time())

    def __repr__(self) -> str:
        if self.kind == "code":
            return f"Credential(code, {'signin=' + self.signin if self.signin else 'token'}, key={self.key})"
        return f"Credential(user={mask(self.real_user_id or '?')}, key={self.key})"

    __str__ = __repr__


def signin_key(name: str) -> str:
    """The key of the server-side signed-in account ``name``."""
    return hashlib.sha256(b"signin\0" + name.encode()).hexdigest()[:12]


def signed_in(name: str) -> Credential:
    """The credential of the server-side signed-in account ``name``."""
    return Credential(real_user_id=None, jwt="", kind="code", signin=name)


def mask(text: str) -> str:
    """Keep only the ends of an identifier, enough to tell accounts apart."""
    return text if len(text) <= 8 else f"{text[:4]}…{text[-4:]}"


def parse_pool(text: str, now: float | None = None) -> list[Credential]:
    """Parse ``CRED[,CRED...]``, dropping expired ones; refuse when none is usable."""
    items = [part.strip() for part in text.split(POOL_SEPARATOR) if part.strip()]
    if not items:
        raise MissingCredentials()
    credentials = [parse_one(item, position) for position, item in enumerate(items, 1)]
    live = [cred for cred in credentials if not cred.expired(now)]
    if not live:
        raise ExpiredCredentials(_expired_message(len(credentials)))
    return live


def _expired_message(count: int) -> str:
    if count == 1:
        return ExpiredCredentials.message
    return f"All {count} MiniMax tokens in the pool have expired; log in again."


def parse_one(text: str, position: int = 1) -> Credential:
    """Parse one ``REALUSERID+JWT``, bare JWT or MiniMax Code access token."""
    if text.strip().startswith(CODE_TOKEN_PREFIX):
        return _code_token(text.strip(), position)
    user_id, sep, jwt = text.rpartition(USER_ID_SEPARATOR)
    if not sep:
        jwt = text
    payload = _jwt_payload(jwt, position)
    user = _object(payload.get("user"))
    real_user_id = user_id.strip() or None
    if real_user_id is not None and not (real_user_id.isascii() and real_user_id.isdigit()):
        raise AuthenticationFailed(
            f"Credential #{position}: the part before '+' must be the numeric realUserID; "
            "or paste the bare JWT and the gateway looks the realUserID up itself."
        )
    return Credential(
        real_user_id=real_user_id,
        jwt=jwt.strip(),
        device_hint=_as_id(user.get("deviceID")) or None,
        expires_at=_as_float(payload.get("exp")),
        jwt_user_id=_as_id(user.get("id")),
    )


def _code_token(token: str, position: int) -> Credential:
    if not CODE_TOKEN.fullmatch(token):
        raise AuthenticationFailed(
            f"Credential #{position}: a MiniMax Code token is mmoat_ followed by letters, digits, - or _.")
    return Credential(real_user_id=None, jwt=token, kind="code")


def token_expiry(jwt: str) -> float | None:
    """The ``exp`` of a JWT the upstream handed out (e.g. a renewed one), if readable."""
    try:
        return _as_float(_jwt_payload(jwt, 1).get("exp"))
    except AuthenticationFailed:
        return None


def _jwt_payload(jwt: str, position: int) -> dict[str, Any]:
    segments = jwt.strip().split(".")
    if len(segments) != 3:
        raise AuthenticationFailed(
            f"Credential #{position} is not a JWT (expected three dot-separated parts)."
        )
    # The JWT travels in headers and the query as it is: base64url only, nothing that
    # could split an HTTP line or fail to encode.
    if not all(BASE64URL.fullmatch(segment) for segment in segments):
        raise AuthenticationFailed(f"Credential #{position}: a JWT part has characters outside base64url.")
    try:
        raw = base64.urlsafe_b64decode(segments[1] + "=" * (-len(segments[1]) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError):
        raise AuthenticationFailed(
            f"Credential #{position}: the JWT payload cannot be decoded."
        ) from None
    if not isinstance(payload, dict):
        raise AuthenticationFailed(f"Credential #{position}: the JWT payload is not an object.")
    return payload


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_id(value: object) -> str:
    # JSON numbers past 2**53 were already rounded by whoever wrote them as numbers;
    # accept ints (exact in Python) and digit strings, nothing else.
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _as_float(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None
