"""OpenAI-compatible routes: chat completions and the model list.

Views are thin: validate, translate, call the chat service, render.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from gateway import http
from gateway.errors import ModelNotFound
from gateway.openai import translate
from gateway.openai.schemas import ChatCompletionSchema

bp = Blueprint("openai", __name__)

MODEL_CREATED = 1_735_689_600  # 2025-01-01, a fixed date: the upstream gives none
MODEL_OWNER = "minimax"


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


@bp.get("/v1/models")
def list_models() -> Response:
    return jsonify({"object": "list", "data": [_model(m) for m in http.service().settings.models]})


@bp.get("/v1/models/<path:model_id>")
def get_model(model_id: str) -> Response:
    if model_id not in http.service().settings.models:
        raise ModelNotFound(f"The model '{model_id}' does not exist.", param="model")
    return jsonify(_model(model_id))


def _model(model_id: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": MODEL_OWNER}
