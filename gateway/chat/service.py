"""The chat service: one neutral request in, one neutral event stream out.

:meth:`ChatService.open` does everything that can fail before a response starts (fold
the prompt, lease an account, send the message), so callers can still answer with a
proper HTTP status. The returned :class:`Generation` then streams events by polling the
upstream and diffing its cumulative contents, and always cleans up: stop the generation
if it is unfinished, free the account, delete the chat.

Polling adapts: one poll right after sending, then ``poll_first`` while waiting for the
first content, ``poll_steady`` while it flows, ``poll_idle`` after ``idle_after`` seconds
without change; never faster than ``MIN_POLL_INTERVAL``, counted from the previous
poll's answer. The answer ends only when the upstream says the chat is finished.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence

from gateway.chat import tools, transforms
from gateway.chat.janitor import Janitor
from gateway.chat.media import Blob, MediaResolver, close_all
from gateway.chat.model import (
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
from gateway.chat.pool import AccountPool, Lease
from gateway.chat.settings import ChatSettings
from gateway.chat.prompt import TURN_SEPARATOR, PartRenderer, fold, json_instruction, render_part
from gateway.chat.tokens import estimate_tokens
from gateway.chat.uploads import UploadCache
from gateway.metrics import metrics
from gateway.errors import (
    AccountsBusy,
    AuthenticationFailed,
    GatewayError,
    QuotaExhausted,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.upstream.client import AccountBusy, UpstreamClient
from gateway.upstream.credentials import Credential
from gateway.upstream.chat import Snapshot, read_snapshot, send_body, sent_ids
from gateway.upstream.constants import WEB_SEARCH_STEP

log = logging.getLogger(__name__)

MIN_POLL_INTERVAL = 0.2  # at most 5 polls a second per stream
#: Consecutive failed polls tolerated (with backoff) before the stream fails.
MAX_POLL_FAILURES = 4
POLL_BACKOFF = (0.25, 0.5, 1.0, 2.0)
#: How much of the question is reported as the search query.
SEARCH_QUERY_CHARS = 200
#: Waits before re-sending a follow-up turn while the chat still winds down.
FOLLOW_UP_BUSY_DELAYS = (0.3, 0.6, 1.2, 2.4)
#: Failures worth another poll: transport trouble and upstream 5xx.
TRANSIENT_ERRORS = (UpstreamUnavailable, UpstreamTimeout, UpstreamServerError)

Disconnected = Callable[[], bool]


class ChatService:
    """Runs neutral chat requests on the upstream."""

    def __init__(
        self,
        client: UpstreamClient,
        pool: AccountPool,
        janitor: Janitor,
        settings: ChatSettings,
        media: MediaResolver,
    ) -> None:
        self.client = client
        self.pool = pool
        self.janitor = janitor
        self.settings = settings
        self.media = media
        self.uploads = UploadCache(client)

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
        credentials: Sequence[Credential],
        disconnected: Disconnected = lambda: False,
    ) -> Generation:
        """Start a generation; raises :class:`GatewayError` before anything is streamed."""
        opened_at = time.monotonic()
        prompt = self.prompt_for(request)
        blobs = self.media.resolve(request)  # fetched once, uploaded per account
        try:
            lease, chat_id, msg_id = self._send(request, prompt, blobs, credentials)
        finally:
            close_all(blobs)
        return Generation(self, request, lease, chat_id, msg_id, estimate_tokens(prompt),
                          disconnected, opened_at)

    def _send(
        self, request: ChatRequest, prompt: str, blobs: list[Blob], credentials: Sequence[Credential]
    ) -> tuple[Lease, int, int | None]:
        """Send on a free account; move on when one is busy, refused or out of credits."""
        deadline = time.monotonic() + self.settings.queue_timeout
        candidates = list(credentials)
        while True:
            waited = time.monotonic()
            lease = self.pool.acquire(candidates, max(0.0, deadline - time.monotonic()))
            metrics().queue_wait.observe(time.monotonic() - waited)
            try:
                attachments = tuple(self.uploads.attach(lease.credential, blob) for blob in blobs)
                body = send_body(prompt, self.upstream_model(request.model),
                                 attachments=attachments, web_search=request.web_search)
                chat_id, msg_id = sent_ids(self.client.send_message(lease.credential, body))
                return lease, chat_id, msg_id
            except AccountBusy:
                lease.release(cooldown=self.settings.busy_cooldown)
            except (AuthenticationFailed, QuotaExhausted) as error:
                lease.release(dead=isinstance(error, AuthenticationFailed))
                candidates.remove(lease.credential)
                if not candidates:
                    raise
            except BaseException:
                lease.release()
                raise


class Generation:
    """One upstream generation being streamed; iterate :meth:`events` once."""

    def __init__(
        self,
        service: ChatService,
        request: ChatRequest,
        lease: Lease,
        chat_id: int,
        msg_id: int | None,
        input_tokens: int,
        disconnected: Disconnected,
        opened_at: float,
    ) -> None:
        self._service = service
        self._settings = service.settings
        self.request = request
        self.lease = lease
        self.chat_id = chat_id
        self.msg_id = msg_id
        self.input_tokens = input_tokens
        self._disconnected = disconnected
        self.finished = False
        self._closed = False
        self.opened_at = opened_at  # when the request arrived: time to first token counts from it
        self._first_content: float | None = None

    def events(self) -> Iterator[Event]:
        """The answer as neutral events, ending with Usage + Finish or a StreamError."""
        raw: Iterator[Event] = self._guarded(self._poll())
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
            yield from transforms.count_usage(shaped, self.input_tokens)
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
        """Stop an unfinished generation, free the account, delete the chat. Idempotent."""
        if self._closed:
            return
        self._closed = True
        cred = self.lease.credential
        try:
            if not self.finished:
                self._service.client.stop_chat(cred, self.chat_id)
        except GatewayError as error:
            log.info("stop of chat %s failed: %s", self.chat_id, type(error).__name__)
        finally:
            self.lease.release()
            self._service.janitor.delete(cred, self.chat_id)

    def _follow_up(self, text: str) -> Iterator[Event]:
        """Another turn in the same upstream chat (a corrective retry), as raw events."""
        try:
            self._send_follow_up(text)
        except GatewayError as error:
            yield StreamError(error)
            return
        yield from self._guarded(self._poll())

    def _send_follow_up(self, text: str) -> None:
        client, cred = self._service.client, self.lease.credential
        if not self.finished:
            with contextlib.suppress(GatewayError):
                client.stop_chat(cred, self.chat_id)
        body = send_body(text, self._service.upstream_model(self.request.model), chat_id=self.chat_id)
        for delay in FOLLOW_UP_BUSY_DELAYS:
            try:
                _, self.msg_id = sent_ids(client.send_message(cred, body))
                self.finished = False
                return
            except AccountBusy:  # the stopped turn may take a moment to wind down
                time.sleep(delay)
        raise AccountsBusy("The MiniMax chat stayed busy; the tool call could not be retried.")

    def _guarded(self, events: Iterator[Event]) -> Iterator[Event]:
        try:
            yield from events
        except GatewayError as error:
            yield StreamError(error)

    def _poll(self) -> Iterator[Event]:
        shown = Snapshot(False, "", "", ())
        start = last_change = last_output = time.monotonic()
        # The first poll goes at once: a fast upstream may already be done.
        next_poll = start
        while True:
            self._sleep_until(next_poll)
            if self._disconnected():
                log.info("client went away; stopping chat %s", self.chat_id)
                return
            polled_at = time.monotonic()
            snapshot = self._snapshot()
            events = list(_diff(shown, snapshot))
            if snapshot.finished:
                self.finished = True
            if events and self._first_content is None:
                self._first_content = time.monotonic()
                metrics().first_token.observe(self._first_content - self.opened_at)
            yield from events
            if events:
                last_change = last_output = polled_at
            shown = _merge(shown, snapshot)
            if self.finished:
                yield Finish("stop")
                return
            if polled_at - start > self._settings.answer_timeout:
                raise UpstreamTimeout("The MiniMax answer took longer than GATEWAY_ANSWER_TIMEOUT.")
            if polled_at - last_output >= self._settings.heartbeat:
                last_output = polled_at
                yield Heartbeat()
            # Spaced from when this poll's answer arrived, so upstream sees >= the interval
            # between polls even when answer times vary.
            next_poll = time.monotonic() + self._interval(shown, polled_at - last_change)

    def _interval(self, shown: Snapshot, quiet_for: float) -> float:
        settings = self._settings
        if not (shown.text or shown.reasoning or shown.steps):
            interval = settings.poll_first
        elif quiet_for > settings.idle_after:
            interval = settings.poll_idle
        else:
            interval = settings.poll_steady
        return max(MIN_POLL_INTERVAL, interval)

    def _snapshot(self) -> Snapshot:
        """One poll, retrying transient failures with backoff."""
        for attempt in range(MAX_POLL_FAILURES + 1):
            try:
                detail = self._service.client.chat_detail(self.lease.credential, self.chat_id)
                return read_snapshot(detail, self.msg_id)
            except TRANSIENT_ERRORS as error:
                if attempt == MAX_POLL_FAILURES:
                    raise
                log.info("poll of chat %s failed (%s); retrying", self.chat_id, type(error).__name__)
                time.sleep(POLL_BACKOFF[min(attempt, len(POLL_BACKOFF) - 1)])
        raise AssertionError("unreachable")

    def _sleep_until(self, moment: float) -> None:
        delay = moment - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _json_mode(request: ChatRequest) -> bool:
    """JSON output was asked for and no tool calling takes precedence over it."""
    return request.response_format.kind == "json" and not tools.uses_tools(request)


def _finished_steps(snapshot: Snapshot) -> int:
    """How many of the agent's steps are complete: all but the last while it may still run."""
    if snapshot.text or snapshot.finished:
        return len(snapshot.steps)
    return max(0, len(snapshot.steps) - 1)


def _diff(shown: Snapshot, now: Snapshot) -> Iterator[Event]:
    """Events for what ``now`` adds to what was already ``shown``."""
    if len(now.reasoning) > len(shown.reasoning):
        yield ReasoningDelta(now.reasoning[len(shown.reasoning) :])
    for step in now.steps[len(shown.steps) : _finished_steps(now)]:
        yield AgentStep(step.name, step.content)
    if len(now.text) > len(shown.text):
        yield TextDelta(now.text[len(shown.text) :])


def _merge(shown: Snapshot, now: Snapshot) -> Snapshot:
    """What has been shown after emitting :func:`_diff` (content never shrinks)."""
    return Snapshot(
        finished=now.finished,
        text=now.text if len(now.text) > len(shown.text) else shown.text,
        reasoning=now.reasoning if len(now.reasoning) > len(shown.reasoning) else shown.reasoning,
        steps=now.steps[: max(_finished_steps(now), len(shown.steps))],
        title=now.title,
    )
