"""The seam to the MiniMax Agent web API: everything upstream-specific lives here.

This package knows the protocol (``shared/UPSTREAM.md``) and nothing of Flask or of any
API dialect. The chat core imports it; it imports only :mod:`gateway.errors`.

Modules: ``constants`` (every fixed protocol value), ``settings``, ``credentials``
(parsing what users paste), ``signing``, ``client`` (signed calls, error
classification), ``chat`` (send_msg bodies, reading polls). Import them directly: this
file stays empty so that reading settings does not import the HTTP stack (gunicorn's
gevent worker must monkey-patch before ``requests`` and ``ssl`` are imported).
"""
