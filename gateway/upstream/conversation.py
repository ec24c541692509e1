"""The seam between the chat core and the upstream: a small conversation API.

The chat core asks a :class:`Driver` to open a conversation on an account, send a turn
into it (text, attachments, model, web search), read the turn as one iterator of neutral
upstream events, stop it, and discard the conversation (delete or archive). Uploads
and, through the account-level client, speech and account info complete it. Each
surface of the MiniMax web app has one driver (:mod:`gateway.upstream.matrix`, polled;
:mod:`gateway.upstream.session`, streamed), and :mod:`gateway.upstream.surfaces` picks
one per account, so nothing above this package knows which surface is in use.

Events are plain frozen values; a turn's iterator ends with :class:`TurnFinished` or
:class:`TurnFailed` (or simply stops when the caller abandons it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Protocol

from gateway.errors import GatewayError
from gateway.upstream.credentials import Credential


# -- what goes in -------------------------------------------------------------------------
@dataclass(frozen=True)
class Attachment:
    """A file already uploaded on one surface for one account, ready to attach."""

    ref: str  # matrix: the file id; session: the object key
    file_name: str
    mime_type: str
    size: int
    is_image: bool


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
    """One upstream surface."""

    name: str

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
