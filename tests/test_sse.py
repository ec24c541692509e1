"""The one SSE encoder (gateway/sse.py): frame layout and line-separator escaping."""

from __future__ import annotations

import json

import pytest

from gateway import sse

EVENT_CASES = [
    ("JSON data", ({"a": 1},), {}, b'data: {"a":1}\n\n'),
    ("named event", ({"type": "ping"},), {"name": "ping"}, b'event: ping\ndata: {"type":"ping"}\n\n'),
    ("a string goes out as it is", ("[DONE]",), {}, b"data: [DONE]\n\n"),
    ("UTF-8 kept by default", ({"t": "é中"},), {}, 'data: {"t":"é中"}\n\n'.encode()),
    ("ASCII when asked", ({"t": "é中"},), {"ascii_only": True}, b'data: {"t":"\\u00e9\\u4e2d"}\n\n'),
    ("U+2028/U+2029 escaped even in UTF-8 mode", ({"t": "a\u2028b\u2029c"},), {}, b'data: {"t":"a\\u2028b\\u2029c"}\n\n'),
    ("newlines in strings stay escaped", ({"t": "a\nb\r\n"},), {}, b'data: {"t":"a\\nb\\r\\n"}\n\n'),
]


@pytest.mark.parametrize(("args", "kwargs", "expected"), [c[1:] for c in EVENT_CASES], ids=[c[0] for c in EVENT_CASES])
def test_event(args: tuple, kwargs: dict, expected: bytes) -> None:
    assert sse.event(*args, **kwargs) == expected


@pytest.mark.parametrize("text", ["\u2028", "x\u2029y", "\u2028\u2029" * 3, "plain"])
def test_dumps_round_trips(text: str) -> None:
    dumped = sse.dumps({"t": text})
    assert "\u2028" not in dumped and "\u2029" not in dumped
    assert json.loads(dumped) == {"t": text}


def test_comment() -> None:
    assert sse.comment("keep-alive") == b": keep-alive\n\n"
