"""Command line: run the upstream simulator as a standalone gevent server.

Role: what tests, benchmarks and .ci start as a subprocess:

    python -m tests.simulator [--host 127.0.0.1] [--port 9000] [--accounts N]
                              [--signature bundle|jwt|either] [--seed S]

It prints `ACCOUNT <realUserID>+<JWT>` per created account, `CREDENTIALS <c1>,<c2>,...`
(ready for a gateway's pool setting) when there are any, and finally
`SIMULATOR READY http://HOST:PORT` once the socket listens (with --port 0 the real port).
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
from gevent.pywsgi import WSGIServer  # noqa: E402

from tests.simulator.app import create_simulator_app, simulator_state  # noqa: E402
from tests.simulator.protocol import SIGNATURE_MODES  # noqa: E402
from tests.simulator.state import SimSettings  # noqa: E402

LISTEN_BACKLOG: int = 4096


class NoDelayServer(WSGIServer):
    """pywsgi writes headers and body in two sends: without TCP_NODELAY the body waits
    for the client's delayed ACK (~40 ms a call), which no real upstream adds."""

    def handle(self, sock: socket.socket, address: object) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.simulator",
                                     description="Strict MiniMax Agent upstream simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    parser.add_argument("--accounts", type=int, default=0, help="accounts to create at start")
    parser.add_argument("--signature", choices=SIGNATURE_MODES, default="bundle",
                        help="which x-signature salt is accepted")
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
    app = create_simulator_app(SimSettings(signature_mode=args.signature, seed=args.seed))
    accounts = simulator_state(app).add_accounts(args.accounts) if args.accounts > 0 else []
    # log=None: per-request access logging would dominate the cost of a poll.
    server = NoDelayServer((args.host, args.port), app, log=None, backlog=LISTEN_BACKLOG)
    server.start()
    for account in accounts:
        print(f"ACCOUNT {account['credential']}")
    if accounts:
        print("CREDENTIALS " + ",".join(account["credential"] for account in accounts))
    print(f"SIMULATOR READY http://{args.host}:{server.server_port}", flush=True)
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Signal callbacks run in the hub, which must not block: stop from a greenlet.
        gevent.signal_handler(signum, lambda: gevent.spawn(server.stop, timeout=1))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
