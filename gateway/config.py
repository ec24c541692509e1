"""Configuration: the only module that reads the environment.

:meth:`Settings.from_env` reads every setting once into a frozen dataclass; each field's
metadata names its variable and describes it, and the README's table lists the same
variables (a test keeps the two in step). Invalid values fail at start-up with a message
naming the variable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from gateway.chat.settings import ChatSettings, FetchSettings
from gateway.errors import ConfigError
from gateway.i18n import Lang, lang_from_env
from gateway.state import check_url as check_state_url
from gateway.upstream import constants as C
from gateway.upstream.bundle import valid as bundle_valid
from gateway.upstream.constants import DEFAULT_BASE_URL, SIGNATURE_MODES, UPSTREAM_MODELS
from gateway.upstream.settings import BundleSettings, CodeSettings, PollSettings, UpstreamSettings
from gateway.upstream.signing import CAPTURED_CONSTANTS, SigningVariant, WebConstants

LOG_FORMATS = ("plain", "json")
MIN_ADMIN_KEY_CHARS = 16
SWITCH = ("on", "off")
BINARY_SWITCH = ("1", "0")


def _setting(env: str, default: Any, help: str, secret: bool = False) -> Any:
    # Secrets stay out of the repr (and so out of any log or traceback that shows it).
    return field(default=default, repr=not secret, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Settings:
    bind: str = _setting("GATEWAY_BIND", "0.0.0.0:8000", "Address gunicorn listens on.")
    workers: int = _setting("GATEWAY_WORKERS", 1, "gunicorn worker processes (gevent).")
    worker_connections: int = _setting(
        "GATEWAY_WORKER_CONNECTIONS", 2000, "Concurrent connections (streams) per worker."
    )
    graceful_timeout: int = _setting(
        "GATEWAY_GRACEFUL_TIMEOUT", 60, "Seconds a stopping worker lets open streams finish."
    )
    log_level: str = _setting("GATEWAY_LOG_LEVEL", "info", "debug, info, warning or error.")
    log_format: str = _setting("GATEWAY_LOG_FORMAT", "plain", "`plain` text lines or `json` objects.")
    trusted_proxies: tuple[str, ...] = _setting(
        "GATEWAY_TRUSTED_PROXIES", (),
        "Peer addresses whose X-Forwarded-* headers are "
        "believed (e.g. 127.0.0.1 behind nginx).",
    )
    state: str = _setting(
        "GATEWAY_STATE", "",
        "Shared state (account leases, cooldowns, queue, kept chats, renewed tokens): `sqlite:///path/state.db` "
        "for the workers of one host, `redis://host:6379/0` for several hosts; unset: "
        "`sqlite:///<GATEWAY_DATA_DIR>/state.db`.",
    )
    data_dir: str = _setting(
        "GATEWAY_DATA_DIR", "",
        "Folder of what must outlive a restart (the SQLite state; gunicorn's control socket), made readable "
        "by its user only; unset: `$XDG_STATE_HOME/minimax-free-api` (`~/.local/state/minimax-free-api`).",
    )
    accounts_file: str = _setting(
        "GATEWAY_ACCOUNTS_FILE", "",
        "File of server-side MiniMax credentials, one per line (`#` comments); read again when it changes.",
    )
    server_credentials: str = _setting(
        "MINIMAX_CREDENTIALS", "", "Server-side MiniMax credentials, joined by `,` (beside the accounts file).",
        secret=True,
    )
    api_keys_file: str = _setting(
        "GATEWAY_API_KEYS_FILE", "",
        "File of client API keys, one per line: `KEY [name=..] [rpm=N] [concurrency=N]` (or `sha256:HEX`).",
    )
    api_keys: str = _setting(
        "GATEWAY_API_KEYS", "", "Client API keys as in the keys file, joined by `,`. With keys, "
        "requests must carry one and use the server-side accounts.", secret=True,
    )
    admin_key: str = _setting(
        "GATEWAY_ADMIN_KEY", "", "Key of `/admin` and `/admin/accounts`; unset: both are off (404).", secret=True
    )
    admin_session_ttl: float = _setting(
        "GATEWAY_ADMIN_SESSION_TTL", 28800.0,
        "Seconds an `/admin` login lasts (its cookie and its record in the shared state expire together).",
    )
    sweep_interval: float = _setting(
        "GATEWAY_SWEEP_INTERVAL", 60.0, "Seconds between two sweeps of orphaned upstream chats (and re-probes)."
    )
    credits_interval: float = _setting(
        "GATEWAY_CREDITS_INTERVAL", 600.0, "Seconds between two readings of an account's credits."
    )
    metrics_dir: str = _setting(
        "PROMETHEUS_MULTIPROC_DIR", "", "Where workers share metrics; deploy/gunicorn.conf.py makes one when unset."
    )
    base_url: str = _setting("MINIMAX_BASE_URL", DEFAULT_BASE_URL, "Upstream web API base URL.")
    signature: str = _setting(
        "MINIMAX_SIGNATURE", "bundle", "x-signature salt: `bundle` (current site) or `jwt` (older)."
    )
    surface: str = _setting(
        "MINIMAX_SURFACE", "auto",
        "Upstream chat surface: `auto` (MiniMax Code accounts use `code`; web tokens are probed), `code`, "
        "`session` or `matrix`."
    )
    stream_base_url: str = _setting(
        "MINIMAX_STREAM_BASE_URL", "",
        "Stream host of the session surface; default: the base URL with `agent.` → `agent-stream.`.",
    )
    session_prefixes: tuple[str, ...] = _setting(
        "MINIMAX_SESSION_PREFIXES", C.SESSION_PREFIXES, "Session API path prefixes, tried in turn by the probe."
    )
    surface_ttl: float = _setting(
        "MINIMAX_SURFACE_TTL", 3600.0, "Seconds a probed surface choice is kept."
    )
    session_cleanup: str = _setting(
        "MINIMAX_SESSION_CLEANUP", "archive", "What happens to finished sessions: `archive` or `delete`."
    )
    agent_role: str = _setting(
        "MINIMAX_AGENT_ROLE", "mavis",
        "Agent role to chat with on the session surface (else `general`, else the first).",
    )
    stream_idle_timeout: float = _setting(
        "MINIMAX_STREAM_IDLE_TIMEOUT", 60.0, "Seconds without any frame before a session stream is abandoned."
    )
    sign_op_ticket: str = _setting(
        "MINIMAX_SIGN_OP_TICKET", "on", "`on`: sign the browser's `op_ticket=undefined` pair (captured); `off`."
    )
    sign_empty_body: str = _setting(
        "MINIMAX_SIGN_EMPTY_BODY", "braces", "What yy signs for a body-less call: `braces` (`{}`, captured) or `empty`."
    )
    sign_region: str = _setting(
        "MINIMAX_SIGN_REGION", "session", "Which calls carry `region`: `session` calls (captured) or `all`."
    )
    sign_session_body: str = _setting(
        "MINIMAX_SIGN_SESSION_BODY", "string",
        "Session POST bodies signed re-encoded as a JSON `string` (captured) or `raw`.",
    )
    # -- the web app build's signing constants (gateway/upstream/bundle.py) ------------------
    signing_salt: str = _setting(
        "MINIMAX_SIGNING_SALT", C.BUNDLE_SALT, "x-signature salt of the web app's script bundle (the captured build's)."
    )
    yy_suffix: str = _setting(
        "MINIMAX_YY_SUFFIX", C.YY_SUFFIX, "Suffix of the text the `yy` header hashes (the captured build's)."
    )
    version_code: str = _setting(
        "MINIMAX_VERSION_CODE", C.VERSION_CODE, "The web app's `version_code` query value (the captured build's)."
    )
    bundle_refresh: str = _setting(
        "MINIMAX_BUNDLE_REFRESH", "off",
        "`on`: read the three values above from the web app's own script bundle (its page at the base URL) "
        "every MINIMAX_BUNDLE_REFRESH_INTERVAL and after a refused signature; `off` (also `0`/`1`).",
    )
    bundle_refresh_interval: float = _setting(
        "MINIMAX_BUNDLE_REFRESH_INTERVAL", 21600.0, "Seconds between two readings of the web app's bundle."
    )
    bundle_hosts: tuple[str, ...] = _setting(
        "MINIMAX_BUNDLE_HOSTS", C.BUNDLE_ASSET_HOSTS,
        "Hosts besides the base URL's whose (HTTPS) scripts the bundle reading may fetch.",
    )
    web_locale: str = _setting(
        "MINIMAX_WEB_LOCALE", "",
        "`region,lang` override of the web surfaces (e.g. `en,en`); default from the site: `cn,zh` "
        "on agent.minimaxi.com, `en,en` on agent.minimax.io.",
    )
    code_region: str = _setting(
        "MINIMAX_REGION", "cn",
        "MiniMax Code region: `cn` (mainland) or `global`; picks the account, code and quota hosts below.",
    )
    account_base_url: str = _setting(
        "MINIMAX_ACCOUNT_BASE_URL", "",
        "OAuth (device login) host; default per region: https://account.minimax.cn, https://account.minimax.io.",
    )
    code_base_url: str = _setting(
        "MINIMAX_CODE_BASE_URL", "",
        "MiniMax Code LLM and catalogue host; default per region: https://agent.minimax.cn, "
        "https://agent.minimax.io.",
    )
    quota_base_url: str = _setting(
        "MINIMAX_QUOTA_BASE_URL", "",
        "Token Plan quota host; default per region: https://www.minimaxi.com, https://platform.minimax.io.",
    )
    oauth_client_id: str = _setting(
        "MINIMAX_OAUTH_CLIENT_ID", C.OAUTH_CLIENT_ID, "OAuth client of the device login (the official client's)."
    )
    refresh_before: float = _setting(
        "MINIMAX_REFRESH_BEFORE", 300.0, "Refresh a signed-in account's access token this many seconds before expiry."
    )
    code_user_agent: str = _setting(
        "MINIMAX_CODE_USER_AGENT", C.GATEWAY_USER_AGENT,
        "User-Agent on the code surface and its account host; the official client sends `MiniMaxAgent`.",
    )
    catalogue_ttl: float = _setting(
        "MINIMAX_CATALOGUE_TTL", 300.0, "Seconds the MiniMax Code model catalogue is kept (it advertises 300)."
    )
    code_probe_web_tokens: str = _setting(
        "MINIMAX_CODE_PROBE_WEB_TOKENS", "on",
        "`on`: in `auto`, try a web `_token` as Bearer on the code endpoint once per account; `off`.",
    )
    renew_before: float = _setting(
        "MINIMAX_RENEW_BEFORE", 86400.0, "Renew a token this many seconds before it expires."
    )
    matrix_model_option: str = _setting(
        "MINIMAX_MATRIX_MODEL_OPTION", "on", "`on`: send `model_option` in matrix send_msg; `off` omits it."
    )
    connect_timeout: float = _setting(
        "MINIMAX_CONNECT_TIMEOUT", 5.0, "Seconds to connect to the upstream."
    )
    read_timeout: float = _setting(
        "MINIMAX_READ_TIMEOUT", 15.0, "Seconds to wait for one upstream answer."
    )
    queue_timeout: float = _setting(
        "GATEWAY_QUEUE_TIMEOUT", 30.0, "Seconds a request waits for a free account before 429."
    )
    busy_cooldown: float = _setting(
        "GATEWAY_BUSY_COOLDOWN", 3.0, "Seconds an account the upstream calls busy is skipped."
    )
    poll_first: float = _setting(
        "GATEWAY_POLL_FIRST", 0.2, "Poll interval while waiting for the first token (>= 0.2)."
    )
    poll_steady: float = _setting(
        "GATEWAY_POLL_STEADY", 0.25, "Poll interval while the answer flows (>= 0.2)."
    )
    poll_idle: float = _setting(
        "GATEWAY_POLL_IDLE", 0.5, "Poll interval after 3 s without new content (>= 0.2)."
    )
    heartbeat: float = _setting(
        "GATEWAY_HEARTBEAT", 8.0, "Seconds of silence before a keep-alive frame is streamed."
    )
    answer_timeout: float = _setting(
        "GATEWAY_ANSWER_TIMEOUT", 900.0, "Longest time one answer may take, in seconds."
    )
    prompt_max_chars: int = _setting(
        "GATEWAY_PROMPT_MAX_CHARS", 200_000, "Prompt size limit; older turns are dropped first."
    )
    conversation_ttl: float = _setting(
        "GATEWAY_CONVERSATION_TTL", 600.0,
        "Seconds an upstream chat is kept for the next turn after its last use (0: fold every turn)."
    )
    conversation_wait: float = _setting(
        "GATEWAY_CONVERSATION_WAIT", 5.0,
        "Seconds a continuing turn waits for its chat's account before folding on another."
    )
    responses_ttl: float = _setting(
        "GATEWAY_RESPONSES_TTL", 86_400.0,
        "Seconds a stored Responses API answer stays available to `previous_response_id` and "
        "`GET /v1/responses/{id}` (0: store nothing)."
    )
    responses_max_kb: int = _setting(
        "GATEWAY_RESPONSES_MAX_KB", 2048,
        "Largest stored Responses API conversation (its items as JSON), in KB; a larger one is not stored."
    )
    max_body_mb: int = _setting(
        "GATEWAY_MAX_BODY_MB", 64, "Largest accepted request body, in MB (413 beyond)."
    )
    fetch_allow_hosts: tuple[str, ...] = _setting(
        "GATEWAY_FETCH_ALLOW_HOSTS", (), "Hosts (name or name:port) whose URLs may resolve to private addresses."
    )
    fetch_max_mb: int = _setting(
        "GATEWAY_FETCH_MAX_MB", 20, "Largest file fetched from a URL in a message, in MB."
    )
    fetch_timeout: float = _setting(
        "GATEWAY_FETCH_TIMEOUT", 20.0, "Seconds allowed to fetch one URL in a message."
    )
    tts_voices: str = _setting(
        "GATEWAY_TTS_VOICES", "", "JSON object overriding the voice table, keys `voice` or `model:voice`."
    )
    models: tuple[str, ...] = _setting(
        "GATEWAY_MODELS", UPSTREAM_MODELS, "Upstream models advertised; the first is the default."
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = {}
        for item in fields(cls):
            raw = environ.get(item.metadata["env"])
            if raw is not None and raw.strip() != "":
                values[item.name] = _convert(item.metadata["env"], raw.strip(), item.default)
        values.setdefault("data_dir", _default_data_dir(environ))
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.log_format not in LOG_FORMATS:
            raise ConfigError("GATEWAY_LOG_FORMAT must be plain or json")
        if self.signature not in SIGNATURE_MODES:
            raise ConfigError(f"MINIMAX_SIGNATURE must be one of {', '.join(SIGNATURE_MODES)}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError("MINIMAX_BASE_URL must start with http:// or https://")
        if not self.models:
            raise ConfigError("GATEWAY_MODELS must name at least one model")
        _choice("MINIMAX_SURFACE", self.surface, C.SURFACE_CHOICES)
        _choice("MINIMAX_SESSION_CLEANUP", self.session_cleanup, C.SESSION_CLEANUPS)
        _choice("MINIMAX_SIGN_OP_TICKET", self.sign_op_ticket, SWITCH)
        _choice("MINIMAX_SIGN_EMPTY_BODY", self.sign_empty_body, tuple(C.EMPTY_BODY_VARIANTS))
        _choice("MINIMAX_SIGN_REGION", self.sign_region, C.REGION_VARIANTS)
        _choice("MINIMAX_SIGN_SESSION_BODY", self.sign_session_body, C.SESSION_BODY_VARIANTS)
        _choice("MINIMAX_MATRIX_MODEL_OPTION", self.matrix_model_option, SWITCH)
        self._validate_web_constants()
        if not all(p.startswith("/") for p in self.session_prefixes) or not self.session_prefixes:
            raise ConfigError("MINIMAX_SESSION_PREFIXES must list paths starting with /")
        if self.stream_base_url and not self.stream_base_url.startswith(("http://", "https://")):
            raise ConfigError("MINIMAX_STREAM_BASE_URL must start with http:// or https://")
        check_state_url(self.state)
        if self.admin_key and len(self.admin_key) < MIN_ADMIN_KEY_CHARS:
            raise ConfigError(f"GATEWAY_ADMIN_KEY must have at least {MIN_ADMIN_KEY_CHARS} characters")
        self.locale()
        self._validate_code()
        self.voice_overrides()

    def locale(self) -> tuple[str, str] | None:
        if not self.web_locale:
            return None
        region, _, lang = self.web_locale.partition(",")
        if not region.strip() or not lang.strip():
            raise ConfigError("MINIMAX_WEB_LOCALE must be `region,lang`, e.g. `en,en`")
        return region.strip(), lang.strip()

    def _validate_code(self) -> None:
        if "," in self.code_region:  # the web override's old name
            raise ConfigError("MINIMAX_REGION is now the MiniMax Code region (cn or global); "
                              "the web surfaces' `region,lang` override is MINIMAX_WEB_LOCALE")
        _choice("MINIMAX_REGION", self.code_region, C.CODE_REGIONS)
        _choice("MINIMAX_CODE_PROBE_WEB_TOKENS", self.code_probe_web_tokens, SWITCH)
        for name, url in (("MINIMAX_ACCOUNT_BASE_URL", self.account_base_url),
                          ("MINIMAX_CODE_BASE_URL", self.code_base_url),
                          ("MINIMAX_QUOTA_BASE_URL", self.quota_base_url)):
            if url and not url.startswith(("http://", "https://")):
                raise ConfigError(f"{name} must start with http:// or https://")
        if not self.oauth_client_id.isprintable() or not self.code_user_agent.isprintable():
            raise ConfigError("MINIMAX_OAUTH_CLIENT_ID and MINIMAX_CODE_USER_AGENT must be printable text")

    def code(self, region: str | None = None) -> CodeSettings:
        """The code surface's settings for ``region`` (default MINIMAX_REGION): hosts set
        explicitly win over the region's defaults."""
        region = region or self.code_region
        _choice("region", region, C.CODE_REGIONS)
        return CodeSettings(
            region=region,
            account_url=(self.account_base_url or C.ACCOUNT_HOSTS[region]).rstrip("/"),
            code_url=(self.code_base_url or C.CODE_HOSTS[region]).rstrip("/"),
            quota_url=(self.quota_base_url or C.QUOTA_HOSTS[region]).rstrip("/"),
            matrix_url=_matrix_url(self.base_url, region),
            client_id=self.oauth_client_id,
            refresh_before=self.refresh_before,
            user_agent=self.code_user_agent,
            probe_web_tokens=self.code_probe_web_tokens == "on",
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            catalogue_ttl=self.catalogue_ttl,
        )

    def _validate_web_constants(self) -> None:
        _choice("MINIMAX_BUNDLE_REFRESH", self.bundle_refresh, SWITCH + BINARY_SWITCH)
        for env, name, value in (("MINIMAX_SIGNING_SALT", "salt", self.signing_salt),
                                 ("MINIMAX_YY_SUFFIX", "yy_suffix", self.yy_suffix),
                                 ("MINIMAX_VERSION_CODE", "version_code", self.version_code)):
            if not bundle_valid(name, value):
                raise ConfigError(f"{env} does not look like the web app's {name.replace('_', ' ')}")

    def bundle(self) -> BundleSettings:
        constants = WebConstants(self.signing_salt, self.yy_suffix, self.version_code)
        configured = frozenset(name for name in ("salt", "yy_suffix", "version_code")
                               if getattr(constants, name) != getattr(CAPTURED_CONSTANTS, name))
        return BundleSettings(constants=constants, configured=configured,
                              refresh=self.bundle_refresh in ("on", "1"),
                              refresh_interval=self.bundle_refresh_interval,
                              asset_hosts=tuple(h.lower() for h in self.bundle_hosts))

    def signing(self) -> SigningVariant:
        return SigningVariant(
            salt_mode=self.signature, op_ticket=self.sign_op_ticket == "on",
            empty_body=self.sign_empty_body, region=self.sign_region,
            session_body=self.sign_session_body,
        )

    def upstream(self) -> UpstreamSettings:
        return UpstreamSettings(
            base_url=self.base_url.rstrip("/"),
            stream_base_url=self.stream_base_url,
            signing=self.signing(),
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            pool_size=max(64, self.worker_connections),
            surface=self.surface,
            surface_ttl=self.surface_ttl,
            session_prefixes=tuple(p.rstrip("/") for p in self.session_prefixes),
            session_cleanup=self.session_cleanup,
            agent_role=self.agent_role,
            stream_idle_timeout=self.stream_idle_timeout,
            locale=self.locale(),
            renew_before=self.renew_before,
            matrix_model_option=self.matrix_model_option == "on",
            poll=PollSettings(first=self.poll_first, steady=self.poll_steady, idle=self.poll_idle),
            bundle=self.bundle(),
        )

    def chat(self) -> ChatSettings:
        return ChatSettings(
            queue_timeout=self.queue_timeout,
            busy_cooldown=self.busy_cooldown,
            heartbeat=self.heartbeat,
            answer_timeout=self.answer_timeout,
            prompt_max_chars=self.prompt_max_chars,
            models=self.models,
            conversation_ttl=self.conversation_ttl,
            conversation_wait=self.conversation_wait,
        )


    def voice_overrides(self) -> dict[str, str]:
        if not self.tts_voices:
            return {}
        try:
            table = json.loads(self.tts_voices)
        except ValueError:
            raise ConfigError("GATEWAY_TTS_VOICES must be a JSON object") from None
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise ConfigError("GATEWAY_TTS_VOICES must map names to MiniMax voice names")
        return table

    def fetch(self) -> FetchSettings:
        return FetchSettings(
            allow_hosts=frozenset(h.lower() for h in self.fetch_allow_hosts),
            max_bytes=self.fetch_max_mb * 1024 * 1024,
            timeout=self.fetch_timeout,
        )


#: Where ``python -m gateway doctor`` finds the credential when none is given.
DOCTOR_CREDENTIAL_ENV = "MINIMAX_CREDENTIAL"


def doctor_credential(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get(DOCTOR_CREDENTIAL_ENV, "")


def doctor_lang(environ: Mapping[str, str] | None = None) -> Lang:
    """The language of the terminal the doctor prints to (``LC_ALL``, ``LC_MESSAGES``, ``LANG``)."""
    environ = os.environ if environ is None else environ
    return lang_from_env(environ.get("LC_ALL") or environ.get("LC_MESSAGES") or environ.get("LANG"))


#: The data folder's name under ``$XDG_STATE_HOME``.
DATA_DIR_NAME = "minimax-free-api"


def _default_data_dir(environ: Mapping[str, str]) -> str:
    """``$XDG_STATE_HOME/minimax-free-api``, the XDG place for state that must outlive a
    restart (``~/.local/state`` when unset, or relative as the spec says to ignore)."""
    base = environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, DATA_DIR_NAME)


def env_table() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, for docs and tests."""
    rows = []
    for item in fields(Settings):
        default = item.default
        shown = ",".join(default) if isinstance(default, tuple) else str(default)
        shown = shown or "(none)"
        rows.append((item.metadata["env"], shown, item.metadata["help"]))
    return rows


def _matrix_url(base_url: str, region: str) -> str:
    # A base URL set on purpose (e.g. a simulator) serves every region; the default is cn's.
    return C.MATRIX_HOSTS[region] if base_url == DEFAULT_BASE_URL else base_url.rstrip("/")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}")


def _convert(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return raw.lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return _positive(name, int(raw))
        if isinstance(default, float):
            return _positive(name, float(raw))
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    return raw


#: Numeric settings for which 0 means "off" rather than a mistake.
MAY_BE_ZERO = frozenset({"GATEWAY_CONVERSATION_TTL", "GATEWAY_CONVERSATION_WAIT", "GATEWAY_RESPONSES_TTL"})


def _positive(name: str, value: int | float) -> int | float:
    if value < 0 or (value == 0 and name not in MAY_BE_ZERO):
        raise ConfigError(f"{name} must be greater than zero" if name not in MAY_BE_ZERO
                          else f"{name} must not be negative")
    return value
