"""Typed settings of the chat core, built by :mod:`gateway.config` (which alone holds
the defaults).

Kept free of heavy imports: gunicorn reads settings before its gevent worker patches.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChatSettings:
    queue_timeout: float
    busy_cooldown: float
    heartbeat: float
    answer_timeout: float
    prompt_max_chars: int
    models: tuple[str, ...]


@dataclass(frozen=True)
class FetchSettings:
    """Limits on fetching URLs found in messages (see :mod:`gateway.chat.media`)."""

    allow_hosts: frozenset[str]
    max_bytes: int
    timeout: float
