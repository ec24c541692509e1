"""Deleting the upstream chats the gateway created, in the background.

Deletion runs after the answer is delivered so it adds nothing to the caller's latency.
"chat is running" (the generation is still winding down) and transient failures are
retried with exponential backoff; a refused credential is not retried.
"""

from __future__ import annotations

import _thread
import logging
import threading
import time
from collections.abc import Sequence

from gateway.errors import AuthenticationFailed, GatewayError
from gateway.upstream.client import UpstreamClient
from gateway.upstream.credentials import Credential

log = logging.getLogger(__name__)

#: Seconds to wait before each retry of a failed deletion.
RETRY_DELAYS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


class Janitor:
    """Deletes chats in background threads (greenlets under gevent)."""

    def __init__(self, client: UpstreamClient, delays: Sequence[float] = RETRY_DELAYS) -> None:
        self._client = client
        self._delays = tuple(delays)
        self._pending = 0
        # Condition's default RLock: with a plain Lock, gevent's ownership check in
        # notify_all() yields while holding it, and closing streams queue up behind it.
        self._idle = threading.Condition()

    def delete(self, credential: Credential, chat_id: int) -> None:
        with self._idle:
            self._pending += 1
        # start_new_thread does not wait for the thread to run (Thread.start() does),
        # so a finishing stream never waits for its clean-up; under gevent it is a greenlet.
        _thread.start_new_thread(self._run, (credential, chat_id))

    @property
    def pending(self) -> int:
        return self._pending

    def drain(self, timeout: float) -> bool:
        """Wait until no deletion is pending (used at shutdown); True when drained."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending and time.monotonic() < deadline:
                self._idle.wait(deadline - time.monotonic())
            return self._pending == 0

    def _run(self, credential: Credential, chat_id: int) -> None:
        try:
            self._delete_with_retries(credential, chat_id)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _delete_with_retries(self, credential: Credential, chat_id: int) -> None:
        for delay in (0.0, *self._delays):
            time.sleep(delay)
            try:
                self._client.delete_chat(credential, chat_id)
                return
            except AuthenticationFailed:
                break
            except GatewayError as error:
                log.debug("delete of chat %s failed (%s); retrying", chat_id, type(error).__name__)
        log.warning("could not delete upstream chat %s of account %s", chat_id, credential.key)
