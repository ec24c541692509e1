"""Routes that belong to no API dialect: the homepage, health, readiness, metrics,
the shared model list, the OpenAPI document, the credential check and the operator's admin page
(with its MiniMax Code device login)."""

from gateway.system.admin import bp as admin_bp
from gateway.system.admin_signin import bp as admin_signin_bp
from gateway.system.openapi import bp as openapi_bp
from gateway.system.ops import bp as ops_bp
from gateway.system.views import bp

__all__ = ["admin_bp", "admin_signin_bp", "bp", "openapi_bp", "ops_bp"]
