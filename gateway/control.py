"""Where a gunicorn master puts its control socket (``gunicornc -s PATH``).

gunicorn's default is one path under the home folder (or ``$XDG_RUNTIME_DIR``): a second
gateway on the host takes it over, and ``gunicornc`` then reloads or stops the wrong one.
Here each master has its own, ``gunicorn.<pid>.ctl`` in the data folder (a socket path
has at most :data:`MAX_SOCKET_PATH` bytes; a longer one, or a folder that cannot be
made, falls back to a private folder under the system's temporary folder). Sockets left
by masters that died are removed when the next one starts.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import tempfile

log = logging.getLogger(__name__)

#: A Unix socket's path is at most 108 bytes, its terminating NUL included (Linux).
MAX_SOCKET_PATH = 107
#: The mode of a folder made for the socket.
FOLDER_MODE = 0o700
_NAME = re.compile(r"gunicorn\.(\d+)\.ctl")


def control_socket_path(data_dir: str, pid: int) -> str:
    """The control socket of the master ``pid``; its folder is made if missing."""
    for folder in (os.path.abspath(data_dir), _fallback_folder()):
        path = os.path.join(folder, f"gunicorn.{pid}.ctl")
        if len(path.encode()) > MAX_SOCKET_PATH:
            continue
        try:
            os.makedirs(folder, mode=FOLDER_MODE, exist_ok=True)
        except OSError:
            continue
        _remove_stale(folder)
        return path
    raise OSError("no folder for gunicorn's control socket")


def _fallback_folder() -> str:
    return os.path.join(tempfile.gettempdir(), f"minimax-free-api-{os.getuid()}")


def _remove_stale(folder: str) -> None:
    for path in glob.glob(os.path.join(folder, "gunicorn.*.ctl")):
        match = _NAME.fullmatch(os.path.basename(path))
        if match and not _alive(int(match.group(1))):
            try:
                os.remove(path)
            except OSError:
                pass  # another master removed it first


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
