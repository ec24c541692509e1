"""The URLs that still go through ``requests`` reach the upstream byte for byte.

Streams (the session surface's message POST, speech recognition's form) and object
storage uploads are sent by ``requests``, which re-quotes a URL in ``prepare_url`` and
again in urllib3's ``urlopen``; the signed JSON calls have their own wire for that
reason. Each URL here is built by the real code path (:meth:`UpstreamClient.signed`,
:meth:`Policy.object_url` as :func:`files.upload` names the object) with values that
need quoting where the code lets such values in, and must come out of
``requests.Request(...).prepare()`` unchanged and arrive at a raw server as built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from gateway.config import Settings
from gateway.upstream import constants as C
from gateway.upstream.client import UpstreamClient
from gateway.upstream.conversation import Upload
from gateway.upstream.credentials import Credential
from gateway.upstream.files import Policy, oss_headers
from gateway.upstream.transport import split_url
from tests.upstream.test_wire import RawServer

#: A token as the site issues them (three base64url parts), and a MiniMax Code one.
TOKENS = ["eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjp7ImlkIjoiMTIzIn19.c2lnbmF0dXJlLV8tXw", "mmoat_AbC-123_xyz"]
#: Session ids as the upstream hands them out, and odd ones (the code puts them in the path as given).
SESSION_IDS = ["372915493028417536", "0f8fad5b-d9cb-469f-a165-70867728950e", "sess_01J9ZK3QX7", "s[1]", "会话 1",
               "50%", "a+b~c"]
#: MINIMAX_REGION values (region, lang), the captured ones and odd ones a user may set.
LOCALES = [("en", "en"), ("cn", "zh"), ("zh-Hant", "zh_TW"), ("[eu]", "a b+ü%")]
#: Upload file names: the object key takes the extension.
FILE_NAMES = ["photo.jpeg", "报告.pdf", "x.[1]", "y.100%", "z.a+b", "w.ü", "v.a b", "noextension", "u.tar.gz"]
#: MINIMAX_STREAM_BASE_URL values (the default is derived from the base URL).
STREAM_BASES = ["https://agent-stream.minimax.io", "http://127.0.0.1:8080", "http://[::1]:9000",
                "https://agent-stream.minimaxi.com", "https://Agent-Stream.MiniMax.io", ""]


def client_with(base: str, stream_base: str = "", locale: tuple[str, str] | None = None,
                session: requests.Session | None = None) -> UpstreamClient:
    settings = dataclasses.replace(Settings.from_env().upstream(), base_url=base, stream_base_url=stream_base,
                                   locale=locale)
    return UpstreamClient(settings, session=session)


def prepared(method: str, url: str) -> str:
    return str(requests.Request(method, url).prepare().url)


class Recorder(requests.Session):
    """Keeps the URL of each POST instead of sending it; answers an empty event stream."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def post(self, url: Any, data: Any = None, json: Any = None, **kwargs: Any) -> requests.Response:
        self.urls.append(url)
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "text/event-stream"
        response.raw = io.BytesIO(b"")
        return response


def ready(client: UpstreamClient, token: str) -> Credential:
    """A credential whose account needs no preparing (no call but the ones under test)."""
    cred = Credential(real_user_id="123", jwt=token)
    client._book.account(cred).registered_at = time.monotonic()
    return cred


def streamed_urls(client: UpstreamClient, cred: Credential) -> None:
    """A session message POST per session id, and a speech recognition form."""
    for session_id in SESSION_IDS:
        path = C.SESSION_PREFIXES[0] + C.SESSION_PATH_MESSAGE.format(session_id=session_id)
        with client.open_stream(cred, path, {"text": "hi"}):
            pass
    with client.stream_form(cred, C.PATH_ASR, {"a": "1"}, {}, "x" * 96):
        pass


@pytest.mark.parametrize("stream_base", STREAM_BASES)
@pytest.mark.parametrize("locale", LOCALES, ids=str)
@pytest.mark.parametrize("token", TOKENS, ids=["jwt", "mmoat"])
def test_a_signed_stream_url_survives_requests_preparation(stream_base: str, locale: tuple[str, str],
                                                           token: str) -> None:
    recorder = Recorder()
    client = client_with("https://agent.minimax.io", stream_base, locale, recorder)
    streamed_urls(client, ready(client, token))
    assert len(recorder.urls) == len(SESSION_IDS) + 1
    for url in recorder.urls:
        assert prepared("POST", url) == url
    client.close()


def object_url(file_name: str, endpoint: str) -> str:
    """The object URL :func:`gateway.upstream.files.upload` builds for ``file_name``."""
    policy = Policy("id", "secret", "sts", "minimax-bucket", "agent/2026-12-07/", endpoint)
    extension = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
    return policy.object_url(f"{policy.dir.strip('/')}/{uuid.uuid4()}.{extension}")


@pytest.mark.parametrize("file_name", FILE_NAMES)
@pytest.mark.parametrize("endpoint", ["oss-cn-hangzhou.aliyuncs.com", "https://oss-us-east-1.aliyuncs.com/"])
def test_an_object_url_survives_requests_preparation(file_name: str, endpoint: str) -> None:
    url = object_url(file_name, endpoint)
    assert prepared("PUT", url) == url


# -- as received: requests' and urllib3's quoting both -------------------------------------
def event_stream(head: bytes, body: bytes) -> tuple[bytes, bool]:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 0\r\n\r\n", True


@pytest.fixture()
def server() -> Iterator[RawServer]:
    raw = RawServer(event_stream)
    yield raw
    raw.close()


@pytest.mark.parametrize("locale", LOCALES, ids=str)
def test_a_stream_arrives_with_the_target_it_was_signed_with(server: RawServer, locale: tuple[str, str]) -> None:
    client = client_with(server.url, server.url, locale)
    signed: list[str] = []
    original = client.signed

    def keep(*args: Any, **kwargs: Any) -> tuple[str, dict[str, str]]:
        url, headers = original(*args, **kwargs)
        signed.append(url)
        return url, headers

    client.signed = keep  # type: ignore[method-assign]
    streamed_urls(client, ready(client, TOKENS[0]))
    client.close()
    assert len(signed) == len(SESSION_IDS) + 1
    assert server.targets == [split_url(url)[1].encode() for url in signed]


@pytest.mark.parametrize("file_name", FILE_NAMES)
def test_an_upload_arrives_at_the_object_it_was_signed_for(file_name: str) -> None:
    raw = RawServer(lambda head, body: (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False))
    client = client_with(raw.url)
    url = object_url(file_name, raw.url)
    data = b"file bytes"
    item = Upload(io.BytesIO(data), len(data), hashlib.md5(data).digest(), "application/octet-stream", file_name, False)
    try:
        client.put_object(url, oss_headers(Policy("id", "secret", "sts", "b", "d", raw.url), "k", item), item.file)
        assert raw.targets == [split_url(url)[1].encode()]
    finally:
        client.close()
        raw.close()
