"""Choosing the upstream surface per account: ``MINIMAX_SURFACE=auto|session|matrix``.

In ``auto`` mode each account is probed once with the cheapest call that tells the
surfaces apart (the session API's ``config`` under each path prefix in turn, then the
matrix ``list_chat``); the first surface that answers is used and remembered for
``surface_ttl`` seconds. An empty 401, a 404 or the site's HTML page on a chat call
makes the chat core call :meth:`Surfaces.after_refusal`, which forgets the choice and
probes again. A 401 retires an account only when the identity check fails as well.
"""

from __future__ import annotations

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
from gateway.upstream.conversation import Driver
from gateway.upstream.credentials import Credential
from gateway.upstream.matrix import MatrixDriver
from gateway.upstream.session import SessionDriver
from gateway.upstream.settings import UpstreamSettings

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
    ) -> None:
        self.client = client
        self.drivers = dict(drivers)
        self.mode = mode
        self.ttl = ttl
        self._on_choice = on_choice
        self._clock = clock
        self._chosen: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def driver(self, name: str) -> Driver:
        return self.drivers[name]

    def driver_for(self, cred: Credential) -> Driver:
        """The account's driver, probing first when the choice is unknown or stale."""
        if self.mode != "auto":
            return self.drivers[self.mode]
        chosen = self._chosen.get(cred.key)
        if chosen is None or self._clock() - chosen[1] > self.ttl:
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
                   on_choice: ChoiceObserver = lambda key, surface: None) -> Surfaces:
    """Both drivers over one client, chosen as the settings say."""
    drivers: dict[str, Driver] = {"session": SessionDriver(client, settings),
                                  "matrix": MatrixDriver(client, settings)}
    return Surfaces(client, drivers, settings.surface, settings.surface_ttl, on_choice)
