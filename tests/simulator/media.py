"""Media content for the simulator: image sniffing, TTS audio synthesis, ASR audio analysis.

Role: everything that looks inside bytes. Uploaded files are sniffed by magic number (is
an attachment sent as an image really one?); msg_tts answers with real MP3 made by PyAV's
libmp3lame encoder; phone_msg decodes what it receives with PyAV and measures it. Pure
functions, no state; no numpy (samples are built and read with `array`).
"""

from __future__ import annotations

import io
import math
import operator
from array import array
from dataclasses import dataclass
from functools import lru_cache

import av

# --- Image sniffing ------------------------------------------------------------------------

_PNG_MAGIC: bytes = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC: bytes = b"\xff\xd8\xff"
_GIF_MAGICS: tuple[bytes, ...] = (b"GIF87a", b"GIF89a")


def sniff_image(data: bytes) -> str | None:
    """The MIME type of a PNG, JPEG, GIF or WEBP by its magic bytes, else None."""
    if data.startswith(_PNG_MAGIC):
        return "image/png"
    if data.startswith(_JPEG_MAGIC):
        return "image/jpeg"
    if data.startswith(_GIF_MAGICS):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


# --- Text to speech ----------------------------------------------------------------------------

# [simulator's choice] UPSTREAM.md says only "MP3 URLs"; these shape the fake voice.
TTS_SAMPLE_RATE: int = 24000
TTS_BIT_RATE: int = 48000
TTS_SECONDS_PER_CHAR: float = 0.06
TTS_MIN_SECONDS: float = 0.5
TTS_SEGMENT_MIN_CHARS: tuple[int, ...] = (100, 400)  # a 2nd, a 3rd segment from these lengths
TTS_AMPLITUDE: float = 0.3
TTS_TONE_BASE_HZ: float = 220.0
TTS_TONE_STEP_HZ: float = 20.0
TTS_TONE_STEPS: int = 24
TTS_FADE_SAMPLES: int = 48
ENCODE_FRAME_SAMPLES: int = 4608
# Raw MP3 frames only (no ID3 tag, no Xing header): segments then join by concatenation.
MP3_MUXER_OPTIONS: dict[str, str] = {"id3v2_version": "0", "write_xing": "0"}
_S16_MAX: int = 32767


def tts_seconds(text: str) -> float:
    return max(TTS_MIN_SECONDS, TTS_SECONDS_PER_CHAR * len(text))


def split_for_tts(text: str) -> list[str]:
    """1 to 3 consecutive, near-equal parts whose concatenation is the text."""
    count = 1 + sum(1 for threshold in TTS_SEGMENT_MIN_CHARS if len(text) >= threshold)
    bounds = [round(index * len(text) / count) for index in range(count + 1)]
    return [text[begin:end] for begin, end in zip(bounds, bounds[1:], strict=False)]


def _tone_hz(char: str) -> float:
    return TTS_TONE_BASE_HZ + (ord(char) % TTS_TONE_STEPS) * TTS_TONE_STEP_HZ


@lru_cache(maxsize=256)
def _tone(hz: float, samples: int) -> bytes:
    """One character's tone: a sine with short linear fades, s16 native-endian."""
    peak = TTS_AMPLITUDE * _S16_MAX
    fade = max(1, min(TTS_FADE_SAMPLES, samples // 2))
    values = array("h", bytes(2 * samples))
    for index in range(samples):
        ramp = min(1.0, (index + 1) / fade, (samples - index) / fade)
        values[index] = int(peak * ramp * math.sin(2 * math.pi * hz * index / TTS_SAMPLE_RATE))
    return values.tobytes()


def _speech_pcm(text: str, seconds: float) -> bytes:
    """A tone per character (pitch from the character), spread over `seconds`."""
    total = max(1, round(seconds * TTS_SAMPLE_RATE))
    chars = text or " "
    edges = [round(index * total / len(chars)) for index in range(len(chars) + 1)]
    return b"".join(_tone(_tone_hz(char), end - begin)
                    for char, begin, end in zip(chars, edges, edges[1:], strict=False) if end > begin)


def synthesize_mp3(text: str, seconds: float) -> bytes:
    """Real MP3 (MPEG-2 layer III, mono, TTS_SAMPLE_RATE) of about `seconds` seconds."""
    pcm = _speech_pcm(text, seconds)
    output = io.BytesIO()
    with av.open(output, mode="w", format="mp3", options=MP3_MUXER_OPTIONS) as container:
        stream = container.add_stream("libmp3lame", rate=TTS_SAMPLE_RATE)
        stream.layout = "mono"
        stream.bit_rate = TTS_BIT_RATE
        step = 2 * ENCODE_FRAME_SAMPLES
        for offset in range(0, len(pcm), step):
            frame = _s16_frame(pcm[offset:offset + step], offset // 2)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return output.getvalue()


def _s16_frame(pcm: bytes, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16p", layout="mono", samples=len(pcm) // 2)
    frame.planes[0].update(pcm)
    frame.sample_rate, frame.pts = TTS_SAMPLE_RATE, pts
    return frame


# --- Speech recognition input ----------------------------------------------------------------

# Below this RMS (full scale = 1.0, about -60 dBFS) the audio counts as silence.
SILENCE_RMS: float = 0.001
MP3_FORMAT_NAME: str = "mp3"
# FFmpeg's "mp3" demuxer also reads MPEG layer I/II; only layer III decoders count.
MP3_DECODERS: tuple[str, ...] = ("mp3", "mp3float")


class NotMp3(ValueError):
    """The bytes are not an MP3 file PyAV can decode; the message says why."""


@dataclass(frozen=True)
class AudioInfo:
    duration: float
    sample_rate: int
    channels: int
    rms: float

    @property
    def silent(self) -> bool:
        return self.rms < SILENCE_RMS


def analyse_mp3(data: bytes) -> AudioInfo:
    """Decode MP3 bytes fully; duration from the decoded samples, RMS over all channels."""
    try:
        with av.open(io.BytesIO(data)) as container:
            if container.format.name != MP3_FORMAT_NAME or not container.streams.audio:
                raise NotMp3(f"container is {container.format.name!r}, not MP3 audio")
            stream = container.streams.audio[0]
            if stream.codec_context.name not in MP3_DECODERS:
                raise NotMp3(f"audio is {stream.codec_context.name!r}, not MPEG layer III")
            return _measure(container, stream)
    except av.error.FFmpegError as exc:
        raise NotMp3(f"not decodable as MP3: {exc}") from exc


def _measure(container: av.container.InputContainer, stream: av.AudioStream) -> AudioInfo:
    sample_rate = stream.codec_context.sample_rate
    channels = stream.codec_context.layout.nb_channels
    mixer = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    decoded, squares, mixed = 0, 0, 0
    for frame in container.decode(stream):
        decoded += frame.samples
        for out in mixer.resample(frame):
            count, total = _sum_squares(out)
            mixed, squares = mixed + count, squares + total
    if decoded == 0 or not sample_rate:
        raise NotMp3("no audio frames decoded")
    rms = math.sqrt(squares / mixed) / (_S16_MAX + 1) if mixed else 0.0
    return AudioInfo(decoded / sample_rate, sample_rate, channels, rms)


def _sum_squares(frame: av.AudioFrame) -> tuple[int, int]:
    samples = array("h", bytes(frame.planes[0])[:2 * frame.samples])
    return len(samples), sum(map(operator.mul, samples, samples))
