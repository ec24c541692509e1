"""The credential doctor: walk the upstream step by step and name the first failing stage.

Stages: parse the token → user info → device registration → credits → send a short
message → poll it to finished → delete the chat. Each stage's result is recorded; the
first failure stops the walk and comes with its likely cause. The same check backs
``python -m gateway doctor`` and ``POST /token/check``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.errors import (
    AuthenticationFailed,
    ExpiredCredentials,
    GatewayError,
    QuotaExhausted,
    UpstreamRejectedSignature,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from gateway.upstream import constants as C
from gateway.upstream.chat import read_snapshot, send_body, sent_ids
from gateway.upstream.client import AccountBusy, UpstreamClient
from gateway.upstream.credentials import Credential, mask, parse_one

PING_PROMPT = "Reply with the single word: pong"
POLL_SECONDS = 0.5
ANSWER_TIMEOUT = 90.0
DELETE_ATTEMPTS = 6


@dataclass
class Stage:
    name: str
    ok: bool
    detail: str
    cause: str = ""


@dataclass
class Report:
    stages: list[Stage] = field(default_factory=list)
    credits: int | None = None

    @property
    def live(self) -> bool:
        return bool(self.stages) and all(s.ok for s in self.stages)

    @property
    def failed(self) -> Stage | None:
        return next((s for s in self.stages if not s.ok), None)

    def as_dict(self) -> dict[str, Any]:
        failed = self.failed
        return {"live": self.live, "credits": self.credits,
                "failed_stage": failed.name if failed else None,
                "likely_cause": failed.cause if failed else None,
                "stages": [asdict(s) for s in self.stages]}


class Doctor:
    def __init__(self, client: UpstreamClient, model: str) -> None:
        self.client = client
        self.model = model

    def check(self, text: str) -> Report:
        report = Report()
        cred = self._stage(report, "parse token", lambda: self._parse(text))
        if cred is None:
            return report
        state: dict[str, Any] = {}
        steps: list[tuple[str, Callable[[], str]]] = [
            ("user info", lambda: self._user_info(cred)),
            ("device registration", lambda: self._register(cred)),
            ("credits", lambda: self._credits(cred, report)),
            ("send message", lambda: self._send(cred, state)),
            ("poll to finished", lambda: self._poll(cred, state)),
            ("delete chat", lambda: self._delete(cred, state)),
        ]
        for name, step in steps:
            if self._stage(report, name, step, cred) is None:
                if "chat_id" in state and name != "delete chat":
                    self._cleanup(cred, state["chat_id"])
                break
        return report

    def _stage(self, report: Report, name: str, step: Callable[[], Any],
               cred: Credential | None = None) -> Any:
        try:
            result = step()
        except (GatewayError, StageFailed) as error:
            message = error.message if isinstance(error, GatewayError) else str(error)
            report.stages.append(Stage(name, False, message, likely_cause(name, error, cred)))
            return None
        detail = result[1] if isinstance(result, tuple) else str(result)
        report.stages.append(Stage(name, True, detail))
        return result[0] if isinstance(result, tuple) else result

    # -- stages ----------------------------------------------------------------------
    @staticmethod
    def _parse(text: str) -> tuple[Credential, str]:
        cred = parse_one(text.strip())
        if cred.expired():
            raise ExpiredCredentials()
        expiry = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(cred.expires_at)) if cred.expires_at else "none"
        source = "given" if cred.explicit_user_id else "from the JWT"
        return cred, f"realUserID {mask(cred.real_user_id)} ({source}), expires {expiry}"

    def _user_info(self, cred: Credential) -> str:
        info = self.client.call(cred, "GET", C.PATH_USER_INFO, register=False)
        user = info.get("userInfo") if isinstance(info.get("userInfo"), dict) else {}
        real = str(user.get("realUserID") or "")
        if real and real != cred.real_user_id:
            raise StageFailed(f"the account's realUserID is {mask(real)}, not {mask(cred.real_user_id)}")
        return f"user {user.get('name') or '?'} ({mask(real or cred.real_user_id)})"

    def _register(self, cred: Credential) -> str:
        data = self.client.register_device(cred)
        return f"device {data.get('deviceIDStr')}"

    def _credits(self, cred: Credential, report: Report) -> str:
        data = self.client.membership(cred)
        credits = data.get("total_remains_credit")
        report.credits = credits if isinstance(credits, int) else None
        if report.credits is not None and report.credits <= 0:
            raise StageFailed("no credits left")
        return f"{data.get('plan_name') or 'plan ?'}: {credits} credits"

    def _send(self, cred: Credential, state: dict[str, Any]) -> str:
        answer = self.client.send_message(cred, send_body(PING_PROMPT, self.model))
        state["chat_id"], state["msg_id"] = sent_ids(answer)
        return f"chat {state['chat_id']}"

    def _poll(self, cred: Credential, state: dict[str, Any]) -> str:
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while time.monotonic() < deadline:
            snapshot = read_snapshot(self.client.chat_detail(cred, state["chat_id"]), state["msg_id"])
            if snapshot.finished:
                return f"answered {snapshot.text[:60]!r}"
            time.sleep(POLL_SECONDS)
        raise UpstreamTimeout("the answer did not finish in time")

    def _delete(self, cred: Credential, state: dict[str, Any]) -> str:
        for attempt in range(DELETE_ATTEMPTS):
            try:
                self.client.delete_chat(cred, state["chat_id"])
                return "deleted"
            except AccountBusy:
                time.sleep(0.5 * 2**attempt)
        raise StageFailed("the chat stayed busy and could not be deleted")

    def _cleanup(self, cred: Credential, chat_id: int) -> None:
        for call in (self.client.stop_chat, self.client.delete_chat):
            try:
                call(cred, chat_id)
            except GatewayError:
                pass


class StageFailed(Exception):
    """A stage whose call succeeded but whose answer shows a problem."""


def likely_cause(stage: str, error: BaseException, cred: Credential | None) -> str:
    if isinstance(error, ExpiredCredentials):
        return "the token has expired: log in again and copy a fresh _token"
    if isinstance(error, AuthenticationFailed) and stage == "parse token":
        return "the credential is malformed: paste realUserID+_token (or the bare _token)"
    if isinstance(error, UpstreamRejectedSignature):
        return "signature mismatch: the web app's signing changed (try MINIMAX_SIGNATURE=jwt, or update)"
    if isinstance(error, UpstreamUnauthorized):
        if cred is not None and cred.explicit_user_id:
            return "wrong realUserID for this token, or the token was revoked (log out/in resets it)"
        return "the token is expired or revoked, or its user.id is not the realUserID (paste realUserID+_token)"
    if isinstance(error, QuotaExhausted) or "credits" in str(error):
        return "no credits: wait for the daily refill or use another account"
    if isinstance(error, AccountBusy):
        return "the account is busy with another generation (a browser tab?)"
    if isinstance(error, UpstreamUnavailable):
        return "the upstream could not be reached: check MINIMAX_BASE_URL and the network"
    if isinstance(error, UpstreamTimeout):
        return "the upstream is too slow or hung"
    if isinstance(error, UpstreamServerError):
        return "the upstream is failing with server errors: try again later"
    if isinstance(error, StageFailed) and "realUserID" in str(error):
        return "wrong realUserID: copy realUserID from Local Storage 'user_detail_agent'"
    return "the upstream answered something unexpected (the protocol may have changed)"


def render(report: Report) -> str:
    """The report as terminal lines."""
    lines = []
    for stage in report.stages:
        lines.append(f"{'✓' if stage.ok else '✗'} {stage.name}: {stage.detail}")
        if not stage.ok:
            lines.append(f"  likely cause: {stage.cause}")
    lines.append("LIVE: the credential works end to end." if report.live
                 else f"NOT LIVE: failed at '{report.failed.name if report.failed else '?'}'.")
    return "\n".join(lines)
