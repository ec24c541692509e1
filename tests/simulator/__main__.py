"""Command line: run the upstream simulator as a standalone gevent server.

Role: what tests, benchmarks and .ci start as a subprocess:

    python -m tests.simulator [--host 127.0.0.1] [--port 9000] [--stream-port 0]
                              [--accounts N] [--signature bundle|jwt|either]
                              [--yy-variant captured|legacy] [--seed S]

Two listening sockets: --port is the API host (matrix, /v1/api, the session surface's
API calls, uploads, control, and the whole MiniMax Code surface: /oauth2/*, /mavis/api/v1/*,
the coding plan quota), --stream-port the stream host (the session message POST
and /events; 0 picks a free port). It prints `ACCOUNT <realUserID>+<JWT>` per created
account, `CREDENTIALS <c1>,<c2>,...` (ready for a gateway's pool setting) when there are
any, `SIMULATOR STREAM http://HOST:STREAM_PORT`, and finally
`SIMULATOR READY http://HOST:PORT` once both sockets listen (real ports for 0).
"""

from gevent import monkey

# Must run before anything imports socket, ssl or threading (Flask pulls in ssl).
monkey.patch_all()

import argparse  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

from tests.simulator.app import create_simulator_app, simulator_state, stream_app  # noqa: E402
from tests.simulator.protocol import SIGNATURE_MODES  # noqa: E402
from tests.simulator.settings import SimSettings  # noqa: E402
from tests.simulator.signing import YY_VARIANTS  # noqa: E402
from tests.simulator.stream import SOCKET_ENVIRON_KEY  # noqa: E402

LISTEN_BACKLOG: int = 4096


class SocketHandler(WSGIHandler):
    """Puts the client socket in the environ: an SSE stream peeks at it to notice at once
    that the client went away (a write into a half-closed socket may still succeed)."""

    def get_environ(self) -> dict[str, object]:
        environ = super().get_environ()
        environ[SOCKET_ENVIRON_KEY] = self.socket
        return environ


class NoDelayServer(WSGIServer):
    """pywsgi writes headers and body in two sends: without TCP_NODELAY the body waits
    for the client's delayed ACK (~40 ms a call), which no real upstream adds."""

    handler_class = SocketHandler

    def handle(self, sock: socket.socket, address: object) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.simulator",
                                     description="Strict MiniMax Agent upstream simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    parser.add_argument("--stream-port", type=int, default=0,
                        help="the stream host's port; 0 (default) picks a free one")
    parser.add_argument("--accounts", type=int, default=0, help="accounts to create at start")
    parser.add_argument("--signature", choices=SIGNATURE_MODES, default="bundle",
                        help="which x-signature salt is accepted")
    parser.add_argument("--yy-variant", choices=YY_VARIANTS, default="captured",
                        help="which yy rule is accepted (captured: CAPTURES.md)")
    parser.add_argument("--seed", type=int, default=None, help="make ids reproducible")
    return parser.parse_args(argv)


def raise_fd_limit() -> None:
    # Hundreds of concurrent keep-alive connections need more than a low default soft limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass  # keep the current limit; the server still works, just with fewer sockets


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit()
    app = create_simulator_app(SimSettings(signature_mode=args.signature, seed=args.seed,
                                           yy_variant=args.yy_variant))
    state = simulator_state(app)
    accounts = state.add_accounts(args.accounts) if args.accounts > 0 else []
    # log=None: per-request access logging would dominate the cost of a poll.
    server = NoDelayServer((args.host, args.port), app, log=None, backlog=LISTEN_BACKLOG)
    streams = NoDelayServer((args.host, args.stream_port), stream_app(app), log=None,
                            backlog=LISTEN_BACKLOG)
    streams.start()
    server.start()
    state.stream_url = f"http://{args.host}:{streams.server_port}"
    for account in accounts:
        print(f"ACCOUNT {account['credential']}")
    if accounts:
        print("CREDENTIALS " + ",".join(account["credential"] for account in accounts))
    print(f"SIMULATOR STREAM {state.stream_url}")
    print(f"SIMULATOR READY http://{args.host}:{server.server_port}", flush=True)

    def stop() -> None:
        streams.stop(timeout=1)
        server.stop(timeout=1)

    for signum in (signal.SIGTERM, signal.SIGINT):
        # Signal callbacks run in the hub, which must not block: stop from a greenlet.
        gevent.signal_handler(signum, lambda: gevent.spawn(stop))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
