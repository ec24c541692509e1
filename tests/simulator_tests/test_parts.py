"""Unit tests of the parts `SimState` is composed of, each on its own, without HTTP.

Role: `tests/simulator/tally.py`, `scripts.py`, `faults.py`, `accounts.py`, `chats.py`
and `generations.py`; the behaviour they add up to is tested through the HTTP surface in
test_state.py and the others.
"""

from __future__ import annotations

import random

import pytest

from tests.simulator.accounts import AccountBook
from tests.simulator.chats import ChatBook, ChatIds, SessionBook
from tests.simulator.faults import FaultBoard
from tests.simulator.generations import Generations, TurnRequest
from tests.simulator.protocol import Refusal
from tests.simulator.scripts import AnswerSpec, ScriptQueue, parse_answer
from tests.simulator.settings import LiveConfig, SimSettings
from tests.simulator.tally import REQUEST_PATH_KEYS_CAP, Tally

T0: float = 1_800_000_000.0


def _turn(text: str = "hi") -> TurnRequest:
    return TurnRequest(text, (), False, None, None)


def test_tally_caps_request_paths_and_counts_refusals() -> None:
    tally = Tally()
    for index in range(REQUEST_PATH_KEYS_CAP + 5):
        tally.request(f"/p{index}")
    assert tally.reasons()["requests"]["<other>"] == 5
    refusal = tally.refuse(1, "no", "some_reason")
    with pytest.raises(Refusal):
        tally.counted(lambda: (_ for _ in ()).throw(refusal))
    assert tally.reasons()["rejections"] == {"some_reason": 2}
    tally.clear()
    assert tally.reasons()["requests"] == {} and tally.counters()["sends"] == 0


def test_script_queue_order_account_then_global_then_default() -> None:
    queue, default = ScriptQueue(), parse_answer({"text": "default"})
    queue.set_default(default)
    assert queue.add([parse_answer({"text": "g"})], None) == 1
    assert queue.add([parse_answer({"text": "a1"}), parse_answer({"text": "a2"})], "acct") == 2
    texts = [queue.next_for("acct").text for _ in range(4)]
    assert texts == ["a1", "a2", "g", "default"]
    assert queue.next_for("other") is default


def test_fault_board_takes_oldest_matching_and_counts() -> None:
    tally = Tally()
    board = FaultBoard(tally)
    board.add("send_msg", "http_500", 1, None)
    assert board.add("*", "hang", 2, 1.5) == 3
    first, second = board.take("send_msg"), board.take("send_msg")
    assert (first and first.kind, second and second.kind) == ("http_500", "hang")
    assert board.pending() == [{"endpoint": "*", "kind": "hang", "count": 1, "seconds": 1.5}]
    assert tally.reasons()["faults_applied"] == {"send_msg:http_500": 1, "send_msg:hang": 1}


def test_live_config_applies_all_changes_or_none() -> None:
    config = LiveConfig(SimSettings())
    with pytest.raises(ValueError):
        config.change({"linger_seconds": 0, "heartbeat_seconds": 0})
    assert config.public()["linger_seconds"] == SimSettings().linger_seconds
    assert config.change({"linger_seconds": 0})["linger_seconds"] == 0


def test_account_book_refuses_spending_in_order() -> None:
    tally = Tally()
    book = AccountBook(SimSettings(clock=lambda: T0), random.Random(1), tally)
    flags = {"credits": 0, "busy": True, "expired": False, "quota_exhausted": True,
             "migrated": True, "surfaces": {}}
    account = book.get(book.add(1, flags, 3600)[0]["real_user_id"])
    reasons = []
    for fix in ("busy", "quota_exhausted", "credits"):
        with pytest.raises(Refusal) as caught:
            book.ensure_can_spend(account)
        reasons.append(caught.value.reason)
        setattr(account, fix, 1 if fix == "credits" else False)
    book.ensure_can_spend(account)
    assert reasons == ["account_busy", "quota_exhausted", "no_credits"]
    assert book.authenticate(account.jwt, T0)[0] is account
    assert book.authenticate(account.jwt, T0 + 3600)[1] == "expired_token"


def test_chat_ids_never_repeat_across_books() -> None:
    ids, tally = ChatIds(random.Random(3)), Tally()
    chats, sessions = ChatBook(ids, tally, 10), SessionBook(ids, tally)
    chat = chats.new("a", "\n  first line\nsecond", T0)
    session = sessions.create("a", "agent", "model", T0)
    again = ChatBook(ids, tally, 10).new("a", "", T0)  # a reset makes new books, same ids
    assert chat.title == "first line" and again.title == "New chat"
    assert len({chat.chat_id, session.chat_id - 10**14, again.chat_id}) == 3
    with pytest.raises(Refusal):
        chats.owned("b", chat.chat_id)
    with pytest.raises(Refusal):
        sessions.owned("a", "not-a-number")


def test_generations_one_at_a_time_and_history_frozen() -> None:
    ids, tally = ChatIds(random.Random(5)), Tally()
    chats, generations = ChatBook(ids, tally, 10), Generations(ids, tally, 100, 10)
    chat = chats.new("a", "hi", T0)
    spec = AnswerSpec(text="abcd", cps=4.0, first_delay=0.0)
    first = generations.begin("a", chat, _turn(), spec, (), T0)
    with pytest.raises(Refusal):
        generations.ensure_idle("a", T0 + 0.5)
    generations.ensure_idle("b", T0 + 0.5)
    assert generations.generating(T0 + 0.5) == 1
    generations.ensure_idle("a", T0 + 1.0)
    second = generations.begin("a", chat, _turn("again"), spec, (), T0 + 1.0)
    assert [m["msg_content"] for m in chat.history] == ["hi", "abcd"]
    assert second.user_msg_id > first.answer_msg_id and second.turn == 2
    generations.end(second, T0 + 1.5, dropped=True)
    assert second.timeline.text_at(second.effective_time(T0 + 9)) == "ab"
    assert tally.counters()["stream_drops"] == 1 and len(generations) == 2
