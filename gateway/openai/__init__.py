"""The OpenAI dialect: ``/v1/chat/completions`` and ``/v1/models``."""

from gateway.openai.errors import render as render_error
from gateway.openai.views import bp

__all__ = ["bp", "render_error"]
