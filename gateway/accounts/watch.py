"""Lists the operator keeps in files, read again when they change.

A :class:`Listing` joins entries given in a setting (fixed for the process's life) with
the lines of a file. The file is looked at again at most once per :data:`CHECK_SECONDS`
and parsed anew when its size, modification time or inode changed; a SIGHUP to the
gunicorn master restarts the workers, which read everything afresh. An edit that does
not parse keeps the last good list (and is logged without its text), so a typo never
locks every client out; at start-up it fails, naming the file and line. A file that can
no longer be read (deleted, unreadable) is a :attr:`Listing.problem` until it can be
again; what that means is the user's choice (the client keys: nobody is let in).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from gateway.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Seconds between two looks at a listed file.
CHECK_SECONDS = 1.0
#: What a parser gets: (where the entries come from, the entries' lines).
Parser = Callable[[Sequence[tuple[str, list[str]]]], T]
Signature = tuple[int, int, int]


class Listing(Generic[T]):
    """Entries of a setting plus a file's lines, parsed into one value, kept current."""

    def __init__(self, parse: Parser[T], setting: tuple[str, list[str]], path: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._parse = parse
        self._setting = setting
        self._path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._value = parse(self._sources())  # at start-up, errors stop the gateway
        #: Why the file cannot be read now ("" while it can).
        self.problem = ""
        self._checked = clock()

    @property
    def path(self) -> str:
        return self._path

    def current(self) -> T:
        now = self._clock()
        if self._path and now - self._checked >= CHECK_SECONDS:
            with self._lock:
                if now - self._checked >= CHECK_SECONDS:
                    self._checked = now
                    self._reload_if_changed()
        return self._value

    def _reload_if_changed(self) -> None:
        signature = self._stat()
        if signature == self._signature:
            return
        self._signature = signature
        try:
            sources = self._sources()
        except ConfigError as error:
            self.problem = str(error)
            log.warning("%s", error)
            return
        self.problem = ""
        try:
            self._value = self._parse(sources)
            log.info("read %s again", self._path)
        except (ConfigError, OSError) as error:
            log.warning("%s changed but cannot be used (%s); keeping the previous list", self._path, error)

    def _sources(self) -> list[tuple[str, list[str]]]:
        sources = [self._setting]
        if self._path:
            try:
                with open(self._path, encoding="utf-8") as file:
                    sources.append((self._path, file.read().splitlines()))
            except OSError as error:
                raise ConfigError(f"cannot read {self._path}: {error.strerror}") from None
        return sources

    def _stat(self) -> Signature:
        try:
            stat = os.stat(self._path) if self._path else None
        except OSError:
            return (0, 0, 0)
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino) if stat else (0, 0, 0)


def setting_entries(name: str, text: str) -> tuple[str, list[str]]:
    """A setting's entries, one per ``,`` or line."""
    return name, [part for line in text.splitlines() for part in line.split(",")]
