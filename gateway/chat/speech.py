"""Text to speech and speech recognition over the upstream's legacy endpoints.

Speech: the input is split at sentence boundaries; in one upstream conversation (on the
account's surface) each piece is repeated verbatim by the agent, that message is spoken
in the chosen voice, and the MP3 pieces are joined; the conversation is discarded
afterwards. Recognition: the audio is transcoded
to MP3 and posted. Both hold one account for their whole duration, like a generation.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from gateway import audio
from gateway.chat.pool import Accounts, as_accounts
from gateway.chat.service import ChatService
from gateway.errors import UpstreamBadAnswer, UpstreamTimeout
from gateway.upstream import audio as upstream_audio
from gateway.upstream.conversation import Conversation, Driver, Turn, TurnFailed, TurnFinished, TurnInput
from gateway.upstream.credentials import Credential

#: Longest piece of text spoken in one upstream message.
MAX_PIECE_CHARS = 400
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；…])\s*|\n+")
ANSWER_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Transcript:
    text: str
    seconds: float


def split_text(text: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """Pieces of at most ``limit`` characters, cut after sentences where possible."""
    pieces: list[str] = []
    current = ""
    for sentence in (s for s in _SENTENCE_END.split(text) if s and s.strip()):
        while len(sentence) > limit:  # one sentence longer than a piece: cut it hard
            pieces, current = _flush(pieces, current), ""
            pieces.append(sentence[:limit])
            sentence = sentence[limit:]
        if current and len(current) + 1 + len(sentence) > limit:
            pieces, current = _flush(pieces, current), ""
        current = f"{current} {sentence}" if current else sentence
    return _flush(pieces, current)


def _flush(pieces: list[str], current: str) -> list[str]:
    return [*pieces, current] if current.strip() else pieces


class SpeechService:
    def __init__(self, chat: ChatService) -> None:
        self.chat = chat

    def speech(self, text: str, voice: str, response_format: str, speed: float,
               credentials: Accounts | Sequence[Credential]) -> bytes:
        """``text`` spoken in ``voice``, as one file in ``response_format`` at ``speed``.

        One MP3 clip at normal speed is returned as the upstream made it; anything else
        is decoded, sped up or slowed down, and encoded again.
        """
        clips = self.speak(text, voice, credentials)
        if response_format == "mp3" and speed == 1.0 and len(clips) == 1:
            return clips[0]
        return audio.encode(audio.change_speed(audio.decode(clips), speed), response_format)

    def speak(self, text: str, voice: str, credentials: Accounts | Sequence[Credential]) -> list[bytes]:
        """The MP3 clips speaking ``text`` in ``voice``, in order."""
        client = self.chat.client
        lease = self.chat.lease(as_accounts(credentials), self.chat.settings.queue_timeout, "Text to speech")
        cred = lease.credential
        spoken: tuple[Driver, Conversation] | None = None
        try:
            upstream_audio.set_voice(client, cred, voice)
            clips = []
            for piece in split_text(text):
                spoken, msg_id = self._repeat(cred, piece, spoken, lease.holder)
                urls = upstream_audio.speech_urls(client, cred, msg_id, voice)
                clips += [client.download(url) for url in urls]
            return clips
        finally:
            lease.release()
            if spoken is not None:
                self.chat.discard(spoken[0], cred, spoken[1])

    def _repeat(self, cred: Credential, piece: str, spoken: tuple[Driver, Conversation] | None,
                holder: str) -> tuple[tuple[Driver, Conversation], int]:
        """Have the agent answer with ``piece``: the conversation and the answer's id."""
        prompt = upstream_audio.REPEAT_PROMPT.format(text=piece)
        model = self.chat.settings.models[0]
        if spoken is None:
            driver, turn = self.chat.start_turn(cred, prompt, model, holder=holder)
        else:
            driver, turn = spoken[0], spoken[0].send(cred, spoken[1], TurnInput(prompt, model))
        return (driver, turn.conversation), _answer_id(turn)

    def transcribe(self, clip: bytes, credentials: Accounts | Sequence[Credential]) -> Transcript:
        pcm = audio.decode([clip])
        mp3 = audio.encode(pcm, "mp3")
        lease = self.chat.lease(as_accounts(credentials), self.chat.settings.queue_timeout, "Transcription")
        try:
            text = upstream_audio.transcribe(self.chat.client, lease.credential, mp3)
        finally:
            lease.release()
        return Transcript(text, pcm.seconds)


def _answer_id(turn: Turn) -> int:
    """Read the turn to its end; the id of its answer message (what msg_tts speaks)."""
    deadline = time.monotonic() + ANSWER_TIMEOUT_SECONDS
    try:
        for event in turn.events():
            if isinstance(event, TurnFailed):
                raise event.error
            if isinstance(event, TurnFinished):
                if event.answer_id is None:
                    raise UpstreamBadAnswer("MiniMax gave no message to speak.")
                return event.answer_id
            if time.monotonic() > deadline:
                break
    finally:
        turn.stop()
    raise UpstreamTimeout("MiniMax did not repeat the text in time.")
