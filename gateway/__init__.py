"""MiniMax Free API: OpenAI-, Anthropic- and Gemini-compatible gateway to MiniMax Agent.

``create_app`` is the application factory (see :mod:`gateway.app`). Importing this
package does no work and imports no web framework, so ``gateway.upstream`` stays usable
on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from gateway.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the WSGI application (settings default to the environment's)."""
    from gateway.app import build_app

    return build_app(settings)
