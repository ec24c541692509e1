"""Reading the web app build's signing constants from its own page and script bundle
(gateway/upstream/bundle.py), without network: a fake fetch serves the pages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.upstream import bundle as B
from gateway.upstream.settings import BundleSettings
from gateway.upstream.signing import CAPTURED_CONSTANTS, WebConstants

PAGE = "https://agent.minimaxi.com/"
ROTATED = WebConstants("Zq9!rotated#Salt%2026", "tailv", "33333")

# Minified the two ways builds write them: template literals, and Babel's .concat chains.
TEMPLATE_JS = (
    'let c={device_platform:"web",biz_id:"3",app_id:"3001",version_code:"33333",unix:t};'
    'function s(e){let{body:n,headers:r}=e,a=Math.floor(Date.now()/1e3);'
    'return r["x-signature"]=o()(`${a}Zq9!rotated#Salt%2026${n||""}`),r}'
    'function r0(e){let{hasSearchParamsPath:t,bodyToYY:r,method:n,time:a,body:l}=e,u="{}";'
    'return o()(`${encodeURIComponent(t)}_${u}${o()(a.toString())}tailv`)}'
)
CONCAT_JS = (
    'var q={"version_code":"33333"};'
    'h["x-signature"]=p()("".concat(x,"Zq9!rotated#Salt%2026").concat(b));'
    'function r0(e){var t=e.hasSearchParamsPath,a=e.time,l="{}";'
    'var s="".concat(encodeURIComponent(t),"_").concat(l).concat(p()(a.toString()),"tailv");return p()(s)}'
)


@pytest.mark.parametrize("script", [TEMPLATE_JS, CONCAT_JS], ids=["template", "concat"])
def test_extract_finds_the_three_constants(script: str) -> None:
    assert B.extract(script) == {"salt": ROTATED.salt, "yy_suffix": "tailv", "version_code": "33333"}


def test_extract_ignores_what_has_not_their_shape() -> None:
    script = ('r["x-signature"]=o()(`${a}short${n}`);'  # too short for a salt
              'let{hasSearchParamsPath:t}=e;return `${o()(a.toString())}has space`;version_code:"v2"')
    assert B.extract(script) == {}
    assert B.extract("nothing here") == {}


def test_script_urls_keep_the_own_origin_and_https_asset_hosts() -> None:
    html = ('<html><head><script src="/static/js/main.1.js"></script>'
            '<script defer src="https://cdn.hailuo.ai/assets/app.2.js"></script>'
            '<script src="http://cdn.hailuo.ai/assets/plain.js"></script>'
            '<script src="https://evil.example/x.js"></script><script>inline()</script>'
            '<script src="https://agent.minimaxi.com/static/js/main.1.js"></script></head></html>')
    assert B.script_urls(PAGE, html, ("cdn.hailuo.ai",)) == [
        "https://agent.minimaxi.com/static/js/main.1.js", "https://cdn.hailuo.ai/assets/app.2.js"]


class Site:
    """The web app's page and scripts, as a fake fetch serves them (counting requests)."""

    def __init__(self, script: str = TEMPLATE_JS) -> None:
        self.script = script
        self.fetched: list[str] = []
        self.down = False

    def __call__(self, url: str) -> tuple[int, bytes]:
        self.fetched.append(url)
        if self.down:
            raise OSError("refused")
        if url == PAGE:
            return 200, b'<script src="/static/js/vendor.js"></script><script src="/static/js/main.js"></script>'
        if url.endswith("/main.js"):
            return 200, self.script.encode()
        return 200, b"(function(){})();"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Store:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def put(self, key: str, value: str, ttl: float | None = None) -> None:
        self.data[key] = value


def live(site: Site, refresh: bool = True, store: Any = None, clock: Clock | None = None,
         **options: Any) -> B.LiveConstants:
    settings = BundleSettings(refresh=refresh, refresh_interval=3600.0, **options)
    return B.LiveConstants(settings, PAGE.rstrip("/"), site, store, clock or Clock())


def test_refresh_off_fetches_nothing() -> None:
    site = Site()
    constants = live(site, refresh=False)
    assert constants.current() == CAPTURED_CONSTANTS
    assert constants.after_refusal(CAPTURED_CONSTANTS) is False
    assert site.fetched == []
    assert {o.source for o in constants.origins().values()} == {"default"}


def test_settings_are_named_as_such() -> None:
    constants = live(Site(), refresh=False, constants=WebConstants(yy_suffix="abcd"), configured=frozenset({"yy_suffix"}))
    origins = constants.origins()
    assert origins["yy_suffix"].source == "setting" and origins["salt"].source == "default"
    assert origins["salt"].age(1_800_000_000.0) > 100 * 86400  # the captures' date
    assert origins["yy_suffix"].age(1_800_000_000.0) is None


def test_refresh_on_reads_the_bundle_once_per_interval() -> None:
    site, clock = Site(), Clock()
    constants = live(site, clock=clock)
    assert constants.current() == ROTATED
    assert site.fetched == [PAGE, "https://agent.minimaxi.com/static/js/vendor.js",
                            "https://agent.minimaxi.com/static/js/main.js"]
    origin = constants.origins()["salt"]
    assert origin.source == "bundle" and origin.script.endswith("/main.js") and origin.age(clock.now + 5) == 5
    clock.now += 3599
    constants.current()
    assert len(site.fetched) == 3
    clock.now += 2
    site.script = TEMPLATE_JS.replace("tailv", "newtail")
    assert constants.current().yy_suffix == "newtail" and len(site.fetched) == 6


@pytest.mark.parametrize("breakage", ["down", "no constants", "page 500"])
def test_a_failed_reading_keeps_the_constants_and_waits_before_trying_again(breakage: str) -> None:
    site, clock = Site(), Clock()
    if breakage == "down":
        site.down = True
    elif breakage == "no constants":
        site.script = "console.log(1)"
    constants = live(site, clock=clock, constants=WebConstants(yy_suffix="abcd"))
    if breakage == "page 500":
        constants = B.LiveConstants(BundleSettings(refresh=True, constants=WebConstants(yy_suffix="abcd")),
                                    PAGE, lambda url: (site.fetched.append(url) or (500, b"")), None, clock)
    assert constants.current() == WebConstants(yy_suffix="abcd")
    tried = len(site.fetched)
    clock.now += B.RETRY_AFTER_FAILURE - 1
    constants.current()
    assert len(site.fetched) == tried
    clock.now += 2
    constants.current()
    assert len(site.fetched) > tried


def test_a_refused_signature_reads_the_bundle_again_at_once() -> None:
    site, clock = Site(TEMPLATE_JS.replace("tailv", "oldtail")), Clock()
    constants = live(site, clock=clock)
    signed_with = constants.current()
    site.script = TEMPLATE_JS
    assert constants.after_refusal(signed_with) is True and constants.current() == ROTATED
    fetched = len(site.fetched)
    assert constants.after_refusal(signed_with) is True  # another caller's refusal: already changed
    assert len(site.fetched) == fetched
    assert constants.after_refusal(ROTATED) is False  # the new ones refused too: read once more
    fetched = len(site.fetched)
    assert constants.after_refusal(ROTATED) is False  # and again at once: not read again
    assert len(site.fetched) == fetched


def test_workers_share_one_reading_through_the_shared_state() -> None:
    store, clock = Store(), Clock()
    first, second = Site(), Site()
    assert live(first, store=store, clock=clock).current() == ROTATED
    assert json.loads(store.data[B.STORE_KEY])["version_code"] == "33333"
    other = live(second, store=store, clock=clock)
    assert other.current() == ROTATED and second.fetched == []
    assert other.origins()["salt"].source == "bundle"


def test_a_malformed_shared_reading_is_ignored() -> None:
    store = Store()
    store.data[B.STORE_KEY] = json.dumps({"salt": "x", "yy_suffix": "tailv", "version_code": "1", "read_at": 1})
    site = Site()
    assert live(site, store=store).current() == ROTATED and site.fetched


def test_a_second_rotation_soon_after_the_first_is_followed_too() -> None:
    site, clock = Site(), Clock()
    constants = live(site, clock=clock)
    first = constants.current()
    site.script = TEMPLATE_JS.replace("tailv", "second")
    assert constants.after_refusal(first) is True
    clock.now += 1
    site.script = TEMPLATE_JS.replace("tailv", "third")
    assert constants.after_refusal(constants.current()) is True and constants.current().yy_suffix == "third"
