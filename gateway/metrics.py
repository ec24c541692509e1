"""Prometheus metrics, correct across several gunicorn workers.

Under gunicorn, ``deploy/gunicorn.conf.py`` gives every worker a shared
``PROMETHEUS_MULTIPROC_DIR``; prometheus_client then keeps each worker's values in files
there and :func:`exposition` aggregates them (counters and histograms summed, gauges
summed over live workers). Without it (tests with Flask's client, one process) the
default registry is used. Metric objects are created on first use, not at import.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

if TYPE_CHECKING:  # gunicorn's arbiter imports this module before gevent patches: no requests here
    from gateway.upstream.quota_shapes import Quota

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
ACCOUNT_STATES = ("free", "busy", "cooling", "dead")
SURFACES = ("session", "matrix")


@dataclass(frozen=True)
class Metrics:
    requests: Counter
    latency: Histogram
    first_token: Histogram
    open_streams: Gauge
    queue_wait: Histogram
    accounts: Gauge
    upstream_calls: Counter
    upstream_errors: Counter
    surfaces: Gauge
    quota_used: Gauge
    quota_resets: Gauge
    credits: Gauge


@functools.cache
def metrics() -> Metrics:
    return Metrics(
        requests=Counter("gateway_requests", "HTTP requests by dialect, route and status.",
                         ["dialect", "route", "status"]),
        latency=Histogram("gateway_request_duration_seconds",
                          "Time to the response's headers (or whole body when not streamed).",
                          ["dialect", "route"], buckets=LATENCY_BUCKETS),
        first_token=Histogram("gateway_time_to_first_token_seconds",
                              "Time from the request to the first answer content.",
                              buckets=LATENCY_BUCKETS),
        open_streams=Gauge("gateway_open_streams", "Generations being streamed now.",
                           multiprocess_mode="livesum"),
        queue_wait=Histogram("gateway_queue_wait_seconds", "Time waiting for a free account.",
                             buckets=LATENCY_BUCKETS),
        accounts=Gauge("gateway_accounts", "Accounts known to the workers, by state.", ["state"],
                       multiprocess_mode="livesum"),
        upstream_calls=Counter("gateway_upstream_calls", "Upstream calls by endpoint.", ["endpoint"]),
        upstream_errors=Counter("gateway_upstream_errors", "Upstream failures by endpoint and kind.",
                                ["endpoint", "kind"]),
        surfaces=Gauge("gateway_account_surface", "1 for the upstream surface each account uses.",
                       ["account", "surface"], multiprocess_mode="livemax"),
        # Set by the one process that holds the maintenance lease: max over the live ones.
        quota_used=Gauge("gateway_account_quota_used_percent",
                         "Percent used of a MiniMax Code account's quota window (interval, weekly); "
                         "-1 when unlimited.", ["account", "window"], multiprocess_mode="livemax"),
        quota_resets=Gauge("gateway_account_quota_resets_at_seconds",
                           "When a MiniMax Code account's quota window resets (Unix time).",
                           ["account", "window"], multiprocess_mode="livemax"),
        credits=Gauge("gateway_account_credits", "Credits left on a MiniMax Code account, as last read.",
                      ["account"], multiprocess_mode="livemax"),
    )


def exposition(multiprocess_dir: str) -> tuple[bytes, str]:
    """The metrics text and its content type, aggregated over workers when needed."""
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def set_accounts(counts: dict[str, int]) -> None:
    gauge = metrics().accounts
    for state in ACCOUNT_STATES:
        gauge.labels(state).set(counts.get(state, 0))


def set_surface(account_key: str, surface: str) -> None:
    """The surface an account was found to use (the key is a non-reversible hash)."""
    for name in SURFACES:
        metrics().surfaces.labels(account_key, name).set(1 if name == surface else 0)


def set_quota(account_key: str, quota: Quota) -> None:
    """A code account's last quota reading (the key is a non-reversible hash)."""
    for window in quota.windows:
        used = -1.0 if window.unlimited else window.percent
        if used is not None:
            metrics().quota_used.labels(account_key, window.name).set(used)
        if window.resets_at is not None:
            metrics().quota_resets.labels(account_key, window.name).set(window.resets_at)
    if quota.credits is not None:
        metrics().credits.labels(account_key).set(float(quota.credits))


def upstream_observer(path: str, error_kind: str | None) -> None:
    """Counts every upstream call (given to the upstream client as a callback)."""
    # The last segment that is not an id: session paths carry ids (…/session/123/message).
    names = [part for part in path.split("/") if part and not part.isdigit()]
    endpoint = names[-1] if names else path
    metrics().upstream_calls.labels(endpoint).inc()
    if error_kind is not None:
        metrics().upstream_errors.labels(endpoint, error_kind).inc()


def mark_worker_dead(pid: int, multiprocess_dir: str) -> None:
    """gunicorn's child_exit hook: drop a dead worker's live gauges."""
    if multiprocess_dir:
        multiprocess.mark_process_dead(pid, multiprocess_dir)  # type: ignore[no-untyped-call]
