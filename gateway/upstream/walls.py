"""Answers that are no answers: walls the web surfaces write as assistant text.

When an account's Token Plan is spent, the web app's agent does not fail the call: it
"answers" (HTTP 200, an ordinary assistant message) with the wall's text, e.g.
``Token Plan usage limit reached: Upgrade your Token Plan or purchase Credits for more
usage. (2056)``, which public clients normalise to ``42212: Token Plan usage limit
reached…`` (``shared/UPSTREAM-SESSION.md``, addendum). Relayed, it would reach the caller
as the model's reply. :func:`quota_guarded` reads a turn's events on either web surface
and turns such an answer into :class:`~gateway.errors.QuotaExhausted` before any of its
text is let through: answer text that could still be the start of a wall is held back
until it either diverges from every wall (then it flows on, unchanged) or the turn ends
as one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from gateway.errors import QuotaExhausted
from gateway.upstream.conversation import TurnFailed, TurnFinished, UpstreamEvent, UpText

#: How a quota wall's text begins: the server's words, or a client's normalised form
#: with its own code 42212 in front. [assumed from public clients, Aug–Oct 2026]
QUOTA_WALL_HEADS: Final = ("42212: Token Plan usage limit reached", "Token Plan usage limit reached")
#: A whole answer that is the wall: a head, the rest of its sentence, the server code.
QUOTA_WALL: Final = re.compile(
    r"\s*(?:42212:\s*)?Token Plan usage limit reached\b[^\n]*?(?:\s*\(2056\))?\s*", re.IGNORECASE)
#: A wall is one short line: a longer answer that merely starts like one is prose.
QUOTA_WALL_MAX_CHARS: Final = 400


def is_quota_wall(text: str) -> bool:
    """Whether a whole answer is a quota wall rather than an answer."""
    return len(text) <= QUOTA_WALL_MAX_CHARS and QUOTA_WALL.fullmatch(text) is not None


def _undecided(text: str) -> bool:
    """Whether the answer so far may still turn out to be a wall."""
    start = text.lstrip().lower()
    if len(text) > QUOTA_WALL_MAX_CHARS:
        return False
    return any(head.lower().startswith(start) or start.startswith(head.lower())
               for head in QUOTA_WALL_HEADS)


def quota_guarded(events: Iterator[UpstreamEvent]) -> Iterator[UpstreamEvent]:
    """``events`` with a quota wall answer turned into a failed turn (nothing of it shown).

    Only answer text is held while undecided; reasoning, agent steps and idle events pass
    at once. Closing the returned iterator closes ``events``.
    """
    held: list[UpText] = []
    deciding = True
    try:
        for event in events:
            if not deciding:
                yield event
            elif isinstance(event, UpText):
                held.append(event)
                if not _undecided("".join(item.text for item in held)):
                    deciding = False
                    yield from held
                    held = []
            elif isinstance(event, TurnFinished) and held and is_quota_wall("".join(i.text for i in held)):
                yield TurnFailed(QuotaExhausted(
                    "The MiniMax account's Token Plan usage limit is reached (its answer was the quota wall)."))
                return
            elif isinstance(event, (TurnFinished, TurnFailed)):
                yield from held
                held = []
                yield event
            else:
                yield event
        yield from held
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
