"""The one retry helper and the one polling helper of the gateway, with their delay tables.

Every loop that waits on the upstream goes through :func:`retry` (do a call again after
listed delays while it fails in a retryable way) or :func:`poll` (ask again every
interval until an answer is final or a deadline passes). Under gevent ``time.sleep``
yields to other greenlets, so waiting costs nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from gateway.errors import GatewayError, UpstreamNotReached, UpstreamServerError, UpstreamTimeout, UpstreamUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Failures worth another try: transport trouble and upstream 5xx.
TRANSIENT: tuple[type[GatewayError], ...] = (UpstreamUnavailable, UpstreamTimeout, UpstreamServerError)
#: A failed poll of a running answer, tried again after these waits.
POLL_FAILURE_DELAYS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
#: A turn sent into a chat that is still winding down ("chat is running").
FOLLOW_UP_BUSY_DELAYS: tuple[float, ...] = (0.3, 0.6, 1.2, 2.4)
#: Deleting or archiving a finished conversation in the background.
CLEANUP_DELAYS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
#: The doctor's deletion of its own chat.
DOCTOR_CLEANUP_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)


def retry(
    call: Callable[[], T],
    delays: Sequence[float],
    retry_on: tuple[type[BaseException], ...] = TRANSIENT,
    what: str = "upstream call",
    give_up_on: tuple[type[BaseException], ...] = (),
) -> T:
    """``call()``; after a ``retry_on`` failure wait the next delay and try again.

    A ``give_up_on`` failure propagates at once; the last failure propagates once the
    delays are used up.
    """
    for delay in delays:
        try:
            return call()
        except give_up_on:
            raise
        except retry_on as error:
            log.debug("%s failed (%s); again in %.2fs", what, type(error).__name__, delay)
        time.sleep(delay)
    return call()


def poll(
    ask: Callable[[], T | None],
    interval: float,
    timeout: float,
    on_timeout: Callable[[], GatewayError],
) -> T:
    """Call ``ask`` every ``interval`` seconds until it returns a value; raise
    ``on_timeout()`` once ``timeout`` seconds have passed without one."""
    deadline = time.monotonic() + timeout
    while True:
        answer = ask()
        if answer is not None:
            return answer
        if time.monotonic() + interval > deadline:
            raise on_timeout()
        time.sleep(interval)


#: Before the one new attempt at a call that provably never reached the upstream.
UNSENT_RETRY_DELAYS: tuple[float, ...] = (0.5,)


def retry_unsent(call: Callable[[], T], what: str) -> T:
    """``call()``, made once more when it failed without a connection to the upstream.

    Only such a failure proves that nothing was created (no chat, no generation), so only
    it is retried: a 5xx, a timeout or a connection lost after the request went out may
    have started the turn, and sending it again could generate it twice.
    """
    return retry(call, UNSENT_RETRY_DELAYS, retry_on=(UpstreamNotReached,), what=what)
