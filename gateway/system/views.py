"""Routes that belong to no single dialect: ``/``, ``/ping``, ``/healthz`` and the
model list that all three APIs serve at ``/v1/models``."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from gateway import dialects, http

bp = Blueprint("system", __name__)


@bp.route("/", methods=["GET", "HEAD"])
def index() -> Response:
    routes = sorted({rule.rule for rule in current_app.url_map.iter_rules() if rule.endpoint != "static"})
    return jsonify({"name": "MiniMax Free API", "endpoints": routes})


@bp.get("/ping")
def ping() -> Response:
    return Response("pong", mimetype="text/plain")


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok", "accounts": http.service().pool.snapshot()})


@bp.get("/v1/models")
def list_models() -> Response:
    return jsonify(dialects.of(request).model_list(http.service().settings.models))


@bp.get("/v1/models/<path:model_id>")
def get_model(model_id: str) -> Response:
    return jsonify(dialects.of(request).model_info(model_id, http.service().settings.models))
