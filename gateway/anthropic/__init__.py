"""The Anthropic dialect: ``/v1/messages`` and ``/v1/messages/count_tokens``."""

from gateway.anthropic.errors import render as render_error
from gateway.anthropic.views import bp

__all__ = ["bp", "render_error"]
