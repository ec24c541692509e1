"""Logging set-up, with a filter that keeps credentials out of every log line.

Credentials should never reach a log call in the first place; the filter is the second
line of defence: it masks anything shaped like a JWT or a ``token=`` / ``key=`` query
value, whichever library logged it.
"""

from __future__ import annotations

import logging
import re
import sys

_SECRET_PATTERNS = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "[jwt]"),
    (re.compile(r"((?:token|key|api_key)=)[^&\s\"']+", re.IGNORECASE), r"\1[redacted]"),
    (re.compile(r"(Bearer\s+)\S+", re.IGNORECASE), r"\1[redacted]"),
)
HANDLER_NAME = "gateway-stderr"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure(level: str) -> None:
    """Route gateway logs to stderr through the redacting filter (idempotent)."""
    root = logging.getLogger("gateway")
    root.setLevel(level.upper())
    if not any(h.get_name() == HANDLER_NAME for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(HANDLER_NAME)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
        root.propagate = False
    # urllib3 logs request lines (with the query, and so the token) at DEBUG.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    for name in ("urllib3", "gunicorn.error", "gunicorn.access"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(RedactingFilter())
