"""OpenAI-compatible routes: chat completions, speech and transcriptions (the model list
is shared, see gateway.dialects).

Views are thin: validate, translate, call the service, render.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from gateway import audio, web
from gateway.chat.pool import Accounts
from gateway.errors import InvalidRequest
from gateway.openai import translate
from gateway.openai.schemas import ChatCompletionSchema, SpeechSchema, TranscriptionSchema

bp = Blueprint("openai", __name__)


def credentials() -> Accounts:
    """The caller's accounts, from ``Authorization: Bearer``."""
    return web.credentials(web.bearer_token())


@bp.post("/v1/chat/completions")
def chat_completions() -> Response:
    """OpenAI Chat Completions, streamed or not."""
    accounts = credentials()
    data = web.load(ChatCompletionSchema, web.json_body())
    chat = web.pinned(translate.to_chat_request(data))
    usage = translate.wants_usage(data)
    generation = web.service().open(chat, accounts, web.disconnect_probe())
    if data.get("stream"):
        chunks = translate.ChunkStream(data["model"], usage)
        return web.stream(chunks.frames(generation.events()), generation.close)
    return jsonify(translate.completion(generation.result(), data["model"]))


@bp.post("/v1/audio/speech")
def speech() -> Response:
    """OpenAI text to speech."""
    accounts = credentials()
    data = web.load(SpeechSchema, web.json_body())
    voice = translate.minimax_voice(data["model"], data["voice"], web.settings().voice_overrides())
    fmt = data["response_format"]
    body = web.speech().speech(data["input"], voice, fmt, data["speed"], accounts)
    return Response(body, mimetype=audio.mime_type(fmt))


@bp.post("/v1/audio/transcriptions")
def transcriptions() -> Response:
    """OpenAI speech to text."""
    accounts = credentials()
    data = web.load(TranscriptionSchema, request.form.to_dict())
    upload = request.files.get("file")
    if upload is None:
        raise InvalidRequest("A multipart 'file' with the audio is required.", param="file")
    result = web.speech().transcribe(upload.read(), accounts)
    body, mimetype = translate.transcription(result.text, result.seconds, data["response_format"], data["language"])
    if isinstance(body, dict):
        return jsonify(body)
    return Response(body, mimetype=mimetype)
