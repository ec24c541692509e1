"""Discarding the upstream conversations the gateway created, in the background.

Deletion (or, on the session surface, archiving) runs after the answer is delivered so
it adds nothing to the caller's latency. "chat is running" (the turn is still winding
down) and transient failures are retried with :data:`pacing.CLEANUP_DELAYS`; a refused
credential is not retried.
"""

from __future__ import annotations

import _thread
import logging
import threading
import time
from collections.abc import Callable, Sequence

from gateway.errors import AuthenticationFailed, GatewayError
from gateway.upstream import pacing
from gateway.upstream.conversation import Conversation, Driver
from gateway.upstream.credentials import Credential

log = logging.getLogger(__name__)


class Janitor:
    """Discards conversations in background threads (greenlets under gevent)."""

    def __init__(
        self,
        delays: Sequence[float] = pacing.CLEANUP_DELAYS,
        on_gone: Callable[[Conversation], None] = lambda conversation: None,
    ) -> None:
        self._delays = tuple(delays)
        #: Told of each conversation that is deleted, or that no one can delete.
        self._on_gone = on_gone
        self._pending = 0
        # Condition's default RLock: with a plain Lock, gevent's ownership check in
        # notify_all() yields while holding it, and closing streams queue up behind it.
        self._idle = threading.Condition()

    def discard(self, driver: Driver, credential: Credential, conversation: Conversation) -> None:
        with self._idle:
            self._pending += 1
        # start_new_thread does not wait for the thread to run (Thread.start() does),
        # so a finishing stream never waits for its clean-up; under gevent it is a greenlet.
        _thread.start_new_thread(self._run, (driver, credential, conversation))

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

    def _run(self, driver: Driver, credential: Credential, conversation: Conversation) -> None:
        try:
            pacing.retry(lambda: driver.discard(credential, conversation), self._delays,
                         retry_on=(GatewayError,), give_up_on=(AuthenticationFailed,),
                         what=f"clean-up of {conversation.surface} {conversation.id}")
            self._on_gone(conversation)
        except AuthenticationFailed:
            log.warning("could not clean up upstream %s %s: account %s is refused", conversation.surface,
                        conversation.id, credential.key)
            self._on_gone(conversation)  # the sweep could not delete it either
        except GatewayError as error:  # left to the sweep
            log.warning("could not clean up upstream %s %s of account %s (%s)", conversation.surface,
                        conversation.id, credential.key, type(error).__name__)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()
