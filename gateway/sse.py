"""The one Server-Sent Events encoder for all streamed output.

Data is compact JSON on a single line. U+2028 and U+2029 are escaped even though JSON
allows them raw, because strict line-oriented parsers (gemini-cli's among them) treat
them as line breaks and would split the frame.
"""

from __future__ import annotations

import json
from typing import Any

_LINE_SEPARATORS = {"\u2028": "\\u2028", "\u2029": "\\u2029"}


def dumps(data: Any, ascii_only: bool = False) -> str:
    """Compact one-line JSON, safe for a ``data:`` line (``ascii_only``: pure ASCII)."""
    text = json.dumps(data, ensure_ascii=ascii_only, separators=(",", ":"))
    if "\u2028" in text or "\u2029" in text:
        for raw, escaped in _LINE_SEPARATORS.items():
            text = text.replace(raw, escaped)
    return text


def event(data: Any, name: str | None = None, ascii_only: bool = False) -> bytes:
    """One frame: optional ``event:`` line, one ``data:`` line, blank line."""
    payload = data if isinstance(data, str) else dumps(data, ascii_only)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n".encode()


def comment(text: str = "") -> bytes:
    """A comment frame; clients ignore it, proxies see traffic (keep-alive)."""
    return f": {text}\n\n".encode()
