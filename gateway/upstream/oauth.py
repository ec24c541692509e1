"""The OAuth client of the MiniMax Code account host: device login and token refresh.

It speaks UPSTREAM-CODE.md §1 as the official client does: form bodies, PKCE S256, the
public client ``mcode-public`` with scope ``agent.default`` and audience
``agent-backend``. A poll answers in either form the page lists (HTTP 200
``{"status": ...}`` or HTTP 400 ``{"error": ...}``); ``slow_down`` adds five seconds to
the interval; denial and expiry end the login (:class:`DeviceLoginFailed`); a 5xx, a 429
or a transport failure is no verdict, and :meth:`OAuthClient.wait` polls again after a
backoff. A token answer is checked like the official client's: bearer, a positive
lifetime, the ``agent.default`` scope, a refresh token (or the previous one kept).

Refresh tokens are single-use: :meth:`OAuthClient.refresh` returns the rotated pair, and
``invalid_grant`` raises :class:`SignInRevoked` (the sign-in is gone). Nothing here keeps
a token: :mod:`gateway.upstream.signins` does. Tokens, verifiers and device codes never
appear in a repr, a log line or an exception's text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from gateway.errors import (
    DeviceLoginDenied,
    DeviceLoginExpired,
    DeviceLoginFailed,
    GatewayError,
    RateLimited,
    SignInRevoked,
    UpstreamBadAnswer,
    UpstreamError,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.upstream import constants as C
from gateway.upstream.boundary import new_session, transport_errors
from gateway.upstream.credentials import mask
from gateway.upstream.settings import CodeSettings

log = logging.getLogger(__name__)
#: Connections kept per host: these calls are few (one account's at a time).
OAUTH_POOL_SIZE = 4

#: Failures that say nothing about the login or the token: poll or refresh again later.
TRANSIENT: tuple[type[GatewayError], ...] = (UpstreamServerError, UpstreamUnavailable, UpstreamTimeout,
                                             RateLimited)
#: A token goes into an Authorization header as it is: visible ASCII only.
TOKEN_TEXT = re.compile(r"[\x21-\x7e]{8,4096}")
USER_CODE = re.compile(r"[A-Za-z0-9-]{4,32}")
#: What an OAuth ``error`` may be to be named in a message (anything else is not shown).
OAUTH_ERROR = re.compile(r"[a-z0-9_.]{1,64}")
#: Seconds of the first wait after a transient poll failure (then doubled), and the longest.
RETRY_FIRST, RETRY_LONGEST = 1.0, 30.0
#: The longest poll interval honoured from an answer (a guard against a broken server).
LONGEST_INTERVAL = 60.0
#: ``expired_in`` values below this are seconds, above it epoch milliseconds (official client).
EPOCH_MS_FLOOR = 1_000_000_000_000
MAX_NAME_CHARS = 64
MAX_LINK_CHARS = 2048

Sleep = Callable[[float], None]
Clock = Callable[[], float]


@dataclass(frozen=True, repr=False)
class TokenPair:
    """A granted access token and the refresh token that renews it (both secret)."""

    access_token: str
    refresh_token: str
    #: Epoch seconds: when the access token stops working (answer time + ``expires_in``).
    expires_at: float
    scope: str
    account_id: str | None = None
    nickname: str | None = None

    def __repr__(self) -> str:
        return (f"TokenPair(access={mask(self.access_token)}, refresh=***, expires_at={self.expires_at:.0f}, "
                f"scope={self.scope!r}, account_id={mask(self.account_id or '-')})")

    __str__ = __repr__


@dataclass(frozen=True, repr=False)
class DeviceAuthorization:
    """A started device login: what the user is shown, and what polling needs."""

    #: None for the official client's variant that polls with the user code.
    device_code: str | None
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    #: Epoch seconds after which the code is dead.
    expires_at: float
    #: Seconds between polls (grows on ``slow_down``).
    interval: float
    code_verifier: str

    @property
    def link(self) -> str:
        """The page to open: with the code filled in when the host gave one."""
        return self.verification_uri_complete or self.verification_uri

    def __repr__(self) -> str:
        return (f"DeviceAuthorization(user_code={self.user_code!r}, uri={self.verification_uri!r}, "
                f"expires_at={self.expires_at:.0f}, interval={self.interval}, device_code=***, verifier=***)")

    __str__ = __repr__


@dataclass(frozen=True)
class Pending:
    """The user has not approved yet; ``slow_down``: the host asks for longer intervals."""

    slow_down: bool = False


class OAuthClient:
    """Device login and refresh against one region's account host."""

    def __init__(self, settings: CodeSettings, session: requests.Session | None = None,
                 clock: Clock = time.time) -> None:
        self.settings = settings
        self._session = session or new_session(OAUTH_POOL_SIZE)
        self._clock = clock

    def start(self) -> DeviceAuthorization:
        """Ask for a device and user code (a fresh PKCE verifier for each login)."""
        verifier = _b64url(secrets.token_bytes(C.PKCE_VERIFIER_BYTES))
        challenge = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
        status, document = self._post(C.PATH_OAUTH_DEVICE_CODE, {
            "client_id": self.settings.client_id, "scope": C.OAUTH_SCOPE, "audience": C.OAUTH_AUDIENCE,
            "code_challenge": challenge, "code_challenge_method": C.PKCE_METHOD,
        })
        if status != 200 or "error" in document:
            raise _failure(status, document, "the device login")
        return parse_device(document, verifier, self._clock())

    def poll(self, auth: DeviceAuthorization) -> TokenPair | Pending:
        """One poll of the token endpoint: the tokens, or still pending."""
        code = ("user_code", auth.user_code) if auth.device_code is None else ("device_code", auth.device_code)
        status, document = self._post(C.PATH_OAUTH_TOKEN, {
            "grant_type": C.GRANT_DEVICE_CODE, code[0]: code[1],
            "client_id": self.settings.client_id, "code_verifier": auth.code_verifier,
        })
        return poll_answer(status, document, self._clock())

    def wait(self, auth: DeviceAuthorization, sleep: Sleep = time.sleep,
             on_pending: Callable[[Pending], None] | None = None) -> TokenPair:
        """Poll until the user approves (the tokens), denies or lets the code expire
        (:class:`DeviceLoginFailed`); transient failures are retried with a backoff."""
        interval, backoff = min(auth.interval, LONGEST_INTERVAL), 0.0
        while (left := auth.expires_at - self._clock()) > 0:
            try:
                answer = self.poll(auth)
            except TRANSIENT as error:
                backoff = min(RETRY_LONGEST, max(interval, backoff * 2 or RETRY_FIRST))
                log.info("device login poll failed (%s); polling again in %.0f s", type(error).__name__, backoff)
                sleep(min(backoff, left))
                continue
            if isinstance(answer, TokenPair):
                return answer
            backoff = 0.0
            if answer.slow_down:
                interval += C.DEVICE_SLOW_DOWN_STEP
            if on_pending is not None:
                on_pending(answer)
            sleep(max(0.0, min(interval, auth.expires_at - self._clock())))
        raise DeviceLoginExpired()

    def refresh(self, refresh_token: str) -> TokenPair:
        """Trade a refresh token (single-use) for a new pair; an answer without a refresh
        token keeps this one. ``invalid_grant`` raises :class:`SignInRevoked`."""
        status, document = self._post(C.PATH_OAUTH_TOKEN, {
            "grant_type": C.GRANT_REFRESH_TOKEN, "refresh_token": refresh_token,
            "client_id": self.settings.client_id, "scope": C.OAUTH_SCOPE, "audience": C.OAUTH_AUDIENCE,
        })
        error = _text(document, "error")
        if status == 200 and not error:
            return parse_grant(document, self._clock(), previous_refresh=refresh_token)
        if error == C.OAUTH_INVALID_GRANT:
            raise SignInRevoked()
        raise _failure(status, document, "the token refresh")

    def close(self) -> None:
        self._session.close()

    def _post(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """POST a form; the status and the JSON object answered (transient errors raised)."""
        headers = {"Accept": "application/json", "User-Agent": self.settings.user_agent}
        timeouts = (self.settings.connect_timeout, self.settings.read_timeout)
        response = None
        try:
            with transport_errors():
                response = self._session.post(self.settings.account_url + path, data=form, headers=headers,
                                              timeout=timeouts, allow_redirects=False)
                status, payload = response.status_code, response.content
        finally:
            if response is not None:
                response.close()
        return status, _document(status, payload)


def parse_device(document: dict[str, Any], verifier: str, now: float) -> DeviceAuthorization:
    """The device answer, in the standard form or the official client's user-code variant
    (no ``device_code``; ``expired_in`` in epoch ms and ``interval`` in ms)."""
    user_code, device_code = _text(document, "user_code"), _text(document, "device_code")
    expired_in = _positive(document, "expired_in")
    by_user_code = device_code is None and user_code is not None and expired_in is not None
    uri = _text(document, "verification_uri") or _text(document, "verification_url")
    complete = _text(document, "verification_uri_complete")
    lifetime = _positive(document, "expires_in") or _variant_lifetime(expired_in, now)
    interval = _positive(document, "interval")
    if by_user_code and interval is not None:
        interval /= 1000.0
    if (device_code is None and not by_user_code) or not lifetime or not _link(uri) \
            or user_code is None or not USER_CODE.fullmatch(user_code) or (complete and not _link(complete)):
        raise UpstreamBadAnswer("MiniMax's device login answer lacks a usable code, link or lifetime.")
    assert uri is not None
    return DeviceAuthorization(
        device_code=device_code, user_code=user_code, verification_uri=uri,
        verification_uri_complete=complete, expires_at=now + lifetime,
        interval=interval or C.DEVICE_DEFAULT_INTERVAL, code_verifier=verifier,
    )


def poll_answer(status: int, document: dict[str, Any], now: float) -> TokenPair | Pending:
    """What one poll answer means (every row of the page's table)."""
    error, state = _text(document, "error"), _text(document, "status")
    word = error if error else (state if status == 200 else None)
    if word in C.POLL_PENDING:
        return Pending()
    if word in C.POLL_SLOW_DOWN:
        return Pending(slow_down=True)
    if word in C.POLL_DENIED:
        raise DeviceLoginDenied()
    if word in C.POLL_EXPIRED:
        raise DeviceLoginExpired()
    if status == 200 and not error:
        return parse_grant(document, now)
    if status >= 500 or status == 429:
        raise _failure(status, document, "the device login")
    raise DeviceLoginFailed(f"MiniMax's account host ended the device login ({_named(error)}, HTTP {status}).")


def parse_grant(document: dict[str, Any], now: float, previous_refresh: str | None = None) -> TokenPair:
    """A token answer, checked as the official client checks it."""
    access = _text(document, "access_token")
    refresh = _text(document, "refresh_token") or previous_refresh
    lifetime = _positive(document, "expires_in")
    scopes = _scopes(document.get("scope"))
    problems = [
        problem for problem, bad in (
            ("no usable access_token", access is None or not TOKEN_TEXT.fullmatch(access)),
            ("no usable refresh_token", refresh is None or not TOKEN_TEXT.fullmatch(refresh)),
            ("token_type is not bearer", (_text(document, "token_type") or "").lower() != "bearer"),
            ("expires_in is not a positive number", lifetime is None),
            (f"scope lacks {C.OAUTH_SCOPE}", C.OAUTH_SCOPE not in scopes),
        ) if bad
    ]
    if problems:
        raise UpstreamBadAnswer(f"MiniMax's token answer is not valid: {'; '.join(problems)}.")
    assert access is not None and refresh is not None and lifetime is not None
    return TokenPair(access_token=access, refresh_token=refresh, expires_at=now + lifetime,
                     scope=" ".join(scopes), account_id=_identifier(document.get("account_id")),
                     nickname=_short(_text(document, "nickname")))


def _failure(status: int, document: dict[str, Any], what: str) -> GatewayError:
    """The error for an answer that is no verdict of the protocol: 5xx and 429 are transient."""
    named = _named(_text(document, "error"))
    if status == 429:
        return RateLimited(f"MiniMax's account host asks to slow down ({what}, HTTP 429).")
    if status >= 500:
        return UpstreamServerError(f"MiniMax's account host failed {what} (HTTP {status}).")
    return UpstreamError(f"MiniMax's account host refused {what} ({named}, HTTP {status}).")


def _document(status: int, payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except ValueError:
        document = None
    if isinstance(document, dict):
        return document
    if status >= 500 or status == 429:
        raise _failure(status, {}, "the call")
    raise UpstreamBadAnswer(f"MiniMax's account host answered HTTP {status} without a JSON object.")



def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _text(document: dict[str, Any], key: str) -> str | None:
    value = document.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _positive(document: dict[str, Any], key: str) -> float | None:
    value = document.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf"):
        return float(value)
    return None


def _variant_lifetime(expired_in: float | None, now: float) -> float | None:
    if expired_in is None:
        return None
    if expired_in < EPOCH_MS_FLOOR:
        return expired_in
    left = expired_in / 1000.0 - now
    return left if left > 0 else None


def _link(uri: str | None) -> bool:
    """A link fit to print and open: http(s), printable, no spaces, not huge."""
    return uri is not None and uri.startswith(("https://", "http://")) and uri.isprintable() \
        and " " not in uri and len(uri) <= MAX_LINK_CHARS


def _scopes(value: object) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(scope, str) for scope in value):
        return list(value)
    return []


def _identifier(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return _short(value.strip()) if isinstance(value, str) and value.strip() else None


def _short(text: str | None) -> str | None:
    """A name-like text fit to show and to name an account (printable, not too long)."""
    return text if text and text.isprintable() and len(text) <= MAX_NAME_CHARS else None


def _named(error: str | None) -> str:
    return error if error and OAUTH_ERROR.fullmatch(error) else "no error code"
