"""Choosing the upstream surface per account: ``MINIMAX_SURFACE=auto|code|session|matrix``.

A MiniMax Code credential (a signed-in account or a client-given ``mmoat_…`` token) always
uses the native ``code`` surface: it has no web token. ``code`` forces that surface for
web tokens too (tried as Bearer). In ``auto`` mode a web ``_token`` is tried once on the
code surface (whether that works is [unknown]; ``MINIMAX_CODE_PROBE_WEB_TOKENS=off``
skips it) and the answer is remembered for ``surface_ttl`` seconds; otherwise, and for
the web surfaces' own choice, each account is probed once with the cheapest call that tells the
surfaces apart (the session API's ``config`` under each path prefix in turn, then the
matrix ``list_chat``); the first surface that answers is used and remembered for
``surface_ttl`` seconds. An empty 401, a 404 or the site's HTML page on a chat call
makes the chat core call :meth:`Surfaces.after_refusal`, which forgets the choice and
probes again. A 401 retires an account only when the identity check fails as well.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from gateway.errors import (
    AccountRefused,
    GatewayError,
    NoSurface,
    UpstreamBadAnswer,
    UpstreamUnauthorized,
)
from gateway.upstream import constants as C
from gateway.upstream.client import UpstreamClient
from gateway.upstream.code import NAME as CODE
from gateway.upstream.code import CodeDriver
from gateway.upstream.conversation import Driver, NativeDriver
from gateway.upstream.credentials import Credential
from gateway.upstream.matrix import MatrixDriver
from gateway.upstream.session import SessionDriver
from gateway.upstream.settings import UpstreamSettings

log = logging.getLogger(__name__)

#: Probe failures that mean "not this surface" (anything else is a passing failure).
REFUSALS: tuple[type[GatewayError], ...] = (UpstreamUnauthorized, UpstreamBadAnswer)
#: Told of each account's choice: its key and the surface.
ChoiceObserver = Callable[[str, str], None]


class Surfaces:
    """The drivers, and which one each account uses."""

    def __init__(
        self,
        client: UpstreamClient,
        drivers: Mapping[str, Driver],
        mode: str = "auto",
        ttl: float = 3600.0,
        on_choice: ChoiceObserver = lambda key, surface: None,
        clock: Callable[[], float] = time.monotonic,
        native: NativeDriver | None = None,
        probe_web_tokens: bool = False,
    ) -> None:
        self.client = client
        self.drivers = dict(drivers)
        self.native = native
        self.mode = mode
        self.ttl = ttl
        self.probe_web_tokens = probe_web_tokens
        self._on_choice = on_choice
        self._clock = clock
        self._chosen: dict[str, tuple[str, float]] = {}
        #: Web tokens tried on the code surface: account key → (accepted, when).
        self._web_on_code: dict[str, tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def native_for(self, cred: Credential) -> NativeDriver | None:
        """The native driver when the account uses the code surface, else None."""
        if self.native is None:
            return None
        if cred.kind == "code" or self.mode == CODE:
            self._note(cred, CODE)
            return self.native
        if self.mode == "auto" and self.probe_web_tokens and self.web_token_on_code(cred):
            return self.native
        return None

    def web_token_on_code(self, cred: Credential) -> bool:
        """Whether the code surface takes this web token as Bearer (tried once, remembered)."""
        assert self.native is not None
        known = self._web_on_code.get(cred.key)
        if known is not None and self._clock() - known[1] <= self.ttl:
            return known[0]
        try:
            self.native.probe(cred)
            accepted = True
        except GatewayError as error:  # refused, or unreachable: the web surfaces, then
            accepted = False
            log.info("the code surface did not take account %s's web token (%s)", cred.key,
                     type(error).__name__)
        with self._lock:
            self._web_on_code[cred.key] = (accepted, self._clock())
        if accepted:
            self._note(cred, CODE)
        return accepted

    def _note(self, cred: Credential, surface: str) -> None:
        known = self._chosen.get(cred.key)
        if known is None or known[0] != surface:
            self._remember(cred, surface)

    def driver(self, name: str) -> Driver:
        return self.drivers[name]

    def driver_for(self, cred: Credential) -> Driver:
        """The account's web driver, probing first when the choice is unknown or stale."""
        if self.mode in self.drivers:
            return self.drivers[self.mode]
        chosen = self._chosen.get(cred.key)
        if chosen is None or chosen[0] not in self.drivers or self._clock() - chosen[1] > self.ttl:
            return self.drivers[self._remember(cred, self.probe(cred))]
        return self.drivers[chosen[0]]

    def probe(self, cred: Credential) -> str:
        """The first surface that works for the account, in :data:`C.SURFACES` order."""
        reasons: dict[str, str] = {}
        for name in C.SURFACES:
            try:
                self.drivers[name].probe(cred)
                return name
            except REFUSALS as error:
                reasons[name] = error.message
        if not self.client.identity_alive(cred):
            raise UpstreamUnauthorized()
        raise NoSurface(f"{NoSurface.message} "
                        + "; ".join(f"{name} API: {reason}" for name, reason in reasons.items()))

    def after_refusal(self, cred: Credential, surface: str, may_retry: bool) -> None:
        """A chat call on ``surface`` was refused (empty 401, 404, the site's page).

        Returns when the account now uses another surface and the call may be tried
        again there. Raises :class:`UpstreamUnauthorized` when the token itself is dead
        (the one case that retires an account), else :class:`AccountRefused`: a
        surface refusing a valid token is not the account's death.
        """
        if not self.client.identity_alive(cred):
            raise UpstreamUnauthorized() from None
        if self.mode == "auto" and may_retry:
            self.forget(cred)
            if self._remember(cred, self.probe(cred)) != surface:
                return
        raise AccountRefused(f"MiniMax's {surface} surface refused this account although its token "
                             "is valid (see MINIMAX_SURFACE).")

    def forget(self, cred: Credential) -> None:
        """Drop the account's choice and what its drivers learned, so it is probed anew."""
        with self._lock:
            self._chosen.pop(cred.key, None)
            self._web_on_code.pop(cred.key, None)
        for driver in self.drivers.values():
            driver.forget(cred)

    def choices(self) -> dict[str, str]:
        """Each probed account (by its non-reversible key) → its surface."""
        with self._lock:
            return {key: surface for key, (surface, _) in self._chosen.items()}

    def _remember(self, cred: Credential, surface: str) -> str:
        with self._lock:
            self._chosen[cred.key] = (surface, self._clock())
        self._on_choice(cred.key, surface)
        return surface


def build_surfaces(client: UpstreamClient, settings: UpstreamSettings,
                   on_choice: ChoiceObserver = lambda key, surface: None,
                   code: CodeDriver | None = None) -> Surfaces:
    """The web drivers over one client, and the code driver, chosen as the settings say."""
    drivers: dict[str, Driver] = {"session": SessionDriver(client, settings),
                                  "matrix": MatrixDriver(client, settings)}
    probe = code is not None and code.settings.probe_web_tokens
    return Surfaces(client, drivers, settings.surface, settings.surface_ttl, on_choice,
                    native=code, probe_web_tokens=probe)
