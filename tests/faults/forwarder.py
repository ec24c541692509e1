"""A TCP forwarder whose port can refuse connections, for the "never sent" retry test.

Role: the simulator can fail a request only once it arrived; a request that provably
never left the gateway (connection refused) needs a port with nothing listening on it.
:class:`Forwarder` owns such a port: closed until :meth:`listen`, then it pipes every
connection to the target port, byte for byte, both ways.
"""

from __future__ import annotations

import socket
import threading

CHUNK_BYTES = 65536


class Forwarder:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target`` once listening."""

    def __init__(self, port: int, target: int) -> None:
        self.port, self.target = port, target
        self.accepted = 0
        self._listener: socket.socket | None = None

    def listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed
                return
            self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(CHUNK_BYTES):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        # One direction ended: end both, as a proxy would.
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
