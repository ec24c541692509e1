"""``/``, ``/ping`` and ``/healthz``."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

bp = Blueprint("system", __name__)


@bp.route("/", methods=["GET", "HEAD"])
def index() -> Response:
    routes = sorted({rule.rule for rule in current_app.url_map.iter_rules() if rule.rule != "/static/<path:filename>"})
    return jsonify({"name": "MiniMax Free API", "endpoints": routes})


@bp.get("/ping")
def ping() -> Response:
    return Response("pong", mimetype="text/plain")


@bp.get("/healthz")
def healthz() -> Response:
    pool = current_app.extensions["gateway.chat"].pool.snapshot()
    return jsonify({"status": "ok", "accounts": pool})
