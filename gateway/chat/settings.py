"""Typed settings of the chat core (built from :mod:`gateway.config`).

Kept free of heavy imports: gunicorn reads settings before its gevent worker patches.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.upstream.constants import UPSTREAM_MODELS


@dataclass(frozen=True)
class ChatSettings:
    queue_timeout: float = 30.0
    busy_cooldown: float = 3.0
    poll_first: float = 0.2
    poll_steady: float = 0.25
    poll_idle: float = 0.5
    idle_after: float = 3.0
    heartbeat: float = 8.0
    answer_timeout: float = 900.0
    prompt_max_chars: int = 200_000
    models: tuple[str, ...] = UPSTREAM_MODELS


@dataclass(frozen=True)
class FetchSettings:
    """Limits on fetching URLs found in messages (see :mod:`gateway.chat.media`)."""

    allow_hosts: frozenset[str] = frozenset()
    max_bytes: int = 20 * 1024 * 1024
    timeout: float = 20.0
