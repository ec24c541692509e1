"""The chat service: one neutral request in, one neutral event stream out.

:meth:`ChatService.open` does everything that can fail before a response starts (lease
an account, then send the turn on the account's surface), so callers can still answer
with a proper HTTP status. Where the turn goes depends on the surface the account uses:

- a native surface (:mod:`gateway.chat.native`) gets the structured conversation as it
  is, with tools, thinking and images;
- a text-only web surface gets what :mod:`gateway.chat.emulation` makes of it: a folded
  prompt with the tool-call and JSON conventions, or only the new messages of a
  conversation it keeps upstream.

The returned :class:`~gateway.chat.generation.Generation` relays the answer and always
cleans up. Which surface answers is the upstream package's affair; the service only asks
whether it is native.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from gateway.chat import native
from gateway.chat.continuation import ConversationKeeper, context_seed
from gateway.chat.emulation import Emulation, Thread
from gateway.chat.generation import Generation, Side
from gateway.chat.health import AccountHealth, Activity
from gateway.chat.janitor import Janitor
from gateway.chat.ledger import ChatLedger
from gateway.chat.media import Blob, MediaResolver, close_all
from gateway.chat.native import NativeSide
from gateway.chat.pool import AccountPool, Accounts, Lease, as_accounts
from gateway.chat.settings import ChatSettings
from gateway.chat.tokens import CHARS_PER_TOKEN, estimate_tokens
from gateway.chat.uploads import UploadCache
from gateway.errors import (
    AccountInUse,
    AccountRefused,
    AuthenticationFailed,
    ClientGone,
    GatewayError,
    InvalidRequest,
    NoWorkingAccount,
    QuotaExhausted,
    UpstreamRateLimited,
    UpstreamUnauthorized,
    UpstreamWrongPath,
)
from gateway.metrics import metrics
from gateway.parts import ChatRequest, ModelInfo, TextPart
from gateway.upstream import pacing
from gateway.upstream.client import UpstreamClient
from gateway.upstream.conversation import Conversation, Driver, NativeDriver, Turn, TurnInput
from gateway.upstream.credentials import Credential
from gateway.upstream.surfaces import Surfaces

log = logging.getLogger(__name__)

#: Chat calls refused in a way that may mean "wrong surface" rather than "dead account".
REFUSED = (UpstreamUnauthorized, UpstreamWrongPath)
#: Seconds an account out of quota is skipped when the upstream did not say when it resets.
QUOTA_COOLDOWN = 600.0
#: Seconds an account the upstream rate-limited sits out when it named no wait.
RATE_LIMIT_COOLDOWN = 10.0

Disconnected = Callable[[], bool]


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
        self.emulation = Emulation(self)

    def upstream_model(self, requested: str) -> str:
        """The upstream model for any requested name (unknown names get the default)."""
        return requested if requested in self.settings.models else self.settings.models[0]

    def models(self, accounts: Sequence[Credential] = ()) -> tuple[ModelInfo, ...]:
        """The models offered, with the limits the caller gets: for a caller on the code
        surface its catalogue (read with that account, cached; the built-in one before any
        read) with MiniMax's own limits; for anyone else the same names (then the web
        surfaces' own) with the web surfaces' window, the prompt limit the gateway folds to."""
        native = self.surfaces.native
        listed: tuple[ModelInfo, ...] = () if native is None else native.known_models()
        cred = next((c for c in accounts if native is not None and self.surfaces.native_for(c) is native), None)
        if native is not None and cred is not None:
            try:
                return native.catalogue(cred)
            except GatewayError as error:
                log.info("the model catalogue could not be read (%s)", type(error).__name__)
                return listed
        window = self.settings.prompt_max_chars // CHARS_PER_TOKEN
        labels = {model.id: model.label for model in listed}
        names = [*labels, *(name for name in self.settings.models if name not in labels)]
        return tuple(ModelInfo(name, window, 0, labels.get(name, "")) for name in names)

    def count_tokens(self, request: ChatRequest, accounts: Sequence[Credential] = ()) -> int:
        """The upstream's count where the caller's first account is on a surface that
        counts (no generation: no lease), else the local estimate of what would be sent."""
        cred = accounts[0] if accounts else None
        driver = self.surfaces.native_for(cred) if cred is not None else None
        if cred is not None and driver is not None:
            try:
                return driver.count_tokens(cred, request, driver.model_for(request.model))
            except GatewayError as error:
                log.info("the upstream's token count failed (%s); estimating", type(error).__name__)
        return estimate_tokens(self.emulation.prompt_for(request))

    def open(
        self,
        request: ChatRequest,
        accounts: Accounts | Sequence[Credential],
        disconnected: Disconnected = lambda: False,
    ) -> Generation:
        """Start a generation; raises :class:`GatewayError` before anything is streamed.

        A request that extends a kept upstream conversation sends only its new messages
        there; any other starts a new turn on a free account.
        """
        opened_at = time.monotonic()
        accounts = as_accounts(accounts)
        if not _has_content(request):  # the upstream refuses a turn without content
            raise InvalidRequest("The message has no content: send text or an attachment.", param="messages")
        # The seed hashes the tool set (tens of KB for an agent): only worth it when keeping.
        keeping = self.keeper.enabled
        thread = Thread(context_seed(request, accounts.caller, self.upstream_model(request.model)) if keeping else "")
        started: tuple[Lease, Side] | None = None
        if keeping:
            started = self.emulation.continued(request, accounts, thread, disconnected)
        if started is None:
            blobs = self.media.resolve(request)  # fetched once, uploaded or inlined per account
            try:
                started = self._start(request, blobs, accounts, thread, disconnected)
            finally:
                close_all(blobs)
        lease, side = started
        return Generation(self, lease, side, disconnected, opened_at)

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
        conversation = pacing.retry_unsent(lambda: driver.open(cred, model), f"opening a {driver.name} chat")
        self.ledger.opened(cred, conversation, holder)
        turn_input = TurnInput(text, model, attachments, web_search)
        try:
            turn = pacing.retry_unsent(lambda: driver.send(cred, conversation, turn_input), f"{driver.name} send")
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

    def lease(self, accounts: Accounts, timeout: float, web_only: str = "") -> Lease:
        """A free account of the request's (a server pool's dead accounts are skipped);
        with ``web_only`` naming a feature, one of its web accounts."""
        candidates = self._usable(accounts)
        if web_only:
            candidates = _web_accounts(candidates, web_only)
        return self.pool.acquire(candidates, timeout, accounts.tag)

    def _usable(self, accounts: Accounts) -> list[Credential]:
        candidates = list(accounts.credentials)
        if not candidates:
            raise NoWorkingAccount("This gateway has no MiniMax accounts configured (GATEWAY_ACCOUNTS_FILE).")
        if accounts.server:
            dead = self.health.dead_among([cred.key for cred in candidates])
            candidates = [cred for cred in candidates if cred.key not in dead]
        if not candidates:
            raise NoWorkingAccount()
        spent = self.health.out_of_quota_among([cred.key for cred in candidates])
        if len(spent) == len(candidates):
            raise QuotaExhausted("The quota of every MiniMax account of this request is used up; it resets later.",
                                 retry_after=min(spent.values()))
        return [cred for cred in candidates if cred.key not in spent]

    def _start(self, request: ChatRequest, blobs: list[Blob], accounts: Accounts, thread: Thread,
               disconnected: Disconnected) -> tuple[Lease, Side]:
        """Start the turn on a free account of the request's, natively where its surface
        can; move on when one is busy, refused or out of credits."""
        deadline = time.monotonic() + self.settings.queue_timeout
        candidates = self._usable(accounts)
        if request.web_search:  # the web app's own search step: only its surfaces have it
            if request.web_search_optional and not any(cred.kind == "web" for cred in candidates):
                request = replace(request, web_search=False)  # offered, not required: answer without
            else:
                candidates = _web_accounts(candidates, "Web search")
        prompt: str | None = None  # folded once, only if a text-only surface is used
        while True:
            waited = time.monotonic()
            lease = self.pool.acquire(candidates, max(0.0, deadline - time.monotonic()), accounts.tag)
            metrics().queue_wait.observe(time.monotonic() - waited)
            cred = lease.credential
            if disconnected():  # it left while queued: a turn sent now would be for nobody
                lease.release()
                raise ClientGone()
            try:
                driver = None if request.web_search else self.surfaces.native_for(cred)
                if driver is not None:
                    return lease, self._start_native(driver, cred, request, blobs)
                prompt = self.emulation.prompt_for(request) if prompt is None else prompt
                return lease, self.emulation.start(request, prompt, cred, lease, blobs, thread)
            except AccountInUse:  # busy is not failure: the account only cools down
                lease.release(cooldown=self.settings.busy_cooldown)
            except (AuthenticationFailed, QuotaExhausted, AccountRefused, UpstreamRateLimited) as error:
                # This account cannot answer; another one of the request's may.
                self._account_failed(cred, error)
                lease.release(dead=isinstance(error, AuthenticationFailed), cooldown=_cooldown(error))
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

    def _start_native(self, driver: NativeDriver, cred: Credential, request: ChatRequest,
                      blobs: list[Blob]) -> NativeSide:
        model = driver.model_for(request.model)
        turn = pacing.retry_unsent(lambda: native.start(driver, cred, request, model, blobs),
                                   f"{driver.name} send")
        return NativeSide(driver, cred, request, turn)

    def _account_failed(self, cred: Credential, error: GatewayError) -> None:
        if isinstance(error, QuotaExhausted):  # skipped until its window resets (when unknown: a while)
            self.health.out_of_quota(cred.key, error.retry_after or QUOTA_COOLDOWN)
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
        if isinstance(error, QuotaExhausted):
            self.health.out_of_quota(cred.key, error.retry_after or QUOTA_COOLDOWN)
        self.health.failed(cred.key, error)
        self.activity.error()


def _cooldown(error: GatewayError) -> float:
    """How long an account sits out after ``error`` (the upstream's own rate limit)."""
    if isinstance(error, UpstreamRateLimited):
        return error.retry_after or RATE_LIMIT_COOLDOWN
    return 0.0


def _web_accounts(candidates: list[Credential], feature: str) -> list[Credential]:
    """The web accounts among ``candidates``; a 400 naming what is missing when none is."""
    web = [cred for cred in candidates if cred.kind == "web"]
    if not web:
        raise InvalidRequest(f"{feature} needs a MiniMax Agent web account (its _token): the MiniMax Code "
                             "surface has no such feature, and this request has only MiniMax Code accounts.")
    return web


def _has_content(request: ChatRequest) -> bool:
    return any(not isinstance(part, TextPart) or part.text for message in request.messages
               for part in message.parts) or bool(request.tools)
