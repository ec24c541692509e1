"""Command line.

``python -m gateway doctor [--base-url URL] [--signature MODE] [--surface auto|session|matrix]
[--stream-base-url URL] [CRED | -]`` checks a web credential: it comes from the argument,
from standard input when it is ``-``, or from the ``MINIMAX_CREDENTIAL`` environment
variable; a MiniMax Code access token (``mmoat_…``) is checked on the code surface, and
``--signin NAME`` checks an account signed in on this gateway (in ``GATEWAY_STATE``).
Exit status 0 when the credential works end to end, 1 when a stage fails.

``login [--region cn|global] [--name NAME] [--json]``, ``logout NAME`` and ``accounts
[--json]`` manage the MiniMax Code accounts signed in on the server
(:mod:`gateway.accounts.cli`). Exit status 2 on usage errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from gateway.accounts import cli as signin_cli
from gateway.accounts.quotas import quota_reader
from gateway.accounts.signins import build_signins
from gateway.config import Settings, doctor_credential, doctor_lang
from gateway.doctor import Doctor, render
from gateway.errors import ConfigError
from gateway.state import open_state
from gateway.upstream import constants as C
from gateway.upstream.client import UpstreamClient
from gateway.upstream.code import CodeDriver
from gateway.upstream.surfaces import build_surfaces


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="check a MiniMax credential step by step")
    doctor.add_argument("credential", nargs="?", help="REALUSERID+JWT, a bare JWT, or - for stdin")
    doctor.add_argument("--base-url", help="upstream base URL (default: MINIMAX_BASE_URL)")
    doctor.add_argument("--signature", choices=("bundle", "jwt"), help="x-signature salt")
    doctor.add_argument("--surface", choices=C.SURFACE_CHOICES,
                        help="surface(s) to walk (default: MINIMAX_SURFACE)")
    doctor.add_argument("--stream-base-url", help="session stream host (default: MINIMAX_STREAM_BASE_URL)")
    doctor.add_argument("--signin", metavar="NAME",
                        help="check the MiniMax Code account signed in as NAME (needs GATEWAY_STATE)")
    signin_cli.add_commands(commands)
    args = parser.parse_args(argv)
    if args.command != "doctor":
        return signin_cli.run(args, parser)
    try:
        settings = Settings.from_env()
        given = (("base_url", args.base_url), ("signature", args.signature),
                 ("surface", args.surface), ("stream_base_url", args.stream_base_url))
        overrides = {k: v for k, v in given if v}
        settings = dataclasses.replace(settings, **overrides)
        settings.validate()
    except ConfigError as error:
        parser.error(str(error))
    text = "" if args.signin else _credential(args.credential)
    if not text and not args.signin:
        parser.error("give a credential, '-' to read it from stdin, or set MINIMAX_CREDENTIAL")
    if args.signin and not settings.state:
        parser.error("--signin reads the account from GATEWAY_STATE: set it to the gateway's shared state")
    upstream = settings.upstream()
    client = UpstreamClient(upstream)
    lang = doctor_lang()
    state = open_state(settings.state) if args.signin else None
    try:
        signins = build_signins(settings, state) if state is not None else None
        code = CodeDriver(settings.code(), upstream, tokens=signins)
        checker = Doctor(client, build_surfaces(client, upstream, code=code), settings.models[0],
                         quota=quota_reader(settings, signins), signins=signins)
        report = checker.checked(text, lang, signin=args.signin)
    finally:
        if state is not None:
            state.close()
    print(render(report, lang))
    return 0 if report.live else 1


def _credential(argument: str | None) -> str:
    if argument == "-":
        return sys.stdin.readline().strip()
    return (argument or doctor_credential()).strip()


if __name__ == "__main__":
    sys.exit(main())
