"""MiniMax Code accounts on the admin page: the device login, the listing, the local log-out.

Role: let the operator sign a MiniMax Code account in from ``/admin`` as
``python -m gateway login`` does, see the signed-in accounts (name, region, token
expiry, quota, state) and log one out (sign-out is local: the upstream's revoke answers
404). Every route needs the admin key (:func:`gateway.system.admin.authenticated`) and
answers 404 when the admin page is off, like the admin page itself.

The device login, server-side throughout:

* ``POST /admin/signin/start`` asks the account host for a device code
  (:meth:`OAuthClient.start`) and keeps the pending :class:`DeviceAuthorization` in the
  shared state under a random id, for its lifetime; then 303 to the login's page;
* ``GET /admin/signin/<id>`` shows the user code, the verification link (and a QR code
  of it) and polls ``POST /admin/signin/<id>/poll`` from a small script (allowed by a
  per-answer nonce; the admin page's policy is otherwise unchanged);
* each poll call runs at most one :meth:`OAuthClient.poll` step (one at a time per
  login across workers and hosts: a lease), and none before the interval (grown by
  ``slow_down``) has passed since the last, whatever the browser does; on success the
  account is added (:meth:`SignIns.add`) and its quota read once.

The device code and PKCE verifier never leave the server: the page gets the user code,
the links and the status only.

``GET /admin/signin/accounts`` gives the listing as JSON; ``POST /admin/signin/logout``
forgets an account. The admin page's listing comes from :func:`code_accounts`, given to the admin templates
by a context processor on the admin blueprint (``admin.html`` calls it in its dashboard
view only), so :mod:`gateway.system.admin` itself knows nothing of sign-ins.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for

from gateway import i18n, web
from gateway.accounts.quotas import Quotas
from gateway.errors import (
    AdminKeyRequired,
    DeviceLoginDenied,
    DeviceLoginExpired,
    DeviceLoginFailed,
    GatewayError,
    InvalidRequest,
    NotFound,
)
from gateway.i18n import Lang
from gateway.state import SharedState
from gateway.system import admin, admin_session
from gateway.system.views import NAME as NAME_OF_GATEWAY
from gateway.upstream import constants as C
from gateway.upstream.credentials import signed_in, signin_key
from gateway.upstream.oauth import DeviceAuthorization, OAuthClient, TokenPair
from gateway.upstream.quota_shapes import Quota
from gateway.upstream.signins import SignIns, valid_name

bp = Blueprint("admin_signin", __name__, url_prefix="/admin/signin")
log = logging.getLogger("gateway.admin")

#: Where a pending login lives in the shared state, before its id.
PENDING_KEY = "adminlogin:"
LOGIN_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
NAME_FIELD, REGION_FIELD = "name", "region"
#: The pseudo-account whose lease makes one poll step of a login run at a time, and its
#: lifetime (longer than one poll's timeouts: it is released as soon as the step ends).
POLL_LEASE = "adminlogin-poll:"
POLL_LEASE_TTL = 120.0
#: Poll statuses the page knows.
PENDING, DONE, DENIED, EXPIRED, FAILED = "pending", "ok", "denied", "expired", "failed"


@dataclass(frozen=True)
class PendingLogin:
    """A device login started from the admin page, as kept in the shared state."""

    auth: DeviceAuthorization
    region: str
    name: str | None
    #: Epoch seconds before which no poll is sent (the interval since the last one).
    next_poll_at: float

    def dumps(self) -> str:
        return json.dumps({"auth": dataclasses.asdict(self.auth), "region": self.region,
                           "name": self.name, "next_poll_at": self.next_poll_at})

    @classmethod
    def loads(cls, raw: str) -> PendingLogin | None:
        try:
            data = json.loads(raw)
            return cls(DeviceAuthorization(**data["auth"]), data["region"], data["name"], data["next_poll_at"])
        except (TypeError, ValueError, KeyError):
            return None


# --- access -------------------------------------------------------------------------------


@bp.before_request
def _admins_only() -> None:
    if not admin.admin_key():
        raise NotFound()
    if admin.authenticated() is None:
        raise AdminKeyRequired()
    admin.csrf_checked()  # every admin POST, these included, carries its session's CSRF token


@bp.after_request
def _never_stored(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


# --- routes -------------------------------------------------------------------------------


@bp.post("/start")
def start() -> Response:
    """Starts a MiniMax Code device login from the admin page (admin key); to its page."""
    region = request.form.get(REGION_FIELD) or web.settings().code_region
    if region not in C.CODE_REGIONS:
        raise InvalidRequest(f"region must be one of {', '.join(C.CODE_REGIONS)}")
    name = (request.form.get(NAME_FIELD) or "").strip() or None
    if name is not None and not valid_name(name):
        raise InvalidRequest("An account name is 1-64 letters, digits, '.', '_', '@' or '-'.")
    oauth = OAuthClient(web.settings().code(region))
    try:
        auth = oauth.start()
    except GatewayError as error:  # the account host failed: say so on a page, not in JSON
        log.info("admin device login could not start (%s)", type(error).__name__)
        return _page(None, "", error=error.message, status=error.status)
    finally:
        oauth.close()
    login_id = secrets.token_urlsafe(24)
    _keep(login_id, PendingLogin(auth, region, name, time.time() + auth.interval))
    log.info("admin page started a MiniMax Code device login (%s)", region)
    return _see_other(url_for(".page", login_id=login_id, lang=_explicit_lang()))


@bp.get("/accounts")
def accounts() -> Response:
    """The signed-in MiniMax Code accounts with their last quota reading, as JSON (admin key)."""
    return jsonify({"accounts": [row.public() for row in code_accounts()]})


@bp.get("/<login_id>")
def page(login_id: str) -> Response:
    """The device login's page: user code, link, QR code, and its progress (admin key)."""
    pending = _pending(login_id)
    return _page(pending, login_id, error=None, status=200 if pending else 404)


@bp.post("/<login_id>/poll")
def poll(login_id: str) -> Response:
    """One step of a device login started on the admin page: its status as JSON (admin key)."""
    lang = _lang()
    status, fields = poll_step(login_id)
    return jsonify({"status": status, "message": _status_text(status, lang, fields), **fields})


@bp.post("/logout")
def logout() -> Response:
    """Logs a MiniMax Code account out of this gateway (local; admin key); back to the admin page."""
    name = (request.form.get(NAME_FIELD) or "").strip()
    signins = _signins()
    if not name or signins.get(name) is None:
        raise NotFound("No signed-in account has that name.")
    signins.remove(name)
    quotas = _quotas()
    if quotas is not None:
        quotas.forget(signin_key(name))
    log.info("admin page logged out the MiniMax Code account %s", name)
    return _see_other(url_for("admin.page", lang=_explicit_lang()))


# --- the poll step --------------------------------------------------------------------------


def poll_step(login_id: str) -> tuple[str, dict[str, Any]]:
    """Run one poll of a pending login if its interval has passed: (status, fields). One
    step at a time per login, across workers and hosts (a lease), so a second tab or a
    fast browser never doubles a poll."""
    state, lease = _state(), POLL_LEASE + login_id
    ticket, holder = uuid.uuid4().hex, uuid.uuid4().hex
    if state.try_lease(ticket, [lease], holder, POLL_LEASE_TTL).account is None:
        state.withdraw(ticket, [lease])
        pending = _pending(login_id)
        return (PENDING, {"interval": pending.auth.interval}) if pending else (EXPIRED, {})
    try:
        return _step(login_id)
    finally:
        state.release(lease, holder)


def _step(login_id: str) -> tuple[str, dict[str, Any]]:
    pending = _pending(login_id)
    if pending is None:
        return EXPIRED, {}
    now = time.time()
    if now >= pending.auth.expires_at:
        _drop(login_id)
        return EXPIRED, {}
    if now < pending.next_poll_at:
        return PENDING, {"interval": pending.auth.interval}
    _keep(login_id, dataclasses.replace(pending, next_poll_at=now + pending.auth.interval))
    oauth = OAuthClient(web.settings().code(pending.region))
    try:
        answer = oauth.poll(pending.auth)
    except DeviceLoginFailed as error:
        _drop(login_id)
        status = DENIED if isinstance(error, DeviceLoginDenied) else EXPIRED \
            if isinstance(error, DeviceLoginExpired) else FAILED
        return status, {"detail": error.message}
    except GatewayError as error:  # a 5xx, a 429, the network: no verdict, poll again later
        log.info("admin device login poll failed (%s); polling again", type(error).__name__)
        return PENDING, {"interval": pending.auth.interval}
    finally:
        oauth.close()
    if isinstance(answer, TokenPair):
        _drop(login_id)
        return DONE, {"name": _add(pending, answer)}
    if answer.slow_down:
        auth = dataclasses.replace(pending.auth, interval=pending.auth.interval + C.DEVICE_SLOW_DOWN_STEP)
        _keep(login_id, dataclasses.replace(pending, auth=auth, next_poll_at=now + auth.interval))
        return PENDING, {"interval": auth.interval}
    return PENDING, {"interval": pending.auth.interval}


def _add(pending: PendingLogin, tokens: TokenPair) -> str:
    signins = _signins()
    name = pending.name or signins.default_name(tokens)
    signins.add(name, pending.region, tokens)
    log.info("admin page signed in the MiniMax Code account %s (%s)", name, pending.region)
    quotas = _quotas()
    if quotas is not None:  # the listing shows the quota at once, not after the next round
        quotas.forget(signin_key(name))  # the name may have been another MiniMax account before
        try:
            quotas.read(signed_in(name), web.settings().credits_interval)
        except GatewayError as error:
            log.info("could not read the quota of the new account %s (%s)", name, type(error).__name__)
    return name


# --- the listing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeAccount:
    """One signed-in account as the admin page lists it."""

    name: str
    key: str
    region: str
    expires_at: float
    state: str  # "ok" | "dead"
    reason: str | None
    quota: Quota | None

    def public(self) -> dict[str, Any]:
        """The row as JSON (no token): the reading as kept, with what follows from it."""
        quota = None if self.quota is None else {
            **dataclasses.asdict(self.quota), "percent": self.quota.percent,
            "exhausted": self.quota.exhausted, "resets_at": self.quota.resets_at}
        return {"name": self.name, "key": self.key, "region": self.region, "expires_at": self.expires_at,
                "state": self.state, "reason": self.reason, "quota": quota}


def code_accounts() -> list[CodeAccount]:
    """The signed-in MiniMax Code accounts with their last quota reading."""
    signins = current_app.extensions.get("gateway.signins")
    if signins is None:
        return []
    quotas, health = _quotas(), web.service().health
    rows = []
    for signin in sorted(signins.all(), key=lambda s: s.name):
        key = signin_key(signin.name)
        dead = signin.state == "dead" or health.is_dead(key)
        reason = signin.reason or (health.of(key).last_error if dead else None)
        rows.append(CodeAccount(signin.name, key, signin.region, signin.tokens.expires_at,
                                "dead" if dead else "ok", reason, quotas.of(key) if quotas else None))
    return rows


@admin.bp.context_processor
def _listing() -> dict[str, Any]:
    # A callable: only the dashboard view calls it (the login view must not read the state).
    return {"code_accounts": code_accounts, "code_regions": C.CODE_REGIONS,
            "code_region": lambda: web.settings().code_region,
            "code_start": lambda: url_for("admin_signin.start", lang=_explicit_lang()),
            "code_logout": lambda: url_for("admin_signin.logout", lang=_explicit_lang())}


# --- helpers --------------------------------------------------------------------------------


def qr_svg(link: str) -> str | None:
    """The link as an SVG QR code (a data: URL the page's policy allows), if segno is installed."""
    try:
        import segno  # noqa: PLC0415 - optional: the page shows the link and code without it
    except ImportError:
        return None
    data_uri: str = segno.make(link, error="m").svg_data_uri(scale=4, border=2)
    return data_uri


def _page(pending: PendingLogin | None, login_id: str, error: str | None, status: int) -> Response:
    lang, nonce = _lang(), secrets.token_urlsafe(18)
    body = render_template(
        "admin_signin.html", pending=pending, nonce=nonce, qr=qr_svg(pending.auth.link) if pending else None,
        poll_url=url_for(".poll", login_id=login_id, lang=lang) if pending else "", error=error,
        back=url_for("admin.page", lang=_explicit_lang()), csrf=_csrf_token(),
        expires=admin.moment(pending.auth.expires_at, time.time(), lang) if pending else None,
        **_common(lang))
    return _html(body, lang, nonce, status)


def _csrf_token() -> str:
    """The browser session's CSRF token, for the page's poll (none for a script's header key)."""
    session = admin_session.logged_in(admin.admin_key())
    return session.csrf if session is not None else ""


def _lang() -> Lang:
    return i18n.negotiate(request.args.get("lang"), request.headers.get("Accept-Language"))


def _explicit_lang() -> Lang | None:
    # As on the admin page: a language picked with ?lang= is carried along, a negotiated one is not.
    return _lang() if "lang" in request.args else None


def _see_other(location: str) -> Response:
    return Response(status=303, headers={"Location": location})


def _common(lang: Lang) -> dict[str, Any]:
    return {"name": NAME_OF_GATEWAY, "lang": lang, "html_lang": i18n.HTML_LANG[lang], "t": admin.translator(lang)}


def _html(body: str, lang: Lang, nonce: str, status: int) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Content-Language"] = i18n.HTML_LANG[lang]
    # The admin page's policy, plus this page's one script (by its nonce) and fetch to here.
    response.headers["Content-Security-Policy"] = f"{admin.CSP}; script-src 'nonce-{nonce}'; connect-src 'self'"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.vary.add("Accept-Language")
    return response


def _status_text(status: str, lang: Lang, fields: dict[str, Any]) -> str:
    return i18n.text(f"admin.code.login.{status}", lang, name=fields.get("name", ""))


def _state() -> SharedState:
    state: SharedState = current_app.extensions["gateway.state"]
    return state


def _signins() -> SignIns:
    signins: SignIns | None = current_app.extensions.get("gateway.signins")
    if signins is None:
        raise NotFound("Signing in is not available on this gateway.")
    return signins


def _quotas() -> Quotas | None:
    quotas: Quotas | None = current_app.extensions.get("gateway.quotas")
    return quotas


def _pending(login_id: str) -> PendingLogin | None:
    if not LOGIN_ID.fullmatch(login_id):
        return None
    raw = _state().get(PENDING_KEY + login_id)
    return PendingLogin.loads(raw) if raw else None


def _keep(login_id: str, pending: PendingLogin) -> None:
    _state().put(PENDING_KEY + login_id, pending.dumps(), ttl=max(1.0, pending.auth.expires_at - time.time()))


def _drop(login_id: str) -> None:
    _state().delete(PENDING_KEY + login_id)

