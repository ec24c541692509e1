"""gunicorn configuration: ``gunicorn -c deploy/gunicorn.conf.py wsgi:app``.

gevent workers hold many concurrent streams on one process; the worker timeout is only
a heartbeat between gevent's hub and the arbiter (it never cuts a long stream), and the
graceful timeout lets open streams finish on reload or stop. Values come from the same
environment settings as the app (see the README's table).

Nothing here may import ``requests``, ``ssl`` or ``prometheus_client``: this file runs in
the arbiter, before the gevent worker monkey-patches, and forked workers inherit its
modules.
"""

import glob
import os
import tempfile

from gateway.config import Settings
from gateway.control import control_socket_path
from gateway.state import lasting_url

_settings = Settings.from_env()

bind = _settings.bind
workers = _settings.workers
worker_class = "gevent"
worker_connections = _settings.worker_connections
timeout = 120
graceful_timeout = _settings.graceful_timeout
keepalive = 75
# Our own access log line omits query strings (they may carry keys); gunicorn's would not.
accesslog = None
errorlog = "-"
loglevel = _settings.log_level
# Streams must reach the client as they are produced.
sendfile = False

# Workers share their metrics through files in one folder (prometheus_client's
# multiprocess mode); a fresh folder per arbiter, so stale values never add up.
_metrics_dir = _settings.metrics_dir or tempfile.mkdtemp(prefix="minimax-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
# Workers share account leases, cooldowns, the queue of waiters, kept chats and renewed
# tokens in one state: by default the SQLite file in the data folder, which outlives a
# restart (a temporary one, which says so, when that folder cannot be used).
os.environ["GATEWAY_STATE"] = lasting_url(_settings.state, _settings.data_dir)
# Each master its own control socket (gunicornc -s PATH), in the data folder and named by
# the master's pid: gunicorn's default (one path under the home folder) is taken over by
# every master started after the first. One left by a master that died is removed.
control_socket = control_socket_path(_settings.data_dir, os.getpid())


def child_exit(server: object, worker: object) -> None:
    """Drop a dead worker's live gauges (what prometheus_client's mark_process_dead does)."""
    for path in glob.glob(os.path.join(_metrics_dir, f"gauge_live*_{worker.pid}.db")):
        os.remove(path)
