"""The requests-based transport of the MiniMax Agent web API, shared by both surfaces.

One :class:`UpstreamClient` per worker process holds one connection pool and, per
account, what the browser keeps in its local storage: the device uuid and id, the
realUserID (learned from the user-info call, never assumed to be the JWT's ``user.id``)
and the current token (renewed before it expires). Every call signs the exact body it
sends (:mod:`gateway.upstream.signing`), uses explicit timeouts, closes its response in
``finally`` and maps failures to :mod:`gateway.errors` classes at one boundary:
transport exceptions in :func:`transport_errors`, answers in :func:`classify`.
Exception text never carries a URL, whose query holds the token.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError, ReadTimeoutError

from gateway.errors import (
    AccountInUse,
    GatewayError,
    NoCredits,
    QuotaExhausted,
    UpstreamBadAnswer,
    UpstreamError,
    UpstreamNotReached,
    UpstreamRejectedSignature,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamUnavailable,
    UpstreamWrongPath,
)
from gateway.upstream import constants as C
from gateway.upstream.bundle import LiveConstants
from gateway.upstream.credentials import Credential, token_expiry
from gateway.upstream.settings import UpstreamSettings
from gateway.upstream.signing import Identity, WebConstants, build_query, carries_region, dump_body, signatures
from gateway.upstream.transport import NotConnected, Wire

log = logging.getLogger(__name__)

#: Told of every call: its path, and the error class name when it failed.
Observer = Callable[[str, "str | None"], None]
class TokenStore(Protocol):
    """Where renewed tokens outlive the process (the shared state): by account key."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str, ttl: float | None = None) -> None: ...


#: Seconds between two renewal attempts of one account after a failed one.
RENEW_RETRY_SECONDS = 300.0
API, STREAM = "api", "stream"
#: Any origin, for requests to prepare a bare ``path?query`` (it takes absolute URLs only).
_ANY_ORIGIN = "http://origin"
#: Where a renewed token is kept in the token store, before the account key.
TOKEN_KEY = "token:"


@dataclass
class _Account:
    """What the browser would keep for one account."""

    uuid: str
    device_id: str
    token: str
    expires_at: float | None
    registered_at: float | None = None
    real_user_id: str | None = None
    renew_tried_at: float = 0.0


class UpstreamClient:
    """Signed calls to the upstream on behalf of accounts."""

    def __init__(
        self,
        settings: UpstreamSettings,
        session: requests.Session | None = None,
        observer: Observer | None = None,
        tokens: TokenStore | None = None,
    ) -> None:
        self.settings = settings
        self._tokens = tokens
        self._observer: Observer = observer or (lambda path, error_kind: None)
        self._session = session or new_session(settings.pool_size)
        # The signed JSON calls (the hot path: send, every poll, delete) go out verbatim.
        self.wire = Wire(settings.base_url, settings.pool_size)
        self._accounts: dict[str, _Account] = {}
        self._lock = threading.Lock()
        self._account_locks: dict[str, threading.Lock] = {}
        #: The web app build's signing constants (read from its bundle if so configured).
        self.constants = LiveConstants(settings.bundle, settings.base_url, self._fetch_page, tokens)

    # -- account-level endpoints (both surfaces) ------------------------------------------
    def user_info(self, cred: Credential) -> dict[str, Any]:
        """The user-info call: the one that accepts an unknown user_id."""
        return self.call(cred, "GET", C.PATH_USER_INFO, prepare=False)

    def membership(self, cred: Credential) -> dict[str, Any]:
        return self.call(cred, "POST", C.PATH_MEMBERSHIP)

    def credits(self, cred: Credential) -> float | None:
        """The account's credits left (None when the answer names none)."""
        return credits_of(self.membership(cred))

    def register_device(self, cred: Credential) -> dict[str, Any]:
        """Register (again) and cache this account's device id."""
        account = self._account(cred)
        data = self._call_raw(cred, account, "POST", C.PATH_DEVICE_REGISTER, {"uuid": account.uuid})
        device_id = str(data.get("deviceIDStr") or "")
        if not device_id.isdigit():
            raise UpstreamBadAnswer("MiniMax device registration returned no device id.")
        account.device_id, account.registered_at = device_id, time.monotonic()
        return data

    def learn_identity(self, cred: Credential) -> str:
        """The account's realUserID, from the user-info call (cached)."""
        account = self._account(cred)
        info = self._call_raw(cred, account, "GET", C.PATH_USER_INFO, None)
        user = info.get("userInfo")
        real = str(user.get("realUserID") or "") if isinstance(user, dict) else ""
        if not real.isdigit():
            raise UpstreamBadAnswer("MiniMax's user info named no realUserID.")
        account.real_user_id = cred.real_user_id or real
        return real

    def identity_alive(self, cred: Credential) -> bool:
        """Whether the token itself is still accepted (the check that confirms a 401)."""
        try:
            self.user_info(cred)
        except UpstreamUnauthorized:
            return False
        except GatewayError:
            return True  # unknown: never retire an account on a transport failure
        return True

    def renew(self, cred: Credential) -> bool:
        """Trade the account's token for a fresh one; True when it was renewed."""
        account = self._account(cred)
        account.renew_tried_at = time.monotonic()
        data = self._call_raw(cred, account, "POST", C.PATH_RENEWAL, None)
        token = data.get("token")
        if not isinstance(token, str) or token.count(".") != 2:
            raise UpstreamBadAnswer("MiniMax's token renewal returned no token.")
        account.token, account.expires_at = token, token_expiry(token)
        self._keep_token(cred, account)
        return True

    def put_object(self, url: str, headers: dict[str, str], body: IO[bytes]) -> None:
        """Upload to object storage (already signed by the caller); streams ``body``."""
        status, payload = self._exchange_url("PUT", url, headers, body)
        if status != 200:
            code = _xml_code(payload)
            raise UpstreamError(f"Object storage refused the upload (HTTP {status} {code}).")

    def post_form(self, url: str, fields: list[tuple[str, str]],
                  file: tuple[str, IO[bytes], str]) -> None:
        """An unsigned multipart POST (an upload instruction's form), file part last."""
        files = [(name, (None, value)) for name, value in fields] + [("file", file)]
        with transport_errors():
            response = self._session.post(url, files=files, headers={"User-Agent": C.USER_AGENT},
                                          timeout=self._timeouts(), allow_redirects=False)
            try:
                if response.status_code not in (200, 201, 204):
                    raise UpstreamError(f"The upload was refused (HTTP {response.status_code}).")
            finally:
                response.close()

    def download(self, url: str) -> bytes:
        """A plain GET of a file the upstream pointed to (e.g. TTS audio)."""
        status, payload = self._exchange_url("GET", url, {"User-Agent": C.USER_AGENT}, b"")
        if status != 200:
            raise UpstreamError(f"Downloading an upstream file answered HTTP {status}.")
        return payload

    def ping(self) -> bool:
        """Whether the upstream answers HTTP at all (any status), within the timeouts."""
        try:
            self._exchange_url("GET", self.settings.base_url + "/", {"User-Agent": C.USER_AGENT}, b"")
        except GatewayError:
            return False
        return True

    # -- the signed call ------------------------------------------------------------------
    def call(
        self,
        cred: Credential,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        leading_query: Iterable[tuple[str, str]] = (),
        prepare: bool = True,
    ) -> dict[str, Any]:
        """A signed JSON call on the API host; returns the unwrapped answer.

        Unless ``prepare`` is off, the account is made ready first: realUserID learned,
        token renewed and device registered when due (the doctor checks each in turn).
        """
        account = self.prepared(cred) if prepare else self._account(cred)
        return self._call_raw(cred, account, method, path, body, leading_query)

    def prepared(self, cred: Credential) -> _Account:
        """The account, with identity, token and device made ready (once, under a lock)."""
        account = self._account(cred)
        if _preparation_due(account, self.settings.renew_before):
            with self._account_lock(cred):
                self._prepare(cred, account)
        return account

    def _prepare(self, cred: Credential, account: _Account) -> None:
        if account.real_user_id is None:
            self.learn_identity(cred)
        if _renewal_due(account, self.settings.renew_before):
            self._renewed(cred, account)  # another worker or host may have renewed it already
        if _renewal_due(account, self.settings.renew_before):
            try:
                self.renew(cred)
            except GatewayError as error:  # keep the old token; it still works until exp
                log.info("token renewal of account %s failed: %s", cred.key, type(error).__name__)
        if _registration_due(account):
            self.register_device(cred)

    def _call_raw(
        self,
        cred: Credential,
        account: _Account,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        leading_query: Iterable[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        text = None if body is None else dump_body(body)
        constants = self.constants.current()
        try:
            try:
                answer = self._exchange_signed(account, method, path, text, leading_query, constants)
            except UpstreamRejectedSignature:
                # A new build of the web app may have rotated its constants: once read
                # again, the refused call (which created nothing) is made once more.
                if not self.constants.after_refusal(constants):
                    raise
                answer = self._exchange_signed(account, method, path, text, leading_query,
                                               self.constants.current())
        except GatewayError as error:
            self._observer(path, type(error).__name__)
            raise
        self._observer(path, None)
        return answer

    def _exchange_signed(self, account: _Account, method: str, path: str, text: str | None,
                         leading_query: Iterable[tuple[str, str]], constants: WebConstants) -> dict[str, Any]:
        url, headers = self.signed(account, API, path, text, leading_query, constants)
        with transport_errors():
            status, payload = self.wire.exchange(method, url, headers, _wire_body(text), self._timeouts())
        return classify(status, payload)

    def _fetch_page(self, url: str) -> tuple[int, bytes]:
        """A plain GET of the web app's page or one of its scripts (for :mod:`.bundle`)."""
        return self._exchange_url("GET", url, {"User-Agent": C.USER_AGENT}, b"")

    def signed(
        self, account: _Account, host: str, path: str, body: str | None,
        leading_query: Iterable[tuple[str, str]] = (), constants: WebConstants | None = None,
        by_requests: bool = False,
    ) -> tuple[str, dict[str, str]]:
        """The full URL and headers of a request whose wire body is ``body``, signed with
        ``constants`` (default: those in force); in the form requests will send it when
        ``by_requests`` (streams), as built for the Wire."""
        constants = constants or self.constants.current()
        seconds = int(time.time())
        session_call = path.startswith(tuple(self.settings.session_prefixes))
        region, lang = self.settings.region_lang
        identity = Identity(account.uuid, account.device_id,
                            account.real_user_id or C.UNKNOWN_USER_ID, account.token, region, lang)
        query = build_query(identity, seconds * 1000, leading_query,
                            carries_region(session_call, self.settings.signing), constants.version_code)
        base = self.settings.stream_url if host == STREAM else self.settings.base_url
        base, path_query = as_requests_sends(base, f"{path}?{query}") if by_requests else (base, f"{path}?{query}")
        url = base + path_query
        # On the stream host the browser signs the absolute URL, elsewhere path?query.
        target = url if host == STREAM else path_query
        headers = {
            "token": account.token,
            **signatures(target=target, body=body, seconds=seconds, token=account.token,
                         session_call=session_call, variant=self.settings.signing, constants=constants),
            "Referer": self.settings.base_url + "/",
            "User-Agent": C.USER_AGENT,
        }
        headers.update(_content_headers(session_call, body is not None))
        if host == STREAM:
            headers["Origin"] = self.settings.base_url
        return url, headers

    # -- streamed calls -------------------------------------------------------------------
    @contextlib.contextmanager
    def open_stream(
        self, cred: Credential, path: str, body: dict[str, Any]
    ) -> Iterator[requests.Response]:
        """POST ``body`` to the stream host and yield the open event-stream response.

        An answer that is not an event stream is classified (and raises) here, before
        anything is yielded. The response is closed when the block ends.
        """
        account = self.prepared(cred)
        text = dump_body(body)
        url, headers = self.signed(account, STREAM, path, text, by_requests=True)
        response = None
        try:
            with transport_errors():
                # The answer's headers are due within the read timeout; after that, frames
                # (heartbeats included) within the stream's idle timeout.
                response = self._session.post(url, data=text.encode(), headers=headers,
                                              timeout=self._timeouts(), stream=True, allow_redirects=False)
                _require_event_stream(response)
                set_read_timeout(response, self.settings.stream_idle_timeout)
            self._observer(path, None)
            yield response
        except GatewayError as error:
            self._observer(path, type(error).__name__)
            raise
        finally:
            if response is not None:
                response.close()

    @contextlib.contextmanager
    def stream_form(
        self, cred: Credential, path: str, form: dict[str, str],
        files: dict[str, tuple[str, bytes, str]], signed_body: str,
    ) -> Iterator[Iterator[bytes]]:
        """POST a multipart form whose signature covers ``signed_body``; yields the
        answer's raw chunks as they arrive (for an SSE reply). Closes the response."""
        url, headers = self.signed(self.prepared(cred), API, path, signed_body, by_requests=True)
        headers.pop("Content-Type", None)  # requests writes the multipart boundary
        response = None
        try:
            with transport_errors():
                response = self._session.post(url, headers=headers, data=form, files=files,
                                              timeout=self._timeouts(), stream=True)
                if response.status_code != 200:
                    classify(response.status_code, response.content)
                    raise UpstreamBadAnswer(f"MiniMax answered HTTP {response.status_code}.")
                yield chunks(response)
        finally:
            if response is not None:
                response.close()

    def _exchange_url(
        self, method: str, url: str, headers: dict[str, str], data: bytes | IO[bytes]
    ) -> tuple[int, bytes]:
        """Send one request and read its whole answer."""
        response = None
        try:
            with transport_errors():
                response = self._session.request(method, url, headers=headers, data=data or None,
                                                 timeout=self._timeouts(), allow_redirects=False)
                return response.status_code, response.content
        finally:
            if response is not None:
                response.close()

    def _timeouts(self) -> tuple[float, float]:
        return self.settings.connect_timeout, self.settings.read_timeout

    # -- accounts -------------------------------------------------------------------------
    def _account(self, cred: Credential) -> _Account:
        account = self._accounts.get(cred.key)
        if account is None:
            fresh = self._renewed(cred, _new_account(cred))
            with self._lock:
                account = self._accounts.setdefault(cred.key, fresh)
        return account

    def _renewed(self, cred: Credential, account: _Account) -> _Account:
        """The account with the newest token another worker or host renewed, if any."""
        if self._tokens is None:
            return account
        try:
            stored = self._tokens.get(TOKEN_KEY + cred.key)
        except Exception:  # the state is down: the pasted token still works until exp
            log.warning("could not read the renewed token of account %s", cred.key)
            return account
        expires = token_expiry(stored) if stored else None
        if stored and expires is not None and expires > (account.expires_at or 0) and expires > time.time():
            account.token, account.expires_at = stored, expires
        return account

    def _keep_token(self, cred: Credential, account: _Account) -> None:
        if self._tokens is None or account.expires_at is None:
            return
        try:
            self._tokens.put(TOKEN_KEY + cred.key, account.token, max(1.0, account.expires_at - time.time()))
        except Exception:
            log.warning("could not keep the renewed token of account %s", cred.key)

    def _account_lock(self, cred: Credential) -> threading.Lock:
        # One lock per account so concurrent first requests prepare it once.
        with self._lock:
            return self._account_locks.setdefault(cred.key, threading.Lock())

    def close(self) -> None:
        self._session.close()
        self.wire.close()


@contextlib.contextmanager
def transport_errors() -> Iterator[None]:
    """Map the transport's exceptions to gateway errors: requests' (streams, uploads,
    downloads) and the :class:`Wire`'s (signed JSON calls), plain and streamed alike."""
    try:
        yield
    except requests.ConnectTimeout:  # a Timeout too, but one that proves nothing was sent
        raise UpstreamNotReached(f"{UpstreamNotReached.message} (ConnectTimeout)") from None
    except requests.Timeout:
        raise UpstreamTimeout() from None
    except requests.RequestException as exc:
        # The exception's text includes the URL and so the token: report its kind only.
        if _never_connected(exc):
            raise UpstreamNotReached(f"{UpstreamNotReached.message} ({type(exc).__name__})") from None
        if _read_timed_out(exc):  # a streamed body's socket timeout: the upstream went silent
            raise UpstreamTimeout() from None
        raise UpstreamUnavailable(f"{UpstreamUnavailable.message} ({type(exc).__name__})") from None
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        raise _wire_error(exc) from None


def _wire_error(exc: BaseException) -> GatewayError:
    """The gateway error for a failure of :class:`Wire` (its own, http.client's, a socket's),
    or a urllib3 one that got past requests' wrapping."""
    kind = type(exc).__name__
    if isinstance(exc, NotConnected):
        return UpstreamNotReached(f"{UpstreamNotReached.message} ({exc})")
    if isinstance(exc, (TimeoutError, ReadTimeoutError)):
        return UpstreamTimeout()
    return UpstreamUnavailable(f"{UpstreamUnavailable.message} ({kind})")


def as_requests_sends(base: str, path_query: str) -> tuple[str, str]:
    """``base`` and ``path_query`` as requests and urllib3 put them on the wire: the host
    lower-cased, and quoted what axios leaves raw (``[``, ``]``) or any value may hold
    (space, non-ASCII, a stray ``%``). A URL that goes by requests is signed in this form."""
    sent_base = str(requests.Request("POST", base + "/").prepare().url)[:-1]
    sent = str(requests.Request("POST", _ANY_ORIGIN + path_query).prepare().url)
    return sent_base, sent[len(_ANY_ORIGIN):]


def _wire_body(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _cause(exc: requests.RequestException) -> object:
    """What urllib3 raised under requests' exception (through its MaxRetryError)."""
    inner = exc.args[0] if exc.args else None
    return getattr(inner, "reason", inner)


def _never_connected(exc: requests.RequestException) -> bool:
    # Refused or unresolvable: the TCP connection never existed, so no byte was sent.
    return isinstance(exc, requests.ConnectionError) and isinstance(_cause(exc), NewConnectionError)


def _read_timed_out(exc: requests.RequestException) -> bool:
    # iter_content wraps a read timeout of an open stream as a ConnectionError.
    return isinstance(_cause(exc), ReadTimeoutError)


def chunks(response: requests.Response) -> Iterator[bytes]:
    """The body as the socket delivers it (chunk_size=None: no line is split by us)."""
    with transport_errors():
        yield from response.iter_content(chunk_size=None)


def _content_headers(session_call: bool, has_body: bool) -> dict[str, str]:
    # Session calls send Content-Type always and no Accept (None drops requests' default);
    # matrix and v1 calls accept JSON and name a type only with a body.
    if session_call:
        return {"Content-Type": "application/json", "Accept": None}  # type: ignore[dict-item]
    headers = {"Accept": C.ACCEPT_JSON}
    if has_body:
        headers["Content-Type"] = "application/json"
    return headers


def _require_event_stream(response: requests.Response) -> None:
    kind = response.headers.get("Content-Type", "")
    if response.status_code == 200 and kind.startswith("text/event-stream"):
        return
    classify(response.status_code, response.content)
    raise UpstreamBadAnswer(f"MiniMax answered HTTP {response.status_code} without a stream.")


def set_read_timeout(response: requests.Response, seconds: float) -> None:
    """Change the socket timeout of an open streamed response (urllib3 holds the socket)."""
    connection = getattr(response.raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _preparation_due(account: _Account, renew_before: float) -> bool:
    return (account.real_user_id is None or _registration_due(account)
            or _renewal_due(account, renew_before))


def _registration_due(account: _Account) -> bool:
    registered = account.registered_at
    return registered is None or time.monotonic() - registered > C.DEVICE_TTL_SECONDS


def _renewal_due(account: _Account, renew_before: float) -> bool:
    if account.expires_at is None or account.expires_at - time.time() > renew_before:
        return False
    return not account.renew_tried_at or time.monotonic() - account.renew_tried_at > RENEW_RETRY_SECONDS


def _new_account(cred: Credential) -> _Account:
    hint = cred.device_hint if cred.device_hint and cred.device_hint.isdigit() else None
    fallback = "".join(random.choice("0123456789") for _ in range(8))
    return _Account(uuid=str(uuid.uuid4()), device_id=hint or fallback, token=cred.jwt,
                    expires_at=cred.expires_at, real_user_id=cred.real_user_id)


def new_session(pool_size: int) -> requests.Session:
    """A requests session for one upstream host family: no transport retries, no proxies
    from the environment."""
    session = requests.Session()
    # No retries at the transport: retrying is a policy decision made by the chat core,
    # and urllib3's retry warnings would print the URL (and its token).
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False
    return session


def classify(status: int, payload: bytes) -> dict[str, Any]:
    """Turn an HTTP answer into its unwrapped data, or raise the matching error."""
    if status == 401:
        raise UpstreamUnauthorized()
    if status == 404:
        raise UpstreamWrongPath("MiniMax answered HTTP 404 (wrong path or surface).")
    document = _json_object(payload, status)
    code, message = status_of(document)
    if status == 400 and code == C.CODE_INVALID_SIGNATURE:
        raise UpstreamRejectedSignature()
    if code != C.CODE_OK or status != 200:
        raise error_for(code, message, status)
    data = document.get("data", document)
    return data if isinstance(data, dict) else {"data": data}


def _xml_code(payload: bytes) -> str:
    """The ``<Code>`` of an object-storage XML error, for the message."""
    text = payload[:2000].decode("utf-8", "replace")
    start, end = text.find("<Code>"), text.find("</Code>")
    return text[start + 6 : end] if 0 <= start < end else ""


def _json_object(payload: bytes, status: int) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except ValueError:
        if status >= 500:
            raise UpstreamServerError(f"MiniMax answered HTTP {status}.") from None
        if payload.lstrip()[:1] == b"<":
            raise UpstreamWrongPath() from None
        raise UpstreamBadAnswer(f"MiniMax answered HTTP {status} with a non-JSON body.") from None
    if not isinstance(document, dict):
        raise UpstreamBadAnswer()
    return document


def status_of(document: dict[str, Any]) -> tuple[int, str]:
    """The status code of any envelope: ``base_resp`` (matrix, session) or ``statusInfo`` (v1)."""
    envelope = document.get("base_resp") or document.get("statusInfo") or {}
    if not isinstance(envelope, dict):
        return -1, "malformed status"
    code = envelope.get("status_code", envelope.get("code", C.CODE_OK))
    message = envelope.get("status_msg", envelope.get("message", ""))
    return (code if isinstance(code, int) else -1), str(message)[:200]


def error_for(code: int, message: str, status: int) -> GatewayError:
    """The gateway error for an upstream status code (and its message)."""
    if code == C.CODE_CHAT_RUNNING or C.BUSY_STATUS_MSG in message.lower():
        return AccountInUse()
    if code == C.CODE_NO_CREDITS:
        return NoCredits()
    if code == C.CODE_QUOTA:
        return QuotaExhausted("The MiniMax account's plan quota is exhausted.")
    if status >= 500:
        return UpstreamServerError(f"MiniMax answered error {code} (HTTP {status}): {message}")
    return UpstreamError(f"MiniMax answered error {code} (HTTP {status}): {message}")


def credits_of(data: dict[str, Any]) -> float | None:
    """Credits left: ``op_credit_summary.total_remaining_amount`` when present (migrated
    accounts, where the old field reads 0), else ``total_remains_credit``."""
    summary = data.get("op_credit_summary")
    amount = summary.get("total_remaining_amount") if isinstance(summary, dict) else None
    if isinstance(amount, (str, int, float)) and not isinstance(amount, bool):
        try:
            return float(amount)
        except ValueError:
            pass
    old = data.get("total_remains_credit")
    return float(old) if isinstance(old, (int, float)) and not isinstance(old, bool) else None
