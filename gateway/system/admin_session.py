"""Browser sessions of the admin page: signed, expiring, revocable, with a CSRF token.

Role: the ``gateway_admin`` cookie (path ``/admin``) and what stands behind it. The
cookie is signed and timestamped with itsdangerous (the signer of Flask's own session)
and holds a CSRF token, plus, once logged in, a per-login nonce. A login is live while

* the cookie's signature holds and it is younger than ``GATEWAY_ADMIN_SESSION_TTL``, and
* the shared state (:mod:`gateway.state`) still holds the nonce's record, bound to a
  digest of the admin key, which expires with the same lifetime.

So logging out (the record is deleted) refuses that cookie on every worker and host at
once, even a copy of it, and a changed admin key refuses every session: the record's key
digest no longer matches, and the signing secret itself changes.

The signing secret is derived from the admin key with HKDF-SHA256 (RFC 5869) under a
fixed salt and purpose: every worker and host of a deployment derives the same secret
from the configuration they already share, with nothing to store, no start-up race to
settle and no loss on restart; rotating the key rotates the secret. A cookie carries no
key material, and the key is at least 16 characters, so a captured cookie is no useful
target for guessing the key offline.

Every POST of a cookie session must carry the session's CSRF token (the forms' hidden
``csrf`` field, or the ``X-CSRF-Token`` header); the login form's POST carries the token
of the anonymous session the form was served with. The token is rotated at login.

Flags: ``HttpOnly``, ``SameSite=Strict``, ``Path=/admin``, and ``Secure`` when the request
came over https (behind nginx: the ``X-Forwarded-Proto`` of a trusted proxy).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from dataclasses import dataclass

from flask import Response, current_app, g, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from gateway import web
from gateway.state import SharedState

log = logging.getLogger("gateway.admin")

#: The session cookie, and where it is sent (only to the admin routes).
COOKIE = "gateway_admin"
COOKIE_PATH = "/admin"
#: Where a form or a script puts the CSRF token of its session.
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
#: Shared-state key prefix of a login's record (followed by a digest of its nonce).
RECORD_PREFIX = "admin-session:"
#: HKDF's salt and the purposes of the keys derived from the admin key.
_HKDF_SALT = b"minimax-free-api admin session"
_SIGNING = b"cookie signing v1"
_KEY_CHECK = b"admin key check v1"
#: itsdangerous' salt: separates these signatures from any other use of the secret.
_SIGNER_SALT = "gateway-admin-session"
#: Bytes of randomness in a nonce and a CSRF token.
_TOKEN_BYTES = 32


@dataclass(frozen=True)
class Session:
    """What the cookie holds: the CSRF token, and the nonce of a login (None: anonymous)."""

    csrf: str
    nonce: str | None = None


def derive(admin_key: str, purpose: bytes) -> bytes:
    """32 bytes for ``purpose`` from the admin key (HKDF-SHA256, one block)."""
    pseudo_random = hmac.new(_HKDF_SALT, admin_key.encode(), hashlib.sha256).digest()
    return hmac.new(pseudo_random, purpose + b"\x01", hashlib.sha256).digest()


def _serializer(admin_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(derive(admin_key, _SIGNING), salt=_SIGNER_SALT,
                                  signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256})


def _ttl() -> int:
    # Whole seconds: itsdangerous' timestamps and a cookie's Max-Age are.
    return max(1, math.ceil(web.settings().admin_session_ttl))


def _state() -> SharedState:
    state: SharedState = current_app.extensions["gateway.state"]
    return state


def _record_key(nonce: str) -> str:
    # The record is named by a digest: whoever reads the state cannot replay a nonce from it.
    return RECORD_PREFIX + hashlib.sha256(nonce.encode()).hexdigest()


def _key_check(admin_key: str) -> str:
    return derive(admin_key, _KEY_CHECK).hex()


def same(given: str | None, expected: str) -> bool:
    """Whether ``given`` is ``expected``, in constant time (None never is)."""
    # Bytes: compare_digest refuses non-ASCII str, and a caller may send anything.
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


# --- reading --------------------------------------------------------------------------------


def cookie_session(admin_key: str) -> Session | None:
    """The session the request's cookie holds, signed with this key and not expired, or None
    (a login's nonce is not checked here: see :func:`logged_in`)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(admin_key).loads(raw, max_age=_ttl())
    except BadSignature:  # forged, signed with another key, or older than the lifetime
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), str):
        return None
    nonce = data.get("n")
    return Session(data["c"], nonce if isinstance(nonce, str) else None)


def logged_in(admin_key: str) -> Session | None:
    """The request's live login: its cookie's session when the shared state still holds its
    nonce under this admin key; else None. Read once per request."""
    if "admin_login" not in g:
        g.admin_login = _live(admin_key)
    found: Session | None = g.admin_login
    return found


def _live(admin_key: str) -> Session | None:
    session = cookie_session(admin_key)
    if session is None or session.nonce is None:
        return None
    try:
        bound = _state().get(_record_key(session.nonce))
    except Exception:  # no state, no sessions; the header login still works
        log.warning("could not read the admin sessions", exc_info=True)
        return None
    return session if same(bound, _key_check(admin_key)) else None


def csrf_valid(session: Session) -> bool:
    """Whether this POST carries ``session``'s CSRF token (form field or header)."""
    given = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    return same(given, session.csrf)


# --- writing --------------------------------------------------------------------------------


def form_session(admin_key: str) -> Session:
    """The anonymous session a login form is served with: the cookie's CSRF token when it has
    a valid one (a stale login's nonce dropped), else a new token. :func:`keep` it."""
    session = cookie_session(admin_key)
    return Session(session.csrf if session is not None else secrets.token_urlsafe(_TOKEN_BYTES))


def keep(admin_key: str, response: Response, session: Session) -> None:
    """Set ``session``'s cookie on ``response``."""
    _set_cookie(admin_key, response, session)


def start(admin_key: str, response: Response) -> None:
    """A new login: a fresh nonce recorded in the shared state and a fresh CSRF token, in a
    new cookie on ``response``."""
    session = Session(secrets.token_urlsafe(_TOKEN_BYTES), secrets.token_urlsafe(_TOKEN_BYTES))
    assert session.nonce is not None
    _state().put(_record_key(session.nonce), _key_check(admin_key), _ttl())
    _set_cookie(admin_key, response, session)


def end(admin_key: str, response: Response) -> None:
    """Log out: the login's record leaves the shared state (its cookie is refused on every
    host from now on) and ``response`` clears the cookie."""
    session = cookie_session(admin_key)
    if session is not None and session.nonce is not None:
        _state().delete(_record_key(session.nonce))
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict", secure=request.is_secure)


def _set_cookie(admin_key: str, response: Response, session: Session) -> None:
    data = {"c": session.csrf} if session.nonce is None else {"c": session.csrf, "n": session.nonce}
    response.set_cookie(COOKIE, _serializer(admin_key).dumps(data), max_age=_ttl(), path=COOKIE_PATH,
                        httponly=True, samesite="Strict", secure=request.is_secure)
