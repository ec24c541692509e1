"""Account info, membership and Token Plan quota of MiniMax Code accounts (UPSTREAM-CODE.md §4).

Three calls make one reading:

1. ``get_user_extra_info`` (signed matrix call with the mcode query) names the personal
   workspace (``workspace_type == 0``): its ``workspace_id`` and ``op_group_id``;
2. ``get_membership_info`` gives the Token Plan tier and expiry and the credit summary
   (decimal *strings*);
3. ``coding_plan/remains`` on the quota host (Bearer and ``X-Group-Id`` only) gives the
   5-hour ("interval") and weekly windows of each bucket (``general``, video …).

The realUserID for the query's ``user_id`` comes from the user-info call, which accepts
``user_id=0``; it and the workspace ids are kept per account for an hour (or until a
reading fails).

Errors: HTTP 401/403 or ``statusInfo.code`` 1000048 is "signed out"
(:class:`UpstreamUnauthorized`); any other non-zero ``base_resp.status_code`` is an
upstream error (:func:`gateway.upstream.answers.error_for`). A signed-in account's token
comes from the sign-in store; on a refusal it is refreshed once and the reading tried
again once (as the official client does). A client-given ``mmoat_`` token is used as it
is. Transport failures are mapped at one boundary (``transport_errors``), every call has
explicit timeouts and closes its response; no URL or token ever reaches an exception.
The answers' shapes, and the :class:`Quota` value, are :mod:`gateway.upstream.quota_shapes`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import requests

from gateway.errors import GatewayError, UpstreamBadAnswer, UpstreamServerError, UpstreamUnauthorized
from gateway.upstream import constants as C
from gateway.upstream.answers import error_for, status_of
from gateway.upstream.boundary import new_session, transport_errors
from gateway.upstream.credentials import Credential
from gateway.upstream.quota_shapes import (
    Quota,
    Workspace,
    model_ids,
    parse_quota,
    personal_workspace,
    real_user_id,
)
from gateway.upstream.settings import CodeSettings
from gateway.upstream.signing import dump_body, x_signature, yy_signature

T = TypeVar("T")
#: Connections kept per host: these calls are few (one account's at a time).
QUOTA_POOL_SIZE = 4
#: Seconds an account's workspace ids are reused before they are asked again (a name may be
#: signed in again as another MiniMax account).
WORKSPACE_TTL_SECONDS = 3600.0
SIGNED_OUT = "MiniMax Code refused the access token: signed out, log in again."


class Regional(Protocol):
    @property
    def region(self) -> str: ...


class AccessTokens(Protocol):
    """What quota reading needs of the sign-in store (:class:`gateway.upstream.signins.SignIns`)."""

    def access_token(self, name: str) -> str: ...

    def refresh(self, name: str, seen_access: str | None = None) -> str: ...

    def get(self, name: str) -> Regional | None: ...


class QuotaReader:
    """Reads the quota of code accounts (one per process; thread- and greenlet-safe)."""

    def __init__(self, regions: Mapping[str, CodeSettings], default_region: str,
                 signins: AccessTokens | None = None, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        # ``clock`` dates readings and ages the cache; signatures always use the wall clock.
        self._regions = regions  # a signed-in account is read on its own region's hosts
        self.settings = regions[default_region]
        self._signins = signins
        self._session = session or new_session(QUOTA_POOL_SIZE)
        self._clock = clock
        self._workspaces: dict[str, tuple[float, Workspace]] = {}
        self._lock = threading.Lock()

    # -- the public calls -----------------------------------------------------------------
    def read(self, cred: Credential) -> Quota:
        """Plan, credits and quota windows of a code account (refreshes a signed-in
        account's token once when it is refused)."""
        return self._with_token(cred, lambda token: self._read(cred, token, self.settings_of(cred)))

    def workspace(self, cred: Credential) -> Workspace:
        """The account's personal workspace (cached)."""
        return self._with_token(cred, lambda token: self._workspace(cred, token, self.settings_of(cred)))

    def models(self, cred: Credential) -> list[str]:
        """The model ids of the code catalogue (the doctor's check that the token is accepted)."""
        settings = self.settings_of(cred)
        query = urlencode({"region": C.CODE_CATALOGUE_REGIONS.get(settings.region, "cn"),
                           "buildEnv": C.CODE_BUILD_ENV})
        url = f"{settings.code_url}{C.PATH_CODE_MODELS}?{query}"
        return self._with_token(cred, lambda token: model_ids(self._get(settings, url, self._bearer(settings, token))))

    def settings_of(self, cred: Credential) -> CodeSettings:
        """The hosts of the account's region (a client-given token: the gateway's region)."""
        signin = self._signins.get(cred.signin) if cred.signin and self._signins else None
        return self._regions.get(signin.region, self.settings) if signin else self.settings

    def forget(self, key: str) -> None:
        """Drop what is cached of the account ``key`` (signed out, or signed in again)."""
        with self._lock:
            self._workspaces.pop(key, None)

    def close(self) -> None:
        self._session.close()

    # -- one reading ----------------------------------------------------------------------
    def _read(self, cred: Credential, token: str, settings: CodeSettings) -> Quota:
        space = self._workspace(cred, token, settings)
        body = {"workspace_id": _as_json_id(space.workspace_id)} if space.workspace_id else {}
        try:
            membership = self._matrix(settings, token, space.user_id, "POST", C.PATH_MEMBERSHIP, body)
            remains = self._remains(settings, token, space.op_group_id) if space.op_group_id else {}
        except GatewayError:
            self.forget(cred.key)  # perhaps another workspace by now: asked again next time
            raise
        return parse_quota(membership, remains, self._clock(), space.has_token_plan)

    def _workspace(self, cred: Credential, token: str, settings: CodeSettings) -> Workspace:
        known = self._workspaces.get(cred.key)
        if known is not None and self._clock() - known[0] < WORKSPACE_TTL_SECONDS:
            return known[1]
        info = self._matrix(settings, token, C.UNKNOWN_USER_ID, "GET", C.PATH_USER_INFO, None)
        user_id = real_user_id(info) or C.UNKNOWN_USER_ID
        extra = self._matrix(settings, token, user_id, "POST", C.PATH_USER_EXTRA_INFO, {})
        space = personal_workspace(extra, user_id)
        with self._lock:
            self._workspaces[cred.key] = (self._clock(), space)
        return space

    def _remains(self, settings: CodeSettings, token: str, group_id: str) -> dict[str, Any]:
        headers = {**self._bearer(settings, token), C.GROUP_ID_HEADER: group_id}
        return self._get(settings, settings.quota_url + C.PATH_CODING_PLAN_REMAINS, headers)

    # -- tokens ---------------------------------------------------------------------------
    def _with_token(self, cred: Credential, call: Callable[[str], T]) -> T:
        token = self._token(cred)
        try:
            return call(token)
        except UpstreamUnauthorized:
            if cred.signin is None or self._signins is None:
                raise
            # The token may have expired a moment ago: one refresh, one more try.
            return call(self._signins.refresh(cred.signin, seen_access=token))

    def _token(self, cred: Credential) -> str:
        if cred.kind != "code":
            raise UpstreamUnauthorized("Quota is read for MiniMax Code accounts only.")
        if cred.signin is None:
            return cred.jwt
        if self._signins is None:
            raise UpstreamUnauthorized("No sign-in store to read this account's token from.")
        return self._signins.access_token(cred.signin)

    # -- HTTP -----------------------------------------------------------------------------
    def _matrix(self, settings: CodeSettings, token: str, user_id: str, method: str, path: str,
                body: dict[str, Any] | None) -> dict[str, Any]:
        """A signed matrix call with the mcode query (§4)."""
        ms = int(time.time() * 1000)  # the wall clock the upstream checks, whatever ``clock`` says
        query = mcode_query(settings.region, user_id, ms)
        text = None if body is None else dump_body(body)
        headers = {**self._bearer(settings, token), **mcode_signatures(f"{path}?{query}", text, ms),
                   "Content-Type": "application/json"}
        return self._exchange(settings, method, f"{settings.matrix_url}{path}?{query}", headers, text)

    def _get(self, settings: CodeSettings, url: str, headers: dict[str, str]) -> dict[str, Any]:
        return self._exchange(settings, "GET", url, headers, None)

    @staticmethod
    def _bearer(settings: CodeSettings, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Accept": "application/json",
                "User-Agent": settings.user_agent}

    def _exchange(self, settings: CodeSettings, method: str, url: str, headers: dict[str, str],
                  body: str | None) -> dict[str, Any]:
        response = None
        try:
            with transport_errors():
                response = self._session.request(
                    method, url, headers=headers, data=None if body is None else body.encode(),
                    timeout=(settings.connect_timeout, settings.read_timeout), allow_redirects=False)
                status, payload = response.status_code, response.content
        finally:
            if response is not None:
                response.close()
        return classify_answer(status, payload)


# --- the mcode query and signatures ---------------------------------------------------------


def mcode_query(region: str, user_id: str, ms: int) -> str:
    """The 13 query parameters of a matrix call from the code client, in the client's order."""
    lang = C.CODE_LANGS.get(region, C.CODE_LANGS["cn"])
    dynamic = {"unix": str(ms), "sys_language": lang, "lang": lang, "user_id": user_id,
               "timezone_offset": C.CODE_TIMEZONE_OFFSETS.get(region, "0")}
    return "&".join(f"{name}={dynamic[name] if value is None else value}"
                    for name, value in C.CODE_MATRIX_QUERY)


def mcode_signatures(target: str, body: str | None, ms: int) -> dict[str, str]:
    """``yy``, ``x-signature`` and ``x-timestamp`` of a matrix call (§4): yy signs ``{}``
    for a body-less call, x-signature then signs no body; both read the same clock."""
    seconds = ms // 1000
    signed_body = C.EMPTY_BODY_VARIANTS["braces"] if body is None else body
    return {"yy": yy_signature(target, signed_body, ms, suffix=C.CODE_YY_SUFFIX),
            "x-signature": x_signature(seconds, body or "", "bundle", "", salt=C.CODE_SIGNING_SALT),
            "x-timestamp": str(seconds)}


def classify_answer(status: int, payload: bytes) -> dict[str, Any]:
    """The answer's data (``data`` unwrapped when present), or the matching error."""
    if status in (401, 403):
        raise UpstreamUnauthorized(SIGNED_OUT)
    try:
        document = json.loads(payload)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        if status >= 500:
            raise UpstreamServerError(f"MiniMax answered HTTP {status}.")
        raise UpstreamBadAnswer(f"MiniMax answered HTTP {status} without a JSON object.")
    code, message = status_of(document)
    if code == C.CODE_NEED_LOGIN:
        raise UpstreamUnauthorized(SIGNED_OUT)
    if code != C.CODE_OK or status >= 400:
        raise error_for(code, message, status)
    data = document.get("data")
    return {**document, **data} if isinstance(data, dict) else document


def _as_json_id(value: str) -> int | str:
    # The client sends the id as the number it read; a string id stays a string.
    return int(value) if value.isdigit() and len(value) < 16 else value

