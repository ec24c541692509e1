"""Routes that belong to no single dialect: ``/``, ``/ping``, ``/healthz`` and the
model list that all three APIs serve at ``/v1/models``.

``/`` is the homepage a newcomer lands on: an HTML page (``templates/index.html``) with
copyable client set-ups that use this server's own address, and the endpoint list read
from the app's URL map so it cannot drift from the real routes. API clients that prefer
JSON get ``{"name", "endpoints"}`` instead.

The page speaks English or Chinese (``?lang=zh|en``, else ``Accept-Language``, else
English: :func:`gateway.i18n.negotiate`), with a switch between the two. Its sentences
come from :mod:`gateway.i18n`; an endpoint's English line is the first line of its view's
docstring, its Chinese line the catalogue's entry for the endpoint name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from markupsafe import Markup
from werkzeug.routing import Rule

from gateway import dialects, i18n, web
from gateway.i18n import Lang
from gateway.state import temporary_reason

bp = Blueprint("system", __name__)

NAME = "MiniMax Free API"
#: Methods every route answers implicitly; listing them would only add noise.
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})
# <converter(args):name> in a werkzeug rule, e.g. <any(v1beta, v1):version>.
_ARGUMENT = re.compile(r"<(?:(?P<conv>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Endpoint:
    """One registered route as the homepage shows it."""

    rule: str  # werkzeug's own spelling, kept for tests and tooltips
    path: str  # readable: {name} placeholders, {a|b} for fixed choices
    methods: tuple[str, ...]
    help: str


@dataclass(frozen=True)
class LanguageLink:
    """One entry of the homepage's language switch."""

    lang: Lang
    tag: str  # BCP 47, for hreflang and lang
    name: str  # the language named in itself
    href: str  # this page with ?lang= set, other query parameters kept
    current: bool


@bp.route("/", methods=["GET", "HEAD"])
def index() -> Response:
    """This page, in English or Chinese (?lang=en|zh); JSON with Accept: application/json."""
    if _prefers_json():
        endpoints = registered_endpoints()
        response = jsonify({"name": NAME, "endpoints": sorted({e.rule for e in endpoints})})
    else:
        lang = i18n.negotiate(request.args.get("lang"), request.headers.get("Accept-Language"))
        response = Response(_homepage(lang), mimetype="text/html")
        response.headers["Content-Language"] = i18n.HTML_LANG[lang]
    response.vary.update(("Accept", "Accept-Language"))
    return response


def _homepage(lang: Lang) -> str:
    models = web.service().settings.models
    t = translator(lang)
    model_list = Markup(t("page.list_separator")).join(Markup("<code>{}</code>").format(m) for m in models)
    return render_template(
        "index.html", name=NAME, base=request.host_url.rstrip("/"), model=models[0],
        model_list=model_list, endpoints=registered_endpoints(lang), t=t, lang=lang,
        html_lang=i18n.HTML_LANG[lang], languages=language_links(lang),
    )


def translator(lang: Lang) -> Callable[..., Markup]:
    """``t(key, **fields)`` for the template: the catalogue's HTML, the fields escaped."""

    def t(key: str, /, **fields: object) -> Markup:
        return Markup(i18n.template(key, lang)).format(**fields)

    return t


def language_links(current: Lang) -> list[LanguageLink]:
    """The switch: this same page in each language, keeping its other query parameters."""
    kept = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return [
        LanguageLink(lang, i18n.HTML_LANG[lang], i18n.LANGUAGE_NAMES[lang],
                     request.path + "?" + urlencode([*kept, ("lang", lang)]), lang == current)
        for lang in i18n.LANGS
    ]


def _prefers_json() -> bool:
    # A tie (e.g. */*, or no Accept at all) goes to the page: browsers and humans first;
    # werkzeug ranks an explicit application/json above a wildcard for html.
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def registered_endpoints(lang: Lang = i18n.DEFAULT_LANG) -> list[Endpoint]:
    """Every route of the running app (Flask's unused /static excepted), sorted by path."""
    endpoints = [
        Endpoint(rule.rule, readable_path(rule.rule), _methods(rule),
                 i18n.endpoint_help(rule.endpoint, english_help(rule.endpoint), lang))
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


def english_help(endpoint: str) -> str:
    """The endpoint's English line: the first line of its view's docstring ("" without one)."""
    doc = (current_app.view_functions[endpoint].__doc__ or "").strip()
    # Docstrings are reStructuredText; its ``literal`` quotes read as noise on the page.
    return doc.splitlines()[0].replace("``", "") if doc else ""


@bp.get("/ping")
def ping() -> Response:
    """Liveness: answers pong."""
    return Response("pong", mimetype="text/plain")


@bp.get("/healthz")
def healthz() -> Response:
    """Process health with account counts (free, busy, cooling)."""
    service = web.service()
    reason = temporary_reason(service.pool.state)
    warnings = [f"the shared state is temporary: {reason}"] if reason else []
    return jsonify({"status": "ok", "accounts": service.pool.snapshot(),
                    "surface": service.surfaces.mode, "surfaces": service.surfaces.choices(),
                    "state": "temporary" if reason else "lasting", "warnings": warnings})


@bp.get("/v1/models")
def list_models() -> Response:
    """Advertised models, in the caller's dialect."""
    return jsonify(dialects.of(request).model_list(web.service().models(web.caller_accounts())))


@bp.get("/v1/models/<path:model_id>")
def get_model(model_id: str) -> Response:
    """One model, in the caller's dialect."""
    return jsonify(dialects.of(request).model_info(model_id, web.service().models(web.caller_accounts())))
