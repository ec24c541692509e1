"""Accounts part of the simulator's world: accounts, their tokens, devices and flags.

Role: who may call the simulator and what each account may still do. `AccountBook`
mints accounts and JWTs, authenticates tokens, registers devices, keeps each account's
per-account settings (robot voice, session config seen, agents) and its spending flags
(credits, busy, quota), and restores the flags on `reset`. What an account has chatted
is not here: chats, sessions and generations live in `tests.simulator.chats` and
`tests.simulator.generations`. Like every part, it holds no lock: `SimState` uses it
under its own.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from typing import Any

from tests.simulator.protocol import (
    CHAT_RUNNING_CODE,
    CHAT_RUNNING_MSG,
    NOT_ENOUGH_CREDITS_CODE,
    NOT_ENOUGH_CREDITS_MSG,
    QUOTA_EXHAUSTED_CODE,
    QUOTA_EXHAUSTED_MSG,
    decode_jwt,
    mint_jwt,
)
from tests.simulator.session_shapes import AGENT_ROLES, agent_entry
from tests.simulator.settings import SimSettings
from tests.simulator.tally import Tally

SURFACE_MATRIX: str = "matrix"
SURFACE_SESSION: str = "session"
SURFACES: tuple[str, ...] = (SURFACE_MATRIX, SURFACE_SESSION)
ACCOUNT_FLAGS: tuple[str, ...] = ("credits", "busy", "expired", "quota_exhausted", "migrated",
                                  "surfaces")


@dataclass(eq=False)
class Account:
    real_user_id: str
    jwt: str
    jwt_exp: float
    jwt_user_id: str
    jwt_device_id: str
    name: str
    credits: int
    busy: bool
    expired: bool
    quota_exhausted: bool
    migrated: bool
    surfaces: dict[str, bool]
    initial_flags: dict[str, Any]
    agents: tuple[dict[str, Any], ...] = ()  # session surface, per account
    configured: bool = False  # GET config seen (the opening sequence)
    devices: dict[str, str] = field(default_factory=dict)  # uuid -> deviceIDStr
    robot_voice: str | None = None  # set by update_robot_custom_config

    def public(self) -> dict[str, Any]:
        return {"real_user_id": self.real_user_id, "jwt": self.jwt,
                "credential": f"{self.real_user_id}+{self.jwt}",
                "device_id": self.jwt_device_id, "jwt_user_id": self.jwt_user_id,
                "name": self.name, "credits": self.credits, "busy": self.busy,
                "expired": self.expired, "quota_exhausted": self.quota_exhausted,
                "robot_voice": self.robot_voice, "migrated": self.migrated,
                "surfaces": dict(self.surfaces), "configured": self.configured,
                "agents": [dict(agent) for agent in self.agents],
                "jwt_exp": self.jwt_exp}

    def surface_on(self, surface: str) -> bool:
        return self.surfaces.get(surface, True)

    def restore(self) -> None:
        """Back to the flags it was created with, and nothing it did since."""
        for key, value in self.initial_flags.items():
            setattr(self, key, value)
        self.devices.clear()
        self.robot_voice = None
        self.configured = False


class AccountBook:
    """Accounts by realUserID, and every token ever minted for them."""

    def __init__(self, settings: SimSettings, rng: random.Random, tally: Tally) -> None:
        self._settings = settings
        self._rng = rng
        self._tally = tally
        self._accounts: dict[str, Account] = {}
        self._tokens: dict[str, str] = {}  # every token ever minted -> realUserID
        self._token_exp: dict[str, float] = {}

    # -- lifecycle --------------------------------------------------------------------------

    def restore_all(self) -> None:
        for account in self._accounts.values():
            account.restore()

    def drop_all(self) -> None:
        self._accounts.clear()
        self._tokens.clear()
        self._token_exp.clear()

    # -- ids --------------------------------------------------------------------------------

    def _new_user_id(self) -> str:
        # 18-19 digits, always above 2**53, so any float conversion corrupts it visibly.
        while True:
            candidate = str(self._rng.randint(2 * 10**17, 9 * 10**18))
            if candidate not in self._accounts:
                return candidate

    def _new_device_id(self) -> str:
        return str(self._rng.randint(10**17, 10**18 - 1))

    def _new_agents(self) -> tuple[dict[str, Any], ...]:
        # Agent ids are per account (15 digits), mavis first like the web default.
        return tuple(agent_entry(str(self._rng.randint(10**14, 10**15 - 1)), role, display,
                                 str(self._rng.randint(10**14, 10**15 - 1)))
                     for role, display in AGENT_ROLES)

    # -- accounts and tokens ------------------------------------------------------------------

    def add(self, count: int, flags: dict[str, Any], exp_seconds: float) -> list[dict[str, Any]]:
        return [self._add(dict(flags), exp_seconds).public() for _ in range(count)]

    def _add(self, flags: dict[str, Any], exp_seconds: float) -> Account:
        now = self._settings.clock()
        real_user_id = self._new_user_id()
        # Like the genuine capture: the JWT's user.id is another 18-digit number.
        jwt_user_id = self._new_user_id()
        device_id, name = self._new_device_id(), f"SimUser-{real_user_id[-4:]}"
        exp = int(now + exp_seconds)
        account = Account(real_user_id, "", exp, jwt_user_id, device_id, name,
                          initial_flags={**flags, "surfaces": dict(flags["surfaces"])},
                          agents=self._new_agents(), **flags)
        account.jwt = self._mint_token(account, exp, now)
        self._accounts[real_user_id] = account
        return account

    def _mint_token(self, account: Account, exp: float, now: float) -> str:
        token = mint_jwt(self._settings.jwt_secret, {
            "exp": int(exp), "iat": int(now), "jti": secrets.token_hex(8),
            "user": {"id": account.jwt_user_id, "deviceID": account.jwt_device_id,
                     "name": account.name},
        })
        self._tokens[token] = account.real_user_id
        self._token_exp[token] = exp
        return token

    def renew(self, real_user_id: str, now: float) -> str:
        """A new JWT with a later exp; the old ones keep working until their own exp."""
        account = self._accounts[real_user_id]
        exp = max(now + self._settings.default_exp_seconds, account.jwt_exp + 1)
        account.jwt, account.jwt_exp = self._mint_token(account, exp, now), int(exp)
        self._tally.count("renewals")
        return account.jwt

    def patch(self, real_user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        account = self._accounts.get(real_user_id)
        if account is None:
            raise KeyError(real_user_id)
        for key, value in changes.items():
            setattr(account, key, dict(value) if isinstance(value, dict) else value)
        return account.public()

    def get(self, real_user_id: str) -> Account:
        """The account (KeyError when unknown: callers have authenticated it)."""
        return self._accounts[real_user_id]

    def has(self, real_user_id: str) -> bool:
        return real_user_id in self._accounts

    def listing(self) -> list[dict[str, Any]]:
        return [account.public() for account in self._accounts.values()]

    def __len__(self) -> int:
        return len(self._accounts)

    def authenticate(self, token: str, now: float) -> tuple[Account | None, str]:
        """The token's account, or None and the rejection reason."""
        real_user_id = self._tokens.get(token)
        account = self._accounts.get(real_user_id) if real_user_id else None
        if account is None:
            forged = decode_jwt(self._settings.jwt_secret, token) is None
            return None, "bad_token_signature" if forged else "unknown_token"
        if account.expired or self._token_exp.get(token, 0) <= now:
            return None, "expired_token"
        return account, ""

    # -- devices and per-account settings ---------------------------------------------------------

    def register_device(self, real_user_id: str, device_uuid: str) -> str:
        self._tally.count("device_registrations")
        devices = self._accounts[real_user_id].devices
        if device_uuid not in devices:
            devices[device_uuid] = self._new_device_id()
        return devices[device_uuid]

    def device_id_plausible(self, real_user_id: str, device_id: str) -> bool:
        """False once the account registered devices and this id is none of them (nor the JWT's)."""
        account = self._accounts[real_user_id]
        return (not account.devices or device_id == account.jwt_device_id
                or device_id in account.devices.values())

    def set_robot_voice(self, real_user_id: str, voice: str) -> None:
        self._accounts[real_user_id].robot_voice = voice
        self._tally.count("voice_updates")

    def mark_configured(self, real_user_id: str) -> None:
        self._accounts[real_user_id].configured = True
        self._tally.count("configs")

    def agents(self, real_user_id: str) -> list[dict[str, Any]]:
        return [dict(agent) for agent in self._accounts[real_user_id].agents]

    def owns_agent(self, real_user_id: str, agent_name: str) -> bool:
        return any(agent["name"] == agent_name for agent in self._accounts[real_user_id].agents)

    # -- spending ---------------------------------------------------------------------------------

    def ensure_can_spend(self, account: Account) -> None:
        """Raise the Refusal of an account that may not start a generation now."""
        if account.busy:
            self._tally.count("busy_rejections")
            raise self._tally.refuse(CHAT_RUNNING_CODE, CHAT_RUNNING_MSG, "account_busy")
        if account.quota_exhausted:
            raise self._tally.refuse(QUOTA_EXHAUSTED_CODE, QUOTA_EXHAUSTED_MSG, "quota_exhausted")
        if account.credits <= 0:
            raise self._tally.refuse(NOT_ENOUGH_CREDITS_CODE, NOT_ENOUGH_CREDITS_MSG, "no_credits")

    @staticmethod
    def charge(account: Account) -> None:
        account.credits -= 1
