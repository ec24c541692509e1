"""What the gateway keeps per web account, as the browser keeps it in its local storage:
the device uuid and id, the realUserID (learned from the user-info call, never assumed to
be the JWT's ``user.id``), the current token and when it was renewed or registered, and
when each is due again. Renewed tokens are shared across workers and hosts through the
shared state (:class:`TokenStore`). The calls that learn, renew and register are the
client's (:mod:`gateway.upstream.client`); this module only keeps the state.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from gateway.upstream import constants as C
from gateway.upstream.credentials import Credential, token_expiry

log = logging.getLogger(__name__)


class TokenStore(Protocol):
    """Where renewed tokens outlive the process (the shared state): by account key."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str, ttl: float | None = None) -> None: ...


#: Seconds between two renewal attempts of one account after a failed one.
RENEW_RETRY_SECONDS = 300.0
#: Where a renewed token is kept in the token store, before the account key.
TOKEN_KEY = "token:"


@dataclass
class WebAccount:
    """What the browser would keep for one account."""

    uuid: str
    device_id: str
    token: str
    expires_at: float | None
    registered_at: float | None = None
    real_user_id: str | None = None
    renew_tried_at: float = 0.0


def preparation_due(account: WebAccount, renew_before: float) -> bool:
    return (account.real_user_id is None or registration_due(account)
            or renewal_due(account, renew_before))


def registration_due(account: WebAccount) -> bool:
    registered = account.registered_at
    return registered is None or time.monotonic() - registered > C.DEVICE_TTL_SECONDS


def renewal_due(account: WebAccount, renew_before: float) -> bool:
    if account.expires_at is None or account.expires_at - time.time() > renew_before:
        return False
    return not account.renew_tried_at or time.monotonic() - account.renew_tried_at > RENEW_RETRY_SECONDS


def new_account(cred: Credential) -> WebAccount:
    hint = cred.device_hint if cred.device_hint and cred.device_hint.isdigit() else None
    fallback = "".join(random.choice("0123456789") for _ in range(8))
    return WebAccount(uuid=str(uuid.uuid4()), device_id=hint or fallback, token=cred.jwt,
                    expires_at=cred.expires_at, real_user_id=cred.real_user_id)


class AccountBook:
    """Each web account's :class:`WebAccount` in this process, with a lock per account, and
    the renewed tokens shared through the :class:`TokenStore`."""

    def __init__(self, tokens: TokenStore | None) -> None:
        self._tokens = tokens
        self._accounts: dict[str, WebAccount] = {}
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def account(self, cred: Credential) -> WebAccount:
        account = self._accounts.get(cred.key)
        if account is None:
            fresh = self.renewed(cred, new_account(cred))
            with self._lock:
                account = self._accounts.setdefault(cred.key, fresh)
        return account

    def renewed(self, cred: Credential, account: WebAccount) -> WebAccount:
        """The account with the newest token another worker or host renewed, if any."""
        if self._tokens is None:
            return account
        try:
            stored = self._tokens.get(TOKEN_KEY + cred.key)
        except Exception:  # the state is down: the pasted token still works until exp
            log.warning("could not read the renewed token of account %s", cred.key)
            return account
        expires = token_expiry(stored) if stored else None
        if stored and expires is not None and expires > (account.expires_at or 0) and expires > time.time():
            account.token, account.expires_at = stored, expires
        return account

    def keep_token(self, cred: Credential, account: WebAccount) -> None:
        """Share a renewed token with the other workers and hosts (until it expires)."""
        if self._tokens is None or account.expires_at is None:
            return
        try:
            self._tokens.put(TOKEN_KEY + cred.key, account.token, max(1.0, account.expires_at - time.time()))
        except Exception:
            log.warning("could not keep the renewed token of account %s", cred.key)

    def lock(self, cred: Credential) -> threading.Lock:
        """The account's lock: concurrent first requests prepare it once."""
        with self._lock:
            return self._locks.setdefault(cred.key, threading.Lock())

