"""The record of created conversations and the orphan sweep (a driver stands in for the
upstream's delete; the end-to-end sweep runs in tests/accounts/test_sweep.py)."""

from __future__ import annotations

import pytest

from gateway.chat.ledger import CLOSED_GRACE, MAX_AGE, ChatLedger, sweep
from gateway.errors import AccountInUse, GatewayError, UpstreamUnauthorized
from gateway.state import SharedState, open_state
from gateway.upstream.conversation import Conversation
from gateway.upstream.credentials import Credential, parse_one
from tests.upstream.test_credentials import LIVE, jwt


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Deleter:
    """A driver's discard: records what it was asked to delete; fails when told."""

    name = "matrix"

    def __init__(self) -> None:
        self.deleted: list[str | None] = []
        self.fail: GatewayError | None = None

    def discard(self, cred: Credential, conversation: Conversation) -> None:
        if self.fail is not None:
            raise self.fail
        self.deleted.append(conversation.id)


@pytest.fixture
def state() -> SharedState:
    return open_state("")


CRED = parse_one(f"123+{jwt(LIVE)}")


def lease(state: SharedState, holder: str) -> None:
    assert state.try_lease("t-" + holder, [CRED.key], holder, 30).account == CRED.key


def test_only_chats_whose_lease_is_gone_are_swept(state: SharedState) -> None:
    clock, deleter = Clock(), Deleter()
    ledger = ChatLedger(state, clock)
    lease(state, "h1")
    ledger.opened(CRED, Conversation("matrix", "1"), "h1")
    assert sweep(ledger, {"matrix": deleter}) == 0, "its generation still holds the account"
    state.release(CRED.key, "h1")
    lease(state, "h2")  # another generation on the same account
    ledger.opened(CRED, Conversation("matrix", "2"), "h2")
    assert sweep(ledger, {"matrix": deleter}) == 1
    assert deleter.deleted == ["1"] and [r.id for r in ledger.records()] == ["2"]


def test_closed_chats_are_left_to_the_janitor_for_a_grace_period(state: SharedState) -> None:
    clock, deleter = Clock(), Deleter()
    ledger = ChatLedger(state, clock)
    ledger.opened(CRED, Conversation("matrix", "1"), "h1")
    ledger.closed(Conversation("matrix", "1"))
    assert sweep(ledger, {"matrix": deleter}, clock) == 0
    clock.now += CLOSED_GRACE + 1
    assert sweep(ledger, {"matrix": deleter}, clock) == 1 and ledger.records() == []
    ledger.opened(CRED, Conversation("matrix", "3"), "h3")
    ledger.removed(Conversation("matrix", "3"))  # the janitor deleted it
    assert ledger.records() == []


def test_a_busy_chat_is_tried_again_a_refused_one_is_dropped(state: SharedState) -> None:
    clock, deleter = Clock(), Deleter()
    ledger = ChatLedger(state, clock)
    ledger.opened(CRED, Conversation("matrix", "1"), "gone")
    deleter.fail = AccountInUse()
    assert sweep(ledger, {"matrix": deleter}, clock) == 0 and len(ledger.records()) == 1
    clock.now += MAX_AGE + 1
    assert sweep(ledger, {"matrix": deleter}, clock) == 0 and ledger.records() == [], "given up after a day"
    ledger.opened(CRED, Conversation("matrix", "2"), "gone")
    deleter.fail = UpstreamUnauthorized()
    assert sweep(ledger, {"matrix": deleter}, clock) == 0 and ledger.records() == []


def test_records_keep_the_login_to_delete_from_any_host_but_never_show_it(state: SharedState) -> None:
    ledger = ChatLedger(state, Clock())
    ledger.opened(CRED, Conversation("session", "s1"), "h1")
    (record,) = ledger.records()
    assert parse_one(record.login).key == CRED.key
    assert CRED.jwt not in repr(record)


def kept_one(state: SharedState, clock: Clock) -> tuple[ChatLedger, Conversation]:
    ledger, conversation = ChatLedger(state, clock), Conversation("matrix", "k")
    lease(state, "h1")
    ledger.opened(CRED, conversation, "h1")
    ledger.kept(conversation, clock.now + 6)
    state.release(CRED.key, "h1")
    return ledger, conversation


def test_a_kept_chat_is_swept_as_soon_as_its_time_is_up(state: SharedState) -> None:
    clock, deleter = Clock(), Deleter()
    ledger, _ = kept_one(state, clock)
    clock.now += 6
    assert sweep(ledger, {"matrix": deleter}, clock) == 0, "still within its idle time"
    clock.now += 0.01
    assert sweep(ledger, {"matrix": deleter}, clock) == 1 and deleter.deleted == ["k"]
    assert ledger.records() == []


def test_a_claimed_chat_is_not_swept_and_a_swept_one_cannot_be_claimed(state: SharedState) -> None:
    clock, deleter = Clock(), Deleter()
    ledger, conversation = kept_one(state, clock)
    (before,) = ledger.records()
    clock.now += 5.9
    claimed = ledger.claim(conversation, 10)  # a request continues it, waiting for the account
    assert claimed is not None
    clock.now += 1
    assert not ledger.take(before), "the sweep read the record before the claim: it must back off"
    assert sweep(ledger, {"matrix": deleter}, clock) == 0 and deleter.deleted == []
    ledger.unclaim(claimed, clock.now + 6)  # the request went away: kept again
    clock.now += 6.01
    (expired,) = ledger.records()
    assert ledger.take(expired)  # the sweep first ...
    assert ledger.claim(conversation, 10) is None  # ... and a request after it folds instead
