"""Conversation matching: which histories extend a kept one, and which fold."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.chat.continuation import (
    AnswerRecorder,
    ConversationKeeper,
    KeptConversation,
    canonical,
    context_seed,
    digest,
)
from gateway.errors import UpstreamServerError
from gateway.parts import (
    ChatRequest,
    Finish,
    Message,
    ReasoningPart,
    StreamError,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from gateway.state import SharedState, open_state


def user(text: str) -> Message:
    return Message("user", (TextPart(text),))


def assistant(*parts: TextPart | ToolCallPart | ReasoningPart) -> Message:
    return Message("assistant", tuple(parts))


SYSTEM = Message("system", (TextPart("be terse"),))
KEPT = KeptConversation("matrix", "chat-1", "acct", 3, 1)


@pytest.fixture
def state() -> Iterator[SharedState]:
    backend = open_state("")
    yield backend
    backend.close()


def kept_after(keeper: ConversationKeeper, first: ChatRequest, answer: Message, seed: str = "s") -> None:
    keeper.keep(first, seed, answer, KEPT)


def test_an_exact_extension_continues_with_the_new_messages_only(state: SharedState) -> None:
    keeper = ConversationKeeper(state, 60)
    first = ChatRequest("m", (SYSTEM, user("one")))
    kept_after(keeper, first, assistant(TextPart("answer one")))
    found = keeper.find(ChatRequest("m", (SYSTEM, user("one"), assistant(TextPart("answer one")), user("two"))),
                        "s", ["acct"])
    assert found is not None and found.kept == KEPT and found.new_messages == (user("two"),)


def test_system_notes_after_the_last_answer_travel_with_the_new_turn(state: SharedState) -> None:
    # Claude Code appends a system message (environment, token budget) to every turn.
    keeper = ConversationKeeper(state, 60)
    kept_after(keeper, ChatRequest("m", (SYSTEM, user("one"))), assistant(TextPart("answer one")))
    note = Message("system", (TextPart("1000 tokens left"),))
    found = keeper.find(ChatRequest("m", (SYSTEM, user("one"), assistant(TextPart("answer one")), user("two"), note)),
                        "s", ["acct"])
    assert found is not None and found.new_messages == (user("two"), note)


@pytest.mark.parametrize("history", [
    (SYSTEM, user("ONE"), assistant(TextPart("answer one")), user("two")),  # edited question
    (SYSTEM, user("one"), assistant(TextPart("another answer")), user("two")),  # regenerated
    (Message("system", (TextPart("be verbose"),)), user("one"), assistant(TextPart("answer one")), user("two")),
    (user("one"), assistant(TextPart("answer one")), user("two")),  # the system prompt dropped
    (SYSTEM, user("one"), assistant(TextPart("answer one"))),  # nothing new
], ids=["edited", "regenerated", "other-system", "no-system", "nothing-new"])
def test_anything_else_folds(state: SharedState, history: tuple[Message, ...]) -> None:
    keeper = ConversationKeeper(state, 60)
    kept_after(keeper, ChatRequest("m", (SYSTEM, user("one"))), assistant(TextPart("answer one")))
    assert keeper.find(ChatRequest("m", history), "s", ["acct"]) is None


def test_another_seed_or_account_does_not_match(state: SharedState) -> None:
    keeper = ConversationKeeper(state, 60)
    kept_after(keeper, ChatRequest("m", (user("one"),)), assistant(TextPart("a")))
    later = ChatRequest("m", (user("one"), assistant(TextPart("a")), user("two")))
    assert keeper.find(later, "other seed", ["acct"]) is None
    assert keeper.find(later, "s", ["another account"]) is None
    assert keeper.find(later, "s", ["acct"]) is not None


def test_digests_ignore_what_clients_change_and_keep_what_the_upstream_saw() -> None:
    sent = assistant(TextPart("Let me look. "), ToolCallPart("call_1", "get", {"b": 1, "a": [2]}))
    echoed = assistant(ReasoningPart("thinking..."), TextPart("Let me look."), ToolCallPart("toolu_9", "get",
                                                                                         {"a": [2], "b": 1}))
    assert canonical(sent) == canonical(echoed)
    assert digest("s", [sent]) == digest("s", [echoed])
    assert digest("s", [assistant(ToolCallPart("x", "get", {"a": [3], "b": 1}))]) != digest("s", [sent])
    result = Message("tool", (ToolResultPart("call_1", "21 C"),))
    assert digest("s", [result]) != digest("s", [Message("tool", (ToolResultPart("call_1", "22 C"),))])
    assert digest("s", [user("a"), user("b")]) != digest("s", [user("b"), user("a")])


def test_the_seed_covers_caller_model_tools_and_format() -> None:
    base = ChatRequest("m", (user("x"),))
    tooled = ChatRequest("m", (user("x"),), tools=(ToolSpec("t", "d", {"type": "object"}),))
    seeds = {context_seed(base, "key-a", "MiniMax-M2"), context_seed(base, "key-b", "MiniMax-M2"),
             context_seed(base, "key-a", "other-model"), context_seed(tooled, "key-a", "MiniMax-M2")}
    assert len(seeds) == 4
    assert context_seed(base, "key-a", "MiniMax-M2") == context_seed(ChatRequest("m", (user("y"),)), "key-a",
                                                                      "MiniMax-M2")


def test_a_pin_continues_past_the_messages_the_upstream_holds(state: SharedState) -> None:
    keeper = ConversationKeeper(state, 60)
    first = ChatRequest("m", (SYSTEM, user("one")), conversation_id="pin-1")
    kept_after(keeper, first, assistant(TextPart("answer one")))
    rewritten = (SYSTEM, user("one"), assistant(TextPart("an answer the client shortened")), user("two"))
    found = keeper.find(ChatRequest("m", rewritten, conversation_id="pin-1"), "s", ["acct"])
    assert found is not None and found.new_messages == (user("two"),)
    assert keeper.find(ChatRequest("m", rewritten, conversation_id="pin-2"), "s", ["acct"]) is None
    assert keeper.find(ChatRequest("m", rewritten[:3], conversation_id="pin-1"), "s", ["acct"]) is None


def test_forgotten_records_and_a_zero_ttl_match_nothing(state: SharedState) -> None:
    keeper = ConversationKeeper(state, 60)
    kept_after(keeper, ChatRequest("m", (user("one"),)), assistant(TextPart("a")))
    later = ChatRequest("m", (user("one"), assistant(TextPart("a")), user("two")))
    found = keeper.find(later, "s", ["acct"])
    assert found is not None
    keeper.forget(found.key)
    assert keeper.find(later, "s", ["acct"]) is None
    off = ConversationKeeper(state, 0)
    kept_after(off, ChatRequest("m", (user("one"),)), assistant(TextPart("a")))
    assert not off.enabled and off.find(later, "s", ["acct"]) is None


@pytest.mark.parametrize(("events", "clean"), [
    ([TextDelta("a"), Finish("stop")], True),
    ([ToolCall("c", "t", {}), Finish("tool_calls")], True),
    ([TextDelta("a"), Finish("length")], False),
    ([TextDelta("a"), Finish("stop_sequence", "STOP")], False),
    ([TextDelta("a"), Finish("stop", "STOP")], False),
    ([TextDelta("a"), StreamError(UpstreamServerError())], False),
    ([TextDelta("a")], False),  # the client went away before the end
], ids=["stop", "tool_calls", "length", "stop_sequence", "stop-with-sequence", "error", "unfinished"])
def test_only_a_natural_end_is_clean(events: list, clean: bool) -> None:
    recorder = AnswerRecorder()
    for event in events:
        recorder.see(event)
    assert recorder.clean is clean


def test_the_recorded_answer_is_what_the_client_got() -> None:
    recorder = AnswerRecorder()
    for event in (TextDelta("Let me "), TextDelta("look."), ToolCall("c1", "get", {"city": "Paris"}), Finish("tool_calls")):
        recorder.see(event)
    assert recorder.message() == assistant(TextPart("Let me look."), ToolCallPart("c1", "get", {"city": "Paris"}))


def test_custom_tool_calls_differ_by_their_raw_input() -> None:
    def patch(text: str) -> Message:
        return Message("assistant", (ToolCallPart("c", "apply_patch", {}, text),))

    assert canonical(patch("*** Begin Patch A")) != canonical(patch("*** Begin Patch B"))
    assert canonical(patch("same")) == canonical(Message("assistant", (ToolCallPart("other-id", "apply_patch", {}, "same"),)))
