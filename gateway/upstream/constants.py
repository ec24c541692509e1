"""Every fixed value of the MiniMax Agent web protocol, in one place.

Values come from ``shared/CAPTURES.md`` (genuine browser traffic, June 2026: it wins),
``shared/UPSTREAM-SESSION.md`` (the session surface) and ``shared/UPSTREAM.md`` (the
matrix surface); the ones marked [assumed] there are our choice where public sources are
silent, and are marked the same way here. The answer *shapes* of the session surface
that no capture shows live in :mod:`gateway.upstream.session_shapes`. When the live
service drifts, this file (and the rest of ``gateway.upstream``) is where the fix goes.
"""

from __future__ import annotations

from typing import Final

DEFAULT_BASE_URL: Final = "https://agent.minimaxi.com"

# -- the web app build's signing constants (defaults of settings; see gateway.upstream.bundle)
#: Salt of the ``x-signature`` header, from the web app's bundle (the captured build's).
BUNDLE_SALT: Final = "I*7Cf%WZ#S&%1RlZJ&C2"
#: Suffix of the ``yy`` header's hashed text (the captured build's).
YY_SUFFIX: Final = "ooui"
#: The query's ``version_code`` (the captured build's).
VERSION_CODE: Final = "22201"
#: When the three above were captured (shared/CAPTURES.md): their age in the doctor.
CONSTANTS_CAPTURED_AT: Final = "2026-06-03"
#: Hosts besides the web app's own that serve its scripts (public clients, Aug 2026).
BUNDLE_ASSET_HOSTS: Final = ("cdn.hailuo.ai", "cdn.hailuoai.com")
SIGNATURE_MODES: Final = ("bundle", "jwt")
#: Signed right after ``user_id`` in yy's target but never sent (the browser's
#: ``op_ticket`` is undefined outside sign-in).
OP_TICKET_PAIR: Final = "op_ticket=undefined"
#: What yy signs for a body-less call: the captured ``{}``, or ``""`` (older clients).
EMPTY_BODY_VARIANTS: Final = {"braces": "{}", "empty": ""}
#: Which calls carry ``region``: only session-surface calls (captured) or every call.
REGION_VARIANTS: Final = ("session", "all")
#: How a session-surface POST body enters yy: JSON-encoded once more (captured) or raw.
SESSION_BODY_VARIANTS: Final = ("string", "raw")

#: The standard query parameters, in the signed order. ``None`` marks a per-request or
#: per-site value. ``region`` is appended after them on the calls that carry it.
QUERY_TEMPLATE: Final[tuple[tuple[str, str | None], ...]] = (
    ("device_platform", "web"),
    ("biz_id", "3"),
    ("app_id", "3001"),
    ("version_code", None),
    ("unix", None),
    ("timezone_offset", "28800"),
    ("sys_language", None),
    ("lang", None),
    ("uuid", None),
    ("device_id", None),
    ("os_name", "Mac"),
    ("browser_name", "chrome"),
    ("device_memory", "8"),
    ("cpu_core_num", "11"),
    ("browser_language", "zh-CN"),
    ("browser_platform", "MacIntel"),
    ("user_id", None),
    ("screen_width", "1920"),
    ("screen_height", "1080"),
    ("token", None),
    ("client", "web"),
)

#: ``(region, lang)`` per site, by the end of the base URL's host name; the China site
#: is the default (also for hosts that match neither, such as a simulator).
SITE_LOCALES: Final = (("minimax.io", ("en", "en")), ("minimaxi.com", ("cn", "zh")))
DEFAULT_LOCALE: Final = ("cn", "zh")
#: The user_id sent before the realUserID is known: the user-info call accepts any. [assumed]
UNKNOWN_USER_ID: Final = "0"

USER_AGENT: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

# Endpoints.
PATH_DEVICE_REGISTER: Final = "/v1/api/user/device/register"
PATH_USER_INFO: Final = "/v1/api/user/info"
PATH_RENEWAL: Final = "/v1/api/user/renewal"
PATH_MEMBERSHIP: Final = "/matrix/api/v1/commerce/get_membership_info"
PATH_SEND: Final = "/matrix/api/v1/chat/send_msg"
PATH_DETAIL: Final = "/matrix/api/v1/chat/get_chat_detail"
PATH_STOP: Final = "/matrix/api/v1/chat/stop_run_agent"
PATH_DELETE: Final = "/matrix/api/v1/chat/delete_chat"
PATH_LIST: Final = "/matrix/api/v1/chat/list_chat"
PATH_FILE_POLICY: Final = "/v1/api/files/request_policy"
PATH_FILE_CALLBACK: Final = "/v1/api/files/policy_callback"
PATH_ROBOT_CONFIG: Final = "/v1/api/chat/update_robot_custom_config"
PATH_TTS: Final = "/v1/api/chat/msg_tts"
PATH_ASR: Final = "/v1/api/chat/phone_msg"

#: The upstream's size limit for one file.
MAX_FILE_BYTES: Final = 100 * 1024 * 1024

#: A registered device id is reused for this long, then registered again.
DEVICE_TTL_SECONDS: Final = 3 * 3600.0

# Status codes inside ``base_resp`` / ``statusInfo``.
CODE_OK: Final = 0
CODE_INVALID_SIGNATURE: Final = 1000400
CODE_CHAT_RUNNING: Final = 1400010170  # [assumed]
CODE_NO_CREDITS: Final = 1400010161
CODE_QUOTA: Final = 2056
CODE_NOT_CONFIGURED: Final = 1400010501
#: Text of the "chat is running" answer, busy whatever its code says.
BUSY_STATUS_MSG: Final = "chat is running"

# send_msg body values.
MSG_TYPE_USER: Final = 1
MSG_TYPE_ASSISTANT: Final = 2
CHAT_TYPE_LIGHTNING: Final = 1
CHAT_TYPE_PRO: Final = 0
FILE_TYPE_IMAGE: Final = 2
FILE_TYPE_OTHER: Final = 6
MODEL_TYPE: Final = 0
#: [assumed] how a web search is requested.
WEB_SEARCH_BACKEND_CONFIG: Final = {"web_search": True}
#: [assumed] the tool step name of a web search; its content is a JSON list of
#: ``{title, url, snippet}``.
WEB_SEARCH_STEP: Final = "web_search"

# get_chat_detail values.
CHAT_STATUS_GENERATING: Final = 1
CHAT_STATUS_FINISHED: Final = 2

#: Browser headers: matrix and v1 calls accept JSON; session calls send no Accept except
#: on event streams the page opens itself.
ACCEPT_JSON: Final = "application/json, text/plain, */*"

# -- the session surface -----------------------------------------------------------------
SURFACES: Final = ("session", "matrix")
SURFACE_CHOICES: Final = ("auto", "code", *SURFACES)
#: Path prefixes of the session API: the June 2026 captures' and later clients'.
SESSION_PREFIXES: Final = ("/minimax-cloud/api/v1", "/archon/api/v1")
SESSION_CLEANUPS: Final = ("archive", "delete")
#: Agent roles in order of preference after the configured one (the web default first).
AGENT_ROLE_FALLBACKS: Final = ("mavis", "general")
#: Paths under a session prefix.
SESSION_PATH_CONFIG: Final = "/config"
SESSION_PATH_AGENTS: Final = "/agent"
SESSION_AGENT_LIMIT: Final = "20"
SESSION_PATH_CREATE: Final = "/agent/{agent_id}/session"
SESSION_PATH_STATUS: Final = "/session/{session_id}"
SESSION_PATH_MESSAGE: Final = "/session/{session_id}/message"
SESSION_PATH_ARCHIVE: Final = "/session/{session_id}/archive"
SESSION_PATH_DELETE: Final = "/session/{session_id}"  # [assumed] DELETE
SESSION_PATH_UPLOAD_PREPARE: Final = "/uploads/prepare"  # [assumed]
#: The message body's fixed fields, as the captured browser sends them.
SESSION_PROVIDER: Final = "minimax"
SESSION_ENABLE_TEAM: Final = True
SESSION_WORKTREE_MODE: Final = False
#: The variant asked for when the model offers it; else the model's first variant.
SESSION_THINKING_VARIANT: Final = "thinking"
#: Fallback catalogue when ``config`` lists no models.
SESSION_MODELS: Final = ("MiniMax-M3", "MiniMax-M2.7", "MiniMax-M2.7-highspeed")
#: [assumed] a stream that ends (EOF) before any end-of-turn marker is an error, not an end.
SESSION_EOF_ENDS_TURN: Final = False
#: [assumed] uploads/prepare's ``purpose`` for chat attachments.
SESSION_UPLOAD_PURPOSE: Final = 1

#: Upstream model names the gateway advertises before any account has answered (the
#: MiniMax catalogue's models today, its order); any other requested name maps to the first.
UPSTREAM_MODELS: Final = ("MiniMax-M3.1-Flash-Preview", "MiniMax-M3", "MiniMax-M2.7-highspeed", "MiniMax-M2.7")
#: [assumed] The model names the matrix surface's ``model_option`` takes (the web app's,
#: captured before the session surface): any other name is sent as the first.
MATRIX_MODELS: Final = ("MiniMax-M2", "MiniMax-M2-Stable")

# -- the code surface: account info and Token Plan quota (UPSTREAM-CODE.md §4) -----------
PATH_USER_EXTRA_INFO: Final = "/matrix/api/v1/user/get_user_extra_info"
#: On the quota (open platform) host; Bearer and X-Group-Id only, no signature.
PATH_CODING_PLAN_REMAINS: Final = "/v1/api/openplatform/coding_plan/remains"
GROUP_ID_HEADER: Final = "X-Group-Id"
#: The code catalogue (Bearer): the doctor's check that a token is accepted.
PATH_CODE_MODELS: Final = "/mavis/api/v1/models"
CODE_BUILD_ENV: Final = "prod"
#: The catalogue's ``region`` per gateway region (``en`` for global is [assumed]).
CODE_CATALOGUE_REGIONS: Final = {"cn": "cn", "global": "en"}
#: The code client's matrix query, in its order; ``None`` marks a per-call value.
CODE_MATRIX_QUERY: Final[tuple[tuple[str, str | None], ...]] = (
    ("device_platform", "mcode"),
    ("biz_id", "3"),
    ("app_id", "3001"),
    ("version_code", "22201"),
    ("unix", None),
    ("timezone_offset", None),
    ("sys_language", None),
    ("lang", None),
    ("device_id", "0"),
    ("os_name", "linux"),  # [assumed] the client sends its process.platform: a server's
    ("browser_name", "mcode"),
    ("user_id", None),
    ("client", "mcode"),
)
#: ``sys_language``/``lang`` per region.
CODE_LANGS: Final = {"cn": "zh", "global": "en"}
#: [assumed] ``timezone_offset`` (seconds east) per region: the region's own clock.
CODE_TIMEZONE_OFFSETS: Final = {"cn": "28800", "global": "0"}
#: The code client's own signing constants (§4: its account client pins them; they do not
#: follow the web app's build, whose values are settings).
CODE_SIGNING_SALT: Final = "I*7Cf%WZ#S&%1RlZJ&C2"
CODE_YY_SUFFIX: Final = "ooui"
#: ``statusInfo.code`` of "log in again" (the official NEED_LOGIN_ERROR_CODE).
CODE_NEED_LOGIN: Final = 1_000_048
#: ``workspace_type`` of the personal workspace.
PERSONAL_WORKSPACE_TYPE: Final = 0
#: The ``model_remains`` bucket chat and code draw from.
QUOTA_GENERAL_BUCKET: Final = "general"
QUOTA_INTERVAL: Final = "interval"
QUOTA_WEEKLY: Final = "weekly"
#: ``current_*_status`` of an unlimited window.
QUOTA_STATUS_UNLIMITED: Final = 3
#: Percentage points within which a count agrees with the remaining percentage.
QUOTA_PERCENT_TOLERANCE: Final = 1.0
#: [assumed] field names of each window in a ``model_remains`` row, every form seen.
QUOTA_WINDOW_FIELDS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    QUOTA_INTERVAL: {
        "total": ("current_interval_total_count", "currentIntervalTotalCount"),
        "count": ("current_interval_usage_count", "currentIntervalUsageCount"),
        "remaining_percent": ("current_interval_remaining_percent", "currentIntervalRemainingPercent"),
        "end": ("end_time", "endTime"),
        "status": ("current_interval_status", "currentIntervalStatus", "status"),
        "boost": (),
    },
    QUOTA_WEEKLY: {
        "total": ("current_weekly_total_count", "currentWeeklyTotalCount"),
        "count": ("current_weekly_usage_count", "currentWeeklyUsageCount"),
        "remaining_percent": ("current_weekly_remaining_percent", "currentWeeklyRemainingPercent"),
        "end": ("weekly_end_time", "weeklyEndTime"),
        "status": ("current_weekly_status", "currentWeeklyStatus"),
        "boost": ("weekly_boost_permille", "weeklyBoostPermille"),
    },
}

# -- the code surface: OAuth device login and refresh (UPSTREAM-CODE.md §0, §1) -----------
#: The code surface's regions, as ``python -m gateway login --region`` names them.
CODE_REGIONS: Final = ("cn", "global")
#: The account (OAuth) host of each region.
ACCOUNT_HOSTS: Final = {"cn": "https://account.minimax.cn", "global": "https://account.minimax.io"}
#: The LLM and catalogue host of each region (the official cn-prod preset).
CODE_HOSTS: Final = {"cn": "https://agent.minimax.cn", "global": "https://agent.minimax.io"}
#: The Token Plan quota (open platform) host of each region.
QUOTA_HOSTS: Final = {"cn": "https://www.minimaxi.com", "global": "https://platform.minimax.io"}
#: The account and billing ("matrix") host of each region, when MINIMAX_BASE_URL is left at its default.
MATRIX_HOSTS: Final = {"cn": "https://agent.minimaxi.com", "global": "https://agent.minimax.io"}
#: The public OAuth client of the official MiniMax Code client.
OAUTH_CLIENT_ID: Final = "mcode-public"
#: The scope and audience every device request and refresh asks for (any other scope gets
#: ``invalid_scope``); a token answer whose scope lacks this one is refused.
OAUTH_SCOPE: Final = "agent.default"
OAUTH_AUDIENCE: Final = "agent-backend"
PATH_OAUTH_DEVICE_CODE: Final = "/oauth2/device/code"
PATH_OAUTH_TOKEN: Final = "/oauth2/token"
# No revocation: POST /oauth2/revoke answers 404 on both hosts, so signing out is local.
GRANT_DEVICE_CODE: Final = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_REFRESH_TOKEN: Final = "refresh_token"
PKCE_METHOD: Final = "S256"
#: PKCE verifier entropy: 32 random bytes, base64url without padding (43 characters).
PKCE_VERIFIER_BYTES: Final = 32
#: Seconds between polls when the device answer names no interval.
DEVICE_DEFAULT_INTERVAL: Final = 5.0
#: Seconds added to the poll interval on each ``slow_down`` (RFC 8628 §3.5).
DEVICE_SLOW_DOWN_STEP: Final = 5.0
#: Poll answers of the HTTP 200 form (``{"status": ...}``) and the 400 form (``{"error": ...}``).
POLL_PENDING: Final = ("pending", "authorization_pending")
POLL_SLOW_DOWN: Final = ("slow_down",)
POLL_DENIED: Final = ("denied", "access_denied")
POLL_EXPIRED: Final = ("expired", "expired_token")
#: The refresh answer that ends a sign-in for good (reused or revoked refresh token).
OAUTH_INVALID_GRANT: Final = "invalid_grant"
#: The official client's identity on the code surface, for a user who sets it
#: (MINIMAX_CODE_USER_AGENT); by default the gateway names itself.
OFFICIAL_CODE_USER_AGENT: Final = "MiniMaxAgent"
GATEWAY_USER_AGENT: Final = "MiniMax-Free-API/1.0 (self-hosted gateway)"
