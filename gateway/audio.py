"""Audio decoding, speed change and encoding, with PyAV (FFmpeg's libraries in the wheel).

Speech comes from the upstream as MP3; clients may ask for wav, flac, opus, aac or raw
pcm (24 kHz 16-bit mono, as OpenAI's API defines it), at another speed. Recognition takes
any common format and needs MP3. Everything goes through mono 16-bit PCM in memory;
clips are short (speech), so that stays small.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import av
from av.audio.resampler import AudioResampler

from gateway.errors import InvalidRequest

PCM_RATE = 24_000  # OpenAI's pcm format: 24 kHz, 16-bit, mono
SAMPLE_FORMAT = "s16"
LAYOUT = "mono"
#: response_format -> (container, codec, sample rate, MIME type)
FORMATS: dict[str, tuple[str, str, int, str]] = {
    "mp3": ("mp3", "libmp3lame", PCM_RATE, "audio/mpeg"),
    "opus": ("ogg", "libopus", 48_000, "audio/ogg"),
    "aac": ("adts", "aac", PCM_RATE, "audio/aac"),
    "flac": ("flac", "flac", PCM_RATE, "audio/flac"),
    "wav": ("wav", "pcm_s16le", PCM_RATE, "audio/wav"),
}
PCM_MIME = "audio/pcm"
#: atempo handles 0.5..2.0 per stage; speeds beyond are chained stages.
ATEMPO_RANGE = (0.5, 2.0)


@dataclass(frozen=True)
class Pcm:
    """Mono signed 16-bit little-endian samples."""

    data: bytes
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.data) / 2 / self.rate


def mime_type(response_format: str) -> str:
    return PCM_MIME if response_format == "pcm" else FORMATS[response_format][3]


def decode(clips: list[bytes], rate: int = PCM_RATE) -> Pcm:
    """Decode and join audio clips (any format FFmpeg knows) as mono PCM at ``rate``."""
    out = bytearray()
    for clip in clips:
        out += _decode_one(clip, rate)
    return Pcm(bytes(out), rate)


def _decode_one(clip: bytes, rate: int) -> bytes:
    resampler = AudioResampler(format=SAMPLE_FORMAT, layout=LAYOUT, rate=rate)
    out = bytearray()
    try:
        with av.open(io.BytesIO(clip), "r") as container:
            if not container.streams.audio:
                raise InvalidRequest("The file holds no audio stream.", param="file")
            for frame in container.decode(audio=0):
                for resampled in resampler.resample(frame):
                    out += _frame_bytes(resampled)
        for resampled in resampler.resample(None):
            out += _frame_bytes(resampled)
    except av.FFmpegError:
        raise InvalidRequest("The audio could not be decoded (unsupported or corrupt).", param="file") from None
    return bytes(out)


def _frame_bytes(frame: av.AudioFrame) -> bytes:
    return bytes(frame.planes[0])[: frame.samples * 2]


def change_speed(pcm: Pcm, speed: float) -> Pcm:
    """Time-stretch without changing pitch (FFmpeg's atempo)."""
    if abs(speed - 1.0) < 1e-3 or not pcm.data:
        return pcm
    graph = av.filter.Graph()
    source = graph.add_abuffer(format=SAMPLE_FORMAT, sample_rate=pcm.rate, layout=LAYOUT)
    node = source
    for factor in _atempo_stages(speed):
        stage = graph.add("atempo", str(factor))
        node.link_to(stage)
        node = stage
    sink = graph.add("abuffersink")
    node.link_to(sink)
    graph.configure()
    out = bytearray()
    for frame in _frames(pcm, 4096):
        graph.push(frame)
        out += _drain(graph)
    graph.push(None)
    out += _drain(graph)
    return Pcm(bytes(out), pcm.rate)


def _drain(graph: av.filter.Graph) -> bytes:
    out = bytearray()
    while True:
        try:
            out += _frame_bytes(cast(av.AudioFrame, graph.pull()))
        except (av.BlockingIOError, av.EOFError):
            return bytes(out)


def _atempo_stages(speed: float) -> list[float]:
    low, high = ATEMPO_RANGE
    stages = []
    while speed > high:
        stages.append(high)
        speed /= high
    while speed < low:
        stages.append(low)
        speed /= low
    return [*stages, speed]


def encode(pcm: Pcm, response_format: str) -> bytes:
    """Encode mono PCM in ``response_format`` (mp3, opus, aac, flac, wav or pcm)."""
    if response_format == "pcm":
        return resample(pcm, PCM_RATE).data
    container_format, codec, rate, _ = FORMATS[response_format]
    pcm = resample(pcm, rate)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = cast(av.AudioStream, container.add_stream(codec, rate=rate, layout=LAYOUT))
        for frame in _frames(pcm, _frame_size(stream)):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def resample(pcm: Pcm, rate: int) -> Pcm:
    if pcm.rate == rate or not pcm.data:
        return Pcm(pcm.data, rate)
    resampler = AudioResampler(format=SAMPLE_FORMAT, layout=LAYOUT, rate=rate)
    out = bytearray()
    for frame in _frames(pcm, 4096):
        for resampled in resampler.resample(frame):
            out += _frame_bytes(resampled)
    for resampled in resampler.resample(None):
        out += _frame_bytes(resampled)
    return Pcm(bytes(out), rate)


def _frame_size(stream: av.AudioStream) -> int:
    # Encoders with a fixed frame size (mp3, aac, opus) need exactly that many samples.
    return stream.codec_context.frame_size or 4096


def _frames(pcm: Pcm, samples: int) -> list[av.AudioFrame]:
    frames, step, pts = [], samples * 2, 0
    for start in range(0, len(pcm.data), step):
        chunk = pcm.data[start : start + step]
        count = len(chunk) // 2
        frame = av.AudioFrame(format=SAMPLE_FORMAT, layout=LAYOUT, samples=count)
        frame.planes[0].update(chunk)
        frame.sample_rate, frame.pts, frame.time_base = pcm.rate, pts, Fraction(1, pcm.rate)
        pts += count
        frames.append(frame)
    return frames
