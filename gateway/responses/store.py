"""Stored responses: what ``previous_response_id`` continues and ``GET``/``DELETE
/v1/responses/{id}`` reach.

Each record holds the ``response`` object and every item of its conversation so far (the
items of the response it continued, its own input items as sent, its output items), in
the shared state under the caller's scope, so one caller never finds another's. Records
expire after ``GATEWAY_RESPONSES_TTL``; one larger than ``GATEWAY_RESPONSES_MAX_KB`` is not
stored. The store is a help: a state failure is logged, never a failed answer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from gateway.state import SharedState

log = logging.getLogger(__name__)

KEY_PREFIX = "responses:"


@dataclass(frozen=True)
class Stored:
    response: dict[str, Any]
    items: list[dict[str, Any]]


class ResponseStore:
    """The stored responses of one caller (``scope``)."""

    def __init__(self, state: SharedState, scope: str, ttl: float, max_bytes: int) -> None:
        self._state = state
        self._scope = scope
        self._ttl = ttl
        self._max_bytes = max_bytes

    def _key(self, response_id: str) -> str:
        return f"{KEY_PREFIX}{self._scope}:{response_id}"

    def load(self, response_id: str) -> Stored | None:
        if self._ttl <= 0:
            return None
        try:
            raw = self._state.get(self._key(response_id))
        except Exception:
            log.warning("could not read a stored response", exc_info=True)
            return None
        if not raw:
            return None
        record = json.loads(raw)
        return Stored(record["response"], record["items"])

    def save(self, response: dict[str, Any], items: list[dict[str, Any]]) -> None:
        if self._ttl <= 0:
            return
        text = json.dumps({"response": response, "items": items}, ensure_ascii=False, separators=(",", ":"))
        if len(text.encode()) > self._max_bytes:
            log.warning("response %s not stored: its conversation is over GATEWAY_RESPONSES_MAX_KB", response["id"])
            return
        try:
            self._state.put(self._key(response["id"]), text, ttl=self._ttl)
        except Exception:
            log.warning("could not store response %s", response["id"], exc_info=True)

    def delete(self, response_id: str) -> bool:
        """Forget a response; False when there was none."""
        if self.load(response_id) is None:
            return False
        self._state.delete(self._key(response_id))
        return True
