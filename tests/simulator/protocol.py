"""Wire rules of the MiniMax Agent web protocol, re-implemented for the simulator.

Role: the simulator's own, independent reading of /work/shared/UPSTREAM.md as corrected by
/work/shared/CAPTURES.md. It holds the pinned constants (parameter order, status codes),
the query-layout rules, the token primitives, the reply envelopes and the matrix/api
request-body validators; the signing rules themselves live in `signing`. It deliberately shares no code with
the `gateway` package: a signing bug in the gateway must show up as a rejection here, not
be reproduced on both sides.

Everything here is pure (no state, no Flask), so it is cheap to call per request and easy
to test on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from itertools import product
from typing import Any
from urllib.parse import unquote_plus

from tests.simulator.signing import (  # noqa: F401  (re-exported for older importers)
    BUNDLE_SALT,
    SURFACE_SESSION,
    YY_LEGACY,
    YY_SUFFIX,
    axios_encode,
    encode_uri_component,
    md5_hex,
    same_digest,
    x_signature,
    x_signature_ok,
)

# --- Pinned protocol constants -------------------------------------------------------

# The 21 parameters every signed call carries (CAPTURES.md); session-prefix calls add
# `region` last (22).
STANDARD_PARAMS: tuple[str, ...] = (
    "device_platform", "biz_id", "app_id", "version_code", "unix", "timezone_offset",
    "sys_language", "lang", "uuid", "device_id", "os_name", "browser_name",
    "device_memory", "cpu_core_num", "browser_language", "browser_platform", "user_id",
    "screen_width", "screen_height", "token", "client",
)
REGION_PARAM: str = "region"
USER_ID_PARAM: str = "user_id"

# Only the values that identify the web app are pinned; locale, OS and screen values
# describe the browser and may legitimately be configured differently by the gateway.
FIXED_PARAM_VALUES: dict[str, str] = {
    "device_platform": "web",
    "biz_id": "3",
    "app_id": "3001",
    "client": "web",
}
DIGIT_PARAMS: tuple[str, ...] = (
    "version_code", "unix", "device_memory", "cpu_core_num", "screen_width",
    "screen_height", "device_id",
)
SIGNED_INT_PARAMS: tuple[str, ...] = ("timezone_offset",)

REQUIRED_HEADERS: tuple[str, ...] = ("token", "x-timestamp", "x-signature", "yy")

SIGNATURE_MODES: tuple[str, ...] = ("bundle", "jwt", "either")

# --- Status codes ----------------------------------------------------------------------

OK_CODE: int = 0
INVALID_SIGNATURE_CODE: int = 1000400
INVALID_SIGNATURE_MSG: str = "invalid signature"
# [simulator's choice] UPSTREAM.md names no code for a malformed body or query value.
INVALID_PARAMS_CODE: int = 1000001
CHAT_RUNNING_CODE: int = 1400010170
CHAT_RUNNING_MSG: str = "chat is running"
NOT_ENOUGH_CREDITS_CODE: int = 1400010161
NOT_ENOUGH_CREDITS_MSG: str = "not enough credits"
QUOTA_EXHAUSTED_CODE: int = 2056
QUOTA_EXHAUSTED_MSG: str = "quota exhausted"
# [simulator's choice] UPSTREAM.md names no code for an unknown chat id.
CHAT_NOT_FOUND_CODE: int = 1400010404
CHAT_NOT_FOUND_MSG: str = "chat not found"
# [simulator's choice] UPSTREAM.md names no codes for the files, TTS and ASR errors below;
# only ASR_NOTHING_RECOGNISED_CODE is pinned there.
MSG_NOT_FOUND_CODE: int = 1400010405
MSG_NOT_FOUND_MSG: str = "message not found"
NOT_AN_ANSWER_MSG: str = "message is not an assistant answer"
MSG_GENERATING_MSG: str = "message is still generating"
VOICE_MISMATCH_CODE: int = 1400010420
VOICE_MISMATCH_MSG: str = "timbre does not match the robot voice"
UPLOAD_NOT_FOUND_CODE: int = 1400010460
UPLOAD_NOT_FOUND_MSG: str = "uploaded object not found"
UPLOAD_SIZE_MISMATCH_CODE: int = 1400010461
UPLOAD_SIZE_MISMATCH_MSG: str = "size does not match the uploaded object"
FILE_NOT_FOUND_CODE: int = 1400010470
FILE_NOT_FOUND_MSG: str = "file not found"
FILE_NOT_IMAGE_CODE: int = 1400010471
FILE_NOT_IMAGE_MSG: str = "file is not an image"
INVALID_AUDIO_CODE: int = 1000402  # answered with HTTP 400, like INVALID_PARAMS_CODE
INVALID_AUDIO_MSG: str = "invalid audio"
ASR_NOTHING_RECOGNISED_CODE: int = 1200041

FILE_TYPE_IMAGE: int = 2
FILE_TYPE_OTHER: int = 6
CHAT_TYPE_PRO: int = 0
CHAT_TYPE_LIGHTNING: int = 1
MSG_TYPE_USER: int = 1
MSG_TYPE_ASSISTANT: int = 2
CHAT_STATUS_GENERATING: int = 1
CHAT_STATUS_FINISHED: int = 2

LIST_CHAT_MAX_PAGE: int = 100

TTS_IN_PROGRESS: int = 1
TTS_DONE: int = 2
ROBOT_ID: str = "1"
# phone_msg's form fields and the only values the web app sends in them.
PHONE_MSG_FIXED_FIELDS: dict[str, str] = {"chatID": "0", "characterID": "1", "playSpeedLevel": "1"}
PHONE_MSG_VOICE_FIELD: str = "voiceBytes"
ASR_SIGNED_PREFIX_BYTES: int = 1024
VOICE_NAME: re.Pattern[str] = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_MIME_TOKEN: str = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+\-]*"
MIME_TYPE: re.Pattern[str] = re.compile(f"{_MIME_TOKEN}/{_MIME_TOKEN}")


# --- Endpoints ---------------------------------------------------------------------------

@dataclass(frozen=True)
class EndpointSpec:
    """How one upstream endpoint is called: enough for the generic request gate."""

    name: str  # short key used by faults and handlers
    method: str
    path: str  # session endpoints: a pattern after the prefix, e.g. "/session/{session_id}"
    family: str  # "api" (statusInfo envelope), "matrix" or "session" (base_resp envelope)
    # "json", "none", "optional" (no body or a JSON object) or "multipart" (signs a digest)
    body_kind: str = "json"
    prefix_params: tuple[str, ...] = ()  # e.g. msg_tts puts msgID, timbre first
    optional_prefix: tuple[str, ...] = ()  # after prefix_params, each may be left out
    user_id_optional: bool = False  # user/info: any user_id, even none
    host: str = "api"  # "api" or "stream" (session message and events)

    @property
    def surface(self) -> str:
        return self.family

    def required_params(self) -> tuple[str, ...]:
        standard = tuple(name for name in STANDARD_PARAMS
                         if not (self.user_id_optional and name == USER_ID_PARAM))
        region = (REGION_PARAM,) if self.family == SURFACE_SESSION else ()
        return self.prefix_params + standard + region

    def allowed_layouts(self, variant: str) -> frozenset[tuple[str, ...]]:
        """Every parameter order this endpoint accepts: the order is signed."""
        optional = [(name,) for name in self.optional_prefix]
        prefixes = [self.prefix_params + sum(choice, ()) for choice in
                    product(*[((), option) for option in optional])]
        standards = [STANDARD_PARAMS]
        if self.user_id_optional:
            standards.append(tuple(n for n in STANDARD_PARAMS if n != USER_ID_PARAM))
        # region: required on session calls; an optional trailing extra elsewhere (the
        # gate counts it as a warning under the captured rule, legacy sent it everywhere).
        suffixes = [(REGION_PARAM,)] if self.family == SURFACE_SESSION else [(), (REGION_PARAM,)]
        return frozenset(p + s + r for p in prefixes for s in standards for r in suffixes)


ENDPOINTS: tuple[EndpointSpec, ...] = (
    EndpointSpec("device_register", "POST", "/v1/api/user/device/register", "api"),
    EndpointSpec("user_info", "GET", "/v1/api/user/info", "api", body_kind="none",
                 user_id_optional=True),
    EndpointSpec("user_renewal", "POST", "/v1/api/user/renewal", "api", body_kind="optional"),
    EndpointSpec("membership", "POST", "/matrix/api/v1/commerce/get_membership_info", "matrix",
                 body_kind="optional"),
    EndpointSpec("send_msg", "POST", "/matrix/api/v1/chat/send_msg", "matrix"),
    EndpointSpec("get_chat_detail", "POST", "/matrix/api/v1/chat/get_chat_detail", "matrix"),
    EndpointSpec("stop_run_agent", "POST", "/matrix/api/v1/chat/stop_run_agent", "matrix"),
    EndpointSpec("delete_chat", "POST", "/matrix/api/v1/chat/delete_chat", "matrix"),
    EndpointSpec("list_chat", "POST", "/matrix/api/v1/chat/list_chat", "matrix"),
    EndpointSpec("request_policy", "GET", "/v1/api/files/request_policy", "api",
                 body_kind="none"),
    EndpointSpec("policy_callback", "POST", "/v1/api/files/policy_callback", "api"),
    EndpointSpec("update_robot_custom_config", "POST",
                 "/v1/api/chat/update_robot_custom_config", "api"),
    EndpointSpec("msg_tts", "GET", "/v1/api/chat/msg_tts", "api", body_kind="none",
                 prefix_params=("msgID", "timbre")),
    EndpointSpec("phone_msg", "POST", "/v1/api/chat/phone_msg", "api", body_kind="multipart"),
)
ENDPOINT_NAMES: tuple[str, ...] = tuple(spec.name for spec in ENDPOINTS)


# --- Query string ------------------------------------------------------------------------

@dataclass(frozen=True)
class QueryParam:
    name: str
    raw: str  # as on the wire, still percent-encoded
    value: str  # decoded


def _decode(raw: str) -> str:
    # Most values carry no escapes; skipping unquote for them halves the parse cost.
    return unquote_plus(raw) if ("%" in raw or "+" in raw) else raw


def parse_raw_query(raw_query: str) -> list[QueryParam]:
    """Split the wire query string in order; '+' is a space (axios form-encodes)."""
    params: list[QueryParam] = []
    if not raw_query:
        return params
    for part in raw_query.split("&"):
        name, _, raw_value = part.partition("=")
        params.append(QueryParam(_decode(name), raw_value, _decode(raw_value)))
    return params


def missing_params(params: list[QueryParam], spec: EndpointSpec) -> list[str]:
    """Required names absent or empty: the caller answers 401 for these."""
    present = {p.name for p in params if p.value != ""}
    return [name for name in spec.required_params() if name not in present]


def params_in_order(params: list[QueryParam], spec: EndpointSpec, variant: str) -> bool:
    """Exactly an accepted layout: each name once, in the signed order, nothing extra."""
    return tuple(p.name for p in params) in spec.allowed_layouts(variant)


def badly_encoded_params(params: list[QueryParam], variant: str) -> list[str]:
    """Values not encoded the way axios encodes them (legacy: encodeURIComponent too)."""
    legacy = variant == YY_LEGACY
    return [p.name for p in params if axios_encode(p.value) != p.raw
            and not (legacy and encode_uri_component(p.value) == p.raw)]


def param_value_problems(values: dict[str, str]) -> list[str]:
    """Query values with the wrong fixed value or shape; each entry names the problem."""
    problems = [f"{name}={values.get(name)!r} (expected {want!r})"
                for name, want in FIXED_PARAM_VALUES.items() if values.get(name) != want]
    problems += [f"{name} not digits" for name in DIGIT_PARAMS
                 if not is_ascii_digits(values.get(name, ""))]
    problems += [f"{name} not an integer" for name in SIGNED_INT_PARAMS
                 if not is_ascii_digits(values.get(name, "").removeprefix("-"))]
    if not is_uuid4(values.get("uuid", "")):
        problems.append("uuid is not a canonical UUID4")
    return problems


def is_ascii_digits(text: str) -> bool:
    # str.isdigit alone accepts "²" and other Unicode digits that int() or JS would refuse.
    return text.isascii() and text.isdigit()


def is_uuid4(text: str) -> bool:
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == text


# --- JWT (HS256) ----------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint_jwt(secret: str, payload: dict[str, Any]) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64url(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = f"{header}.{body}"
    mac = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256)
    return f"{signing_input}.{_b64url(mac.digest())}"


def decode_jwt(secret: str, token: str) -> dict[str, Any] | None:
    """The payload of a token this secret signed, or None for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
    expected = hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(expected, _b64url_decode(parts[2])):
            return None
        header = json.loads(_b64url_decode(parts[0]))
        payload = json.loads(_b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        return None
    return payload if isinstance(payload, dict) else None


# --- Envelopes --------------------------------------------------------------------------------

def base_resp(code: int = OK_CODE, msg: str = "success") -> dict[str, Any]:
    return {"status_code": code, "status_msg": msg}


def matrix_ok(**fields: Any) -> dict[str, Any]:
    return {**fields, "base_resp": base_resp()}


def matrix_error(code: int, msg: str) -> dict[str, Any]:
    return {"base_resp": base_resp(code, msg)}


def api_ok(data: dict[str, Any]) -> dict[str, Any]:
    return {"statusInfo": {"code": OK_CODE, "message": "success"}, "data": data}


def api_error(code: int, msg: str) -> dict[str, Any]:
    return {"statusInfo": {"code": code, "message": msg}, "data": None}


def family_error(family: str, code: int, msg: str) -> dict[str, Any]:
    """A business error in the envelope of the endpoint's family."""
    return api_error(code, msg) if family == "api" else matrix_error(code, msg)


# --- Request bodies ---------------------------------------------------------------------------

class Refusal(Exception):
    """A business-level refusal: this status code in the envelope (HTTP 200 unless `status`)."""

    def __init__(self, code: int, msg: str, reason: str, status: int = 200) -> None:
        super().__init__(msg)
        self.code, self.msg, self.reason, self.status = code, msg, reason, status


class BadBody(ValueError):
    """The body is not what the endpoint accepts; the message says why."""


@dataclass(frozen=True)
class Attachment:
    file_type: int
    file_id: str
    file_name: str

    def as_dict(self) -> dict[str, Any]:
        return {"file_type": self.file_type, "file_id": self.file_id,
                "file_name": self.file_name}


@dataclass(frozen=True)
class SendMsgBody:
    text: str
    chat_type: int
    chat_id: int | None
    attachments: tuple[Attachment, ...]
    web_search: bool
    model: str | None


@dataclass(frozen=True)
class ListChatBody:
    page_size: int
    next_page_index_id: int | None


def _is_int(value: Any) -> bool:
    # bool is an int subclass in Python but a distinct JSON type on the wire.
    return type(value) is int


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadBody(f"body is not UTF-8 JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise BadBody("body is not a JSON object")
    return parsed


def is_compact_json(body: bytes, parsed: dict[str, Any]) -> bool:
    """True when the body is what json.dumps(separators=(',',':'), ensure_ascii=False) gives."""
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False).encode("utf-8") == body


def parse_chat_id_body(body: dict[str, Any]) -> int:
    chat_id = body.get("chat_id")
    if not _is_int(chat_id):
        raise BadBody(f"chat_id must be an integer, got {type(chat_id).__name__}")
    return chat_id


def parse_device_register_body(body: dict[str, Any]) -> str:
    device_uuid = body.get("uuid")
    if not isinstance(device_uuid, str) or not is_uuid4(device_uuid):
        raise BadBody("uuid must be a canonical UUID4 string")
    return device_uuid


def parse_list_chat_body(body: dict[str, Any]) -> ListChatBody:
    page_size = body.get("page_size")
    if not _is_int(page_size) or not 1 <= page_size <= LIST_CHAT_MAX_PAGE:
        raise BadBody(f"page_size must be an integer 1..{LIST_CHAT_MAX_PAGE}")
    cursor = body.get("next_page_index_id")
    if "next_page_index_id" in body and not _is_int(cursor):
        raise BadBody("next_page_index_id must be an integer")
    return ListChatBody(page_size, cursor)


def _parse_attachment(item: Any) -> Attachment:
    if not isinstance(item, dict):
        raise BadBody("attachment must be an object")
    file_type, file_id, file_name = item.get("file_type"), item.get("file_id"), item.get("file_name")
    if not _is_int(file_type) or file_type not in (FILE_TYPE_IMAGE, FILE_TYPE_OTHER):
        raise BadBody("attachment.file_type must be 2 (image) or 6 (file)")
    if not isinstance(file_id, str) or not file_id:
        raise BadBody("attachment.file_id must be a non-empty string")
    if not isinstance(file_name, str):
        raise BadBody("attachment.file_name must be a string")
    return Attachment(file_type, file_id, file_name)


def _optional_type(body: dict[str, Any], key: str, kind: type, label: str) -> Any:
    value = body.get(key)
    if key in body and not isinstance(value, kind):
        raise BadBody(f"{key} must be {label}")
    return value


def _parse_backend_config(body: dict[str, Any]) -> bool:
    config = _optional_type(body, "backend_config", dict, "an object") or {}
    web_search = config.get("web_search", False)
    if not isinstance(web_search, bool):
        raise BadBody("backend_config.web_search must be a boolean")
    return web_search


def _parse_model(body: dict[str, Any]) -> str | None:
    option = _optional_type(body, "model_option", dict, "an object")
    if option is None:
        return None
    name = option.get("display_name")
    if not isinstance(name, str):
        raise BadBody("model_option.display_name must be a string")
    if "model_type" in option and not _is_int(option["model_type"]):
        raise BadBody("model_option.model_type must be an integer")
    return name


def parse_send_msg_body(body: dict[str, Any]) -> SendMsgBody:
    if body.get("msg_type") != 1 or not _is_int(body.get("msg_type")):
        raise BadBody("msg_type must be 1")
    text = body.get("text")
    if not isinstance(text, str):
        raise BadBody("text must be a string")
    chat_type = body.get("chat_type")
    if not _is_int(chat_type) or chat_type not in (CHAT_TYPE_PRO, CHAT_TYPE_LIGHTNING):
        raise BadBody("chat_type must be 0 or 1")
    # UPSTREAM says to omit chat_id for a new chat; null is a gateway bug, not "new".
    chat_id = body.get("chat_id")
    if "chat_id" in body and not _is_int(chat_id):
        raise BadBody("chat_id must be an integer (omit it for a new chat)")
    raw_attachments = _optional_type(body, "attachments", list, "a list") or []
    attachments = tuple(_parse_attachment(item) for item in raw_attachments)
    if not text and not attachments:
        raise BadBody("empty message: no text and no attachments")
    for key in ("selected_mcp_tools", "sub_agent_ids"):
        _optional_type(body, key, list, "a list")
    return SendMsgBody(text, chat_type, chat_id, attachments,
                       _parse_backend_config(body), _parse_model(body))


@dataclass(frozen=True)
class PolicyCallbackBody:
    file_name: str
    origin_file_name: str
    directory: str
    endpoint: str
    bucket: str
    size: int
    mime_type: str


_CALLBACK_STRING_FIELDS: tuple[str, ...] = (
    "fileName", "originFileName", "dir", "endpoint", "bucketName", "size", "mimeType",
)


def parse_policy_callback_body(body: dict[str, Any]) -> PolicyCallbackBody:
    for key in _CALLBACK_STRING_FIELDS:
        if not isinstance(body.get(key), str) or not body[key]:
            raise BadBody(f"{key} must be a non-empty string")
    # UPSTREAM pins size as a string: a JSON number here is a client bug, not a variant.
    if not is_ascii_digits(body["size"]):
        raise BadBody("size must be the byte count as a string of digits")
    if not MIME_TYPE.fullmatch(body["mimeType"]):
        raise BadBody("mimeType must look like type/subtype")
    return PolicyCallbackBody(body["fileName"], body["originFileName"], body["dir"],
                              body["endpoint"], body["bucketName"], int(body["size"]),
                              body["mimeType"])


def parse_robot_config_body(body: dict[str, Any]) -> str:
    """The voice an update_robot_custom_config body selects."""
    if body.get("robotID") != ROBOT_ID:
        raise BadBody(f"robotID must be the string {ROBOT_ID!r}")
    config = body.get("config")
    if not isinstance(config, dict):
        raise BadBody("config must be an object")
    voice = config.get("robotVoiceID")
    if not isinstance(voice, str) or not VOICE_NAME.fullmatch(voice):
        raise BadBody("config.robotVoiceID must be a voice name such as 'female-shaonv'")
    return voice


def tts_query_problems(query: dict[str, str]) -> list[str]:
    """msg_tts's own query values (msgID, timbre) with the wrong shape."""
    problems = [] if is_ascii_digits(query.get("msgID", "")) else ["msgID not digits"]
    if not VOICE_NAME.fullmatch(query.get("timbre", "")):
        problems.append("timbre is not a voice name")
    return problems


@dataclass(frozen=True)
class PhoneMsgForm:
    """The parts of a phone_msg multipart body."""

    fields: dict[str, str]
    voice: bytes

    def signing_body(self) -> bytes:
        """What x-signature and yy sign in place of the (binary) multipart body."""
        return (md5_hex(self.fields["characterID"]) + md5_hex(self.fields["chatID"])
                + md5_hex(self.voice[:ASR_SIGNED_PREFIX_BYTES])).encode("ascii")

    def problems(self) -> list[str]:
        return [f"{name}={self.fields[name]!r} (expected {want!r})"
                for name, want in PHONE_MSG_FIXED_FIELDS.items() if self.fields[name] != want]


def parse_phone_msg_form(mimetype: str, fields: dict[str, list[str]],
                         files: dict[str, list[bytes]]) -> PhoneMsgForm:
    """Exactly the three text fields and one voiceBytes file part, each once."""
    if mimetype != "multipart/form-data":
        raise BadBody(f"Content-Type must be multipart/form-data, got {mimetype or 'none'!r}")
    if set(fields) != set(PHONE_MSG_FIXED_FIELDS) or any(len(v) != 1 for v in fields.values()):
        raise BadBody(f"form fields must be exactly {sorted(PHONE_MSG_FIXED_FIELDS)}, each once")
    if set(files) != {PHONE_MSG_VOICE_FIELD} or len(files[PHONE_MSG_VOICE_FIELD]) != 1:
        raise BadBody(f"the form needs exactly one file part named {PHONE_MSG_VOICE_FIELD!r}")
    return PhoneMsgForm({name: values[0] for name, values in fields.items()},
                        files[PHONE_MSG_VOICE_FIELD][0])


# --- Server-sent events (phone_msg's reply) ---------------------------------------------------

# CRLF on purpose: the SSE spec allows it and clients that split on "\n\n" only break.
SSE_LINE_END: str = "\r\n"
ASR_EVENT: str = "asr_chunk"
AUDIO_EVENT: str = "audio_chunk"


def sse_event(name: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    end = SSE_LINE_END
    return f"event: {name}{end}data: {payload}{end}{end}".encode("utf-8")


def asr_event(status_code: int, text: str) -> bytes:
    return sse_event(ASR_EVENT, {"status_code": status_code, "data": {"text": text}})


def audio_event(audio: bytes) -> bytes:
    encoded = base64.b64encode(audio).decode("ascii")
    return sse_event(AUDIO_EVENT, {"status_code": OK_CODE, "data": {"audio": encoded}})
