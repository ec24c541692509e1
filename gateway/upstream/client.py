"""The requests-based client of the MiniMax Agent web API.

One :class:`UpstreamClient` per worker process holds one connection pool. Every call:
signs the exact body it sends, uses explicit connect/read timeouts, closes its response
in ``finally``, and turns every transport failure and every non-success answer into a
:mod:`gateway.errors` class at a single boundary (:meth:`UpstreamClient._exchange` and
:func:`classify`). Exception text never carries the URL, whose query holds the token.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import requests
from requests.adapters import HTTPAdapter

from gateway.errors import (
    GatewayError,
    QuotaExhausted,
    UpstreamBadAnswer,
    UpstreamError,
    UpstreamRejectedSignature,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from gateway.upstream import constants as C
from gateway.upstream.credentials import Credential
from gateway.upstream.settings import UpstreamSettings
from gateway.upstream.signing import Identity, build_query, dump_body, signed_headers


#: Told of every call: its path, and the error class name when it failed.
Observer = Callable[[str, "str | None"], None]


class AccountBusy(UpstreamError):
    """The account is generating elsewhere ("chat is running"); try another account."""

    status = 429
    kind = "rate_limit"
    message = "The MiniMax account is busy with another generation."


class NoCredits(QuotaExhausted):
    message = "The MiniMax account has no credits left."


@dataclass
class _Device:
    uuid: str
    device_id: str
    registered_at: float | None = None
    real_user_id: str | None = None


class UpstreamClient:
    """Signed calls to the upstream, with a device registration cached per account."""

    def __init__(
        self,
        settings: UpstreamSettings,
        session: requests.Session | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.settings = settings
        self._observer: Observer = observer or (lambda path, error_kind: None)
        self._session = session or _new_session(settings.pool_size)
        self._devices: dict[str, _Device] = {}
        self._device_lock = threading.Lock()
        self._registration_locks: dict[str, threading.Lock] = {}

    # -- endpoints -------------------------------------------------------------------
    def user_info(self, cred: Credential) -> dict[str, Any]:
        return self.call(cred, "GET", C.PATH_USER_INFO)

    def membership(self, cred: Credential) -> dict[str, Any]:
        return self.call(cred, "POST", C.PATH_MEMBERSHIP, {})

    def send_message(self, cred: Credential, body: dict[str, Any]) -> dict[str, Any]:
        return self.call(cred, "POST", C.PATH_SEND, body)

    def chat_detail(self, cred: Credential, chat_id: int) -> dict[str, Any]:
        return self.call(cred, "POST", C.PATH_DETAIL, {"chat_id": chat_id})

    def stop_chat(self, cred: Credential, chat_id: int) -> dict[str, Any]:
        return self.call(cred, "POST", C.PATH_STOP, {"chat_id": chat_id})

    def delete_chat(self, cred: Credential, chat_id: int) -> dict[str, Any]:
        return self.call(cred, "POST", C.PATH_DELETE, {"chat_id": chat_id})

    def list_chats(
        self, cred: Credential, page_size: int = 50, after: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"page_size": page_size}
        if after is not None:
            body["next_page_index_id"] = after
        return self.call(cred, "POST", C.PATH_LIST, body)

    def register_device(self, cred: Credential) -> dict[str, Any]:
        """Register (again) and cache this account's device id."""
        device = self._device(cred)
        data = self._call_raw(cred, device, "POST", C.PATH_DEVICE_REGISTER, {"uuid": device.uuid})
        device_id = str(data.get("deviceIDStr") or "")
        if not device_id.isdigit():
            raise UpstreamBadAnswer("MiniMax device registration returned no device id.")
        device.device_id, device.registered_at = device_id, time.monotonic()
        device.real_user_id = str(data.get("realUserID") or "") or None
        return data

    def put_object(self, url: str, headers: dict[str, str], body: IO[bytes]) -> None:
        """Upload to object storage (already signed by the caller); streams ``body``."""
        status, payload = self._exchange_url("PUT", url, headers, body)
        if status != 200:
            code = _xml_code(payload)
            raise UpstreamError(f"Object storage refused the upload (HTTP {status} {code}).")

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

    # -- the signed call ---------------------------------------------------------------
    def call(
        self,
        cred: Credential,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        leading_query: Iterable[tuple[str, str]] = (),
        register: bool = True,
    ) -> dict[str, Any]:
        """A signed JSON call on behalf of ``cred``; returns the unwrapped answer.

        The account's device is registered first when due, unless ``register`` is off
        (the doctor checks the token before it registers anything).
        """
        device = self._registered_device(cred) if register else self._device(cred)
        return self._call_raw(cred, device, method, path, body, leading_query)

    def _registered_device(self, cred: Credential) -> _Device:
        """The account's device, registered (again) first when that is due."""
        device = self._device(cred)
        if _registration_due(device):
            with self._registration_lock(cred):
                if _registration_due(device):
                    self.register_device(cred)
        return device

    def _call_raw(
        self,
        cred: Credential,
        device: _Device,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        leading_query: Iterable[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        text = "" if body is None else dump_body(body)
        target, headers = self._signed(cred, device, path, text, leading_query)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            status, payload = self._exchange(method, target, headers, text.encode())
            answer = classify(status, payload)
        except GatewayError as error:
            self._observer(path, type(error).__name__)
            raise
        self._observer(path, None)
        return answer

    def _signed(
        self, cred: Credential, device: _Device, path: str, signed_body: str,
        leading_query: Iterable[tuple[str, str]] = (),
    ) -> tuple[str, dict[str, str]]:
        """The signed request target (path and query) and headers for ``signed_body``."""
        unix_ms = int(time.time() * 1000)
        identity = Identity(device.uuid, device.device_id, _user_id(cred, device), cred.jwt)
        query = build_query(identity, unix_ms, leading_query)
        headers = signed_headers(
            base_url=self.settings.base_url, path=path, query=query, body=signed_body,
            token=cred.jwt, unix_ms=unix_ms, mode=self.settings.signature_mode,
        )
        return f"{path}?{query}", headers

    @contextlib.contextmanager
    def stream_form(
        self, cred: Credential, path: str, form: dict[str, str],
        files: dict[str, tuple[str, bytes, str]], signed_body: str,
    ) -> Iterator[Iterator[bytes]]:
        """POST a multipart form whose signature covers ``signed_body``; yields the
        answer's raw chunks as they arrive (for an SSE reply). Closes the response."""
        target, headers = self._signed(cred, self._registered_device(cred), path, signed_body)
        response = None
        try:
            response = self._session.post(
                self.settings.base_url + target, headers=headers, data=form, files=files,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout), stream=True,
            )
            if response.status_code != 200:
                classify(response.status_code, response.content)
                raise UpstreamBadAnswer(f"MiniMax answered HTTP {response.status_code}.")
            yield _wrapped_chunks(response)
        except requests.Timeout:
            raise UpstreamTimeout() from None
        except requests.RequestException as exc:
            raise UpstreamUnavailable(f"{UpstreamUnavailable.message} ({type(exc).__name__})") from None
        finally:
            if response is not None:
                response.close()

    def _exchange(
        self, method: str, target: str, headers: dict[str, str], data: bytes
    ) -> tuple[int, bytes]:
        return self._exchange_url(method, self.settings.base_url + target, headers, data)

    def _exchange_url(
        self, method: str, url: str, headers: dict[str, str], data: bytes | IO[bytes]
    ) -> tuple[int, bytes]:
        """Send one request; the only place transport exceptions are caught and wrapped."""
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        response = None
        try:
            response = self._session.request(
                method, url, headers=headers, data=data or None, timeout=timeout,
                allow_redirects=False,
            )
            return response.status_code, response.content
        except requests.Timeout:
            raise UpstreamTimeout() from None
        except requests.RequestException as exc:
            # The exception's text includes the URL and so the token: report its kind only.
            raise UpstreamUnavailable(
                f"{UpstreamUnavailable.message} ({type(exc).__name__})"
            ) from None
        finally:
            if response is not None:
                response.close()

    # -- devices -----------------------------------------------------------------------
    def _device(self, cred: Credential) -> _Device:
        device = self._devices.get(cred.key)
        if device is None:
            with self._device_lock:
                device = self._devices.setdefault(cred.key, _new_device(cred))
        return device

    def _registration_lock(self, cred: Credential) -> threading.Lock:
        # One lock per account so concurrent first requests register once.
        with self._device_lock:
            return self._registration_locks.setdefault(cred.key, threading.Lock())

    def close(self) -> None:
        self._session.close()


def _wrapped_chunks(response: requests.Response) -> Iterator[bytes]:
    # chunk_size=None: whatever the socket delivers, so no line is ever split by us.
    yield from response.iter_content(chunk_size=None)


def _registration_due(device: _Device) -> bool:
    registered = device.registered_at
    return registered is None or time.monotonic() - registered > C.DEVICE_TTL_SECONDS


def _user_id(cred: Credential, device: _Device) -> str:
    # A bare JWT's user.id is only a fallback: once registration names the realUserID, use it.
    if cred.explicit_user_id or not device.real_user_id:
        return cred.real_user_id
    return device.real_user_id


def _new_device(cred: Credential) -> _Device:
    hint = cred.device_hint if cred.device_hint and cred.device_hint.isdigit() else None
    fallback = "".join(random.choice("0123456789") for _ in range(8))
    return _Device(uuid=str(uuid.uuid4()), device_id=hint or fallback)


def _new_session(pool_size: int) -> requests.Session:
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
    if status >= 500:
        raise UpstreamServerError(f"MiniMax answered HTTP {status}.")
    document = _json_object(payload, status)
    code, message = _status_of(document)
    if status == 400 and code == C.CODE_INVALID_SIGNATURE:
        raise UpstreamRejectedSignature()
    if code != C.CODE_OK or status != 200:
        raise _error_for(code, message, status)
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
        raise UpstreamBadAnswer(f"MiniMax answered HTTP {status} with a non-JSON body.") from None
    if not isinstance(document, dict):
        raise UpstreamBadAnswer()
    return document


def _status_of(document: dict[str, Any]) -> tuple[int, str]:
    """The status code of either envelope: ``base_resp`` (matrix) or ``statusInfo`` (v1)."""
    envelope = document.get("base_resp") or document.get("statusInfo") or {}
    if not isinstance(envelope, dict):
        return -1, "malformed status"
    code = envelope.get("status_code", envelope.get("code", C.CODE_OK))
    message = envelope.get("status_msg", envelope.get("message", ""))
    return (code if isinstance(code, int) else -1), str(message)[:200]


def _error_for(code: int, message: str, status: int) -> GatewayError:
    if code == C.CODE_CHAT_RUNNING:
        return AccountBusy()
    if code == C.CODE_NO_CREDITS:
        return NoCredits()
    if code == C.CODE_QUOTA:
        return QuotaExhausted("The MiniMax account's plan quota is exhausted.")
    return UpstreamError(f"MiniMax answered error {code} (HTTP {status}): {message}")
