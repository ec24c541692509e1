"""The chat service: one neutral request in, one neutral event stream out.

:meth:`ChatService.open` does everything that can fail before a response starts (fold
the prompt, lease an account, open a conversation and send the turn on the account's
upstream surface), so callers can still answer with a proper HTTP status. The returned
:class:`Generation` then turns the driver's upstream events into chat events, adds
keep-alives and the answer deadline, notices a client that went away, and always cleans
up: stop the turn if it is unfinished, free the account, discard the conversation.
Which surface answers (session stream or matrix polls) is the upstream package's affair.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from gateway.chat import tools, transforms
from gateway.chat.continuation import AnswerRecorder, Continuation, ConversationKeeper, KeptConversation, context_seed
from gateway.chat.health import AccountHealth, Activity
from gateway.chat.janitor import Janitor
from gateway.chat.ledger import ChatLedger
from gateway.chat.media import Blob, MediaResolver, close_all
from gateway.chat.pool import AccountPool, Accounts, Lease, as_accounts
from gateway.chat.prompt import (
    TURN_SEPARATOR,
    PartRenderer,
    fold,
    json_instruction,
    render_body,
    render_message,
    render_part,
)
from gateway.chat.settings import ChatSettings
from gateway.chat.tokens import estimate_tokens
from gateway.chat.uploads import UploadCache
from gateway.errors import (
    AccountInUse,
    AccountRefused,
    AccountsBusy,
    AuthenticationFailed,
    ClientGone,
    GatewayError,
    InvalidRequest,
    NoWorkingAccount,
    QuotaExhausted,
    UpstreamNotReached,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamWrongPath,
)
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
    last_user_text,
)
from gateway.upstream import pacing
from gateway.upstream.client import UpstreamClient
from gateway.upstream.constants import WEB_SEARCH_STEP
from gateway.upstream.conversation import (
    Conversation,
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
from gateway.upstream.surfaces import Surfaces

log = logging.getLogger(__name__)

#: How much of the question is reported as the search query.
SEARCH_QUERY_CHARS = 200
#: Chat calls refused in a way that may mean "wrong surface" rather than "dead account".
REFUSED = (UpstreamUnauthorized, UpstreamWrongPath)

Disconnected = Callable[[], bool]
T = TypeVar("T")
#: Seconds a continuing request's claim on its kept chat outlasts its wait for the
#: account (the claim ends when the turn is recorded as sent, a moment after the lease).
CLAIM_SLACK = 10.0
#: Before the one new attempt at a call that provably never reached the upstream.
UNSENT_RETRY_DELAYS: tuple[float, ...] = (0.5,)


@dataclass(frozen=True)
class Thread:
    """The upstream conversation a generation is a turn of: what every turn of it shares
    (:func:`context_seed`) and how many turns it had before this one."""

    seed: str
    turns: int = 0


class ChatService:
    """Runs neutral chat requests on the upstream.

    Account health, the record of created conversations and the activity counts live in
    the pool's shared state, like the leases.
    """

    def __init__(
        self,
        client: UpstreamClient,
        surfaces: Surfaces,
        pool: AccountPool,
        janitor: Janitor,
        settings: ChatSettings,
        media: MediaResolver,
    ) -> None:
        self.client = client
        self.surfaces = surfaces
        self.pool = pool
        self.janitor = janitor
        self.settings = settings
        self.media = media
        self.uploads = UploadCache(pool.state)
        self.health = AccountHealth(pool.state)
        self.ledger = ChatLedger(pool.state)
        self.activity = Activity(pool.state)
        self.keeper = ConversationKeeper(pool.state, settings.conversation_ttl)

    def upstream_model(self, requested: str) -> str:
        """The upstream model for any requested name (unknown names get the default)."""
        return requested if requested in self.settings.models else self.settings.models[0]

    def prompt_for(self, request: ChatRequest, renderer: PartRenderer = render_part) -> str:
        prompt = fold(request.messages, self.settings.prompt_max_chars, renderer)
        if tools.uses_tools(request):
            prompt += TURN_SEPARATOR + tools.instructions(request.tools, request.tool_choice)
        elif _json_mode(request):
            prompt += TURN_SEPARATOR + json_instruction(request.response_format.schema)
        return prompt

    def count_tokens(self, request: ChatRequest) -> int:
        return estimate_tokens(self.prompt_for(request))

    def open(
        self,
        request: ChatRequest,
        accounts: Accounts | Sequence[Credential],
        disconnected: Disconnected = lambda: False,
    ) -> Generation:
        """Start a generation; raises :class:`GatewayError` before anything is streamed.

        A request that extends a kept upstream conversation sends only its new messages
        there; any other is folded into one prompt in a new conversation.
        """
        opened_at = time.monotonic()
        chosen = as_accounts(accounts)
        # The seed hashes the tool set (tens of KB for an agent): only worth it when keeping.
        seed = context_seed(request, chosen.caller, self.upstream_model(request.model)) if self.keeper.enabled else ""
        thread = Thread(seed)
        started = self._continue(request, chosen, thread, disconnected) if self.keeper.enabled else None
        if started is None:
            prompt = self.prompt_for(request)
            if not prompt:  # the upstream refuses a turn without text (a 502 otherwise)
                raise InvalidRequest("The message has no content: send text or an attachment.", param="messages")
            blobs = self.media.resolve(request)  # fetched once, uploaded per account
            try:
                started = (*self._send(request, prompt, blobs, chosen, disconnected), prompt, thread)
            finally:
                close_all(blobs)
        lease, driver, turn, sent, thread = started
        return Generation(self, request, lease, driver, turn, estimate_tokens(sent),
                          disconnected, opened_at, thread)

    def _continue(self, request: ChatRequest, accounts: Accounts, thread: Thread,
                  disconnected: Disconnected) -> tuple[Lease, Driver, Turn, str, Thread] | None:
        """Send only the new messages into the kept conversation the request extends."""
        found = self.keeper.find(request, thread.seed, [cred.key for cred in accounts.credentials])
        if found is None:
            return None
        self.keeper.forget(found.key)  # taken: no other request continues it meanwhile
        claim = self.ledger.claim(found.kept.conversation(), self.settings.conversation_wait + CLAIM_SLACK)
        if claim is None:  # the sweep took it first: it is being deleted
            return None
        prompt = self._new_prompt(request, found)
        cred = next(cred for cred in accounts.credentials if cred.key == found.kept.account)
        driver = self.surfaces.drivers[found.kept.surface]
        try:
            lease = self.pool.acquire([cred], self.settings.conversation_wait, accounts.tag)
        except AccountsBusy:
            log.info("the account of %s %s stayed busy; folding instead", found.kept.surface, found.kept.id)
            self.janitor.discard(driver, cred, found.kept.conversation())
            return None
        if disconnected():  # it left while waiting: the chat stays as it was, for a retry
            lease.release()
            self.keeper.restore(found)
            self.ledger.unclaim(claim, time.time() + self.keeper.ttl)
            raise ClientGone()
        try:
            turn = self._send_new(request, found, prompt, cred, driver, lease)
        except GatewayError as error:  # e.g. the chat is gone: fold it all, as before
            log.info("could not continue %s %s (%s); folding instead", found.kept.surface, found.kept.id,
                     type(error).__name__)
            self.discard(driver, cred, found.kept.conversation())
            lease.release()
            return None
        except BaseException:
            lease.release()
            raise
        return lease, driver, turn, prompt, replace(thread, turns=found.kept.turns)

    def _send_new(self, request: ChatRequest, found: Continuation, prompt: str, cred: Credential,
                  driver: Driver, lease: Lease) -> Turn:
        conversation = found.kept.conversation()
        self.ledger.opened(cred, conversation, lease.holder)
        blobs = self.media.resolve(replace(request, messages=found.new_messages))
        try:
            attachments = tuple(self.uploads.attach(driver, cred, blob) for blob in blobs)
        finally:
            close_all(blobs)
        model = self.upstream_model(request.model)
        turn_input = TurnInput(prompt, model, attachments, request.web_search)
        return _unsent_retried(lambda: driver.send(cred, conversation, turn_input), f"{driver.name} send")

    def _new_prompt(self, request: ChatRequest, found: Continuation) -> str:
        """The new messages only, in the transcript's labels and tool convention."""
        new = found.new_messages
        if len(new) == 1 and new[0].role == "user":
            prompt = render_body(new[0])
        else:
            prompt = TURN_SEPARATOR.join(render_message(message) for message in new)
        if tools.uses_tools(request) and tools.choice_rule(request.tool_choice):
            prompt += TURN_SEPARATOR + tools.choice_rule(request.tool_choice)
        elif _json_mode(request):
            prompt += TURN_SEPARATOR + json_instruction(request.response_format.schema)
        return prompt

    def start_turn(self, cred: Credential, text: str, model: str, blobs: Sequence[Blob] = (),
                   web_search: bool = False, holder: str = "") -> tuple[Driver, Turn]:
        """Open a conversation on the account's surface and send its first turn.

        A refusal makes the account suspect and its token be checked; one that may mean
        the surface changed makes the surface be probed again and the turn be sent once
        more on the new one. The conversation is recorded for the sweep as soon as its id
        is known (under the lease ``holder``), and handed to the janitor when the send
        fails after it was opened.
        """
        for attempt in (1, 2):
            driver = self.surfaces.driver_for(cred)
            try:
                return driver, self._open_and_send(driver, cred, text, model, blobs, web_search, holder)
            except REFUSED as error:
                self.health.suspect(cred.key, error)
                self.surfaces.after_refusal(cred, driver.name, may_retry=attempt == 1)
        raise AssertionError("unreachable: the second refusal raises")

    def _open_and_send(self, driver: Driver, cred: Credential, text: str, model: str,
                       blobs: Sequence[Blob], web_search: bool, holder: str) -> Turn:
        attachments = tuple(self.uploads.attach(driver, cred, blob) for blob in blobs)
        conversation = _unsent_retried(lambda: driver.open(cred, model), f"opening a {driver.name} chat")
        self.ledger.opened(cred, conversation, holder)
        turn_input = TurnInput(text, model, attachments, web_search)
        try:
            turn = _unsent_retried(lambda: driver.send(cred, conversation, turn_input), f"{driver.name} send")
        except BaseException:
            self.discard(driver, cred, conversation)
            raise
        if turn.conversation.id != conversation.id:  # matrix: the chat id comes with the send
            self.ledger.opened(cred, turn.conversation, holder)
        return turn

    def discard(self, driver: Driver, cred: Credential, conversation: Conversation) -> None:
        if conversation.id is not None:
            self.ledger.closed(conversation)
            self.janitor.discard(driver, cred, conversation)

    def lease(self, accounts: Accounts, timeout: float) -> Lease:
        """A free account of the request's (a server pool's dead accounts are skipped)."""
        return self.pool.acquire(self._usable(accounts), timeout, accounts.tag)

    def _usable(self, accounts: Accounts) -> list[Credential]:
        candidates = list(accounts.credentials)
        if not candidates:
            raise NoWorkingAccount("This gateway has no MiniMax accounts configured (GATEWAY_ACCOUNTS_FILE).")
        if accounts.server:
            dead = self.health.dead_among([cred.key for cred in candidates])
            candidates = [cred for cred in candidates if cred.key not in dead]
        if not candidates:
            raise NoWorkingAccount()
        return candidates

    def _send(
        self, request: ChatRequest, prompt: str, blobs: list[Blob], accounts: Accounts,
        disconnected: Disconnected = lambda: False,
    ) -> tuple[Lease, Driver, Turn]:
        """Send on a free account; move on when one is busy, refused or out of credits."""
        deadline = time.monotonic() + self.settings.queue_timeout
        candidates = self._usable(accounts)
        model = self.upstream_model(request.model)
        while True:
            waited = time.monotonic()
            lease = self.pool.acquire(candidates, max(0.0, deadline - time.monotonic()), accounts.tag)
            metrics().queue_wait.observe(time.monotonic() - waited)
            cred = lease.credential
            if disconnected():  # it left while queued: a turn sent now would be for nobody
                lease.release()
                raise ClientGone()
            try:
                driver, turn = self.start_turn(cred, prompt, model, blobs, request.web_search, lease.holder)
                return lease, driver, turn
            except AccountInUse:  # busy is not failure: the account only cools down
                lease.release(cooldown=self.settings.busy_cooldown)
            except (AuthenticationFailed, QuotaExhausted, AccountRefused) as error:
                # This account cannot answer; another one of the request's may.
                self._account_failed(cred, error)
                lease.release(dead=isinstance(error, AuthenticationFailed))
                candidates.remove(cred)
                if not candidates:
                    raise
            except GatewayError as error:
                self._account_failed(cred, error)
                lease.release()
                raise
            except BaseException:
                lease.release()
                raise

    def _account_failed(self, cred: Credential, error: GatewayError) -> None:
        if isinstance(error, AuthenticationFailed):
            self.health.dead(cred.key, error)  # the identity check confirmed the refusal
        elif isinstance(error, AccountRefused):
            self.health.suspect(cred.key, error)  # refused, yet the token is valid
        else:
            self.health.failed(cred.key, error)

    def answered(self, cred: Credential, surface: str) -> None:
        self.health.ok(cred.key, surface)
        self.health.answered(cred.key)

    def stream_failed(self, cred: Credential, error: GatewayError) -> None:
        self.health.failed(cred.key, error)
        self.activity.error()


class Generation:
    """One upstream turn being streamed; iterate :meth:`events` once."""

    def __init__(
        self,
        service: ChatService,
        request: ChatRequest,
        lease: Lease,
        driver: Driver,
        turn: Turn,
        input_tokens: int,
        disconnected: Disconnected,
        opened_at: float,
        thread: Thread,
    ) -> None:
        self._service = service
        self._settings = service.settings
        self.request = request
        self.lease = lease
        self.driver = driver
        self.turn = turn
        self.conversation = turn.conversation
        self.input_tokens = input_tokens
        self._disconnected = disconnected
        self._closed = False
        self.opened_at = opened_at  # when the request arrived: time to first token counts from it
        self._first_content: float | None = None
        self.thread = thread
        self._answer = AnswerRecorder()
        self._retried = False  # a corrective tool-call turn happened: the client never saw it

    def events(self) -> Generator[Event, None, None]:
        """The answer as neutral events, ending with Usage + Finish or a StreamError."""
        raw: Iterator[Event] = self._relay()
        if self.request.web_search:
            query = last_user_text(self.request.messages)[:SEARCH_QUERY_CHARS]
            raw = transforms.search_results(raw, query, WEB_SEARCH_STEP)
        if tools.uses_tools(self.request):
            rules = tools.ToolRules(self.request.tools, self.request.tool_choice)
            raw = tools.tool_calls(raw, rules, self._follow_up)
        stopped = transforms.cut_at_stop_sequences(raw, self.request.stop)
        limited = transforms.limit_output_tokens(stopped, self.request.max_output_tokens)
        shaped = transforms.json_only(limited) if _json_mode(self.request) else limited
        metrics().open_streams.inc()
        try:
            yield from self._observed(transforms.count_usage(shaped, self.input_tokens))
        finally:
            metrics().open_streams.dec()
            self.close()

    def _observed(self, events: Iterator[Event]) -> Iterator[Event]:
        """The events, told to the account's health as they end the answer."""
        for event in events:
            self._answer.see(event)
            if isinstance(event, Finish):
                self._service.answered(self.lease.credential, self.conversation.surface)
            elif isinstance(event, StreamError):
                self._service.stream_failed(self.lease.credential, event.error)
            yield event

    def result(self) -> ChatResult:
        """The whole answer (for non-stream replies); raises the error of a failed stream."""
        events = self.events()
        try:
            return collect(events)
        finally:
            events.close()

    def close(self) -> None:
        """Stop an unfinished turn, free the account, then keep the conversation for the
        next turn or discard it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.turn.stop()
        finally:
            # Marked kept or closed before the lease goes, so the sweep leaves it alone.
            if self._keepable():
                self._keep()
            else:
                self._service.discard(self.driver, self.lease.credential, self.conversation)
            self.lease.release()

    def _keepable(self) -> bool:
        """Whether the upstream holds exactly the history the client now has."""
        return (self._service.keeper.enabled and self._answer.clean and not self._retried
                and not self.request.web_search and self.conversation.id is not None)

    def _keep(self) -> None:
        service, kept_for = self._service, self._service.keeper.ttl
        service.ledger.kept(self.conversation, time.time() + kept_for)
        kept = KeptConversation(self.conversation.surface, str(self.conversation.id), self.lease.credential.key,
                                len(self.request.messages) + 1, self.thread.turns + 1)
        service.keeper.keep(self.request, self.thread.seed, self._answer.message(), kept)

    def _follow_up(self, text: str) -> Iterator[Event]:
        """Another turn in the same upstream conversation (a corrective retry), as raw events."""
        self._retried = True
        try:
            self._send_follow_up(text)
        except GatewayError as error:
            yield StreamError(error)
            return
        yield from self._relay()

    def _send_follow_up(self, text: str) -> None:
        self.turn.stop()
        turn = TurnInput(text, self._service.upstream_model(self.request.model))

        def send() -> Turn:
            return self.driver.send(self.lease.credential, self.conversation, turn)

        try:  # the stopped turn may take a moment to wind down
            self.turn = pacing.retry(send, pacing.FOLLOW_UP_BUSY_DELAYS, retry_on=(AccountInUse,),
                                     what="follow-up turn")
        except AccountInUse:
            raise AccountsBusy("The MiniMax chat stayed busy; the tool call could not be retried.") from None
        self.conversation = self.turn.conversation

    def _relay(self) -> Iterator[Event]:
        """The current turn's upstream events as chat events, with keep-alives and limits."""
        start = last_output = time.monotonic()
        for event in self.turn.events():
            if self._disconnected():
                log.info("client went away; stopping %s conversation %s",
                         self.conversation.surface, self.conversation.id)
                return
            now = time.monotonic()
            chat_event = _translate(event)
            if chat_event is not None:
                self._note_first_content(chat_event, now)
                yield chat_event
                last_output = now
                if isinstance(chat_event, (Finish, StreamError)):
                    return
            if now - start > self._settings.answer_timeout:
                yield StreamError(UpstreamTimeout(
                    "The MiniMax answer took longer than GATEWAY_ANSWER_TIMEOUT."))
                return
            if now - last_output >= self._settings.heartbeat:
                last_output = now
                yield Heartbeat()

    def _note_first_content(self, event: Event, now: float) -> None:
        if self._first_content is None and isinstance(event, (TextDelta, ReasoningDelta, AgentStep)):
            self._first_content = now
            metrics().first_token.observe(now - self.opened_at)


def _unsent_retried(call: Callable[[], T], what: str) -> T:
    """``call()``, made once more when it failed without a connection to the upstream.

    Only such a failure proves that nothing was created (no chat, no generation), so only
    it is retried: a 5xx, a timeout or a connection lost after the request went out may
    have started the turn, and sending it again could generate it twice.
    """
    return pacing.retry(call, UNSENT_RETRY_DELAYS, retry_on=(UpstreamNotReached,), what=what)


def _translate(event: object) -> Event | None:
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


def _json_mode(request: ChatRequest) -> bool:
    """JSON output was asked for and no tool calling takes precedence over it."""
    return request.response_format.kind == "json" and not tools.uses_tools(request)
