"""Routes that belong to no single dialect: ``/``, ``/ping``, ``/healthz`` and the
model list that all three APIs serve at ``/v1/models``.

``/`` is the homepage a newcomer lands on: an HTML page (``templates/index.html``) with
copyable client set-ups that use this server's own address, and the endpoint list read
from the app's URL map so it cannot drift from the real routes. API clients that prefer
JSON get ``{"name", "endpoints"}`` instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from werkzeug.routing import Rule

from gateway import dialects, http

bp = Blueprint("system", __name__)

NAME = "MiniMax Free API"
#: Methods every route answers implicitly; listing them would only add noise.
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})
#: One line per endpoint for the homepage; a view's own docstring wins when it has one.
ENDPOINT_HELP: dict[str, str] = {
    "system.index": "This page (JSON with Accept: application/json).",
    "system.ping": "Liveness: answers pong.",
    "system.healthz": "Process health with account counts (free, busy, cooling).",
    "system.list_models": "Advertised models, in the caller's dialect.",
    "system.get_model": "One model, in the caller's dialect.",
    "ops.metrics_text": "Prometheus metrics.",
    "openai.chat_completions": "OpenAI Chat Completions, streamed or not.",
    "openai.speech": "OpenAI text to speech.",
    "openai.transcriptions": "OpenAI speech to text.",
    "anthropic.messages": "Anthropic Messages, streamed or not.",
    "anthropic.count_tokens": "Anthropic token count.",
    "gemini.model_action": "Gemini {model}:generateContent, :streamGenerateContent, :countTokens.",
    "gemini.list_models": "Gemini model list.",
    "gemini.get_model": "Gemini model info.",
}
# <converter(args):name> in a werkzeug rule, e.g. <any(v1beta, v1):version>.
_ARGUMENT = re.compile(r"<(?:(?P<conv>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Endpoint:
    """One registered route as the homepage shows it."""

    rule: str  # werkzeug's own spelling, kept for tests and tooltips
    path: str  # readable: {name} placeholders, {a|b} for fixed choices
    methods: tuple[str, ...]
    help: str


@bp.route("/", methods=["GET", "HEAD"])
def index() -> Response:
    endpoints = registered_endpoints()
    if _prefers_json():
        return jsonify({"name": NAME, "endpoints": sorted({e.rule for e in endpoints})})
    models = http.service().settings.models
    html = render_template(
        "index.html", name=NAME, base=request.host_url.rstrip("/"), model=models[0],
        models=models, endpoints=endpoints,
    )
    return Response(html, mimetype="text/html")


def _prefers_json() -> bool:
    # A tie (e.g. */*, or no Accept at all) goes to the page: browsers and humans first;
    # werkzeug ranks an explicit application/json above a wildcard for html.
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def registered_endpoints() -> list[Endpoint]:
    """Every route of the running app (Flask's unused /static excepted), sorted by path."""
    endpoints = [
        Endpoint(rule.rule, readable_path(rule.rule), _methods(rule), _help(rule.endpoint))
        for rule in current_app.url_map.iter_rules()
        if rule.endpoint != "static"
    ]
    return sorted(endpoints, key=lambda e: (e.path, e.methods))


def readable_path(rule: str) -> str:
    """``/<any(v1beta, v1):version>/models/<path:target>`` -> ``/{v1beta|v1}/models/{target}``."""

    def placeholder(match: re.Match[str]) -> str:
        if match["conv"] == "any" and match["args"]:
            choices = [part.strip().strip("'\"") for part in match["args"].split(",")]
            return "{" + "|".join(choices) + "}"
        return "{" + match["name"] + "}"

    return _ARGUMENT.sub(placeholder, rule)


def _methods(rule: Rule) -> tuple[str, ...]:
    return tuple(sorted((rule.methods or set()) - IMPLICIT_METHODS))


def _help(endpoint: str) -> str:
    doc = (current_app.view_functions[endpoint].__doc__ or "").strip()
    # Docstrings are reStructuredText; its ``literal`` quotes read as noise on the page.
    return doc.splitlines()[0].replace("``", "") if doc else ENDPOINT_HELP.get(endpoint, "")


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
