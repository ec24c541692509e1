"""Generations part of the simulator's world: the turns of both surfaces, and their log.

Role: every turn of a matrix chat or a session is a `Generation` playing one `Timeline`;
`Generations` starts them (the one-generation-per-account rule covers both surfaces),
fires their mid-answer faults once, ends them early, finds a finished answer for msg_tts
and keeps the /_sim/log. A generation has no worker: what it shows at a time is derived
from its timeline, so it can be read at any moment. Like every part, `Generations` holds
no lock: `SimState` uses it under its own.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.simulator.accounts import SURFACE_MATRIX, SURFACE_SESSION
from tests.simulator.chats import Chat, ChatIds
from tests.simulator.protocol import (
    CHAT_RUNNING_CODE,
    CHAT_RUNNING_MSG,
    MSG_GENERATING_MSG,
    MSG_NOT_FOUND_CODE,
    MSG_NOT_FOUND_MSG,
    MSG_TYPE_ASSISTANT,
    MSG_TYPE_USER,
    NOT_AN_ANSWER_MSG,
    Attachment,
    Refusal,
    SendMsgBody,
)
from tests.simulator.scripts import AnswerSpec, answer_text
from tests.simulator.tally import Tally
from tests.simulator.timeline import Timeline, ToolWindow, ms


@dataclass(frozen=True)
class TurnRequest:
    """What starts a generation on either surface."""

    text: str
    attachments: tuple[Attachment, ...]
    web_search: bool
    model: str | None
    chat_type: int | None  # matrix only
    surface: str = SURFACE_MATRIX
    turn_id: str | None = None  # session only

    @classmethod
    def of_send(cls, body: SendMsgBody) -> TurnRequest:
        return cls(body.text, body.attachments, body.web_search, body.model, body.chat_type)


@dataclass(eq=False)
class Generation:
    chat: Chat
    account: str
    prompt: str
    attachments: tuple[Attachment, ...]
    attachment_details: tuple[dict[str, Any], ...]  # FileStore.attachment_details
    web_search: bool
    model: str | None
    chat_type: int | None
    turn: int
    user_msg_id: int
    answer_msg_id: int
    timeline: Timeline
    fault: str | None
    fault_seconds: float
    surface: str = SURFACE_MATRIX
    turn_id: str | None = None
    fault_fired: bool = False
    stopped_at: float | None = None
    polls: int = 0
    poll_times: list[float] = field(default_factory=list)

    def effective_time(self, now: float) -> float:
        return now if self.stopped_at is None else min(now, self.stopped_at)

    def generating(self, now: float) -> bool:
        return self.stopped_at is None and now < self.timeline.t_finish

    def stop(self, now: float) -> bool:
        """End the turn now if it is still running; False (a no-op) once it is over."""
        if not self.generating(now):
            return False
        self.stopped_at = now
        return True

    def finish_time(self, now: float) -> float | None:
        if self.stopped_at is not None:
            return self.stopped_at
        return self.timeline.t_finish if now >= self.timeline.t_finish else None

    def messages(self, now: float) -> list[dict[str, Any]]:
        """This turn's messages as visible at `now`, in order of appearance."""
        t, eff = self.timeline, self.effective_time(now)
        items: list[tuple[float, int, dict[str, Any]]] = [(t.t_send, 0, self._user_message())]
        for window in t.tools:
            if eff >= window.begin:
                items.append((window.begin, 1, self._tool_message(window, eff)))
        if eff >= t.t_answer_appears:
            items.append((t.t_answer_appears, 2, self._answer_message(eff)))
        items.sort(key=lambda item: (item[0], item[1]))
        return [message for _, _, message in items]

    def _user_message(self) -> dict[str, Any]:
        return {"msg_id": self.user_msg_id, "msg_type": MSG_TYPE_USER, "msg_content": self.prompt,
                "timestamp": ms(self.timeline.t_send), "extra_info": {}}

    def _tool_message(self, window: ToolWindow, eff: float) -> dict[str, Any]:
        # A step shows its result only once complete, like a search that has returned.
        content = window.step.content if eff >= window.end else ""
        return {"msg_id": window.msg_id, "msg_type": MSG_TYPE_ASSISTANT, "msg_content": content,
                "timestamp": ms(window.begin), "extra_info": {"thinking_content": ""},
                "tool_call": {"tool_call_name": window.step.name}}

    def _answer_message(self, eff: float) -> dict[str, Any]:
        t = self.timeline
        return {"msg_id": self.answer_msg_id, "msg_type": MSG_TYPE_ASSISTANT,
                "msg_content": t.text_at(eff), "timestamp": ms(t.t_answer_appears),
                "extra_info": {"thinking_content": t.thinking_at(eff)}}

    def msg_ids(self) -> set[int]:
        return {self.user_msg_id, self.answer_msg_id,
                *(window.msg_id for window in self.timeline.tools)}

    def record_poll(self, now: float, cap: int) -> None:
        self.polls += 1
        if len(self.poll_times) < cap:
            self.poll_times.append(now)

    def log_entry(self, now: float) -> dict[str, Any]:
        t, eff = self.timeline, self.effective_time(now)
        first = t.first_content_time()
        status = ("stopped" if self.stopped_at is not None
                  else "generating" if self.generating(now) else "finished")
        session = self.surface == SURFACE_SESSION
        return {
            "chat_id": str(self.chat.chat_id) if session else self.chat.chat_id,
            "surface": self.surface, "turn_id": self.turn_id,
            "account": self.account, "prompt": self.prompt,
            "attachments": [a.as_dict() for a in self.attachments],
            "attachment_details": list(self.attachment_details),
            "web_search": self.web_search, "model": self.model, "chat_type": self.chat_type,
            "turn": self.turn, "msg_id": self.user_msg_id, "answer_msg_id": self.answer_msg_id,
            "answer": t.text, "thinking": t.thinking, "delivered": t.text_at(eff),
            "t_send": t.t_send,
            "t_first_content": first if first is not None and first <= eff else None,
            "t_finish": self.finish_time(now), "polls": self.polls,
            "poll_times": list(self.poll_times), "stopped": self.stopped_at is not None,
            "deleted": self.chat.deleted, "status": status,
        }


class Generations:
    """Every generation of one world, in order, and each account's latest one."""

    def __init__(self, ids: ChatIds, tally: Tally, log_cap: int, poll_times_cap: int) -> None:
        self._ids, self._tally, self._poll_times_cap = ids, tally, poll_times_cap
        self._log: deque[Generation] = deque(maxlen=log_cap)
        # One generation at a time is enforced, so only the latest one can still be running.
        self._latest: dict[str, Generation] = {}

    def __len__(self) -> int:
        return len(self._log)

    def ensure_idle(self, account: str, now: float) -> None:
        """Refuse a new turn while the account's latest one is still generating."""
        running = self._latest.get(account)
        if running is not None and running.generating(now):
            self._tally.count("double_generation_attempts")
            raise self._tally.refuse(CHAT_RUNNING_CODE, CHAT_RUNNING_MSG, "chat_running")

    def begin(self, account: str, chat: Chat, turn: TurnRequest, spec: AnswerSpec,
              details: tuple[dict[str, Any], ...], now: float) -> Generation:
        """Start the chat's next turn (either surface), playing `spec`."""
        self._tally.count("sends")
        if chat.current is not None:
            # The finished turn is frozen so later polls replay it unchanged.
            chat.history.extend(chat.current.messages(now))
        text = answer_text(spec, turn.text)
        user_msg_id = self._ids.msg_id()
        # Ids follow order of appearance: with thinking, the answer message comes first.
        answer_first = bool(spec.thinking)
        answer_msg_id = self._ids.msg_id() if answer_first else 0
        tool_msg_ids = [self._ids.msg_id() for _ in spec.tool_steps]
        answer_msg_id = answer_msg_id or self._ids.msg_id()
        chat.turns += 1
        generation = Generation(
            chat=chat, account=account, prompt=turn.text,
            attachments=turn.attachments, attachment_details=details,
            web_search=turn.web_search, model=turn.model,
            chat_type=turn.chat_type, turn=chat.turns, user_msg_id=user_msg_id,
            answer_msg_id=answer_msg_id, timeline=Timeline(spec, text, now, tool_msg_ids),
            fault=spec.fault, fault_seconds=spec.fault_seconds, surface=turn.surface,
            turn_id=turn.turn_id,
        )
        chat.current = generation
        self._latest[account] = generation
        self._log.append(generation)
        return generation

    def _firing(self, generation: Generation | None, now: float,
                    endpoint: str) -> Generation | None:
        """The generation if its mid-answer fault fires now (once, when text shows)."""
        if (generation is None or generation.fault is None or generation.fault_fired
                or not generation.generating(now)
                or generation.timeline.text_chars_at(now) == 0):
            return None
        generation.fault_fired = True
        self._tally.fault_applied(f"{endpoint}:{generation.fault}")
        return generation

    def _fired(self, generation: Generation, now: float) -> tuple[str, float]:
        assert generation.fault is not None
        if generation.fault == "error_mid":
            generation.stopped_at = now
            self._tally.count("generation_errors")
        return generation.fault, generation.fault_seconds

    def take_poll_fault(self, generation: Generation | None, now: float) -> tuple[str, float] | None:
        """Fire a matrix turn's mid-answer fault once, on the first poll that sees text."""
        fired = self._firing(generation, now, "get_chat_detail")
        if fired is None:
            return None
        if fired.fault == "drop_mid":
            # The dropped poll reached the chat even though its answer never left.
            fired.record_poll(now, self._poll_times_cap)
            self._tally.count("polls")
        return self._fired(fired, now)

    def take_stream_fault(self, generation: Generation, now: float) -> tuple[str, float] | None:
        """Fire a session turn's mid-answer fault once, when the stream has started the text."""
        fired = self._firing(generation, now, "session_message")
        return None if fired is None else self._fired(fired, now)

    def end(self, generation: Generation, now: float, dropped: bool) -> None:
        """The stream of a running turn ended early: the client left, or a drop_mid fault."""
        if generation.stop(now):
            self._tally.count("stream_drops" if dropped else "stops")

    @staticmethod
    def finished_answer(chats: list[Chat], msg_id: int, now: float) -> tuple[int, str]:
        """(chat_id, full text) of a finished assistant answer in these chats; else Refusal."""
        for chat in chats:
            for message in chat.history:
                if message["msg_id"] == msg_id:
                    if message["msg_type"] != MSG_TYPE_ASSISTANT or "tool_call" in message:
                        raise Refusal(MSG_NOT_FOUND_CODE, NOT_AN_ANSWER_MSG, "tts_not_an_answer")
                    return chat.chat_id, message["msg_content"]
            generation = chat.current
            if generation is None or msg_id not in generation.msg_ids():
                continue
            if msg_id != generation.answer_msg_id:
                raise Refusal(MSG_NOT_FOUND_CODE, NOT_AN_ANSWER_MSG, "tts_not_an_answer")
            if generation.generating(now):
                raise Refusal(CHAT_RUNNING_CODE, MSG_GENERATING_MSG, "tts_msg_generating")
            return chat.chat_id, generation.timeline.text_at(generation.effective_time(now))
        raise Refusal(MSG_NOT_FOUND_CODE, MSG_NOT_FOUND_MSG, "tts_msg_not_found")

    def generating(self, now: float) -> int:
        """How many accounts have a turn generating now (at most one each)."""
        return sum(1 for generation in self._latest.values() if generation.generating(now))

    def log(self, now: float) -> list[dict[str, Any]]:
        return [generation.log_entry(now) for generation in self._log]
