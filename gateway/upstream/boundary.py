"""The boundary where transport exceptions become gateway errors, and the requests helpers
that live at it.

Every upstream call of every surface (requests for streams, uploads and downloads; the
gateway's own :class:`~gateway.upstream.transport.Wire` for the signed JSON calls; the
code surface's and the OAuth host's calls) runs inside :func:`transport_errors`, so a
socket error, a timeout or a refused connection is always one of
:class:`~gateway.errors.UpstreamNotReached` (provably nothing sent),
:class:`~gateway.errors.UpstreamTimeout` or :class:`~gateway.errors.UpstreamUnavailable`,
and exception text never carries a URL (whose query may hold a token).
"""

from __future__ import annotations

import contextlib
import http.client
from collections.abc import Iterator

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError, ReadTimeoutError

from gateway.errors import (
    GatewayError,
    UpstreamBadAnswer,
    UpstreamNotReached,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.upstream.answers import classify
from gateway.upstream.transport import NotConnected

#: Any origin, for requests to prepare a bare ``path?query`` (it takes absolute URLs only).
_ANY_ORIGIN = "http://origin"


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


def require_event_stream(response: requests.Response) -> None:
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
