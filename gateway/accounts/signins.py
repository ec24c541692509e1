"""Server-side MiniMax Code sign-ins as the gateway's processes and its command line use
them: one :class:`~gateway.upstream.signins.SignIns` over the shared state, with an
OAuth client per region, and a SQLite state file that only its owner can read (the
records hold refresh tokens).
"""

from __future__ import annotations

import logging
import os
import stat

from gateway.config import Settings
from gateway.state import SQLITE_SCHEME, SharedState
from gateway.upstream import constants as C
from gateway.upstream.oauth import OAuthClient
from gateway.upstream.signins import SignIns

log = logging.getLogger(__name__)

#: The files SQLite keeps beside the database in WAL mode.
SQLITE_SIDE_FILES = ("", "-wal", "-shm")
PRIVATE_MODE = 0o600


def build_signins(settings: Settings, state: SharedState) -> SignIns:
    """The sign-ins of ``state``, each refreshed on its own region's account host."""
    clients = {region: OAuthClient(settings.code(region)) for region in C.CODE_REGIONS}
    return SignIns(state, clients, settings.refresh_before)


def protect_state_file(url: str) -> None:
    """Make a SQLite state file (and its WAL files) readable by its owner only: create it
    so when it does not exist yet (SQLite gives its WAL files the database's mode), take
    the group and world bits off when it does. A Redis state is the server's business."""
    if not url.startswith(SQLITE_SCHEME):
        return
    path = url[len(SQLITE_SCHEME):]
    try:
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_MODE))
        for name in (path + suffix for suffix in SQLITE_SIDE_FILES):
            if os.path.exists(name) and stat.S_IMODE(os.stat(name).st_mode) & 0o077:
                os.chmod(name, PRIVATE_MODE)
    except OSError as error:
        log.warning("could not make the state file private (%s): keep it chmod 600 yourself", type(error).__name__)
