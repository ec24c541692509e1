"""Logging: plain or JSON lines, a request id on every line, and no credential ever.

The request id lives in a context variable (per greenlet under gevent), so log lines
written while a stream is being produced still carry it. Credentials should never reach
a log call in the first place; :class:`RedactingFilter` is the second line of defence:
it masks anything shaped like a JWT or a ``token=`` / ``key=`` value, whichever library
logged it. Prompt and answer text are never logged.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time

_SECRET_PATTERNS = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "[jwt]"),
    (re.compile(r"((?:token|key|api_key)=)[^&\s\"']+", re.IGNORECASE), r"\1[redacted]"),
    (re.compile(r"(Bearer\s+)\S+", re.IGNORECASE), r"\1[redacted]"),
)
HANDLER_NAME = "gateway-stderr"
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
#: Attributes every LogRecord has; anything else passed as ``extra`` goes into JSON lines.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets and stamps the request id on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str, fmt: str = "plain") -> None:
    """Route gateway logs to stderr through the redacting filter (idempotent)."""
    root = logging.getLogger("gateway")
    root.setLevel(level.upper())
    formatter = JsonFormatter() if fmt == "json" else logging.Formatter(PLAIN_FORMAT)
    handler = next((h for h in root.handlers if h.get_name() == HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(HANDLER_NAME)
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
        root.propagate = False
    handler.setFormatter(formatter)
    # urllib3 logs request lines (with the query, and so the token) at DEBUG.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    for name in ("urllib3", "gunicorn.error", "gunicorn.access"):
        for other in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in other.filters):
                other.addFilter(RedactingFilter())
