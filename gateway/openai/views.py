"""OpenAI-compatible routes: chat completions (the model list is shared, see gateway.dialects).

Views are thin: validate, translate, call the chat service, render.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from gateway import http
from gateway.openai import translate
from gateway.openai.schemas import ChatCompletionSchema

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
