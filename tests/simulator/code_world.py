"""The MiniMax Code surface's memory: sign-ins, tokens, device logins, quota, counters, log.

Role: everything the code surface remembers between requests, behind one lock of its
own (never held while sleeping or doing I/O). It sits beside `SimState`: every code
account is a MiniMax account of the web world too (its `real_user_id`), linked to an
existing one (`of=`) or minted for it, so scripts queued for that account play on
either surface. `reset` (hooked to /_sim/reset) clears devices, counters, log and
config, restores each account's quota, and drops the accounts when asked.

Choices where the page is silent (UPSTREAM-CODE.md §1, §6):
- a refresh rotates both tokens; the used refresh token dies at once (reuse →
  invalid_grant), while the previous access token stays valid until its own expiry
  (the page says nothing about revoking it; a running stream must not die of a refresh);
- a poll earlier than the device's interval answers slow_down and adds
  `slow_down_step` seconds (RFC 8628) to the interval it expects;
- one generation at a time per account is not enforced (the page: limit unknown): it
  is counted, and code_stats exposes each account's maximum of concurrent generations.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
import string
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.simulator.code_shapes import ACCESS_PREFIX, REFRESH_PREFIX, TOKEN_BODY_CHARS

TOKEN_ALPHABET: str = string.ascii_letters + string.digits
USER_CODE_ALPHABET: str = "BCDFGHJKLMNPQRSTVWXZ23456789"
DEFAULT_QUOTA: int = 1500
LOG_CAP: int = 10_000
PENDING_FORMS: tuple[str, ...] = ("200", "400")
DEFAULT_CONFIG: dict[str, Any] = {
    "pending_form": "200", "slow_down_once": False, "slow_down_step": 5.0,
    "expires_in": 3600, "device_expires_in": 300, "interval": 1,
    "accept_web_tokens": False, "m31_thinking_omitted": "refuse", "token_extras": False,
    "refresh_keeps_token": False, "ping_seconds": 1.0, "device_variant": "standard",
}
# "user_code": the official client's variant (page §1, [unknown] on prod): the device answer
# has no device_code, `expired_in` in epoch ms and `interval` in ms; polls carry user_code.
DEVICE_VARIANTS: tuple[str, ...] = ("standard", "user_code")
# Always present in code_stats (0 until the first event), so tests can compare before/after.
COUNTER_NAMES: tuple[str, ...] = (
    "device_codes", "token_polls", "pending_answers", "slow_downs", "grants", "refreshes",
    "invalid_grants", "messages_calls", "count_tokens_calls", "generations", "models_calls",
    "quota_calls", "refusals", "web_token_calls", "wrong_routes", "revokes")
_NUMBERS: tuple[str, ...] = ("slow_down_step", "expires_in", "device_expires_in", "interval",
                             "ping_seconds")
_FLAGS: tuple[str, ...] = ("slow_down_once", "accept_web_tokens", "token_extras",
                           "refresh_keeps_token")


def checked_code_config(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate code_config changes; ValueError names the problem."""
    for key, value in changes.items():
        if key not in DEFAULT_CONFIG:
            raise ValueError(f"unknown code config key {key!r}")
        if key in _NUMBERS and (type(value) not in (int, float) or value < 0):
            raise ValueError(f"{key} must be a number >= 0")
        if key in _FLAGS and not isinstance(value, bool):
            raise ValueError(f"{key} must be a boolean")
    if changes.get("pending_form", "200") not in PENDING_FORMS:
        raise ValueError(f"pending_form must be one of {PENDING_FORMS}")
    if changes.get("device_variant", "standard") not in DEVICE_VARIANTS:
        raise ValueError(f"device_variant must be one of {DEVICE_VARIANTS}")
    if changes.get("m31_thinking_omitted", "refuse") not in ("accept", "refuse"):
        raise ValueError("m31_thinking_omitted must be accept or refuse")
    return changes


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _random(alphabet: str, size: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(size))


@dataclass(eq=False)
class CodeAccount:
    name: str
    real_user_id: str
    quota_total: int
    quota_left: int
    web_token_accepted: bool
    has_token_plan: bool
    workspace_id: str
    op_group_id: str
    initial: dict[str, Any] = field(default_factory=dict)
    active: int = 0
    max_active: int = 0
    messages: int = 0
    refreshes: int = 0

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "real_user_id": self.real_user_id,
                "quota_total": self.quota_total, "quota_left": self.quota_left,
                "web_token_accepted": self.web_token_accepted,
                "has_token_plan": self.has_token_plan, "workspace_id": self.workspace_id,
                "op_group_id": self.op_group_id, "active": self.active,
                "max_active": self.max_active, "messages": self.messages,
                "refreshes": self.refreshes}


@dataclass(eq=False)
class Device:
    device_code: str
    user_code: str
    challenge: str
    expires_at: float
    interval: float
    last_poll: float | None = None
    slowed: bool = False
    verdict: str = "pending"  # pending | approved | denied | consumed
    account: str | None = None


class Verdict(Exception):
    """A poll or refresh that is not a grant: its OAuth error word and description."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(error)
        self.error, self.description = error, description


class CodeWorld:
    """The code surface's state; every public method takes the one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, CodeAccount] = {}
        self._access: dict[str, tuple[str, float]] = {}  # token -> (account, expires_at)
        self._refresh: dict[str, tuple[str, bool]] = {}  # token -> (account, still live)
        self._clear()

    def _clear(self) -> None:
        self.config: dict[str, Any] = dict(DEFAULT_CONFIG)
        self._devices: dict[str, Device] = {}
        self._counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self._rejections: dict[str, int] = {}
        self._warnings: dict[str, int] = {}
        self._log: list[dict[str, Any]] = []
        #: Each generation, for /_sim/log beside the web surfaces' (CodeGeneration).
        self._generations: list[Any] = []

    def reset(self, drop_accounts: bool) -> None:
        with self._lock:
            self._clear()
            if drop_accounts:
                self._accounts.clear()
                self._access.clear()
                self._refresh.clear()
            for account in self._accounts.values():
                for key, value in account.initial.items():
                    setattr(account, key, value)
                account.active = account.max_active = account.messages = account.refreshes = 0

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.config.update(checked_code_config(changes))
            return dict(self.config)

    # -- counters -------------------------------------------------------------------------------

    def count(self, name: str, reason: str | None = None, warning: str | None = None) -> None:
        with self._lock:
            self._count(name)
            if reason is not None:
                self._rejections[reason] = self._rejections.get(reason, 0) + 1
            if warning is not None:
                self._warnings[warning] = self._warnings.get(warning, 0) + 1

    def _count(self, name: str) -> None:
        self._counters[name] = self._counters.get(name, 0) + 1

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            if len(self._log) < LOG_CAP:
                self._log.append(entry)

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    def generated(self, generation: Any) -> None:
        """Keep a generation (anything with `log_entry(now)`) for /_sim/log."""
        with self._lock:
            if len(self._generations) < LOG_CAP:
                self._generations.append(generation)

    def generation_log(self, now: float) -> list[dict[str, Any]]:
        with self._lock:
            return [generation.log_entry(now) for generation in self._generations]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            accounts = {a.name: a.public() for a in self._accounts.values()}
            return {**self._counters, "rejections": dict(self._rejections),
                    "warnings": dict(self._warnings), "accounts": accounts,
                    "generating": sum(a.active for a in self._accounts.values()),
                    "max_concurrent": max((a.max_active for a in self._accounts.values()),
                                          default=0),
                    "config": dict(self.config)}

    # -- accounts and tokens -----------------------------------------------------------------------

    def add_account(self, real_user_id: str, quota: int | None, quota_left: int | None,
                    web_token_accepted: bool, has_token_plan: bool) -> CodeAccount:
        with self._lock:
            total = DEFAULT_QUOTA if quota is None else quota
            left = total if quota_left is None else quota_left
            name = f"code{len(self._accounts) + 1}"
            while name in self._accounts:
                name += "x"
            account = CodeAccount(name, real_user_id, total, left, web_token_accepted,
                                  has_token_plan, str(secrets.randbelow(10**15)),
                                  str(secrets.randbelow(10**18)))
            account.initial = {"quota_total": total, "quota_left": left,
                               "web_token_accepted": web_token_accepted,
                               "has_token_plan": has_token_plan}
            self._accounts[name] = account
            return account

    def issue(self, name: str, now: float, expires_in: float | None = None) -> dict[str, Any]:
        """A fresh token pair for an account, as the token endpoint answers it."""
        with self._lock:
            return self._issue(self._accounts[name], now, expires_in)

    def _issue(self, account: CodeAccount, now: float,
               expires_in: float | None = None) -> dict[str, Any]:
        lifetime = self.config["expires_in"] if expires_in is None else expires_in
        access = ACCESS_PREFIX + _random(TOKEN_ALPHABET, TOKEN_BODY_CHARS)
        refresh = REFRESH_PREFIX + _random(TOKEN_ALPHABET, TOKEN_BODY_CHARS)
        self._access[access] = (account.name, now + lifetime)
        self._refresh[refresh] = (account.name, True)
        answer: dict[str, Any] = {"access_token": access, "refresh_token": refresh,
                                  # Whole seconds on the wire; rounded up so never 0 for > 0.
                                  "token_type": "bearer", "expires_in": math.ceil(lifetime),
                                  "scope": "agent.default"}
        if self.config["token_extras"]:
            answer.update(audience="agent-backend", account_id=account.real_user_id,
                          nickname=f"Sim-{account.name}")
        return answer

    def patch(self, name: str, changes: dict[str, Any], now: float) -> dict[str, Any]:
        """quota_left, quota_total, web_token_accepted, has_token_plan; expire_access
        (every access token of the account expires now), revoke (every refresh token dies)."""
        with self._lock:
            account = self._accounts[name]
            for key in ("quota_left", "quota_total", "web_token_accepted", "has_token_plan"):
                if key in changes:
                    setattr(account, key, changes[key])
            if changes.get("expire_access"):
                for token, (owner, _) in list(self._access.items()):
                    if owner == name:
                        self._access[token] = (owner, now)
            if changes.get("revoke"):
                for token, (owner, _) in list(self._refresh.items()):
                    if owner == name:
                        self._refresh[token] = (owner, False)
            return account.public()

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [account.public() for account in self._accounts.values()]

    def has(self, name: str) -> bool:
        with self._lock:
            return name in self._accounts

    def by_real_user(self, real_user_id: str) -> CodeAccount | None:
        with self._lock:
            return next((a for a in self._accounts.values()
                         if a.real_user_id == real_user_id), None)

    def authenticate(self, token: str, now: float) -> tuple[CodeAccount | None, str]:
        """The access token's account, or None and why (unknown_token, expired_token)."""
        with self._lock:
            found = self._access.get(token)
            if found is None:
                return None, "unknown_token"
            if found[1] <= now:
                return None, "expired_token"
            return self._accounts[found[0]], ""

    def refresh(self, token: str, now: float) -> dict[str, Any]:
        """Rotate: the new pair, or Verdict invalid_grant for a used or unknown token."""
        with self._lock:
            found = self._refresh.get(token)
            if found is None:
                self._count("invalid_grants")
                raise Verdict("invalid_grant", "invalid refresh token")
            name, live = found
            if not live:
                self._count("invalid_grants")
                raise Verdict("invalid_grant", "this refresh token can no longer be used")
            account = self._accounts[name]
            account.refreshes += 1
            self._count("refreshes")
            answer = self._issue(account, now)
            if self.config["refresh_keeps_token"]:
                del self._refresh[answer.pop("refresh_token")]  # the old one stays live
            else:
                self._refresh[token] = (name, False)
            return answer

    # -- device login -------------------------------------------------------------------------------

    def start_device(self, challenge: str, now: float) -> Device:
        with self._lock:
            self._count("device_codes")
            user_code = f"{_random(USER_CODE_ALPHABET, 4)}-{_random(USER_CODE_ALPHABET, 4)}"
            device = Device(secrets.token_urlsafe(32), user_code, challenge,
                            now + self.config["device_expires_in"], float(self.config["interval"]))
            self._devices[device.device_code] = device
            return device

    def devices(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"user_code": d.user_code, "verdict": d.verdict, "interval": d.interval,
                     "account": d.account} for d in self._devices.values()]

    def approve(self, user_code: str, account: str | None, deny: bool) -> None:
        with self._lock:
            device = next((d for d in self._devices.values() if d.user_code == user_code), None)
            if device is None or device.verdict != "pending":
                raise KeyError(user_code)
            if account is not None and account not in self._accounts:
                raise KeyError(account)
            device.verdict, device.account = ("denied", None) if deny else ("approved", account)

    def poll(self, device_code: str, verifier: str, now: float,
             by_user_code: bool = False) -> tuple[Device, dict[str, Any]]:
        """The grant (with the device, whose account is then set), or a Verdict."""
        with self._lock:
            self._count("token_polls")
            device = (next((d for d in self._devices.values() if d.user_code == device_code), None)
                      if by_user_code else self._devices.get(device_code))
            if device is None or device.verdict == "consumed":
                raise Verdict("invalid_grant", "unknown or used device_code")
            if not secrets.compare_digest(pkce_challenge(verifier), device.challenge):
                raise Verdict("invalid_grant", "code_verifier does not match code_challenge")
            if now >= device.expires_at:
                raise Verdict("expired_token", "the device code has expired")
            self._pace(device, now)
            if device.verdict == "denied":
                raise Verdict("access_denied", "the user denied the request")
            if device.verdict == "pending" or device.account is None:
                self._count("pending_answers")
                raise Verdict("authorization_pending")
            device.verdict = "consumed"
            self._count("grants")
            return device, self._issue(self._accounts[device.account], now)

    def _pace(self, device: Device, now: float) -> None:
        early = device.last_poll is not None and now - device.last_poll < device.interval * 0.9
        first_slow = self.config["slow_down_once"] and not device.slowed
        device.last_poll = now
        if early or first_slow:
            device.slowed = True
            device.interval += self.config["slow_down_step"]
            self._count("slow_downs")
            raise Verdict("slow_down")

    # -- generations and quota --------------------------------------------------------------------

    def begin(self, name: str) -> bool:
        """Start a generation; False when the account's quota is used up."""
        with self._lock:
            account = self._accounts[name]
            if account.quota_left <= 0:
                return False
            account.quota_left -= 1
            account.messages += 1
            account.active += 1
            account.max_active = max(account.max_active, account.active)
            return True

    def end(self, name: str) -> None:
        with self._lock:
            account = self._accounts.get(name)
            if account is not None and account.active > 0:
                account.active -= 1

    def quota(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self._accounts[name].public()
