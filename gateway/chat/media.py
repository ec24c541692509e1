"""Images and documents: from request parts to bytes ready to upload.

Inline data arrives decoded (by :mod:`gateway.chat.data_urls`) and is used as given.
Remote URLs are fetched safely: http(s) only; every connection's *peer address* is
checked after connecting (so neither a redirect nor a DNS trick reaches a loopback,
private, link-local or otherwise non-public address) unless the host is named in
``allow_hosts``; bounded in size, redirects and time. Fetched bytes are spooled (memory up to ``SPOOL_BYTES``, then a
temporary file), so many large downloads in flight keep memory bounded. The content
type is sniffed from the bytes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import mimetypes
import socket
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from gateway.chat.settings import FetchSettings
from gateway.errors import InvalidRequest, PayloadTooLarge
from gateway.parts import ChatRequest, MediaPart

SPOOL_BYTES = 1024 * 1024
CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 5
UPSTREAM_MAX_BYTES = 100 * 1024 * 1024  # the upstream's own limit per file
#: (magic prefix, offset, MIME type) for the formats worth recognising.
SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"%PDF-", 0, "application/pdf"),
    (b"PK\x03\x04", 0, "application/zip"),
)
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


@dataclass
class Blob:
    """Bytes ready to upload, with what the upload needs to know about them."""

    file: IO[bytes] = field(repr=False)
    size: int
    sha256: str
    md5: bytes = field(repr=False)
    mime_type: str
    filename: str

    @property
    def is_image(self) -> bool:
        return self.mime_type in IMAGE_TYPES

    def close(self) -> None:
        self.file.close()


class MediaResolver:
    """Turns the request's media parts into :class:`Blob` objects."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self._session = _guarded_session(settings.allow_hosts)

    def resolve(self, request: ChatRequest) -> list[Blob]:
        parts = [p for m in request.messages for p in m.parts if isinstance(p, MediaPart)]
        blobs: list[Blob] = []
        try:
            for index, part in enumerate(parts, 1):
                blobs.append(self._blob(part, index))
        except BaseException:
            close_all(blobs)
            raise
        return blobs

    def _blob(self, part: MediaPart, index: int) -> Blob:
        if part.data is not None:
            if len(part.data) > UPSTREAM_MAX_BYTES:
                raise PayloadTooLarge("An attached file exceeds the upstream's 100 MB limit.")
            return _spool([part.data], part.mime_type, part.filename, index)
        assert part.url is not None
        return self._fetch(part.url, part.filename, index)

    def _fetch(self, url: str, filename: str | None, index: int) -> Blob:
        deadline = time.monotonic() + self.settings.timeout
        for _ in range(MAX_REDIRECTS + 1):
            _check_scheme(url)
            response = self._get(url, deadline)
            try:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                return self._read(response, url, filename, index, deadline)
            finally:
                response.close()
        raise InvalidRequest(f"Fetching the URL took more than {MAX_REDIRECTS} redirects.")

    def _get(self, url: str, deadline: float) -> requests.Response:
        try:
            return self._session.get(url, stream=True, allow_redirects=False,
                                     timeout=(5.0, max(0.1, deadline - time.monotonic())))
        except ForbiddenAddress as error:
            raise InvalidRequest(f"Refused to fetch {_host(url)}: {error}") from None
        except requests.Timeout:
            raise InvalidRequest(f"Fetching {_host(url)} timed out.") from None
        except requests.RequestException as error:
            cause = error.__context__ if isinstance(error.__context__, ForbiddenAddress) else None
            if cause is None:
                cause = _forbidden_in(error)
            if cause is not None:
                raise InvalidRequest(f"Refused to fetch {_host(url)}: {cause}") from None
            raise InvalidRequest(f"Could not fetch {_host(url)} ({type(error).__name__}).") from None

    def _read(self, response: requests.Response, url: str, filename: str | None,
              index: int, deadline: float) -> Blob:
        if response.status_code != 200:
            raise InvalidRequest(f"Fetching {_host(url)} answered HTTP {response.status_code}.")
        limit = self.settings.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise InvalidRequest(f"The file at {_host(url)} exceeds the {limit // 2**20} MB fetch limit.")
        chunks = _bounded(response.iter_content(CHUNK_BYTES), limit, deadline, _host(url))
        name = filename or urlsplit(url).path.rsplit("/", 1)[-1] or None
        declared_type = response.headers.get("content-type", "").split(";")[0].strip()
        return _spool(chunks, declared_type or "application/octet-stream", name, index)

    def close(self) -> None:
        self._session.close()


def close_all(blobs: Iterable[Blob]) -> None:
    for blob in blobs:
        blob.close()


def sniff(head: bytes, declared: str) -> str:
    """The MIME type the bytes show; the declared one when they show none."""
    for magic, offset, mime in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            if mime == "image/webp" and not head.startswith(b"RIFF"):
                continue
            return mime
    return declared or "application/octet-stream"


def _spool(chunks: Iterable[bytes], declared: str, filename: str | None, index: int) -> Blob:
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    sha, md5, size, head = hashlib.sha256(), hashlib.md5(), 0, b""  # noqa: S324 - OSS wants MD5
    try:
        for chunk in chunks:
            spooled.write(chunk)
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
            head = head if len(head) >= 16 else (head + chunk)[:16]
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    mime = sniff(head, declared)
    return Blob(spooled, size, sha.hexdigest(), md5.digest(), mime, _filename(filename, mime, index))


def _filename(given: str | None, mime: str, index: int) -> str:
    if given and "." in given:
        return given
    extension = mimetypes.guess_extension(mime) or ".bin"
    return f"{given or f'file{index}'}{extension}"


def _bounded(chunks: Iterable[bytes], limit: int, deadline: float, host: str) -> Iterable[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise InvalidRequest(f"The file at {host} exceeds the {limit // 2**20} MB fetch limit.")
        if time.monotonic() > deadline:
            raise InvalidRequest(f"Fetching {host} timed out.")
        yield chunk


def _check_scheme(url: str) -> None:
    if urlsplit(url).scheme not in ("http", "https"):
        raise InvalidRequest("Only http:// and https:// URLs (or data: URLs) can be attached.")


def _host(url: str) -> str:
    return urlsplit(url).hostname or "the URL"


# -- connections that check where they really went -----------------------------------
class ForbiddenAddress(ConnectionError):
    """The connection reached an address that is not on the public internet."""


def _forbidden_in(error: BaseException) -> ForbiddenAddress | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ForbiddenAddress):
            return current
        seen.add(id(current))
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else (current.__cause__ or current.__context__)
    return None


def _check_address(address_text: str) -> None:
    address = ipaddress.ip_address(address_text.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if not address.is_global or address.is_multicast:
        raise ForbiddenAddress(f"it resolves to the non-public address {address}")


def _connect_checked(connection: HTTPConnection, allow: frozenset[str]) -> socket.socket:
    """Resolve, check every address, then connect to a checked address itself.

    Connecting to the address that was checked (rather than letting the resolver run
    again) closes the gap a DNS-rebinding answer would use, and no packet is ever sent
    to a refused address. Hosts in ``allow`` skip the check.
    """
    host, port = connection.host, connection.port or 80
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise NameResolutionError(host, connection, error) from None
    if host not in allow and f"{host}:{port}" not in allow:
        for info in infos:
            _check_address(str(info[4][0]))
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    for option in connection.socket_options or ():
        sock.setsockopt(*option)
    try:
        sock.settimeout(connection.timeout if isinstance(connection.timeout, (int, float)) else None)
        sock.connect(address)
    except TimeoutError:
        sock.close()
        raise ConnectTimeoutError(connection, f"Connection to {host} timed out.") from None
    except OSError as error:
        sock.close()
        raise NewConnectionError(connection, f"Failed to connect to {host}: {error}") from None
    return sock


def _guarded_session(allow: frozenset[str]) -> requests.Session:
    class GuardedHTTP(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _connect_checked(self, allow)

    class GuardedHTTPS(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _connect_checked(self, allow)

    class Pool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTP

    class PoolS(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPS

    adapter = HTTPAdapter(max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": PoolS}
    session = requests.Session()
    session.trust_env = False  # a proxy would hide the real peer address
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
