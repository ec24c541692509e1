"""Choosing a surface per account: probe order, memory, re-probing, both failing."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import NoSurface, UpstreamError, UpstreamServerError, UpstreamUnauthorized, UpstreamWrongPath
from gateway.upstream.credentials import Credential
from gateway.upstream.surfaces import Surfaces

CRED = Credential(real_user_id="1", jwt="a.b.c")


class FakeDriver:
    def __init__(self, name: str, failures: list[Exception | None]) -> None:
        self.name, self.failures, self.probes, self.forgotten = name, failures, 0, 0

    def forget(self, cred: Credential) -> None:
        self.forgotten += 1

    def probe(self, cred: Credential) -> None:
        self.probes += 1
        failure = self.failures.pop(0) if len(self.failures) > 1 else self.failures[0]
        if failure is not None:
            raise failure


class FakeClient:
    def __init__(self, alive: bool = True) -> None:
        self.alive = alive

    def identity_alive(self, cred: Credential) -> bool:
        return self.alive


def surfaces(session: list[Exception | None], matrix: list[Exception | None], alive: bool = True,
             mode: str = "auto") -> tuple[Surfaces, dict[str, Any], list[tuple[str, str]]]:
    drivers = {"session": FakeDriver("session", session), "matrix": FakeDriver("matrix", matrix)}
    seen: list[tuple[str, str]] = []
    now = [0.0]
    chooser = Surfaces(FakeClient(alive), drivers, mode, ttl=60, on_choice=lambda k, s: seen.append((k, s)),  # type: ignore[arg-type]
                       clock=lambda: now[0])
    return chooser, {"drivers": drivers, "now": now}, seen


def test_session_is_preferred_and_remembered() -> None:
    chooser, world, seen = surfaces([None], [None])
    assert chooser.driver_for(CRED).name == "session"
    assert chooser.driver_for(CRED).name == "session"
    assert world["drivers"]["session"].probes == 1 and world["drivers"]["matrix"].probes == 0
    assert seen == [(CRED.key, "session")] and chooser.choices() == {CRED.key: "session"}


def test_matrix_when_the_session_path_answers_html() -> None:
    chooser, _, _ = surfaces([UpstreamWrongPath()], [None])
    assert chooser.driver_for(CRED).name == "matrix"


def test_session_when_matrix_refuses_with_an_empty_401() -> None:
    chooser, world, _ = surfaces([None], [UpstreamUnauthorized()])
    assert chooser.driver_for(CRED).name == "session"


def test_both_failing_names_both() -> None:
    chooser, _, _ = surfaces([UpstreamWrongPath("no prefix")], [UpstreamUnauthorized()])
    with pytest.raises(NoSurface) as info:
        chooser.driver_for(CRED)
    assert "session API: no prefix" in info.value.message and "matrix API" in info.value.message


def test_both_failing_with_a_dead_token_is_a_401() -> None:
    chooser, _, _ = surfaces([UpstreamUnauthorized()], [UpstreamUnauthorized()], alive=False)
    with pytest.raises(UpstreamUnauthorized):
        chooser.driver_for(CRED)


def test_a_transient_failure_is_not_a_choice() -> None:
    chooser, _, _ = surfaces([UpstreamServerError()], [None])
    with pytest.raises(UpstreamServerError):
        chooser.driver_for(CRED)
    assert chooser.choices() == {}


def test_the_choice_expires_and_is_probed_again() -> None:
    chooser, world, _ = surfaces([None], [None])
    chooser.driver_for(CRED)
    world["now"][0] = 61
    chooser.driver_for(CRED)
    assert world["drivers"]["session"].probes == 2


def test_a_refusal_re_probes_and_moves_on() -> None:
    chooser, world, _ = surfaces([None, UpstreamWrongPath()], [None])
    assert chooser.driver_for(CRED).name == "session"
    chooser.after_refusal(CRED, "session", may_retry=True)
    assert chooser.driver_for(CRED).name == "matrix"
    assert world["drivers"]["session"].forgotten == 1  # its opening sequence runs again next time


def test_a_refusal_on_the_surface_probed_again_is_not_an_account_death() -> None:
    chooser, _, _ = surfaces([None], [None])
    chooser.driver_for(CRED)
    with pytest.raises(UpstreamError) as info:
        chooser.after_refusal(CRED, "session", may_retry=True)
    assert not isinstance(info.value, UpstreamUnauthorized) and "session surface refused" in info.value.message


def test_a_refusal_with_a_dead_token_retires_the_account() -> None:
    chooser, _, _ = surfaces([None], [None], alive=False)
    with pytest.raises(UpstreamUnauthorized):
        chooser.after_refusal(CRED, "session", may_retry=True)


def test_a_forced_surface_is_never_probed() -> None:
    chooser, world, _ = surfaces([UpstreamWrongPath()], [None], mode="session")
    assert chooser.driver_for(CRED).name == "session" and world["drivers"]["session"].probes == 0
    with pytest.raises(UpstreamError):
        chooser.after_refusal(CRED, "session", may_retry=True)
    assert world["drivers"]["session"].probes == 0
