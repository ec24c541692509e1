"""The legacy speech endpoints: text to speech (msg_tts) and recognition (phone_msg).

Text to speech speaks an assistant *message*: the caller first gets a message holding
exactly the text (see :data:`REPEAT_PROMPT`), selects the voice, then polls msg_tts until
it lists the MP3 URLs. Recognition posts an MP3 as a multipart form and reads the
transcript from the first ``asr_chunk`` event of the SSE reply.
"""

from __future__ import annotations

import json
from typing import Any

import sseclient

from gateway.errors import UpstreamBadAnswer, UpstreamTimeout
from gateway.upstream import constants as C
from gateway.upstream import pacing
from gateway.upstream.client import UpstreamClient
from gateway.upstream.credentials import Credential
from gateway.upstream.signing import md5_hex

#: [assumed] wording that makes the agent answer with the text verbatim.
REPEAT_PROMPT = (
    "Repeat the text between <<< and >>> exactly, character for character, and reply "
    "with nothing else: no quotes, no comments, no translation.\n<<<{text}>>>"
)
TTS_POLL_SECONDS = 0.5
TTS_TIMEOUT_SECONDS = 120.0
TTS_DONE_STATUS = 2  # requestStatus >= 2: finished
ASR_EVENT = "asr_chunk"
ASR_NOTHING_HEARD = 1200041
ASR_FORM = {"chatID": "0", "characterID": "1", "playSpeedLevel": "1"}
ASR_SIGNED_PREFIX_BYTES = 1024


def set_voice(client: UpstreamClient, cred: Credential, voice: str) -> None:
    client.call(cred, "POST", C.PATH_ROBOT_CONFIG, {"robotID": "1", "config": {"robotVoiceID": voice}})


def speech_urls(client: UpstreamClient, cred: Credential, msg_id: int, voice: str) -> list[str]:
    """Poll msg_tts until the audio of ``msg_id`` is ready; its MP3 URLs in order."""
    leading = (("msgID", str(msg_id)), ("timbre", voice))

    def ask() -> list[str] | None:
        data = client.call(cred, "GET", C.PATH_TTS, leading_query=leading)
        status = data.get("requestStatus")
        return _urls(data) if isinstance(status, int) and status >= TTS_DONE_STATUS else None

    return pacing.poll(ask, TTS_POLL_SECONDS, TTS_TIMEOUT_SECONDS,
                       lambda: UpstreamTimeout("MiniMax did not finish the speech in time."))


def _urls(data: dict[str, Any]) -> list[str]:
    result = data.get("result")
    urls = [u for u in result if isinstance(u, str) and u] if isinstance(result, list) else []
    if not urls:
        raise UpstreamBadAnswer("MiniMax finished the speech but returned no audio.")
    return urls


def transcribe(client: UpstreamClient, cred: Credential, mp3: bytes) -> str:
    """The transcript of ``mp3`` ("" when nothing was recognised)."""
    signed = (md5_hex(ASR_FORM["characterID"]) + md5_hex(ASR_FORM["chatID"])
              + md5_hex(mp3[:ASR_SIGNED_PREFIX_BYTES]))
    files = {"voiceBytes": ("voice.mp3", mp3, "audio/mpeg")}
    with client.stream_form(cred, C.PATH_ASR, ASR_FORM, files, signed) as chunks:
        for event in sseclient.SSEClient(chunks).events():
            if event.event == ASR_EVENT:
                return _transcript(event.data)
    raise UpstreamBadAnswer("MiniMax's recognition reply had no transcript.")


def _transcript(data: str) -> str:
    try:
        payload = json.loads(data)
    except ValueError:
        raise UpstreamBadAnswer("MiniMax's transcript event is not JSON.") from None
    code = payload.get("status_code")
    if code == ASR_NOTHING_HEARD:
        return ""
    if code != 0:
        raise UpstreamBadAnswer(f"MiniMax's recognition failed with code {code}.")
    text = (payload.get("data") or {}).get("text")
    return text if isinstance(text, str) else ""
