"""Scripts part of the simulator's world: what each generation will answer.

Role: `AnswerSpec` is one scripted answer as /_sim/script and /_sim/default give it
(`parse_answer` validates the control API's dict, typos raise), `answer_text` is the
text it makes of a prompt, and `ScriptQueue` decides which spec the next turn of an
account plays: that account's queue first, then the global queue, then the default.
Like every part, `ScriptQueue` holds no lock: `SimState` uses it under its own.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any

DEFAULT_CPS: float = 400.0
DEFAULT_FIRST_DELAY: float = 0.2
DEFAULT_TOOL_NAME: str = "web_search"
DEFAULT_TOOL_SECONDS: float = 0.3
DEFAULT_MID_FAULT_SECONDS: float = 5.0
# error_mid: once text shows, the turn ends with quota exhausted (2056): a matrix poll
# answers that code, a session stream sends an error frame then [DONE].
GENERATION_FAULTS: tuple[str, ...] = ("drop_mid", "hang_mid", "error_mid")
ANSWER_FIELDS: frozenset[str] = frozenset({
    "text", "length", "thinking", "cps", "thinking_cps", "first_delay", "pauses",
    "tool_steps", "fault", "fault_seconds", "seconds", "echo", "tool_calls",
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
class ToolCall:
    """A tool call the code surface answers as a tool_use block (the web surfaces ignore it)."""

    name: str
    input_json: str  # the input object as JSON text, so the spec stays immutable

    @property
    def input(self) -> dict[str, Any]:
        return dict(json.loads(self.input_json))


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
    tool_calls: tuple[ToolCall, ...] = ()


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


def _parse_tool_call(raw: Any) -> ToolCall:
    if (not isinstance(raw, dict) or set(raw) - {"name", "input"}
            or not isinstance(raw.get("name"), str) or not raw["name"]
            or not isinstance(raw.get("input", {}), dict)):
        raise ValueError("each tool call is {\"name\": str, \"input\": {...}}")
    return ToolCall(raw["name"], json.dumps(raw.get("input", {}), ensure_ascii=False))


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
    for key in ("pauses", "tool_steps", "tool_calls"):
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
        tool_calls=tuple(_parse_tool_call(c) for c in raw.get("tool_calls", [])),
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


# --- The queue -------------------------------------------------------------------------------

class ScriptQueue:
    """Per-account queues, the global queue and the default answer of one world."""

    def __init__(self) -> None:
        self._global: deque[AnswerSpec] = deque()
        self._by_account: dict[str, deque[AnswerSpec]] = {}
        self._default = AnswerSpec()

    def add(self, answers: list[AnswerSpec], account: str | None) -> int:
        """Queue answers for one account (or for any); returns that queue's length."""
        queue = self._global if account is None else self._by_account.setdefault(account, deque())
        queue.extend(answers)
        return len(queue)

    def set_default(self, answer: AnswerSpec) -> None:
        self._default = answer

    def next_for(self, account: str) -> AnswerSpec:
        queue = self._by_account.get(account)
        if queue:
            return queue.popleft()
        if self._global:
            return self._global.popleft()
        return self._default
