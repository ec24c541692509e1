"""Two gateways on one host, even sharing one data folder, each answer on a control
socket of their own (gunicorn's default is one path under the home folder, which the
second master takes over)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gunicorn.ctl.client import ControlClient

from tests.conftest import GATEWAYS
from tests.servers import start_gateway

pytestmark = pytest.mark.timeout(120)


def test_two_gateways_on_one_host_each_have_their_own_control_socket(simulator_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    started = []
    try:
        for name in ("gateway-ctl-one", "gateway-ctl-two"):
            proc, _ = start_gateway(simulator_url, name, {"GATEWAY_DATA_DIR": str(data)})
            GATEWAYS.append(proc)
            started.append(proc)
        for proc in started:
            path = data / f"gunicorn.{proc.proc.pid}.ctl"
            assert path.is_socket(), f"no control socket at {path}"
            with ControlClient(str(path), timeout=10) as client:
                assert client.send_command("show stats")["pid"] == proc.proc.pid
    finally:
        for proc in started:
            proc.stop()
    assert not list(data.glob("gunicorn.*.ctl")), "a stopped master left its socket"
