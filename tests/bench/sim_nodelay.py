"""The unchanged simulator, with TCP_NODELAY set on every accepted connection.

    python -m tests.bench.sim_nodelay --port 9000     (same options as tests.simulator)

Why: gevent.pywsgi sends a response's headers and its body in two ``sendall`` calls
(``WSGIHandler._write_with_headers``) and the simulator's sockets keep Nagle's algorithm
on, so the small body waits for the gateway's delayed ACK (~40 ms on Linux) on many
upstream calls. That delay is an artefact of the simulator, not of the gateway nor of
the real upstream; the benchmarks' ``--sim-nodelay`` option uses this wrapper to measure
the gateway without it. Only used by tests/bench; the simulator itself is not modified.
"""

from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402
import sys  # noqa: E402

from gevent import pywsgi  # noqa: E402

_original_handle = pywsgi.WSGIServer.handle


def _handle_nodelay(self: pywsgi.WSGIServer, sock: socket.socket, address: object) -> object:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    return _original_handle(self, sock, address)


pywsgi.WSGIServer.handle = _handle_nodelay

from tests.simulator.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
