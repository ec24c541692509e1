"""Everything the gateway showed a client or wrote down, kept for the secrets sweep.

The fault matrix and the fuzz run hand every response (status, headers, body) and every
exception text they see to `record_response` / `record_text`; `tests/test_secrets.py`
then looks for each minted credential, client API key, JWT and JWT segment in all of it,
and in the gateway logs and metrics. Tests that record must carry
``pytest.mark.xdist_group(SECRETS_GROUP)`` so that, with pytest-xdist, they run in the
same worker as the sweep (which is marked ``last``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import requests

#: The pytest-xdist group of the recording tests and of the sweep.
SECRETS_GROUP = "secrets"

#: (where it was seen, the text) for every recorded exposure, in order.
EXPOSED: list[tuple[str, str]] = []

#: Client API keys and admin keys the recording tests configured (besides minted accounts).
KEYS: list[str] = []


def record_text(where: str, text: str) -> None:
    """Remember a text a user could read (an exception message, a stream frame...)."""
    EXPOSED.append((where, text))


def record_response(where: str, response: requests.Response) -> None:
    """Remember a response's status line, headers and body (read if not yet consumed)."""
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    try:
        body = response.content.decode("utf-8", "replace")
    except RuntimeError:  # streamed and already read: the caller records the frames itself
        body = ""
    record_text(where, f"{response.status_code} {response.reason}\n{headers}\n\n{body}")


def record_key(key: str) -> None:
    """Remember a client or admin key the sweep must not find anywhere."""
    KEYS.append(key)


#: Any JWT at all (a renewed token is in no list of minted ones): three base64url parts,
#: the first two JSON objects.
JWT_PATTERN = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}")
#: A MiniMax Code access or refresh token, minted here or not.
CODE_TOKEN_PATTERN = re.compile(r"mmo[ar]t_[\w-]{16,}")


def secrets_of(minted: Iterable[dict[str, Any]]) -> set[str]:
    """Every string that must never be shown: credentials, JWTs and their secret segments.

    A JWT's first segment (the header) is the same for every token and no secret; the
    payload and signature segments each identify the account, so each is searched alone.
    """
    found = set(KEYS)
    for account in minted:
        # A web account's JWT, or a code account's tokens (and the web JWT it may carry).
        for jwt in (str(account[name]) for name in ("jwt", "web_jwt") if account.get(name)):
            found.update((jwt, *jwt.split(".")[1:]))
        found.update(str(account[name]) for name in ("credential", "access_token", "refresh_token")
                     if account.get(name))
    return {secret for secret in found if len(secret) >= 8}


def leaks(texts: Iterable[tuple[str, str]], secrets: set[str]) -> list[str]:
    """Where a secret or any JWT shows in `texts`, as "where: what" lines (empty: clean)."""
    found = []
    for where, text in texts:
        found.extend(f"{where}: a minted secret" for secret in secrets if secret in text)
        found.extend(f"{where}: a JWT" for _ in JWT_PATTERN.finditer(text))
        found.extend(f"{where}: a MiniMax Code token" for _ in CODE_TOKEN_PATTERN.finditer(text))
    return sorted(set(found))
