"""The admin page (``GET /admin``), its JSON (``GET /admin/accounts``) and its login.

The app is the real one (``gateway.app.build_app`` with ``GATEWAY_ADMIN_KEY`` set, or
not), with one substitution: the accounts service is replaced by :class:`FakeAccounts`,
whose ``overview()`` returns a fixed, realistic overview, so the page is checked
against the contract and not against whatever the live service holds.

What is checked over Flask's test client: without an admin key every admin route is
404 (a login with the empty key included); the JSON answers 401 without the key or
with a wrong one (Bearer, X-Admin-Key, cookie) and the overview unchanged with it; the
page answers 401 with a login form, the form's POST (with the form's CSRF token) sets an
HttpOnly, SameSite=Strict, Path=/admin cookie with the session's lifetime (Secure over
https, also behind a trusted proxy) that holds no key; the cookie opens the page and
the JSON; a session expires, logout revokes it (a kept copy of the cookie opens nothing,
on any gateway sharing the state) and so does a changed admin key, while another gateway
with the same key and state accepts it; a POST without its CSRF token is 403; every
answer is no-store; the
key never appears in a body, a header or a log record; the page is in English or
Chinese like the homepage, shows every account and key of the overview (escaped),
empty states, and an SVG chart whose two polylines follow the series.

Headless Chromium (the homepage's harness, tests/system/browser.py) then loads the page
from a werkzeug server: the login form without a key, the dashboard after a real form
login (and after logout the form again), the dashboard with the key in a header, with
no console errors and no request leaving the server, readable in light and dark,
fitting a phone's width. Screenshots go to ``test-artifacts/admin*.png``.
"""

from __future__ import annotations

import copy
import logging
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.test import TestResponse

from gateway.app import build_app
from gateway.config import Settings
from gateway.i18n import LANGS, Lang, text
from gateway.system import admin, admin_session
from tests.deploy.debian import require
from tests.servers import ARTIFACTS, free_port
from tests.system.browser import Chromium, Page
from tests.system.test_homepage import CONTRAST_SCRIPT

# The first run may install Chromium from the Debian archive.
pytestmark = pytest.mark.timeout(900)

KEY = "admin-key-for-the-tests-0123456789"
WRONG_KEY = "admin-key-for-the-tests-9876543210"
CHROMIUM = "/usr/bin/chromium"
#: 2026-01-01 12:00:00 UTC, the overview's own clock.
GENERATED = 1_767_268_800.0
HAN = re.compile(r"[\u4e00-\u9fff]")
ROUTES = [("GET", "/admin"), ("GET", "/admin/accounts"), ("POST", "/admin/login"), ("POST", "/admin/logout")]

REQUESTS = [0] * 20 + [1, 2, 3, 5, 4, 2, 0, 0, 6, 9, 11, 8, 7, 3, 2, 1] + [0] * 14 + [4, 17, 12, 5, 3, 2, 1, 0, 1, 2]
ERRORS = [0] * 30 + [1, 0, 2] + [0] * 18 + [3, 1] + [0] * 7
OVERVIEW: dict[str, Any] = {
    "generated_at": GENERATED,
    "mode": "keys",
    "accounts": [
        {"account": "1846…3921", "key": "acc-7f3a", "source": "server", "state": "busy", "in_flight": 1,
         "last_error": None, "last_error_at": None, "credits": 1200, "credits_at": GENERATED - 300,
         "answers_today": 42, "surface": "matrix"},
        {"account": "2203…0077", "key": "acc-91c2", "source": "server", "state": "cooling", "in_flight": 0,
         "last_error": "AccountInUse: the account is busy <elsewhere>", "last_error_at": GENERATED - 45,
         "credits": 87.5, "credits_at": GENERATED - 4000, "answers_today": 9, "surface": "session"},
        {"account": "eyJh…Qssw", "key": "acc-0b11", "source": "client", "state": "dead", "in_flight": 0,
         "last_error": "UpstreamUnauthorized: MiniMax refused the credential", "last_error_at": GENERATED - 90_000,
         "credits": None, "credits_at": None, "answers_today": 0, "surface": None},
    ],
    "keys": [
        {"name": "laptop", "id": "k-3f9a1c", "rpm": 30, "concurrency": 2, "requests_today": 118,
         "requests_last_minute": 3, "in_flight": 1, "last_used": GENERATED - 12},
        {"name": "ci", "id": "k-88d0e2", "rpm": None, "concurrency": None, "requests_today": 0,
         "requests_last_minute": 0, "in_flight": 0, "last_used": None},
    ],
    "series": {"minute": 60.0, "requests": REQUESTS, "errors": ERRORS},
}
EMPTY_OVERVIEW: dict[str, Any] = {
    "generated_at": GENERATED, "mode": "personal", "accounts": [], "keys": [],
    "series": {"minute": 60.0, "requests": [0] * 60, "errors": [0] * 60},
}


class FakeAccounts:
    """Stands in for the accounts service: only ``overview()``, a copy each time."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def overview(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)


def make_app(admin_key: str, data: dict[str, Any] = OVERVIEW, **env: str) -> Flask:
    environ = {"GATEWAY_ADMIN_KEY": admin_key, **env} if admin_key else dict(env)
    app = build_app(Settings.from_env(environ))
    app.extensions["gateway.accounts"] = FakeAccounts(data)
    return app


@pytest.fixture(scope="module")
def enabled_app() -> Flask:
    return make_app(KEY)


@pytest.fixture(scope="module")
def disabled_app() -> Flask:
    return make_app("")


@pytest.fixture
def client(enabled_app: Flask) -> FlaskClient:
    return enabled_app.test_client()


def set_overview(app: Flask, monkeypatch: pytest.MonkeyPatch, data: dict[str, Any]) -> None:
    monkeypatch.setitem(app.extensions, "gateway.accounts", FakeAccounts(data))


# --- reading answers ---------------------------------------------------------------------


#: HTML elements that have no end tag.
VOID_ELEMENTS = frozenset({"input", "meta", "link", "br", "hr", "img"})


class Document(HTMLParser):
    """The start tags of an HTML page (with attributes) and the text of each element by id."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []  # (tag, id)
        self._texts: dict[str, list[str]] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = self._record(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self._open.append((tag, values.get("id")))
            if values.get("id"):
                self._texts[values["id"]] = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, attrs)  # <line/>: nothing to close later

    def _record(self, tag: str, attrs: list[tuple[str, str | None]]) -> dict[str, str]:
        values = {name: value or "" for name, value in attrs}
        self.tags.append((tag, values))
        return values

    def handle_endtag(self, tag: str) -> None:
        if tag not in (name for name, _ in self._open):
            return
        while self._open:
            name, ident = self._open.pop()
            if ident:
                self.texts[ident] = " ".join("".join(self._texts.pop(ident)).split())
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, ident in self._open:
            if ident:
                self._texts[ident].append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in wanted.items())]

    def headings(self) -> list[str]:
        return [self.texts[a["id"]] for t, a in self.tags if t in {"h1", "h2"} and a.get("id")]


def page_of(response: TestResponse) -> Document:
    assert response.mimetype == "text/html"
    return Document(response.get_data(as_text=True))


def cookie_of(response: TestResponse) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        jar.load(header)
    return jar


def form_token(client: FlaskClient, base_url: str = "http://localhost") -> str:
    """The CSRF token of the login form the page serves (its cookie is kept by the client)."""
    fields = page_of(client.get("/admin", base_url=base_url)).find("input", name=admin_session.CSRF_FIELD)
    assert fields and len({field["value"] for field in fields}) == 1  # one token for every form of a page
    return fields[0]["value"]


def login(client: FlaskClient, key: str = KEY, query: str = "") -> TestResponse:
    return client.post("/admin/login" + query, data={"key": key, "csrf": form_token(client)})


def logout_token(client: FlaskClient) -> str:
    """The CSRF token of the dashboard's forms (logout, and the MiniMax Code ones: one token)."""
    fields = page_of(client.get("/admin")).find("input", name=admin_session.CSRF_FIELD)
    assert fields and len({field["value"] for field in fields}) == 1
    return fields[0]["value"]


def session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(admin_session.COOKIE, path="/admin")
    assert cookie is not None
    return cookie.value


def points(document: Document, series: str) -> list[tuple[float, float]]:
    (line,) = document.find("polyline", data_series=series)
    return [(float(x), float(y)) for x, y in (pair.split(",") for pair in line["points"].split())]


def assert_no_store(response: TestResponse) -> None:
    assert response.headers.get("Cache-Control") == "no-store", response.headers


# --- without an admin key: nothing there --------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_disabled_admin_answers_404(disabled_app: Flask, method: str, path: str) -> None:
    client = disabled_app.test_client()
    # Even the empty key, which is what "disabled" is, must not log anyone in.
    response = client.open(path, method=method, data={"key": ""},
                           headers={"Authorization": "Bearer ", "X-Admin-Key": ""})
    assert response.status_code == 404
    assert response.get_json()["error"]["message"] == "Not found."
    assert "Set-Cookie" not in response.headers
    assert_no_store(response)


# --- the JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": f"Bearer {WRONG_KEY}"},
    {"X-Admin-Key": WRONG_KEY},
    {"Authorization": f"Bearer {KEY[:-1]}"},  # a prefix of the key is not the key
    {"Authorization": f"Basic {KEY}"},  # only the Bearer scheme carries the key
    {"Authorization": KEY},
    {"X-Admin-Key": "ключ-не-тот"},  # non-ASCII must be refused, not crash the comparison
], ids=["none", "wrong-bearer", "wrong-header", "prefix", "basic", "no-scheme", "non-ascii"])
def test_accounts_json_refuses_without_the_key(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/admin/accounts", headers=headers)
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert "admin key is required" in error["message"]
    assert_no_store(response)


FORGED = {
    "the-key-itself": KEY,
    "other-key": admin_session._serializer(WRONG_KEY).dumps({"c": "x", "n": "y"}),
    "unrecorded-nonce": admin_session._serializer(KEY).dumps({"c": "x", "n": "never-logged-in"}),
    "anonymous": admin_session._serializer(KEY).dumps({"c": "x"}),
    "empty": "",
}


@pytest.mark.parametrize("cookie", FORGED.values(), ids=FORGED.keys())
def test_forged_cookies_open_nothing(client: FlaskClient, cookie: str) -> None:
    client.set_cookie(admin_session.COOKIE, cookie, path="/admin")
    assert client.get("/admin/accounts").status_code == 401
    assert client.get("/admin").status_code == 401


@pytest.mark.parametrize("headers", [
    {"Authorization": f"Bearer {KEY}"}, {"Authorization": f"bearer {KEY}"}, {"X-Admin-Key": KEY},
    {"Authorization": f"Bearer {WRONG_KEY}", "X-Admin-Key": KEY},
], ids=["bearer", "bearer-lowercase", "x-admin-key", "either-header"])
def test_accounts_json_with_the_key_is_the_overview_as_is(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/admin/accounts", headers=headers)
    assert response.status_code == 200
    assert response.get_json() == OVERVIEW
    assert_no_store(response)


# --- login, cookie, logout ------------------------------------------------------------------


def test_page_without_the_key_is_a_login_form(client: FlaskClient) -> None:
    response = client.get("/admin")
    assert response.status_code == 401
    assert_no_store(response)
    document = page_of(response)
    assert document.find("form", id="login", method="post", action="/admin/login")
    assert document.find("input", type="password", name="key")
    assert not document.find("table") and not document.find("svg"), "data shown without the key"
    assert "login-refused" not in document.texts


def test_login_sets_a_session_cookie_not_the_key(client: FlaskClient) -> None:
    response = login(client)
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin"
    assert_no_store(response)
    morsel = cookie_of(response)[admin_session.COOKIE]
    assert KEY not in morsel.value and morsel.value
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/admin"
    assert morsel["max-age"] == str(int(Settings().admin_session_ttl))
    assert not morsel["secure"], "plain http: a Secure cookie would never come back"


def test_login_over_https_marks_the_cookie_secure(enabled_app: Flask) -> None:
    client = enabled_app.test_client()
    token = form_token(client, "https://localhost")
    response = client.post("/admin/login", data={"key": KEY, "csrf": token}, base_url="https://localhost")
    assert response.status_code == 303
    assert cookie_of(response)[admin_session.COOKIE]["secure"] is True


@pytest.mark.parametrize(("peer", "secure"), [("127.0.0.1", True), ("203.0.113.9", False)], ids=["trusted", "other"])
def test_behind_a_trusted_proxy_https_marks_the_cookie_secure(peer: str, secure: bool) -> None:
    # nginx speaks http to the gateway and says X-Forwarded-Proto: https; only a trusted
    # peer is believed.
    client = make_app(KEY, GATEWAY_TRUSTED_PROXIES="127.0.0.1").test_client()
    environ = {"REMOTE_ADDR": peer}
    headers = {"X-Forwarded-Proto": "https"}
    (field,) = page_of(client.get("/admin", headers=headers, environ_base=environ)).find("input", name="csrf")
    response = client.post("/admin/login", data={"key": KEY, "csrf": field["value"]}, headers=headers,
                           environ_base=environ)
    assert response.status_code == 303
    assert bool(cookie_of(response)[admin_session.COOKIE]["secure"]) is secure


def test_the_cookie_opens_the_page_and_the_json(client: FlaskClient) -> None:
    login(client)
    page = client.get("/admin")
    assert page.status_code == 200
    assert_no_store(page)
    assert page_of(page).find("form", id="logout", method="post", action="/admin/logout")
    assert client.get("/admin/accounts").get_json() == OVERVIEW


def test_a_header_login_gets_no_logout_button(client: FlaskClient) -> None:
    document = page_of(client.get("/admin", headers={"X-Admin-Key": KEY}))
    assert document.find("table", id="accounts")
    assert not document.find("form", id="logout")


@pytest.mark.parametrize("data", [{"key": WRONG_KEY}, {"key": ""}, {}], ids=["wrong", "empty", "missing"])
def test_a_wrong_key_gets_the_form_again_with_an_error(client: FlaskClient, data: dict[str, str]) -> None:
    response = client.post("/admin/login", data={**data, "csrf": form_token(client)})
    assert response.status_code == 401
    # The form comes back with its anonymous session (a CSRF token), never a login's nonce.
    assert "n" not in _payload(cookie_of(response)[admin_session.COOKIE].value)
    assert_no_store(response)
    document = page_of(response)
    assert document.texts["login-refused"] == text("admin.login.refused", "en")
    assert document.find("input", type="password", name="key")
    assert not document.find("table")


def _payload(cookie: str) -> dict[str, Any]:
    data: dict[str, Any] = admin_session._serializer(KEY).loads(cookie)
    return data


def test_logout_clears_the_cookie_and_revokes_the_session(client: FlaskClient) -> None:
    login(client)
    kept = session_cookie(client)
    response = client.post("/admin/logout", data={"csrf": logout_token(client)})
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin"
    assert_no_store(response)
    morsel = cookie_of(response)[admin_session.COOKIE]
    assert morsel.value == "" and morsel["path"] == "/admin"
    assert morsel["max-age"] == "0" or "1970" in morsel["expires"]
    assert client.get("/admin").status_code == 401
    assert client.get("/admin/accounts").status_code == 401
    # A copy of the cookie kept from before the logout opens nothing either.
    client.set_cookie(admin_session.COOKIE, kept, path="/admin")
    assert client.get("/admin/accounts").status_code == 401
    assert client.get("/admin").status_code == 401


def test_a_session_expires(tmp_path: Path) -> None:
    client = make_app(KEY, GATEWAY_ADMIN_SESSION_TTL="1").test_client()
    login(client)
    kept = session_cookie(client)
    assert client.get("/admin/accounts").status_code == 200
    time.sleep(2.1)  # past the lifetime, in the whole seconds of the cookie's timestamp
    client.set_cookie(admin_session.COOKIE, kept, path="/admin")  # as a browser ignoring Max-Age would
    assert client.get("/admin/accounts").status_code == 401
    assert client.get("/admin").status_code == 401


def test_sessions_are_shared_and_a_changed_key_revokes_them(tmp_path: Path) -> None:
    state = {"GATEWAY_STATE": f"sqlite://{tmp_path / 'state.db'}"}
    first = make_app(KEY, **state).test_client()
    login(first)
    kept = session_cookie(first)
    # Another worker or host of the same deployment (same key, same state) accepts it ...
    same = make_app(KEY, **state).test_client()
    same.set_cookie(admin_session.COOKIE, kept, path="/admin")
    assert same.get("/admin/accounts").status_code == 200
    # ... one whose admin key was changed does not ...
    changed = make_app(WRONG_KEY, **state).test_client()
    changed.set_cookie(admin_session.COOKIE, kept, path="/admin")
    assert changed.get("/admin/accounts").status_code == 401
    # ... and a logout on the first ends the session on the other too.
    first.post("/admin/logout", data={"csrf": logout_token(first)})
    assert same.get("/admin/accounts").status_code == 401


@pytest.mark.parametrize("token", [None, "", "wrong-token"], ids=["missing", "empty", "wrong"])
def test_a_post_without_its_csrf_token_is_403(client: FlaskClient, token: str | None) -> None:
    login(client)
    data = {} if token is None else {"csrf": token}
    refused = client.post("/admin/logout", data=data)
    assert refused.status_code == 403
    assert "CSRF" in refused.get_json()["error"]["message"]
    assert_no_store(refused)
    assert client.get("/admin/accounts").status_code == 200, "the refused logout ended the session"
    # The token may come as a header too.
    assert client.post("/admin/logout", headers={"X-CSRF-Token": logout_token(client)}).status_code == 303
    assert client.get("/admin/accounts").status_code == 401


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["missing", "wrong"])
def test_a_login_without_the_forms_token_is_403(client: FlaskClient, token: str | None) -> None:
    form_token(client)
    data = {"key": KEY} if token is None else {"key": KEY, "csrf": token}
    refused = client.post("/admin/login", data=data)
    assert refused.status_code == 403 and "CSRF" in refused.get_json()["error"]["message"]
    assert client.get("/admin/accounts").status_code == 401


def test_a_login_rotates_the_csrf_token(client: FlaskClient) -> None:
    before = form_token(client)
    login(client)
    assert logout_token(client) != before


def test_an_explicit_language_survives_the_login(client: FlaskClient) -> None:
    document = page_of(client.get("/admin?lang=zh"))
    assert document.find("form", id="login", action="/admin/login?lang=zh")
    response = login(client, query="?lang=zh")
    assert response.headers["Location"] == "/admin?lang=zh"
    # The switch always leads to the page, never to the POST-only login URL.
    refused = page_of(login(client, WRONG_KEY, "?lang=zh"))
    assert {a["href"] for a in refused.find("a") if "data-switch-lang" in a} == {"/admin?lang=en", "/admin?lang=zh"}


# --- the key stays secret -------------------------------------------------------------------


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__}")


def test_the_key_never_leaves_in_answers_or_logs(enabled_app: Flask) -> None:
    records = Records()
    logger = logging.getLogger("gateway")
    logger.addHandler(records)
    try:
        client = enabled_app.test_client()
        answers = [
            client.get("/admin"),
            client.get("/admin?lang=zh"),
            client.post("/admin/login", data={"key": WRONG_KEY, "csrf": form_token(client)}),
            client.post("/admin/login", data={"key": WRONG_KEY}),
            client.post("/admin/login?lang=zh", data={"key": KEY, "csrf": form_token(client)}),
            login(client),
            client.get("/admin"),
            client.get("/admin/accounts"),
            client.get("/admin", headers={"Authorization": f"Bearer {KEY}"}),
            client.get("/admin/accounts", headers={"X-Admin-Key": KEY}),
            client.get("/admin/accounts", headers={"X-Admin-Key": KEY[:-1]}),
            client.post("/admin/logout"),
            client.post("/admin/logout", data={"csrf": logout_token(client)}),
        ]
    finally:
        logger.removeHandler(records)
    assert any(a.status_code == 303 for a in answers) and any(a.status_code == 200 for a in answers)
    for answer in answers:
        assert_no_store(answer)
        # Nor a wrong key typed into the form: a near miss is most of the key.
        for secret in (KEY, WRONG_KEY, KEY[:-1]):
            assert secret not in answer.get_data(as_text=True)
            assert secret not in str(answer.headers)
    assert records.lines, "expected at least the access log lines"
    assert not [line for line in records.lines if KEY in line]


def test_settings_keep_the_key_out_of_their_repr() -> None:
    assert KEY not in repr(Settings.from_env({"GATEWAY_ADMIN_KEY": KEY}))


# --- the page ---------------------------------------------------------------------------------

#: How each language is asked for: (query, Accept-Language).
ASKED: dict[str, tuple[str, str | None]] = {
    "en-default": ("", None),
    "en-query": ("?lang=en", "zh-CN,zh;q=0.9"),
    "zh-query": ("?lang=zh", None),
    "zh-header": ("", "zh-CN,zh;q=0.9,en;q=0.8"),
}
DASHBOARD_HEADINGS = ("admin.title", "admin.accounts.title", "admin.code.title", "admin.keys.title", "admin.chart.title")


@pytest.mark.parametrize("asked", ASKED)
def test_the_page_is_in_the_language_asked_for(client: FlaskClient, asked: str) -> None:
    lang: Lang = "zh" if asked.startswith("zh") else "en"
    other: Lang = "en" if lang == "zh" else "zh"
    query, accept_language = ASKED[asked]
    headers = {"X-Admin-Key": KEY, **({"Accept-Language": accept_language} if accept_language else {})}
    response = client.get("/admin" + query, headers=headers)
    assert response.headers["Content-Language"] == {"en": "en", "zh": "zh-CN"}[lang]
    assert f'<html lang="{response.headers["Content-Language"]}">' in response.get_data(as_text=True)
    document = page_of(response)
    assert document.headings() == [text(key, lang) for key in DASHBOARD_HEADINGS]
    assert not set(document.headings()) & {text(key, other) for key in DASHBOARD_HEADINGS}
    assert document.texts["mode"] == text("admin.mode.keys", lang)
    assert "Accept-Language" in response.headers["Vary"]
    # The login form too.
    form = page_of(client.get("/admin" + query, headers={"Accept-Language": accept_language or ""}))
    assert form.headings() == [text("admin.login.title", lang)]


def test_english_page_has_no_chinese_and_chinese_page_no_english_headings(client: FlaskClient) -> None:
    english = client.get("/admin", headers={"X-Admin-Key": KEY}).get_data(as_text=True)
    body = english.split("<body>", 1)[1].replace("中文", "")  # the switch names Chinese in Chinese
    assert not HAN.search(body)
    chinese = page_of(client.get("/admin?lang=zh", headers={"X-Admin-Key": KEY}))
    assert all(HAN.search(h) for h in chinese.headings())


def dashboard(client: FlaskClient, query: str = "") -> Document:
    response = client.get("/admin" + query, headers={"X-Admin-Key": KEY})
    assert response.status_code == 200
    return page_of(response)


def test_every_account_is_shown(client: FlaskClient) -> None:
    html = client.get("/admin", headers={"X-Admin-Key": KEY}).get_data(as_text=True)
    document = Document(html)
    rows = document.find("tr", data_source="server") + document.find("tr", data_source="client")
    assert [row["data-key"] for row in rows] == ["acc-7f3a", "acc-91c2", "acc-0b11"]
    assert [row["data-state"] for row in rows] == ["busy", "cooling", "dead"]
    for label in ("1846…3921", "2203…0077", "eyJh…Qssw", ">1200<", ">87.50<", ">42<", "matrix", "session"):
        assert label in html, label
    # Last error with its time and how long ago (relative to generated_at), credits' reading time.
    assert "AccountInUse: the account is busy &lt;elsewhere&gt;" in html
    assert "<elsewhere>" not in html, "overview text must be escaped"
    assert '<time datetime="2026-01-01T11:59:15Z">11:59:15 UTC</time> <span class="ago">45 s ago</span>' in html
    assert ">11:55:00 UTC</time> <span class=\"ago\">5 min ago</span>" in html
    assert ">2025-12-31 11:00:00 UTC</time> <span class=\"ago\">1 d ago</span>" in html
    assert html.count(text("admin.unknown", "en")) == 1  # the dead account's credits


def test_every_key_is_shown(client: FlaskClient) -> None:
    html = client.get("/admin", headers={"X-Admin-Key": KEY}).get_data(as_text=True)
    document = Document(html)
    assert [row["data-id"] for row in document.find("tr") if "data-id" in row] == ["k-3f9a1c", "k-88d0e2"]
    for shown in ("laptop", ">ci<", ">118<", ">30<", "12 s ago"):
        assert shown in html, shown
    assert html.count(">unlimited<") == 2  # ci: no rpm, no concurrency limit
    assert html.count(">never<") == 1  # ci was never used


def test_states_and_sources_are_translated(client: FlaskClient) -> None:
    html = client.get("/admin?lang=zh", headers={"X-Admin-Key": KEY}).get_data(as_text=True)
    for key in ("admin.state.busy", "admin.state.cooling", "admin.state.dead", "admin.source.server",
                "admin.source.client", "admin.never", "admin.unlimited"):
        assert f">{text(key, 'zh')}<" in html, key
    assert "45 秒前" in html


def test_empty_overview_shows_empty_states(enabled_app: Flask, client: FlaskClient,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    set_overview(enabled_app, monkeypatch, EMPTY_OVERVIEW)
    for lang in LANGS:
        document = dashboard(client, f"?lang={lang}")
        assert document.texts["accounts-empty"] == text("admin.accounts.empty", lang)
        assert document.texts["keys-empty"] == text("admin.keys.empty", lang)
        assert document.texts["chart-empty"] == text("admin.chart.empty", lang)
        assert document.texts["mode"] == text("admin.mode.personal", lang)
        assert not document.find("table")
        for series in admin.SERIES:  # the chart is still drawn, flat on the x axis
            assert {y for _, y in points(document, series)} == {admin.PLOT_BOTTOM}


def test_a_full_overview_has_no_empty_states(client: FlaskClient) -> None:
    document = dashboard(client)
    assert not {"accounts-empty", "keys-empty", "chart-empty"} & set(document.texts)


def test_the_chart_draws_both_series(client: FlaskClient) -> None:
    document = dashboard(client)
    (svg,) = document.find("svg", id="traffic-chart")
    assert svg["role"] == "img"
    ceiling = admin.y_scale(max(REQUESTS))[1]
    for series, values in (("requests", REQUESTS), ("errors", ERRORS)):
        drawn = points(document, series)
        assert len(drawn) == 60
        xs = [x for x, _ in drawn]
        assert xs == sorted(xs) and len(set(xs)) == 60, "oldest first, left to right"
        assert xs[0] == admin.PLOT_LEFT and xs[-1] == admin.PLOT_RIGHT
        # Each y is the value on the same scale for both series (higher value, higher up).
        for (_, y), value in zip(drawn, values, strict=True):
            expected = admin.PLOT_BOTTOM - (admin.PLOT_BOTTOM - admin.PLOT_TOP) * value / ceiling
            assert y == pytest.approx(expected, abs=0.06)
    peak = min(range(60), key=lambda i: points(document, "requests")[i][1])
    assert peak == REQUESTS.index(max(REQUESTS))


def test_the_chart_has_axis_labels_and_a_legend(client: FlaskClient) -> None:
    html = client.get("/admin", headers={"X-Admin-Key": KEY}).get_data(as_text=True)
    svg = html[html.index("<svg"):html.index("</svg>")]
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert ["45 min ago", "30 min ago", "15 min ago", "now"] == [t for t in texts if "ago" in t or t == "now"]
    assert {"0", "5", "10", "15", "20"} <= set(texts), texts  # 1-2-5 steps up to the peak of 17
    assert text("admin.chart.axis", "en") in texts
    assert f"Requests ({sum(REQUESTS)})" in texts and f"Errors ({sum(ERRORS)})" in texts
    assert re.search(r'data-legend="requests"', svg) and re.search(r'data-legend="errors"', svg)
    # Each minute can be read by hovering it.
    assert "<title>12:00 UTC: requests: 2, errors: 0</title>" in svg
    assert "<title>11:52 UTC: requests: 17, errors: 3</title>" in svg


def test_the_page_loads_nothing_from_elsewhere(client: FlaskClient) -> None:
    response = client.get("/admin", headers={"X-Admin-Key": KEY})
    html = response.get_data(as_text=True)
    assert not re.findall(r"https?://", html)
    assert "<script" not in html and "<link rel=\"stylesheet\"" not in html and "@import" not in html
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


# --- the formatting helpers -------------------------------------------------------------------


@pytest.mark.parametrize(("elapsed", "en", "zh"), [
    (0.2, "just now", "刚刚"), (-30, "just now", "刚刚"), (1, "1 s ago", "1 秒前"), (59.9, "59 s ago", "59 秒前"),
    (60, "1 min ago", "1 分钟前"), (3599, "59 min ago", "59 分钟前"), (3600, "1 h ago", "1 小时前"),
    (86_399, "23 h ago", "23 小时前"), (86_400 * 3 + 5, "3 d ago", "3 天前"),
])
def test_ago(elapsed: float, en: str, zh: str) -> None:
    assert admin.ago(GENERATED - elapsed, GENERATED, "en") == en
    assert admin.ago(GENERATED - elapsed, GENERATED, "zh") == zh


def test_clock_is_utc_with_the_date_only_on_another_day() -> None:
    assert admin.clock(GENERATED + 3723.9) == "13:02:03 UTC"
    assert admin.clock(GENERATED - 13 * 3600, GENERATED) == "2025-12-31 23:00:00 UTC"
    assert admin.clock(GENERATED - 11 * 3600, GENERATED) == "01:00:00 UTC"
    assert admin.moment(None, GENERATED, "en") is None


@pytest.mark.parametrize(("peak", "step", "top"), [
    (0, 1, 1), (1, 1, 1), (3, 1, 3), (4, 1, 4), (5, 2, 6), (7, 2, 8), (17, 5, 20), (100, 50, 100), (101, 50, 150),
])
def test_y_scale_uses_1_2_5_steps(peak: int, step: int, top: int) -> None:
    assert admin.y_scale(peak) == (step, top)


def test_number_drops_a_useless_fraction() -> None:
    assert [admin.number(v) for v in (1200, 1200.0, 87.5, 0.125, None)] == ["1200", "1200", "87.50", "0.12", ""]


def test_a_short_series_is_padded_at_the_oldest_end() -> None:
    chart = admin.build_chart({"minute": 60.0, "requests": [1, 2], "errors": []}, GENERATED, "en")
    requests, errors = (line.points.split() for line in chart.lines)
    assert len(requests) == len(errors) == 2
    assert chart.peak == 2 and chart.lines[0].total == 3 and chart.lines[1].total == 0
    assert len(admin.build_chart({}, GENERATED, "en").buckets) == admin.DEFAULT_POINTS


# --- in a real browser ------------------------------------------------------------------------


class QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        pass  # the test output has no use for request lines


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    """The admin app served over HTTP on a loopback port."""
    port = free_port()
    server: BaseWSGIServer = make_server("127.0.0.1", port, make_app(KEY), threaded=True,
                                         request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="admin-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    binary = require(CHROMIUM, "chromium")
    with tempfile.TemporaryDirectory(prefix="admin-chromium-") as tmp:
        chromium = Chromium(binary, Path(tmp) / "profile", ARTIFACTS / "chromium-admin.log")
        try:
            yield chromium
        finally:
            chromium.stop()


@pytest.fixture
def page(browser: Chromium) -> Iterator[Page]:
    tab = browser.new_page()
    tab.viewport(1280, 1400)
    try:
        yield tab
    finally:
        tab.close()


def shows_dashboard(page: Page) -> bool:
    return bool(page.evaluate("!!document.querySelector('#accounts') && !!document.querySelector('#traffic-chart')"))


def shows_login(page: Page) -> bool:
    return bool(page.evaluate("!!document.querySelector('form#login input[type=password]')"))


def assert_clean(page: Page, base: str) -> None:
    # The login form is a 401 by design, and Chromium logs any 4xx document as a failed
    # load: that one line (for the page itself, nothing else) is expected.
    refused = re.compile(r"log: Failed to load resource: the server responded with a status of 401 "
                         + re.escape(f"(UNAUTHORIZED) {base}/admin") + r"(/login)?(\?lang=\w+)?")
    assert [error for error in page.errors() if not refused.fullmatch(error)] == []
    foreign = [url for url in page.requested_urls() if not url.startswith((base + "/", "data:"))]
    assert foreign == [], "the page loaded something from elsewhere"


def submit(page: Page, selector: str) -> None:
    page.events.clear()
    page.click(selector)
    page.wait_event("Page.loadEventFired")


def test_browser_without_the_key_sees_the_login_form(page: Page, base: str) -> None:
    page.goto(base + "/admin")
    assert shows_login(page) and not shows_dashboard(page)
    assert_clean(page, base)
    page.screenshot(ARTIFACTS / "admin-login.png")


def test_browser_logs_in_with_the_form_and_out_again(page: Page, base: str) -> None:
    page.goto(base + "/admin?lang=zh")
    page.evaluate(f"document.querySelector('#admin-key').value = {WRONG_KEY!r}")
    submit(page, "form#login button[type=submit]")
    assert shows_login(page)
    assert page.evaluate("document.querySelector('#login-refused').textContent") == text("admin.login.refused", "zh")
    page.evaluate(f"document.querySelector('#admin-key').value = {KEY!r}")
    submit(page, "form#login button[type=submit]")
    assert page.evaluate("location.pathname + location.search") == "/admin?lang=zh"
    assert shows_dashboard(page)
    assert page.evaluate("document.cookie") == "", "the session cookie must be HttpOnly"
    assert_clean(page, base)
    page.goto(base + "/admin")  # the cookie, not the form, opens it now
    assert shows_dashboard(page)
    submit(page, "form#logout button")
    assert shows_login(page)
    page.goto(base + "/admin")
    assert shows_login(page)


@pytest.mark.parametrize("lang", LANGS)
def test_browser_with_the_key_header_sees_the_dashboard(page: Page, base: str, lang: Lang) -> None:
    page.send("Network.setExtraHTTPHeaders", headers={"X-Admin-Key": KEY})
    page.goto(f"{base}/admin?lang={lang}")
    assert shows_dashboard(page)
    assert page.evaluate("document.documentElement.lang") == {"en": "en", "zh": "zh-CN"}[lang]
    assert page.evaluate("document.querySelectorAll('#accounts tbody tr').length") == 3
    assert page.evaluate("document.querySelectorAll('#keys tbody tr').length") == 2
    # Both lines are really drawn: as wide as the plot, with some height for requests.
    boxes = page.evaluate("[...document.querySelectorAll('polyline')].map((p) => { const b = p.getBBox();"
                          " return [p.dataset.series, Math.round(b.width), Math.round(b.height)]; })")
    assert [box[0] for box in boxes] == ["requests", "errors"]
    assert all(box[1] == admin.PLOT_RIGHT - admin.PLOT_LEFT for box in boxes)
    assert boxes[0][2] > 0
    assert_clean(page, base)
    page.screenshot(ARTIFACTS / ("admin.png" if lang == "en" else f"admin-{lang}.png"))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_browser_page_is_readable_and_fits_a_phone(page: Page, base: str, scheme: str) -> None:
    page.send("Network.setExtraHTTPHeaders", headers={"X-Admin-Key": KEY})
    page.color_scheme(scheme)
    page.goto(base + "/admin")
    assert page.evaluate(CONTRAST_SCRIPT) == []
    page.viewport(390, 844, mobile=True)
    page.goto(base + "/admin")
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"
    assert page.evaluate(CONTRAST_SCRIPT) == []
    page.screenshot(ARTIFACTS / f"admin-mobile-{scheme}.png")
