"""The credential doctor's checks of a MiniMax Code credential (see :mod:`gateway.doctor`).

Each check is one stage: it returns the stage's detail line, or raises a
:class:`gateway.errors.GatewayError` (the call failed) or :class:`StageFailed` (the call
worked but its answer shows the problem). :func:`code_cause` names the likely cause of a
failure as a catalogue key: a dead or missing sign-in and a refused sign-in token mean
"log in again", a refused client token means sign in again, a spent window waits for
its reset.
"""

from __future__ import annotations

import time

from gateway.errors import AuthenticationFailed
from gateway.upstream.conversation import NativeDriver
from gateway.upstream.credentials import Credential
from gateway.upstream.quota import QuotaReader
from gateway.upstream.quota_shapes import Quota, describe
from gateway.upstream.signins import SignIns

#: Words of a StageFailed that name its cause (the message is shown as it is).
LOG_IN_AGAIN = "log in again"
QUOTA_USED = "quota used up"
#: The stage of a web credential tried on the code endpoint (auto mode).
WEB_TOKEN_STAGE = "web token on code"


class StageFailed(Exception):
    """A stage whose call succeeded but whose answer shows a problem."""


def signed_in(signins: SignIns | None, name: str) -> str:
    """The sign-in ``name`` exists and works (not dead)."""
    sign_in = signins.get(name) if signins is not None else None
    if sign_in is None:
        raise StageFailed(f"no MiniMax Code account is signed in as {name!r}: {LOG_IN_AGAIN}")
    if sign_in.state != "ok":
        raise StageFailed(f"the sign-in is dead ({sign_in.reason or 'refused'}): {LOG_IN_AGAIN}")
    return f"{name} ({sign_in.region}), access token expires {_utc(sign_in.expires_at)}"


def quota(reader: QuotaReader | None, cred: Credential) -> tuple[Quota, str]:
    """The account's quota reading (and its detail line); a spent window fails."""
    reading = _reader(reader).read(cred)
    if reading.exhausted:
        resets = _utc(reading.resets_at) if reading.resets_at else "?"
        raise StageFailed(f"{QUOTA_USED} until {resets} ({describe(reading)})")
    return reading, describe(reading)


def endpoint(reader: QuotaReader | None, cred: Credential) -> str:
    """The code endpoint takes the token: its catalogue lists models."""
    models = _reader(reader).models(cred)
    if not models:
        raise StageFailed("the code endpoint accepted the token but listed no models")
    return f"token accepted; models: {', '.join(models)}"


def count_tokens(native: NativeDriver, cred: Credential) -> str:
    """The messages route takes the token (the code driver's token-count probe)."""
    native.probe(cred)
    return "the messages route takes the token"


def web_token(native: NativeDriver, cred: Credential) -> str:
    """Whether the code endpoint takes a web token as Bearer (auto mode's probe)."""
    native.probe(cred)
    return "the code endpoint takes this web token: auto mode uses the code surface for it"


def code_cause(error: BaseException, cred: Credential) -> str | None:
    """The catalogue key of a code credential's failure, or None for the general rules."""
    if isinstance(error, AuthenticationFailed):
        return "doctor.cause.log_in_again" if cred.signin is not None else "doctor.cause.code_token_refused"
    if isinstance(error, StageFailed):
        if QUOTA_USED in str(error):
            return "doctor.cause.quota_used"
        if LOG_IN_AGAIN in str(error):
            return "doctor.cause.log_in_again"
    return None


def _reader(reader: QuotaReader | None) -> QuotaReader:
    if reader is None:
        raise StageFailed("this doctor cannot reach MiniMax Code (no quota reader)")
    return reader


def _utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))
