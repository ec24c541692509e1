"""Who may use which accounts: client keys in, the accounts of a request out; and the
overview the admin page shows.

With no client keys configured, the key a caller sends *is* their MiniMax credential
(personal use). Whether keys are configured is whether a keys file or variable is named,
never what the file holds now: once named, an empty or unreadable list refuses every
request (and says why in the log and the overview) rather than opening the gateway to
anyone with a MiniMax credential. With keys, a request must carry one of them: it is served from the
server-side accounts, counted against the key's requests-per-minute (``rpm=N``: at most
N requests admitted in any 60 seconds, a sliding log in the shared state, so every worker
and host counts together and no minute's edge lets 2N through) and holds one of the key's
concurrency slots (leases in the shared state, renewed like account leases) until its
response ends. The server-side accounts are the configured credentials and every working
MiniMax Code account signed in on the server (``python -m gateway login``).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.accounts.keys import ApiKey, KeyRing
from gateway.accounts.watch import Listing
from gateway.chat.health import DAY, DEAD, SUSPECT, Health
from gateway.chat.pool import Accounts, Lease
from gateway.chat.service import ChatService
from gateway.errors import (
    InvalidApiKey,
    KeyLimited,
    MissingApiKey,
    MissingCredentials,
    NoApiKeys,
)
from gateway.state import AccountView, temporary_reason
from gateway.upstream.credentials import Credential, mask, parse_pool, signed_in
from gateway.upstream.signins import SignIns

log = logging.getLogger(__name__)

MINUTE = 60.0
#: Shared-state keys per client key: requests this minute and today (counters, for the
#: overview), last use, the admitted requests of the rpm limit (a sliding log), slots.
RPM_KEY, DAY_KEY, USED_KEY, LIMIT_KEY, SLOT_KEY = "rpm:", "keyday:", "keyused:", "rpmlog:", "slot:"
#: The kind of the records naming the client accounts seen (personal mode), for the overview.
SEEN_KIND = "accounts"
#: Seconds a caller over its concurrency limit is told to wait.
CONCURRENCY_RETRY_AFTER = 1.0
#: Seconds the list of signed-in accounts is kept per process (one state read per request
#: would do, but a burst of requests needs it only once).
SIGNED_IN_TTL = 2.0


@dataclass(frozen=True)
class Caller:
    """An authenticated request: the accounts it may use, its key, its concurrency slot."""

    accounts: Accounts
    key: ApiKey | None = None
    #: Held until the response ends (call :meth:`done`).
    slot: Lease | None = None

    def done(self) -> None:
        if self.slot is not None:
            self.slot.release()


class AccountsService:
    """Authenticates callers and picks their accounts."""

    def __init__(
        self,
        keys: Listing[KeyRing],
        roster: Listing[tuple[Credential, ...]],
        chat: ChatService,
        clock: Callable[[], float] = time.time,
        signins: SignIns | None = None,
        keys_named: bool = False,
    ) -> None:
        self._keys = keys
        #: A keys file or variable is named: the gateway is keyed whatever the list holds.
        self._keys_named = keys_named
        self._refusing = ""  # why every request is refused now, as last logged
        self._roster = roster
        self._chat = chat
        self._state = chat.pool.state
        self._clock = clock
        self._signins = signins
        self._signed_in: tuple[float, tuple[Credential, ...]] = (0.0, ())
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    @property
    def keyed(self) -> bool:
        return self._keys_named or bool(self._keys.current())

    def keys_problem(self) -> str:
        """Why no client key is accepted now ("" when the list is usable or not keyed)."""
        ring = self._keys.current()
        if not self.keyed:
            return ""
        if self._keys.problem:
            return f"{self._keys.problem}: every request is refused until it can be read"
        if not ring:
            return "the client key list is empty: every request is refused until a key is added"
        return ""

    def server_accounts(self) -> tuple[Credential, ...]:
        """The configured credentials, then the working signed-in accounts."""
        return self._roster.current() + self._signed_in_accounts()

    def _signed_in_accounts(self) -> tuple[Credential, ...]:
        if self._signins is None:
            return ()
        now = self._clock()
        kept_until, kept = self._signed_in
        if now < kept_until and (kept or self._roster.current()):
            return kept  # (an empty server pool looks again at once: a sign-in may have just landed)
        try:
            fresh = tuple(signed_in(sign_in.name) for sign_in in self._signins.all() if sign_in.ok)
        except Exception:  # the state is down: keep serving the accounts known last
            log.warning("could not read the signed-in accounts; using the last list")
            fresh = kept
        self._signed_in = (now + SIGNED_IN_TTL, fresh)
        return fresh

    def caller(self, candidates: Sequence[str | None]) -> Caller:
        """The caller of a request, from the key texts its dialect found (first given wins)."""
        presented = next((text.strip() for text in candidates if text and text.strip()), "")
        ring = self._keys.current()
        if not self.keyed:
            return self._personal(presented)
        self._refuse_if_no_keys()
        if not presented:
            raise MissingApiKey()
        key = ring.match(presented)
        if key is None:
            raise InvalidApiKey()
        return self._keyed(key)

    def _refuse_if_no_keys(self) -> None:
        problem = self.keys_problem()
        if problem != self._refusing:  # logged once per change, not per request
            self._refusing = problem
            if problem:
                log.warning("%s", problem)
            else:
                log.info("the client key list is usable again")
        if problem:
            raise NoApiKeys()

    def _personal(self, presented: str) -> Caller:
        if not presented:
            raise MissingCredentials()
        credentials = tuple(parse_pool(presented))
        self._note_seen(credentials)
        return Caller(Accounts(credentials))

    def _keyed(self, key: ApiKey) -> Caller:
        self._count(key)
        slot = self._slot(key)
        return Caller(Accounts(self.server_accounts(), tag=key.id, server=True), key, slot)

    def _count(self, key: ApiKey) -> None:
        now = self._clock()
        try:
            wait = 0.0 if key.rpm is None else self._state.admit(LIMIT_KEY + key.id, key.rpm, MINUTE, now)
            self._state.hit(RPM_KEY + key.id, MINUTE)
            self._state.hit(DAY_KEY + key.id, DAY)
            self._state.put(USED_KEY + key.id, repr(now), DAY)
        except Exception:  # limits need the state; a state outage must not lock everyone out
            log.warning("could not count a request of key %s", key.name, exc_info=True)
            return
        if wait > 0:
            raise KeyLimited(f"This API key allows {key.rpm} requests per minute.",
                             retry_after=max(1.0, math.ceil(wait)))

    def _slot(self, key: ApiKey) -> Lease | None:
        if key.concurrency is None:
            return None
        slots = [f"{SLOT_KEY}{key.id}#{number}" for number in range(key.concurrency)]
        slot = self._chat.pool.try_slot(slots, key.id)
        if slot is None:
            raise KeyLimited(f"This API key allows {key.concurrency} requests at once.",
                             retry_after=CONCURRENCY_RETRY_AFTER)
        return slot

    def _note_seen(self, credentials: Sequence[Credential]) -> None:
        with self._lock:
            new = [cred for cred in credentials if cred.key not in self._seen]
            self._seen.update(cred.key for cred in new)
        for cred in new:
            try:
                self._state.add_record(SEEN_KIND, cred.key, json.dumps({"account": _label(cred)}))
            except Exception:
                log.warning("could not note account %s", cred.key)

    # -- the admin overview ----------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        accounts = self._accounts_shown()
        views = self._state.accounts(list(accounts))
        return {
            "generated_at": self._clock(),
            "mode": "keys" if self.keyed else "personal",
            "warnings": [warning for warning in (self.keys_problem(), *self._warnings()) if warning],
            "accounts": [self._account_row(key, label, source, views[key])
                         for key, (label, source) in accounts.items()],
            "keys": [self._key_row(key, views) for key in self._keys.current().keys],
            "series": self._chat.activity.series(),
        }

    def _warnings(self) -> list[str]:
        reason = temporary_reason(self._state)
        if not reason:
            return []
        return [f"the shared state is temporary ({reason}): kept chats, renewed tokens and the record of "
                "chats to delete are lost when this gateway stops"]

    def _accounts_shown(self) -> dict[str, tuple[str, str]]:
        """Account key → (masked label, source): the server's, then clients' seen."""
        shown = {cred.key: (_label(cred), "server") for cred in self.server_accounts()}
        for key, raw in self._state.records(SEEN_KIND).items():
            if key not in shown:
                shown[key] = (_seen_label(raw, key), "client")
        return shown

    def _account_row(self, key: str, label: str, source: str, view: AccountView) -> dict[str, Any]:
        health = self._chat.health.of(key)
        return {
            "account": label, "key": key, "source": source, "state": _state_of(view, health),
            "in_flight": 1 if view.leased else 0,
            "last_error": health.last_error, "last_error_at": health.last_error_at,
            "credits": health.credits, "credits_at": health.credits_at,
            "answers_today": self._chat.health.answers_today(key), "surface": health.surface,
        }

    def _key_row(self, key: ApiKey, views: dict[str, AccountView]) -> dict[str, Any]:
        used = self._state.get(USED_KEY + key.id)
        return {
            "name": key.name, "id": key.id, "rpm": key.rpm, "concurrency": key.concurrency,
            "requests_today": self._state.counts(DAY_KEY + key.id, DAY)[-1],
            "requests_last_minute": self._state.counts(RPM_KEY + key.id, MINUTE)[-1],
            "in_flight": sum(1 for view in views.values()
                             if view.holder is not None and view.holder.startswith(key.id + ".")),
            "last_used": float(used) if used else None,
        }


def _state_of(view: AccountView, health: Health) -> str:
    if view.leased:
        return "busy"
    if health.state in (DEAD, SUSPECT):
        return health.state
    return "cooling" if view.cooldown_left > 0 else "free"


def _label(cred: Credential) -> str:
    if cred.signin is not None:
        return cred.signin  # the name its operator gave it
    return mask(cred.real_user_id or cred.jwt_user_id or cred.key)


def _seen_label(raw: str, key: str) -> str:
    try:
        label = json.loads(raw).get("account")
    except (ValueError, AttributeError):
        label = None
    return label if isinstance(label, str) else key
