"""The upkeep of the accounts, one process at a time across workers and hosts.

At start-up and then every ``GATEWAY_SWEEP_INTERVAL`` seconds each process tries to take
the maintenance lease (a lease in the shared state, like an account's); the one that
gets it:

- sweeps orphaned upstream conversations (:func:`gateway.chat.ledger.sweep`): recorded
  ones whose generation's lease is gone, never anything else;
- re-probes dead accounts whose backoff ran out, with the identity check;
- reads the credits of accounts not read for ``GATEWAY_CREDITS_INTERVAL`` seconds, and
  as often the plan, credits and quota windows of MiniMax Code accounts
  (:mod:`gateway.accounts.quotas`; a refusal there marks the account dead, "log in again").

It runs in one daemon thread per process (a greenlet under gevent). A second one, in
every process, refreshes the access tokens of signed-in MiniMax Code accounts ahead of
expiry every few seconds (:meth:`gateway.upstream.signins.SignIns.refresh_due`): each
refresh takes its own lease in the shared state, so processes never refresh one token
twice, and no request has to.

With a lasting state its first round, at start-up, deletes what a previous run left once the records
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

from gateway.accounts.quotas import Quotas
from gateway.chat.ledger import release_kept, sweep
from gateway.chat.service import ChatService
from gateway.errors import AuthenticationFailed, GatewayError, UpstreamUnauthorized
from gateway.state.presence import Presence
from gateway.upstream.credentials import Credential
from gateway.upstream.quota_shapes import credits_amount
from gateway.upstream.signins import SignIns

log = logging.getLogger(__name__)

#: The pseudo-account whose lease makes one process the maintainer.
MAINTENANCE_LOCK = "maintenance"
#: Seconds between two looks for sign-ins whose access token is due for a refresh.
SIGNIN_UPKEEP_SECONDS = 5.0


class Maintenance:
    """Runs the upkeep now and then, when this process holds the maintenance lease."""

    def __init__(
        self,
        chat: ChatService,
        accounts: Callable[[], list[Credential]],
        interval: float,
        credits_interval: float,
        quotas: Quotas | None = None,
        signins: SignIns | None = None,
    ) -> None:
        self._chat = chat
        self._accounts = accounts
        self._interval = interval
        self._credits_interval = credits_interval
        self._quotas = quotas
        self._signins = signins
        self._pid = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the background thread of this process (again in a forked child)."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="maintenance", daemon=True).start()
                if self._signins is not None:
                    threading.Thread(target=self._refresh_tokens, args=(self._signins,), name="signin-upkeep",
                                     daemon=True).start()

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            try:
                self.run_once()
            except Exception:
                log.warning("account maintenance failed; trying again later", exc_info=True)
            time.sleep(self._interval)

    def _refresh_tokens(self, signins: SignIns) -> None:
        pid = os.getpid()
        while self._pid == pid:
            try:
                signins.refresh_due()
            except Exception:  # the state is down: the next round tries again
                log.warning("the sign-in upkeep failed; trying again later", exc_info=True)
            time.sleep(SIGNIN_UPKEEP_SECONDS)

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
        if cred.kind == "code":
            self._check_code(cred)
            return
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

    def _check_code(self, cred: Credential) -> None:
        """A code account's quota reading doubles as its re-probe: it needs the token."""
        health = self._chat.health
        if self._quotas is None or not self._quotas.due(cred.key):
            return
        if health.is_dead(cred.key) and not health.probe_due(cred.key):
            return
        try:
            quota = self._quotas.read(cred, self._credits_interval)
        except AuthenticationFailed as error:  # signed out, or the sign-in was revoked
            health.dead(cred.key, error)
            return
        except GatewayError as error:
            log.info("could not read the quota of account %s (%s)", cred.key, type(error).__name__)
            return
        health.credits(cred.key, credits_amount(quota))
        if health.is_dead(cred.key):
            log.info("account %s answers again", cred.key)
            health.ok(cred.key)

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
