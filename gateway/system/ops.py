"""Operations routes: ``/metrics``, ``/readyz`` and ``/token/check``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from flask import Blueprint, Response, current_app, jsonify, request

from gateway import i18n, metrics, web
from gateway.errors import InvalidRequest

bp = Blueprint("ops", __name__)

#: An upstream answer this recent makes the gateway ready without probing.
READY_WITHIN_SECONDS = 300.0
#: How long an active probe's result is reused.
PROBE_CACHE_SECONDS = 15.0


class UpstreamProbe:
    """Remembers when the upstream last answered; probes it when that is too long ago."""

    def __init__(self, ping: Callable[[], bool]) -> None:
        self._ping = ping
        self._last_answer = 0.0
        self._probed_at, self._probe_result = 0.0, False
        self._lock = threading.Lock()

    def note(self, path: str, error_kind: str | None) -> None:
        # Any answer (even an error the upstream itself sent) shows it is reachable.
        if error_kind not in ("UpstreamUnavailable", "UpstreamTimeout"):
            self._last_answer = time.monotonic()

    def reachable(self, within: float) -> tuple[bool, str]:
        now = time.monotonic()
        if now - self._last_answer < within:
            return True, f"answered {now - self._last_answer:.0f}s ago"
        with self._lock:
            if now - self._probed_at > PROBE_CACHE_SECONDS:
                self._probe_result, self._probed_at = self._ping(), time.monotonic()
        return self._probe_result, "reachable (probe)" if self._probe_result else "unreachable (probe)"


@bp.get("/metrics")
def metrics_text() -> Response:
    """Prometheus metrics."""
    body, content_type = metrics.exposition(web.settings().metrics_dir)
    return Response(body, content_type=content_type)


@bp.get("/readyz")
def readyz() -> Response:
    """Ready when the configuration loaded and the upstream answered recently."""
    probe: UpstreamProbe = current_app.extensions["gateway.upstream_probe"]
    reachable, detail = probe.reachable(READY_WITHIN_SECONDS)
    response = jsonify({"ready": reachable, "config": "ok", "upstream": detail})
    response.status_code = 200 if reachable else 503
    return response


@bp.post("/token/check")
def token_check() -> Response:
    """The credential doctor as a service: ``{"token": CRED}`` → stages, credits, live."""
    token = web.json_body().get("token")
    if not isinstance(token, str) or not token.strip():
        raise InvalidRequest("Send {\"token\": \"<_token>\"} (or REALUSERID+_token).", param="token")
    started = time.monotonic()
    lang = i18n.negotiate(request.args.get("lang"), request.headers.get("Accept-Language"))
    report = current_app.extensions["gateway.doctor"].checked(token, lang)
    return jsonify({**report.as_dict(), "seconds": round(time.monotonic() - started, 3)})
