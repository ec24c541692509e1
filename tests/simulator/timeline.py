"""Timeline of one generation: when each piece of a scripted answer becomes visible.

Role: generations have no background worker. A `Timeline` is computed once, when the
turn starts, from its `AnswerSpec` (first delay, thinking, tool steps, text, pauses);
every poll and every stream tick then asks it what is visible at a time `t`, so idle
chats cost nothing. Pure: no clock, no lock, no state beyond the numbers it was given.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.simulator.scripts import AnswerSpec, ToolStep

# Epoch floats near 1.8e9 carry ~0.25 µs of rounding per operation; without this slack
# a character due exactly "now" could stay hidden until the next poll.
_TIME_EPSILON: float = 1e-6


def ms(t: float) -> int:
    """Epoch seconds as the integer milliseconds the wire carries."""
    return int(t * 1000)


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
        for step, msg_id in zip(steps, msg_ids, strict=True):
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
