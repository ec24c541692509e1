"""Helpers of the simulator's code-surface tests (test_code_*.py): a Messages call, its SSE.

Role: what test_code_messages.py and test_code_rules.py share; written from the page
(UPSTREAM-CODE.md), independently of the simulator's own code.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import requests

from tests.simulator.control import SimulatorControl

MESSAGES = "/mavis/api/v1/llm/v1/messages"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(40)).decode()


def body(model: str = "MiniMax-M2.7", content: Any = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 1000, "messages": [{"role": "user", "content": content}],
            **extra}


def post(sim: SimulatorControl, token: str | None, payload: Any, path: str = MESSAGES,
         stream: bool = False, **headers: str) -> requests.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(f"{sim.base_url}{path}", json=payload, headers=headers, timeout=30,
                         stream=stream)


def events(response: requests.Response) -> list[dict[str, Any]]:
    """Every SSE frame's data, checking that its event: line names the data's type."""
    buffer, out = b"", []
    for chunk in response.iter_content(chunk_size=None):
        buffer += chunk
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            lines = frame.decode().split("\n")
            data = json.loads(lines[1].removeprefix("data: "))
            assert lines[0] == f"event: {data['type']}"
            out.append(data)
    return out


def refused(response: requests.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]["message"], response.text


# --- Happy paths -------------------------------------------------------------------------------
def image(data: str = PNG, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
