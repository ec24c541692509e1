"""Settings part of the simulator's world: start-up settings and the live /_sim/config.

Role: `SimSettings` is what a simulator is built with; `LiveConfig` is the part of it
that /_sim/config may change at run time and `reset` returns to the settings. Like every
part of the world, `LiveConfig` holds no lock: `SimState` changes it only under its own.
The web layer reads its values without the lock (each is one attribute, replaced whole).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from tests.simulator.oss import MAX_OBJECT_BYTES
from tests.simulator.protocol import SIGNATURE_MODES
from tests.simulator.session_shapes import DEFAULT_SESSION_PREFIX, SESSION_PREFIXES
from tests.simulator.signing import YY_CAPTURED, YY_VARIANTS
from tests.simulator.web_drift import WEB_DRIFT_KEYS, WebDrift, checked_drift

DEFAULT_CREDITS: int = 1000
DEFAULT_EXP_SECONDS: int = 30 * 86400
DEFAULT_MAX_SKEW_SECONDS: float = 300.0
DEFAULT_HEARTBEAT_SECONDS: float = 0.5
DEFAULT_LINGER_SECONDS: float = 30.0
CONFIG_KEYS: tuple[str, ...] = ("signature_mode", "max_skew_seconds", "yy_variant",
                                "session_prefix", "heartbeat_seconds", "linger_seconds",
                                *WEB_DRIFT_KEYS)


def _real_sleep(seconds: float) -> None:
    # Looked up at call time so gevent's monkey-patched sleep is used when active.
    time.sleep(seconds)


@dataclass
class SimSettings:
    """Start-up configuration; `reset` returns the mutable parts to these values."""

    signature_mode: str = "bundle"  # "bundle", "jwt" or "either"
    max_skew_seconds: float = DEFAULT_MAX_SKEW_SECONDS  # for x-timestamp and unix
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    seed: int | None = None  # makes ids reproducible
    default_credits: int = DEFAULT_CREDITS
    default_exp_seconds: int = DEFAULT_EXP_SECONDS
    poll_times_cap: int = 2000
    log_cap: int = 100_000
    max_upload_bytes: int = MAX_OBJECT_BYTES  # tests lower it to exercise the 413
    clock: Callable[[], float] = time.time  # tests may inject a fake clock
    # How SSE streams wait; a fake clock's tests pass its advance so streams play instantly.
    sleep: Callable[[float], None] = _real_sleep
    yy_variant: str = YY_CAPTURED  # "captured" (CAPTURES.md) or "legacy" (UPSTREAM.md)
    session_prefix: str = DEFAULT_SESSION_PREFIX
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    linger_seconds: float = DEFAULT_LINGER_SECONDS

    def __post_init__(self) -> None:
        if self.signature_mode not in SIGNATURE_MODES:
            raise ValueError(f"signature_mode must be one of {SIGNATURE_MODES}")
        if self.yy_variant not in YY_VARIANTS:
            raise ValueError(f"yy_variant must be one of {YY_VARIANTS}")


def _positive_number(key: str, value: Any, allow_zero: bool = False) -> float:
    if type(value) not in (int, float) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{key} must be a number {'>= 0' if allow_zero else '> 0'}")
    return float(value)


def checked_config(key: str, value: Any) -> Any:
    """One /_sim/config change, validated; raises ValueError naming the problem."""
    choices = {"signature_mode": SIGNATURE_MODES, "yy_variant": YY_VARIANTS,
               "session_prefix": SESSION_PREFIXES}
    if key in choices:
        if value not in choices[key]:
            raise ValueError(f"{key} must be one of {choices[key]}")
        return value
    if key in ("max_skew_seconds", "heartbeat_seconds"):
        return _positive_number(key, value)
    if key == "linger_seconds":
        return _positive_number(key, value, allow_zero=True)
    if key in WEB_DRIFT_KEYS:
        return checked_drift(key, value)
    raise ValueError(f"unknown config key {key!r}")


class LiveConfig:
    """The CONFIG_KEYS values now in force, starting from (and reset to) the settings."""

    def __init__(self, settings: SimSettings) -> None:
        self.signature_mode = settings.signature_mode
        self.max_skew_seconds = settings.max_skew_seconds
        self.yy_variant = settings.yy_variant
        self.session_prefix = settings.session_prefix
        self.heartbeat_seconds = settings.heartbeat_seconds
        self.linger_seconds = settings.linger_seconds
        self.drift = WebDrift()

    def change(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate every change first, then apply them all (a bad one changes nothing)."""
        checked = {key: checked_config(key, value) for key, value in changes.items()}
        for key, value in checked.items():
            setattr(self.drift if key in WEB_DRIFT_KEYS else self, key, value)
        return self.public()

    def public(self) -> dict[str, Any]:
        return {key: getattr(self.drift if key in WEB_DRIFT_KEYS else self, key)
                for key in CONFIG_KEYS}
