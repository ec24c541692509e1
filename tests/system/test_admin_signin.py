"""MiniMax Code accounts on the admin page: the device login, the listing, the log-out.

Over Flask's test client (the real app, the simulator as every MiniMax host): the sign-in
routes are 404 without an admin key and 401 without the admin's login; a started login
keeps its device code and verifier on the server (the page and the poll JSON show the
user code and links only); the login's page allows its one script by a nonce and keeps
the admin page's policy otherwise; each poll call runs at most one upstream poll, never
before the interval (slow_down lengthens it) and never two at once; denial and expiry end
the login; the JSON listing shows region, state and quota without a token; a spent
quota says until when; a log-out removes the account.

End to end in headless Chromium against a gunicorn gateway and the simulator: the admin
logs in with the form, starts a device login on the page, the simulator's control API
approves the user code, the page's script sees it through and the dashboard lists the
account with its region, token expiry, quota and state; once MiniMax revokes the sign-in
the maintenance round marks it dead and the page says "log in again"; meanwhile /metrics
shows its quota and credits by account key. Screenshots go to
``test-artifacts/admin-signin*.png``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from gateway.app import build_app
from gateway.config import Settings
from gateway.i18n import text
from gateway.system import admin_signin
from gateway.upstream import constants as C
from gateway.upstream.credentials import signin_key
from gateway.upstream.oauth import TokenPair
from tests.deploy.debian import require
from tests.servers import ARTIFACTS, start_gateway
from tests.simulator.control import SimulatorControl
from tests.system.browser import Chromium, Page

pytestmark = pytest.mark.timeout(900)

KEY = "admin-key-for-the-signin-tests-42"
CHROMIUM = "/usr/bin/chromium"
ADMIN = {"X-Admin-Key": KEY}
#: Seconds the browser test waits for the page (or the maintenance round) to get somewhere.
WAIT_SECONDS = 30.0


def hosts(simulator_url: str) -> dict[str, str]:
    return {"MINIMAX_BASE_URL": simulator_url, "MINIMAX_ACCOUNT_BASE_URL": simulator_url,
            "MINIMAX_CODE_BASE_URL": simulator_url, "MINIMAX_QUOTA_BASE_URL": simulator_url}


@pytest.fixture(scope="module")
def app(simulator_url: str) -> Flask:
    return build_app(Settings.from_env({"GATEWAY_ADMIN_KEY": KEY, **hosts(simulator_url)}))


@pytest.fixture
def client(app: Flask, sim: SimulatorControl) -> FlaskClient:
    sim.code_config(interval=1)
    return app.test_client()


def start(client: FlaskClient, **form: str) -> str:
    """Start a login as the admin; the login's page path."""
    response = client.post("/admin/signin/start", data=form, headers=ADMIN)
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"]


def login_id(path: str) -> str:
    found = re.search(r"/admin/signin/([A-Za-z0-9_-]+)", path)
    assert found
    return found.group(1)


def poll(client: FlaskClient, path: str) -> dict[str, Any]:
    response = client.post(f"/admin/signin/{login_id(path)}/poll", headers=ADMIN)
    assert response.status_code == 200
    answer: dict[str, Any] = response.get_json()
    return answer


def poll_until(client: FlaskClient, path: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        answer = poll(client, path)
        if done(answer):
            return answer
        time.sleep(0.25)
    raise AssertionError("the login never got there")


def user_code(sim: SimulatorControl) -> str:
    pending = [d for d in sim.code_devices() if d["verdict"] == "pending"]
    assert pending
    return str(pending[-1]["user_code"])


@pytest.mark.parametrize(("method", "path"), [("POST", "/admin/signin/start"), ("GET", "/admin/signin/abc"),
                                              ("POST", "/admin/signin/logout")])
def test_without_an_admin_key_the_routes_do_not_exist(simulator_url: str, method: str, path: str) -> None:
    off = build_app(Settings.from_env(hosts(simulator_url))).test_client()
    assert off.open(path, method=method).status_code == 404


@pytest.mark.parametrize(("method", "path"), [("POST", "/admin/signin/start"), ("GET", "/admin/signin/abc"),
                                              ("POST", "/admin/signin/abc/poll"), ("POST", "/admin/signin/logout"),
                                              ("GET", "/admin/signin/accounts")])
def test_without_the_admins_login_they_refuse(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method, headers={"X-Admin-Key": KEY[:-1] + "x"})
    assert response.status_code == 401
    assert response.headers["Cache-Control"] == "no-store"


def test_the_page_shows_the_code_and_link_but_keeps_the_secrets(client: FlaskClient, sim: SimulatorControl,
                                                                app: Flask) -> None:
    path = start(client)
    page = client.get(path, headers=ADMIN)
    html = page.get_data(as_text=True)
    code = user_code(sim)
    assert page.status_code == 200 and code in html and "/oauth-authorize?user_code=" in html
    pending = admin_signin.PendingLogin.loads(app.extensions["gateway.state"].get(
        admin_signin.PENDING_KEY + login_id(path)))
    assert pending is not None and pending.auth.device_code and pending.auth.code_verifier
    assert pending.auth.device_code not in html and pending.auth.code_verifier not in html
    policy = page.headers["Content-Security-Policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce and f'<script nonce="{nonce.group(1)}">' in html
    assert policy.startswith("default-src 'none'; style-src 'unsafe-inline'") and "unsafe-eval" not in policy
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert 'src="data:image/svg+xml' in html  # the QR code of the link
    answer = poll(client, path)
    assert answer["status"] == "pending" and answer["message"] == text("admin.code.login.pending", "en")
    assert pending.auth.device_code not in str(answer)


def test_polls_never_outrun_the_interval(client: FlaskClient, sim: SimulatorControl) -> None:
    sim.code_config(interval=5)
    path = start(client)
    before = sim.code_stats().get("token_polls", 0)
    for _ in range(5):
        assert poll(client, path)["status"] == "pending"
    assert sim.code_stats().get("token_polls", 0) == before  # the first is due after 5 s


def test_an_approved_login_adds_the_account_with_its_quota(client: FlaskClient, sim: SimulatorControl,
                                                           app: Flask) -> None:
    (account,) = sim.add_code_accounts(1, quota=600, quota_left=450)
    path = start(client, name="carol")
    sim.approve_device(user_code(sim), account=account["name"])
    answer = poll_until(client, path, lambda a: a["status"] != "pending")
    assert answer == {"status": "ok", "name": "carol", "message": text("admin.code.login.ok", "en", name="carol")}
    rows = {row.name: row for row in admin_signin_rows(app)}
    assert rows["carol"].region == "cn" and rows["carol"].state == "ok"
    quota = rows["carol"].quota
    assert quota is not None and quota.percent == 25.0
    page = client.get("/admin", headers=ADMIN).get_data(as_text=True)
    assert 'data-name="carol"' in page and "25% used" in page
    listed = client.get("/admin/signin/accounts", headers=ADMIN)
    (row,) = [row for row in listed.get_json()["accounts"] if row["name"] == "carol"]
    assert row["region"] == "cn" and row["state"] == "ok" and row["quota"]["percent"] == 25.0
    assert row["quota"]["exhausted"] is False and row["quota"]["plan_tier"] == "plus"
    tokens = app.extensions["gateway.signins"].get("carol").tokens
    assert tokens.access_token not in listed.get_data(as_text=True)
    assert tokens.refresh_token not in listed.get_data(as_text=True)
    assert poll(client, path)["status"] == "expired"  # the login is over
    logout = client.post("/admin/signin/logout", data={"name": "carol"}, headers=ADMIN)
    assert logout.status_code == 303 and logout.headers["Location"].startswith("/admin")
    assert "carol" not in {row.name for row in admin_signin_rows(app)}
    assert client.post("/admin/signin/logout", data={"name": "carol"}, headers=ADMIN).status_code == 404


def admin_signin_rows(app: Flask) -> list[admin_signin.CodeAccount]:
    with app.test_request_context("/admin"):
        return admin_signin.code_accounts()


@pytest.mark.parametrize(("deny", "status"), [(True, "denied"), (False, "expired")])
def test_denial_and_expiry_end_the_login(client: FlaskClient, sim: SimulatorControl, deny: bool, status: str) -> None:
    if not deny:
        sim.code_config(interval=1, device_expires_in=2)
    path = start(client)
    if deny:
        sim.approve_device(user_code(sim), deny=True)
    answer = poll_until(client, path, lambda a: a["status"] != "pending")
    assert answer["status"] == status and answer["message"] == text(f"admin.code.login.{status}", "en")


def test_bad_input_is_a_clear_400(client: FlaskClient) -> None:
    assert client.post("/admin/signin/start", data={"region": "mars"}, headers=ADMIN).status_code == 400
    assert client.post("/admin/signin/start", data={"name": "a b"}, headers=ADMIN).status_code == 400
    assert client.get("/admin/signin/" + "z" * 30, headers=ADMIN).status_code == 404


def test_a_listed_dead_account_says_log_in_again(client: FlaskClient, app: Flask) -> None:
    signins = app.extensions["gateway.signins"]
    signins.add("dave", "global", TokenPair("mmoat_" + "d" * 54, "mmort_" + "d" * 54, time.time() + 3600,
                                             "agent.default"))
    state = app.extensions["gateway.state"]
    raw = state.records("signin")["dave"]
    state.add_record("signin", "dave", raw.replace('"state": "ok"', '"state": "dead"'))
    page = client.get("/admin?lang=zh", headers=ADMIN).get_data(as_text=True)
    row = re.search(r'<tr data-name="dave".*?</tr>', page, re.S)
    assert row and 'data-state="dead"' in row.group(0) and text("admin.code.state.dead", "zh") in row.group(0)
    assert 'data-region="global"' in row.group(0)
    signins.remove("dave")


# --- end to end in a browser ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(simulator_url: str) -> Iterator[str]:
    proc, url = start_gateway(simulator_url, "gateway-admin-signin", {
        "GATEWAY_ADMIN_KEY": KEY, "GATEWAY_SWEEP_INTERVAL": "1", "GATEWAY_CREDITS_INTERVAL": "1"})
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    binary = require(CHROMIUM, "chromium")
    with tempfile.TemporaryDirectory(prefix="admin-signin-chromium-") as tmp:
        chromium = Chromium(binary, Path(tmp) / "profile", ARTIFACTS / "chromium-admin-signin.log")
        try:
            yield chromium
        finally:
            chromium.stop()


@pytest.fixture
def tab(browser: Chromium) -> Iterator[Page]:
    page = browser.new_page()
    page.viewport(1280, 1400)
    try:
        yield page
    finally:
        page.close()


def submit(page: Page, selector: str) -> None:
    page.events.clear()
    page.click(selector)
    page.wait_event("Page.loadEventFired")


def wait_for(page: Page, expression: str, timeout: float = WAIT_SECONDS, reload: bool = False) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        if reload:
            page.goto(page.evaluate("location.href"))
        else:
            time.sleep(0.25)
    raise AssertionError(f"never true: {expression}")


def wait_for_text(url: str, wanted: str) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        body = requests.get(url, timeout=10).text
        if wanted in body:
            return body
        time.sleep(0.5)
    raise AssertionError(f"{url} never showed {wanted}")


def row_of(name: str) -> str:
    selector = '#code-accounts tr[data-name="' + name + '"]'
    return f"document.querySelector({json.dumps(selector)})"


def test_browser_device_login_from_the_admin_page(tab: Page, gateway: str, sim: SimulatorControl) -> None:
    sim.code_config(interval=1)
    (account,) = sim.add_code_accounts(1, quota=600, quota_left=450)
    tab.goto(gateway + "/admin")
    tab.evaluate(f"document.querySelector('#admin-key').value = {KEY!r}")
    submit(tab, "form#login button[type=submit]")
    tab.evaluate("document.querySelector('#code-name').value = 'erin'")
    submit(tab, "#code-login-start")
    assert tab.evaluate("location.pathname").startswith("/admin/signin/")
    code = tab.evaluate("document.querySelector('#user-code').textContent.trim()")
    assert code == user_code(sim)
    assert tab.evaluate("document.querySelector('#verification-link').href").endswith(f"user_code={code}")
    tab.screenshot(ARTIFACTS / "admin-signin-code.png")
    sim.approve_device(code, account=account["name"])
    wait_for(tab, "document.querySelector('#signin').dataset.state === 'ok'")
    assert tab.evaluate("document.querySelector('#signin-status').textContent") == \
        text("admin.code.login.ok", "en", name="erin")
    assert [error for error in tab.errors() if "401" not in error] == []  # the script ran under the policy
    submit(tab, "#signin-done a")
    assert tab.evaluate("location.pathname") == "/admin"
    row = tab.evaluate("(() => { const r = " + row_of("erin") + "; return r && {state: r.dataset.state,"
                       " region: r.dataset.region, expires: r.querySelector('.expires time').getAttribute('datetime'),"
                       " quota: r.querySelector('.quota').textContent.replace(/\\s+/g, ' ').trim()}; })()")
    assert row["state"] == "ok" and row["region"] == "cn" and row["expires"].endswith("Z")
    assert "5 h: 25% used" in row["quota"]
    tab.screenshot(ARTIFACTS / "admin-signin-listed.png")
    # The maintenance round keeps the reading in the metrics too, by account key (no secret).
    key = signin_key("erin")
    gauge = f'gateway_account_quota_used_percent{{account="{key}",window="interval"}} 25.0'
    metrics = wait_for_text(gateway + "/metrics", gauge)
    assert f'gateway_account_credits{{account="{key}"}} 4.5' in metrics
    assert str(account["access_token"]) not in metrics and str(account["refresh_token"]) not in metrics
    # MiniMax revokes the sign-in: the next maintenance round finds it refused, for good.
    sim.patch_code_account(account["name"], expire_access=True, revoke=True)
    wait_for(tab, f"{row_of('erin')}?.dataset.state === 'dead'", reload=True)
    assert tab.evaluate(f"{row_of('erin')}.querySelector('.state').textContent") == \
        text("admin.code.state.dead", "en")
    tab.screenshot(ARTIFACTS / "admin-signin-dead.png")
    submit(tab, "#code-accounts tr[data-name='erin'] form.code-logout button")
    assert tab.evaluate(row_of("erin")) is None


def test_a_spent_quota_is_shown_with_its_reset(client: FlaskClient, sim: SimulatorControl, app: Flask) -> None:
    (account,) = sim.add_code_accounts(1, quota=100, quota_left=0)
    path = start(client, name="heidi")
    sim.approve_device(user_code(sim), account=account["name"])
    assert poll_until(client, path, lambda a: a["status"] != "pending")["status"] == "ok"
    page = client.get("/admin", headers=ADMIN).get_data(as_text=True)
    row = re.search(r'<tr data-name="heidi".*?</tr>', page, re.S)
    assert row and 'data-state="ok"' in row.group(0) and "quota used up until" in row.group(0)
    assert client.post("/admin/signin/logout", data={"name": "heidi"}, headers=ADMIN).status_code == 303


def test_slow_down_lengthens_the_interval(client: FlaskClient, sim: SimulatorControl) -> None:
    sim.code_config(interval=1, slow_down_once=True)
    path = start(client)
    answer = poll_until(client, path, lambda a: a.get("interval", 1) > 1)
    assert answer["status"] == "pending" and answer["interval"] == 1 + C.DEVICE_SLOW_DOWN_STEP
    polls = sim.code_stats()["token_polls"]
    assert poll(client, path)["status"] == "pending"
    assert sim.code_stats()["token_polls"] == polls  # the next poll waits the longer interval


def test_concurrent_polls_run_one_step(client: FlaskClient, sim: SimulatorControl, app: Flask) -> None:
    path = start(client)
    polls = sim.code_stats().get("token_polls", 0)
    state = app.extensions["gateway.state"]
    key = admin_signin.PENDING_KEY + login_id(path)
    pending = admin_signin.PendingLogin.loads(state.get(key))
    assert pending is not None
    state.put(key, dataclasses.replace(pending, next_poll_at=0.0).dumps())  # due now
    sim.fault("code_token", "hang", count=6, seconds=0.5)  # each poll takes a while: they would overlap
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: poll(app.test_client(), path), range(6)))
    assert {answer["status"] for answer in answers} == {"pending"}
    assert sim.code_stats()["token_polls"] == polls + 1


def test_an_account_host_failure_is_a_page_saying_so(client: FlaskClient, sim: SimulatorControl) -> None:
    sim.fault("code_device", "http_500")
    response = client.post("/admin/signin/start", data={}, headers={**ADMIN, "Accept-Language": "zh"})
    html = response.get_data(as_text=True)
    assert response.status_code >= 500 and response.mimetype == "text/html"
    assert 'id="signin-error"' in html and "MiniMax 的账号服务器没能发起登录" in html
    assert "<script" not in html


def test_a_browsers_signin_posts_need_their_csrf_token(client: FlaskClient) -> None:
    from tests.system.test_admin import login, logout_token, page_of

    assert login(client, KEY).status_code == 303  # a browser session (cookie), no header key
    assert client.post("/admin/signin/start", data={"region": "cn"}).status_code == 403
    assert client.post("/admin/signin/logout", data={"name": "nobody"}).status_code == 403
    token = logout_token(client)
    forms = page_of(client.get("/admin")).find("input", name="csrf")
    assert len(forms) >= 2 and {field["value"] for field in forms} == {token}  # the login form carries it too
    started = client.post("/admin/signin/start", data={"region": "cn", "csrf": token})
    assert started.status_code == 303
    path = started.headers["Location"]
    assert client.post(f"/admin/signin/{login_id(path)}/poll").status_code == 403
    page = client.get(path).get_data(as_text=True)
    assert f'data-csrf="{token}"' in page  # what the page's script sends as X-CSRF-Token
    answer = client.post(f"/admin/signin/{login_id(path)}/poll", headers={"X-CSRF-Token": token})
    assert answer.status_code == 200 and answer.get_json()["status"] == "pending"
