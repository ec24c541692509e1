"""Uploading attachments once per account and surface: a content-hash cache in front of
the driver's upload.

The same bytes sent again (a picture in an earlier turn, the same document in several
requests) reuse the upstream file reference instead of uploading again. The cache is per
account and surface (file references belong to the account, and to the surface, that
uploaded them) and bounded (least recently used entries go first).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict

from gateway.chat.media import Blob
from gateway.upstream.conversation import Attachment, Driver, Upload
from gateway.upstream.credentials import Credential

CACHE_ENTRIES = 4096


class UploadCache:
    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._entries = entries
        self._cache: OrderedDict[tuple[str, str, str], Attachment] = OrderedDict()
        self._lock = threading.Lock()

    def attach(self, driver: Driver, credential: Credential, blob: Blob) -> Attachment:
        key = (credential.key, driver.name, blob.sha256)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return dataclasses.replace(cached, file_name=blob.filename)
        item = Upload(blob.file, blob.size, blob.md5, blob.mime_type, blob.filename, blob.is_image)
        attachment = driver.upload(credential, item)
        with self._lock:
            self._cache[key] = attachment
            while len(self._cache) > self._entries:
                self._cache.popitem(last=False)
        return attachment
