"""Text to speech and speech recognition over the upstream's legacy endpoints.

Speech: the input is split at sentence boundaries; in one upstream chat each piece is
repeated verbatim by the agent, that message is spoken in the chosen voice, and the MP3
pieces are joined; the chat is deleted afterwards. Recognition: the audio is transcoded
to MP3 and posted. Both hold one account for their whole duration, like a generation.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from gateway import audio
from gateway.chat.service import ChatService
from gateway.errors import UpstreamBadAnswer, UpstreamTimeout
from gateway.upstream import audio as upstream_audio
from gateway.upstream.chat import read_snapshot, send_body, sent_ids
from gateway.upstream.credentials import Credential

#: Longest piece of text spoken in one upstream message.
MAX_PIECE_CHARS = 400
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；…])\s*|\n+")
ANSWER_POLL_SECONDS = 0.3
ANSWER_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Transcript:
    text: str
    seconds: float


def split_text(text: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """Pieces of at most ``limit`` characters, cut after sentences where possible."""
    pieces, current = [], ""
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

    def speak(self, text: str, voice: str, credentials: Sequence[Credential]) -> list[bytes]:
        """The MP3 clips speaking ``text`` in ``voice``, in order."""
        client = self.chat.client
        lease = self.chat.pool.acquire(credentials, self.chat.settings.queue_timeout)
        chat_id: int | None = None
        try:
            upstream_audio.set_voice(client, lease.credential, voice)
            clips = []
            for piece in split_text(text):
                chat_id, msg_id = self._repeat(lease.credential, piece, chat_id)
                urls = upstream_audio.speech_urls(client, lease.credential, msg_id, voice)
                clips += [client.download(url) for url in urls]
            return clips
        finally:
            lease.release()
            if chat_id is not None:
                self.chat.janitor.delete(lease.credential, chat_id)

    def _repeat(self, cred: Credential, piece: str, chat_id: int | None) -> tuple[int, int]:
        """Have the agent answer with ``piece``; the chat and the answer message's id."""
        prompt = upstream_audio.REPEAT_PROMPT.format(text=piece)
        body = send_body(prompt, self.chat.settings.models[0], chat_id=chat_id)
        chat_id, msg_id = sent_ids(self.chat.client.send_message(cred, body))
        deadline = time.monotonic() + ANSWER_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(ANSWER_POLL_SECONDS)
            snapshot = read_snapshot(self.chat.client.chat_detail(cred, chat_id), msg_id)
            if snapshot.finished:
                if snapshot.answer_msg_id is None:
                    raise UpstreamBadAnswer("MiniMax gave no message to speak.")
                return chat_id, snapshot.answer_msg_id
        raise UpstreamTimeout("MiniMax did not repeat the text in time.")

    def transcribe(self, clip: bytes, credentials: Sequence[Credential]) -> Transcript:
        pcm = audio.decode([clip])
        mp3 = audio.encode(pcm, "mp3")
        lease = self.chat.pool.acquire(credentials, self.chat.settings.queue_timeout)
        try:
            text = upstream_audio.transcribe(self.chat.client, lease.credential, mp3)
        finally:
            lease.release()
        return Transcript(text, pcm.seconds)
