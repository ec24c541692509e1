"""Signed calls and streams of the MiniMax Agent web API, shared by both web surfaces.

One :class:`UpstreamClient` per worker process holds the connections (the gateway's own
:class:`~gateway.upstream.transport.Wire` for signed JSON calls, requests for streams,
uploads and downloads) and the accounts' browser state (:mod:`gateway.upstream.identity`),
which it makes ready before a call: realUserID learned, token renewed, device registered.
Every call signs the exact body it sends (:mod:`gateway.upstream.signing`), uses explicit
timeouts, closes its response in ``finally`` and maps failures to :mod:`gateway.errors`
classes at one boundary: transport exceptions in
:func:`~gateway.upstream.boundary.transport_errors`, answers in
:func:`~gateway.upstream.answers.classify`. Exception text never carries a URL, whose
query holds the token.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import requests

from gateway.errors import (
    GatewayError,
    UpstreamBadAnswer,
    UpstreamError,
    UpstreamRejectedSignature,
    UpstreamUnauthorized,
)
from gateway.upstream import constants as C
from gateway.upstream.answers import classify, credits_of, xml_code
from gateway.upstream.boundary import (
    as_requests_sends,
    chunks,
    new_session,
    require_event_stream,
    set_read_timeout,
    transport_errors,
)
from gateway.upstream.bundle import LiveConstants
from gateway.upstream.credentials import Credential, token_expiry
from gateway.upstream.identity import (
    AccountBook,
    TokenStore,
    WebAccount,
    preparation_due,
    registration_due,
    renewal_due,
)
from gateway.upstream.settings import UpstreamSettings
from gateway.upstream.signing import Identity, WebConstants, build_query, carries_region, dump_body, signatures
from gateway.upstream.transport import Wire

log = logging.getLogger(__name__)

#: Told of every call: its path, and the error class name when it failed.
Observer = Callable[[str, "str | None"], None]
API, STREAM = "api", "stream"


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
        self._observer: Observer = observer or (lambda path, error_kind: None)
        self._session = session or new_session(settings.pool_size)
        # The signed JSON calls (the hot path: send, every poll, delete) go out verbatim.
        self.wire = Wire(settings.base_url, settings.pool_size)
        self._book = AccountBook(tokens)
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
        account = self._book.account(cred)
        data = self._call_raw(cred, account, "POST", C.PATH_DEVICE_REGISTER, {"uuid": account.uuid})
        device_id = str(data.get("deviceIDStr") or "")
        if not device_id.isdigit():
            raise UpstreamBadAnswer("MiniMax device registration returned no device id.")
        account.device_id, account.registered_at = device_id, time.monotonic()
        return data

    def learn_identity(self, cred: Credential) -> str:
        """The account's realUserID, from the user-info call (cached)."""
        account = self._book.account(cred)
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
        account = self._book.account(cred)
        account.renew_tried_at = time.monotonic()
        data = self._call_raw(cred, account, "POST", C.PATH_RENEWAL, None)
        token = data.get("token")
        if not isinstance(token, str) or token.count(".") != 2:
            raise UpstreamBadAnswer("MiniMax's token renewal returned no token.")
        account.token, account.expires_at = token, token_expiry(token)
        self._book.keep_token(cred, account)
        return True

    def put_object(self, url: str, headers: dict[str, str], body: IO[bytes]) -> None:
        """Upload to object storage (already signed by the caller); streams ``body``."""
        status, payload = self._exchange_url("PUT", url, headers, body)
        if status != 200:
            code = xml_code(payload)
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
        account = self.prepared(cred) if prepare else self._book.account(cred)
        return self._call_raw(cred, account, method, path, body, leading_query)

    def prepared(self, cred: Credential) -> WebAccount:
        """The account, with identity, token and device made ready (once, under a lock)."""
        account = self._book.account(cred)
        if preparation_due(account, self.settings.renew_before):
            with self._book.lock(cred):
                self._prepare(cred, account)
        return account

    def _prepare(self, cred: Credential, account: WebAccount) -> None:
        if account.real_user_id is None:
            self.learn_identity(cred)
        if renewal_due(account, self.settings.renew_before):
            self._book.renewed(cred, account)  # another worker or host may have renewed it already
        if renewal_due(account, self.settings.renew_before):
            try:
                self.renew(cred)
            except GatewayError as error:  # keep the old token; it still works until exp
                log.info("token renewal of account %s failed: %s", cred.key, type(error).__name__)
        if registration_due(account):
            self.register_device(cred)

    def _call_raw(
        self,
        cred: Credential,
        account: WebAccount,
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

    def _exchange_signed(self, account: WebAccount, method: str, path: str, text: str | None,
                         leading_query: Iterable[tuple[str, str]], constants: WebConstants) -> dict[str, Any]:
        url, headers = self.signed(account, API, path, text, leading_query, constants)
        with transport_errors():
            status, payload = self.wire.exchange(method, url, headers, _wire_body(text), self._timeouts())
        return classify(status, payload)

    def _fetch_page(self, url: str) -> tuple[int, bytes]:
        """A plain GET of the web app's page or one of its scripts (for :mod:`.bundle`)."""
        return self._exchange_url("GET", url, {"User-Agent": C.USER_AGENT}, b"")

    def signed(
        self, account: WebAccount, host: str, path: str, body: str | None,
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
                require_event_stream(response)
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

    def close(self) -> None:
        self._session.close()
        self.wire.close()


def _wire_body(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _content_headers(session_call: bool, has_body: bool) -> dict[str, str]:
    # Session calls send Content-Type always and no Accept (None drops requests' default);
    # matrix and v1 calls accept JSON and name a type only with a body.
    if session_call:
        return {"Content-Type": "application/json", "Accept": None}  # type: ignore[dict-item]
    headers = {"Accept": C.ACCEPT_JSON}
    if has_body:
        headers["Content-Type"] = "application/json"
    return headers


