"""Routes that belong to no API dialect: the homepage, health, readiness, metrics,
the shared model list and the credential check."""

from gateway.system.ops import bp as ops_bp
from gateway.system.views import bp

__all__ = ["bp", "ops_bp"]
