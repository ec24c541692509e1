"""Reading the SSE frames a dialect's renderer yields, one ``bytes`` item per frame."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Frame:
    """One frame: its ``event:`` name (or None), its data (JSON-decoded when it is JSON),
    or the text of a comment frame."""

    raw: bytes
    event: str | None = None
    data: Any = None
    comment: str | None = None


def parse_frame(raw: bytes) -> Frame:
    """Parse one frame, checking the framing itself: lines, then one blank line."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n") and not text.endswith("\n\n\n"), f"bad frame ending: {text!r}"
    lines = text[:-2].split("\n")
    if lines[0].startswith(":"):
        assert len(lines) == 1, f"comment frame with more lines: {text!r}"
        return Frame(raw, comment=lines[0][1:].strip())
    event = None
    if lines[0].startswith("event: "):
        event = lines.pop(0).removeprefix("event: ")
    assert len(lines) == 1 and lines[0].startswith("data: "), f"not one data line: {text!r}"
    payload = lines[0].removeprefix("data: ")
    try:
        data = json.loads(payload)
    except ValueError:
        data = payload
    return Frame(raw, event=event, data=data)


def parse_frames(frames: Any) -> list[Frame]:
    return [parse_frame(raw) for raw in frames]
