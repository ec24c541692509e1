"""OpenAI-compatible routes: chat completions, speech and transcriptions (the model list
is shared, see gateway.dialects).

Views are thin: validate, translate, call the chat service, render.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from gateway import audio

from gateway import http
from gateway.errors import InvalidRequest
from gateway.openai import translate
from gateway.openai.schemas import ChatCompletionSchema, SpeechSchema, TranscriptionSchema

bp = Blueprint("openai", __name__)

@bp.post("/v1/chat/completions")
def chat_completions() -> Response:
    credentials = http.credentials(http.bearer_token())
    data = http.load(ChatCompletionSchema(), http.json_body())
    request = translate.to_chat_request(data)
    generation = http.service().open(request, credentials, http.disconnect_probe())
    if data.get("stream"):
        options = data.get("stream_options") or {}
        chunks = translate.ChunkStream(data["model"], options.get("include_usage", False))
        return http.stream(chunks.frames(generation.events()), generation.close)
    return jsonify(translate.completion(generation.result(), data["model"]))


@bp.post("/v1/audio/speech")
def speech() -> Response:
    credentials = http.credentials(http.bearer_token())
    data = http.load(SpeechSchema(), http.json_body())
    voice = translate.minimax_voice(data["model"], data["voice"], http.settings().voice_overrides())
    clips = http.speech().speak(data["input"], voice, credentials)
    fmt, speed = data["response_format"], data["speed"]
    if fmt == "mp3" and speed == 1.0 and len(clips) == 1:
        body = clips[0]  # native: no re-encoding
    else:
        body = audio.encode(audio.change_speed(audio.decode(clips), speed), fmt)
    return Response(body, mimetype=audio.mime_type(fmt))


@bp.post("/v1/audio/transcriptions")
def transcriptions() -> Response:
    credentials = http.credentials(http.bearer_token())
    data = http.load(TranscriptionSchema(), request.form.to_dict())
    upload = request.files.get("file")
    if upload is None:
        raise InvalidRequest("A multipart 'file' with the audio is required.", param="file")
    result = http.speech().transcribe(upload.read(), credentials)
    body, mimetype = translate.transcription(result.text, result.seconds, data["response_format"], data["language"])
    if isinstance(body, dict):
        return jsonify(body)
    return Response(body, mimetype=mimetype)
