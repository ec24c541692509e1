"""Account info, membership and Token Plan quota of MiniMax Code accounts (UPSTREAM-CODE.md §4).

Three calls make one reading:

1. ``get_user_extra_info`` (signed matrix call with the mcode query) names the personal
   workspace (``workspace_type == 0``): its ``workspace_id`` and ``op_group_id``;
2. ``get_membership_info`` gives the Token Plan tier and expiry and the credit summary
   (decimal *strings*);
3. ``coding_plan/remains`` on the quota host (Bearer and ``X-Group-Id`` only) gives the
   5-hour ("interval") and weekly windows of each bucket (``general``, video …).

The realUserID for the query's ``user_id`` comes from the user-info call, which accepts
``user_id=0``; it and the workspace ids are kept per account for the process's life (they
never change). Every answer shape here is read in each plausible form ([assumed]: the
wrapping ``data``, camelCase twins, numbers as strings, times in s or ms).

Errors: HTTP 401/403 or ``statusInfo.code`` 1000048 is "signed out"
(:class:`UpstreamUnauthorized`); any other non-zero ``base_resp.status_code`` is an
upstream error (:func:`gateway.upstream.client.error_for`). A signed-in account's token
comes from the sign-in store; on a refusal it is refreshed once and the reading tried
again once (as the official client does). A client-given ``mmoat_`` token is used as it
is. Transport failures are mapped at one boundary (``transport_errors``), every call has
explicit timeouts and closes its response; no URL or token ever reaches an exception.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import requests

from gateway.errors import UpstreamBadAnswer, UpstreamUnauthorized
from gateway.upstream import constants as C
from gateway.upstream.client import error_for, status_of, transport_errors
from gateway.upstream.credentials import Credential
from gateway.upstream.settings import CodeSettings
from gateway.upstream.signing import dump_body, x_signature, yy_signature

#: Epoch values above this are milliseconds (2286 in seconds).
MS_THRESHOLD = 10_000_000_000
T = TypeVar("T")
SIGNED_OUT = "MiniMax Code refused the access token: signed out, log in again."


class Regional(Protocol):
    @property
    def region(self) -> str: ...


class AccessTokens(Protocol):
    """What quota reading needs of the sign-in store (:class:`gateway.upstream.signins.SignIns`)."""

    def access_token(self, name: str) -> str: ...

    def refresh(self, name: str, seen_access: str | None = None) -> str: ...

    def get(self, name: str) -> Regional | None: ...


@dataclass(frozen=True)
class QuotaWindow:
    """One quota window of a bucket: ``interval`` (about 5 h) or ``weekly``."""

    name: str
    used: int | None = None
    total: int | None = None
    #: Percent of the window used (0-100; a boosted weekly window may read below 0).
    percent: float | None = None
    #: When the window resets (epoch seconds).
    resets_at: float | None = None
    unlimited: bool = False

    @property
    def exhausted(self) -> bool:
        return not self.unlimited and self.percent is not None and self.percent >= 100.0


@dataclass(frozen=True)
class Bucket:
    """One ``model_remains`` row: a resource (``general`` covers chat and code)."""

    name: str
    windows: tuple[QuotaWindow, ...]


@dataclass(frozen=True)
class Quota:
    """A reading of one code account's plan, credits and quota windows."""

    read_at: float
    plan_tier: str | None = None
    plan_expires_at: float | None = None
    has_token_plan: bool | None = None
    #: Credits left (total, free, purchased), decimal strings as the upstream gives them.
    credits: str | None = None
    credits_free: str | None = None
    credits_purchased: str | None = None
    buckets: tuple[Bucket, ...] = field(default_factory=tuple)

    @property
    def general(self) -> Bucket | None:
        """The bucket chat and code draw from (``general``; else the first one)."""
        return next((b for b in self.buckets if b.name == C.QUOTA_GENERAL_BUCKET),
                    self.buckets[0] if self.buckets else None)

    @property
    def windows(self) -> tuple[QuotaWindow, ...]:
        general = self.general
        return general.windows if general else ()

    def window(self, name: str) -> QuotaWindow | None:
        return next((w for w in self.windows if w.name == name), None)

    @property
    def exhausted(self) -> bool:
        """Whether a window of the general bucket is used up."""
        return any(w.exhausted for w in self.windows)

    @property
    def resets_at(self) -> float | None:
        """When the account can answer again (exhausted), else when the interval window resets."""
        spent = [w.resets_at for w in self.windows if w.exhausted and w.resets_at is not None]
        if spent:
            return max(spent)
        interval = self.window(C.QUOTA_INTERVAL)
        return interval.resets_at if interval else None

    @property
    def percent(self) -> float | None:
        """The most-used window's percentage (the one that stops the account first)."""
        known = [w.percent for w in self.windows if w.percent is not None and not w.unlimited]
        return max(known) if known else None

    def as_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Quota | None:
        """A reading kept as :meth:`as_json`; None when it cannot be read back."""
        try:
            raw = json.loads(text)
            buckets = tuple(Bucket(b["name"], tuple(QuotaWindow(**w) for w in b["windows"]))
                            for b in raw.pop("buckets", []))
            return cls(**raw, buckets=buckets)
        except (TypeError, ValueError, KeyError, AttributeError):
            return None


@dataclass(frozen=True)
class Workspace:
    """The personal workspace of an account (what the quota calls need)."""

    user_id: str
    workspace_id: str | None
    op_group_id: str | None
    has_token_plan: bool | None


class QuotaReader:
    """Reads the quota of code accounts (one per process; thread- and greenlet-safe)."""

    def __init__(self, regions: Mapping[str, CodeSettings], default_region: str,
                 signins: AccessTokens | None = None, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._regions = regions  # a signed-in account is read on its own region's hosts
        self.settings = regions[default_region]
        self._signins = signins
        self._session = session or _new_session()
        self._clock = clock
        self._workspaces: dict[str, Workspace] = {}
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

    def close(self) -> None:
        self._session.close()

    # -- one reading ----------------------------------------------------------------------
    def _read(self, cred: Credential, token: str, settings: CodeSettings) -> Quota:
        space = self._workspace(cred, token, settings)
        body = {"workspace_id": _as_json_id(space.workspace_id)} if space.workspace_id else {}
        membership = self._matrix(settings, token, space.user_id, "POST", C.PATH_MEMBERSHIP, body)
        remains = self._remains(settings, token, space.op_group_id) if space.op_group_id else {}
        return parse_quota(membership, remains, self._clock(), space.has_token_plan)

    def _workspace(self, cred: Credential, token: str, settings: CodeSettings) -> Workspace:
        known = self._workspaces.get(cred.key)
        if known is not None:
            return known
        info = self._matrix(settings, token, C.UNKNOWN_USER_ID, "GET", C.PATH_USER_INFO, None)
        user_id = real_user_id(info) or C.UNKNOWN_USER_ID
        extra = self._matrix(settings, token, user_id, "POST", C.PATH_USER_EXTRA_INFO, {})
        space = personal_workspace(extra, user_id)
        with self._lock:
            self._workspaces[cred.key] = space
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
        ms = int(self._clock() * 1000)
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
        if status >= 400:
            raise error_for(-1, "", status)
        raise UpstreamBadAnswer(f"MiniMax answered HTTP {status} without a JSON object.")
    code, message = status_of(document)
    if code == C.CODE_NEED_LOGIN:
        raise UpstreamUnauthorized(SIGNED_OUT)
    if code != C.CODE_OK or status >= 400:
        raise error_for(code, message, status)
    data = document.get("data")
    return {**document, **data} if isinstance(data, dict) else document


# --- reading the answers ----------------------------------------------------------------------


def real_user_id(info: Mapping[str, Any]) -> str | None:
    """The realUserID of a user-info answer (``userInfo.realUserID``, in any casing)."""
    user = _first(info, "userInfo", "user_info", "user")
    source = user if isinstance(user, dict) else info
    value = _first(source, "realUserID", "real_user_id", "realUserId", "user_id", "userID", "id")
    text = _id_text(value)
    return text if text and text.isdigit() else None


def personal_workspace(extra: Mapping[str, Any], user_id: str) -> Workspace:
    """The personal workspace (``workspace_type == 0``) of a ``get_user_extra_info`` answer."""
    spaces = _first(extra, "workspaces", "workspace_list", "workspaceList", "workspace_infos")
    rows = [row for row in spaces if isinstance(row, dict)] if isinstance(spaces, list) else []
    personal = next((row for row in rows if _number(_first(row, "workspace_type", "workspaceType"))
                     == C.PERSONAL_WORKSPACE_TYPE), rows[0] if rows else extra)
    group = _id_text(_first(personal, "op_group_id", "opGroupId", "group_id", "groupId"))
    return Workspace(
        user_id=user_id,
        workspace_id=_id_text(_first(personal, "workspace_id", "workspaceId", "id")) or None,
        op_group_id=group or _id_text(_first(extra, "op_group_id", "opGroupId")) or None,
        has_token_plan=_flag(_first(personal, "has_token_plan", "hasTokenPlan")),
    )


def parse_quota(membership: Mapping[str, Any], remains: Mapping[str, Any], now: float,
                has_token_plan: bool | None = None) -> Quota:
    """A :class:`Quota` from a membership answer and a ``coding_plan/remains`` answer."""
    summary = _first(membership, "op_credit_summary", "opCreditSummary", "credit_summary")
    summary = summary if isinstance(summary, dict) else {}
    plan = _flag(_first(membership, "has_token_plan", "hasTokenPlan"))
    return Quota(
        read_at=now,
        plan_tier=_text(_first(membership, "token_plan_tier", "tokenPlanTier", "plan_tier", "plan_name"))
        or _text(_first(remains, "current_subscribe_title", "plan_name")),
        plan_expires_at=_epoch(_first(membership, "token_plan_expires_at", "tokenPlanExpiresAt",
                                      "token_plan_expire_time")),
        has_token_plan=has_token_plan if plan is None else plan,
        credits=_decimal(_first(summary, "total_remaining_amount", "totalRemainingAmount")),
        credits_free=_decimal(_first(summary, "free_remaining_amount", "freeRemainingAmount")),
        credits_purchased=_decimal(_first(summary, "purchased_remaining_amount", "purchasedRemainingAmount")),
        buckets=buckets(remains),
    )


def buckets(remains: Mapping[str, Any]) -> tuple[Bucket, ...]:
    """The ``model_remains`` rows; a row with both windows "unlimited" at a total of 0 is a
    resource the plan does not include (the official client skips it too)."""
    rows = _first(remains, "model_remains", "modelRemains")
    found = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        windows = (_window(row, C.QUOTA_INTERVAL), _window(row, C.QUOTA_WEEKLY))
        if all(w.unlimited and not w.total for w in windows):
            continue
        name = _text(_first(row, "model_name", "modelName")) or C.QUOTA_GENERAL_BUCKET
        found.append(Bucket(name, tuple(w for w in windows if _known(w))))
    return tuple(found)


def _window(row: Mapping[str, Any], name: str) -> QuotaWindow:
    keys = C.QUOTA_WINDOW_FIELDS[name]
    total = _number(_first(row, *keys["total"]))
    reported = _number(_first(row, *keys["count"]))
    left = _number(_first(row, *keys["remaining_percent"]))
    boost = _number(_first(row, *keys["boost"])) if keys["boost"] else None
    factor = boost / 1000 if boost and boost > 0 else 1.0
    used = used_count(reported, total, left)
    percent = None
    if left is not None:
        percent = 100.0 - left * factor
    elif used is not None and total:
        percent = 100.0 * used / total
    return QuotaWindow(
        name=name, used=used, total=int(total) if total is not None else None,
        percent=None if percent is None else round(percent, 2),
        resets_at=_epoch(_first(row, *keys["end"])),
        unlimited=_number(_first(row, *keys["status"])) == C.QUOTA_STATUS_UNLIMITED,
    )


def used_count(reported: float | None, total: float | None, left_percent: float | None) -> int | None:
    """The used count of a window. ``*_usage_count`` is ambiguous [unknown]: older answers
    give the *remaining* count, newer ones the used count. A remaining percentage picks the
    reading it agrees with; without one the official client's default (remaining) holds."""
    if reported is None or not total or total <= 0 or not 0 <= reported <= total:
        return None
    remaining = reported
    if left_percent is not None:
        as_remaining, as_used = 100.0 * reported / total, 100.0 * (total - reported) / total
        if min(abs(as_remaining - left_percent), abs(as_used - left_percent)) > C.QUOTA_PERCENT_TOLERANCE:
            return None
        if abs(as_used - left_percent) < abs(as_remaining - left_percent):
            remaining = total - reported
    return int(total - remaining)


def _known(window: QuotaWindow) -> bool:
    return window.unlimited or window.percent is not None or window.total is not None


def model_ids(catalogue: Mapping[str, Any]) -> list[str]:
    """The model ids of a catalogue answer (``providers[].config.models`` keys)."""
    ids: list[str] = []
    providers = _first(catalogue, "providers")
    for provider in providers if isinstance(providers, list) else []:
        config = provider.get("config") if isinstance(provider, dict) else None
        models = config.get("models") if isinstance(config, dict) else None
        if isinstance(models, dict):
            ids.extend(str(name) for name in models)
    return ids


# --- tolerant readers ---------------------------------------------------------------------


def _first(source: Mapping[str, Any], *names: str) -> Any:
    return next((source[name] for name in names if source.get(name) is not None), None)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%"))
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _text(value: object) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip()
        return text[:80] or None
    return None


def _id_text(value: object) -> str:
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _as_json_id(value: str) -> int | str:
    # The client sends the id as the number it read; a string id stays a string.
    return int(value) if value.isdigit() and len(value) < 16 else value


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return None


def _decimal(value: object) -> str | None:
    """A decimal amount as text (strings kept exact; numbers converted)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return str(amount) if amount.is_finite() else None


def _epoch(value: object) -> float | None:
    """Epoch seconds from seconds, milliseconds, their strings, or an ISO 8601 time."""
    number = _number(value)
    if number is None and isinstance(value, str) and value.strip():
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    if number is None or number <= 0:
        return None
    return number / 1000 if number > MS_THRESHOLD else number


def credits_amount(quota: Quota) -> float | None:
    """The credits left as a number (for metrics and the health record)."""
    return float(quota.credits) if quota.credits is not None else None


def _new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: hosts are settings
    return session


def describe(quota: Quota) -> str:
    """One line for the doctor and logs: plan, credits, windows."""
    parts: list[str] = [f"plan {quota.plan_tier or '?'}"]
    if quota.credits is not None:
        parts.append(f"{quota.credits} credits")
    parts.extend(_window_text(w) for w in quota.windows)
    return ", ".join(parts)


def _window_text(window: QuotaWindow) -> str:
    if window.unlimited:
        return f"{window.name}: unlimited"
    used = f"{window.percent:g}% used" if window.percent is not None else "usage unknown"
    if window.resets_at is not None:
        used += time.strftime(" (resets %Y-%m-%d %H:%M UTC)", time.gmtime(window.resets_at))
    return f"{window.name}: {used}"

