"""The operator's view of a running gateway: ``/admin`` (a page) and ``/admin/accounts`` (JSON).

Role: show who is serving and how it goes, to the one person who holds the admin key
(``GATEWAY_ADMIN_KEY``): the mode (client keys or personal), every account with its
state, last error and credits, every client key with its use, and the requests and
errors per minute of the last hour as an inline SVG chart. The data is the accounts
service's ``overview()`` (see :mod:`gateway.accounts`), passed through unchanged as JSON
and laid out by ``templates/admin.html``.

Access:

* no admin key configured: every route here answers 404, as if it did not exist;
* ``Authorization: Bearer <key>`` or ``X-Admin-Key: <key>``, for scripts;
* for browsers, a login form (``POST /admin/login``) that starts a session: a signed,
  expiring ``gateway_admin`` cookie backed by a record in the shared state, so that
  ``POST /admin/logout`` and a changed key end it on every host
  (:mod:`gateway.system.admin_session`). Every POST of a browser session carries the
  session's CSRF token, else it is refused with 403.

Every answer is ``Cache-Control: no-store``; the key is compared in constant time and
never logged, echoed or put in a page.

The page speaks English or Chinese like the homepage (``?lang=``, else
``Accept-Language``: :func:`gateway.i18n.negotiate`); its texts are the catalogue's
``admin.*`` entries. Times are shown as ``HH:MM:SS UTC`` with "… ago" relative to the
overview's own ``generated_at``, so a page reads the same whenever it is looked at.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for

from gateway import i18n, web
from gateway.errors import AdminKeyRequired, NotFound, PermissionDenied
from gateway.i18n import Lang
from gateway.system import admin_session
from gateway.system.views import NAME, LanguageLink

bp = Blueprint("admin", __name__, url_prefix="/admin")
log = logging.getLogger("gateway.admin")

ADMIN_KEY_HEADER = "X-Admin-Key"
#: The login form's password field.
KEY_FIELD = "key"
#: Inline styles only, nothing fetched, no framing (the logout form could be clicked
#: through a frame otherwise), forms post only here.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")

#: How the caller proved they hold the admin key.
VIA_HEADER = "header"
VIA_COOKIE = "cookie"


class OverviewSource(Protocol):
    """What this module needs of the accounts service."""

    def overview(self) -> dict[str, Any]: ...


# --- access -------------------------------------------------------------------------------


@bp.before_request
def _only_when_enabled() -> None:
    # Without a key the admin routes do not exist: the same 404 as any unknown path.
    if not admin_key():
        raise NotFound()


@bp.before_request
def csrf_checked() -> None:
    # A browser's POST must carry its session's CSRF token (the login form's: the token of
    # the anonymous session it was served with). A script sending the key in a header needs
    # none: no other site can make a browser send that header. A POST of no live session
    # goes on: its route refuses it, or (logout) has nothing to end.
    if request.method != "POST" or authenticated() == VIA_HEADER:
        return
    key = admin_key()
    at_login = request.endpoint == f"{bp.name}.{login.__name__}"
    session = admin_session.cookie_session(key) if at_login else admin_session.logged_in(key)
    if session is None and not at_login:
        return
    if session is None or not admin_session.csrf_valid(session):
        log.warning("admin POST without its CSRF token refused")
        raise PermissionDenied("The form's CSRF token is missing or wrong: load the admin page again.")


@bp.after_request
def _never_stored(response: Response) -> Response:
    # Runs for error answers too (401, 404): none of them may sit in a shared cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def admin_key() -> str:
    """The configured admin key; "" when the admin routes are off."""
    return web.settings().admin_key


def authenticated() -> str | None:
    """How this request proves it holds the admin key (:data:`VIA_HEADER`, :data:`VIA_COOKIE`), or None."""
    key = admin_key()
    if admin_session.same(web.bearer_token(), key) or admin_session.same(request.headers.get(ADMIN_KEY_HEADER), key):
        return VIA_HEADER
    if admin_session.logged_in(key) is not None:
        return VIA_COOKIE
    return None


# --- routes -------------------------------------------------------------------------------


@bp.get("")
def page() -> Response:
    """The admin page: accounts, client keys and the last hour's requests (admin key or login)."""
    lang = _lang()
    via = authenticated()
    if via is None:
        return _login_page(lang, refused=False)
    session = admin_session.logged_in(admin_key()) if via == VIA_COOKIE else None
    return _html(_render_dashboard(lang, logout=session), lang)


@bp.get("/accounts")
def accounts() -> Response:
    """The admin page's data as JSON: accounts, client keys, requests per minute (admin key)."""
    if authenticated() is None:
        raise AdminKeyRequired()
    return jsonify(overview())


@bp.post("/login")
def login() -> Response:
    """The admin page's login form: the admin key in, a session cookie out."""
    key = admin_key()
    if not admin_session.same(request.form.get(KEY_FIELD), key):
        log.warning("admin login refused")  # the attempt is worth knowing; what was typed is not
        return _login_page(_lang(), refused=True)
    response = _see_other(_page_url())
    admin_session.start(key, response)
    return response


@bp.post("/logout")
def logout() -> Response:
    """Ends the admin page's login session, on every host (and clears its cookie)."""
    response = _see_other(_page_url())
    admin_session.end(admin_key(), response)
    return response


def overview() -> dict[str, Any]:
    """The accounts service's overview, as it gives it."""
    source: OverviewSource = current_app.extensions["gateway.accounts"]
    return source.overview()


# --- responses ----------------------------------------------------------------------------


def _lang() -> Lang:
    return i18n.negotiate(request.args.get("lang"), request.headers.get("Accept-Language"))


def _explicit_lang() -> Lang | None:
    # A language picked with ?lang= survives the login round trip (url_for drops a None);
    # a negotiated one needs no help, the browser sends the same Accept-Language again.
    return _lang() if "lang" in request.args else None


def _page_url() -> str:
    return url_for(".page", lang=_explicit_lang())


def _see_other(location: str) -> Response:
    # 303: the browser follows a form POST with a GET.
    return Response(status=303, headers={"Location": location})


def _html(body: str, lang: Lang, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Content-Language"] = i18n.HTML_LANG[lang]
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.vary.add("Accept-Language")
    return response


def _login_page(lang: Lang, *, refused: bool) -> Response:
    session = admin_session.form_session(admin_key())
    body = render_template("admin.html", view="login", refused=refused, key_field=KEY_FIELD,
                           action=url_for(".login", lang=_explicit_lang()), csrf=csrf_field(session), **_common(lang))
    response = _html(body, lang, status=401)
    admin_session.keep(admin_key(), response, session)
    return response


def csrf_field(session: admin_session.Session) -> dict[str, str]:
    """The hidden field a form of ``session`` posts its CSRF token in."""
    return {"name": admin_session.CSRF_FIELD, "value": session.csrf}


def _render_dashboard(lang: Lang, *, logout: admin_session.Session | None) -> str:
    """The dashboard; with the logout form when ``logout`` is the page's browser session."""
    data = overview()
    now = float(data.get("generated_at") or time.time())
    return render_template(
        "admin.html", view="dashboard", data=data, generated=moment(now, now, lang), refresh=_page_url(),
        logout=logout is not None, logout_action=url_for(".logout"),
        csrf=None if logout is None else csrf_field(logout),
        chart=build_chart(data.get("series") or {}, now, lang),
        moment=lambda epoch: moment(epoch, now, lang),
        choice=lambda group, value: choice(group, value, lang),
        number=number, **_common(lang),
    )


def _common(lang: Lang) -> dict[str, Any]:
    """What both views of the template use: language, texts, the switch."""
    return {"name": NAME, "lang": lang, "html_lang": i18n.HTML_LANG[lang],
            "languages": language_links(lang), "t": translator(lang)}


def translator(lang: Lang) -> Callable[..., str]:
    """``t(key, **fields)`` for the template: plain text, escaped by Jinja like any value."""

    def t(key: str, /, **fields: object) -> str:
        return i18n.text(key, lang, **fields)

    return t


def language_links(current: Lang) -> list[LanguageLink]:
    """The language switch; always to ``/admin`` (the login form's URL only takes POSTs)."""
    return [LanguageLink(lang, i18n.HTML_LANG[lang], i18n.LANGUAGE_NAMES[lang],
                         url_for(".page", lang=lang), lang == current)
            for lang in i18n.LANGS]


# --- formatting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    """One point in time as the page shows it."""

    iso: str  # for <time datetime>
    clock: str  # HH:MM:SS UTC (with the date when it is not today's)
    ago: str  # relative to the overview's generated_at


def moment(epoch: float | None, now: float, lang: Lang) -> Moment | None:
    """``epoch`` for the page, or None when there is none (never happened)."""
    if epoch is None:
        return None
    when = datetime.fromtimestamp(epoch, UTC)
    return Moment(when.isoformat(timespec="seconds").replace("+00:00", "Z"), clock(epoch, now), ago(epoch, now, lang))


def clock(epoch: float, now: float | None = None) -> str:
    """``HH:MM:SS UTC``; ``YYYY-MM-DD HH:MM:SS UTC`` when ``now`` is given and on another day."""
    when = datetime.fromtimestamp(epoch, UTC)
    same_day = now is None or when.date() == datetime.fromtimestamp(now, UTC).date()
    return when.strftime("%H:%M:%S UTC" if same_day else "%Y-%m-%d %H:%M:%S UTC")


#: Relative-time units, largest first: (seconds in one, catalogue key).
_UNITS = ((86400, "admin.ago.days"), (3600, "admin.ago.hours"), (60, "admin.ago.minutes"), (1, "admin.ago.seconds"))


def ago(epoch: float, now: float, lang: Lang) -> str:
    """"just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago" (whole units, rounded down)."""
    elapsed = now - epoch
    # Below a second, or ahead of now (another worker's clock): either way, "now".
    if elapsed < 1:
        return i18n.text("admin.ago.now", lang)
    size, key = next((size, key) for size, key in _UNITS if elapsed >= size)
    return i18n.text(key, lang, n=int(elapsed // size))


def choice(group: str, value: object, lang: Lang) -> str:
    """The catalogue's word for an enumerated value (``admin.state.busy``); the value itself
    when the catalogue has none (a state added later still shows)."""
    key = f"admin.{group}.{value}"
    return i18n.text(key, lang) if key in i18n.MESSAGES else str(value)


def number(value: float | None) -> str:
    """Credits and counts: whole numbers without ``.0``, others to two places; "" for None."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


# --- the chart ----------------------------------------------------------------------------

#: The SVG's drawing box (viewBox units) and the plot area inside it.
CHART_WIDTH, CHART_HEIGHT = 720, 260
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 48, 708, 34, 224
#: Minutes-ago marks on the x axis, besides "now".
X_MARKS_MINUTES = (15, 30, 45)
#: At most this many steps up the y axis.
Y_STEPS = 4
SERIES = ("requests", "errors")
DEFAULT_POINTS = 60
DEFAULT_BUCKET_SECONDS = 60.0


@dataclass(frozen=True)
class Line:
    """One series drawn as a polyline."""

    name: str  # requests | errors: the CSS class and data-series
    label: str
    points: str  # the polyline's points attribute, oldest first
    total: int


@dataclass(frozen=True)
class Mark:
    """An axis mark: where it is (x or y in the viewBox) and its label."""

    at: float
    label: str


@dataclass(frozen=True)
class Bucket:
    """One minute's column, for the hover text."""

    x: float
    width: float
    title: str


@dataclass(frozen=True)
class Chart:
    """Everything the template needs to draw the requests-per-minute chart."""

    lines: tuple[Line, ...]
    y_marks: tuple[Mark, ...]
    x_marks: tuple[Mark, ...]
    buckets: tuple[Bucket, ...]
    peak: int
    empty: bool
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: int = PLOT_LEFT
    right: int = PLOT_RIGHT
    top: int = PLOT_TOP
    bottom: int = PLOT_BOTTOM


def build_chart(series: dict[str, Any], now: float, lang: Lang) -> Chart:
    """The chart of ``series`` (``{"minute": seconds, "requests": [...], "errors": [...]}``, oldest first)."""
    values = _aligned([list(series.get(name) or []) for name in SERIES])
    bucket = float(series.get("minute") or DEFAULT_BUCKET_SECONDS)
    peak = max((max(v) for v in values), default=0)
    step, ceiling = y_scale(peak)
    lines = tuple(Line(name, i18n.text(f"admin.chart.{name}", lang), _points(v, ceiling), sum(v))
                  for name, v in zip(SERIES, values, strict=True))
    return Chart(
        lines=lines,
        y_marks=tuple(Mark(round(_y(tick, ceiling), 1), str(tick)) for tick in range(0, ceiling + 1, step)),
        x_marks=_x_marks(len(values[0]), bucket, lang),
        buckets=_buckets(values, bucket, now, lang),
        peak=peak, empty=peak == 0,
    )


def _aligned(columns: list[list[Any]]) -> list[list[int]]:
    # Equal lengths, newest last: a shorter series lacks its oldest minutes (zero).
    length = max((len(c) for c in columns), default=0) or DEFAULT_POINTS
    return [[0] * (length - len(c)) + [max(0, int(v)) for v in c] for c in columns]


def y_scale(peak: int) -> tuple[int, int]:
    """(step, top) of the y axis: a 1-2-5 step, at most :data:`Y_STEPS` of them to the top."""
    step = 1
    for size in _nice_sizes():
        if size * Y_STEPS >= peak:
            step = size
            break
    return step, max(step, step * math.ceil(peak / step))


def _nice_sizes() -> Sequence[int]:
    return [base * 10**power for power in range(12) for base in (1, 2, 5)]


def _x(index: int, count: int) -> float:
    return PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * index / max(count - 1, 1)


def _y(value: float, ceiling: int) -> float:
    return PLOT_BOTTOM - (PLOT_BOTTOM - PLOT_TOP) * value / ceiling


def _points(values: list[int], ceiling: int) -> str:
    return " ".join(f"{_x(i, len(values)):.1f},{_y(v, ceiling):.1f}" for i, v in enumerate(values))


def _x_marks(count: int, bucket: float, lang: Lang) -> tuple[Mark, ...]:
    marks = [Mark(round(_x(count - 1, count), 1), i18n.text("admin.chart.now", lang))]
    for minutes in X_MARKS_MINUTES:
        back = round(minutes * 60 / bucket)  # buckets before the newest
        if back < count:
            marks.append(Mark(round(_x(count - 1 - back, count), 1), i18n.text("admin.ago.minutes", lang, n=minutes)))
    return tuple(reversed(marks))


def _buckets(values: list[list[int]], bucket: float, now: float, lang: Lang) -> tuple[Bucket, ...]:
    requests, errors = values
    count = len(requests)
    width = (PLOT_RIGHT - PLOT_LEFT) / max(count - 1, 1)
    newest = now - now % bucket  # the start of the current bucket
    return tuple(
        Bucket(round(_x(i, count) - width / 2, 1), round(width, 1), i18n.text(
            "admin.chart.minute", lang, time=_minute(newest - (count - 1 - i) * bucket),
            requests=requests[i], errors=errors[i]))
        for i in range(count)
    )


def _minute(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M UTC")
