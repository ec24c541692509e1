"""The Gemini dialect: ``generateContent``, ``streamGenerateContent``, ``countTokens``, models."""

from gateway.gemini.errors import render as render_error
from gateway.gemini.views import bp

__all__ = ["bp", "render_error"]
