"""The gateway's one error hierarchy.

Every failure a caller can see is a :class:`GatewayError`. Class attributes carry the
defaults (HTTP status, neutral ``kind``, default message); an instance may override the
message and name the offending request field (``param``). Each dialect renders these
once, in its own wire shape (see ``gateway/<dialect>/errors.py``), so nothing here knows
about OpenAI, Anthropic or Gemini.

::

    GatewayError                      500 internal
    ├── InvalidRequest                400 invalid_request
    │   ├── UpstreamRefusedRequest    400  (MiniMax Code refused the parameters: 2013)
    │   └── PromptTooLong             400  (the prompt exceeds GATEWAY_PROMPT_MAX_CHARS)
    ├── AuthenticationFailed          401 authentication
    │   ├── MissingCredentials        401
    │   ├── ExpiredCredentials        401
    │   ├── UpstreamUnauthorized      401  (upstream refused the credential)
    │   ├── MissingApiKey             401  (client keys are configured; none was sent)
    │   ├── InvalidApiKey             401  (wrong or revoked client key)
    │   ├── AdminKeyRequired          401  (the admin pages and API)
    │   └── SignInRevoked             401  (a signed-in account's refresh token is refused: log in again)
    ├── PermissionDenied              403 permission
    ├── DeviceLoginFailed             400 invalid_request  (a device login ended without tokens)
    │   ├── DeviceLoginDenied         400  (the user refused it)
    │   └── DeviceLoginExpired        400  (its code expired before approval)
    ├── NotFound                      404 not_found
    │   └── ModelNotFound             404 model_not_found
    ├── MethodNotAllowed              405 invalid_request
    ├── PayloadTooLarge               413 too_large
    ├── RateLimited                   429 rate_limit   (+ Retry-After)
    │   ├── AccountsBusy              429  (every account of the request stayed busy)
    │   ├── AccountInUse              429  (this one account is generating; the pool tries another)
    │   ├── UpstreamRateLimited       429  (MiniMax's own rate limit: TPM/RPM windows)
    │   └── KeyLimited                429  (a client key's requests-per-minute or concurrency)
    ├── QuotaExhausted                429 quota
    │   └── NoCredits                 429
    ├── UpstreamError                 502 upstream
    │   ├── UpstreamServerError       502  (upstream HTTP 5xx)
    │   ├── UpstreamRejectedSignature 502
    │   ├── UpstreamBadAnswer         502
    │   │   └── UpstreamWrongPath     502  (404, or the site's HTML page: wrong surface/prefix)
    │   ├── NoSurface                 502  (neither upstream surface works for the account)
    │   └── AccountRefused            502  (a surface refuses a token that is still valid)
    ├── UpstreamUnavailable           503 unavailable
    │   ├── NoWorkingAccount          503  (every server-side account is refused by MiniMax)
    │   └── UpstreamOverloaded        503  (MiniMax's 529: overloaded, still after retries)
    └── UpstreamTimeout               504 timeout

Beside the tree, :class:`ConfigError` (a ``ValueError``) reports an invalid setting at
start-up; no caller ever sees it.

Messages are written for the caller and must never contain a credential: the upstream
package builds them from fixed text and non-secret facts only.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting has an invalid value (raised at start-up, never seen by a caller)."""


class GatewayError(Exception):
    """Base of every error a caller may see."""

    status: int = 500
    kind: str = "internal"
    message: str = "The gateway failed unexpectedly."

    def __init__(
        self,
        message: str | None = None,
        *,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.param = param
        self.retry_after = retry_after
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, param={self.param!r})"


class InvalidRequest(GatewayError):
    status = 400
    kind = "invalid_request"
    message = "The request is not valid."


class UpstreamRefusedRequest(InvalidRequest):
    """MiniMax Code answered 400 ``invalid params`` (2013); the message carries its reason."""

    message = "MiniMax refused the request's parameters."


class PromptTooLong(InvalidRequest):
    """The conversation does not fit the prompt size limit (a context length error)."""

    message = "The prompt exceeds the prompt size limit (GATEWAY_PROMPT_MAX_CHARS)."


class AuthenticationFailed(GatewayError):
    status = 401
    kind = "authentication"
    message = "Authentication failed."


class MissingCredentials(AuthenticationFailed):
    message = (
        "No MiniMax credential was given. Send 'Authorization: Bearer <_token>' (or REALUSERID+_token) "
        "(several joined by commas)."
    )


class ExpiredCredentials(AuthenticationFailed):
    message = "The MiniMax token has expired; log in again and copy a fresh _token."


class UpstreamUnauthorized(AuthenticationFailed):
    message = (
        "MiniMax refused the credential (expired, revoked, or the realUserID does not "
        "belong to the token)."
    )


class MissingApiKey(AuthenticationFailed):
    message = ("This gateway requires one of its API keys: send 'Authorization: Bearer <key>' "
               "(or x-api-key, x-goog-api-key, ?key=).")


class InvalidApiKey(AuthenticationFailed):
    message = "The API key is not valid (unknown or revoked)."


class NoApiKeys(AuthenticationFailed):
    message = ("This gateway requires an API key but its list of keys is empty or cannot be read: "
               "no request is accepted until its operator restores it.")


class AdminKeyRequired(AuthenticationFailed):
    message = "The admin key is required (Authorization: Bearer <GATEWAY_ADMIN_KEY> or X-Admin-Key)."


class SignInRevoked(AuthenticationFailed):
    """MiniMax refused a signed-in account's refresh token (``invalid_grant``): the sign-in
    is gone for good, only a new ``python -m gateway login`` brings the account back."""

    message = "The MiniMax Code sign-in was revoked or has expired; log in again (python -m gateway login)."


class PermissionDenied(GatewayError):
    status = 403
    kind = "permission"
    message = "This operation is not permitted."


class DeviceLoginFailed(GatewayError):
    """A MiniMax Code device login ended without tokens; ``reason`` names how, for scripts."""

    status = 400
    kind = "invalid_request"
    message = "The MiniMax device login failed."
    reason: str = "failed"


class DeviceLoginDenied(DeviceLoginFailed):
    message = "The MiniMax device login was denied in the browser."
    reason = "denied"


class DeviceLoginExpired(DeviceLoginFailed):
    message = "The MiniMax device login code expired before it was approved; start again."
    reason = "expired"


class NotFound(GatewayError):
    status = 404
    kind = "not_found"
    message = "Not found."


class ModelNotFound(NotFound):
    kind = "model_not_found"
    message = "The model does not exist."


class MethodNotAllowed(GatewayError):
    status = 405
    kind = "invalid_request"
    message = "Method not allowed on this route."


class PayloadTooLarge(GatewayError):
    status = 413
    kind = "too_large"
    message = "The request is too large."


class ClientGone(GatewayError):
    """The client closed its connection before its turn was sent: nothing is sent for it."""

    status = 499  # nginx's "client closed request": nobody reads it, the access log shows it
    kind = "invalid_request"
    message = "The client closed the connection before its request was sent."


class RateLimited(GatewayError):
    status = 429
    kind = "rate_limit"
    message = "Too many requests."


class AccountsBusy(RateLimited):
    message = (
        "Every MiniMax account of this credential is busy with another generation; "
        "retry later or add accounts to the pool."
    )


class KeyLimited(RateLimited):
    message = "This API key is over its limit; retry after the time given in Retry-After."


class UpstreamRateLimited(RateLimited):
    message = "MiniMax's rate limit was reached; retry after the time given in Retry-After."


class QuotaExhausted(GatewayError):
    status = 429
    kind = "quota"
    message = "The MiniMax account has no credits or quota left."


class UpstreamError(GatewayError):
    status = 502
    kind = "upstream"
    message = "MiniMax answered with an error."


class AccountInUse(RateLimited):
    """This account is generating elsewhere ("chat is running"); the pool tries another.
    A busy signal, not an upstream failure: ``except UpstreamError`` never catches it."""

    message = "The MiniMax account is busy with another generation."


class NoCredits(QuotaExhausted):
    message = "The MiniMax account has no credits left."


class UpstreamServerError(UpstreamError):
    message = "MiniMax answered with a server error."


class UpstreamRejectedSignature(UpstreamError):
    message = (
        "MiniMax rejected the request signature; the web protocol may have changed "
        "(try MINIMAX_SIGNATURE=jwt or update the gateway)."
    )


class UpstreamBadAnswer(UpstreamError):
    message = "MiniMax sent an answer the gateway could not understand."


class UpstreamWrongPath(UpstreamBadAnswer):
    """A 404, or the web app's HTML page answered with 200: this surface or prefix is gone."""

    message = "MiniMax answered with its web page instead of the API (wrong path or surface)."


class NoSurface(UpstreamError):
    message = "Neither MiniMax chat surface (session or matrix) accepted this account."


class AccountRefused(UpstreamError):
    message = "MiniMax refused this account's chat calls although its token is valid (see MINIMAX_SURFACE)."


class UpstreamUnavailable(GatewayError):
    status = 503
    kind = "unavailable"
    message = "MiniMax could not be reached or dropped the connection."


class UpstreamNotReached(UpstreamUnavailable):
    """No connection to the upstream could be made: the request provably never left, so
    it created nothing upstream and may be sent again."""

    message = "MiniMax could not be reached (no connection could be made)."


class NoWorkingAccount(UpstreamUnavailable):
    message = ("None of this gateway's MiniMax accounts is accepted by MiniMax now; "
               "the operator must check them (see /admin).")


class UpstreamOverloaded(UpstreamUnavailable):
    message = "MiniMax is overloaded (529); retry later."


class UpstreamTimeout(GatewayError):
    status = 504
    kind = "timeout"
    message = "MiniMax did not answer in time."
