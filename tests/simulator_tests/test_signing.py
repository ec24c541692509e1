"""Tests of the simulator's signing and identity rules against the captured browser traffic.

Role: prove that the simulator verifies every signed request of /work/shared/captures/
vectors.json bit for bit, that it rejects each way of missing the captured rule
(op_ticket, B, unix, region, encoding), that the legacy rule is available as a setting,
and the identity rules of /tmp/session-contract.md (renewal, header vs query token,
busy_msg). Requests come from the independent signer in helpers.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask

from tests.simulator.session_shapes import SESSION_PREFIXES
from tests.simulator.signing import (
    surface_of,
    verify_signatures,
    yy_target,
)
from tests.simulator.signing import (
    yy_body as sim_yy_body,
)
from tests.simulator_tests.helpers import (
    MEMBERSHIP,
    RENEWAL,
    USER_INFO,
    FakeClock,
    Upstream,
    add_accounts,
    flask_transport,
    js_encode,
    legacy_yy_of,
    md5,
    stats,
    with_op_ticket,
    yy_of,
)

ROOT = Path(__file__).resolve().parent.parent.parent
VECTORS = ROOT.parent / "shared" / "captures" / "vectors.json"
CONFIG = "/archon/api/v1/config"
CREATE = "/archon/api/v1/agent/{}/session"


def load_vectors() -> list[dict[str, Any]]:
    if not VECTORS.exists():
        pytest.skip(f"captured vectors not found at {VECTORS} (the shared captures directory "
                    "lives next to the repository)")
    return json.loads(VECTORS.read_text())


def vector_ids() -> list[str]:
    return [f"{i}-{urlsplit(v['url']).path.rsplit('/', 1)[-1]}"
            for i, v in enumerate(json.loads(VECTORS.read_text()))] if VECTORS.exists() else []


def verify_vector(vector: dict[str, Any], *, query: str | None = None,
                  body: str | None = None) -> str | None:
    url = urlsplit(vector["url"])
    origin = f"{url.scheme}://{url.netloc}" if url.netloc.startswith("agent-stream.") else None
    raw_query = url.query if query is None else query
    unix = next(p.split("=", 1)[1] for p in raw_query.split("&") if p.startswith("unix="))
    headers = vector["headers"]
    return verify_signatures(
        variant="captured", signature_mode="bundle",
        surface=surface_of(url.path, SESSION_PREFIXES), path=url.path, raw_query=raw_query,
        body=(vector["body"] if body is None else body).encode("utf-8"),
        timestamp=headers["x-timestamp"], token=headers["token"],
        x_sig=headers["x-signature"], yy=headers["yy"], unix_ms=unix, origin=origin)


# --- The captured vectors ----------------------------------------------------------------------

@pytest.mark.parametrize("index", range(len(vector_ids())) if VECTORS.exists() else [0],
                         ids=vector_ids() or None)
def test_every_captured_vector_verifies_bit_for_bit(index: int) -> None:
    vector = load_vectors()[index]
    assert verify_vector(vector) is None, vector["note"]
    url = urlsplit(vector["url"])
    origin = f"{url.scheme}://{url.netloc}" if url.netloc.startswith("agent-stream.") else None
    inputs = vector["yy_inputs"]
    assert yy_target("captured", url.path, url.query, origin) == inputs["T"]
    surface = surface_of(url.path, SESSION_PREFIXES)
    assert sim_yy_body("captured", surface, vector["body"].encode()).decode() == inputs["B"]
    # The test's own signer agrees (it is what the other tests sign with).
    path = f"{origin}{url.path}" if origin else url.path
    assert yy_of(path, url.query, vector["body"].encode(), inputs["unix_ms"]) == \
        vector["headers"]["yy"]


def test_captured_vectors_fail_when_one_input_changes() -> None:
    vectors = load_vectors()
    get = next(v for v in vectors if v["method"] == "GET")
    query = urlsplit(get["url"]).query
    assert verify_vector(get, query=query.replace("lang=zh", "lang=en")) == "bad_yy"
    post = next(v for v in vectors if v["body"])
    assert verify_vector(post, body=post["body"] + " ") == "bad_signature"


def test_vectors_cover_both_hosts_and_all_surfaces() -> None:
    vectors = load_vectors()
    surfaces = {surface_of(urlsplit(v["url"]).path, SESSION_PREFIXES) for v in vectors}
    assert surfaces == {"api", "matrix", "session"}
    assert any("agent-stream." in v["url"] for v in vectors)


# --- Reject cases over HTTP --------------------------------------------------------------------

def assert_bad(reply: Any, control: Any, reason: str, status: int = 400) -> None:
    assert reply.status == status, reply.raw
    assert stats(control)["rejections"].get(reason) == 1, stats(control)["rejections"]


def test_yy_without_op_ticket_is_bad_yy(up: Upstream, control: Any) -> None:
    assert up.call("GET", USER_INFO).status == 200
    assert_bad(up.call("GET", USER_INFO, yy=legacy_yy_of), control, "bad_yy")


@pytest.mark.parametrize("case", ["get_empty_b", "matrix_reencoded", "session_exact",
                                  "bodyless_post_empty_b"])
def test_wrong_b_is_bad_yy(up: Upstream, control: Any, case: str) -> None:
    def signer(b_of: Any) -> Any:
        def sign(path: str, query: str, body: bytes, unix_ms: str) -> str:
            target = f"{path}?{with_op_ticket(query)}"
            return md5(js_encode(target).encode() + b"_" + b_of(body) + (md5(unix_ms) + "ooui").encode())
        return sign

    if case == "get_empty_b":
        reply = up.call("GET", USER_INFO, yy=signer(lambda body: b""))
    elif case == "matrix_reencoded":
        reply = up.call("POST", "/matrix/api/v1/chat/list_chat", {"page_size": 5},
                        yy=signer(lambda body: json.dumps(body.decode()).encode()))
    elif case == "session_exact":
        reply = up.call("POST", CREATE.format("1"), {"model": "minimax/MiniMax-M3"},
                        yy=signer(lambda body: body))
    else:
        reply = up.call("POST", MEMBERSHIP, yy=signer(lambda body: body))
    assert_bad(reply, control, "bad_yy")


def test_unix_must_be_the_timestamp_in_ms(up: Upstream, control: Any) -> None:
    stamp = str(int(up.clock()))
    reply = up.call("GET", USER_INFO, unix_ms=str(int(stamp) * 1000 + 123))
    assert_bad(reply, control, "unix_not_timestamp")


def test_region_on_matrix_is_a_warning(up: Upstream, control: Any) -> None:
    reply = up.call("GET", USER_INFO, params=lambda p: p + [["region", "cn"]])
    assert reply.status == 200
    assert stats(control)["warnings"] == {"region_on_matrix": 1}


def test_region_missing_on_session_call_is_401(up: Upstream, control: Any) -> None:
    reply = up.call("GET", CONFIG, params=lambda p: [x for x in p if x[0] != "region"])
    assert_bad(reply, control, "missing_param", 401)
    assert reply.raw == b""


def test_region_not_last_on_session_call_is_param_order(up: Upstream, control: Any) -> None:
    def region_first(pairs: list[list[str]]) -> list[list[str]]:
        return [pairs[-1]] + pairs[:-1]

    assert_bad(up.call("GET", CONFIG, params=region_first), control, "param_order")


def test_legacy_variant(app: Flask, up: Upstream, control: Any) -> None:
    assert control.post("/_sim/config", json={"yy_variant": "legacy"}).status_code == 200
    with_region = lambda p: p + [["region", "cn"]]  # noqa: E731  (legacy: on every call)
    assert up.call("GET", USER_INFO, params=with_region, yy=legacy_yy_of).status == 200
    assert up.call("GET", USER_INFO, params=with_region).status == 400  # captured rule now off
    assert stats(control)["warnings"] == {}
    assert control.post("/_sim/config", json={"yy_variant": "other"}).status_code == 400
    control.post("/_sim/reset", json={})
    assert control.get("/_sim/config").get_json()["yy_variant"] == "captured"


# --- Identity ------------------------------------------------------------------------------------

def jwt_payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_renewal_gives_a_later_token_and_the_old_one_keeps_working(
        up: Upstream, control: Any, clock: FakeClock) -> None:
    old = up.account["jwt"]
    reply = up.call("POST", RENEWAL)  # no body, like the browser
    assert reply.status == 200, reply.raw
    new = reply.json()["data"]["token"]
    assert new != old and jwt_payload(new)["exp"] > jwt_payload(old)["exp"]
    assert jwt_payload(new)["user"] == jwt_payload(old)["user"]
    assert up.call("GET", USER_INFO).status == 200  # old token still valid
    # The browser right after renewal: new token in the header, the old one in the query.
    reply = up.call("POST", MEMBERSHIP, headers=lambda h: {**h, "token": new})
    assert reply.status == 200, reply.raw
    up.account = dict(up.account, jwt=new)
    assert up.call("POST", MEMBERSHIP).status == 200
    assert stats(control)["renewals"] == 1


def test_old_token_expires_on_its_own_exp(app: Flask, control: Any, clock: FakeClock) -> None:
    short = add_accounts(control, exp_seconds=60)[0]
    up = Upstream(flask_transport(app), short, clock)
    new = up.call("POST", RENEWAL).json()["data"]["token"]
    clock.advance(61)
    assert up.call("GET", USER_INFO).status == 401
    up.account = dict(short, jwt=new)
    assert up.call("GET", USER_INFO).status == 200


def test_header_and_query_tokens_of_different_accounts(up: Upstream, control: Any) -> None:
    other = add_accounts(control)[0]
    reply = up.call("GET", USER_INFO, headers=lambda h: {**h, "token": other["jwt"]})
    assert_bad(reply, control, "token_mismatch", 401)


def test_busy_msg_fault_says_chat_is_running_with_another_code(up: Upstream, control: Any) -> None:
    control.post("/_sim/faults", json={"endpoint": "send_msg", "kind": "busy_msg"})
    reply = up.send("hi").json()["base_resp"]
    assert reply["status_msg"] == "chat is running" and reply["status_code"] not in (0, 1400010170)
    assert up.send("hi").json()["base_resp"]["status_code"] == 0


def test_simulator_never_imports_the_gateway() -> None:
    for source in (ROOT / "tests" / "simulator").glob("*.py"):
        for line in source.read_text().splitlines():
            words = line.split()
            assert not (words[:1] in (["import"], ["from"]) and len(words) > 1
                        and words[1].split(".")[0] == "gateway"), f"{source.name}: {line}"
