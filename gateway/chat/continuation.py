"""Native multi-turn: which kept upstream conversation a request continues, if any.

After a turn that ended cleanly, the conversation is *kept* upstream and recorded in the
shared state under a digest of the exact history it now holds: the messages sent plus
the answer as the client received it (tool calls included), chained message by message
and seeded with what shapes every turn (the caller, the upstream model, the tools, the
output format). A later request whose messages up to its last assistant message hash to
a recorded digest extends that history exactly: only the messages after it are sent, to
the same upstream conversation. Anything else (an edited or regenerated history, a
different system prompt or tool set, an unknown prefix) matches nothing and is folded
into a new chat, as before. System messages after the last assistant message are new
content like the user's: they are sent with the new turn.

A client may pin a conversation instead (``X-Conversation-Id`` or
``metadata.conversation_id``): the pin names the record, and the messages past the
count the upstream holds are the new part (the client vouches for the rest).

Canonical forms keep what the upstream saw and drop what clients legitimately change or
never send back: reasoning, tool-call ids, surrounding whitespace of text.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.parts import (
    ChatRequest,
    Event,
    Finish,
    MediaPart,
    Message,
    Part,
    StreamError,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallPart,
    ToolResultPart,
)
from gateway.state import SharedState
from gateway.upstream.conversation import Conversation

log = logging.getLogger(__name__)

#: Shared-state key prefixes of the records, by digest and by pin.
DIGEST_PREFIX = "conversation:"
PIN_PREFIX = "conversation-pin:"
#: Finish reasons after which the upstream holds exactly what the client received.
CLEAN_FINISHES = frozenset({"stop", "tool_calls"})
#: Longest accepted pin (it is a key in the shared state, not content).
MAX_PIN_CHARS = 200


@dataclass(frozen=True)
class KeptConversation:
    """A conversation kept upstream after a clean turn, as recorded."""

    surface: str
    id: str
    account: str  # the credential's key
    messages: int  # how many messages of the client's history the upstream now holds
    turns: int  # turns sent into it so far

    def conversation(self) -> Conversation:
        return Conversation(self.surface, self.id)


@dataclass(frozen=True)
class Continuation:
    """A request that extends a kept conversation: what to send, and where."""

    kept: KeptConversation
    new_messages: tuple[Message, ...]
    key: str  # the record's shared-state key (forgotten when the turn starts)


# -- canonical forms ----------------------------------------------------------------------
def _canonical_part(part: Part) -> Any:
    match part:
        case TextPart(text=text):
            return ["text", text.strip()]
        case MediaPart(mime_type=mime, data=data, url=url):
            digest = hashlib.sha256(data).hexdigest() if data is not None else None
            return ["media", mime, digest, url]
        case ToolCallPart(name=name, arguments=arguments, input=raw):
            return ["call", name, arguments] if raw is None else ["call", name, raw]
        case ToolResultPart(content=content, is_error=is_error):
            return ["result", content.strip(), is_error]
    return None  # reasoning: clients send it back or not, and it never went upstream


def canonical(message: Message) -> list[Any]:
    """A message as the upstream saw it; adjacent texts merged, empty ones dropped."""
    parts: list[Any] = []
    for part in message.parts:
        form = _canonical_part(part)
        if form is None or form == ["text", ""]:
            continue
        if form[0] == "text" and parts and parts[-1][0] == "text":
            parts[-1] = ["text", f"{parts[-1][1]}\n{form[1]}".strip()]
        else:
            parts.append(form)
    return [message.role, parts]


def context_seed(request: ChatRequest, caller: str, model: str) -> str:
    """What every turn of one conversation must share besides its history: ``caller``
    (:attr:`~gateway.chat.pool.Accounts.caller`: a client key, or a personal caller's
    credential list) scopes digests and pins to whoever kept the conversation."""
    tools = [[t.name, t.description, t.parameters] for t in request.tools]
    shape = [caller, model, tools, asdict(request.response_format), request.web_search]
    return hashlib.sha256(_dumps(shape).encode()).hexdigest()


def digest(seed: str, messages: Iterable[Message]) -> str:
    """The chained digest of ``messages`` under ``seed``."""
    value = seed
    for message in messages:
        value = hashlib.sha256(f"{value}\n{_dumps(canonical(message))}".encode()).hexdigest()
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


# -- the answer as the client received it -------------------------------------------------
@dataclass
class AnswerRecorder:
    """Watches the events a client receives; says whether the turn ended cleanly."""

    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    finish: Finish | None = None
    failed: bool = False

    def see(self, event: Event) -> None:
        match event:
            case TextDelta(text=delta):
                self.text.append(delta)
            case ToolCall():
                self.calls.append(event)
            case Finish():
                self.finish = event
            case StreamError():
                self.failed = True

    @property
    def clean(self) -> bool:
        """The upstream holds what the client got: a natural end, no error, no cut."""
        return (not self.failed and self.finish is not None and self.finish.reason in CLEAN_FINISHES
                and self.finish.stop_sequence is None)

    def message(self) -> Message:
        parts: list[Part] = [TextPart("".join(self.text))]
        parts.extend(ToolCallPart(c.id, c.name, c.arguments, c.input) for c in self.calls)
        return Message("assistant", tuple(parts))


# -- the records ----------------------------------------------------------------------------
class ConversationKeeper:
    """Finds and records kept conversations in the shared state (records expire on
    their own after ``ttl`` s of idleness, when the ledger's kept record ends too: the
    sweep deletes the chat at its next round)."""

    def __init__(self, state: SharedState, ttl: float) -> None:
        self._state = state
        self.ttl = ttl

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def find(self, request: ChatRequest, seed: str, accounts: Sequence[str]) -> Continuation | None:
        """The kept conversation ``request`` extends, on one of ``accounts``, or None."""
        if not self.enabled:
            return None
        if request.conversation_id:
            return self._pinned(request, seed, accounts)
        last = _last_assistant(request.messages)
        if last is None:
            return None
        key = DIGEST_PREFIX + digest(seed, request.messages[: last + 1])
        return self._continuation(key, request.messages[last + 1:], accounts)

    def _pinned(self, request: ChatRequest, seed: str, accounts: Sequence[str]) -> Continuation | None:
        key = _pin_key(seed, request.conversation_id or "")
        kept = self._load(key)
        if kept is None or kept.messages >= len(request.messages):
            return None
        return self._continuation(key, request.messages[kept.messages:], accounts, kept)

    def _continuation(self, key: str, new: Sequence[Message], accounts: Sequence[str],
                      kept: KeptConversation | None = None) -> Continuation | None:
        # An assistant message here is a turn the upstream never saw. A system message is
        # not a change of the system prompt (that one is in the digested prefix): agent
        # clients (Claude Code) append notes like the environment or the token budget to
        # every turn, and they travel with the new turn as its "System:" sections.
        if not new or any(m.role == "assistant" for m in new):
            return None
        kept = kept or self._load(key)
        if kept is None or kept.account not in accounts:
            return None
        return Continuation(kept, tuple(new), key)

    def keep(self, request: ChatRequest, seed: str, answer: Message, kept: KeptConversation) -> None:
        """Record ``kept`` as holding ``request``'s messages plus ``answer``."""
        if request.conversation_id:
            key = _pin_key(seed, request.conversation_id)
        else:
            key = DIGEST_PREFIX + digest(seed, (*request.messages, answer))
        self._safely(lambda: self._state.put(key, _dumps(asdict(kept)), ttl=self.ttl))

    def restore(self, found: Continuation) -> None:
        """Put back a record taken by a turn that was never sent."""
        self._safely(lambda: self._state.put(found.key, _dumps(asdict(found.kept)), ttl=self.ttl))

    def forget(self, key: str) -> None:
        """The record is taken (its turn is starting) or no longer true."""
        self._safely(lambda: self._state.delete(key))

    def _load(self, key: str) -> KeptConversation | None:
        try:
            raw = self._state.get(key)
            return KeptConversation(**json.loads(raw)) if raw else None
        except (TypeError, ValueError):
            return None
        except Exception:  # the state is a help here: never fail a request over it
            log.warning("could not read a kept conversation", exc_info=True)
            return None

    @staticmethod
    def _safely(action: Any) -> None:
        try:
            action()
        except Exception:
            log.warning("could not update the kept conversations", exc_info=True)


def _pin_key(seed: str, pin: str) -> str:
    # The seed is in the key: a pin continues only with the same caller, model and tools.
    return PIN_PREFIX + hashlib.sha256(f"{seed}\n{pin[:MAX_PIN_CHARS]}".encode()).hexdigest()


def _last_assistant(messages: Sequence[Message]) -> int | None:
    return next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "assistant"), None)

