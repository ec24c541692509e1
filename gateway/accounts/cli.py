"""The sign-in commands of ``python -m gateway``: ``login``, ``logout`` and ``accounts``.

``login`` runs the MiniMax Code device login: it shows the link and the code (and a QR
code on a terminal), waits for the approval and stores the token pair in the gateway's
shared state (``GATEWAY_STATE``), where every worker and host finds it as a server-side
account. With ``--json`` it prints one JSON line with the link and the code, then one
with the outcome. No token is ever printed; ``accounts`` lists names, regions, expiry
and state only. Sign-out is local (MiniMax has no revocation). Exit status: 0 done,
1 the login or sign-out failed, 2 usage or settings, 130 interrupted.
"""

from __future__ import annotations

import argparse
import io
import json
import sqlite3
import sys
import time
from typing import Any

import redis.exceptions
import segno

from gateway.accounts.signins import build_signins, protect_state_file
from gateway.config import Settings
from gateway.errors import ConfigError, DeviceLoginFailed, GatewayError
from gateway.state import default_state_url, open_state
from gateway.upstream import constants as C
from gateway.upstream.oauth import DeviceAuthorization, OAuthClient
from gateway.upstream.signins import SignIn, SignIns, valid_name

FAILED, USAGE, INTERRUPTED = 1, 2, 130
#: What a shared state that cannot be reached or used raises.
STATE_ERRORS = (sqlite3.Error, OSError, redis.exceptions.RedisError)


def add_commands(commands: Any) -> None:
    """Add login, logout and accounts to the ``python -m gateway`` sub-commands."""
    login = commands.add_parser("login", help="sign a MiniMax Code account in (device login)")
    login.add_argument("--region", choices=C.CODE_REGIONS, help="account region (default: MINIMAX_REGION)")
    login.add_argument("--name", help="name of the account on this gateway (default: its nickname or id)")
    login.add_argument("--json", action="store_true", help="print the link and code, then the outcome, as JSON lines")
    logout = commands.add_parser("logout", help="forget a signed-in account (on this gateway only)")
    logout.add_argument("name")
    listing = commands.add_parser("accounts", help="list the signed-in accounts (no tokens)")
    listing.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        parser.error(str(error))
    url = settings.state or default_state_url(settings.data_dir)  # the gateway's own default
    if args.command == "login" and args.name is not None and not valid_name(args.name):
        parser.error("--name takes 1-64 letters, digits, '.', '_', '@' or '-'")
    protect_state_file(url)
    state = open_state(url)
    try:
        signins = build_signins(settings, state)
        if args.command == "login":
            return _login(args, settings, signins)
        if args.command == "logout":
            return _logout(args.name, signins)
        return _accounts(args.json, signins)
    except STATE_ERRORS as error:
        print(f"The shared state (GATEWAY_STATE) cannot be used: {type(error).__name__}.", file=sys.stderr)
        return FAILED
    finally:
        state.close()
        protect_state_file(url)  # the WAL files SQLite made meanwhile


def _login(args: argparse.Namespace, settings: Settings, signins: SignIns) -> int:
    code = settings.code(args.region)
    signins.all()  # the state answers before MiniMax is asked: a granted pair is never lost
    client = OAuthClient(code)
    emit = _JsonLines() if args.json else _Terminal()
    try:
        auth = client.start()
        emit.device(auth, code.region)
        tokens = client.wait(auth)
    except KeyboardInterrupt:
        emit.failed("interrupted", "The login was interrupted.")
        return INTERRUPTED
    except DeviceLoginFailed as error:
        emit.failed(error.reason, error.message)
        return FAILED
    except GatewayError as error:
        emit.failed("upstream", error.message)
        return FAILED
    finally:
        client.close()
    name = args.name or signins.default_name(tokens)
    replaced = signins.get(name) is not None
    sign_in = signins.add(name, code.region, tokens)
    emit.done(sign_in, replaced)
    return 0


def _logout(name: str, signins: SignIns) -> int:
    if not signins.remove(name):
        print(f"No account is signed in as {name!r}.", file=sys.stderr)
        return FAILED
    print(f"Signed {name} out of this gateway. MiniMax has no revocation: its tokens stop working "
          "when they expire; sign out on MiniMax's site to end it there.")
    return 0


def _accounts(as_json: bool, signins: SignIns) -> int:
    rows = [sign_in.public() for sign_in in signins.all()]
    if as_json:
        print(json.dumps({"accounts": rows}, ensure_ascii=False))
        return 0
    if not rows:
        print("No MiniMax Code account is signed in (python -m gateway login).")
        return 0
    print(f"{'NAME':<24} {'REGION':<7} {'STATE':<6} {'TOKEN EXPIRES (UTC)':<20} ACCOUNT")
    for row in rows:
        print(f"{row['name']:<24} {row['region']:<7} {row['state']:<6} {_when(row['expires_at']):<20} "
              f"{row['account']}")
        if row["reason"]:
            print(f"    {row['reason']}")
    return 0


class _Terminal:
    """The login as a person reads it: the link, the code, a QR code of the link."""

    def device(self, auth: DeviceAuthorization, region: str) -> None:
        print(f"To sign a MiniMax Code account ({region}) in, open this page and confirm the code:\n")
        print(f"  {auth.link}")
        print(f"  Code: {auth.user_code}\n")
        if sys.stdout.isatty():
            print(_qr(auth.link))
        minutes = max(1, round((auth.expires_at - time.time()) / 60))
        print(f"Waiting for the approval (the code expires in about {minutes} min)…", flush=True)

    def failed(self, reason: str, message: str) -> None:
        print(f"Login failed: {message}", file=sys.stderr)

    def done(self, sign_in: SignIn, replaced: bool) -> None:
        again = " (replacing the earlier sign-in of that name)" if replaced else ""
        print(f"Signed in as {sign_in.name} (region {sign_in.region}){again}; the access token expires at "
              f"{_when(sign_in.expires_at)} UTC and is refreshed by the gateway. Client keys "
              "(GATEWAY_API_KEYS) use it as a server-side account.")


class _JsonLines:
    """The login for scripts: the link and code, then the outcome, one JSON line each."""

    def device(self, auth: DeviceAuthorization, region: str) -> None:
        self._line({"event": "device", "region": region, "verification_uri": auth.verification_uri,
                    "verification_uri_complete": auth.verification_uri_complete, "user_code": auth.user_code,
                    "expires_at": auth.expires_at, "interval": auth.interval})

    def failed(self, reason: str, message: str) -> None:
        self._line({"event": "outcome", "ok": False, "error": reason, "message": message})

    def done(self, sign_in: SignIn, replaced: bool) -> None:
        self._line({"event": "outcome", "ok": True, "replaced": replaced, **sign_in.public()})

    @staticmethod
    def _line(document: dict[str, Any]) -> None:
        print(json.dumps(document, ensure_ascii=False), flush=True)


def _qr(link: str) -> str:
    out = io.StringIO()
    segno.make(link, error="l").terminal(out=out, compact=True, border=2)
    return out.getvalue()


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))
