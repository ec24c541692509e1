"""The upkeep of the accounts, one process at a time across workers and hosts.

At start-up and then every ``GATEWAY_SWEEP_INTERVAL`` seconds each process tries to take
the maintenance lease (a lease in the shared state, like an account's); the one that
gets it:

- sweeps orphaned upstream conversations (:func:`gateway.chat.ledger.sweep`): recorded
  ones whose generation's lease is gone, never anything else;
- re-probes dead accounts whose backoff ran out, with the identity check;
- reads the credits of accounts not read for ``GATEWAY_CREDITS_INTERVAL`` seconds.

It runs in one daemon thread per process (a greenlet under gevent). With a lasting
state its first round, at start-up, deletes what a previous run left once the records
say so (kept chats past their time, open ones whose lease is gone).

A stopping process (:func:`on_stop`) deletes every kept chat itself when no other
gateway shares the state (:class:`~gateway.state.presence.Presence`); otherwise it
leaves them to the others' sweep.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable

from gateway.chat.ledger import release_kept, sweep
from gateway.chat.service import ChatService
from gateway.errors import GatewayError, UpstreamUnauthorized
from gateway.state.presence import Presence
from gateway.upstream.credentials import Credential

log = logging.getLogger(__name__)

#: The pseudo-account whose lease makes one process the maintainer.
MAINTENANCE_LOCK = "maintenance"


class Maintenance:
    """Runs the upkeep now and then, when this process holds the maintenance lease."""

    def __init__(
        self,
        chat: ChatService,
        accounts: Callable[[], list[Credential]],
        interval: float,
        credits_interval: float,
    ) -> None:
        self._chat = chat
        self._accounts = accounts
        self._interval = interval
        self._credits_interval = credits_interval
        self._pid = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the background thread of this process (again in a forked child)."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="maintenance", daemon=True).start()

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            try:
                self.run_once()
            except Exception:
                log.warning("account maintenance failed; trying again later", exc_info=True)
            time.sleep(self._interval)

    def run_once(self) -> bool:
        """One round, if no other process is running one; True when it ran."""
        state = self._chat.pool.state
        ticket, holder = uuid.uuid4().hex, uuid.uuid4().hex
        ttl = max(30.0, self._interval)
        if state.try_lease(ticket, [MAINTENANCE_LOCK], holder, ttl).account is None:
            state.withdraw(ticket, [MAINTENANCE_LOCK])
            return False
        try:
            self._round()
        finally:
            state.release(MAINTENANCE_LOCK, holder)
        return True

    def _round(self) -> None:
        swept = sweep(self._chat.ledger, self._chat.surfaces.drivers)
        if swept:
            log.info("swept %d orphaned upstream conversation(s)", swept)
        for cred in self._accounts():
            self._check(cred)

    def _check(self, cred: Credential) -> None:
        health = self._chat.health
        if health.probe_due(cred.key):
            self._reprobe(cred)
        elif health.credits_due(cred.key, self._credits_interval):
            self._read_credits(cred)

    def _reprobe(self, cred: Credential) -> None:
        try:
            self._chat.client.user_info(cred)
        except UpstreamUnauthorized as error:
            self._chat.health.dead(cred.key, error)  # still dead: the next probe waits longer
            return
        except GatewayError:
            return  # the upstream is down, not the account: probe again next round
        log.info("account %s answers again", cred.key)
        self._chat.health.ok(cred.key)

    def _read_credits(self, cred: Credential) -> None:
        try:
            self._chat.health.credits(cred.key, self._chat.client.credits(cred))
        except GatewayError as error:
            log.info("could not read the credits of account %s (%s)", cred.key, type(error).__name__)
            # Keep what was read last; read again after the interval.
            self._chat.health.credits(cred.key, self._chat.health.of(cred.key).credits)


def on_stop(chat: ChatService, presence: Presence, drain: float, timeout: float) -> None:
    """A worker stopping: its pending deletions first (for at most ``drain`` s), then, when
    no other gateway shares the state, every kept chat (all within ``timeout`` s; the rest
    stays recorded for a later sweep)."""
    deadline = time.time() + timeout
    chat.janitor.drain(min(drain, timeout))
    try:
        others = presence.others()
        if others:
            log.info("leaving the kept chats to the sweep of %d other gateway(s) sharing the state", len(others))
            return
        deleted = release_kept(chat.ledger, chat.surfaces.drivers, deadline)
    except Exception:
        log.warning("could not delete the kept chats on stop; the next sweep will", exc_info=True)
        return
    if deleted:
        log.info("deleted %d kept upstream conversation(s) on stop", deleted)
