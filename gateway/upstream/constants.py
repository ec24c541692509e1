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

#: Salt of the ``x-signature`` header, from the web app's bundle.
BUNDLE_SALT: Final = "I*7Cf%WZ#S&%1RlZJ&C2"
#: Suffix of the ``yy`` header's hashed text.
YY_SUFFIX: Final = "ooui"
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
    ("version_code", "22201"),
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
SURFACE_CHOICES: Final = ("auto", *SURFACES)
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
UPSTREAM_MODELS: Final = ("MiniMax-M3.1-Flash-Preview", "MiniMax-M3", "MiniMax-M2.7", "MiniMax-M2.7-highspeed")
#: [assumed] The model names the matrix surface's ``model_option`` takes (the web app's,
#: captured before the session surface): any other name is sent as the first.
MATRIX_MODELS: Final = ("MiniMax-M2", "MiniMax-M2-Stable")
