"""Debian packages the browser and deployment tests need, installed on first use.

CI runs as root with the Debian archive reachable, so a missing program is installed
with apt-get rather than skipped; a test is skipped only when that is impossible here
(no apt-get, not root, or the install failed), and the skip says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

#: apt-get update and install can be slow on a cold CI machine; beyond this, give up.
APT_TIMEOUT_SECONDS = 900
#: Seconds to wait for another apt/dpkg run (e.g. a parallel session) to release its lock.
APT_LOCK_TIMEOUT_SECONDS = 300


def require(binary: str, package: str) -> Path:
    """``binary``'s path, installing ``package`` first when it is missing."""
    path = Path(binary)
    if path.exists():
        return path
    problem = _install(package)
    if path.exists():
        return path
    pytest.skip(f"{binary} is missing and `apt-get install {package}` was not possible: {problem}")


def _install(package: str) -> str:
    """Install one package; returns why it failed (empty when it ran)."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "installing needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = f"DPkg::Lock::Timeout={APT_LOCK_TIMEOUT_SECONDS}"
    for argv in (["apt-get", "-o", lock, "update"], ["apt-get", "-o", lock, "install", "-y", package]):
        try:
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(argv)}` took longer than {APT_TIMEOUT_SECONDS} s"
        if done.returncode != 0:
            return f"`{' '.join(argv)}` failed: {done.stderr.strip()[-500:]}"
    return ""
