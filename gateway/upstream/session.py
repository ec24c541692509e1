"""The session surface (the 2026 web app): a session per conversation, turns streamed as SSE.

Opening sequence, once per account and process: ``config`` (which also creates the
account's agent-side record and lists the models) under the first session path prefix
that answers JSON, then the agent list, from which the configured role is picked. A
conversation is a session of that agent; each turn is POSTed to the *stream* host and
its answer read as it arrives: chunk deltas become text and reasoning events, the user
echo and heartbeats are never output, the closing whole message is used only when no
delta came, and the turn ends at a finishing chunk, the closing message or ``[DONE]``
(the connection may stay open after that, so EOF is not waited for). Nothing is polled.
Request and answer shapes are in :mod:`gateway.upstream.session_shapes`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
import sseclient

from gateway.errors import (
    AccountInUse,
    GatewayError,
    QuotaExhausted,
    UpstreamBadAnswer,
    UpstreamError,
    UpstreamServerError,
    UpstreamUnavailable,
    UpstreamWrongPath,
)
from gateway.upstream import constants as C
from gateway.upstream import files, pacing
from gateway.upstream import session_shapes as S
from gateway.upstream.answers import error_for
from gateway.upstream.boundary import chunks
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
from gateway.upstream.settings import UpstreamSettings
from gateway.upstream.walls import is_quota_wall, quota_guarded

log = logging.getLogger(__name__)

NAME = "session"
#: After closing a running turn's stream: how often and how long its status is read.
STOP_CHECK_INTERVAL = 0.1
STOP_CHECK_SECONDS = 3.0
#: Words of an error text that mean the plan's quota is spent, not a passing failure.
QUOTA_WORDS = ("quota", "credit", "usage limit", "额度", "积分")


@dataclass
class _Opened:
    """What the opening sequence learned about one account."""

    prefix: str | None = None
    agent_id: str | None = None
    models: list[S.ModelInfo] = field(default_factory=list)
    #: uploads/prepare was refused or missing: upload by the legacy STS steps.
    sts_uploads: bool = False


class SessionDriver:
    """The session surface for the chat core."""

    name = NAME
    capabilities = TEXT_ONLY

    def __init__(self, client: UpstreamClient, settings: UpstreamSettings) -> None:
        self.client = client
        self.settings = settings
        self._opened: dict[str, _Opened] = {}
        self._lock = threading.Lock()

    # -- the driver API -------------------------------------------------------------------
    def probe(self, cred: Credential) -> None:
        """``config`` under each prefix in turn; the first JSON answer wins (and is kept)."""
        opened = self._state(cred)
        for prefix in self.settings.session_prefixes:
            try:
                config = self.client.call(cred, "GET", prefix + C.SESSION_PATH_CONFIG)
            except UpstreamWrongPath:
                continue
            opened.prefix, opened.models = prefix, S.models_of(config)
            return
        opened.prefix = None
        raise UpstreamWrongPath("No session API path prefix answered "
                                f"({', '.join(self.settings.session_prefixes)}).")

    def open(self, cred: Credential, model: str) -> Conversation:
        opened = self._ready(cred)
        path = _path(opened, C.SESSION_PATH_CREATE.format(agent_id=opened.agent_id))
        answer = self.client.call(cred, "POST", path, S.create_body(self.model_for(opened, model).model_id))
        session_id = S.session_id_of(answer)
        if session_id is None:
            raise UpstreamBadAnswer("MiniMax created no session (no session id in its answer).")
        return Conversation(NAME, session_id)

    def send(self, cred: Credential, conversation: Conversation, turn: TurnInput) -> SessionTurn:
        opened = self._ready(cred)
        assert conversation.id is not None, "a session is opened before its first turn"
        body = S.message_body(turn.text, self.model_for(opened, turn.model), str(uuid.uuid4()),
                              turn.attachments)
        path = _path(opened, C.SESSION_PATH_MESSAGE.format(session_id=conversation.id))
        stack = contextlib.ExitStack()
        response = stack.enter_context(self.client.open_stream(cred, path, body))
        return SessionTurn(conversation, response, stack, lambda: self._idle(cred, conversation))

    def discard(self, cred: Credential, conversation: Conversation) -> None:
        if conversation.id is None:
            return
        opened = self._ready(cred)
        if self.settings.session_cleanup == "delete":
            path = _path(opened, C.SESSION_PATH_DELETE.format(session_id=conversation.id))
            self.client.call(cred, "DELETE", path)
        else:
            path = _path(opened, C.SESSION_PATH_ARCHIVE.format(session_id=conversation.id))
            self.client.call(cred, "POST", path, dict(S.ARCHIVE_BODY))

    def upload(self, cred: Credential, item: Upload) -> Attachment:
        """uploads/prepare, or the legacy STS steps where it is refused or missing (then
        for good on this account): a file uploaded so is attached by its ``ossPath``."""
        opened = self._ready(cred)
        if not opened.sts_uploads:
            try:
                return self._prepared_upload(cred, opened, item)
            except UpstreamError as error:
                if not _prepare_unavailable(error):
                    raise
                log.info("uploads/prepare unavailable for account %s (%s): legacy STS uploads instead",
                         cred.key, type(error).__name__)
                opened.sts_uploads = True
        attachment = files.upload(self.client, cred, item)
        if not attachment.oss_path:
            raise UpstreamBadAnswer("MiniMax's upload callback named no ossPath to attach the file by.")
        return attachment

    def _prepared_upload(self, cred: Credential, opened: _Opened, item: Upload) -> Attachment:
        answer = self.client.call(cred, "POST", _path(opened, C.SESSION_PATH_UPLOAD_PREPARE),
                                  S.prepare_body(item.filename, item.mime_type, item.size))
        instruction = S.upload_instruction_of(answer)
        if instruction is None:
            raise UpstreamBadAnswer("MiniMax's upload preparation gave no upload instruction.")
        item.file.seek(0)
        self.client.post_form(instruction.url, instruction.fields,
                              (item.filename, item.file, item.mime_type))
        return Attachment(instruction.object_key, item.filename, item.mime_type, item.size,
                          item.is_image)

    def _idle(self, cred: Credential, conversation: Conversation) -> None:
        """Wait (briefly) until the session reports no running turn, so the account's
        next generation cannot overlap this one."""
        def idle() -> bool | None:
            return True if not S.turn_running(self.status(cred, conversation)) else None

        try:
            pacing.poll(idle, STOP_CHECK_INTERVAL, STOP_CHECK_SECONDS, lambda: AccountInUse())
        except GatewayError as error:
            log.info("session %s not seen idle after its stream was closed (%s)",
                     conversation.id, type(error).__name__)

    def status(self, cred: Credential, conversation: Conversation) -> dict[str, Any]:
        """The session's status record (the doctor shows it)."""
        opened = self._ready(cred)
        path = _path(opened, C.SESSION_PATH_STATUS.format(session_id=conversation.id))
        return self.client.call(cred, "GET", path)

    def agent_id(self, cred: Credential) -> str | None:
        return self._ready(cred).agent_id

    def models(self, cred: Credential) -> list[str]:
        """The account's live model catalogue."""
        return [m.model_id for m in self._ready(cred).models]

    def model_for(self, opened: _Opened, requested: str) -> S.ModelInfo:
        """The requested model when the catalogue has it, else the catalogue's first."""
        catalogue = opened.models or [S.ModelInfo(name, ("",)) for name in C.SESSION_MODELS]
        return next((m for m in catalogue if m.model_id == requested), catalogue[0])

    # -- the opening sequence -------------------------------------------------------------
    def _state(self, cred: Credential) -> _Opened:
        with self._lock:
            return self._opened.setdefault(cred.key, _Opened())

    def _ready(self, cred: Credential) -> _Opened:
        opened = self._state(cred)
        if opened.prefix is None:
            self.probe(cred)
        if opened.agent_id is None:
            opened.agent_id = self._agent(cred, opened)
        return opened

    def _agent(self, cred: Credential, opened: _Opened) -> str:
        answer = self.client.call(cred, "GET", _path(opened, C.SESSION_PATH_AGENTS),
                                  leading_query=(("limit", C.SESSION_AGENT_LIMIT),))
        agents = S.agents_of(answer)
        if not agents:
            raise UpstreamBadAnswer("MiniMax listed no agent for this account.")
        for role in (self.settings.agent_role, *C.AGENT_ROLE_FALLBACKS):
            chosen = next((agent_id for agent_id, agent_role in agents if agent_role == role), None)
            if chosen is not None:
                return chosen
        return agents[0][0]

    def forget(self, cred: Credential) -> None:
        """Run the opening sequence again next time (after a wrong-path answer)."""
        with self._lock:
            self._opened.pop(cred.key, None)


def _path(opened: _Opened, tail: str) -> str:
    return f"{opened.prefix}{tail}"


def _prepare_unavailable(error: UpstreamError) -> bool:
    """uploads/prepare is missing (the site's page, 404, no instruction) or refused (a
    4xx or business error), as opposed to busy, failing (5xx) or a refused signature."""
    return isinstance(error, UpstreamBadAnswer) or type(error) is UpstreamError


class SessionTurn:
    """One turn's answer stream."""

    def __init__(self, conversation: Conversation, response: requests.Response,
                 stack: contextlib.ExitStack, wait_idle: Callable[[], None] = lambda: None) -> None:
        self.conversation = conversation
        self.finished = False
        self._stopped = False
        self._wait_idle = wait_idle
        self._response = response
        self._stack = stack
        self._saw_text = False
        self._answer_id: int | None = None
        self._steps_seen: set[str] = set()

    def events(self) -> Iterator[UpstreamEvent]:
        return quota_guarded(self._events())

    def _events(self) -> Iterator[UpstreamEvent]:
        try:
            for event in sseclient.SSEClient(chunks(self._response)).events():
                outcome = list(self._read(S.read_frame(event.data)))
                yield from outcome
                if outcome and isinstance(outcome[-1], (TurnFinished, TurnFailed)):
                    return
            if not C.SESSION_EOF_ENDS_TURN:
                yield TurnFailed(UpstreamUnavailable(
                    "MiniMax closed the answer stream before the turn finished."))
            else:
                yield self._finish()
        except GatewayError as error:
            yield TurnFailed(error)
        finally:
            self._stack.close()

    def stop(self) -> None:
        # [assumed] closing the stream is how a running turn is stopped: no stop call is
        # captured, so the status is read until the turn is seen idle.
        self._stack.close()
        if not (self.finished or self._stopped):
            self._stopped = True
            self._wait_idle()

    def _read(self, frame: S.Frame) -> Iterator[UpstreamEvent]:
        if frame.kind == "done":
            yield self._finish()
        elif frame.kind == "error":
            code, text = S.error_of(frame.body)
            yield TurnFailed(error_for(code, text, 200))
        elif frame.kind == "chunk":
            yield from self._chunk(frame.body)
        elif frame.kind == "message":
            yield from self._message(frame.body)
        else:
            yield UpIdle()  # heartbeats and events of no interest here

    def _chunk(self, chunk: dict[str, Any]) -> Iterator[UpstreamEvent]:
        if chunk.get("role", "assistant") != "assistant":
            yield UpIdle()
            return
        self._note_id(chunk)
        reasoning, text = S.text_of(chunk.get("thinking_content")), S.answer_text(chunk)
        if reasoning:
            yield UpReasoning(reasoning)
        for step in S.tool_steps_of(chunk):
            if not step.call_id or step.call_id not in self._steps_seen:  # a result may repeat
                self._steps_seen.add(step.call_id)
                yield UpStep(step.name, step.result)
        if text:
            self._saw_text = True
            yield UpText(text)
        if chunk.get("finish_reason") == "error":
            yield TurnFailed(_failure(text))
        elif chunk.get("finish") is True and self._saw_text:
            yield self._finish()
        elif not (reasoning or text):
            yield UpIdle()

    def _message(self, message: dict[str, Any]) -> Iterator[UpstreamEvent]:
        if message.get("role") != "assistant":
            yield UpIdle()  # the echo of what was sent: never output
            return
        self._note_id(message)
        text = S.answer_text(message)
        if message.get("finish_reason") == "error":
            yield TurnFailed(_failure(text))
            return
        if not self._saw_text:  # the closing message restates the deltas: use it only alone
            reasoning = S.text_of(message.get("thinking_content"))
            if reasoning:
                yield UpReasoning(reasoning)
            if text:
                self._saw_text = True
                yield UpText(text)
        yield self._finish()

    def _note_id(self, body: dict[str, Any]) -> None:
        msg_id = body.get("msg_id")
        if isinstance(msg_id, int) and not isinstance(msg_id, bool):
            self._answer_id = msg_id

    def _finish(self) -> TurnFinished:
        self.finished = True
        self._stack.close()  # the connection may linger after the turn: let it go now
        return TurnFinished(self._answer_id)


def _failure(text: str) -> GatewayError:
    """A turn that ended with ``finish_reason: "error"``: quota when it says so, else transient."""
    if is_quota_wall(text) or any(word in text.lower() for word in QUOTA_WORDS):
        return QuotaExhausted(f"MiniMax ended the answer: {text[:200]}")
    return UpstreamServerError(f"MiniMax ended the answer with an error: {text[:200]}")
