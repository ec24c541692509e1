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
    #: Seconds a kept upstream conversation may stay idle (0: every turn folds).
    conversation_ttl: float = 0.0
    #: Seconds a continuing turn waits for its conversation's account before folding.
    conversation_wait: float = 0.0


@dataclass(frozen=True)
class FetchSettings:
    """Limits on fetching URLs found in messages (see :mod:`gateway.chat.media`)."""

    allow_hosts: frozenset[str]
    max_bytes: int
    timeout: float
