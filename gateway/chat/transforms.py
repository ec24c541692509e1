"""Stream transforms applied to every answer, whatever the dialect.

Each takes an event iterator and returns one; :func:`pipeline` chains them. Stopping
early (a stop sequence matched, the token limit reached) simply ends the iteration:
closing the generator chain reaches the upstream generation, which is then stopped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

from gateway.chat.tokens import TokenCounter
from gateway.errors import UpstreamBadAnswer
from gateway.parts import (
    AgentStep,
    Event,
    Finish,
    ReasoningDelta,
    SearchResults,
    Source,
    StreamError,
    TextDelta,
    ToolCall,
    Usage,
)

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.S)


def cut_at_stop_sequences(events: Iterable[Event], stops: tuple[str, ...]) -> Iterator[Event]:
    """End the answer before the first stop sequence, reporting which one matched.

    Text that could be the start of a stop sequence is held back only until the next
    delta shows whether it is one.
    """
    stops = tuple(s for s in stops if s)
    if not stops:
        yield from events
        return
    held = ""
    for event in events:
        if not isinstance(event, TextDelta):
            if isinstance(event, Finish) and held:
                yield TextDelta(held)
                held = ""
            yield event
            continue
        held += event.text
        found = _earliest(held, stops)
        if found is not None:
            index, stop = found
            if index:
                yield TextDelta(held[:index])
            yield Finish("stop_sequence", stop)
            return
        keep = _longest_partial(held, stops)
        if len(held) > keep:
            yield TextDelta(held[: len(held) - keep])
            held = held[len(held) - keep :]


def _earliest(text: str, stops: tuple[str, ...]) -> tuple[int, str] | None:
    hits = [(text.find(s), s) for s in stops if s in text]
    return min(hits) if hits else None


def _longest_partial(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest suffix of ``text`` that begins some stop sequence."""
    best = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:size]):
                best = size
                break
    return best


def limit_output_tokens(events: Iterable[Event], limit: int | None) -> Iterator[Event]:
    """End the answer once its visible text reaches ``limit`` estimated tokens."""
    if limit is None:
        yield from events
        return
    counter = TokenCounter()
    for event in events:
        if isinstance(event, TextDelta):
            fitting = counter.fitting(event.text, limit)
            counter.add(fitting)
            if fitting != event.text:
                if fitting:
                    yield TextDelta(fitting)
                yield Finish("length")
                return
        yield event


def count_usage(events: Iterable[Event], input_tokens: int) -> Iterator[Event]:
    """Emit a :class:`Usage` right before the :class:`Finish`, counting what was sent."""
    text, reasoning = TokenCounter(), TokenCounter()
    for event in events:
        if isinstance(event, TextDelta):
            text.add(event.text)
        elif isinstance(event, ToolCall):
            text.add(event.name + (event.input if event.input is not None
                                   else json.dumps(event.arguments, ensure_ascii=False)))
        elif isinstance(event, ReasoningDelta):
            reasoning.add(event.text)
        elif isinstance(event, Finish):
            yield Usage(input_tokens, text.tokens + reasoning.tokens, reasoning.tokens)
        yield event


def json_only(events: Iterable[Event]) -> Iterator[Event]:
    """JSON mode: hold the answer text, then emit only the JSON value found in it.

    Models often wrap JSON in prose or code fences; the value itself is what the
    client's parser needs. An answer without one ends the stream with an error.
    """
    held: list[str] = []
    for event in events:
        if isinstance(event, TextDelta):
            held.append(event.text)
            continue
        if isinstance(event, Finish):
            found = extract_json("".join(held))
            if found is None:
                yield StreamError(UpstreamBadAnswer(
                    "JSON output was requested but the MiniMax answer contained no valid JSON."
                ))
                return
            yield TextDelta(found)
        yield event


def extract_json(text: str) -> str | None:
    """The first complete JSON object or array in ``text`` (fenced blocks first)."""
    decoder = json.JSONDecoder()
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        stripped = candidate.strip()
        for start, char in enumerate(stripped):
            if char not in "{[":
                continue
            try:
                _, end = decoder.raw_decode(stripped, start)
            except ValueError:
                continue
            return stripped[start:end]
    return None


def search_results(events: Iterable[Event], query: str, step_name: str) -> Iterator[Event]:
    """Turn the upstream's web-search steps into :class:`SearchResults` events.

    A step's output is a JSON list of ``{title, url, snippet}``; anything else is left
    as the plain step it was.
    """
    for event in events:
        if isinstance(event, AgentStep) and event.name == step_name:
            sources = _sources(event.content)
            if sources:
                yield SearchResults(query, sources)
                continue
        yield event


def _sources(content: str) -> tuple[Source, ...]:
    try:
        items = json.loads(content)
    except ValueError:
        return ()
    if not isinstance(items, list):
        return ()
    return tuple(
        Source(str(item["url"]), str(item.get("title") or ""), str(item.get("snippet") or ""))
        for item in items
        if isinstance(item, dict) and isinstance(item.get("url"), str)
    )
