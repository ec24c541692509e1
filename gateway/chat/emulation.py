"""What the chat core does for a text-only surface (the MiniMax Agent web app), in one place.

A web surface takes one prompt of text per turn and keeps the conversation upstream. So
for it the chat core folds the structured conversation into a transcript prompt
(:mod:`gateway.chat.prompt`), emulates tool calling with a text protocol
(:mod:`gateway.chat.tools`: instructions in, a streaming parser out, one corrective
retry), emulates JSON mode, and continues a kept upstream conversation with only the new
messages (:mod:`gateway.chat.continuation`). A surface that does these natively
(:mod:`gateway.chat.native`) bypasses all of it.

:class:`Emulation` builds the prompt and sends the first turn; :class:`EmulatedTurn` is
one generation's upstream side: its raw events (with the tool-call follow-up as a visible
step), and what happens to the conversation when the generation closes (kept for the
next turn, or discarded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gateway.chat import tools, transforms
from gateway.chat.continuation import AnswerRecorder, Continuation, ConversationKeeper, KeptConversation
from gateway.chat.media import Blob, close_all
from gateway.chat.prompt import TURN_SEPARATOR, fold, json_instruction, render_body, render_message
from gateway.chat.tokens import estimate_tokens
from gateway.errors import AccountInUse, AccountsBusy, ClientGone, GatewayError, InvalidRequest
from gateway.parts import AgentStep, ChatRequest, Event, Finish, ReasoningDelta, StreamError, TextDelta, last_user_text
from gateway.upstream import pacing
from gateway.upstream.constants import WEB_SEARCH_STEP
from gateway.upstream.conversation import (
    Driver,
    Turn,
    TurnFailed,
    TurnFinished,
    TurnInput,
    UpReasoning,
    UpStep,
    UpText,
)
from gateway.upstream.credentials import Credential

if TYPE_CHECKING:
    from gateway.chat.pool import Accounts, Lease
    from gateway.chat.service import ChatService

log = logging.getLogger(__name__)

#: How much of the question is reported as the search query.
SEARCH_QUERY_CHARS = 200
#: Seconds a continuing request's claim on its kept chat outlasts its wait for the
#: account (the claim ends when the turn is recorded as sent, a moment after the lease).
CLAIM_SLACK = 10.0

Disconnected = Callable[[], bool]
#: Relays the current upstream turn of a generation as chat events.
Relay = Callable[[], Iterator[Event]]


@dataclass(frozen=True)
class Thread:
    """The upstream conversation a generation is a turn of: what every turn of it shares
    (:func:`~gateway.chat.continuation.context_seed`) and how many turns it had before."""

    seed: str
    turns: int = 0


class Emulation:
    """Prompts, first turns and continuations for the text-only surfaces."""

    def __init__(self, service: ChatService) -> None:
        self._service = service
        self.keeper: ConversationKeeper = service.keeper

    def prompt_for(self, request: ChatRequest) -> str:
        prompt = fold(request.messages, self._service.settings.prompt_max_chars)
        if tools.uses_tools(request):
            prompt += TURN_SEPARATOR + tools.instructions(request.tools, request.tool_choice)
        elif json_mode(request):
            prompt += TURN_SEPARATOR + json_instruction(request.response_format.schema)
        return prompt

    def start(self, request: ChatRequest, prompt: str, cred: Credential, lease: Lease,
              blobs: Sequence[Blob], thread: Thread) -> EmulatedTurn:
        """Send the folded prompt as the first turn of a new conversation."""
        if not prompt:  # the upstream refuses a turn without text (a 502 otherwise)
            raise InvalidRequest("The message has no content: send text or an attachment.", param="messages")
        model = self._service.upstream_model(request.model)
        driver, turn = self._service.start_turn(cred, prompt, model, blobs, request.web_search, lease.holder)
        return EmulatedTurn(self._service, request, cred, driver, turn, estimate_tokens(prompt), thread)

    def continued(self, request: ChatRequest, accounts: Accounts, thread: Thread,
                  disconnected: Disconnected) -> tuple[Lease, EmulatedTurn] | None:
        """Send only the new messages into the kept conversation the request extends."""
        found = self.keeper.find(request, thread.seed, [cred.key for cred in accounts.credentials])
        if found is None:
            return None
        service = self._service
        self.keeper.forget(found.key)  # taken: no other request continues it meanwhile
        claim = service.ledger.claim(found.kept.conversation(), service.settings.conversation_wait + CLAIM_SLACK)
        if claim is None:  # the sweep took it first: it is being deleted
            return None
        prompt = self._new_prompt(request, found)
        cred = next(cred for cred in accounts.credentials if cred.key == found.kept.account)
        driver = service.surfaces.drivers[found.kept.surface]
        try:
            lease = service.pool.acquire([cred], service.settings.conversation_wait, accounts.tag)
        except AccountsBusy:
            log.info("the account of %s %s stayed busy; folding instead", found.kept.surface, found.kept.id)
            service.janitor.discard(driver, cred, found.kept.conversation())
            return None
        if disconnected():  # it left while waiting: the chat stays as it was, for a retry
            lease.release()
            self.keeper.restore(found)
            service.ledger.unclaim(claim, time.time() + self.keeper.ttl)
            raise ClientGone()
        try:
            turn = self._send_new(request, found, prompt, cred, driver, lease)
        except GatewayError as error:  # e.g. the chat is gone: fold it all, as before
            log.info("could not continue %s %s (%s); folding instead", found.kept.surface, found.kept.id,
                     type(error).__name__)
            service.discard(driver, cred, found.kept.conversation())
            lease.release()
            return None
        except BaseException:
            lease.release()
            raise
        return lease, EmulatedTurn(service, request, cred, driver, turn, estimate_tokens(prompt),
                                   replace(thread, turns=found.kept.turns))

    def _send_new(self, request: ChatRequest, found: Continuation, prompt: str, cred: Credential,
                  driver: Driver, lease: Lease) -> Turn:
        service = self._service
        conversation = found.kept.conversation()
        service.ledger.opened(cred, conversation, lease.holder)
        blobs = service.media.resolve(replace(request, messages=found.new_messages))
        try:
            attachments = tuple(service.uploads.attach(driver, cred, blob) for blob in blobs)
        finally:
            close_all(blobs)
        turn_input = TurnInput(prompt, service.upstream_model(request.model), attachments, request.web_search)
        return pacing.retry_unsent(lambda: driver.send(cred, conversation, turn_input), f"{driver.name} send")

    def _new_prompt(self, request: ChatRequest, found: Continuation) -> str:
        """The new messages only, in the transcript's labels and tool convention."""
        new = found.new_messages
        if len(new) == 1 and new[0].role == "user":
            prompt = render_body(new[0])
        else:
            prompt = TURN_SEPARATOR.join(render_message(message) for message in new)
        if tools.uses_tools(request) and tools.choice_rule(request.tool_choice):
            prompt += TURN_SEPARATOR + tools.choice_rule(request.tool_choice)
        elif json_mode(request):
            prompt += TURN_SEPARATOR + json_instruction(request.response_format.schema)
        return prompt


class EmulatedTurn:
    """One generation's side on a text-only surface (see the module doc)."""

    def __init__(self, service: ChatService, request: ChatRequest, cred: Credential, driver: Driver,
                 turn: Turn, input_tokens: int, thread: Thread) -> None:
        self._service = service
        self.request = request
        self.cred = cred
        self.driver = driver
        self.turn = turn
        self.conversation = turn.conversation
        self.input_tokens = input_tokens
        self.thread = thread
        self._answer = AnswerRecorder()
        self._retried = False  # a corrective tool-call turn happened: the client never saw it

    def upstream_events(self) -> Iterator[Event | None]:
        """The current upstream turn's events as chat events (None: nothing new)."""
        return (translate(event) for event in self.turn.events())

    def shape(self, relay: Relay) -> Iterator[Event]:
        """The relayed events with the emulations applied, then token usage estimated."""
        request = self.request
        raw: Iterator[Event] = relay()
        if request.web_search:
            query = last_user_text(request.messages)[:SEARCH_QUERY_CHARS]
            raw = transforms.search_results(raw, query, WEB_SEARCH_STEP)
        if tools.uses_tools(request):
            rules = tools.ToolRules(request.tools, request.tool_choice)
            raw = tools.tool_calls(raw, rules, lambda text: self._follow_up(text, relay))
        stopped = transforms.cut_at_stop_sequences(raw, request.stop)
        limited = transforms.limit_output_tokens(stopped, request.max_output_tokens)
        shaped = transforms.json_only(limited) if json_mode(request) else limited
        for event in transforms.count_usage(shaped, self.input_tokens):
            self._answer.see(event)
            yield event

    def stop(self) -> None:
        self.turn.stop()

    def closed(self) -> None:
        """Keep the conversation for the next turn when the upstream holds exactly what the
        client has, else discard it (before the lease goes, so the sweep leaves it alone)."""
        service = self._service
        if (service.keeper.enabled and self._answer.clean and not self._retried
                and not self.request.web_search and self.conversation.id is not None):
            kept_for = service.keeper.ttl
            service.ledger.kept(self.conversation, time.time() + kept_for)
            kept = KeptConversation(self.conversation.surface, str(self.conversation.id), self.cred.key,
                                    len(self.request.messages) + 1, self.thread.turns + 1)
            service.keeper.keep(self.request, self.thread.seed, self._answer.message(), kept)
        else:
            service.discard(self.driver, self.cred, self.conversation)

    def _follow_up(self, text: str, relay: Relay) -> Iterator[Event]:
        """The corrective tool-call retry: another turn in the same upstream conversation,
        relayed like the first (the client never sees the failed one)."""
        self._retried = True
        try:
            self._send_follow_up(text)
        except GatewayError as error:
            yield StreamError(error)
            return
        yield from relay()

    def _send_follow_up(self, text: str) -> None:
        self.turn.stop()
        turn = TurnInput(text, self._service.upstream_model(self.request.model))

        def send() -> Turn:
            return self.driver.send(self.cred, self.conversation, turn)

        try:  # the stopped turn may take a moment to wind down
            self.turn = pacing.retry(send, pacing.FOLLOW_UP_BUSY_DELAYS, retry_on=(AccountInUse,),
                                     what="follow-up turn")
        except AccountInUse:
            raise AccountsBusy("The MiniMax chat stayed busy; the tool call could not be retried.") from None
        self.conversation = self.turn.conversation


def translate(event: object) -> Event | None:
    """One upstream event as a chat event (None for "nothing new")."""
    match event:
        case UpText(text=text):
            return TextDelta(text)
        case UpReasoning(text=text):
            return ReasoningDelta(text)
        case UpStep(name=name, content=content):
            return AgentStep(name, content)
        case TurnFinished():
            return Finish("stop")
        case TurnFailed(error=error):
            return StreamError(error)
    return None


def json_mode(request: ChatRequest) -> bool:
    """JSON output was asked for and no tool calling takes precedence over it."""
    return request.response_format.kind == "json" and not tools.uses_tools(request)
