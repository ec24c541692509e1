"""The OpenAI Responses dialect: ``/v1/responses`` (create, stream, get, delete)."""

from gateway.responses.errors import render as render_error
from gateway.responses.views import bp

__all__ = ["bp", "render_error"]
