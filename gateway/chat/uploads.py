"""Uploading attachments once per account: a content-hash cache in front of the upload.

The same bytes sent again (a picture in an earlier turn, the same document in several
requests) reuse the upstream file id instead of uploading again. The cache is per
account (file ids belong to the account that uploaded them) and bounded (least
recently used entries go first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from gateway.chat.media import Blob
from gateway.upstream.chat import Attachment
from gateway.upstream.client import UpstreamClient
from gateway.upstream.credentials import Credential
from gateway.upstream.files import Upload, upload

CACHE_ENTRIES = 4096


class UploadCache:
    def __init__(self, client: UpstreamClient, entries: int = CACHE_ENTRIES) -> None:
        self._client = client
        self._entries = entries
        self._cache: OrderedDict[tuple[str, str], Attachment] = OrderedDict()
        self._lock = threading.Lock()

    def attach(self, credential: Credential, blob: Blob) -> Attachment:
        key = (credential.key, blob.sha256)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return Attachment(cached.file_id, blob.filename, cached.is_image)
        item = Upload(blob.file, blob.size, blob.md5, blob.mime_type, blob.filename, blob.is_image)
        attachment = upload(self._client, credential, item)
        with self._lock:
            self._cache[key] = attachment
            while len(self._cache) > self._entries:
                self._cache.popitem(last=False)
        return attachment
