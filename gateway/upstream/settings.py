"""Typed settings of the upstream package, built by :mod:`gateway.config` (which alone
holds the defaults). The derived values are worked out once, not on every signed call."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.upstream import constants as C
from gateway.upstream.signing import CAPTURED_CONSTANTS, SigningVariant, WebConstants


@dataclass(frozen=True)
class PollSettings:
    """How the matrix driver paces its polls of get_chat_detail."""

    first: float
    steady: float
    idle: float


# -- the web app build's signing constants and their refresh from its bundle ----------------
@dataclass(frozen=True)
class BundleSettings:
    """The signing constants to start from, and whether (and how often) to read them from
    the web app's own script bundle (:mod:`gateway.upstream.bundle`)."""

    constants: WebConstants = CAPTURED_CONSTANTS
    #: Which constants the operator set: source "setting" rather than "default".
    configured: frozenset[str] = frozenset()
    refresh: bool = False
    refresh_interval: float = 6 * 3600.0
    #: Hosts besides the base URL's that may serve the bundle's scripts (HTTPS only).
    asset_hosts: tuple[str, ...] = C.BUNDLE_ASSET_HOSTS


@dataclass(frozen=True)
class UpstreamSettings:
    """How to reach, sign for and converse with the upstream."""

    base_url: str
    stream_base_url: str
    signing: SigningVariant
    connect_timeout: float
    read_timeout: float
    pool_size: int
    surface: str
    surface_ttl: float
    session_prefixes: tuple[str, ...]
    session_cleanup: str
    agent_role: str
    stream_idle_timeout: float
    locale: tuple[str, str] | None
    renew_before: float
    matrix_model_option: bool
    poll: PollSettings
    bundle: BundleSettings = BundleSettings()

    @functools.cached_property
    def stream_url(self) -> str:
        """The stream host: given, else the API host with ``agent.`` → ``agent-stream.``."""
        if self.stream_base_url:
            return self.stream_base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        host = parts.netloc
        if host.startswith("agent."):
            host = "agent-stream." + host[len("agent."):]
        return f"{parts.scheme}://{host}"

    @functools.cached_property
    def region_lang(self) -> tuple[str, str]:
        """``(region, lang)``: the override, else what the site in use expects."""
        if self.locale is not None:
            return self.locale
        host = (urlsplit(self.base_url).hostname or "").lower()
        return next((pair for suffix, pair in C.SITE_LOCALES if host.endswith(suffix)),
                    C.DEFAULT_LOCALE)


@dataclass(frozen=True)
class CodeSettings:
    """How to reach the MiniMax Code surface and its account hosts (UPSTREAM-CODE.md §0),
    built by :meth:`gateway.config.Settings.code`."""

    region: str  # "cn" | "global"
    account_url: str  # OAuth host
    code_url: str  # LLM and catalogue host
    quota_url: str  # open platform host (coding_plan/remains)
    matrix_url: str  # account and billing calls (the web API host)
    client_id: str
    refresh_before: float
    user_agent: str
    probe_web_tokens: bool
    connect_timeout: float
    read_timeout: float
    catalogue_ttl: float

