"""The upstream-fault matrix: each fault × each dialect × streamed or not × each surface.

A fault runs on the surfaces it names: the web surfaces' send-then-poll/stream failures,
and the code surface's own (its one /messages call: 429 with Retry-After, 529 retried with
backoff, 500, a drop or hang before the stream; a drop, the quota wall as an error frame or
a silent stall during it; an account whose quota is used up is skipped).

Every case asserts what the client got in its dialect's own shape (an HTTP error before
a stream began, an error frame after), how long it took (within a generous bound), that
no account lease is left and no upstream chat is left alive, and that nothing was
generated twice. The cheap faults cross the whole product; the busy storm, which waits
out the queue timeout, runs for one streamed and one non-stream dialect only (the queue
is the chat core's, before any dialect code runs), on the web surfaces only (a code
account has no busy state); so does a lasting 529, which waits out the code driver's
backoff before any dialect code runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from gateway.upstream.code import OVERLOADED_DELAYS
from gateway.upstream.credentials import parse_one
from tests.conftest import Upstream
from tests.faults.conftest import (
    QUEUE_TIMEOUT,
    READ_TIMEOUT,
    STREAM_IDLE_TIMEOUT,
    Aftermath,
    bound,
)
from tests.faults.dialects import ANTHROPIC, DIALECTS, GEMINI, OPENAI, Dialect, Outcome, ask, expect_error
from tests.secrets import SECRETS_GROUP
from tests.simulator.control import SimulatorControl

pytestmark = pytest.mark.xdist_group(SECRETS_GROUP)

Minter = Callable[..., list[dict]]
#: How the matrix's polls retry a failed poll (gateway/upstream/pacing.py POLL_FAILURE_DELAYS).
POLL_RETRY_SECONDS = 0.25 + 0.5 + 1.0 + 2.0
#: A hang that outlasts the read timeout.
HANG_SECONDS = READ_TIMEOUT + 0.5


@dataclass(frozen=True)
class Expect:
    """What one surface does with a fault: the error kind (None: answered in full),
    whether a streamed request sees it as an in-stream frame (it began before the
    failure), the expected seconds, and whether every chat is gone afterwards (False
    when the upstream made a chat whose id the gateway never learnt)."""

    kind: str | None
    in_stream: bool = False
    seconds: float = 0.5
    chats_cleaned: bool = True
    #: A timeout must not fire early either (the setting is what decides it).
    at_least: float = 0.0


ANSWERED = Expect(None, seconds=1.0)


@dataclass(frozen=True)
class Fault:
    name: str
    arrange: Callable[[SimulatorControl, Upstream, Minter], str]  # -> the credential to use
    expect: dict[str, Expect]
    #: Seconds from the request during which the upstream still acts on it (a hung call
    #: wakes up): waited out, so that it lands in this case and not in the next one.
    linger: float = 0.0
    #: A slow fault whose wait happens before any dialect code runs: one streamed and one
    #: non-stream dialect only (its error's shape in each dialect is another case's).
    few_dialects: bool = False

    def __str__(self) -> str:
        return self.name


def _one(accounts: Minter, **options: object) -> str:
    return str(accounts(1, **options)[0]["credential"])


def _send_5xx(count: int) -> Callable[[SimulatorControl, Upstream, Minter], str]:
    def arrange(sim: SimulatorControl, upstream: Upstream, accounts: Minter) -> str:
        sim.fault(upstream.send_fault, "http_500", count=count)
        return _one(accounts)
    return arrange


def _send_status(kind: str, count: int) -> Callable[[SimulatorControl, Upstream, Minter], str]:
    def arrange(sim: SimulatorControl, upstream: Upstream, accounts: Minter) -> str:
        sim.fault(upstream.send_fault, kind, count=count)
        return _one(accounts)
    return arrange


def _send_fault(kind: str, seconds: float | None = None) -> Callable[[SimulatorControl, Upstream, Minter], str]:
    def arrange(sim: SimulatorControl, upstream: Upstream, accounts: Minter) -> str:
        sim.fault(upstream.send_fault, kind, seconds=seconds)
        return _one(accounts)
    return arrange


def _answer_5xx(count: int) -> Callable[[SimulatorControl, Upstream, Minter], str]:
    def arrange(sim: SimulatorControl, upstream: Upstream, accounts: Minter) -> str:
        sim.script([{"length": 300, "cps": 600}])
        sim.fault(upstream.answer_fault, "http_502", count=count)
        return _one(accounts)
    return arrange


def _scripted(answer: dict[str, object]) -> Callable[[SimulatorControl, Upstream, Minter], str]:
    def arrange(sim: SimulatorControl, upstream: Upstream, accounts: Minter) -> str:
        sim.script([answer])
        return _one(accounts)
    return arrange


def _empty_then_full(sim: SimulatorControl, upstream: Upstream, accounts: Minter) -> str:
    # A web account without credits; a code account whose coding-plan quota is used up.
    empty_option = {"quota_left": 0} if upstream.surface == "code" else {"credits": 0}
    empty, full = accounts(1, **empty_option) + accounts(1)
    return f"{empty['credential']},{full['credential']}"


def _expiring(sim: SimulatorControl, upstream: Upstream, accounts: Minter) -> str:
    # Expires within MINIMAX_RENEW_BEFORE (a day): the gateway trades it for a new one first.
    return _one(accounts, exp_seconds=600)


SAME = "same on both surfaces"
FAULTS: tuple[Fault, ...] = (
    # A 5xx on the send may have created a chat: never sent again, reported at once.
    Fault("send-5xx-once", _send_5xx(1), {"matrix": Expect("upstream"), "session": Expect("upstream"),
                                          "code": Expect("upstream")}),
    Fault("send-5xx-whole-turn", _send_5xx(50), {"matrix": Expect("upstream"), "session": Expect("upstream")}),
    # The session surface's answer is the send's own response: a 5xx there fails the send.
    Fault("answer-5xx-once", _answer_5xx(1), {"matrix": ANSWERED, "session": Expect("upstream")}),
    Fault("answer-5xx-whole-turn", _answer_5xx(50), {
        "matrix": Expect("upstream", in_stream=True, seconds=POLL_RETRY_SECONDS + 1),
        "session": Expect("upstream")}),
    Fault("send-hang", _send_fault("hang", HANG_SECONDS), {
        # The hung send_msg creates its chat once it wakes; its id never reached the
        # gateway, and only recorded chats are ever deleted.
        "matrix": Expect("timeout", seconds=READ_TIMEOUT, chats_cleaned=False, at_least=READ_TIMEOUT),
        "session": Expect("timeout", seconds=READ_TIMEOUT, at_least=READ_TIMEOUT),
        "code": Expect("timeout", seconds=READ_TIMEOUT, at_least=READ_TIMEOUT)}, linger=HANG_SECONDS + 0.3),
    Fault("send-dropped", _send_fault("drop"), {"matrix": Expect("unavailable"), "session": Expect("unavailable"),
                                                "code": Expect("unavailable")}),
    # The send took effect and its answer was lost: not sent again (it might run twice).
    Fault("send-dropped-after", _send_fault("drop_after"), {
        "matrix": Expect("unavailable", chats_cleaned=False), "session": Expect("unavailable")}),
    # A matrix poll that drops is simply polled again; a session stream that drops is lost.
    Fault("answer-dropped", _scripted({"length": 1500, "cps": 600, "fault": "drop_mid"}), {
        "matrix": Expect(None, seconds=3.0), "session": Expect("unavailable", in_stream=True, seconds=1.0),
        "code": Expect("unavailable", in_stream=True, seconds=1.0)}),
    # The upstream goes silent mid-answer (no frame, no heartbeat; on matrix one poll hangs).
    Fault("answer-stalls", _scripted({"length": 400, "cps": 400, "fault": "hang_mid", "fault_seconds": 4.0}), {
        "matrix": Expect(None, seconds=READ_TIMEOUT + 1.5),
        "session": Expect("timeout", in_stream=True, seconds=STREAM_IDLE_TIMEOUT + 0.5,
                          at_least=STREAM_IDLE_TIMEOUT),
        "code": Expect("timeout", in_stream=True, seconds=STREAM_IDLE_TIMEOUT + 0.5, at_least=STREAM_IDLE_TIMEOUT)}),
    Fault("no-credits-on-one-account", _empty_then_full, {"matrix": ANSWERED, "session": ANSWERED, "code": ANSWERED}),
    Fault("token-expiring", _expiring, {"matrix": ANSWERED, "session": ANSWERED}),
    # The code surface's own answers (page §2's error table).
    Fault("rate-limited", _send_fault("http_429", 5), {"code": Expect("rate_limit")}),
    # 529 (overloaded) is retried with backoff before anything streams; a lasting one is 503.
    Fault("overloaded-once", _send_status("http_529", 1), {"code": Expect(None, seconds=OVERLOADED_DELAYS[0] + 1)}),
    Fault("overloaded", _send_status("http_529", 50), {
        "code": Expect("unavailable", seconds=sum(OVERLOADED_DELAYS), at_least=sum(OVERLOADED_DELAYS))},
        few_dialects=True),
    # The quota wall as an in-stream error frame once the answer showed.
    Fault("answer-error-frame", _scripted({"length": 1500, "cps": 600, "fault": "error_mid"}), {
        "code": Expect("quota", in_stream=True, seconds=1.0)}),
)
#: (dialect, streamed) of a slow fault's cases.
FEW_DIALECTS = ((ANTHROPIC, True), (GEMINI, False))
#: Every (surface, fault, dialect, streamed) case: each fault on the surfaces it names.
CASES = [(surface, fault, dialect, stream) for fault in FAULTS for surface in fault.expect
         for dialect in DIALECTS for stream in (False, True)
         if not fault.few_dialects or (dialect, stream) in FEW_DIALECTS]


@pytest.mark.parametrize(("surface", "fault", "dialect", "stream"), CASES, indirect=["surface"],
                         ids=[f"{s}-{f}-{d}-{'stream' if st else 'whole'}" for s, f, d, st in CASES])
def test_upstream_fault(fault: Fault, dialect: Dialect, stream: bool, fault_gateway: str, sim: SimulatorControl,
                        upstream: Upstream, accounts: Minter, aftermath: Aftermath) -> None:
    credential = fault.arrange(sim, upstream, accounts)
    expect = fault.expect[upstream.surface]
    outcome = ask(fault_gateway, dialect, credential, stream)
    time.sleep(max(0.0, fault.linger - outcome.seconds))
    if expect.kind is None:
        assert_answered(outcome, sim)
    else:
        expect_error(outcome, dialect, expect.kind, in_stream=stream and expect.in_stream)
    assert expect.at_least <= outcome.seconds < bound(expect.seconds), outcome
    aftermath.settled([credential], chats=expect.chats_cleaned)
    assert len(sim.log()) <= 1, "a turn was generated twice"


def assert_answered(outcome: Outcome, sim: SimulatorControl) -> None:
    (entry,) = sim.log()
    assert (outcome.status, outcome.error, outcome.finished) == (200, None, True), outcome
    assert outcome.text == entry["answer"]


def test_token_expiring_is_renewed_then_revoked_is_401(fault_gateway: str, sim: SimulatorControl, surface: str,
                                                       accounts: Minter, aftermath: Aftermath) -> None:
    """Renewed before it expires; once the upstream stops accepting it, every dialect says
    so in its own 401 (dialect-independent past the first request, so one loop). A MiniMax
    Code access token a client gives is used as it is (never renewed): only its end."""
    (account,) = accounts(1) if surface == "code" else accounts(1, exp_seconds=600)
    assert_answered(ask(fault_gateway, OPENAI, account["credential"], True), sim)
    if surface != "code":
        assert sim.stats()["renewals"] >= 1
    aftermath.settled([account["credential"]])  # its chat deleted while the token still works
    if surface == "code":
        sim.patch_code_account(account["name"], expire_access=True)
    else:
        sim.patch_account(account["real_user_id"], expired=True)
    for dialect in DIALECTS:
        outcome = ask(fault_gateway, dialect, account["credential"], False)
        expect_error(outcome, dialect, "authentication", in_stream=False)
        assert outcome.seconds < bound(0.5)
    state = aftermath.state.accounts([parse_one(account["credential"]).key])
    assert not any(view.leased for view in state.values())
    assert len(sim.log()) == 1


# One streamed and one non-stream dialect: the queue is dialect-independent and each
# case waits out the whole queue timeout.
@pytest.mark.parametrize(("dialect", "stream"), [(ANTHROPIC, True), (GEMINI, False)], ids=["anthropic-stream",
                                                                                          "gemini-whole"])
def test_busy_storm(dialect: Dialect, stream: bool, fault_gateway: str, sim: SimulatorControl,
                    accounts: Minter, aftermath: Aftermath, web_only: None) -> None:
    """Every account of a pool busy upstream: concurrent requests all get 429 once the
    queue timeout passes, and no turn is ever started twice."""
    pool = ",".join(account["credential"] for account in accounts(3, busy=True))
    with ThreadPoolExecutor(4) as executor:
        outcomes = list(executor.map(lambda _: ask(fault_gateway, dialect, pool, stream), range(4)))
    for outcome in outcomes:
        expect_error(outcome, dialect, "rate_limit", in_stream=False)
        assert QUEUE_TIMEOUT * 0.8 <= outcome.seconds < bound(QUEUE_TIMEOUT), outcome
    stats = sim.stats()
    assert stats["busy_rejections"] >= 1 and stats["sends"] == 0 and not sim.log()
    aftermath.settled([pool])


def test_busy_storm_clears(fault_gateway: str, sim: SimulatorControl, accounts: Minter,
                           aftermath: Aftermath, web_only: None) -> None:
    """Busy accounts that free up within the queue timeout answer the waiting request."""
    made = accounts(2, busy=True)
    for account in made:
        threading.Timer(0.8, lambda a=account: sim.patch_account(a["real_user_id"], busy=False)).start()
    pool = ",".join(account["credential"] for account in made)
    outcome = ask(fault_gateway, OPENAI, pool, True)
    assert_answered(outcome, sim)
    assert outcome.seconds < bound(1.5)
    aftermath.settled([pool])
