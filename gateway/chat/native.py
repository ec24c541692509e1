"""What the chat core does for a surface that takes the structured conversation.

A native driver (:class:`~gateway.upstream.conversation.NativeDriver`, today the MiniMax
Code surface) gets the request as it is: the whole history, tools and tool results,
thinking, images. The chat core only inlines media it had to fetch (through the same
SSRF-guarded resolver as every surface), adds the JSON-mode instruction to the system
text when JSON was asked for without tools, and relays the answer: tool calls, stop
reasons, stop sequences and token usage are the upstream's own. Nothing of
:mod:`gateway.chat.emulation` runs here and nothing is kept upstream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from gateway.chat import transforms
from gateway.chat.emulation import Relay, json_mode
from gateway.chat.media import Blob
from gateway.chat.prompt import json_instruction
from gateway.chat.tokens import estimate_tokens
from gateway.parts import ChatRequest, Event, MediaPart, Message, Part
from gateway.upstream.conversation import NativeDriver, NativeTurn
from gateway.upstream.credentials import Credential


class NativeSide:
    """One generation's side on a native surface."""

    def __init__(self, driver: NativeDriver, cred: Credential, request: ChatRequest, turn: NativeTurn) -> None:
        self.driver = driver
        self.cred = cred
        self.request = request
        self.turn = turn
        self.conversation = turn.conversation
        # What message_start shows; the upstream's own count comes with the Usage event.
        self.input_tokens = estimate_tokens(" ".join(m.text for m in request.messages))

    def upstream_events(self) -> Iterator[Event | None]:
        return iter(self.turn.events())

    def shape(self, relay: Relay) -> Iterator[Event]:
        # The upstream stops at the stop sequences itself; cutting again costs nothing and
        # holds the promise even where an upstream lets one through.
        events = transforms.cut_at_stop_sequences(relay(), self.request.stop)
        return transforms.json_only(events) if json_mode(self.request) else events

    def stop(self) -> None:
        self.turn.stop()

    def closed(self) -> None:
        """Nothing is kept upstream: nothing to keep or delete."""


def start(driver: NativeDriver, cred: Credential, request: ChatRequest, model: str,
          blobs: Sequence[Blob]) -> NativeTurn:
    """Send the request (media inlined) as one native turn."""
    extra = json_instruction(request.response_format.schema) if json_mode(request) else ""
    return driver.generate(cred, inline(request, blobs), model, extra)


def inline(request: ChatRequest, blobs: Sequence[Blob]) -> ChatRequest:
    """The request with every media part carrying its bytes, in the resolver's order
    (fetched URLs included, their media type as sniffed)."""
    if not blobs:
        return request
    pending = list(blobs)

    def part_of(part: Part) -> Part:
        if not isinstance(part, MediaPart):
            return part
        blob = pending.pop(0)
        blob.file.seek(0)
        return MediaPart(blob.mime_type, blob.file.read(), None, part.filename or blob.filename)

    messages = tuple(Message(m.role, tuple(part_of(p) for p in m.parts)) for m in request.messages)
    return replace(request, messages=messages)
