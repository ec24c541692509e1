"""Client keys: parsing the operator's list, hashing, constant-time matching."""

from __future__ import annotations

import hashlib

import pytest

from gateway.accounts.keys import KeyRing, digest_of, parse_keys
from gateway.errors import ConfigError

KEY = "sk-test-0123456789abcdef"


def keys(*lines: str) -> KeyRing:
    return parse_keys([("keys.txt", list(lines))])


def test_entries_with_options_comments_and_hashes() -> None:
    other = "sk-other-fedcba9876543210"
    ring = keys("# the team", f"{KEY} name=alpha rpm=60 concurrency=2  # comment", "",
                f"sha256:{hashlib.sha256(other.encode()).hexdigest().upper()} name=ci")
    alpha, ci = ring.keys
    assert (alpha.name, alpha.rpm, alpha.concurrency) == ("alpha", 60, 2)
    assert (ci.name, ci.rpm, ci.concurrency) == ("ci", None, None)
    assert ring.match(KEY) is alpha and ring.match(f" {other} ") is ci
    assert ring.match(KEY + "x") is None and ring.match("") is None


def test_only_digests_are_kept() -> None:
    ring = keys(KEY)
    (key,) = ring.keys
    assert key.digest == digest_of(KEY) and key.name == key.id == key.digest[:8]
    assert KEY not in repr(ring.keys) and KEY not in str(vars(key))


def test_no_keys_means_personal_use() -> None:
    assert not keys("# nothing yet", "")


@pytest.mark.parametrize("line", [
    "short",                              # too short to be a password
    f"{KEY} rpm=0",                       # limits are above zero
    f"{KEY} rpm=many",
    f"{KEY} colour=blue",                 # unknown option
    f"{KEY} name=",                       # empty value
    "sha256:abc",                         # not 64 hex digits
])
def test_bad_entries_name_the_line_never_the_key(line: str) -> None:
    with pytest.raises(ConfigError) as info:
        keys("# first", line)
    assert "keys.txt entry 2" in str(info.value)
    assert line.split()[0] not in str(info.value)


def test_the_same_key_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="twice"):
        parse_keys([("GATEWAY_API_KEYS", [KEY]), ("keys.txt", [f"sha256:{digest_of(KEY)}"])])
