"""Routes that belong to no API dialect: liveness, readiness and the landing page."""

from gateway.system.views import bp

__all__ = ["bp"]
