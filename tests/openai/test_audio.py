"""Text to speech and transcription through the openai SDK, checked by decoding the audio."""

from __future__ import annotations

import io

import av
import openai
import pytest

from tests.media_files import spoken_wav
from tests.openai.test_chat_completions import client

EXPECTED = {"mp3": ("mp3", 24_000), "opus": ("ogg", 48_000), "aac": ("aac", 24_000),
            "flac": ("flac", 24_000), "wav": ("wav", 24_000)}


def probe(data: bytes) -> tuple[str, int, float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(audio=0))
        return container.format.name, stream.rate, samples / stream.rate


def spoken_seconds(sim) -> float:
    return sum(entry["duration"] for entry in sim.tts_log())


# Speech and transcription are the web app's: a code-only request gets a 400 (tests/chat/test_native.py).
pytestmark = pytest.mark.surfaces("matrix", "session")


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_speech_in_every_format(gateway, sim, credential, fmt) -> None:
    sim.set_default({"echo": "quoted", "cps": 3000})
    text = "Hello from the gateway. This is a test of speech."
    audio = client(gateway, credential).audio.speech.create(model="tts-1", voice="alloy", input=text,
                                                            response_format=fmt).content
    tts = sim.tts_log()
    assert [entry["voice"] for entry in tts] == ["male-botong"]
    assert " ".join(entry["text"] for entry in tts) == text
    if fmt == "pcm":
        assert len(audio) / 2 / 24_000 == pytest.approx(spoken_seconds(sim), abs=0.15)
        return
    container, rate, seconds = probe(audio)
    assert EXPECTED[fmt][0] in container and rate == EXPECTED[fmt][1]
    assert seconds == pytest.approx(spoken_seconds(sim), abs=0.15)
    assert sim.wait_idle(10)["chats_alive"] == 0


def test_speed_long_input_and_voice_passthrough(gateway, sim, credential) -> None:
    sim.set_default({"echo": "quoted", "cps": 5000})
    sentence = "The quick brown fox jumps over the lazy dog near the river bank. "
    text = sentence * 12
    audio = client(gateway, credential).audio.speech.create(model="tts-1-hd", voice="female-shaonv", input=text,
                                                            response_format="wav", speed=2.0).content
    tts = sim.tts_log()
    assert len(tts) >= 2 and all(entry["voice"] == "female-shaonv" for entry in tts)
    assert " ".join(entry["text"] for entry in tts) == text.strip()
    assert len({entry["chat_id"] for entry in tts if "chat_id" in entry}) <= 1
    _, _, seconds = probe(audio)
    assert seconds == pytest.approx(spoken_seconds(sim) / 2, rel=0.06)
    assert sim.wait_idle(10)["chats_alive"] == 0


def test_hd_voice_table(gateway, sim, credential) -> None:
    sim.set_default({"echo": "quoted", "cps": 5000})
    client(gateway, credential).audio.speech.create(model="tts-1-hd", voice="nova", input="Hi.")
    assert sim.tts_log()[0]["voice"] == "keli_hailuo"


def test_speech_errors(gateway, credential) -> None:
    api = client(gateway, credential)
    with pytest.raises(openai.BadRequestError):
        api.audio.speech.create(model="tts-1", voice="alloy", input="x", speed=9)
    with pytest.raises(openai.BadRequestError):
        api.audio.speech.create(model="tts-1", voice="alloy", input="x", response_format="ogg")  # type: ignore[arg-type]


@pytest.mark.parametrize("voice", ["Læn", "no spaces", "x" * 65])
def test_a_voice_the_upstream_cannot_take_is_400_not_502(gateway, sim, credential, voice) -> None:
    # Found by tests/system/test_fuzz.py: the name was passed through and refused upstream.
    with pytest.raises(openai.BadRequestError, match="voice"):
        client(gateway, credential).audio.speech.create(model="tts-1", voice=voice, input="Hi.")
    assert sim.tts_log() == []


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> bytes:
    return spoken_wav("Hello world, this is a spoken test.", tmp_path_factory.mktemp("audio") / "hello.wav").read_bytes()


@pytest.mark.parametrize("fmt", ["json", "text", "verbose_json", "srt", "vtt"])
def test_transcription_formats(gateway, sim, credential, speech_wav, fmt) -> None:
    sim.asr(["hello world this is a spoken test"])
    result = client(gateway, credential).audio.transcriptions.create(
        model="whisper-1", file=("hello.wav", speech_wav, "audio/wav"), response_format=fmt)
    call = sim.asr_log()[-1]
    assert call["duration"] > 1.0 and call["rms"] > 0
    text = "hello world this is a spoken test"
    if fmt == "json":
        assert result.text == text
    elif fmt == "verbose_json":
        assert result.text == text and result.duration == pytest.approx(call["duration"], abs=0.3)
        assert result.segments[0].end == pytest.approx(result.duration, abs=0.01)
    elif fmt == "srt":
        assert result.startswith("1\n00:00:00,000 --> 00:00:0") and text in result
    elif fmt == "vtt":
        assert result.startswith("WEBVTT\n\n00:00:00.000 --> ") and text in result
    else:
        assert result.strip() == text


def test_silence_is_empty_text_and_garbage_is_400(gateway, sim, credential) -> None:
    silent = io.BytesIO()
    with av.open(silent, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=16_000, layout="mono")
        frame = av.AudioFrame(format="s16", layout="mono", samples=16_000)
        frame.planes[0].update(b"\x00\x00" * 16_000)
        frame.sample_rate = 16_000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    api = client(gateway, credential)
    result = api.audio.transcriptions.create(model="whisper-1", file=("quiet.wav", silent.getvalue(), "audio/wav"))
    assert result.text == ""
    with pytest.raises(openai.BadRequestError):
        api.audio.transcriptions.create(model="whisper-1", file=("x.mp3", b"definitely not audio" * 40, "audio/mpeg"))


def transcode(wav: bytes, container: str, codec: str) -> bytes:
    """The test's own audio in another container/codec, made with PyAV."""
    out = io.BytesIO()
    with av.open(io.BytesIO(wav)) as source, av.open(out, "w", format=container) as target:
        rate = 48_000 if codec == "libopus" else 22_050
        stream = target.add_stream(codec, rate=rate, layout="mono")
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate)
        for frame in source.decode(audio=0):
            for converted in resampler.resample(frame):
                for packet in stream.encode(converted):
                    target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    return out.getvalue()


@pytest.mark.parametrize(("name", "container", "codec"), [
    ("speech.mp3", "mp3", "libmp3lame"), ("speech.m4a", "ipod", "aac"), ("speech.ogg", "ogg", "libopus"),
    ("speech.webm", "webm", "libopus"), ("speech.flac", "flac", "flac"),
])
def test_common_audio_formats_are_transcribed(gateway, sim, credential, speech_wav, name, container, codec) -> None:
    sim.asr([f"heard {name}"])
    data = transcode(speech_wav, container, codec)
    result = client(gateway, credential).audio.transcriptions.create(model="whisper-1", file=(name, data))
    assert result.text == f"heard {name}"
    assert sim.asr_log()[-1]["duration"] > 1.0
