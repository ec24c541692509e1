"""In-memory world of the upstream simulator: accounts, chats, generations, faults, counters.

Role: everything the simulator remembers between requests. Generations have no background
worker: each one is a precomputed timeline, and every poll derives what is visible "now"
from the elapsed time, so thousands of concurrent chats cost nothing while idle.

All public methods of `SimState` take one lock; none of them sleeps or does I/O while
holding it (hangs happen in the web layer), so it is safe under threads and gevent alike.
Files (STS grants, OSS objects, file ids) live in a `FileStore` and speech (TTS jobs,
media, the ASR queue) in a `SpeechDesk`; both are parts of this world, used under the
same lock, and cleared by `reset` like the rest.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from tests.simulator.files import FileStore, StoredObject, StsGrant
from tests.simulator.media import AudioInfo
from tests.simulator.oss import MAX_OBJECT_BYTES, OssError, OssPut
from tests.simulator.protocol import (
    CHAT_NOT_FOUND_CODE, CHAT_NOT_FOUND_MSG, CHAT_RUNNING_CODE, CHAT_RUNNING_MSG,
    CHAT_STATUS_FINISHED, CHAT_STATUS_GENERATING, ENDPOINT_NAMES, MSG_GENERATING_MSG,
    MSG_NOT_FOUND_CODE, MSG_NOT_FOUND_MSG, MSG_TYPE_ASSISTANT, MSG_TYPE_USER,
    NOT_AN_ANSWER_MSG, NOT_ENOUGH_CREDITS_CODE, NOT_ENOUGH_CREDITS_MSG, QUOTA_EXHAUSTED_CODE,
    QUOTA_EXHAUSTED_MSG, SIGNATURE_MODES, VOICE_MISMATCH_CODE, VOICE_MISMATCH_MSG, Attachment,
    ListChatBody, PolicyCallbackBody, Refusal, SendMsgBody, mint_jwt, decode_jwt,
)
from tests.simulator.speech import SpeechDesk, TtsJob, TtsPlan

# --- Settings ------------------------------------------------------------------------------

DEFAULT_CREDITS: int = 1000
DEFAULT_EXP_SECONDS: int = 30 * 86400
DEFAULT_MAX_SKEW_SECONDS: float = 300.0


@dataclass
class SimSettings:
    """Start-up configuration; `reset` returns the mutable parts to these values."""

    signature_mode: str = "bundle"  # "bundle", "jwt" or "either"
    max_skew_seconds: float = DEFAULT_MAX_SKEW_SECONDS  # for x-timestamp and unix
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    seed: int | None = None  # makes ids reproducible
    default_credits: int = DEFAULT_CREDITS
    default_exp_seconds: int = DEFAULT_EXP_SECONDS
    poll_times_cap: int = 2000
    log_cap: int = 100_000
    max_upload_bytes: int = MAX_OBJECT_BYTES  # tests lower it to exercise the 413
    clock: Callable[[], float] = time.time  # tests may inject a fake clock

    def __post_init__(self) -> None:
        if self.signature_mode not in SIGNATURE_MODES:
            raise ValueError(f"signature_mode must be one of {SIGNATURE_MODES}")


# --- Answer scripts --------------------------------------------------------------------------

DEFAULT_CPS: float = 400.0
DEFAULT_FIRST_DELAY: float = 0.2
DEFAULT_TOOL_NAME: str = "web_search"
DEFAULT_TOOL_SECONDS: float = 0.3
DEFAULT_MID_FAULT_SECONDS: float = 5.0
GENERATION_FAULTS: tuple[str, ...] = ("drop_mid", "hang_mid")
ANSWER_FIELDS: frozenset[str] = frozenset({
    "text", "length", "thinking", "cps", "thinking_cps", "first_delay", "pauses",
    "tool_steps", "fault", "fault_seconds", "seconds", "echo",
})
# "quoted": the answer is the prompt's text between the last <<< and the next >>> after it
# (the last, not the first: an instruction before the text may name the markers).
ECHO_MODES: tuple[str, ...] = ("quoted",)
QUOTE_OPEN: str = "<<<"
QUOTE_CLOSE: str = ">>>"
# Non-ASCII on purpose: an encoding bug anywhere in the chain garbles these visibly.
FILLER_WORDS: tuple[str, ...] = (
    "alpha", "beta", "gamma", "delta", "naïve", "café", "中文", "—", "epsilon", "zeta",
    "eta", "theta", "iota", "kappa", "lambda", "über", "mu",
)


@dataclass(frozen=True)
class Pause:
    at: int  # text character offset where the stream stalls
    seconds: float


@dataclass(frozen=True)
class ToolStep:
    name: str
    content: str
    seconds: float


@dataclass(frozen=True)
class AnswerSpec:
    """One scripted answer, validated; unset fields take the defaults above."""

    text: str | None = None
    length: int | None = None
    thinking: str = ""
    cps: float = DEFAULT_CPS
    thinking_cps: float | None = None
    first_delay: float = DEFAULT_FIRST_DELAY
    pauses: tuple[Pause, ...] = ()
    tool_steps: tuple[ToolStep, ...] = ()
    fault: str | None = None
    fault_seconds: float = DEFAULT_MID_FAULT_SECONDS
    echo: str | None = None


def _number(raw: dict[str, Any], key: str, default: float | None, positive: bool) -> float | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if type(value) not in (int, float):
        raise ValueError(f"{key} must be a number")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{key} must be {'> 0' if positive else '>= 0'}")
    return float(value)


def _parse_pause(raw: Any) -> Pause:
    if not isinstance(raw, dict) or type(raw.get("at")) is not int or raw["at"] < 0:
        raise ValueError("each pause needs an integer 'at' >= 0")
    return Pause(raw["at"], _number(raw, "seconds", None, positive=False) or 0.0)


def _parse_tool_step(raw: Any) -> ToolStep:
    if not isinstance(raw, dict):
        raise ValueError("each tool step must be an object")
    name, content = raw.get("name", DEFAULT_TOOL_NAME), raw.get("content", "")
    if not isinstance(name, str) or not isinstance(content, str):
        raise ValueError("tool step name and content must be strings")
    seconds = _number(raw, "seconds", DEFAULT_TOOL_SECONDS, positive=False)
    return ToolStep(name, content, seconds if seconds is not None else DEFAULT_TOOL_SECONDS)


def _parse_fault(raw: dict[str, Any]) -> tuple[str | None, float]:
    fault = raw.get("fault")
    if fault is not None and fault not in GENERATION_FAULTS:
        raise ValueError(f"fault must be one of {GENERATION_FAULTS}")
    # "seconds" is accepted as an alias because the brief words hang_mid that way.
    key = "fault_seconds" if "fault_seconds" in raw else "seconds"
    seconds = _number(raw, key, DEFAULT_MID_FAULT_SECONDS, positive=False)
    return fault, seconds if seconds is not None else DEFAULT_MID_FAULT_SECONDS


def parse_answer(raw: Any) -> AnswerSpec:
    """Validate a control-API answer dict; typos raise instead of being ignored."""
    if not isinstance(raw, dict):
        raise ValueError("an answer must be an object")
    unknown = set(raw) - ANSWER_FIELDS
    if unknown:
        raise ValueError(f"unknown answer fields: {sorted(unknown)}")
    for key in ("text", "thinking"):
        if key in raw and not isinstance(raw[key], str):
            raise ValueError(f"{key} must be a string")
    length = raw.get("length")
    if length is not None and (type(length) is not int or length < 0):
        raise ValueError("length must be an integer >= 0")
    for key in ("pauses", "tool_steps"):
        if not isinstance(raw.get(key, []), list):
            raise ValueError(f"{key} must be a list")
    fault, fault_seconds = _parse_fault(raw)
    echo = _parse_echo(raw)
    return AnswerSpec(
        text=raw.get("text"), length=length, thinking=raw.get("thinking", ""),
        cps=_number(raw, "cps", DEFAULT_CPS, positive=True) or DEFAULT_CPS,
        thinking_cps=_number(raw, "thinking_cps", None, positive=True),
        first_delay=_number(raw, "first_delay", DEFAULT_FIRST_DELAY, positive=False) or 0.0,
        pauses=tuple(_parse_pause(p) for p in raw.get("pauses", [])),
        tool_steps=tuple(_parse_tool_step(s) for s in raw.get("tool_steps", [])),
        fault=fault, fault_seconds=fault_seconds, echo=echo,
    )


def _parse_echo(raw: dict[str, Any]) -> str | None:
    echo = raw.get("echo")
    if echo is None:
        return None
    if echo not in ECHO_MODES:
        raise ValueError(f"echo must be one of {ECHO_MODES}")
    if "text" in raw or "length" in raw:
        raise ValueError("echo excludes text and length: the prompt decides the answer")
    return echo


def quoted_text(prompt: str) -> str:
    """The prompt between the last <<< and the next >>>, verbatim; else the whole prompt."""
    start = prompt.rfind(QUOTE_OPEN)
    end = prompt.find(QUOTE_CLOSE, start + len(QUOTE_OPEN)) if start >= 0 else -1
    if end < 0:
        return prompt
    return prompt[start + len(QUOTE_OPEN):end]


def answer_text(spec: AnswerSpec, prompt: str) -> str:
    if spec.echo is not None:
        return quoted_text(prompt)
    return spec.text if spec.text is not None else default_answer_text(prompt, spec.length)


def default_answer_text(prompt: str, length: int | None) -> str:
    """Deterministic text that echoes the prompt's last line, so tests can match it."""
    lines = [line.strip() for line in prompt.splitlines() if line.strip()]
    tail = lines[-1][-60:] if lines else ""
    base = f"Simulated answer to: {tail} — 中文 ok."
    if length is None:
        return base
    parts, size, index = [base], len(base), 0
    while size < length:
        word = " " + FILLER_WORDS[index % len(FILLER_WORDS)]
        parts.append(word)
        size += len(word)
        index += 1
    return "".join(parts)[:length]


# --- Timeline ------------------------------------------------------------------------------

# Epoch floats near 1.8e9 carry ~0.25 µs of rounding per operation; without this slack
# a character due exactly "now" could stay hidden until the next poll.
_TIME_EPSILON: float = 1e-6


def _chars(elapsed: float, cps: float) -> int:
    return max(0, int((elapsed + _TIME_EPSILON) * cps))

@dataclass(frozen=True)
class ToolWindow:
    step: ToolStep
    msg_id: int
    begin: float
    end: float


class Timeline:
    """When each piece of one answer becomes visible: first_delay, thinking, tools, text."""

    def __init__(self, spec: AnswerSpec, text: str, t_send: float, tool_msg_ids: list[int]) -> None:
        self.text = text
        self.thinking = spec.thinking
        self.cps = spec.cps
        self.thinking_cps = spec.thinking_cps or spec.cps
        self.t_send = t_send
        self.t_start = t_send + spec.first_delay
        self.t_think_end = self.t_start + len(self.thinking) / self.thinking_cps
        self.tools = self._tool_windows(spec.tool_steps, tool_msg_ids)
        self.t_text_start = self.tools[-1].end if self.tools else self.t_think_end
        # A pause past the end is clamped: it then holds status 1 with the full text shown.
        self.pauses = tuple(sorted((min(p.at, len(text)), p.seconds) for p in spec.pauses))
        self.t_finish = (self.t_text_start + len(text) / self.cps
                         + sum(seconds for _, seconds in self.pauses))
        self.t_answer_appears = self.t_start if self.thinking else self.t_text_start

    def _tool_windows(self, steps: tuple[ToolStep, ...], msg_ids: list[int]) -> tuple[ToolWindow, ...]:
        windows, cursor = [], self.t_think_end
        for step, msg_id in zip(steps, msg_ids):
            windows.append(ToolWindow(step, msg_id, cursor, cursor + step.seconds))
            cursor += step.seconds
        return tuple(windows)

    def thinking_at(self, t: float) -> str:
        if t >= self.t_think_end:
            return self.thinking
        return self.thinking[:_chars(t - self.t_start, self.thinking_cps)]

    def text_chars_at(self, t: float) -> int:
        # Exact end comparison: float rounding must never leave the last char missing.
        if t >= self.t_finish:
            return len(self.text)
        elapsed = t - self.t_text_start
        if elapsed <= 0:
            return 0
        paused = 0.0
        for at, seconds in self.pauses:
            reach = at / self.cps + paused
            if elapsed < reach:
                break
            if elapsed < reach + seconds:
                return at
            paused += seconds
        return min(len(self.text), _chars(elapsed - paused, self.cps))

    def text_at(self, t: float) -> str:
        return self.text[:self.text_chars_at(t)]

    def first_content_time(self) -> float | None:
        """When the first thinking or answer character becomes visible."""
        if self.thinking:
            return min(self.t_think_end, self.t_start + 1 / self.thinking_cps)
        if self.text:
            stalls = sum(seconds for at, seconds in self.pauses if at < 1)
            return self.t_text_start + 1 / self.cps + stalls
        return None


# --- Chats and generations -------------------------------------------------------------------

def _ms(t: float) -> int:
    return int(t * 1000)


@dataclass(eq=False)
class Chat:
    chat_id: int
    owner: str
    title: str
    created: float
    history: list[dict[str, Any]] = field(default_factory=list)  # frozen earlier turns
    current: Generation | None = None
    turns: int = 0
    deleted: bool = False


@dataclass(eq=False)
class Generation:
    chat: Chat
    account: str
    prompt: str
    attachments: tuple[Attachment, ...]
    attachment_details: tuple[dict[str, Any], ...]  # FileStore.attachment_details
    web_search: bool
    model: str | None
    chat_type: int
    turn: int
    user_msg_id: int
    answer_msg_id: int
    timeline: Timeline
    fault: str | None
    fault_seconds: float
    fault_fired: bool = False
    stopped_at: float | None = None
    polls: int = 0
    poll_times: list[float] = field(default_factory=list)

    def effective_time(self, now: float) -> float:
        return now if self.stopped_at is None else min(now, self.stopped_at)

    def generating(self, now: float) -> bool:
        return self.stopped_at is None and now < self.timeline.t_finish

    def finish_time(self, now: float) -> float | None:
        if self.stopped_at is not None:
            return self.stopped_at
        return self.timeline.t_finish if now >= self.timeline.t_finish else None

    def messages(self, now: float) -> list[dict[str, Any]]:
        """This turn's messages as visible at `now`, in order of appearance."""
        t, eff = self.timeline, self.effective_time(now)
        items: list[tuple[float, int, dict[str, Any]]] = [(t.t_send, 0, self._user_message())]
        for window in t.tools:
            if eff >= window.begin:
                items.append((window.begin, 1, self._tool_message(window, eff)))
        if eff >= t.t_answer_appears:
            items.append((t.t_answer_appears, 2, self._answer_message(eff)))
        items.sort(key=lambda item: (item[0], item[1]))
        return [message for _, _, message in items]

    def _user_message(self) -> dict[str, Any]:
        return {"msg_id": self.user_msg_id, "msg_type": MSG_TYPE_USER, "msg_content": self.prompt,
                "timestamp": _ms(self.timeline.t_send), "extra_info": {}}

    def _tool_message(self, window: ToolWindow, eff: float) -> dict[str, Any]:
        # A step shows its result only once complete, like a search that has returned.
        content = window.step.content if eff >= window.end else ""
        return {"msg_id": window.msg_id, "msg_type": MSG_TYPE_ASSISTANT, "msg_content": content,
                "timestamp": _ms(window.begin), "extra_info": {"thinking_content": ""},
                "tool_call": {"tool_call_name": window.step.name}}

    def _answer_message(self, eff: float) -> dict[str, Any]:
        t = self.timeline
        return {"msg_id": self.answer_msg_id, "msg_type": MSG_TYPE_ASSISTANT,
                "msg_content": t.text_at(eff), "timestamp": _ms(t.t_answer_appears),
                "extra_info": {"thinking_content": t.thinking_at(eff)}}

    def msg_ids(self) -> set[int]:
        return {self.user_msg_id, self.answer_msg_id,
                *(window.msg_id for window in self.timeline.tools)}

    def record_poll(self, now: float, cap: int) -> None:
        self.polls += 1
        if len(self.poll_times) < cap:
            self.poll_times.append(now)

    def log_entry(self, now: float) -> dict[str, Any]:
        t, eff = self.timeline, self.effective_time(now)
        first = t.first_content_time()
        status = ("stopped" if self.stopped_at is not None
                  else "generating" if self.generating(now) else "finished")
        return {
            "chat_id": self.chat.chat_id, "account": self.account, "prompt": self.prompt,
            "attachments": [a.as_dict() for a in self.attachments],
            "attachment_details": list(self.attachment_details),
            "web_search": self.web_search, "model": self.model, "chat_type": self.chat_type,
            "turn": self.turn, "msg_id": self.user_msg_id, "answer_msg_id": self.answer_msg_id,
            "answer": t.text, "thinking": t.thinking, "delivered": t.text_at(eff),
            "t_send": t.t_send,
            "t_first_content": first if first is not None and first <= eff else None,
            "t_finish": self.finish_time(now), "polls": self.polls,
            "poll_times": list(self.poll_times), "stopped": self.stopped_at is not None,
            "deleted": self.chat.deleted, "status": status,
        }


# --- Accounts and faults ---------------------------------------------------------------------

ACCOUNT_FLAGS: tuple[str, ...] = ("credits", "busy", "expired", "quota_exhausted")


@dataclass(eq=False)
class Account:
    real_user_id: str
    jwt: str
    jwt_exp: float
    jwt_user_id: str
    jwt_device_id: str
    name: str
    credits: int
    busy: bool
    expired: bool
    quota_exhausted: bool
    initial_flags: dict[str, Any]
    devices: dict[str, str] = field(default_factory=dict)  # uuid -> deviceIDStr
    robot_voice: str | None = None  # set by update_robot_custom_config
    script: deque[AnswerSpec] = field(default_factory=deque)
    chats: dict[int, Chat] = field(default_factory=dict)
    # One generation at a time is enforced, so only the latest one can still be running.
    last_generation: Generation | None = None

    def public(self) -> dict[str, Any]:
        return {"real_user_id": self.real_user_id, "jwt": self.jwt,
                "credential": f"{self.real_user_id}+{self.jwt}",
                "device_id": self.jwt_device_id, "jwt_user_id": self.jwt_user_id,
                "name": self.name, "credits": self.credits, "busy": self.busy,
                "expired": self.expired, "quota_exhausted": self.quota_exhausted,
                "robot_voice": self.robot_voice}


TRANSPORT_FAULTS: tuple[str, ...] = ("http_500", "http_502", "http_503", "hang", "drop", "drop_after")
SEMANTIC_FAULTS: tuple[str, ...] = ("expired", "no_credits", "quota", "busy")
FAULT_KINDS: tuple[str, ...] = TRANSPORT_FAULTS + SEMANTIC_FAULTS
# Unsigned endpoints that take faults too: the OSS PUT and the TTS media download.
UNSIGNED_FAULT_ENDPOINTS: tuple[str, ...] = ("oss_put", "media")
FAULT_ENDPOINTS: tuple[str, ...] = ENDPOINT_NAMES + UNSIGNED_FAULT_ENDPOINTS + ("*",)
DEFAULT_HANG_SECONDS: float = 60.0


@dataclass
class Fault:
    endpoint: str
    kind: str
    remaining: int
    seconds: float | None

    def public(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "kind": self.kind, "count": self.remaining,
                "seconds": self.seconds}


# --- The state -----------------------------------------------------------------------------------

REQUEST_PATH_KEYS_CAP: int = 256
COUNTER_NAMES: tuple[str, ...] = (
    "double_generation_attempts", "busy_rejections", "sends", "device_registrations",
    "polls", "stops", "deletes", "upload_policies", "voice_updates",
)
T = TypeVar("T")


class SimState:
    """The simulator's whole memory, guarded by one lock."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.clock = settings.clock
        self._lock = threading.Lock()
        self._rng = random.Random(settings.seed)
        self._accounts: dict[str, Account] = {}
        self._tokens: dict[str, str] = {}
        # Ids never restart, even across resets: a stale id from an earlier test must
        # be "not found", never silently match a new chat.
        self._next_chat_id = self._rng.randint(3 * 10**14, 4 * 10**14)
        self._next_msg_id = self._rng.randint(10**15, 2 * 10**15)
        self._clear_world()

    # -- lifecycle ----------------------------------------------------------------------

    def _clear_world(self) -> None:
        self.signature_mode = self.settings.signature_mode
        self.max_skew_seconds = self.settings.max_skew_seconds
        self._chats: dict[int, Chat] = {}
        self._global_script: deque[AnswerSpec] = deque()
        self._default_answer = AnswerSpec()
        self._faults: list[Fault] = []
        self._log: deque[Generation] = deque(maxlen=self.settings.log_cap)
        self._requests: dict[str, int] = {}
        self._rejections: dict[str, int] = {}
        self._warnings: dict[str, int] = {}
        self._faults_applied: dict[str, int] = {}
        self._counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self._files = FileStore(self._rng, self.settings.max_upload_bytes)
        self._speech = SpeechDesk()

    def reset(self, drop_accounts: bool = False) -> None:
        """Forget chats, scripts, faults, counters and config; keep or drop accounts."""
        with self._lock:
            self._clear_world()
            if drop_accounts:
                self._accounts.clear()
                self._tokens.clear()
            for account in self._accounts.values():
                self._restore_account(account)

    @staticmethod
    def _restore_account(account: Account) -> None:
        for key, value in account.initial_flags.items():
            setattr(account, key, value)
        account.devices.clear()
        account.robot_voice = None
        account.script.clear()
        account.chats.clear()
        account.last_generation = None

    # -- ids --------------------------------------------------------------------------------

    def _new_user_id(self) -> str:
        # 18-19 digits, always above 2**53, so any float conversion corrupts it visibly.
        while True:
            candidate = str(self._rng.randint(2 * 10**17, 9 * 10**18))
            if candidate not in self._accounts:
                return candidate

    def _new_device_id(self) -> str:
        return str(self._rng.randint(10**17, 10**18 - 1))

    def _new_chat_id(self) -> int:
        self._next_chat_id += self._rng.randint(1, 97)
        return self._next_chat_id

    def _new_msg_id(self) -> int:
        self._next_msg_id += 1
        return self._next_msg_id

    # -- accounts -------------------------------------------------------------------------------

    def add_accounts(self, count: int, credits: int | None = None, expired: bool = False,
                     busy: bool = False, quota_exhausted: bool = False,
                     jwt_user_id_differs: bool = False,
                     exp_seconds: float | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [self._add_account(
                self.settings.default_credits if credits is None else credits, expired, busy,
                quota_exhausted, jwt_user_id_differs,
                self.settings.default_exp_seconds if exp_seconds is None else exp_seconds,
            ).public() for _ in range(count)]

    def _add_account(self, credits: int, expired: bool, busy: bool, quota_exhausted: bool,
                     jwt_user_id_differs: bool, exp_seconds: float) -> Account:
        now = self.clock()
        real_user_id = self._new_user_id()
        jwt_user_id = self._new_user_id() if jwt_user_id_differs else real_user_id
        device_id, name = self._new_device_id(), f"SimUser-{real_user_id[-4:]}"
        exp = int(now + exp_seconds)
        token = mint_jwt(self.settings.jwt_secret, {
            "exp": exp, "iat": int(now),
            "user": {"id": jwt_user_id, "deviceID": device_id, "name": name},
        })
        flags = {"credits": credits, "busy": busy, "expired": expired,
                 "quota_exhausted": quota_exhausted}
        account = Account(real_user_id, token, exp, jwt_user_id, device_id, name,
                          initial_flags=dict(flags), **flags)
        self._accounts[real_user_id] = account
        self._tokens[token] = real_user_id
        return account

    def patch_account(self, real_user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            account = self._accounts.get(real_user_id)
            if account is None:
                raise KeyError(real_user_id)
            for key, value in changes.items():
                setattr(account, key, value)
            return account.public()

    def list_accounts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [account.public() for account in self._accounts.values()]

    def has_account(self, real_user_id: str) -> bool:
        with self._lock:
            return real_user_id in self._accounts

    def authenticate(self, token: str, now: float) -> tuple[Account | None, str]:
        """The token's account, or None and the rejection reason."""
        with self._lock:
            real_user_id = self._tokens.get(token)
            account = self._accounts.get(real_user_id) if real_user_id else None
            if account is None:
                forged = decode_jwt(self.settings.jwt_secret, token) is None
                return None, "bad_token_signature" if forged else "unknown_token"
            if account.expired or account.jwt_exp <= now:
                return None, "expired_token"
            return account, ""

    # -- scripts, faults, config ------------------------------------------------------------------

    def add_script(self, answers: list[AnswerSpec], account: str | None) -> int:
        with self._lock:
            queue = self._global_script if account is None else self._accounts[account].script
            queue.extend(answers)
            return len(queue)

    def set_default(self, answer: AnswerSpec) -> None:
        with self._lock:
            self._default_answer = answer

    def add_fault(self, endpoint: str, kind: str, count: int, seconds: float | None) -> int:
        with self._lock:
            self._faults.append(Fault(endpoint, kind, count, seconds))
            return sum(f.remaining for f in self._faults)

    def pending_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.public() for f in self._faults]

    def take_fault(self, endpoint: str) -> Fault | None:
        """Consume one use of the oldest fault aimed at this endpoint (or at all)."""
        with self._lock:
            for fault in self._faults:
                if fault.endpoint in (endpoint, "*"):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    self._bump(self._faults_applied, f"{endpoint}:{fault.kind}")
                    return Fault(fault.endpoint, fault.kind, 1, fault.seconds)
            return None

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            mode = changes.get("signature_mode", self.signature_mode)
            if mode not in SIGNATURE_MODES:
                raise ValueError(f"signature_mode must be one of {SIGNATURE_MODES}")
            skew = changes.get("max_skew_seconds", self.max_skew_seconds)
            if type(skew) not in (int, float) or skew <= 0:
                raise ValueError("max_skew_seconds must be a number > 0")
            self.signature_mode, self.max_skew_seconds = mode, float(skew)
            return self._config()

    def _config(self) -> dict[str, Any]:
        return {"signature_mode": self.signature_mode, "max_skew_seconds": self.max_skew_seconds}

    # -- counters ---------------------------------------------------------------------------------

    @staticmethod
    def _bump(counter: dict[str, int], key: str) -> None:
        counter[key] = counter.get(key, 0) + 1

    def count_request(self, path: str) -> None:
        with self._lock:
            if path not in self._requests and len(self._requests) >= REQUEST_PATH_KEYS_CAP:
                path = "<other>"
            self._bump(self._requests, path)

    def reject(self, reason: str) -> None:
        with self._lock:
            self._bump(self._rejections, reason)

    def warn(self, reason: str) -> None:
        with self._lock:
            self._bump(self._warnings, reason)

    def _refuse(self, code: int, msg: str, reason: str) -> Refusal:
        self._bump(self._rejections, reason)
        return Refusal(code, msg, reason)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            now = self.clock()
            generating = sum(1 for a in self._accounts.values()
                             if a.last_generation is not None and a.last_generation.generating(now))
            return {"requests": dict(self._requests), "rejections": dict(self._rejections),
                    "warnings": dict(self._warnings), "faults_applied": dict(self._faults_applied),
                    "chats_alive": len(self._chats), "chats_generating": generating,
                    "accounts": len(self._accounts), "generations": len(self._log),
                    **self._counters, **self._files.counters(), **self._speech.counters,
                    "asr_pending": self._speech.pending_transcripts(),
                    "config": self._config()}

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            now = self.clock()
            return [generation.log_entry(now) for generation in self._log]

    # -- protocol operations ------------------------------------------------------------------------

    def register_device(self, real_user_id: str, device_uuid: str) -> str:
        with self._lock:
            self._counters["device_registrations"] += 1
            devices = self._accounts[real_user_id].devices
            if device_uuid not in devices:
                devices[device_uuid] = self._new_device_id()
            return devices[device_uuid]

    def device_id_plausible(self, real_user_id: str, device_id: str) -> bool:
        """False once the account registered devices and this id is none of them (nor the JWT's)."""
        with self._lock:
            account = self._accounts[real_user_id]
            return (not account.devices or device_id == account.jwt_device_id
                    or device_id in account.devices.values())

    def account_view(self, real_user_id: str) -> dict[str, Any]:
        with self._lock:
            return self._accounts[real_user_id].public()

    def send(self, real_user_id: str, body: SendMsgBody, now: float) -> tuple[int, int]:
        """Start a generation; returns (chat_id, user msg_id) or raises Refusal."""
        with self._lock:
            account = self._accounts[real_user_id]
            chat = self._owned_chat(account, body.chat_id) if body.chat_id is not None else None
            details = self._counted(self._files.attachment_details, real_user_id,
                                    body.attachments)
            if self._files.image_sent_as_file(body.attachments):
                self._bump(self._warnings, "image_sent_as_file")
            self._check_can_send(account, now)
            account.credits -= 1
            self._counters["sends"] += 1
            if chat is None:
                chat = self._new_chat(account, body.text, now)
            else:
                # The finished turn is frozen so later polls replay it unchanged.
                chat.history.extend(chat.current.messages(now))
            generation = self._start_generation(account, chat, body, details, now)
            return chat.chat_id, generation.user_msg_id

    def _check_can_send(self, account: Account, now: float) -> None:
        running = account.last_generation
        if running is not None and running.generating(now):
            self._counters["double_generation_attempts"] += 1
            raise self._refuse(CHAT_RUNNING_CODE, CHAT_RUNNING_MSG, "chat_running")
        if account.busy:
            self._counters["busy_rejections"] += 1
            raise self._refuse(CHAT_RUNNING_CODE, CHAT_RUNNING_MSG, "account_busy")
        if account.quota_exhausted:
            raise self._refuse(QUOTA_EXHAUSTED_CODE, QUOTA_EXHAUSTED_MSG, "quota_exhausted")
        if account.credits <= 0:
            raise self._refuse(NOT_ENOUGH_CREDITS_CODE, NOT_ENOUGH_CREDITS_MSG, "no_credits")

    def _owned_chat(self, account: Account, chat_id: int) -> Chat:
        chat = account.chats.get(chat_id)
        if chat is None:
            raise self._refuse(CHAT_NOT_FOUND_CODE, CHAT_NOT_FOUND_MSG, "chat_not_found")
        return chat

    def _new_chat(self, account: Account, text: str, now: float) -> Chat:
        first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
        chat = Chat(self._new_chat_id(), account.real_user_id, first_line[:30] or "New chat", now)
        self._chats[chat.chat_id] = chat
        account.chats[chat.chat_id] = chat
        return chat

    def _next_answer(self, account: Account) -> AnswerSpec:
        if account.script:
            return account.script.popleft()
        if self._global_script:
            return self._global_script.popleft()
        return self._default_answer

    def _start_generation(self, account: Account, chat: Chat, body: SendMsgBody,
                          attachments: tuple[dict[str, Any], ...], now: float) -> Generation:
        spec = self._next_answer(account)
        text = answer_text(spec, body.text)
        user_msg_id = self._new_msg_id()
        # Ids follow order of appearance: with thinking, the answer message comes first.
        answer_first = bool(spec.thinking)
        answer_msg_id = self._new_msg_id() if answer_first else 0
        tool_msg_ids = [self._new_msg_id() for _ in spec.tool_steps]
        answer_msg_id = answer_msg_id or self._new_msg_id()
        chat.turns += 1
        generation = Generation(
            chat=chat, account=account.real_user_id, prompt=body.text,
            attachments=body.attachments, attachment_details=attachments,
            web_search=body.web_search, model=body.model,
            chat_type=body.chat_type, turn=chat.turns, user_msg_id=user_msg_id,
            answer_msg_id=answer_msg_id, timeline=Timeline(spec, text, now, tool_msg_ids),
            fault=spec.fault, fault_seconds=spec.fault_seconds,
        )
        chat.current = generation
        account.last_generation = generation
        self._log.append(generation)
        return generation

    def take_poll_fault(self, real_user_id: str, chat_id: int, now: float) -> tuple[str, float] | None:
        """Fire a generation's mid-answer fault once, on the first poll that sees text."""
        with self._lock:
            chat = self._accounts[real_user_id].chats.get(chat_id)
            generation = chat.current if chat is not None else None
            if (generation is None or generation.fault is None or generation.fault_fired
                    or not generation.generating(now)
                    or generation.timeline.text_chars_at(now) == 0):
                return None
            generation.fault_fired = True
            self._bump(self._faults_applied, f"get_chat_detail:{generation.fault}")
            if generation.fault == "drop_mid":
                # The dropped poll reached the chat even though its answer never left.
                generation.record_poll(now, self.settings.poll_times_cap)
                self._counters["polls"] += 1
            return generation.fault, generation.fault_seconds

    def chat_detail(self, real_user_id: str, chat_id: int, now: float) -> dict[str, Any]:
        with self._lock:
            chat = self._owned_chat(self._accounts[real_user_id], chat_id)
            generation = chat.current
            generation.record_poll(now, self.settings.poll_times_cap)
            self._counters["polls"] += 1
            status = CHAT_STATUS_GENERATING if generation.generating(now) else CHAT_STATUS_FINISHED
            return {"chat": {"chat_id": chat.chat_id, "chat_status": status,
                             "chat_title": chat.title},
                    "messages": chat.history + generation.messages(now)}

    def stop(self, real_user_id: str, chat_id: int, now: float) -> None:
        with self._lock:
            generation = self._owned_chat(self._accounts[real_user_id], chat_id).current
            # Stopping a finished chat is a harmless no-op, as a late stop from a client is.
            if generation.generating(now):
                generation.stopped_at = now
                self._counters["stops"] += 1

    def delete(self, real_user_id: str, chat_id: int, now: float) -> None:
        with self._lock:
            account = self._accounts[real_user_id]
            chat = self._owned_chat(account, chat_id)
            if chat.current.generating(now):
                raise self._refuse(CHAT_RUNNING_CODE, CHAT_RUNNING_MSG, "delete_running")
            chat.deleted = True
            del account.chats[chat_id]
            del self._chats[chat_id]
            self._counters["deletes"] += 1

    def list_chats(self, real_user_id: str, body: ListChatBody) -> dict[str, Any]:
        with self._lock:
            ids = sorted(self._accounts[real_user_id].chats, reverse=True)
            if body.next_page_index_id is not None:
                ids = [chat_id for chat_id in ids if chat_id < body.next_page_index_id]
            page = ids[:body.page_size]
            chats = self._accounts[real_user_id].chats
            return {"chats": [{"chat_id": chat_id, "chat_title": chats[chat_id].title,
                               "create_timestamp": _ms(chats[chat_id].created)}
                              for chat_id in page],
                    "has_more": len(ids) > len(page)}

    def _counted(self, func: Callable[..., T], *args: Any) -> T:
        """Run a FileStore or SpeechDesk step, counting a Refusal's reason as a rejection."""
        try:
            return func(*args)
        except Refusal as exc:
            self._bump(self._rejections, exc.reason)
            raise

    # -- files -------------------------------------------------------------------------------------

    def issue_policy(self, real_user_id: str, endpoint: str, now: float) -> dict[str, str]:
        with self._lock:
            self._counters["upload_policies"] += 1
            return self._files.issue(real_user_id, endpoint, now).policy()

    def authorize_put(self, put: OssPut, now: float) -> StsGrant:
        """The grant of a correctly signed PUT; raises (and counts) OssError otherwise."""
        with self._lock:
            try:
                return self._files.authorize_put(put, now)
            except OssError as exc:
                self._bump(self._rejections, exc.reason)
                raise

    def store_object(self, grant: StsGrant, put: OssPut, body: bytes, now: float) -> StoredObject:
        with self._lock:
            return self._files.store(grant, put, body, now)

    def register_file(self, real_user_id: str, body: PolicyCallbackBody) -> str:
        with self._lock:
            return self._counted(self._files.register, real_user_id, body)

    def file_listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._files.listing()

    # -- text to speech ----------------------------------------------------------------------------

    def set_robot_voice(self, real_user_id: str, voice: str) -> None:
        with self._lock:
            self._accounts[real_user_id].robot_voice = voice
            self._counters["voice_updates"] += 1

    def tts_lookup(self, real_user_id: str, msg_id: int, voice: str,
                   now: float) -> TtsJob | TtsPlan:
        """The job for this call, or the plan the caller must render first (first call)."""
        with self._lock:
            self._speech.counters["tts_calls"] += 1
            account = self._accounts[real_user_id]
            chat_id, text = self._counted(self._answer_text, account, msg_id, now)
            if account.robot_voice != voice:
                raise self._refuse(VOICE_MISMATCH_CODE, VOICE_MISMATCH_MSG, "tts_voice_mismatch")
            job = self._speech.job((real_user_id, msg_id, voice))
            return job if job is not None else TtsPlan(real_user_id, chat_id, msg_id, voice,
                                                       text, now)

    def _answer_text(self, account: Account, msg_id: int, now: float) -> tuple[int, str]:
        """(chat_id, full text) of a finished assistant answer of one of the account's chats."""
        for chat in account.chats.values():
            for message in chat.history:
                if message["msg_id"] == msg_id:
                    if message["msg_type"] != MSG_TYPE_ASSISTANT or "tool_call" in message:
                        raise Refusal(MSG_NOT_FOUND_CODE, NOT_AN_ANSWER_MSG, "tts_not_an_answer")
                    return chat.chat_id, message["msg_content"]
            generation = chat.current
            if generation is None or msg_id not in generation.msg_ids():
                continue
            if msg_id != generation.answer_msg_id:
                raise Refusal(MSG_NOT_FOUND_CODE, NOT_AN_ANSWER_MSG, "tts_not_an_answer")
            if generation.generating(now):
                raise Refusal(CHAT_RUNNING_CODE, MSG_GENERATING_MSG, "tts_msg_generating")
            return chat.chat_id, generation.timeline.text_at(generation.effective_time(now))
        raise Refusal(MSG_NOT_FOUND_CODE, MSG_NOT_FOUND_MSG, "tts_msg_not_found")

    def tts_register(self, plan: TtsPlan, rendered: list[tuple[str, float, bytes]]) -> TtsJob:
        with self._lock:
            return self._speech.add_job(plan, rendered)

    def tts_answer(self, job: TtsJob, now: float) -> tuple[int, list[str]]:
        with self._lock:
            return job.answer(now)

    def media(self, media_id: str) -> bytes | None:
        with self._lock:
            return self._speech.media(media_id)

    def tts_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._speech.tts_log()

    # -- speech recognition ------------------------------------------------------------------------

    def asr_enqueue(self, texts: list[str]) -> int:
        with self._lock:
            return self._speech.enqueue(texts)

    def asr_transcribe(self, real_user_id: str, info: AudioInfo, size: int,
                       now: float) -> tuple[int, str]:
        with self._lock:
            return self._speech.transcribe(real_user_id, info, size, now)

    def asr_reject(self, real_user_id: str, size: int, now: float, error: str) -> None:
        with self._lock:
            self._bump(self._rejections, "asr_not_mp3")
            self._speech.reject_audio(real_user_id, size, now, error)

    def asr_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._speech.asr_log()
