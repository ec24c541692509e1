"""The answers of the quota calls (UPSTREAM-CODE.md §4), as values, read in every plausible form.

:class:`Quota` is one reading of a code account: plan tier and expiry, credits (decimal
strings, as the upstream gives them) and the buckets of ``coding_plan/remains``, each
with its interval (about 5 h) and weekly window. No source shows these shapes exactly,
so every reader here is [assumed] tolerant: a wrapping ``data``, camelCase twins,
numbers as strings, times in seconds, milliseconds or ISO 8601. ``*_usage_count`` is
ambiguous (remaining in older answers, used in newer ones): :func:`used_count` settles it
against the remaining percentage as the official client does. A reading round-trips
through JSON for the shared state (:meth:`Quota.as_json`, :meth:`Quota.from_json`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.upstream import constants as C

#: Epoch values above this are milliseconds (2286 in seconds).
MS_THRESHOLD = 10_000_000_000


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
