"""Typed settings of the upstream client (built from :mod:`gateway.config`)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.upstream import constants as C


@dataclass(frozen=True)
class UpstreamSettings:
    """How to reach and sign for the upstream."""

    base_url: str = C.DEFAULT_BASE_URL
    signature_mode: str = "bundle"
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    pool_size: int = 1024
