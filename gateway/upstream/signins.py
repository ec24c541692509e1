"""MiniMax Code accounts signed in on the server, and the lifecycle of their tokens.

``python -m gateway login`` (or the admin page) stores a token pair here, as a record of
kind ``signin`` in the shared state, so every worker and host uses and renews the same
pair. The background upkeep (:meth:`SignIns.refresh_due`) refreshes each access token
``refresh_before`` seconds before it expires (never before half its lifetime), so a
request only ever reads the state (:meth:`SignIns.access_token`); it refreshes only a
token that has already expired, or once on a 401 (:meth:`SignIns.refresh`).

Refresh tokens are single-use, so one refresh per account runs at a time across workers
and hosts: a lease in the shared state on the pseudo-account ``signin-refresh:<key>``.
Whoever holds it re-reads the record, refreshes, and writes the rotated pair before the
new access token is used; the others wait for the record to change and use what it
holds. ``invalid_grant`` marks the sign-in dead ("log in again"), visible to everyone
through :meth:`SignIns.all`; 5xx, 429 and transport failures are tried again later.

The upstream package does not import :mod:`gateway.state`: :class:`SignInState` names
what is used of it, and every backend has it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gateway.errors import GatewayError, InvalidRequest, SignInRevoked, UpstreamUnavailable
from gateway.upstream.credentials import mask, signin_key
from gateway.upstream.oauth import OAuthClient, TokenPair

log = logging.getLogger(__name__)

#: The kind of the shared state's records that hold sign-ins (by account name).
RECORD_KIND = "signin"
#: The pseudo-account whose lease makes one process the refresher of a sign-in.
LEASE_PREFIX = "signin-refresh:"
#: Seconds a lease outlives the longest refresh call (connect + read timeouts).
LEASE_MARGIN = 5.0
#: Seconds between two looks of a waiter at the record another process is refreshing.
WAIT_STEP = 0.2
#: Seconds the upkeep leaves a sign-in alone after a transient refresh failure.
RETRY_AFTER_FAILURE = 30.0
#: Names of accounts: letters (any script), digits, ``.``, ``_``, ``@``, ``-``.
NAME = re.compile(r"[\w.@-]{1,64}")
REVOKED_REASON = "MiniMax refused the refresh token (invalid_grant): log in again."

SignInStatus = Literal["ok", "dead"]
OK: SignInStatus = "ok"
DEAD: SignInStatus = "dead"


class Granted(Protocol):
    """A lease attempt's outcome (:class:`gateway.state.base.Attempt` has it)."""

    @property
    def account(self) -> str | None: ...


class SignInState(Protocol):
    """What sign-ins need of the shared state (every :mod:`gateway.state` backend)."""

    def records(self, kind: str) -> dict[str, str]: ...

    def add_record(self, kind: str, name: str, value: str) -> None: ...

    def remove_record(self, kind: str, name: str) -> None: ...

    def try_lease(self, ticket: str, accounts: Sequence[str], holder: str, ttl: float) -> Granted: ...

    def withdraw(self, ticket: str, accounts: Sequence[str]) -> None: ...

    def release(self, account: str, holder: str, cooldown: float = 0.0) -> None: ...


@dataclass(frozen=True, repr=False)
class SignIn:
    """One signed-in account: its name, region, token pair and whether it still works."""

    name: str
    region: str
    tokens: TokenPair
    created_at: float
    state: SignInStatus = OK
    #: Why the sign-in is dead ("" while it works).
    reason: str = ""
    refreshed_at: float | None = None

    @property
    def ok(self) -> bool:
        return self.state == OK

    @property
    def key(self) -> str:
        """The account key (as :func:`gateway.upstream.credentials.signed_in` gives it)."""
        return signin_key(self.name)

    @property
    def expires_at(self) -> float:
        return self.tokens.expires_at

    def public(self) -> dict[str, Any]:
        """What may be shown (admin page, CLI, health): no token, the account id masked."""
        return {"name": self.name, "key": self.key, "region": self.region, "state": self.state,
                "reason": self.reason, "expires_at": self.tokens.expires_at, "created_at": self.created_at,
                "refreshed_at": self.refreshed_at, "account": mask(self.tokens.account_id or "-")}

    def __repr__(self) -> str:
        return f"SignIn({self.name!r}, {self.region}, {self.state}, key={self.key}, {self.tokens!r})"

    __str__ = __repr__


class SignIns:
    """The sign-ins of the shared state, and the refresh of their tokens."""

    def __init__(
        self,
        state: SignInState,
        oauth: Mapping[str, OAuthClient],
        refresh_before: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._state = state
        self._oauth = oauth  # by region: a token is refreshed where it was granted
        self._refresh_before = refresh_before
        self._clock = clock
        self._sleep = sleep
        self._retry_at: dict[str, float] = {}
        self._lock = threading.Lock()

    # -- the list ----------------------------------------------------------------------
    def add(self, name: str, region: str, tokens: TokenPair) -> SignIn:
        """Keep (or replace, on a new login) the sign-in ``name``."""
        if not valid_name(name):
            raise InvalidRequest("An account name is 1-64 letters, digits, '.', '_', '@' or '-'.")
        if region not in self._oauth:
            raise InvalidRequest(f"Unknown MiniMax Code region {region!r}.")
        sign_in = SignIn(name=name, region=region, tokens=tokens, created_at=self._clock())
        self._store(sign_in)
        return sign_in

    def remove(self, name: str) -> bool:
        """Forget ``name`` (sign-out is local: MiniMax has no revocation); False if unknown."""
        if self.get(name) is None:
            return False
        self._state.remove_record(RECORD_KIND, name)
        return True

    def get(self, name: str) -> SignIn | None:
        raw = self._state.records(RECORD_KIND).get(name)
        return None if raw is None else _parse(name, raw)

    def region_of(self, name: str) -> str | None:
        """The region ``name`` signed in at (its tokens are valid only on that region's hosts)."""
        sign_in = self.get(name)
        return None if sign_in is None else sign_in.region

    def all(self) -> list[SignIn]:
        """Every sign-in, dead ones included, by name."""
        found = (_parse(name, raw) for name, raw in sorted(self._state.records(RECORD_KIND).items()))
        return [sign_in for sign_in in found if sign_in is not None]

    def default_name(self, tokens: TokenPair) -> str:
        """A name for a new login: the nickname or account id (unless another account has
        it), else ``account-N``."""
        taken = {sign_in.name: sign_in.tokens.account_id for sign_in in self.all()}
        for candidate in (tokens.nickname, tokens.account_id):
            if candidate and valid_name(candidate) and taken.get(candidate, tokens.account_id) == tokens.account_id:
                return candidate
        number = 1
        while f"account-{number}" in taken:
            number += 1
        return f"account-{number}"

    # -- tokens ------------------------------------------------------------------------
    def access_token(self, name: str) -> str:
        """The access token to send now: read from the state; refreshed here only when it
        has already expired (the upkeep refreshes it ahead of time)."""
        current = self._usable(name)
        if current.tokens.expires_at > self._clock():
            return current.tokens.access_token
        return self.refresh(name, seen_access=current.tokens.access_token)

    def refresh(self, name: str, seen_access: str | None = None) -> str:
        """A new access token for ``name``, replacing ``seen_access`` (default: the current
        one). When another worker or host already replaced it, its successor is returned
        without a call; otherwise one refresh runs under the shared lease."""
        current = self._usable(name)
        seen = current.tokens.access_token if seen_access is None else seen_access
        if current.tokens.access_token != seen:
            return current.tokens.access_token
        lease, ticket, holder = LEASE_PREFIX + current.key, uuid.uuid4().hex, uuid.uuid4().hex
        ttl = self._lease_ttl(current.region)
        deadline = self._clock() + ttl + LEASE_MARGIN
        while self._state.try_lease(ticket, [lease], holder, ttl).account is None:
            try:
                self._sleep(WAIT_STEP)
                latest = self._usable(name)  # raises when the holder found it revoked
            except BaseException:
                self._state.withdraw(ticket, [lease])
                raise
            if latest.tokens.access_token != seen or self._clock() > deadline:
                self._state.withdraw(ticket, [lease])
                if latest.tokens.access_token != seen:
                    return latest.tokens.access_token
                raise UpstreamUnavailable("Another gateway process is still refreshing this MiniMax Code "
                                          "sign-in; retry shortly.")
        try:
            return self._rotate(name, seen)
        finally:
            self._state.release(lease, holder)

    def refresh_due(self) -> int:
        """The upkeep: refresh every working sign-in that is close to expiry; how many were
        refreshed. Failures are logged (and tried again later), never raised."""
        refreshed = 0
        for sign_in in self.all():
            if not self._due(sign_in):
                continue
            try:
                if self.refresh(sign_in.name, seen_access=sign_in.tokens.access_token) != \
                        sign_in.tokens.access_token:
                    refreshed += 1
            except SignInRevoked:
                continue  # marked dead and logged by the refresh
            except GatewayError as error:
                with self._lock:
                    self._retry_at[sign_in.name] = self._clock() + RETRY_AFTER_FAILURE
                log.warning("could not refresh the MiniMax Code sign-in %s (%s); trying again later",
                            sign_in.key, type(error).__name__)
        return refreshed

    # -- internals ---------------------------------------------------------------------
    def _due(self, sign_in: SignIn) -> bool:
        if not sign_in.ok or self._retry_at.get(sign_in.name, 0.0) > self._clock():
            return False
        lifetime = sign_in.tokens.expires_at - (sign_in.refreshed_at or sign_in.created_at)
        # Never before half the lifetime: a short-lived token is not refreshed on every round.
        margin = min(self._refresh_before, lifetime / 2)
        return sign_in.tokens.expires_at - self._clock() <= margin

    def _rotate(self, name: str, seen: str) -> str:
        """Under the lease: refresh unless someone did meanwhile; persist, then return."""
        current = self._usable(name)
        if current.tokens.access_token != seen:
            return current.tokens.access_token
        try:
            tokens = self._client(current.region).refresh(current.tokens.refresh_token)
        except SignInRevoked:
            self._store(dataclasses.replace(current, state=DEAD, reason=REVOKED_REASON))
            log.warning("the MiniMax Code sign-in %s was revoked (invalid_grant): log in again", current.key)
            raise SignInRevoked(f"The MiniMax Code sign-in '{name}' was revoked or has expired; "
                                "log in again (python -m gateway login).") from None
        tokens = dataclasses.replace(tokens, account_id=tokens.account_id or current.tokens.account_id,
                                     nickname=tokens.nickname or current.tokens.nickname)
        # The old refresh token is dead now: the new pair is written before anyone uses it.
        self._store(dataclasses.replace(current, tokens=tokens, refreshed_at=self._clock()))
        with self._lock:
            self._retry_at.pop(name, None)
        log.info("refreshed the MiniMax Code sign-in %s", current.key)
        return tokens.access_token

    def _usable(self, name: str) -> SignIn:
        sign_in = self.get(name)
        if sign_in is None:
            raise SignInRevoked(f"No MiniMax Code account is signed in as '{name}' (signed out?).")
        if not sign_in.ok:
            raise SignInRevoked(f"The MiniMax Code sign-in '{name}' is dead ({sign_in.reason}).")
        return sign_in

    def _client(self, region: str) -> OAuthClient:
        client = self._oauth.get(region)
        if client is None:
            raise SignInRevoked(f"This gateway has no MiniMax Code region {region!r}; log in again.")
        return client

    def _lease_ttl(self, region: str) -> float:
        settings = self._client(region).settings
        return settings.connect_timeout + settings.read_timeout + LEASE_MARGIN

    def _store(self, sign_in: SignIn) -> None:
        self._state.add_record(RECORD_KIND, sign_in.name, _dump(sign_in))


def valid_name(name: str) -> bool:
    return bool(NAME.fullmatch(name))


def _dump(sign_in: SignIn) -> str:
    tokens = sign_in.tokens
    return json.dumps({
        "region": sign_in.region, "access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at, "scope": tokens.scope, "account_id": tokens.account_id,
        "nickname": tokens.nickname, "created_at": sign_in.created_at, "refreshed_at": sign_in.refreshed_at,
        "state": sign_in.state, "reason": sign_in.reason,
    })


def _parse(name: str, raw: str) -> SignIn | None:
    try:
        data = json.loads(raw)
        tokens = TokenPair(access_token=str(data["access_token"]), refresh_token=str(data["refresh_token"]),
                           expires_at=float(data["expires_at"]), scope=str(data.get("scope") or ""),
                           account_id=data.get("account_id"), nickname=data.get("nickname"))
        state: SignInStatus = DEAD if data.get("state") == DEAD else OK
        refreshed = data.get("refreshed_at")
        return SignIn(name=name, region=str(data["region"]), tokens=tokens, created_at=float(data["created_at"]),
                      state=state, reason=str(data.get("reason") or ""),
                      refreshed_at=None if refreshed is None else float(refreshed))
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("the sign-in record %s cannot be read; it is ignored", signin_key(name))
        return None
