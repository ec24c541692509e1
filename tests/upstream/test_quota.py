"""Quota of MiniMax Code accounts (gateway/upstream/quota.py and quota_shapes.py, UPSTREAM-CODE.md §4).

First the reading of answers, on examples built from the page and from the public
clients it cites (every plausible form: ``data`` wrappers, camelCase, strings, ms or s,
the ambiguous ``usage_count``, unlimited windows, a plan-less bucket), and the mcode
query and signatures checked against the page's formulas computed here independently.
Then end to end against the simulator's account host (which checks the 13-parameter
query, the signatures, the Bearer and X-Group-Id): a client-given token's reading, a
spent quota, an unknown token, the catalogue, a signed-in account whose refused token is
refreshed once, and a revoked sign-in that ends dead.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest

from gateway.errors import (
    AuthenticationFailed,
    GatewayError,
    QuotaExhausted,
    UpstreamBadAnswer,
    UpstreamError,
    UpstreamServerError,
    UpstreamUnauthorized,
)
from gateway.state import open_state
from gateway.upstream.credentials import parse_one, signed_in
from gateway.upstream.oauth import OAuthClient, TokenPair
from gateway.upstream.quota import (
    WORKSPACE_TTL_SECONDS,
    QuotaReader,
    classify_answer,
    mcode_query,
    mcode_signatures,
)
from gateway.upstream.quota_shapes import (
    Quota,
    buckets,
    describe,
    model_ids,
    parse_quota,
    personal_workspace,
    real_user_id,
    used_count,
)
from gateway.upstream.settings import CodeSettings
from gateway.upstream.signins import SignIns
from tests.simulator.control import SimulatorControl

HOUR_MS = 3_600_000
END_MS = 1_767_286_800_000  # 2026-01-01 17:00 UTC
WEEK_END_MS = END_MS + 6 * 24 * HOUR_MS


def row(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "model_name": "general", "start_time": END_MS - 5 * HOUR_MS, "end_time": END_MS,
        "remains_time": 2 * HOUR_MS, "current_interval_total_count": 600,
        "current_interval_usage_count": 450, "current_interval_remaining_percent": 75,
        "current_interval_status": 1, "weekly_start_time": WEEK_END_MS - 7 * 24 * HOUR_MS,
        "weekly_end_time": WEEK_END_MS, "current_weekly_total_count": 6000,
        "current_weekly_usage_count": 5400, "current_weekly_remaining_percent": 90,
        "current_weekly_status": 1,
    }
    base.update(fields)
    return base


MEMBERSHIP = {
    "base_resp": {"status_code": 0, "status_msg": "success"},
    "data": {"has_token_plan": True, "token_plan_tier": "Plus", "token_plan_expires_at": 1_798_761_600_000,
             "op_credit_summary": {"total_remaining_amount": "1234.50", "free_remaining_amount": "34.5",
                                   "purchased_remaining_amount": "1200.00"}},
}
REMAINS = {"base_resp": {"status_code": 0, "status_msg": "success"},
           "model_remains": [row(), row(model_name="video", current_interval_total_count=5,
                                        current_interval_usage_count=5, current_interval_remaining_percent=100)]}


def test_a_full_reading() -> None:
    quota = parse_quota(classify_answer(200, json.dumps(MEMBERSHIP).encode()),
                        classify_answer(200, json.dumps(REMAINS).encode()), now=100.0)
    assert quota.plan_tier == "Plus" and quota.has_token_plan is True
    assert quota.plan_expires_at == 1_798_761_600.0
    assert (quota.credits, quota.credits_free, quota.credits_purchased) == ("1234.50", "34.5", "1200.00")
    assert [b.name for b in quota.buckets] == ["general", "video"]
    interval, weekly = quota.windows
    # usage_count 450 of 600 with 75 % left: the count is the *remaining* one.
    assert (interval.name, interval.used, interval.total, interval.percent) == ("interval", 150, 600, 25.0)
    assert interval.resets_at == END_MS / 1000
    assert (weekly.used, weekly.total, weekly.percent, weekly.resets_at) == (600, 6000, 10.0, WEEK_END_MS / 1000)
    assert not quota.exhausted and quota.percent == 25.0 and quota.resets_at == END_MS / 1000
    assert "plan Plus" in describe(quota) and "interval: 25% used" in describe(quota)


def test_the_count_can_be_the_used_one_too() -> None:
    # Newer answers: usage_count = used; the remaining percent says which.
    assert used_count(150, 600, 75) == 150
    assert used_count(450, 600, 75) == 150
    # Without a percentage the official client's reading (remaining) holds.
    assert used_count(450, 600, None) == 150
    # Counts that agree with neither reading are not invented.
    assert used_count(300, 600, 90) is None
    assert used_count(700, 600, None) is None and used_count(5, 0, None) is None


def test_an_exhausted_window_names_when_it_resets() -> None:
    spent = row(current_interval_usage_count=0, current_interval_remaining_percent=0)
    quota = parse_quota({}, {"model_remains": [spent]}, now=0.0)
    assert quota.exhausted and quota.percent == 100.0
    assert quota.resets_at == END_MS / 1000
    weekly_spent = row(current_weekly_usage_count=0, current_weekly_remaining_percent=0)
    assert parse_quota({}, {"model_remains": [weekly_spent]}, 0.0).resets_at == WEEK_END_MS / 1000


def test_status_3_is_unlimited_and_never_exhausted() -> None:
    unlimited = row(current_interval_status=3, current_interval_remaining_percent=0,
                    current_interval_usage_count=0)
    (interval, _) = parse_quota({}, {"model_remains": [unlimited]}, 0.0).windows
    assert interval.unlimited and not interval.exhausted


def test_a_bucket_outside_the_plan_is_skipped() -> None:
    # Both windows "unlimited" at a total of 0: a resource the plan does not include.
    empty = {"model_name": "video", "current_interval_status": 3, "current_weekly_status": 3,
             "current_interval_total_count": 0, "current_weekly_total_count": 0}
    assert [b.name for b in buckets({"model_remains": [empty, row()]})] == ["general"]


def test_without_general_the_first_bucket_counts() -> None:
    quota = parse_quota({}, {"model_remains": [row(model_name="MiniMax-M3")]}, 0.0)
    assert quota.general is not None and quota.general.name == "MiniMax-M3"


@pytest.mark.parametrize("remains", [
    {"data": {"model_remains": [row()]}},
    {"modelRemains": [{"modelName": "general", "currentIntervalTotalCount": "600",
                       "currentIntervalUsageCount": "450", "currentIntervalRemainingPercent": "75%",
                       "endTime": str(END_MS // 1000)}]},
])
def test_other_plausible_forms(remains: dict[str, object]) -> None:
    data = classify_answer(200, json.dumps(remains).encode())
    interval = parse_quota({}, data, 0.0).windows[0]
    assert (interval.used, interval.total, interval.percent) == (150, 600, 25.0)
    assert interval.resets_at == END_MS / 1000


def test_a_boosted_weekly_window() -> None:
    boosted = row(weekly_boost_permille=2000, current_weekly_remaining_percent=60,
                  current_weekly_usage_count=3600)
    weekly = parse_quota({}, {"model_remains": [boosted]}, 0.0).window("weekly")
    assert weekly is not None and weekly.percent == -20.0 and not weekly.exhausted


@pytest.mark.parametrize("remains", [{}, {"model_remains": "nope"}, {"model_remains": [None, 3, "x"]},
                                     {"model_remains": [{"model_name": "general"}]}])
def test_missing_or_broken_fields_give_an_empty_reading(remains: dict[str, object]) -> None:
    quota = parse_quota({"op_credit_summary": {"total_remaining_amount": "NaNx"}}, remains, 0.0)
    assert quota.windows == () and quota.percent is None and not quota.exhausted
    assert quota.resets_at is None and quota.credits is None and quota.plan_tier is None


def test_iso_and_second_times() -> None:
    quota = parse_quota({"token_plan_expires_at": "2027-01-01T00:00:00Z"}, {}, 0.0)
    assert quota.plan_expires_at == 1_798_761_600.0
    assert parse_quota({"tokenPlanExpiresAt": 1_798_761_600}, {}, 0.0).plan_expires_at == 1_798_761_600.0


def test_a_reading_survives_the_shared_state() -> None:
    quota = parse_quota(MEMBERSHIP["data"], REMAINS, now=5.0)  # type: ignore[arg-type]
    again = Quota.from_json(quota.as_json())
    assert again == quota
    assert Quota.from_json("{") is None and Quota.from_json('{"nope": 1}') is None


# --- account info ----------------------------------------------------------------------------


def test_the_personal_workspace_is_type_0() -> None:
    extra = {"workspaces": [
        {"workspace_id": 77, "workspace_type": 1, "op_group_id": "999"},
        {"workspace_id": 42, "workspace_type": 0, "op_group_id": 1_946_000_000_000_000_001,
         "has_token_plan": True},
    ]}
    space = personal_workspace(classify_answer(200, json.dumps({"data": extra}).encode()), "3001")
    assert (space.user_id, space.workspace_id, space.op_group_id, space.has_token_plan) == \
        ("3001", "42", "1946000000000000001", True)


def test_a_workspace_in_another_form() -> None:
    extra = {"workspaceList": [{"workspaceId": "w-1", "workspaceType": "0", "opGroupId": "g-1"}]}
    space = personal_workspace(extra, "0")
    assert (space.workspace_id, space.op_group_id, space.has_token_plan) == ("w-1", "g-1", None)
    assert personal_workspace({}, "0").op_group_id is None


@pytest.mark.parametrize(("info", "expected"), [
    ({"userInfo": {"realUserID": "1846000000000003921", "name": "x"}}, "1846000000000003921"),
    ({"user_info": {"real_user_id": 1846000000000003921}}, "1846000000000003921"),
    ({"userInfo": {"realUserID": "abc"}}, None),
    ({}, None),
])
def test_the_real_user_id(info: dict[str, object], expected: str | None) -> None:
    assert real_user_id(info) == expected


# --- answers and errors ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_signed_out(status: int) -> None:
    with pytest.raises(UpstreamUnauthorized, match="log in again"):
        classify_answer(status, b'{"code":401,"message":"token is required"}')


def test_need_login_is_signed_out() -> None:
    with pytest.raises(UpstreamUnauthorized):
        classify_answer(200, b'{"statusInfo":{"code":1000048,"message":"need login"}}')


def test_a_business_error_is_an_error() -> None:
    with pytest.raises(UpstreamError, match="1004"):
        classify_answer(200, b'{"base_resp":{"status_code":1004,"status_msg":"cookie is missing"}}')
    with pytest.raises(QuotaExhausted):
        classify_answer(200, b'{"base_resp":{"status_code":2056,"status_msg":"usage limit exceeded"}}')


def test_non_json_answers() -> None:
    with pytest.raises(UpstreamBadAnswer):
        classify_answer(200, b"<html>")
    with pytest.raises(UpstreamServerError, match="HTTP 502"):
        classify_answer(502, b"bad gateway")
    with pytest.raises(UpstreamBadAnswer, match="HTTP 404"):
        classify_answer(404, b"not found")


def test_catalogue_model_ids() -> None:
    answer = {"providers": [{"providerId": "minimax", "config": {"models": {"MiniMax-M3": {}, "MiniMax-M2.7": {}}}}]}
    assert model_ids(answer) == ["MiniMax-M3", "MiniMax-M2.7"]
    assert model_ids({"providers": "x"}) == [] and model_ids({}) == []


# --- the mcode query and signatures -----------------------------------------------------------


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - the protocol's


def test_the_query_has_the_13_parameters_in_the_clients_order() -> None:
    query = mcode_query("global", "1846", 1_767_268_800_123)
    assert query == ("device_platform=mcode&biz_id=3&app_id=3001&version_code=22201&unix=1767268800123"
                     "&timezone_offset=0&sys_language=en&lang=en&device_id=0&os_name=linux"
                     "&browser_name=mcode&user_id=1846&client=mcode")
    assert "lang=zh" in mcode_query("cn", "0", 1) and "timezone_offset=28800" in mcode_query("cn", "0", 1)
    assert "token" not in query


def test_the_signatures_follow_the_page() -> None:
    ms = 1_767_268_800_123
    target = "/matrix/api/v1/user/get_user_extra_info?" + mcode_query("cn", "0", ms)
    body = '{"workspace_id":42}'
    signed = mcode_signatures(target, body, ms)
    assert signed["x-timestamp"] == "1767268800"
    assert signed["x-signature"] == md5("1767268800" + "I*7Cf%WZ#S&%1RlZJ&C2" + body)
    assert signed["yy"] == md5(quote(target, safe="-_.!~*'()") + "_" + body + md5(str(ms)) + "ooui")
    # GET: yy signs {} and x-signature no body.
    get = mcode_signatures(target, None, ms)
    assert get["x-signature"] == md5("1767268800" + "I*7Cf%WZ#S&%1RlZJ&C2")
    assert get["yy"] == md5(quote(target, safe="-_.!~*'()") + "_{}" + md5(str(ms)) + "ooui")


# --- against the simulator ---------------------------------------------------------------------


def code_settings(url: str, region: str = "cn") -> CodeSettings:
    return CodeSettings(region=region, account_url=url, code_url=url, quota_url=url, matrix_url=url,
                        client_id="mcode-public", refresh_before=300.0, user_agent="quota-tests/1.0",
                        probe_web_tokens=False, connect_timeout=5.0, read_timeout=15.0, catalogue_ttl=300.0)


@pytest.fixture
def reader(simulator_url: str) -> Iterator[QuotaReader]:
    quota_reader = QuotaReader({"cn": code_settings(simulator_url)}, "cn")
    yield quota_reader
    quota_reader.close()


def test_a_client_token_reads_plan_credits_and_windows(sim: SimulatorControl, reader: QuotaReader) -> None:
    (account,) = sim.add_code_accounts(1, quota=600, quota_left=450)
    quota = reader.read(parse_one(account["access_token"]))
    assert quota.plan_tier == "plus" and quota.has_token_plan is True
    assert quota.credits is not None and Decimal(quota.credits) == Decimal("4.50")
    interval, weekly = quota.windows
    assert (interval.used, interval.total, interval.percent) == (150, 600, 25.0)
    assert (weekly.total, weekly.percent) == (6000, 25.0)  # its counts disagree with its percent: not used
    assert interval.resets_at is not None and interval.resets_at > time.time()
    assert not quota.exhausted
    stats = sim.code_stats()
    assert not stats["rejections"].get("mcode_refusals") and not stats.get("warnings", {}).get("mcode_user_id_zero")
    assert stats["quota_calls"] == 1


def test_a_spent_quota_is_exhausted_until_its_window_resets(sim: SimulatorControl, reader: QuotaReader) -> None:
    (account,) = sim.add_code_accounts(1, quota=600, quota_left=0)
    quota = reader.read(parse_one(account["access_token"]))
    assert quota.exhausted and quota.percent == 100.0
    # The simulator spends both windows: the account answers again when the later one resets.
    weekly = quota.window("weekly")
    assert weekly is not None and weekly.exhausted and quota.resets_at == weekly.resets_at


def test_an_unknown_token_is_signed_out(sim: SimulatorControl, reader: QuotaReader) -> None:
    with pytest.raises(UpstreamUnauthorized, match="log in again"):
        reader.read(parse_one("mmoat_" + "x" * 54))


def test_the_catalogue_lists_the_models(sim: SimulatorControl, reader: QuotaReader) -> None:
    (account,) = sim.add_code_accounts(1)
    assert "MiniMax-M3" in reader.models(parse_one(account["access_token"]))


def signins_over(state_url: str, settings: CodeSettings) -> SignIns:
    return SignIns(open_state(state_url), {"cn": OAuthClient(settings)}, refresh_before=300.0)


def test_a_signed_in_account_refreshes_once_when_refused(sim: SimulatorControl, simulator_url: str,
                                                         tmp_path: Path) -> None:
    settings = code_settings(simulator_url)
    (account,) = sim.add_code_accounts(1, quota=100, quota_left=40)
    signins = signins_over(f"sqlite:///{tmp_path}/state.db", settings)
    tokens = TokenPair(account["access_token"], account["refresh_token"], time.time() + 3600, "agent.default")
    signins.add("alice", "cn", tokens)
    sim.patch_code_account(account["name"], expire_access=True)  # the stored token is refused now
    reader = QuotaReader({"cn": settings}, "cn", signins)
    quota = reader.read(signed_in("alice"))
    assert quota.window("interval") is not None and quota.percent == 60.0
    assert sim.code_stats()["refreshes"] == 1
    sign_in = signins.get("alice")
    assert sign_in is not None and sign_in.tokens.access_token != account["access_token"]


def test_a_revoked_sign_in_is_dead(sim: SimulatorControl, simulator_url: str, tmp_path: Path) -> None:
    settings = code_settings(simulator_url)
    (account,) = sim.add_code_accounts(1)
    signins = signins_over(f"sqlite:///{tmp_path}/state.db", settings)
    signins.add("bob", "cn", TokenPair(account["access_token"], account["refresh_token"], time.time() + 3600,
                                       "agent.default"))
    sim.patch_code_account(account["name"], expire_access=True, revoke=True)
    with pytest.raises(AuthenticationFailed):
        QuotaReader({"cn": settings}, "cn", signins).read(signed_in("bob"))
    sign_in = signins.get("bob")
    assert sign_in is not None and sign_in.state == "dead"


def test_workspace_ids_are_asked_again_after_an_hour_or_a_failure(sim: SimulatorControl, simulator_url: str) -> None:
    (account,) = sim.add_code_accounts(1)
    now = [time.time()]
    reader = QuotaReader({"cn": code_settings(simulator_url)}, "cn", clock=lambda: now[0])
    cred = parse_one(account["access_token"])
    reader.read(cred)
    reader.read(cred)
    assert sim.code_stats()["mcode_extra_info"] == 1
    now[0] += WORKSPACE_TTL_SECONDS
    reader.read(cred)
    assert sim.code_stats()["mcode_extra_info"] == 2
    sim.fault("code_quota", "http_500")  # the membership call of the next reading
    with pytest.raises(UpstreamError):
        reader.read(cred)
    reader.read(cred)
    assert sim.code_stats()["mcode_extra_info"] == 3
    reader.close()


@pytest.mark.parametrize("kind", ["drop", "http_502"])
def test_transport_failures_are_gateway_errors(sim: SimulatorControl, reader: QuotaReader, kind: str) -> None:
    (account,) = sim.add_code_accounts(1)
    sim.fault("code_quota", kind)
    with pytest.raises(GatewayError) as raised:
        reader.read(parse_one(account["access_token"]))
    assert account["access_token"] not in str(raised.value) and "://" not in str(raised.value)
    assert reader.read(parse_one(account["access_token"])).windows  # the next reading works
