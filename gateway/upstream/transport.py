"""The wire of the signed JSON calls: the request line exactly as signed, one pool per host.

``requests`` re-quotes a URL twice on its way out (``PreparedRequest.prepare_url`` and
urllib3's ``urlopen``), in a pure-Python loop over every byte of the ~700-character
signed URL: a quarter of a worker's CPU under load, and a changed target for any value
whose encoding urllib3 normalises differently from the browser's (``[`` and ``]``, which
axios leaves raw, become ``%5B``/``%5D``, and the ``yy`` signature no longer matches).
:class:`Wire` writes the signed ``path?query`` as it is on a pooled keep-alive connection
of urllib3 (its connection and pool primitives, not its URL handling) and reads the whole
answer. Failures surface as urllib3, ``http.client`` or socket exceptions; the caller maps
them at its one boundary (:func:`gateway.upstream.client.transport_errors`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import certifi
import urllib3
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.util.timeout import Timeout

#: Hosts kept with their pool at once (API host, stream host, object storage, spare).
MAX_HOSTS = 8
#: Headers ``requests`` would add; kept so the upstream sees the same request as before.
DEFAULT_HEADERS: Mapping[str, str] = {"Accept-Encoding": "gzip, deflate", "Accept": "*/*",
                                      "Connection": "keep-alive"}


class Wire:
    """Verbatim requests over keep-alive connections, one urllib3 pool per upstream host.

    ``pool_size`` connections per host are kept for reuse; under gevent more greenlets
    may call at once, and each extra one opens a connection that is closed afterwards
    (``block=False``), so no call ever waits for a connection.
    """

    def __init__(self, pool_size: int) -> None:
        self._pool_size = pool_size
        self._pools: dict[str, HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def exchange(self, method: str, url: str, headers: Mapping[str, str | None], body: bytes | None,
                 timeouts: tuple[float, float]) -> tuple[int, bytes]:
        """Send one request whose target is ``url``'s path and query byte for byte."""
        origin, target = split_url(url)
        pool = self._pool(origin)
        conn = pool._get_conn()
        reusable = False
        try:
            conn.timeout = timeouts[0]  # connect (and send) timeout
            conn.request(method, target, body=body, headers=_headers(headers))
            # getresponse() puts conn.timeout on the socket: from here on, the read timeout.
            conn.timeout = timeouts[1]
            response = conn.getresponse()
            payload = response.data
            # Read to the end: http.client has already dropped the socket if the server
            # said it would close, and the next request on this connection reconnects.
            reusable = True
            return response.status, payload
        finally:
            if not reusable:
                conn.close()  # a half-read or closing connection is never reused
            pool._put_conn(conn)

    def connections_opened(self) -> int:
        """Connections created so far over all hosts (for tests of the pooling)."""
        return sum(pool.num_connections for pool in self._pools.values())

    def _pool(self, origin: str) -> HTTPConnectionPool:
        pool = self._pools.get(origin)
        if pool is None:
            with self._lock:
                pool = self._pools.get(origin) or self._new_pool(origin)
        return pool

    def _new_pool(self, origin: str) -> HTTPConnectionPool:
        if len(self._pools) >= MAX_HOSTS:  # a host seen once (a download) must not pin sockets
            _, oldest = self._pools.popitem()
            oldest.close()
        # The same CA bundle as requests (certifi), not whatever the system happens to have.
        tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": certifi.where()} if origin.startswith("https:") else {}
        pool = urllib3.connection_from_url(origin, maxsize=self._pool_size, block=False, retries=False,
                                           timeout=Timeout(connect=None, read=None), **tls)
        self._pools[origin] = pool
        return pool

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def split_url(url: str) -> tuple[str, str]:
    """``(scheme://host[:port], /path?query)`` by plain string splitting (no re-encoding)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("not an absolute URL")
    slash = rest.find("/")
    if slash < 0:
        return url, "/"
    return f"{scheme}://{rest[:slash]}", rest[slash:]


def _headers(headers: Mapping[str, str | None]) -> dict[str, str]:
    # None drops a default, as in requests (session calls send no Accept).
    merged: dict[str, str | None] = {**DEFAULT_HEADERS}
    lowered = {name.lower(): name for name in merged}
    for name, value in headers.items():
        merged.pop(lowered.get(name.lower(), name), None)
        merged[name] = value
    return {name: value for name, value in merged.items() if value is not None}
