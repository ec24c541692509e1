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
# Workers share account leases, cooldowns and the queue of waiters in one state: by
# default a SQLite file in a fresh folder per arbiter (GATEWAY_STATE names a lasting one,
# or Redis for several hosts).
os.environ["GATEWAY_STATE"] = _settings.state or "sqlite://" + os.path.join(
    tempfile.mkdtemp(prefix="minimax-state-"), "state.db")


def child_exit(server: object, worker: object) -> None:
    """Drop a dead worker's live gauges (what prometheus_client's mark_process_dead does)."""
    for path in glob.glob(os.path.join(_metrics_dir, f"gauge_live*_{worker.pid}.db")):
        os.remove(path)
