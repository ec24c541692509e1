"""Wire rules of the session surface: its endpoints and request-body validators.

Role: what /tmp/session-contract.md pins about requests to the session prefix (paths are
relative to the prefix, the one `SimState` is configured with). Pure, like `protocol`;
reply shapes are in `session_shapes` (they are assumptions), state is in `sessions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.simulator.protocol import MIME_TYPE, BadBody, EndpointSpec, is_uuid4
from tests.simulator.session_shapes import MODEL_PROVIDER, MODELS, UPLOAD_PURPOSE

SESSION_ENDPOINTS: tuple[EndpointSpec, ...] = (
    EndpointSpec("session_config", "GET", "/config", "session", body_kind="none"),
    EndpointSpec("session_agents", "GET", "/agent", "session", body_kind="none",
                 optional_prefix=("limit",)),
    EndpointSpec("session_create", "POST", "/agent/{agent_id}/session", "session"),
    EndpointSpec("session_status", "GET", "/session/{session_id}", "session", body_kind="none"),
    EndpointSpec("session_archive", "POST", "/session/{session_id}/archive", "session"),
    EndpointSpec("session_delete", "DELETE", "/session/{session_id}", "session",
                 body_kind="none"),
    EndpointSpec("uploads_prepare", "POST", "/uploads/prepare", "session"),
    EndpointSpec("session_message", "POST", "/session/{session_id}/message", "session",
                 host="stream"),
    EndpointSpec("session_events", "GET", "/events", "session", body_kind="none",
                 host="stream"),
)
SESSION_ENDPOINT_NAMES: tuple[str, ...] = tuple(spec.name for spec in SESSION_ENDPOINTS)
MESSAGE_ENDPOINT: str = "session_message"
MESSAGE_KEY_ORDER: tuple[str, ...] = ("content", "attachments", "model", "turn_id",
                                      "enable_team", "worktreeMode")
_PATH_VARIABLE = re.compile(r"\{(\w+)\}")


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile(_PATH_VARIABLE.sub(r"(?P<\1>[^/]+)", re.escape(path).replace(
        r"\{", "{").replace(r"\}", "}")) + r"\Z")


_ROUTES: tuple[tuple[EndpointSpec, re.Pattern[str]], ...] = tuple(
    (spec, _pattern(spec.path)) for spec in SESSION_ENDPOINTS)


def match_route(rest: str, method: str) -> tuple[EndpointSpec | None, dict[str, str], bool]:
    """(spec, path variables, path_known) for a path after the prefix."""
    known = False
    for spec, pattern in _ROUTES:
        found = pattern.match(rest)
        if found is None:
            continue
        known = True
        if spec.method == method:
            return spec, found.groupdict(), True
    return None, {}, known


def pattern_of(spec: EndpointSpec, prefix: str) -> str:
    """The request-counter key of a session call: ids stay out of the key."""
    return prefix + spec.path


# --- Bodies -----------------------------------------------------------------------------------

class InvalidModel(BadBody):
    """A model selection the catalogue does not hold (answered 1406010011, HTTP 400)."""


def _is_int(value: Any) -> bool:
    return type(value) is int


def _model_entry(model_id: Any) -> dict[str, Any]:
    for model in MODELS:
        if model["model_id"] == model_id:
            return model
    raise InvalidModel(f"unknown model {model_id!r}")


def parse_create_body(body: dict[str, Any]) -> str:
    """The model id of a session creation body: {"model":"minimax/<id>"} or an object."""
    model = body.get("model")
    if isinstance(model, str):
        provider, _, model_id = model.partition("/")
        if provider != MODEL_PROVIDER:
            raise InvalidModel(f"model must be '{MODEL_PROVIDER}/<model_id>'")
        return _model_entry(model_id)["model_id"]
    if isinstance(model, dict):
        return _model_object(model)[0]
    raise InvalidModel("model must be 'minimax/<model_id>' or an object")


def _model_object(model: dict[str, Any]) -> tuple[str, str | None]:
    if model.get("provider_id") != MODEL_PROVIDER:
        raise InvalidModel(f"model.provider_id must be {MODEL_PROVIDER!r}")
    entry = _model_entry(model.get("model_id"))
    variant = model.get("variant")
    if "variant" in model and variant not in entry["supported_variants"]:
        raise InvalidModel(f"variant {variant!r} not in {entry['supported_variants']}")
    return entry["model_id"], variant


def parse_archive_body(body: dict[str, Any]) -> bool:
    archived = body.get("archived")
    if not isinstance(archived, bool):
        raise BadBody("archived must be a boolean")
    return archived


@dataclass(frozen=True)
class PrepareBody:
    file_name: str
    mime_type: str
    size_bytes: int


def parse_prepare_body(body: dict[str, Any], max_bytes: int) -> PrepareBody:
    if body.get("purpose") != UPLOAD_PURPOSE or not _is_int(body.get("purpose")):
        raise BadBody(f"purpose must be {UPLOAD_PURPOSE}")
    name, mime, size = body.get("file_name"), body.get("mime_type"), body.get("size_bytes")
    if not isinstance(name, str) or not name:
        raise BadBody("file_name must be a non-empty string")
    if not isinstance(mime, str) or not MIME_TYPE.fullmatch(mime):
        raise BadBody("mime_type must look like type/subtype")
    if not _is_int(size) or not 0 < size <= max_bytes:
        raise BadBody(f"size_bytes must be an integer 1..{max_bytes}")
    return PrepareBody(name, mime, size)


@dataclass(frozen=True)
class SessionAttachment:
    object_key: str
    file_name: str
    mime_type: str
    size_bytes: int


@dataclass(frozen=True)
class StsAttachment:
    """A file uploaded through the legacy STS steps, attached by its ``ossPath`` the way
    public clients of August 2026 do: ``{type, file_path, file_name, mime_type, data_url}``."""

    kind: str  # "image" | "file"
    oss_path: str
    file_name: str
    mime_type: str


STS_ATTACHMENT_KINDS: tuple[str, ...] = ("image", "file")
STS_ATTACHMENT_KEYS: tuple[str, ...] = ("type", "file_path", "file_name", "mime_type", "data_url")


@dataclass(frozen=True)
class MessageBody:
    content: str
    model_id: str | None
    variant: str | None
    turn_id: str
    attachments: tuple[SessionAttachment | StsAttachment, ...]
    key_order_ok: bool


def _parse_sts_attachment(item: dict[str, Any]) -> StsAttachment:
    if set(item) != set(STS_ATTACHMENT_KEYS) or item["type"] not in STS_ATTACHMENT_KINDS:
        raise BadBody(f"an STS attachment is exactly {{{', '.join(STS_ATTACHMENT_KEYS)}}}, "
                      f"type one of {STS_ATTACHMENT_KINDS}")
    if not all(isinstance(item[key], str) and item[key] for key in STS_ATTACHMENT_KEYS):
        raise BadBody("an STS attachment's fields are non-empty strings")
    if not MIME_TYPE.fullmatch(item["mime_type"]):
        raise BadBody("attachment mime_type must look like type/subtype")
    return StsAttachment(item["type"], item["data_url"], item["file_name"], item["mime_type"])


def _parse_attachment(item: Any) -> SessionAttachment | StsAttachment:
    if isinstance(item, dict) and "type" in item:
        return _parse_sts_attachment(item)
    meta = item.get("meta") if isinstance(item, dict) else None
    cloud = item.get("cloud") if isinstance(item, dict) else None
    if not isinstance(meta, dict) or not isinstance(cloud, dict):
        raise BadBody("attachment must be {meta:{...}, cloud:{object_key}}")
    if meta.get("attachment_type") != "file":
        raise BadBody("attachment.meta.attachment_type must be 'file'")
    name, mime, size = meta.get("file_name"), meta.get("mime_type"), meta.get("size_bytes")
    if not isinstance(name, str) or not isinstance(mime, str) or not _is_int(size):
        raise BadBody("attachment.meta needs file_name, mime_type (strings), size_bytes (int)")
    key = cloud.get("object_key")
    if not isinstance(key, str) or not is_uuid4(key):
        raise BadBody("attachment.cloud.object_key must be the UUID from uploads/prepare")
    return SessionAttachment(key, name, mime, size)


def _message_model(body: dict[str, Any]) -> tuple[str | None, str | None]:
    if "model" not in body:
        return None, None
    model = body["model"]
    if not isinstance(model, dict):
        raise InvalidModel("model must be an object {provider_id, model_id, variant}")
    return _model_object(model)


def parse_message_body(body: dict[str, Any]) -> MessageBody:
    content = body.get("content")
    if not isinstance(content, str) or not content:
        raise BadBody("content must be a non-empty string (a single space for file-only)")
    turn_id = body.get("turn_id")
    if not isinstance(turn_id, str) or not is_uuid4(turn_id):
        raise BadBody("turn_id must be a canonical UUID4 string")
    for key in ("enable_team", "worktreeMode"):
        if key in body and not isinstance(body[key], bool):
            raise BadBody(f"{key} must be a boolean")
    raw = body.get("attachments", [])
    if not isinstance(raw, list):
        raise BadBody("attachments must be a list")
    unknown = set(body) - set(MESSAGE_KEY_ORDER)
    if unknown:
        raise BadBody(f"unknown message fields: {sorted(unknown)}")
    model_id, variant = _message_model(body)
    order = [key for key in MESSAGE_KEY_ORDER if key in body]
    return MessageBody(content, model_id, variant, turn_id,
                       tuple(_parse_attachment(item) for item in raw), list(body) == order)
