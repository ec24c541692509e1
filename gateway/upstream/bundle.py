"""The web app build's signing constants: where they come from, and their refresh from
the web app's own script bundle.

The x-signature salt, the yy suffix and the query's ``version_code`` live in the web
app's minified JavaScript and may change with any build (``shared/UPSTREAM-SESSION.md``,
addendum). They start as settings (defaulting to the captured build's); with the refresh
on, :class:`LiveConstants` reads them the way other public clients do: it fetches the
app's page at the base URL, follows its ``<script src>`` tags (same origin, or HTTPS on
the configured asset hosts), and finds the salt in the template of the ``x-signature``
header, the suffix after the hash of ``hasSearchParamsPath``, and ``version_code`` in the
common query parameters (template-literal and ``.concat`` minifications both). Values
must have the shape of such constants, and all three must be found; otherwise nothing
changes and the failure is logged. A refresh runs when the interval has passed (on the
next signed call, by one caller while the others go on with the values in force) and
when the upstream refuses a signature; the shared state, when given, lets the workers
and hosts share one reading.
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Final, Protocol
from urllib.parse import urljoin, urlsplit

from gateway.upstream import constants as C
from gateway.upstream.settings import BundleSettings
from gateway.upstream.signing import WebConstants

log = logging.getLogger(__name__)

NAMES: Final = ("salt", "yy_suffix", "version_code")
SOURCES: Final = ("default", "setting", "bundle")
#: Where a reading is kept in the shared state.
STORE_KEY: Final = "web-constants"
STORE_TTL: Final = 30 * 86400.0
#: Scripts of the page read at most (the real page names a handful).
MAX_SCRIPTS: Final = 12
#: After a failed reading, the next try waits this long (or the interval, if shorter).
RETRY_AFTER_FAILURE: Final = 300.0
#: A refused signature triggers a reading at most this often.
REFUSAL_GAP: Final = 30.0
#: How far after its marker a constant may sit in the minified text.
SALT_WINDOW: Final = 300
SUFFIX_WINDOW: Final = 800

_LITERAL = r"([^\s\"'`${}\\]{%d,%d})"
_SALT_PATTERNS: Final = (
    re.compile(r"`\$\{[^{}`]{1,60}\}" + _LITERAL % (6, 80) + r"\$\{"),  # `${t}SALT${n}`
    re.compile(r"\.concat\([^,()]{1,60},\s*[\"']" + _LITERAL % (6, 80) + r"[\"']\)\s*\.concat\("),
)
_SUFFIX_PATTERNS: Final = (
    re.compile(r"toString\(\)\)\}" + _LITERAL % (2, 32) + "`"),  # ${md5(a.toString())}ooui`
    re.compile(r"toString\(\)\)\s*,\s*[\"']" + _LITERAL % (2, 32) + r"[\"']\)"),
)
_VERSION_PATTERN: Final = re.compile(r"[\"']?version_code[\"']?\s*:\s*[\"']?([0-9]{3,12})\b")
_SHAPES: Final = {"salt": re.compile(_LITERAL % (6, 80)), "yy_suffix": re.compile(_LITERAL % (2, 32)),
                  "version_code": re.compile(r"[0-9]{3,12}")}

#: ``fetch(url) -> (status, body)``, with the client's timeouts and transport errors.
Fetch = Callable[[str], tuple[int, bytes]]


class Store(Protocol):
    """The shared state's key-value part (see :class:`gateway.upstream.identity.TokenStore`)."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str, ttl: float | None = None) -> None: ...


# -- reading a bundle (pure) --------------------------------------------------------------
def valid(name: str, value: str) -> bool:
    """Whether ``value`` has the shape of the constant ``name``."""
    return _SHAPES[name].fullmatch(value) is not None


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        source = dict(attrs).get("src")
        if tag == "script" and source:
            self.sources.append(source)


def script_urls(page_url: str, html: str, asset_hosts: tuple[str, ...]) -> list[str]:
    """The page's script URLs that may be read: its own origin's, or HTTPS on an asset host."""
    parser = _Scripts()
    parser.feed(html)
    own = urlsplit(page_url)
    allowed = []
    for source in parser.sources:
        url = urljoin(page_url, source)
        parts = urlsplit(url)
        same_origin = (parts.scheme, parts.netloc) == (own.scheme, own.netloc)
        on_asset_host = parts.scheme == "https" and (parts.hostname or "") in asset_hosts
        if (same_origin or on_asset_host) and url not in allowed:
            allowed.append(url)
    return allowed[:MAX_SCRIPTS]


def _near(script: str, marker: str, window: int, patterns: tuple[re.Pattern[str], ...]) -> str | None:
    at = script.find(marker)
    while at >= 0:
        region = script[at : at + window]
        for pattern in patterns:
            found = pattern.search(region)
            if found:
                return found.group(1)
        at = script.find(marker, at + 1)
    return None


def extract(script: str) -> dict[str, str]:
    """The constants one script shows (each checked for its shape)."""
    found = {
        "salt": _near(script, "x-signature", SALT_WINDOW, _SALT_PATTERNS),
        "yy_suffix": _near(script, "hasSearchParamsPath", SUFFIX_WINDOW, _SUFFIX_PATTERNS),
        "version_code": (match.group(1) if (match := _VERSION_PATTERN.search(script)) else None),
    }
    return {name: value for name, value in found.items() if value is not None and valid(name, value)}


# -- the constants in force ---------------------------------------------------------------
@dataclass(frozen=True)
class Origin:
    """Where the constants in force come from, for the doctor."""

    source: str  # one of SOURCES, for all three (a reading replaces all three at once)
    read_at: float | None = None  # epoch seconds of the bundle reading
    script: str = ""  # the script they were read from

    def age(self, now: float) -> float | None:
        """Seconds since the values were obtained (the captures' date for the defaults)."""
        if self.read_at is not None:
            return max(0.0, now - self.read_at)
        if self.source == "default":
            return max(0.0, now - calendar.timegm(time.strptime(C.CONSTANTS_CAPTURED_AT, "%Y-%m-%d")))
        return None


@dataclass(frozen=True)
class _Reading:
    constants: WebConstants
    read_at: float
    script: str

    def dump(self) -> str:
        return json.dumps({"salt": self.constants.salt, "yy_suffix": self.constants.yy_suffix,
                           "version_code": self.constants.version_code, "read_at": self.read_at,
                           "script": self.script})

    @classmethod
    def load(cls, text: str | None) -> _Reading | None:
        try:
            data = json.loads(text or "")
            values = {name: str(data[name]) for name in NAMES}
            reading = cls(WebConstants(**values), float(data["read_at"]), str(data.get("script", "")))
        except (ValueError, KeyError, TypeError):
            return None
        return reading if all(valid(name, values[name]) for name in NAMES) else None


class LiveConstants:
    """The signing constants in force for one process, refreshed from the bundle if asked."""

    def __init__(self, settings: BundleSettings, page_url: str, fetch: Fetch,
                 store: Store | None = None, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._page_url = page_url.rstrip("/") + "/"
        self._fetch = fetch
        self._store = store
        self._clock = clock
        self._constants = settings.constants
        self._origins = {name: Origin("setting" if name in settings.configured else "default")
                         for name in NAMES}
        self._next_at = 0.0  # with the refresh on, the first signed call reads the bundle
        #: The last reading a refusal forced: when, and for signatures made with what.
        self._forced: tuple[float, WebConstants] | None = None
        self._lock = threading.Lock()

    def current(self) -> WebConstants:
        """The constants to sign with now (reading the bundle first when it is due)."""
        if self.settings.refresh and self._clock() >= self._next_at and self._lock.acquire(blocking=False):
            try:
                if self._clock() >= self._next_at:
                    self._refresh()
            finally:
                self._lock.release()
        return self._constants

    def after_refusal(self, signed_with: WebConstants) -> bool:
        """The upstream refused a signature made with ``signed_with``: read the bundle again
        (for the same constants at most every :data:`REFUSAL_GAP` s: a refusal they do not
        explain must not fetch the bundle on every call). True when other constants are now
        in force."""
        if not self.settings.refresh:
            return False
        with self._lock:
            now, forced = self._clock(), self._forced
            recent = forced is not None and forced[1] == signed_with and now - forced[0] < REFUSAL_GAP
            if self._constants == signed_with and not recent:
                self._forced = (now, signed_with)
                self._refresh(forced=True)
            return self._constants != signed_with

    def origins(self) -> dict[str, Origin]:
        """Each constant's source and reading, for the doctor."""
        return dict(self._origins)

    # -- reading ------------------------------------------------------------------------
    def _refresh(self, forced: bool = False) -> None:
        """Adopt a newer reading from the shared state (one that differs, when a refusal
        forced this), else read the bundle; failures keep the constants in force and are
        logged."""
        now = self._clock()
        shared = self._shared()
        newest = max((o.read_at or 0.0 for o in self._origins.values()), default=0.0)
        if shared is not None and shared.read_at > newest and now - shared.read_at < self.settings.refresh_interval \
                and not (forced and shared.constants == self._constants):
            self._adopt(shared)
            self._next_at = shared.read_at + self.settings.refresh_interval
            return
        reading = self._read()
        if reading is None:
            self._next_at = now + min(RETRY_AFTER_FAILURE, self.settings.refresh_interval)
            return
        self._adopt(reading)
        self._next_at = now + self.settings.refresh_interval
        self._share(reading)

    def _adopt(self, reading: _Reading) -> None:
        changed = [name for name in NAMES
                   if getattr(reading.constants, name) != getattr(self._constants, name)]
        if changed:
            log.info("web signing constants changed (%s) per the web app's bundle %s; version_code %s",
                     ", ".join(changed), reading.script, reading.constants.version_code)
        self._constants = reading.constants
        self._origins = {name: Origin("bundle", reading.read_at, reading.script) for name in NAMES}

    def _read(self) -> _Reading | None:
        try:
            status, page = self._fetch(self._page_url)
            if status != 200:
                raise BundleUnreadable(f"the web app's page answered HTTP {status}")
            found: dict[str, str] = {}
            script = ""
            for url, text in self._scripts(page.decode("utf-8", "replace")):
                for name, value in extract(text).items():
                    if name not in found:
                        found[name] = value
                        script = url if name == "salt" else script
                if len(found) == len(NAMES):
                    return _Reading(WebConstants(**found), self._clock(), script)
            missing = ", ".join(name for name in NAMES if name not in found)
            raise BundleUnreadable(f"no {missing} found in the web app's scripts")
        except Exception as error:  # any failure keeps the constants in force
            log.warning("could not read the web signing constants from %s (%s); keeping the current ones",
                        self._page_url, error if isinstance(error, BundleUnreadable) else type(error).__name__)
            return None

    def _scripts(self, html: str) -> Iterator[tuple[str, str]]:
        for url in script_urls(self._page_url, html, self.settings.asset_hosts):
            status, body = self._fetch(url)
            if status == 200:
                yield url, body.decode("utf-8", "replace")

    def _shared(self) -> _Reading | None:
        if self._store is None:
            return None
        try:
            return _Reading.load(self._store.get(STORE_KEY))
        except Exception:  # the state is down: read the bundle ourselves
            log.warning("could not read the shared web signing constants")
            return None

    def _share(self, reading: _Reading) -> None:
        if self._store is None:
            return
        try:
            self._store.put(STORE_KEY, reading.dump(), STORE_TTL)
        except Exception:
            log.warning("could not share the web signing constants")


#: The setting that sets each constant (the doctor names it).
SETTINGS: Final = {"salt": "MINIMAX_SIGNING_SALT", "yy_suffix": "MINIMAX_YY_SUFFIX",
                   "version_code": "MINIMAX_VERSION_CODE"}


def describe(constants: LiveConstants, now: float | None = None) -> list[dict[str, object]]:
    """Each constant's source and age (seconds, None when unknown), for the doctor."""
    now = time.time() if now is None else now
    return [{"name": name, "source": origin.source, "age_seconds": origin.age(now),
             "setting": SETTINGS[name], "script": origin.script}
            for name, origin in constants.origins().items()]


class BundleUnreadable(Exception):
    """The page or its scripts did not yield the three constants (logged, never raised out)."""
