"""Accounts as a service: the operator's MiniMax accounts, the client keys that may use
them, and the upkeep of both (orphan sweep, health re-probes, credits).

With client keys configured (``GATEWAY_API_KEYS_FILE`` / ``GATEWAY_API_KEYS``), every
request must carry one and is served from the server-side accounts
(``GATEWAY_ACCOUNTS_FILE`` / ``MINIMAX_CREDENTIALS``); without keys, the caller's own
credential is the API key (personal use). Nothing here knows Flask: :mod:`gateway.web`
hands in the key text each dialect found.
"""

from gateway.accounts.keys import ApiKey, KeyRing, parse_keys
from gateway.accounts.service import AccountsService, Caller

__all__ = ["AccountsService", "ApiKey", "Caller", "KeyRing", "parse_keys"]
