"""What drifts between builds of the web app: its bundle's signing constants and the
answer shapes no capture pins, as live /_sim/config knobs.

Role: the simulator's side of the gateway's drift handling. The signing constants (the
x-signature salt, the yy suffix, version_code) are what the gate verifies and what the
served web page's script bundle (`bundle`) shows, so a test can rotate them the way a
new site build does. `tool_status_form` picks how a stream's agent tool calls name their
status (`word`: "running"/"done"; `number`: 1/2), and `uploads_prepare` whether the
session surface's uploads/prepare is there (`on`), absent (`missing`: the site's HTML
page, as every unserved path) or refused (`refused`: a business error), leaving the
legacy STS upload of the matrix page as the way to attach a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.simulator.signing import BUNDLE_SALT, VERSION_CODE, YY_SUFFIX

TOOL_STATUS_FORMS: tuple[str, ...] = ("word", "number")
UPLOADS_PREPARE_MODES: tuple[str, ...] = ("on", "missing", "refused")
WEB_DRIFT_KEYS: tuple[str, ...] = ("bundle_salt", "bundle_yy_suffix", "bundle_version_code",
                                   "tool_status_form", "uploads_prepare")
# What a build's constants may not hold (they sit inside a JS string or template literal).
_FORBIDDEN = set("\"'`${}\\")
_LENGTHS: dict[str, tuple[int, int]] = {"bundle_salt": (6, 80), "bundle_yy_suffix": (2, 32)}
_VERSION = re.compile(r"[0-9]{3,12}")


@dataclass
class WebDrift:
    bundle_salt: str = BUNDLE_SALT
    bundle_yy_suffix: str = YY_SUFFIX
    bundle_version_code: str = VERSION_CODE
    tool_status_form: str = TOOL_STATUS_FORMS[0]
    uploads_prepare: str = UPLOADS_PREPARE_MODES[0]


def checked_drift(key: str, value: Any) -> str:
    """One drift knob's new value, validated; raises ValueError naming the problem."""
    choices = {"tool_status_form": TOOL_STATUS_FORMS, "uploads_prepare": UPLOADS_PREPARE_MODES}
    if key in choices:
        if value not in choices[key]:
            raise ValueError(f"{key} must be one of {choices[key]}")
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    if key == "bundle_version_code":
        if not _VERSION.fullmatch(value):
            raise ValueError("bundle_version_code must be 3 to 12 digits")
        return value
    low, high = _LENGTHS[key]
    if (not low <= len(value) <= high or not value.isascii() or not value.isprintable()
            or " " in value or _FORBIDDEN & set(value)):
        raise ValueError(f"{key} must be {low}..{high} printable characters without "
                         "quotes, backticks, $, braces or spaces")
    return value
