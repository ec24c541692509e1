"""A separate process using the shared state, driven by the tests through its output.

``python -m tests.state.holder URL hold INDEX SECONDS``: lease account INDEX through an
AccountPool (which renews the lease), print ``held``, keep it SECONDS, release it.

``python -m tests.state.holder URL wait INDEX NAME``: queue for account INDEX directly on
the state, print ``queued``, poll until granted, print ``granted NAME``, release at once.
"""

from __future__ import annotations

import sys
import time
import uuid

from gateway.chat.pool import AccountPool
from gateway.state import LEASE_TTL, open_state
from tests.state.accounts import creds


def main(url: str, mode: str, index: str, arg: str) -> None:
    account = creds(int(index) + 1)[int(index)]
    state = open_state(url)
    if mode == "hold":
        lease = AccountPool(state).acquire([account], 30)
        print("held", flush=True)
        time.sleep(float(arg))
        lease.release()
        print("released", flush=True)
        return
    ticket, holder = uuid.uuid4().hex, uuid.uuid4().hex
    queued = False
    while state.try_lease(ticket, [account.key], holder, LEASE_TTL).account is None:
        if not queued:
            print("queued", flush=True)
            queued = True
        time.sleep(0.02)
    if not queued:
        print("queued", flush=True)
    print(f"granted {arg}", flush=True)
    state.release(account.key, holder)


if __name__ == "__main__":
    main(*sys.argv[1:5])
