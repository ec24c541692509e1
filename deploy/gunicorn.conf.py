"""gunicorn configuration: ``gunicorn -c deploy/gunicorn.conf.py wsgi:app``.

gevent workers hold many concurrent streams on one process; the worker timeout is only
a heartbeat between gevent's hub and the arbiter (it never cuts a long stream), and the
graceful timeout lets open streams finish on reload or stop. Values come from the same
environment settings as the app (see the README's table).
"""

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
