"""Strict simulator of the MiniMax Agent web API and of the MiniMax Code surface (OAuth
account host, Anthropic-compatible LLM host: the `code_*` modules), used by tests and benchmarks.

Role: package entry point. It exports `create_simulator_app` and `SimSettings` lazily, so
that `python -m tests.simulator` can monkey-patch gevent before Flask (and ssl) are
imported by the package's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.simulator.app import create_simulator_app
    from tests.simulator.settings import SimSettings

__all__ = ["create_simulator_app", "SimSettings"]


def __getattr__(name: str) -> Any:
    if name == "create_simulator_app":
        from tests.simulator.app import create_simulator_app
        return create_simulator_app
    if name == "SimSettings":
        from tests.simulator.settings import SimSettings
        return SimSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
