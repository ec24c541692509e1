"""The MiniMax Code surface's driver: Anthropic Messages over ``Authorization: Bearer``.

``shared/UPSTREAM-CODE.md`` §2–3: ``POST {code}/mavis/api/v1/llm/v1/messages`` (streamed),
``…/messages/count_tokens`` and ``GET {code}/mavis/api/v1/models``; no request signing.
The token is the account's MiniMax Code access token: a server-side signed-in account's
current one (from :class:`TokenSource`, renewed in the background, never on a request's
path), a client-given ``mmoat_…`` as it is, or, when the surface choice probes it, a web
JWT. A 401 on a signed-in account refreshes its token once and replays the same body once,
as the official client does; a 529 is retried with backoff before anything streams.

The driver is native (:class:`~gateway.upstream.conversation.NativeDriver`): each turn
carries the whole structured conversation; nothing is kept upstream, so nothing is ever
deleted there.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Protocol

import requests
import sseclient

from gateway.errors import GatewayError, UpstreamBadAnswer, UpstreamOverloaded, UpstreamUnavailable
from gateway.parts import ChatRequest, Event, ModelInfo, StreamError
from gateway.upstream import pacing
from gateway.upstream.boundary import chunks, new_session, set_read_timeout, transport_errors
from gateway.upstream.code_errors import code_error
from gateway.upstream.code_messages import EventReader, count_body, encoded, request_body
from gateway.upstream.conversation import Capabilities, Conversation
from gateway.upstream.credentials import Credential
from gateway.upstream.settings import CodeSettings, UpstreamSettings

NAME: Final = "code"
MESSAGES_PATH: Final = "/mavis/api/v1/llm/v1/messages"
COUNT_PATH: Final = "/mavis/api/v1/llm/v1/messages/count_tokens"
CATALOGUE_PATH: Final = "/mavis/api/v1/models"
#: ``region`` of the catalogue query per gateway region ("en" for global is [assumed]).
CATALOGUE_REGIONS: Final = {"cn": "cn", "global": "en"}
#: Seconds a catalogue is kept when the answer advertises no ``ttlSeconds``.
CATALOGUE_TTL: Final = 300.0
#: Waits before the new tries of a call the upstream answered 529 (overloaded).
OVERLOADED_DELAYS: Final = (1.0, 2.0, 4.0)
ANTHROPIC_VERSION: Final = "2023-06-01"
EVENT_STREAM: Final = "text/event-stream"
#: The probe's body: the smallest count_tokens request (no generation).
PROBE_TEXT: Final = "ping"
PROBE_MODEL: Final = "MiniMax-M2.7"
CAPABILITIES: Final = Capabilities(tools=True, thinking=True, images=True, full_history=True,
                                   token_counting=True)
#: The official built-in catalogue (page §3, "first-run catalog"), in its model order:
#: what the gateway offers before any catalogue call has answered.
STATIC_CATALOGUE: Final = (
    ModelInfo("MiniMax-M3.1-Flash-Preview", 512000, 128000, "M3.1-Flash-Preview"),
    ModelInfo("MiniMax-M3", 512000, 128000, "M3"),
    ModelInfo("MiniMax-M2.7-highspeed", 200000, 128000, "M2.7-highspeed"),
    ModelInfo("MiniMax-M2.7", 200000, 128000, "M2.7"),
)
#: Older MiniMax names clients still send, and the model of today that answers them.
MODEL_ALIASES: Final = {
    "MiniMax-M1": "MiniMax-M2.7",
    "MiniMax-M2": "MiniMax-M2.7",
    "MiniMax-M2.1": "MiniMax-M2.7",
    "MiniMax-M2.5": "MiniMax-M2.7",
    "MiniMax-M2.5-highspeed": "MiniMax-M2.7-highspeed",
    "MiniMax-Text-01": "MiniMax-M2.7",
}
#: Seconds a signed-in account's region is trusted before it is read again.
REGION_CACHE_SECONDS: Final = 60.0
#: Told of every call: its path, and the error class name when it failed.
Observer = Callable[[str, str | None], None]


class TokenSource(Protocol):
    """The current access tokens of server-side signed-in accounts, and their regions."""

    def access_token(self, name: str) -> str: ...

    def refresh(self, name: str, seen_access: str | None = None) -> str: ...

    def region_of(self, name: str) -> str | None: ...


class CodeDriver:
    """The code surface (see the module doc)."""

    name = NAME
    capabilities = CAPABILITIES

    def __init__(self, settings: CodeSettings, web: UpstreamSettings, tokens: TokenSource | None = None,
                 observer: Observer = lambda path, error: None, hosts: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self._tokens = tokens
        #: The code host of each region (a signed-in account's tokens work only on its own).
        self._hosts = dict(hosts or {settings.region: settings.code_url})
        self._regions: dict[str, tuple[str, float]] = {}
        self._observer = observer
        self._idle_timeout = web.stream_idle_timeout  # one limit for every surface's silence
        self._session = new_session(web.pool_size)
        self._catalogue: tuple[float, tuple[ModelInfo, ...]] | None = None
        self._lock = threading.Lock()

    # -- the NativeDriver interface -----------------------------------------------------
    def generate(self, cred: Credential, request: ChatRequest, model: str, system_extra: str = "") -> CodeTurn:
        body = encoded(request_body(request, model, system_extra))
        response = self._retried(lambda: self._send(cred, MESSAGES_PATH, body, stream=True))
        return CodeTurn(response, frozenset(tool.name for tool in request.tools if tool.kind == "custom"))

    def count_tokens(self, cred: Credential, request: ChatRequest, model: str) -> int:
        body = encoded(count_body(request_body(request, model)))
        answer = self._json(cred, COUNT_PATH, body)
        tokens = answer.get("input_tokens")
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
            raise UpstreamBadAnswer("MiniMax Code's token count had no input_tokens.")
        return tokens

    def catalogue(self, cred: Credential) -> tuple[ModelInfo, ...]:
        with self._lock:
            cached = self._catalogue
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        region = CATALOGUE_REGIONS.get(self.settings.region, "cn")
        answer = self._json(cred, f"{CATALOGUE_PATH}?region={region}&buildEnv=prod", None)
        models, ttl = models_of(answer)
        with self._lock:
            self._catalogue = (time.monotonic() + ttl, models)
        return models

    def known_models(self) -> tuple[ModelInfo, ...]:
        """The last catalogue read (even if stale), else the static one; no call."""
        with self._lock:
            cached = self._catalogue
        return cached[1] if cached is not None and cached[1] else STATIC_CATALOGUE

    def model_for(self, requested: str) -> str:
        """The upstream model for any requested name: a catalogue id as it is (case
        matters upstream), an older MiniMax name by its alias, anything else (a
        client's own model names) the catalogue's first model."""
        models = self.known_models()
        ids = {model.id for model in models}
        if requested in ids:
            return requested
        alias = MODEL_ALIASES.get(requested)
        if alias in ids:
            return str(alias)
        return models[0].id

    def probe(self, cred: Credential) -> None:
        """A count_tokens call: whether the messages route takes this account's token."""
        probe = {"model": PROBE_MODEL, "messages": [{"role": "user", "content": PROBE_TEXT}]}
        self._json(cred, COUNT_PATH, encoded(probe))

    def forget(self, cred: Credential) -> None:
        """Nothing is learned per account (tokens live in the shared state)."""

    def close(self) -> None:
        self._session.close()

    # -- calls --------------------------------------------------------------------------
    def _json(self, cred: Credential, path: str, body: bytes | None) -> dict[str, Any]:
        response = self._retried(lambda: self._send(cred, path, body, stream=False))
        try:
            with transport_errors():
                document = response.json()
        except ValueError:
            raise UpstreamBadAnswer("MiniMax Code answered with a non-JSON body.") from None
        finally:
            response.close()
        if not isinstance(document, dict):
            raise UpstreamBadAnswer("MiniMax Code answered with a non-object body.")
        return document

    def _retried(self, call: Callable[[], requests.Response]) -> requests.Response:
        return pacing.retry(call, OVERLOADED_DELAYS, retry_on=(UpstreamOverloaded,), what="MiniMax Code call")

    def _send(self, cred: Credential, path: str, body: bytes | None, stream: bool) -> requests.Response:
        """One call; a signed-in account's 401 refreshes its token and replays once."""
        token, host = self._token(cred), self._host(cred)
        response = self._exchange(host, path, body, token, stream)
        if response.status_code == 401 and cred.signin is not None and self._tokens is not None:
            response.close()
            fresh = self._tokens.refresh(cred.signin, seen_access=token)
            response = self._exchange(host, path, body, fresh, stream)
        if response.status_code != 200:
            self._fail(path, response)
        if stream and not response.headers.get("Content-Type", "").startswith(EVENT_STREAM):
            response.close()
            self._observer(path, UpstreamBadAnswer.__name__)
            raise UpstreamBadAnswer("MiniMax Code answered without an event stream.")
        self._observer(_route(path), None)
        return response

    def _exchange(self, host: str, path: str, body: bytes | None, token: str, stream: bool) -> requests.Response:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": EVENT_STREAM if stream else "application/json",
            "User-Agent": self.settings.user_agent,
            "anthropic-version": ANTHROPIC_VERSION,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        method = "POST" if body is not None else "GET"
        try:
            with transport_errors():
                response = self._session.request(
                    method, host + path, data=body, headers=headers, stream=stream,
                    timeout=(self.settings.connect_timeout, self.settings.read_timeout), allow_redirects=False)
                if stream:
                    set_read_timeout(response, self._idle_timeout)
                return response
        except GatewayError as error:
            self._observer(_route(path), type(error).__name__)
            raise

    def _fail(self, path: str, response: requests.Response) -> None:
        try:
            with transport_errors():
                payload = response.content[:65536]
        finally:
            response.close()
        error = code_error(response.status_code, payload, response.headers.get("Retry-After"))
        self._observer(_route(path), type(error).__name__)
        raise error

    def _host(self, cred: Credential) -> str:
        """The code host of the account's region: a signed-in account's own (looked up at
        most once a minute), else the gateway's region's."""
        if cred.signin is None or self._tokens is None:
            return self.settings.code_url
        known = self._regions.get(cred.signin)
        if known is None or time.monotonic() - known[1] > REGION_CACHE_SECONDS:
            region = self._tokens.region_of(cred.signin) or self.settings.region
            known = self._regions[cred.signin] = (region, time.monotonic())
        return self._hosts.get(known[0], self.settings.code_url)

    def _token(self, cred: Credential) -> str:
        if cred.signin is not None:
            if self._tokens is None:
                raise UpstreamUnavailable("Signed-in accounts need the shared state.")
            return self._tokens.access_token(cred.signin)
        return cred.jwt  # a client-given mmoat_…, or a web JWT the surface choice tries


class CodeTurn:
    """One answer stream of the code surface, read as neutral chat events."""

    def __init__(self, response: requests.Response, custom: frozenset[str] = frozenset()) -> None:
        self.conversation = Conversation(NAME)
        self.finished = False
        self._response = response
        self._custom = custom  # the request's custom (freeform) tools, called with raw input

    def events(self) -> Iterator[Event]:
        reader = EventReader(self._custom)
        try:
            for sse in sseclient.SSEClient(chunks(self._response)).events():
                if not sse.data:
                    continue
                data = _frame(sse.data)
                if data.get("type") == "error":
                    yield StreamError(code_error(200, json.dumps(data).encode()))
                    return
                yield from reader.read(data)
                if reader.finished:
                    self.finished = True
                    return
            yield StreamError(UpstreamUnavailable("MiniMax Code closed the answer stream before it finished."))
        except GatewayError as error:
            yield StreamError(error)
        finally:
            self._response.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._response.close()


def models_of(answer: dict[str, Any]) -> tuple[tuple[ModelInfo, ...], float]:
    """The catalogue's models in its ``model_order``, and its time-to-live (page §3)."""
    found: dict[str, ModelInfo] = {}
    order: list[str] = []
    for provider in answer.get("providers") or []:
        config = provider.get("config") if isinstance(provider, dict) else None
        if not isinstance(config, dict):
            continue
        order.extend(str(name) for name in config.get("model_order") or [] if isinstance(name, str))
        for model_id, info in (config.get("models") or {}).items():
            found[model_id] = _model(model_id, info if isinstance(info, dict) else {})
    ids = [name for name in order if name in found] + [name for name in found if name not in order]
    ttl = answer.get("ttlSeconds")
    seconds = float(ttl) if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and ttl > 0 else CATALOGUE_TTL
    return tuple(found[name] for name in dict.fromkeys(ids)), seconds


def _model(model_id: str, info: dict[str, Any]) -> ModelInfo:
    limit = info.get("limit")
    limit = limit if isinstance(limit, dict) else {}
    return ModelInfo(model_id, _int(limit.get("context")), _int(limit.get("output")), str(info.get("name") or ""))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _frame(data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        raise UpstreamBadAnswer("MiniMax Code sent an event that is not JSON.") from None
    if not isinstance(value, dict):
        raise UpstreamBadAnswer("MiniMax Code sent an event that is not a JSON object.")
    return value


def _route(path: str) -> str:
    """The path without its query, for metrics."""
    return path.split("?", 1)[0]

