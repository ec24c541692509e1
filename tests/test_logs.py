"""Credentials never reach a log line: checked over every gateway log of the session."""

import pytest

from tests.conftest import GATEWAYS, MINTED


@pytest.mark.last
def test_no_credential_in_any_gateway_log() -> None:
    if not GATEWAYS or not MINTED:
        pytest.skip("run with the end-to-end tests: no gateway ran in this session")
    logs = {proc.log_path.name: proc.log() for proc in GATEWAYS}
    assert any("POST /v1/chat/completions" in text for text in logs.values())
    for account in MINTED:
        jwt = account["jwt"]
        secrets = (account["credential"], jwt, jwt.split(".")[1], jwt.split(".")[2])
        for name, text in logs.items():
            for secret in secrets:
                assert secret not in text, f"a credential appears in {name}"
