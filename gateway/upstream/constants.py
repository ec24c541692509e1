"""Every fixed value of the MiniMax Agent web protocol, in one place.

Values come from ``shared/UPSTREAM.md``; the ones marked [assumed] there are our choice
where public sources are silent, and are marked the same way here. When the live service
drifts, this file (and the rest of ``gateway.upstream``) is where the fix goes.
"""

from __future__ import annotations

from typing import Final

DEFAULT_BASE_URL: Final = "https://agent.minimaxi.com"

#: Salt of the ``x-signature`` header, from the web app's bundle.
BUNDLE_SALT: Final = "I*7Cf%WZ#S&%1RlZJ&C2"
#: Suffix of the ``yy`` header's hashed text.
YY_SUFFIX: Final = "ooui"
SIGNATURE_MODES: Final = ("bundle", "jwt")

#: The 22 query parameters, in the signed order. ``None`` marks a per-request value.
QUERY_TEMPLATE: Final[tuple[tuple[str, str | None], ...]] = (
    ("device_platform", "web"),
    ("biz_id", "3"),
    ("app_id", "3001"),
    ("version_code", "22201"),
    ("unix", None),
    ("timezone_offset", "28800"),
    ("sys_language", "zh"),
    ("lang", "zh"),
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
    ("region", "cn"),
)

USER_AGENT: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

# Endpoints.
PATH_DEVICE_REGISTER: Final = "/v1/api/user/device/register"
PATH_USER_INFO: Final = "/v1/api/user/info"
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

#: Upstream model names the gateway advertises; any other requested name maps to the first.
UPSTREAM_MODELS: Final = ("MiniMax-M2", "MiniMax-M2-Stable")
