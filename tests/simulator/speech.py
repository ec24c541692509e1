"""Speech part of the simulator's world: TTS jobs and their MP3 media, the ASR queue and log.

Role: what msg_tts, GET /_media/<id>.mp3 and phone_msg share. Like `FileStore`, a
`SpeechDesk` holds no lock of its own: `SimState` calls it only while holding its lock.
Nothing here encodes or decodes audio (that is slow and must happen outside the lock):
the web layer renders a `TtsPlan` into MP3 bytes and hands them back, and it passes
phone_msg's decoded `AudioInfo` in.

A TTS job is keyed by (account, msgID, voice). The first msg_tts call for a key plans
it; every call answers requestStatus 1 until TTS_READY_SECONDS after that first call,
then 2 with the segment URLs.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from tests.simulator.media import AudioInfo, split_for_tts, tts_seconds
from tests.simulator.protocol import (
    ASR_NOTHING_RECOGNISED_CODE,
    INVALID_AUDIO_CODE,
    OK_CODE,
    TTS_DONE,
    TTS_IN_PROGRESS,
)

TTS_READY_SECONDS: float = 0.3
MEDIA_CAP: int = 2000  # oldest MP3s are forgotten beyond this many (benchmarks run long)
LOG_CAP: int = 10_000
DEFAULT_TRANSCRIPT: str = "simulated transcript of {seconds:.1f} seconds"

TtsKey = tuple[str, int, str]


@dataclass(frozen=True)
class TtsPlan:
    """What the first msg_tts call for a key decided: the text to speak, and when."""

    account: str
    chat_id: int
    msg_id: int
    voice: str
    text: str
    first_call: float

    @property
    def key(self) -> TtsKey:
        return (self.account, self.msg_id, self.voice)

    def segments(self) -> list[tuple[str, float]]:
        """(text, seconds) per MP3 segment; the seconds add up to tts_seconds(text)."""
        total, parts = tts_seconds(self.text), split_for_tts(self.text)
        if len(parts) == 1:
            return [(self.text, total)]
        return [(part, total * len(part) / len(self.text)) for part in parts]


@dataclass(frozen=True)
class TtsSegment:
    media_id: str
    text: str
    seconds: float
    size: int

    def public(self) -> dict[str, Any]:
        return {"media_id": self.media_id, "path": media_path(self.media_id),
                "text": self.text, "seconds": self.seconds, "bytes": self.size}


def media_path(media_id: str) -> str:
    return f"/_media/{media_id}.mp3"


@dataclass(eq=False)
class TtsJob:
    plan: TtsPlan
    segments: tuple[TtsSegment, ...]
    calls: int = 0
    delivered: bool = False  # answered requestStatus 2 at least once

    @property
    def ready_at(self) -> float:
        return self.plan.first_call + TTS_READY_SECONDS

    def answer(self, now: float) -> tuple[int, list[str]]:
        """(requestStatus, media paths) for one more call at `now`."""
        self.calls += 1
        if now < self.ready_at:
            return TTS_IN_PROGRESS, []
        self.delivered = True
        return TTS_DONE, [media_path(segment.media_id) for segment in self.segments]

    def log_entry(self) -> dict[str, Any]:
        plan = self.plan
        seconds = sum(segment.seconds for segment in self.segments)
        return {"account": plan.account, "chat_id": plan.chat_id, "msg_id": plan.msg_id,
                "voice": plan.voice, "text": plan.text,
                "segments": [segment.public() for segment in self.segments],
                "duration": seconds, "total_duration": seconds,
                "t_first_call": plan.first_call, "ready_at": self.ready_at,
                "calls": self.calls, "delivered": self.delivered}


class SpeechDesk:
    """TTS jobs and media by id; the queue of scripted transcripts; the ASR log."""

    def __init__(self) -> None:
        self._jobs: dict[TtsKey, TtsJob] = {}
        self._media: dict[str, bytes] = {}
        self._asr_queue: deque[str] = deque()
        self._asr_log: deque[dict[str, Any]] = deque(maxlen=LOG_CAP)
        self.counters: dict[str, int] = {"tts_calls": 0, "media_downloads": 0, "asr_calls": 0}

    # -- text to speech ---------------------------------------------------------------------

    def job(self, key: TtsKey) -> TtsJob | None:
        return self._jobs.get(key)

    def add_job(self, plan: TtsPlan, rendered: list[tuple[str, float, bytes]]) -> TtsJob:
        """Keep the first job for a key: a concurrent first call's rendering is dropped."""
        existing = self._jobs.get(plan.key)
        if existing is not None:
            return existing
        segments = []
        for text, seconds, audio in rendered:
            media_id = uuid.uuid4().hex
            self._media[media_id] = audio
            segments.append(TtsSegment(media_id, text, seconds, len(audio)))
        while len(self._media) > MEDIA_CAP:
            del self._media[next(iter(self._media))]
        job = TtsJob(plan, tuple(segments))
        self._jobs[plan.key] = job
        return job

    def media(self, media_id: str) -> bytes | None:
        audio = self._media.get(media_id)
        if audio is not None:
            self.counters["media_downloads"] += 1
        return audio

    def tts_log(self) -> list[dict[str, Any]]:
        return [job.log_entry() for job in self._jobs.values()]

    # -- speech recognition -------------------------------------------------------------------

    def enqueue(self, texts: list[str]) -> int:
        self._asr_queue.extend(texts)
        return len(self._asr_queue)

    def transcribe(self, account: str, info: AudioInfo, size: int, now: float) -> tuple[int, str]:
        """(status_code, transcript); silence takes nothing from the scripted queue."""
        if info.silent:
            code, text = ASR_NOTHING_RECOGNISED_CODE, ""
        elif self._asr_queue:
            code, text = OK_CODE, self._asr_queue.popleft()
        else:
            code, text = OK_CODE, DEFAULT_TRANSCRIPT.format(seconds=info.duration)
        self._record(account, size, now, code, text, info=info)
        return code, text

    def reject_audio(self, account: str, size: int, now: float, error: str) -> None:
        self._record(account, size, now, INVALID_AUDIO_CODE, "", error=error)

    def _record(self, account: str, size: int, now: float, code: int, text: str,
                info: AudioInfo | None = None, error: str | None = None) -> None:
        self.counters["asr_calls"] += 1
        self._asr_log.append({
            "account": account, "t": now, "bytes": size, "status_code": code,
            "transcript": text, "error": error,
            "duration": info.duration if info else None,
            "sample_rate": info.sample_rate if info else None,
            "channels": info.channels if info else None, "rms": info.rms if info else None,
        })

    def asr_log(self) -> list[dict[str, Any]]:
        return list(self._asr_log)

    def pending_transcripts(self) -> int:
        return len(self._asr_queue)
