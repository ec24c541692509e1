"""The session driver's reading of an answer stream, frame by frame (no network)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.errors import AccountInUse, QuotaExhausted, UpstreamServerError, UpstreamUnavailable
from gateway.upstream import session_shapes as S
from gateway.upstream.conversation import (
    Conversation,
    TurnFailed,
    TurnFinished,
    UpIdle,
    UpReasoning,
    UpStep,
    UpText,
)
from gateway.upstream.session import SessionTurn


class FakeResponse:
    """Just what the turn reads: the body in the pieces a socket might deliver."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.closed = False

    def iter_content(self, chunk_size: None = None) -> Iterator[bytes]:
        yield from self.pieces

    def close(self) -> None:
        self.closed = True


def frame(payload: Any) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data:{text}\n\n".encode()


def chunk(**fields: Any) -> bytes:
    body = {"msg_id": 77, "role": "assistant", "msg_type": 1, "finish": False, **fields}
    return frame({"type": 6, "agent_message_chunk": body})


def message(role: str, **fields: Any) -> bytes:
    return frame({"type": 2, "agent_message": {"role": role, "msg_id": 77, **fields}})


ECHO = message("user", msg_content="the prompt")
FINISH = chunk(msg_content="", finish=True, finish_reason="stop")
CLOSING = message("assistant", msg_content="Hello world", finish_reason="stop")


def run(body: bytes, split: int | None = None) -> tuple[list[Any], FakeResponse]:
    pieces = [body[i:i + split] for i in range(0, len(body), split)] if split else [body]
    response = FakeResponse(pieces)
    stack = contextlib.ExitStack()
    stack.callback(response.close)
    turn = SessionTurn(Conversation("session", "1"), response, stack)  # type: ignore[arg-type]
    events = [e for e in turn.events() if not isinstance(e, UpIdle)]
    return events, response


@pytest.mark.parametrize("split", [None, 1, 3, 7])
def test_deltas_are_the_answer_and_the_closing_message_does_not_double_it(split: int | None) -> None:
    body = (ECHO + frame({"type": "heartbeat"}) + chunk(thinking_content="hm") + chunk(msg_content="Hello")
            + frame({"type": 10}) + chunk(msg_content=" world") + FINISH + CLOSING + frame("[DONE]"))
    events, response = run(body, split)
    assert events == [UpReasoning("hm"), UpText("Hello"), UpText(" world"), TurnFinished(77)]
    assert response.closed


def test_the_closing_message_alone_is_the_answer() -> None:
    events, _ = run(ECHO + FINISH + CLOSING + b"data:[DONE]\n\n")
    assert events == [UpText("Hello world"), TurnFinished(77)]


def test_the_turn_ends_at_done_even_if_the_connection_stays_open() -> None:
    events, _ = run(ECHO + chunk(msg_content="x") + frame("[DONE]") + frame({"type": "heartbeat"}) * 3)
    assert events == [UpText("x"), TurnFinished(77)]


def test_crlf_line_ends_and_a_space_after_the_colon() -> None:
    body = b'data: {"type":6,"agent_message_chunk":{"role":"assistant","msg_content":"a","msg_id":1}}\r\n\r\n'
    events, _ = run(body + b"data: [DONE]\r\n\r\n", split=2)
    assert events == [UpText("a"), TurnFinished(1)]


def test_agent_tool_steps_are_reported_when_done() -> None:
    running = chunk(tool_calls=[{"tool_call_id": "t", "tool_name": "web_search", "tool_call_status": "running"}])
    done = chunk(tool_calls=[{"tool_call_id": "t", "tool_name": "web_search", "tool_call_status": "done",
                              "tool_call_result_data": "[]"}])
    events, _ = run(running + done + chunk(msg_content="ok") + FINISH)
    assert events == [UpStep("web_search", "[]"), UpText("ok"), TurnFinished(77)]


def tool(status: object, result: object = None, call_id: str = "t") -> dict[str, Any]:
    call = {"tool_call_id": call_id, "tool_name": "web_search", "tool_call_status": status}
    return call if result is None else {**call, "tool_call_result_data": result}


@pytest.mark.parametrize(("running", "done"), [
    ("running", "done"), (1, 2), ("1", "2"), ("RUNNING", "Success"), (0, "completed"), (None, None),
])
def test_a_tool_step_is_finished_when_its_result_is_there_whatever_its_status(running: object, done: object) -> None:
    events, _ = run(chunk(tool_calls=[tool(running)]) + chunk(tool_calls=[tool(done, "[]")])
                    + chunk(msg_content="ok") + FINISH)
    assert events == [UpStep("web_search", "[]"), UpText("ok"), TurnFinished(77)]


def test_a_tool_step_is_reported_once_even_if_its_result_repeats() -> None:
    finished = chunk(tool_calls=[tool(2, "[1]")])
    events, _ = run(finished + finished + chunk(tool_calls=[tool(2, "[2]", "u")]) + chunk(msg_content="ok") + FINISH)
    assert events == [UpStep("web_search", "[1]"), UpStep("web_search", "[2]"), UpText("ok"), TurnFinished(77)]


def test_a_numeric_status_without_a_result_is_not_yet_a_step() -> None:
    events, _ = run(chunk(tool_calls=[tool(2)]) + chunk(msg_content="ok") + FINISH)
    assert events == [UpText("ok"), TurnFinished(77)]


@pytest.mark.parametrize(("body", "error"), [
    (frame({"type": "error", "errorCode": 2056, "message": "quota"}), QuotaExhausted),
    (frame({"type": "error", "errorCode": 1400010170, "message": "chat is running"}), AccountInUse),
    (chunk(msg_content="Token Plan quota exhausted", finish=True, finish_reason="error"), QuotaExhausted),
    (message("assistant", msg_content="Connection error.", finish_reason="error"), UpstreamServerError),
    (chunk(msg_content="cut"), UpstreamUnavailable),  # EOF before any end marker
])
def test_errors_end_the_turn(body: bytes, error: type) -> None:
    events, _ = run(ECHO + body)
    assert isinstance(events[-1], TurnFailed) and isinstance(events[-1].error, error)


@pytest.mark.parametrize("key", ["msg_content", "content", "text"])
def test_the_answer_text_under_any_known_key(key: str) -> None:
    events, _ = run(ECHO + chunk(**{key: "a"}) + chunk(**{key: "b"}) + FINISH)
    assert events == [UpText("a"), UpText("b"), TurnFinished(77)]


def test_catalogue_entries_in_the_later_clients_form() -> None:
    config = {"models": [{"id": "MiniMax-M3", "model_name": "M3", "variants": ["", "thinking"], "provider_id": "minimax"},
                         {"model_id": "MiniMax-M2.7", "supported_variants": [""]}, {"name": "nameless"}]}
    assert S.models_of(config) == [S.ModelInfo("MiniMax-M3", ("", "thinking")), S.ModelInfo("MiniMax-M2.7", ("",))]


def test_user_echo_and_unknown_frames_are_never_output() -> None:
    events, _ = run(ECHO + frame({"type": "session_status"}) + b"data:not json\n\n" + chunk(msg_content="a") + FINISH)
    assert events == [UpText("a"), TurnFinished(77)]
