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
#: How raster images begin (PNG, JPEG, GIF, BMP, TIFF both byte orders, ICO); WebP and
#: the ISO formats (HEIC, AVIF) are recognised by their container below.
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM",
               b"II*\x00", b"MM\x00*", b"\x00\x00\x01\x00")
#: Image types that are text, not magic bytes: they are not sniffed.
TEXT_IMAGES = ("image/svg+xml",)


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
    data = decode_base64(payload)
    check_image(mime, data)
    return Inline(mime, data)


def check_image(mime: str, data: bytes) -> None:
    """Refuse data declared as an image whose bytes are none: better a 400 that says so
    than the upstream's "file is not an image" as a 502 (or an answer about nothing)."""
    if not mime.lower().startswith("image/") or mime.lower() in TEXT_IMAGES:
        return
    if not looks_like_image(data):
        raise ValueError(f"The data is declared {mime} but is not an image (its bytes match no image format).")


def looks_like_image(data: bytes) -> bool:
    if data.startswith(IMAGE_MAGIC):
        return True
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return True
    return data[4:8] == b"ftyp"  # HEIC, HEIF, AVIF
