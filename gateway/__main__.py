"""Command line: ``python -m gateway doctor [--base-url URL] [--signature MODE] [CRED | -]``.

The credential comes from the argument, from standard input when it is ``-``, or from
the ``MINIMAX_CREDENTIAL`` environment variable. Exit status 0 when the credential works
end to end, 1 when a stage fails, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from gateway.config import ConfigError, Settings, doctor_credential
from gateway.doctor import Doctor, render
from gateway.upstream.client import UpstreamClient


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="check a MiniMax credential step by step")
    doctor.add_argument("credential", nargs="?", help="REALUSERID+JWT, a bare JWT, or - for stdin")
    doctor.add_argument("--base-url", help="upstream base URL (default: MINIMAX_BASE_URL)")
    doctor.add_argument("--signature", choices=("bundle", "jwt"), help="x-signature salt")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        overrides = {k: v for k, v in (("base_url", args.base_url), ("signature", args.signature)) if v}
        settings = dataclasses.replace(settings, **overrides)
        settings.validate()
    except ConfigError as error:
        parser.error(str(error))
    text = _credential(args.credential)
    if not text:
        parser.error("give a credential, '-' to read it from stdin, or set MINIMAX_CREDENTIAL")
    report = Doctor(UpstreamClient(settings.upstream()), settings.models[0]).check(text)
    print(render(report))
    return 0 if report.live else 1


def _credential(argument: str | None) -> str:
    if argument == "-":
        return sys.stdin.readline().strip()
    return (argument or doctor_credential()).strip()


if __name__ == "__main__":
    sys.exit(main())
