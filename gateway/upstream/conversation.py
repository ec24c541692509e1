"""The seam between the chat core and the upstream: a small conversation API.

Each surface has one driver, and :mod:`gateway.upstream.surfaces` picks one per account.
A driver declares what it does natively (:class:`Capabilities`); the chat core emulates
the rest, so a capable surface is used as such and a text-only one still serves every
feature.

- A text-only web surface is a :class:`Driver` (:mod:`gateway.upstream.matrix`, polled;
  :mod:`gateway.upstream.session`, streamed): the chat core asks it to open a
  conversation on an account, send a turn into it (text, attachments, model, web
  search), read the turn as one iterator of neutral upstream events, stop it, and
  discard the conversation (delete or archive). Uploads and, through the account-level
  client, speech and account info complete it. Its events are plain frozen values; a
  turn's iterator ends with :class:`TurnFinished` or :class:`TurnFailed` (or simply
  stops when the caller abandons it).
- A surface that takes the structured conversation is a :class:`NativeDriver`
  (:mod:`gateway.upstream.code`): each turn carries the whole history, tools, thinking
  and images as they are, and answers in the neutral chat events of
  :mod:`gateway.parts` with the upstream's own token usage. It keeps no conversation
  upstream, so there is nothing to discard.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Protocol

from gateway.errors import GatewayError
from gateway.parts import ChatRequest, Event, ModelInfo
from gateway.upstream.credentials import Credential


@dataclass(frozen=True)
class Capabilities:
    """What a surface does natively (the chat core emulates what it does not)."""

    tools: bool = False
    thinking: bool = False
    images: bool = False
    #: Every turn carries the whole structured conversation (nothing kept upstream).
    full_history: bool = False
    token_counting: bool = False
    #: The upstream's own web-search step, speech and transcription (web surfaces).
    web_search: bool = False
    speech: bool = False


#: The MiniMax Agent web app's surfaces: text in, text out, plus its own agent steps.
TEXT_ONLY = Capabilities(web_search=True, speech=True)


# -- what goes in -------------------------------------------------------------------------
@dataclass(frozen=True)
class Attachment:
    """A file already uploaded on one surface for one account, ready to attach."""

    ref: str  # matrix: the file id; session: the object key
    file_name: str
    mime_type: str
    size: int
    is_image: bool
    #: Session surface, uploaded by the legacy STS steps: the ``ossPath`` it is attached by.
    oss_path: str = ""


@dataclass(frozen=True, repr=False)
class Upload:
    """What is being uploaded (the body is streamed from ``file``)."""

    file: IO[bytes]
    size: int
    md5: bytes
    mime_type: str
    filename: str
    is_image: bool

    def __repr__(self) -> str:
        return f"Upload({self.filename!r}, {self.size} bytes)"


@dataclass(frozen=True)
class TurnInput:
    """One turn to send: the prompt text and how to answer it."""

    text: str
    model: str
    attachments: tuple[Attachment, ...] = ()
    web_search: bool = False


@dataclass(frozen=True)
class Conversation:
    """An upstream chat (matrix) or session, on one surface; ``id`` is None until known."""

    surface: str
    id: str | None = None


# -- what comes out -----------------------------------------------------------------------
@dataclass(frozen=True)
class UpReasoning:
    text: str


@dataclass(frozen=True)
class UpText:
    text: str


@dataclass(frozen=True)
class UpStep:
    """A finished agent step of the upstream's own (e.g. a web search) and its output."""

    name: str
    content: str


@dataclass(frozen=True)
class UpIdle:
    """Nothing new yet (a poll without change, a heartbeat): a chance to look around."""


@dataclass(frozen=True)
class TurnFinished:
    """The turn ended normally; ``answer_id`` names its answer message when known."""

    answer_id: int | None = None


@dataclass(frozen=True)
class TurnFailed:
    error: GatewayError


UpstreamEvent = UpReasoning | UpText | UpStep | UpIdle | TurnFinished | TurnFailed


class Turn(Protocol):
    """A turn being answered; iterate :meth:`events` once."""

    conversation: Conversation
    finished: bool

    def events(self) -> Iterator[UpstreamEvent]: ...

    def stop(self) -> None:
        """End the turn upstream if it is still running (client gone). Never raises."""


class Driver(Protocol):
    """One text-only upstream surface (a conversation is kept upstream)."""

    name: str
    capabilities: Capabilities

    def open(self, cred: Credential, model: str) -> Conversation:
        """A new conversation (the session surface creates it; matrix does on send)."""

    def send(self, cred: Credential, conversation: Conversation, turn: TurnInput) -> Turn:
        """Start a turn; raises :class:`GatewayError` before anything is streamed."""

    def discard(self, cred: Credential, conversation: Conversation) -> None:
        """Delete (or archive) the conversation; raises on failure (callers retry)."""

    def upload(self, cred: Credential, item: Upload) -> Attachment:
        """Upload a file for this account on this surface."""

    def probe(self, cred: Credential) -> None:
        """The cheapest call that tells whether this surface works for the account."""

    def forget(self, cred: Credential) -> None:
        """Drop what was learned about the account (e.g. after a wrong-path answer)."""


class NativeTurn(Protocol):
    """A native turn being answered; iterate :meth:`events` once."""

    conversation: Conversation
    finished: bool

    def events(self) -> Iterator[Event]:
        """Neutral chat events, ending with Usage + Finish, or a StreamError."""

    def stop(self) -> None:
        """Close the answer stream (client gone). Never raises."""


class NativeDriver(Protocol):
    """An upstream surface that takes the structured conversation (see the module doc)."""

    name: str
    capabilities: Capabilities

    def generate(self, cred: Credential, request: ChatRequest, model: str, system_extra: str = "") -> NativeTurn:
        """Start a turn (media already inlined); raises :class:`GatewayError` before
        anything is streamed. ``system_extra`` is appended to the system text."""

    def count_tokens(self, cred: Credential, request: ChatRequest, model: str) -> int:
        """The upstream's own count of the request's input tokens."""

    def catalogue(self, cred: Credential) -> tuple[ModelInfo, ...]:
        """The models the account may use, with their limits (cached by the driver)."""

    def known_models(self) -> tuple[ModelInfo, ...]:
        """The models known without a call (the last catalogue, else a built-in one)."""

    def model_for(self, requested: str) -> str:
        """The upstream model that answers a requested model name."""

    def probe(self, cred: Credential) -> None:
        """The cheapest call that tells whether this surface takes the account's token."""

    def forget(self, cred: Credential) -> None:
        """Drop what was learned about the account."""
