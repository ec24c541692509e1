"""/metrics across several workers, /readyz, and /healthz."""

from __future__ import annotations

import re
import time

import requests

from tests.openai.test_chat_completions import client
from tests.servers import free_port


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:{{(.*)}})? (\S+)$", line)
        if match and wanted <= set(filter(None, (match.group(1) or "").split(","))):
            total += float(match.group(2))
    return total


def counted(send_metric: str) -> tuple[tuple[str, dict[str, str]], ...]:
    """Samples that grow by one per answered request (sending a turn is named per surface)."""
    return (
        ("gateway_requests_total", {"route": "/v1/chat/completions", "status": "200"}),
        ("gateway_upstream_calls_total", {"endpoint": send_metric}),
        ("gateway_time_to_first_token_seconds_count", {}),
        ("gateway_queue_wait_seconds_count", {}),
    )


def counts(gateway: str, send_metric: str) -> list[float]:
    text = requests.get(gateway + "/metrics", timeout=5, headers={"Connection": "close"}).text
    return [sample(text, name, **labels) for name, labels in counted(send_metric)]


def test_metrics_add_up_over_two_workers(gateway_factory, sim, upstream, accounts) -> None:
    gateway = gateway_factory(GATEWAY_WORKERS="2")
    before = counts(gateway, upstream.send_metric)  # the gateway may have served other tests already
    pool = ",".join(a["credential"] for a in accounts(2))
    api = client(gateway, pool)
    for i in range(6):
        api.chat.completions.create(model="m", messages=[{"role": "user", "content": f"q{i}"}],
                                    stream=bool(i % 2))
    sim.wait_idle(10)
    time.sleep(0.5)  # the last stream's clean-up runs just after its final frame
    for _ in range(8):  # whichever worker answers, the totals are the same
        response = requests.get(gateway + "/metrics", timeout=5, headers={"Connection": "close"})
        text = response.text
        assert response.headers["Content-Type"].startswith("text/plain")
        now = [sample(text, name, **labels) for name, labels in counted(upstream.send_metric)]
        assert [b - a for a, b in zip(before, now, strict=True)] == [6, 6, 6, 6]
        assert sample(text, "gateway_open_streams") == 0
        assert sample(text, "gateway_accounts", state="busy") == 0
    text = requests.get(gateway + "/metrics", timeout=5).text
    send = upstream.send_metric
    errors_before = sample(text, "gateway_upstream_errors_total", endpoint=send, kind="UpstreamServerError")
    failed_before = sample(text, "gateway_requests_total", route="/v1/chat/completions", status="502")
    sim.fault(upstream.send_fault, "http_500")
    requests.post(gateway + "/v1/chat/completions", headers={"Authorization": f"Bearer {pool}"},
                  json={"model": "m", "messages": [{"role": "user", "content": "x"}]}, timeout=10)
    text = requests.get(gateway + "/metrics", timeout=5).text
    assert sample(text, "gateway_upstream_errors_total", endpoint=send, kind="UpstreamServerError") == errors_before + 1
    assert sample(text, "gateway_requests_total", route="/v1/chat/completions", status="502") == failed_before + 1


def test_readyz_follows_the_upstream(gateway_factory, sim, credential) -> None:
    ready = requests.get(gateway_factory() + "/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["ready"] is True
    dead = gateway_factory(MINIMAX_BASE_URL=f"http://127.0.0.1:{free_port()}")
    response = requests.get(dead + "/readyz", timeout=30)
    assert response.status_code == 503 and response.json()["ready"] is False
    assert requests.get(dead + "/healthz", timeout=5).status_code == 200
