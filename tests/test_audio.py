"""Decoding, speed change and encoding: checked by decoding what was encoded."""

from __future__ import annotations

import io
import math
import struct

import av
import pytest

from gateway import audio
from gateway.errors import InvalidRequest


def tone(seconds: float, rate: int = 24_000) -> audio.Pcm:
    samples = int(seconds * rate)
    data = b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * 330 * i / rate))) for i in range(samples))
    return audio.Pcm(data, rate)


def probe(data: bytes) -> tuple[str, int, float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        frames = sum(f.samples for f in container.decode(audio=0))
        return container.format.name, stream.rate, frames / stream.rate


@pytest.mark.parametrize(("fmt", "container", "rate"), [
    ("mp3", "mp3", 24_000), ("opus", "ogg", 48_000), ("aac", "aac", 24_000),
    ("flac", "flac", 24_000), ("wav", "wav", 24_000),
])
def test_every_format_decodes_to_the_same_duration(fmt: str, container: str, rate: int) -> None:
    name, sample_rate, seconds = probe(audio.encode(tone(1.5), fmt))
    assert container in name and sample_rate == rate
    assert seconds == pytest.approx(1.5, abs=0.08)


def test_pcm_is_raw_24khz_16bit_mono() -> None:
    assert len(audio.encode(tone(1.0, rate=16_000), "pcm")) == pytest.approx(48_000, abs=64)


@pytest.mark.parametrize("speed", [0.25, 0.5, 2.0, 4.0])
def test_speed_changes_duration(speed: float) -> None:
    assert audio.change_speed(tone(2.0), speed).seconds == pytest.approx(2.0 / speed, rel=0.05)


def test_clips_are_joined_in_order() -> None:
    clips = [audio.encode(tone(0.5), "mp3"), audio.encode(tone(1.0), "mp3")]
    assert audio.decode(clips).seconds == pytest.approx(1.5, abs=0.1)


@pytest.mark.parametrize("junk", [b"", b"not audio at all" * 50, b"\x89PNG\r\n\x1a\n" + b"\x00" * 500])
def test_corrupt_audio_is_a_clear_400(junk: bytes) -> None:
    with pytest.raises(InvalidRequest):
        audio.decode([junk])
