"""The matrix surface: ``send_msg``, then polling ``get_chat_detail`` and diffing.

The matrix API has no push channel: a turn is observed by polling get_chat_detail,
whose message contents are cumulative. :func:`read_snapshot` reduces one poll to a
:class:`Snapshot` (answer so far, reasoning so far, agent steps, finished or not) and
:func:`diff` turns two consecutive snapshots into upstream events. This module holds the
only poll loop of the gateway's chat path (:meth:`MatrixTurn.events`).

Polling adapts: one poll right after sending, then ``first`` while waiting for content,
``steady`` while it flows, :data:`STALL_POLL_INTERVAL` as soon as a poll shows the answer
stopped growing (its end is likely due: polling at the flowing pace there would add up to
a whole interval to every answer's tail), ``idle`` after :data:`IDLE_AFTER_SECONDS`
without change; never faster than :data:`MIN_POLL_INTERVAL`, counted from the previous
poll's answer. The turn ends only when the upstream says the chat is finished.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gateway.errors import GatewayError, UpstreamBadAnswer
from gateway.upstream import constants as C
from gateway.upstream import files, pacing
from gateway.upstream.client import UpstreamClient
from gateway.upstream.conversation import (
    TEXT_ONLY,
    Attachment,
    Conversation,
    TurnFailed,
    TurnFinished,
    TurnInput,
    UpIdle,
    Upload,
    UpReasoning,
    UpStep,
    UpstreamEvent,
    UpText,
)
from gateway.upstream.credentials import Credential
from gateway.upstream.settings import PollSettings, UpstreamSettings
from gateway.upstream.walls import quota_guarded

log = logging.getLogger(__name__)

NAME = "matrix"
#: Separator between several assistant texts (or reasoning texts) of one turn.
PART_SEPARATOR = "\n\n"
MIN_POLL_INTERVAL = 0.2  # at most 5 polls a second per stream
#: After a poll that saw content but no growth: the upstream's own limit, 5 polls/s.
STALL_POLL_INTERVAL = MIN_POLL_INTERVAL
#: Seconds without new content after which polls slow to the ``idle`` interval.
IDLE_AFTER_SECONDS = 3.0


@dataclass(frozen=True)
class Step:
    """An agent tool step (e.g. ``web_search``) and what it produced so far."""

    name: str
    content: str


@dataclass(frozen=True)
class Snapshot:
    """What one poll shows of the current turn."""

    finished: bool
    text: str
    reasoning: str
    steps: tuple[Step, ...]
    title: str = ""
    #: The id of the (last) answer message, e.g. to have it spoken.
    answer_msg_id: int | None = None


EMPTY = Snapshot(False, "", "", ())


class MatrixDriver:
    """The matrix surface for the chat core."""

    name = NAME
    capabilities = TEXT_ONLY

    def __init__(self, client: UpstreamClient, settings: UpstreamSettings) -> None:
        self.client = client
        self.settings = settings

    def open(self, cred: Credential, model: str) -> Conversation:
        return Conversation(NAME)  # send_msg creates the chat

    def send(self, cred: Credential, conversation: Conversation, turn: TurnInput) -> MatrixTurn:
        chat_id = int(conversation.id) if conversation.id is not None else None
        body = send_body(turn.text, turn.model, chat_id=chat_id, attachments=turn.attachments,
                         web_search=turn.web_search, model_option=self.settings.matrix_model_option)
        chat_id, msg_id = sent_ids(self.client.call(cred, "POST", C.PATH_SEND, body))
        return MatrixTurn(self.client, cred, chat_id, msg_id, self.settings.poll)

    def discard(self, cred: Credential, conversation: Conversation) -> None:
        if conversation.id is not None:
            self.client.call(cred, "POST", C.PATH_DELETE, {"chat_id": int(conversation.id)})

    def upload(self, cred: Credential, item: Upload) -> Attachment:
        return files.upload(self.client, cred, item)

    def probe(self, cred: Credential) -> None:
        self.client.call(cred, "POST", C.PATH_LIST, {"page_size": 1})

    def forget(self, cred: Credential) -> None:
        """Matrix keeps nothing per account beyond what the client holds."""


class MatrixTurn:
    """A matrix turn, observed by polling."""

    def __init__(self, client: UpstreamClient, cred: Credential, chat_id: int,
                 msg_id: int | None, pace: PollSettings) -> None:
        self.client, self.cred = client, cred
        self.conversation = Conversation(NAME, str(chat_id))
        self.chat_id, self.msg_id = chat_id, msg_id
        self.pace = pace
        self.finished = False

    def events(self) -> Iterator[UpstreamEvent]:
        return quota_guarded(self._events())

    def _events(self) -> Iterator[UpstreamEvent]:
        shown = EMPTY
        last_change = time.monotonic()
        next_poll = last_change  # the first poll goes at once: a fast upstream may be done
        while True:
            _sleep_until(next_poll)
            polled_at = time.monotonic()
            try:
                snapshot = self._snapshot()
            except GatewayError as error:
                yield TurnFailed(error)
                return
            changes = list(diff(shown, snapshot))
            self.finished = snapshot.finished
            yield from changes or [UpIdle()]
            if changes:
                last_change = polled_at
            shown = merge(shown, snapshot)
            if self.finished:
                yield TurnFinished(snapshot.answer_msg_id)
                return
            # Spaced from when this poll's answer arrived, so the upstream sees at least
            # the interval between polls even when answer times vary.
            next_poll = time.monotonic() + self._interval(shown, polled_at - last_change,
                                                          stalled=not changes)

    def stop(self) -> None:
        if not self.finished:
            with contextlib.suppress(GatewayError):
                self.client.call(self.cred, "POST", C.PATH_STOP, {"chat_id": self.chat_id})

    def _snapshot(self) -> Snapshot:
        """One poll, transient failures retried with backoff."""
        def ask() -> Snapshot:
            detail = self.client.call(self.cred, "POST", C.PATH_DETAIL, {"chat_id": self.chat_id})
            return read_snapshot(detail, self.msg_id)

        return pacing.retry(ask, pacing.POLL_FAILURE_DELAYS, what=f"poll of chat {self.chat_id}")

    def _interval(self, shown: Snapshot, quiet_for: float, stalled: bool = False) -> float:
        if not (shown.text or shown.reasoning or shown.steps):
            interval = self.pace.first
        elif quiet_for > IDLE_AFTER_SECONDS:
            interval = self.pace.idle
        elif stalled:
            interval = STALL_POLL_INTERVAL
        else:
            interval = self.pace.steady
        return max(MIN_POLL_INTERVAL, interval)


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


# -- the wire format ----------------------------------------------------------------------
def send_body(
    prompt: str,
    model: str,
    *,
    chat_id: int | None = None,
    attachments: tuple[Attachment, ...] = (),
    web_search: bool = False,
    chat_type: int = C.CHAT_TYPE_LIGHTNING,
    model_option: bool = True,
) -> dict[str, Any]:
    """The send_msg body, keys in the web app's order."""
    body: dict[str, Any] = {"msg_type": C.MSG_TYPE_USER, "text": prompt, "chat_type": chat_type}
    if chat_id is not None:
        body["chat_id"] = chat_id
    body["attachments"] = [_attachment(item) for item in attachments]
    body["selected_mcp_tools"] = []
    body["backend_config"] = dict(C.WEB_SEARCH_BACKEND_CONFIG) if web_search else {}
    body["sub_agent_ids"] = []
    if model_option:
        shown = model if model in C.MATRIX_MODELS else C.MATRIX_MODELS[0]
        body["model_option"] = {"display_name": shown, "model_type": C.MODEL_TYPE}
    return body


def _attachment(item: Attachment) -> dict[str, Any]:
    file_type = C.FILE_TYPE_IMAGE if item.is_image else C.FILE_TYPE_OTHER
    return {"file_type": file_type, "file_id": item.ref, "file_name": item.file_name}


def sent_ids(answer: dict[str, Any]) -> tuple[int, int | None]:
    """``(chat_id, msg_id)`` from a send_msg answer."""
    chat_id = answer.get("chat_id")
    if not isinstance(chat_id, int) or isinstance(chat_id, bool):
        raise UpstreamBadAnswer("MiniMax accepted the message but returned no chat id.")
    msg_id = answer.get("msg_id")
    return chat_id, msg_id if isinstance(msg_id, int) else None


def read_snapshot(detail: dict[str, Any], user_msg_id: int | None = None) -> Snapshot:
    """Reduce a get_chat_detail answer to the current turn's state."""
    chat = detail.get("chat")
    messages = detail.get("messages")
    if not isinstance(chat, dict) or not isinstance(messages, list):
        raise UpstreamBadAnswer("MiniMax chat detail lacks 'chat' or 'messages'.")
    turn = _current_turn([m for m in messages if isinstance(m, dict)], user_msg_id)
    texts: list[str] = []
    thoughts: list[str] = []
    steps: list[Step] = []
    answer_id: int | None = None
    for message in turn:
        content = _text(message.get("msg_content"))
        extra = message.get("extra_info")
        thoughts.append(_text(extra.get("thinking_content")) if isinstance(extra, dict) else "")
        tool_call = message.get("tool_call")
        if isinstance(tool_call, dict) and tool_call:
            steps.append(Step(_text(tool_call.get("tool_call_name")) or "tool", content))
        else:
            texts.append(content)
            answer_id = message.get("msg_id") if isinstance(message.get("msg_id"), int) else answer_id
    return Snapshot(
        finished=chat.get("chat_status") == C.CHAT_STATUS_FINISHED,
        text=_join(texts),
        reasoning=_join(thoughts),
        steps=tuple(steps),
        title=_text(chat.get("chat_title")),
        answer_msg_id=answer_id,
    )


def _current_turn(messages: list[dict[str, Any]], user_msg_id: int | None) -> list[dict[str, Any]]:
    """Assistant messages after the user message that started this turn.

    The turn starts at the user message with ``user_msg_id`` or, when send_msg named
    none (or another id), at the last user message.
    """
    users = [i for i, m in enumerate(messages) if m.get("msg_type") == C.MSG_TYPE_USER]
    if not users:
        return []
    matching = [i for i in users if user_msg_id is not None and messages[i].get("msg_id") == user_msg_id]
    start = (matching or users)[-1]
    return [m for m in messages[start + 1 :] if m.get("msg_type") == C.MSG_TYPE_ASSISTANT]


def _join(parts: list[str]) -> str:
    return PART_SEPARATOR.join(part for part in parts if part)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


# -- diffing ------------------------------------------------------------------------------
def _finished_steps(snapshot: Snapshot) -> int:
    """How many of the agent's steps are complete: all but the last while it may still run."""
    if snapshot.text or snapshot.finished:
        return len(snapshot.steps)
    return max(0, len(snapshot.steps) - 1)


def diff(shown: Snapshot, now: Snapshot) -> Iterator[UpstreamEvent]:
    """Events for what ``now`` adds to what was already ``shown``."""
    if len(now.reasoning) > len(shown.reasoning):
        yield UpReasoning(now.reasoning[len(shown.reasoning) :])
    for step in now.steps[len(shown.steps) : _finished_steps(now)]:
        yield UpStep(step.name, step.content)
    if len(now.text) > len(shown.text):
        yield UpText(now.text[len(shown.text) :])


def merge(shown: Snapshot, now: Snapshot) -> Snapshot:
    """What has been shown after emitting :func:`diff` (content never shrinks)."""
    return Snapshot(
        finished=now.finished,
        text=now.text if len(now.text) > len(shown.text) else shown.text,
        reasoning=now.reasoning if len(now.reasoning) > len(shown.reasoning) else shown.reasoning,
        steps=now.steps[: max(_finished_steps(now), len(shown.steps))],
        title=now.title,
    )
