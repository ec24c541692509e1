"""The operator's MiniMax accounts (``MINIMAX_CREDENTIALS``, ``GATEWAY_ACCOUNTS_FILE``).

One credential per line of the file (``#`` starts a comment) or per ``,`` of the
setting, each ``REALUSERID+JWT`` or a bare JWT, as a user pastes it. Errors name the
source and the entry's number, never its text.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import AuthenticationFailed, ConfigError
from gateway.upstream.credentials import Credential, parse_one


def parse_roster(sources: Sequence[tuple[str, list[str]]]) -> tuple[Credential, ...]:
    seen: dict[str, Credential] = {}
    for source, lines in sources:
        for number, line in enumerate(lines, 1):
            text = line.split("#", 1)[0].strip()
            if text:
                cred = _parse(text, f"{source} entry {number}")
                seen.setdefault(cred.key, cred)
    return tuple(seen.values())


def _parse(text: str, where: str) -> Credential:
    try:
        return parse_one(text)
    except AuthenticationFailed as error:
        # The message names "Credential #1" and what is wrong with it, never the text.
        raise ConfigError(error.message.replace("Credential #1", where)) from None
