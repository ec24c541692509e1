"""The credential doctor: walk the upstream step by step and name the first failing stage.

Account stages: parse the token → user info (the realUserID) → device registration →
credits. Then each surface the gateway may use (both under ``MINIMAX_SURFACE=auto``)
is walked on its own: the session surface through its opening sequence, a session, a
streamed answer and the archive; the matrix surface through send, poll and delete. The
report names the surface that works, the signing variant in use, and each surface's
first failing stage with its likely cause. The same check backs
``python -m gateway doctor`` and ``POST /token/check``.

A MiniMax Code credential (a client's ``mmoat_`` token, or an account signed in on this
gateway: ``--signin NAME``) walks its own stages: the sign-in's state (dead: "log in
again"), the quota (plan, credits, windows; a spent window fails), then the code surface:
the token accepted by the code endpoint (its catalogue) and by the messages route (a
token count, when the code driver is there). A web credential in auto mode is also tried
on the code endpoint first (unless ``MINIMAX_CODE_PROBE_WEB_TOKENS`` is off), as the gateway
does: the report says whether the code surface takes it (then auto mode uses it there).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway import doctor_code as code
from gateway import i18n
from gateway.doctor_code import StageFailed
from gateway.errors import (
    AccountInUse,
    AuthenticationFailed,
    ExpiredCredentials,
    GatewayError,
    NoSurface,
    QuotaExhausted,
    UpstreamRejectedSignature,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamUnavailable,
    UpstreamWrongPath,
)
from gateway.i18n import DEFAULT_LANG, Lang
from gateway.upstream import bundle, pacing
from gateway.upstream import constants as C
from gateway.upstream.answers import credits_of
from gateway.upstream.client import UpstreamClient
from gateway.upstream.conversation import Conversation, Driver, Turn, TurnFailed, TurnFinished, TurnInput, UpText
from gateway.upstream.credentials import Credential, mask, parse_one, signed_in
from gateway.upstream.quota import QuotaReader
from gateway.upstream.quota_shapes import credits_amount
from gateway.upstream.session import SessionDriver
from gateway.upstream.signins import SignIns
from gateway.upstream.surfaces import Surfaces

PING_PROMPT = "Reply with the single word: pong"
ANSWER_TIMEOUT = 90.0
#: Stage names of each surface's walk, in order.
SURFACE_STAGES: dict[str, tuple[str, ...]] = {
    "session": ("session config", "agent discovery", "create session", "stream answer", "archive session"),
    "matrix": ("send message", "poll to finished", "delete chat"),
}


@dataclass
class Stage:
    name: str  # the stage's stable English id, e.g. "user info"
    ok: bool
    detail: str
    cause: str = ""
    label: str = ""  # the name in the report's language


@dataclass
class SurfaceReport:
    stages: list[Stage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.stages) and all(s.ok for s in self.stages)

    @property
    def failed(self) -> Stage | None:
        return next((s for s in self.stages if not s.ok), None)


@dataclass
class Report:
    stages: list[Stage] = field(default_factory=list)
    credits: float | None = None
    surfaces: dict[str, SurfaceReport] = field(default_factory=dict)
    signing: str = ""
    #: Each web signing constant's source and age (gateway.upstream.bundle.describe).
    constants: list[dict[str, Any]] = field(default_factory=list)

    @property
    def surface(self) -> str | None:
        """The first surface that works, in the order they were walked."""
        return next((name for name, walk in self.surfaces.items() if walk.ok), None)

    @property
    def live(self) -> bool:
        return bool(self.stages) and all(s.ok for s in self.stages) and self.surface is not None

    @property
    def failed(self) -> Stage | None:
        failed = next((s for s in self.stages if not s.ok), None)
        if failed is not None or self.surface is not None:
            return failed
        return next((walk.failed for walk in self.surfaces.values() if walk.failed), None)

    def all_stages(self) -> list[Stage]:
        return self.stages + [s for walk in self.surfaces.values() for s in walk.stages]

    def as_dict(self) -> dict[str, Any]:
        failed = self.failed
        return {"live": self.live, "credits": self.credits, "surface": self.surface,
                "signing": self.signing, "constants": self.constants,
                "failed_stage": failed.name if failed else None,
                "likely_cause": failed.cause if failed else None,
                "stages": [asdict(s) for s in self.all_stages()],
                "surfaces": {name: {"ok": walk.ok,
                                    "failed_stage": walk.failed.name if walk.failed else None,
                                    "stages": [asdict(s) for s in walk.stages]}
                             for name, walk in self.surfaces.items()}}


class Doctor:
    def __init__(self, client: UpstreamClient, surfaces: Surfaces, model: str,
                 quota: QuotaReader | None = None, signins: SignIns | None = None) -> None:
        self.client = client
        self.surfaces = surfaces
        self.model = model
        self.quota = quota
        self.signins = signins

    def check(self, text: str, signin: str | None = None) -> Report:
        """The walk, with causes as catalogue keys (see :meth:`checked`); ``signin`` names
        an account signed in on this gateway instead of ``text``."""
        report = Report(signing=self.client.settings.signing.describe())
        if signin is not None:
            return self._code(signed_in(signin), report)
        cred = _stage(report.stages, "parse token", lambda: self._parse(text))
        if cred is None:
            return report
        if cred.kind == "code":
            return self._code(cred, report)
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("user info", lambda: self._user_info(cred)),
            ("device registration", lambda: self._register(cred)),
            ("credits", lambda: self._credits(cred, report)),
        ]
        for name, step in steps:
            if _stage(report.stages, name, step, cred) is None:
                return report
        native = self.surfaces.native
        if native is not None and self.surfaces.mode == "auto" and self.surfaces.probe_web_tokens:
            # First, as the gateway's own choice tries it first.
            walk = report.surfaces["code"] = SurfaceReport()
            _stage(walk.stages, code.WEB_TOKEN_STAGE, lambda: code.web_token(native, cred), cred)
        for surface in self._surfaces():
            report.surfaces[surface] = self._walk(surface, cred)
        return report

    def checked(self, text: str, lang: Lang = DEFAULT_LANG, signin: str | None = None) -> Report:
        """:meth:`check`, with stage names and causes in ``lang``."""
        report = self.check(text, signin)
        report.constants = bundle.describe(self.client.constants)
        for stage in report.all_stages():
            stage.label = i18n.text(i18n.stage_key(stage.name), lang)
            stage.cause = i18n.text(stage.cause, lang) if stage.cause else ""
        return report

    def _surfaces(self) -> tuple[str, ...]:
        return C.SURFACES if self.surfaces.mode == "auto" else (self.surfaces.mode,)

    # -- account stages -------------------------------------------------------------------
    @staticmethod
    def _parse(text: str) -> tuple[Credential, str]:
        cred = parse_one(text.strip())
        if cred.kind == "code":
            return cred, "MiniMax Code access token"
        if cred.expired():
            raise ExpiredCredentials()
        expiry = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(cred.expires_at)) if cred.expires_at else "none"
        source = f"realUserID {mask(cred.real_user_id)} given" if cred.real_user_id else "bare token"
        return cred, f"{source}, expires {expiry}"

    def _user_info(self, cred: Credential) -> str:
        real = self.client.learn_identity(cred)
        if cred.real_user_id and real != cred.real_user_id:
            raise StageFailed(f"the account's realUserID is {mask(real)}, not {mask(cred.real_user_id)}")
        learned = "" if cred.real_user_id else " (learned)"
        return f"realUserID {mask(real)}{learned}"

    def _register(self, cred: Credential) -> str:
        data = self.client.register_device(cred)
        return f"device {data.get('deviceIDStr')}"

    def _credits(self, cred: Credential, report: Report) -> str:
        data = self.client.membership(cred)
        report.credits = credits_of(data)
        if report.credits is not None and report.credits <= 0:
            raise StageFailed("no credits left")
        return f"{data.get('plan_name') or 'plan ?'}: {report.credits} credits"

    # -- MiniMax Code accounts (gateway/doctor_code.py) -------------------------------------
    def _code(self, cred: Credential, report: Report) -> Report:
        if cred.signin is not None and _stage(report.stages, "signed in",
                                              lambda: code.signed_in(self.signins, cred.signin or ""), cred) is None:
            return report
        reading = _stage(report.stages, "quota", lambda: code.quota(self.quota, cred), cred)
        if reading is None:
            return report
        report.credits = credits_amount(reading)
        walk = report.surfaces["code"] = SurfaceReport()
        native = self.surfaces.native
        if _stage(walk.stages, "code endpoint", lambda: code.endpoint(self.quota, cred), cred) is not None \
                and native is not None:
            _stage(walk.stages, "count tokens", lambda: code.count_tokens(native, cred), cred)
        return report

    # -- surface walks --------------------------------------------------------------------
    def _walk(self, surface: str, cred: Credential) -> SurfaceReport:
        walk = SurfaceReport()
        driver = self.surfaces.driver(surface)
        state: dict[str, Any] = {}
        for name, step in zip(SURFACE_STAGES[surface], self._steps(driver, cred, state), strict=True):
            if _stage(walk.stages, name, step, cred) is None:
                _cleanup(driver, cred, state)
                break
        return walk

    def _steps(self, driver: Driver, cred: Credential, state: dict[str, Any]) -> list[Callable[[], Any]]:
        """The walk of one surface; matrix creates its chat when the message is sent."""
        def read() -> str:
            return f"answered {read_answer(state['turn'])[:60]!r}"

        def discard() -> str:
            return _discard(driver, cred, state)

        if isinstance(driver, SessionDriver):
            return [lambda: _session_config(driver, cred), lambda: f"agent {driver.agent_id(cred)}",
                    lambda: self._open(driver, cred, state),
                    lambda: (self._send(driver, cred, state), read())[1], discard]
        return [lambda: (self._open(driver, cred, state), self._send(driver, cred, state))[1], read, discard]

    def _open(self, driver: Driver, cred: Credential, state: dict[str, Any]) -> str:
        state["conversation"] = driver.open(cred, self.model)
        return f"session {state['conversation'].id}"

    def _send(self, driver: Driver, cred: Credential, state: dict[str, Any]) -> str:
        turn = driver.send(cred, state["conversation"], TurnInput(PING_PROMPT, self.model))
        state["turn"], state["conversation"] = turn, turn.conversation
        return f"chat {turn.conversation.id}"


def _session_config(driver: SessionDriver, cred: Credential) -> str:
    driver.forget(cred)
    driver.probe(cred)
    return f"models: {', '.join(driver.models(cred)) or '(none listed)'}"


def _discard(driver: Driver, cred: Credential, state: dict[str, Any]) -> str:
    conversation: Conversation = state.pop("conversation")
    pacing.retry(lambda: driver.discard(cred, conversation), pacing.DOCTOR_CLEANUP_DELAYS,
                 retry_on=(AccountInUse,), what="doctor clean-up")
    return "archived" if driver.name == "session" and _archives(driver) else "deleted"


def _archives(driver: Driver) -> bool:
    return isinstance(driver, SessionDriver) and driver.settings.session_cleanup == "archive"


def _cleanup(driver: Driver, cred: Credential, state: dict[str, Any]) -> None:
    turn: Turn | None = state.get("turn")
    if turn is not None:
        turn.stop()
    conversation: Conversation | None = state.get("conversation")
    if conversation is not None and conversation.id is not None:
        try:
            driver.discard(cred, conversation)
        except GatewayError:
            pass


def read_answer(turn: Turn) -> str:
    """The whole text of a turn (raises its error; bounded by :data:`ANSWER_TIMEOUT`)."""
    deadline, text = time.monotonic() + ANSWER_TIMEOUT, []
    try:
        for event in turn.events():
            if isinstance(event, UpText):
                text.append(event.text)
            elif isinstance(event, TurnFailed):
                raise event.error
            elif isinstance(event, TurnFinished):
                return "".join(text)
            if time.monotonic() > deadline:
                break
    finally:
        turn.stop()
    raise UpstreamTimeout("the answer did not finish in time")


def _stage(stages: list[Stage], name: str, step: Callable[[], Any],
           cred: Credential | None = None) -> Any:
    try:
        result = step()
    except (GatewayError, StageFailed) as error:
        message = error.message if isinstance(error, GatewayError) else str(error)
        stages.append(Stage(name, False, message, likely_cause(name, error, cred)))
        return None
    detail = result[1] if isinstance(result, tuple) else str(result)
    stages.append(Stage(name, True, detail))
    return result[0] if isinstance(result, tuple) else (result or True)


#: The likely cause of a failure, by error class (first match wins): a catalogue key.
CAUSES: tuple[tuple[type[BaseException], str], ...] = (
    (ExpiredCredentials, "doctor.cause.expired"),
    (UpstreamRejectedSignature, "doctor.cause.signature"),
    (NoSurface, "doctor.cause.no_surface"),
    (UpstreamWrongPath, "doctor.cause.no_surface"),
    (QuotaExhausted, "doctor.cause.no_credits"),
    (AccountInUse, "doctor.cause.busy"),
    (UpstreamUnavailable, "doctor.cause.unreachable"),
    (UpstreamTimeout, "doctor.cause.timeout"),
    (UpstreamServerError, "doctor.cause.server_error"),
)


def likely_cause(stage: str, error: BaseException, cred: Credential | None) -> str:
    """The catalogue key of the likeliest cause of ``error`` at ``stage``."""
    if cred is not None and cred.kind == "code":
        found = code.code_cause(error, cred)
        if found:
            return found
    if stage == code.WEB_TOKEN_STAGE and isinstance(error, AuthenticationFailed):
        return "doctor.cause.web_token_not_on_code"
    if isinstance(error, AuthenticationFailed) and stage == "parse token" \
            and not isinstance(error, ExpiredCredentials):
        return "doctor.cause.malformed"
    if isinstance(error, UpstreamUnauthorized):
        if any(stage in names for names in SURFACE_STAGES.values()):
            return "doctor.cause.surface_refused"
        if cred is not None and cred.explicit_user_id:
            return "doctor.cause.wrong_user_or_revoked"
        return "doctor.cause.revoked"
    if isinstance(error, StageFailed):
        return "doctor.cause.no_credits" if "credits" in str(error) else "doctor.cause.wrong_user_id"
    return next((key for kinds, key in CAUSES if isinstance(error, kinds)), "doctor.cause.unexpected")


def render(report: Report, lang: Lang = DEFAULT_LANG) -> str:
    """The report (from :meth:`Doctor.checked`) as terminal lines in ``lang``."""
    lines = [_line(stage, lang) for stage in report.stages]
    for name, walk in report.surfaces.items():
        lines += [_line(stage, lang) for stage in walk.stages]
        failed = walk.failed
        lines.append("  " + (i18n.text("doctor.surface_works", lang, surface=name) if failed is None else
                             i18n.text("doctor.surface_fails", lang, surface=name, stage=_label(failed))))
    lines += [_constant_line(item, lang) for item in report.constants]
    lines.append(i18n.text("doctor.signing", lang, variant=report.signing))
    if report.live:
        lines.append(i18n.text("doctor.live", lang, surface=report.surface))
    else:
        failed = report.failed
        lines.append(i18n.text("doctor.not_live", lang, stage=_label(failed) if failed else "?"))
    return "\n".join(lines)


#: Units of an age in the report, per language.
AGE_UNITS: dict[str, tuple[str, str, str, str]] = {"en": (" s", " min", " h", " d"),
                                                   "zh": (" 秒", " 分钟", " 小时", " 天")}


def _age(seconds: object, lang: Lang) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    second, minute, hour, day = AGE_UNITS[lang]
    for size, unit in ((86400, day), (3600, hour), (60, minute)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}{second}"


def _constant_line(item: dict[str, Any], lang: Lang) -> str:
    """Where a signing constant comes from and how old it is."""
    return i18n.text(f"doctor.constant.{item['source']}", lang, name=item["name"], env=item["setting"],
                     script=item["script"], date=C.CONSTANTS_CAPTURED_AT, age=_age(item["age_seconds"], lang))


def _label(stage: Stage) -> str:
    return stage.label or stage.name


def _line(stage: Stage, lang: Lang) -> str:
    line = f"{'✓' if stage.ok else '✗'} {_label(stage)}: {stage.detail}"
    if stage.ok:
        return line
    return f"{line}\n  {i18n.text('doctor.likely_cause', lang, cause=stage.cause)}"
