"""The operator's accounts: pasted credentials, one per line or per comma."""

from __future__ import annotations

import pytest

from gateway.accounts.roster import parse_roster
from gateway.errors import ConfigError
from tests.upstream.test_credentials import jwt


def test_lines_and_setting_entries_join_without_duplicates() -> None:
    first, second = jwt({"user": {"id": "1"}}), jwt({"user": {"id": "2"}})
    roster = parse_roster([("MINIMAX_CREDENTIALS", [f"123+{first}"]),
                           ("accounts.txt", ["# ops", f"{first}  # again", second])])
    assert [cred.jwt for cred in roster] == [first, second]
    assert roster[0].real_user_id == "123"


def test_a_bad_line_is_named_without_its_text() -> None:
    with pytest.raises(ConfigError) as info:
        parse_roster([("accounts.txt", [jwt({}), "abc+not.a-jwt-at-all"])])
    assert str(info.value).startswith("accounts.txt entry 2")
    assert "not.a-jwt" not in str(info.value)
