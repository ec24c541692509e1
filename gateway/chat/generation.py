"""One answer being streamed: the upstream's events relayed as neutral chat events.

A :class:`Generation` holds the account's lease and one *side*: an
:class:`~gateway.chat.emulation.EmulatedTurn` on a text-only surface or a
:class:`~gateway.chat.native.NativeSide` on a native one. It relays the side's upstream
events with keep-alives and the answer deadline, notices a client that went away, lets
the side shape the stream (the emulations, or nothing), tells the account's health how
the answer ended, and always cleans up: stop the turn if it is unfinished, let the side
keep or discard its conversation, free the account.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Protocol

from gateway.errors import UpstreamTimeout
from gateway.metrics import metrics
from gateway.parts import (
    AgentStep,
    ChatRequest,
    ChatResult,
    Event,
    Finish,
    Heartbeat,
    ReasoningDelta,
    StreamError,
    TextDelta,
    collect,
)
from gateway.upstream.conversation import Conversation
from gateway.upstream.credentials import Credential

if TYPE_CHECKING:
    from gateway.chat.pool import Lease
    from gateway.chat.service import ChatService

log = logging.getLogger(__name__)

Disconnected = Callable[[], bool]


class Side(Protocol):
    """A generation's upstream side (emulated or native)."""

    request: ChatRequest
    cred: Credential
    conversation: Conversation
    input_tokens: int

    def upstream_events(self) -> Iterator[Event | None]:
        """The current upstream turn's events as chat events (None: nothing new yet)."""

    def shape(self, relay: Callable[[], Iterator[Event]]) -> Iterator[Event]:
        """The relayed events as the client gets them, ending with Usage + Finish."""

    def stop(self) -> None:
        """End an unfinished upstream turn. Never raises."""

    def closed(self) -> None:
        """Keep or discard the conversation (the lease is still held)."""


class Generation:
    """One upstream turn being streamed; iterate :meth:`events` once."""

    def __init__(self, service: ChatService, lease: Lease, side: Side, disconnected: Disconnected,
                 opened_at: float) -> None:
        self._service = service
        self._settings = service.settings
        self.lease = lease
        self.side = side
        self.request = side.request
        self._disconnected = disconnected
        self._closed = False
        self.opened_at = opened_at  # when the request arrived: time to first token counts from it
        self._first_content: float | None = None

    @property
    def input_tokens(self) -> int:
        return self.side.input_tokens

    @property
    def conversation(self) -> Conversation:
        return self.side.conversation

    def events(self) -> Generator[Event, None, None]:
        """The answer as neutral events, ending with Usage + Finish or a StreamError."""
        metrics().open_streams.inc()
        try:
            yield from self._observed(self.side.shape(self._relay))
        finally:
            metrics().open_streams.dec()
            self.close()

    def result(self) -> ChatResult:
        """The whole answer (for non-stream replies); raises the error of a failed stream."""
        events = self.events()
        try:
            return collect(events)
        finally:
            events.close()

    def close(self) -> None:
        """Stop an unfinished turn, let the side keep or discard its conversation, free
        the account. Idempotent; each step runs even when one before it failed."""
        if self._closed:
            return
        self._closed = True
        for step in (self.side.stop, self.side.closed, self.lease.release):
            try:
                step()
            except Exception:
                log.exception("clean-up step %s failed", getattr(step, "__name__", step))

    def _observed(self, events: Iterator[Event]) -> Iterator[Event]:
        """The events, told to the account's health as they end the answer."""
        for event in events:
            if isinstance(event, Finish):
                self._service.answered(self.lease.credential, self.conversation.surface)
            elif isinstance(event, StreamError):
                self._service.stream_failed(self.lease.credential, event.error)
            yield event

    def _relay(self) -> Iterator[Event]:
        """The side's current upstream turn as chat events, with keep-alives and limits."""
        start = last_output = time.monotonic()
        for chat_event in self.side.upstream_events():
            if self._disconnected():
                log.info("client went away; stopping %s conversation %s",
                         self.conversation.surface, self.conversation.id)
                return
            now = time.monotonic()
            if chat_event is not None:
                self._note_first_content(chat_event, now)
                yield chat_event
                last_output = now
                if isinstance(chat_event, (Finish, StreamError)):
                    return
            if now - start > self._settings.answer_timeout:
                yield StreamError(UpstreamTimeout("The MiniMax answer took longer than GATEWAY_ANSWER_TIMEOUT."))
                return
            if now - last_output >= self._settings.heartbeat:
                last_output = now
                yield Heartbeat()

    def _note_first_content(self, event: Event, now: float) -> None:
        if self._first_content is None and isinstance(event, (TextDelta, ReasoningDelta, AgentStep)):
            self._first_content = now
            metrics().first_token.observe(now - self.opened_at)
