"""Inline file data as clients send it: base64 text and ``data:`` URLs.

Pure functions, no I/O: the dialects' schemas decode inline data with them while
validating, and :mod:`gateway.chat.media` only ever sees the bytes. A malformed value
raises :class:`ValueError` with a sentence fit for the client.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

DEFAULT_MIME = "application/octet-stream"


@dataclass(frozen=True)
class Inline:
    """Decoded inline data and the MIME type it was declared with."""

    mime_type: str
    data: bytes = field(repr=False)


def decode_base64(text: object) -> bytes:
    """Standard or URL-safe base64 (google-genai sends the latter), padding optional."""
    if not isinstance(text, str):
        raise ValueError("The data must be a base64 string.")
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("The data is not valid base64.") from None


def is_data_url(text: str) -> bool:
    return text.startswith("data:")


def parse_data_url(url: str) -> Inline:
    """``data:<mime>;base64,<payload>``: only base64 data URLs are accepted."""
    header, sep, payload = url.partition(",")
    if not is_data_url(url) or not sep or ";base64" not in header:
        raise ValueError("Only base64 data: URLs are accepted.")
    mime = header.removeprefix("data:").split(";")[0] or DEFAULT_MIME
    return Inline(mime, decode_base64(payload))
