"""Client API keys: parsed from the operator's list, kept and compared as hashes.

One entry per line of ``GATEWAY_API_KEYS_FILE`` (``#`` starts a comment), or entries
joined by ``,`` in ``GATEWAY_API_KEYS``::

    sk-team-alpha-3f9c2e name=alpha rpm=60 concurrency=2
    sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 name=ci

An entry is the key itself or ``sha256:<hex>`` of it (so the list need not hold keys at
all); ``name``, ``rpm`` (requests per minute) and ``concurrency`` (requests at once) are
optional. Only the SHA-256 digest of each key is kept in memory; a presented key is
hashed and compared with every digest in constant time. Errors name the line, never its
text.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.errors import ConfigError

HASHED_PREFIX = "sha256:"
#: Characters of the digest shown as a key's id (admin page, lease holders).
ID_CHARS = 8
#: Shorter keys are refused: a key is a password.
MIN_KEY_CHARS = 16
OPTIONS = ("name", "rpm", "concurrency")


@dataclass(frozen=True, repr=False)
class ApiKey:
    """One accepted client key, as its digest and limits."""

    digest: str
    name: str
    rpm: int | None = None
    concurrency: int | None = None

    @property
    def id(self) -> str:
        return self.digest[:ID_CHARS]

    def __repr__(self) -> str:
        return f"ApiKey({self.name}, id={self.id})"


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The keys the gateway accepts now."""

    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        self.keys = tuple(keys)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def match(self, presented: str) -> ApiKey | None:
        """The key ``presented`` is, compared against every digest (no early exit)."""
        wanted = digest_of(presented.strip()).encode()
        found = None
        for key in self.keys:
            if hmac.compare_digest(wanted, key.digest.encode()):
                found = key
        return found


def parse_keys(sources: Sequence[tuple[str, list[str]]]) -> KeyRing:
    """Parse the key entries of each (source, lines); :class:`ConfigError` names the
    source and the entry's number."""
    keys: list[ApiKey] = []
    for source, lines in sources:
        for number, line in enumerate(lines, 1):
            text = line.split("#", 1)[0].strip()
            if text:
                keys.append(_parse_entry(text, f"{source} entry {number}"))
    digests = [key.digest for key in keys]
    if len(set(digests)) != len(digests):
        raise ConfigError("the client keys list the same key twice")
    return KeyRing(keys)


def _parse_entry(text: str, where: str) -> ApiKey:
    secret, *options = text.split()
    values = dict(_option(option, where) for option in options)
    digest = _digest(secret, where)
    return ApiKey(digest, values.get("name") or digest[:ID_CHARS],
                  _limit(values.get("rpm"), "rpm", where), _limit(values.get("concurrency"), "concurrency", where))


def _digest(secret: str, where: str) -> str:
    if secret.startswith(HASHED_PREFIX):
        hexdigest = secret[len(HASHED_PREFIX):].lower()
        if len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
            raise ConfigError(f"{where}: sha256: must be followed by 64 hex digits")
        return hexdigest
    if len(secret) < MIN_KEY_CHARS:
        raise ConfigError(f"{where}: a key must have at least {MIN_KEY_CHARS} characters")
    return digest_of(secret)


def _option(option: str, where: str) -> tuple[str, str]:
    name, sep, value = option.partition("=")
    if not sep or name not in OPTIONS or not value:
        raise ConfigError(f"{where}: options are {', '.join(n + '=...' for n in OPTIONS)}")
    return name, value


def _limit(value: str | None, name: str, where: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) <= 0:
        raise ConfigError(f"{where}: {name} must be a whole number above zero")
    return int(value)
