"""The secrets sweep: nothing the fault matrix and the fuzz run saw shows a secret.

Runs last, in the same xdist worker as the recording tests (`tests.secrets`): every
response status line, header and body, stream text and exception text they recorded,
every gateway log line written in this session and the metrics of every gateway still
up are searched for each minted credential, JWT and JWT segment, each client API key, and
any JWT at all.
"""

from __future__ import annotations

import pytest
import requests

from tests.conftest import GATEWAY_URLS, GATEWAYS, MINTED
from tests.secrets import EXPOSED, SECRETS_GROUP, leaks, secrets_of

pytestmark = [pytest.mark.last, pytest.mark.xdist_group(SECRETS_GROUP)]


def metrics_texts() -> list[tuple[str, str]]:
    """Each live gateway's /metrics (labels included); a stopped gateway is skipped."""
    texts = []
    for url in GATEWAY_URLS:
        try:
            texts.append((f"{url}/metrics", requests.get(url + "/metrics", timeout=10).text))
        except requests.ConnectionError:
            continue
    return texts


@pytest.mark.surfaces("session")
def test_no_secret_in_anything_the_fault_matrix_and_fuzz_saw(gateway: str) -> None:
    if not EXPOSED:
        pytest.skip("run with tests/faults and tests/system/test_fuzz.py: nothing was recorded")
    # The gateways of surfaces this worker finished with are stopped by now (pytest tears a
    # parametrised session fixture down between its values): one live gateway, asked once,
    # makes sure a real /metrics page is searched too.
    requests.get(gateway + "/v1/models", timeout=10)
    logs = [(proc.log_path.name, proc.log()) for proc in GATEWAYS]
    metrics = metrics_texts()
    assert metrics and any("gateway_requests_total" in text for _, text in metrics)
    found = leaks([*EXPOSED, *logs, *metrics], secrets_of(MINTED))
    assert not found, "secrets shown:\n" + "\n".join(found)


def test_the_sweep_finds_what_it_looks_for() -> None:
    """The search itself: a credential, a JWT segment, any JWT, a key are each found."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWxpY2UifQ.c2lnbmF0dXJlLXZhbHVl"
    minted = [{"credential": "cred-0123456789", "jwt": jwt}]
    secrets = secrets_of(minted)
    assert leaks([("a", "x cred-0123456789 y")], secrets) == ["a: a minted secret"]
    assert leaks([("b", "only eyJ1c2VyIjoiYWxpY2UifQ here")], secrets) == ["b: a minted secret"]
    assert leaks([("c", "renewed eyJhbGciOiJFUzI1NiJ9.eyJvdGhlciI6dHJ1ZX0.c2lnbmF0dXJl")], set()) == ["c: a JWT"]
    assert leaks([("d", "nothing to see, Bearer ***")], secrets) == []


def test_the_sweep_finds_minimax_code_tokens() -> None:
    """A minted code account's tokens, and any refreshed mmoat_/mmort_ token, are found;
    their masked forms are not."""
    minted = [{"credential": "mmoat_minted0123456789", "access_token": "mmoat_minted0123456789",
               "refresh_token": "mmort_minted0123456789"}]
    secrets = secrets_of(minted)
    assert "mmort_minted0123456789" in secrets
    assert "a: a minted secret" in leaks([("a", "x mmort_minted0123456789 y")], secrets)
    assert leaks([("b", "refreshed mmoat_Zx9-new_token_value")], set()) == ["b: a MiniMax Code token"]
    assert leaks([("c", "refreshed mmort_Zx9-new_token_value")], set()) == ["c: a MiniMax Code token"]
    assert leaks([("d", "account mmoa…alue, key 1a2b3c4d5e6f")], secrets) == []
