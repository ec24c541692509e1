"""The homepage (``GET /``) as a newcomer sees it: rendered by headless Chromium (from
the Debian package, installed on first use) from a real gunicorn gateway, in English
and in Chinese (most browser tests run once per language).

What is checked: no console errors or failed loads (and the detector itself is shown to
catch one); no request leaves the server's own origin and no src/href points anywhere
but the server and agent.minimaxi.com; every client example is in the DOM with this
server's own address, and the Python and curl ones, copied exactly as the copy button
copies them, really work against the server; the copy buttons put the block on the
clipboard (with and without the asynchronous clipboard API); the endpoint list is
exactly the app's registered routes; text is readable (WCAG contrast) in light and dark
schemes, and nothing overflows a phone-width screen. The languages: each page is in
its own language only (headings, steps and endpoint lines), the examples are the same
in both, the switch leads to the same place in the other language, and
``Accept-Language`` picks the page when ``?lang=`` does not. Screenshots are kept under
``test-artifacts/`` (homepage.png, homepage-dark.png, homepage-mobile.png,
homepage-mobile-dark.png, and the same with ``-zh`` for Chinese) for a human look; a
Chinese font (fonts-wqy-microhei) is installed for them when possible.

``HEAD /``, the JSON variant for API clients, the Host-derived address and the language
negotiation (``?lang=``, ``Accept-Language``, ``Vary``) are checked over plain HTTP.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from gateway import create_app
from gateway.config import Settings
from gateway.i18n import LANGS, Lang, text
from tests.deploy.debian import require
from tests.servers import ARTIFACTS
from tests.system.browser import Chromium, Page

# The first run may install Chromium from the Debian archive.
# the page does not depend on the upstream surface (and each
# surface tripled the slowest browser suite): the tests with a gateway run on one.
pytestmark = [pytest.mark.timeout(900), pytest.mark.surfaces("session")]


CHROMIUM = "/usr/bin/chromium"
#: A small Chinese font, so the Chinese screenshots show characters rather than boxes.
CJK_FONT = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "fonts-wqy-microhei")
#: Where each language's page is reached: English is the default.
PAGE_PATHS: dict[Lang, str] = {"en": "/", "zh": "/?lang=zh"}
#: The html lang attribute of each language's page.
HTML_LANGS: dict[Lang, str] = {"en": "en", "zh": "zh-CN"}
HAN = re.compile(r"[\u4e00-\u9fff]")
#: The only absolute URL the page may link to besides its own server.
ALLOWED_LINK = "https://agent.minimaxi.com"
KEY_PLACEHOLDER = "REALUSERID+JWT"
#: Each example block (by data-example name) and text it must contain; {base} is the
#: server's own address as the browser reached it.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "openai": ('base_url="{base}/v1"', f'api_key="{KEY_PLACEHOLDER}"'),
    "anthropic": ('base_url="{base}"', f'api_key="{KEY_PLACEHOLDER}"'),
    "genai": ('http_options=types.HttpOptions(base_url="{base}")', f'api_key="{KEY_PLACEHOLDER}"'),
    "claude-code": ("ANTHROPIC_BASE_URL={base}\n", f'ANTHROPIC_AUTH_TOKEN="{KEY_PLACEHOLDER}"',
                    "ANTHROPIC_MODEL=", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1"),
    "gemini-cli": ("GOOGLE_GEMINI_BASE_URL={base}\n", f'GEMINI_API_KEY="{KEY_PLACEHOLDER}"'),
    "codex": (f'MINIMAX_API_KEY="{KEY_PLACEHOLDER}"', "\ncodex"),
    "codex-config": ('base_url = "{base}/v1"', 'wire_api = "responses"', 'printf %s \\"$MINIMAX_API_KEY\\"'),
    "agents": ('base_url="{base}/v1"', f'api_key="{KEY_PLACEHOLDER}"', "OpenAIResponsesModel"),
    "chatbox": ("{base}/v1", KEY_PLACEHOLDER),
    "dify": ("{base}/v1", KEY_PLACEHOLDER),
    "curl": ("curl -N {base}/v1/chat/completions", f"Bearer {KEY_PLACEHOLDER}"),
    "base": ("{base}",),
}
#: Blocks that hold no address (a settings file).
SETTINGS_BLOCKS: dict[str, tuple[str, ...]] = {
    "gemini-settings": ('{"security": {"auth": {"selectedType": "gemini-api-key"}}}',),
}
#: Examples run as copied; each prints the simulator's default answer.
RUNNABLE: dict[str, list[str]] = {
    "openai": [sys.executable, "-c"],
    "anthropic": [sys.executable, "-c"],
    "genai": [sys.executable, "-c"],
    "agents": [sys.executable, "-c"],
    "curl": ["sh", "-c"],
}
EXAMPLE_RUN_TIMEOUT_SECONDS = 60
#: Seconds a copy button may take to confirm.
COPY_TIMEOUT_SECONDS = 5.0
MIN_CONTRAST_NORMAL = 4.5  # WCAG AA, body text
MIN_CONTRAST_LARGE = 3.0  # WCAG AA, large or bold headings

# WCAG contrast of every element that holds visible text of its own, against the first
# opaque background up its ancestors; returns the failures.
CONTRAST_SCRIPT = """(() => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c || "");
    if (!m) { return null; }
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c && c.a > 0) { return c; }
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const failures = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(el);
    if (!own || !el.getClientRects().length || style.visibility !== "visible") { continue; }
    const [hi, lo] = [lum(parse(style.color)), lum(background(el))].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const large = size >= 24 || (size >= 18.66 && bold);
    if (ratio < (large ? %s : %s)) {
      failures.push(`${el.tagName.toLowerCase()}.${el.className} ${ratio.toFixed(2)}: ${el.textContent.trim().slice(0, 40)}`);
    }
  }
  return failures;
})()""" % (MIN_CONTRAST_LARGE, MIN_CONTRAST_NORMAL)

LINKS_SCRIPT = """[...document.querySelectorAll("[src], [href], [action], [srcset], [poster], [data]")]
  .flatMap((el) => ["src", "href", "action", "srcset", "poster", "data"]
    .filter((name) => el.hasAttribute(name))
    .map((name) => ({tag: el.tagName.toLowerCase(), attr: name, value: el.getAttribute(name)})))"""


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_binary() -> Path:
    return require(CHROMIUM, "chromium")


@pytest.fixture(scope="session")
def cjk_font() -> bool:
    """Installs the Chinese font when possible; the tests pass without it (boxes only)."""
    try:
        require(*CJK_FONT)
    except pytest.skip.Exception:
        return False
    return True


@pytest.fixture(scope="module")
def browser(chromium_binary: Path, cjk_font: bool) -> Iterator[Chromium]:
    with tempfile.TemporaryDirectory(prefix="homepage-chromium-") as tmp:
        chromium = Chromium(chromium_binary, Path(tmp) / "profile", ARTIFACTS / "chromium.log")
        try:
            yield chromium
        finally:
            chromium.stop()


@pytest.fixture(scope="module")
def base(gateway_factory: Callable[..., str]) -> str:
    return gateway_factory()


@pytest.fixture
def page(browser: Chromium) -> Iterator[Page]:
    tab = browser.new_page()
    try:
        yield tab
    finally:
        tab.close()


@pytest.fixture(params=LANGS)
def lang(request: pytest.FixtureRequest) -> Lang:
    return request.param


@pytest.fixture
def homepage(page: Page, base: str, lang: Lang) -> Page:
    page.viewport(1280, 2000)
    page.goto(base + PAGE_PATHS[lang])
    return page


def artifact(name: str, lang: Lang) -> Path:
    """homepage-dark.png in English, homepage-dark-zh.png in Chinese."""
    return ARTIFACTS / (f"{name}.png" if lang == "en" else f"{name}-{lang}.png")


@pytest.fixture(scope="module")
def registered_rules() -> dict[str, set[str]]:
    """The app's own routes (rule -> methods), built here independently of the page."""
    app = create_app(Settings())
    return {
        rule.rule: set(rule.methods or ()) - {"HEAD", "OPTIONS"}
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
    }


def blocks(page: Page) -> dict[str, str]:
    """Every example block's text, exactly what its copy button copies."""
    return page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('pre[data-example]')]"
        ".map((el) => [el.dataset.example, el.textContent]))"
    )


# --- the browser's view ------------------------------------------------------------


def test_error_detector_catches_a_page_error(page: Page) -> None:
    # Proves the console check below can fail: a broken script must be reported.
    page.goto("data:text/html,<p>broken</p><script>missingFunction()</script>")
    assert any("missingFunction" in error for error in page.errors())


def test_homepage_loads_cleanly_and_offline(homepage: Page, base: str, lang: Lang) -> None:
    assert homepage.evaluate("document.title") == "MiniMax Free API"
    assert homepage.evaluate("document.documentElement.lang") == HTML_LANGS[lang]
    assert homepage.errors() == []
    foreign = [url for url in homepage.requested_urls() if not url.startswith((base + "/", "data:"))]
    assert foreign == [], "the page loaded something from elsewhere"
    homepage.screenshot(artifact("homepage", lang))


def test_no_external_links_or_assets(homepage: Page, base: str, lang: Lang) -> None:
    links = homepage.evaluate(LINKS_SCRIPT)
    assert links, "expected at least the agent.minimaxi.com link"
    for link in links:
        value = link["value"]
        local = value.startswith(("#", "data:")) or (value.startswith("/") and not value.startswith("//"))
        own = urlsplit(value).netloc == urlsplit(base).netloc
        assert local or own or value.startswith(ALLOWED_LINK), f"external {link}"
    assert homepage.evaluate("document.querySelectorAll('script[src], link[rel=stylesheet]').length") == 0
    styles = homepage.evaluate("[...document.querySelectorAll('style')].map((s) => s.textContent).join('')")
    assert "@import" not in styles and "url(" not in styles
    source = requests.get(base + PAGE_PATHS[lang], timeout=10).text
    for url in set(re.findall(r"https?://[^\s\"'<>)]+", source)):
        assert url.startswith((base, ALLOWED_LINK)), f"absolute URL {url} in the page source"


def test_every_example_uses_this_servers_address(homepage: Page, base: str) -> None:
    found = blocks(homepage)
    for name, needles in {**EXAMPLES, **SETTINGS_BLOCKS}.items():
        assert name in found, f"example {name!r} is missing"
        for needle in needles:
            assert needle.replace("{base}", base) in found[name], f"{name}: {needle!r} not in {found[name]!r}"
    assert set(found) == set(EXAMPLES) | set(SETTINGS_BLOCKS), "an example without a test entry"
    buttons = homepage.evaluate("[...document.querySelectorAll('button[data-copy]')].map((b) => b.dataset.copy)")
    assert sorted(buttons) == sorted(found), "every block needs exactly one copy button"


@pytest.mark.parametrize("name", sorted(RUNNABLE))
def test_copied_example_runs(homepage: Page, credential: str, name: str) -> None:
    if RUNNABLE[name][0] == "sh" and shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    code = blocks(homepage)[name].replace(KEY_PLACEHOLDER, credential)
    done = subprocess.run([*RUNNABLE[name], code], capture_output=True, text=True,
                          timeout=EXAMPLE_RUN_TIMEOUT_SECONDS)
    assert done.returncode == 0, done.stderr
    # The simulator's default answer echoes the prompt: "Simulated answer to: Hello! ...".
    assert "Simulated answer to: Hello!" in _printed_answer(name, done.stdout), done.stdout


def _printed_answer(name: str, stdout: str) -> str:
    if name != "curl":
        return stdout
    # curl prints the raw stream: join the content deltas of its SSE frames.
    frames = [line[6:] for line in stdout.splitlines() if line.startswith("data: ") and line != "data: [DONE]"]
    chunks = [json.loads(frame) for frame in frames]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def _wait_for_label(page: Page, selector: str, label: str) -> None:
    deadline = time.monotonic() + COPY_TIMEOUT_SECONDS
    script = f"document.querySelector({json.dumps(selector)}).textContent"
    while page.evaluate(script) != label:
        assert time.monotonic() < deadline, f"{selector} never said {label!r}"
        time.sleep(0.05)


def test_copy_buttons_fill_the_clipboard(homepage: Page, base: str, lang: Lang) -> None:
    homepage.send("Browser.grantPermissions", origin=base,
                  permissions=["clipboardReadWrite", "clipboardSanitizedWrite"])
    homepage.send("Emulation.setFocusEmulationEnabled", enabled=True)
    texts = blocks(homepage)
    copied = text("page.copied", lang)
    homepage.click('button[data-copy="openai"]')
    _wait_for_label(homepage, 'button[data-copy="openai"]', copied)
    assert homepage.evaluate("navigator.clipboard.readText()") == texts["openai"]
    # Plain http on a non-local host has no clipboard API: the fallback must copy too.
    homepage.evaluate("Object.defineProperty(navigator, 'clipboard', {value: undefined, configurable: true})")
    homepage.click('button[data-copy="curl"]')
    _wait_for_label(homepage, 'button[data-copy="curl"]', copied)
    homepage.evaluate("delete navigator.clipboard")
    assert homepage.evaluate("navigator.clipboard.readText()") == texts["curl"]
    assert homepage.errors() == []


def test_endpoint_list_is_the_registered_routes(homepage: Page, lang: Lang,
                                               registered_rules: dict[str, set[str]]) -> None:
    rows = homepage.evaluate(
        "[...document.querySelectorAll('#endpoint-list tbody tr')].map((tr) => ({rule: tr.dataset.rule,"
        " methods: [...tr.querySelectorAll('.method')].map((m) => m.textContent),"
        " path: tr.querySelector('td.path').textContent, help: tr.querySelector('td.help').textContent}))"
    )
    shown = {row["rule"]: set(row["methods"]) for row in rows}
    assert shown == registered_rules
    assert len(rows) == len(shown), "a route is listed twice"
    for row in rows:
        # Readable paths keep every literal part of the rule and name every parameter.
        literal = re.sub(r"<[^>]+>", "\0", row["rule"]).split("\0")
        assert all(part in row["path"] for part in literal), row
        assert "<" not in row["path"], row
        # Every route is explained, in the page's language.
        assert row["help"].strip(), row
        assert bool(HAN.search(row["help"])) == (lang == "zh"), row


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_readable_in_both_color_schemes(homepage: Page, lang: Lang, scheme: str) -> None:
    homepage.color_scheme(scheme)
    body = homepage.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(v) for v in re.findall(r"\d+", body)[:3]]
    assert (sum(channels) / 3 > 200) if scheme == "light" else (sum(channels) / 3 < 60), body
    assert homepage.evaluate(CONTRAST_SCRIPT) == []
    if scheme == "dark":
        homepage.screenshot(artifact("homepage-dark", lang))


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("lang", LANGS)
def test_fits_a_phone_screen(page: Page, base: str, lang: Lang, scheme: str) -> None:
    page.viewport(390, 844, mobile=True)
    page.color_scheme(scheme)
    page.goto(base + PAGE_PATHS[lang])
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"
    assert page.evaluate(CONTRAST_SCRIPT) == []
    page.screenshot(artifact("homepage-mobile" if scheme == "light" else "homepage-mobile-dark", lang))


# --- the two languages ---------------------------------------------------------------

#: Visible text of the page outside the language switch, by kind of element.
TEXTS_SCRIPT = """(() => {
  const texts = (selector) => [...document.querySelectorAll(selector)]
    .filter((el) => !el.closest("#lang-switch, pre"))
    .map((el) => el.innerText.trim()).filter(Boolean);
  return {headings: texts("h1, h2, h3, th"), prose: texts("p, li, td.help, button"),
          labels: [...document.querySelectorAll("[aria-label]")].map((el) => el.getAttribute("aria-label")),
          all: (() => { const body = document.body.cloneNode(true);
                        body.querySelectorAll("#lang-switch, script").forEach((el) => el.remove());
                        return [body.textContent]; })()};
})()"""


def test_each_page_is_in_its_own_language(homepage: Page, lang: Lang) -> None:
    found = homepage.evaluate(TEXTS_SCRIPT)
    if lang == "en":
        chinese = [t for t in found["all"] + found["labels"] if HAN.search(t)]
        assert chinese == [], "Chinese on the English page"
        return
    # Names (the h1, example titles such as "OpenAI SDK (Python)") stay as they are;
    # every sentence and section heading is Chinese.
    h2 = homepage.evaluate("[...document.querySelectorAll('h2')].map((el) => el.innerText)")
    untranslated = [t for t in h2 + found["prose"] + found["labels"] if not HAN.search(t)]
    assert untranslated == [], "English left on the Chinese page"


def test_examples_are_the_same_in_both_languages(page: Page, base: str) -> None:
    found = {}
    for lang in LANGS:
        page.goto(base + PAGE_PATHS[lang])
        found[lang] = blocks(page)
    assert found["en"] == found["zh"]


def _html_lang(page: Page) -> str:
    return page.evaluate("document.documentElement.lang")


def _follow(page: Page, selector: str) -> None:
    page.events.clear()
    page.click(selector)
    page.wait_event("Page.loadEventFired")


def test_the_switch_leads_to_the_same_place_in_the_other_language(page: Page, base: str) -> None:
    page.viewport(1280, 900)
    page.goto(base + "/?utm=keep#endpoints")
    assert _html_lang(page) == "en"
    _follow(page, 'a[data-switch-lang="zh"]')
    assert _html_lang(page) == "zh-CN"
    where = page.evaluate("[location.pathname, location.search, location.hash]")
    assert where == ["/", "?utm=keep&lang=zh", "#endpoints"]
    assert page.evaluate("document.querySelector('a[aria-current]').dataset.switchLang") == "zh"
    _follow(page, 'a[data-switch-lang="en"]')
    assert _html_lang(page) == "en"
    assert page.evaluate("location.search") == "?utm=keep&lang=en"
    assert page.errors() == []


def test_the_browsers_language_chooses_the_page(page: Page, base: str) -> None:
    page.send("Network.setExtraHTTPHeaders", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    page.goto(base + "/")
    assert _html_lang(page) == "zh-CN"
    page.goto(base + "/?lang=en")  # the switch's choice beats the browser's
    assert _html_lang(page) == "en"
    assert page.errors() == []


# --- plain HTTP ----------------------------------------------------------------------


def test_head_answers_200(base: str) -> None:
    # Claude Code probes the base URL with HEAD before it starts.
    response = requests.head(base + "/", timeout=10)
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("accept", ["application/json", "application/json, text/plain, */*"])
def test_json_for_clients_that_prefer_it(base: str, accept: str, registered_rules: dict[str, set[str]]) -> None:
    response = requests.get(base + "/", headers={"Accept": accept}, timeout=10)
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"name": "MiniMax Free API", "endpoints": sorted(registered_rules)}


@pytest.mark.parametrize("accept", [None, "*/*", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                                    "text/html, application/json;q=0.5"])
def test_html_for_browsers_and_ties(base: str, accept: str | None) -> None:
    response = requests.get(base + "/", headers={"Accept": accept}, timeout=10)
    assert response.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(("query", "accept_language", "content_language"), [
    ("", None, "en"),
    ("", "zh-CN,zh;q=0.9", "zh-CN"),
    ("", "en-US,en;q=0.9,zh;q=0.8", "en"),
    ("?lang=zh", None, "zh-CN"),
    ("?lang=en", "zh-CN", "en"),
    ("?lang=xx", "zh", "zh-CN"),
])
def test_language_negotiation(base: str, query: str, accept_language: str | None, content_language: str) -> None:
    response = requests.get(base + "/" + query, headers={"Accept-Language": accept_language}, timeout=10)
    assert response.headers["Content-Language"] == content_language
    assert f'<html lang="{content_language}">' in response.text
    vary = {part.strip() for part in response.headers["Vary"].split(",")}
    assert {"Accept", "Accept-Language"} <= vary


def test_examples_follow_the_address_the_client_used(base: str) -> None:
    # Behind a proxy that passes the Host header on, the page shows what the user typed.
    page = requests.get(base + "/", headers={"Host": "gateway.example:8443"}, timeout=10).text
    assert 'base_url="http://gateway.example:8443/v1"' in page
    assert urlsplit(base).netloc not in page
