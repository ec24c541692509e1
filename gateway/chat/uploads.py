"""Uploading attachments once per account and surface: a content-hash cache in front of
the driver's upload.

The same bytes sent again (a picture in an earlier turn, the same document in several
requests) reuse the upstream file reference instead of uploading again. Entries are per
account and surface (file references belong to the account, and to the surface, that
uploaded them) and live in the shared state, so every worker and host reuses them; each
is kept for :data:`UPLOAD_TTL` after its last use.
"""

from __future__ import annotations

import dataclasses
import json
import logging

from gateway.chat.media import Blob
from gateway.state import SharedState
from gateway.upstream.conversation import Attachment, Driver, Upload
from gateway.upstream.credentials import Credential

log = logging.getLogger(__name__)

UPLOAD_KEY = "upload:"
#: Seconds an uploaded file's reference is reused after its last use. [assumed] The
#: upstream keeps files with their chats; how long a detached reference stays usable
#: is unknown, so entries are kept for hours, not for ever.
UPLOAD_TTL = 6 * 3600.0


class UploadCache:
    def __init__(self, state: SharedState, ttl: float = UPLOAD_TTL) -> None:
        self._state = state
        self._ttl = ttl

    def attach(self, driver: Driver, credential: Credential, blob: Blob) -> Attachment:
        key = f"{UPLOAD_KEY}{credential.key}:{driver.name}:{blob.sha256}"
        cached = self._get(key)
        if cached is not None:
            self._put(key, cached)  # kept while it is used
            return dataclasses.replace(cached, file_name=blob.filename)
        item = Upload(blob.file, blob.size, blob.md5, blob.mime_type, blob.filename, blob.is_image)
        attachment = driver.upload(credential, item)
        self._put(key, attachment)
        return attachment

    def _get(self, key: str) -> Attachment | None:
        try:
            raw = self._state.get(key)
            return Attachment(**json.loads(raw)) if raw else None
        except (TypeError, ValueError):
            return None
        except Exception:  # the state is down: upload again
            log.warning("could not read the upload cache")
            return None

    def _put(self, key: str, attachment: Attachment) -> None:
        try:
            self._state.put(key, json.dumps(dataclasses.asdict(attachment)), self._ttl)
        except Exception:
            log.warning("could not keep an upload in the cache")
