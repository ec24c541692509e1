"""Every request and answer shape of the session surface, in one place.

The captures (``shared/CAPTURES.md``) show the session surface's requests but hold no
response bodies, so most answer shapes here are **[assumed]** from public clients
(``shared/UPSTREAM-SESSION.md``). Each one is a small function below, marked, and read
leniently (several known spellings, ``data`` wrappers) so that correcting one when real
answers are seen is an edit here and nowhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.upstream import constants as C
from gateway.upstream.conversation import Attachment


@dataclass(frozen=True)
class ModelInfo:
    model_id: str
    variants: tuple[str, ...]


@dataclass(frozen=True)
class UploadInstruction:
    object_key: str
    url: str
    fields: list[tuple[str, str]]


# -- requests (captured unless marked) --------------------------------------------------
def create_body(model_id: str) -> dict[str, Any]:
    """Session creation, as the June 2026 browser sends it (captured)."""
    return {"model": f"{C.SESSION_PROVIDER}/{model_id}"}


def message_body(content: str, model: ModelInfo, turn_id: str,
                 attachments: tuple[Attachment, ...] = ()) -> dict[str, Any]:
    """The message POST body, keys in the browser's order (captured; attachments assumed)."""
    body: dict[str, Any] = {"content": content or " "}  # a file-only turn sends a space
    if attachments:
        body["attachments"] = [attachment_entry(item) for item in attachments]
    body["model"] = {"provider_id": C.SESSION_PROVIDER, "model_id": model.model_id,
                     "variant": pick_variant(model)}
    body["turn_id"] = turn_id
    body["enable_team"] = C.SESSION_ENABLE_TEAM
    body["worktreeMode"] = C.SESSION_WORKTREE_MODE
    return body


def pick_variant(model: ModelInfo) -> str:
    if C.SESSION_THINKING_VARIANT in model.variants:
        return C.SESSION_THINKING_VARIANT
    return model.variants[0] if model.variants else ""


#: [assumed] ``type`` of a legacy STS upload's entry: ``image`` as public clients of August
#: 2026 send it, ``file`` (no source shows one) for anything else.
STS_ATTACHMENT_TYPES = {True: "image", False: "file"}


def attachment_entry(item: Attachment) -> dict[str, Any]:
    """[assumed] an uploaded file as the message's ``attachments`` entry: by its object key
    (uploads/prepare) or by the ``ossPath`` of a legacy STS upload."""
    if item.oss_path:
        return {"type": STS_ATTACHMENT_TYPES[item.is_image], "file_path": item.file_name,
                "file_name": item.file_name, "mime_type": item.mime_type, "data_url": item.oss_path}
    return {"meta": {"attachment_type": "file", "file_name": item.file_name,
                     "mime_type": item.mime_type, "size_bytes": item.size},
            "cloud": {"object_key": item.ref}}


def prepare_body(file_name: str, mime_type: str, size: int) -> dict[str, Any]:
    """[assumed] uploads/prepare's request."""
    return {"purpose": C.SESSION_UPLOAD_PURPOSE, "file_name": file_name,
            "mime_type": mime_type, "size_bytes": size}


ARCHIVE_BODY: dict[str, Any] = {"archived": True}


# -- answers [assumed] ------------------------------------------------------------------
def session_id_of(answer: dict[str, Any]) -> str | None:
    """The new session's id: top level, under ``data`` or ``session``, or a bare string."""
    for holder in (answer, answer.get("data"), answer.get("session")):
        if isinstance(holder, dict):
            value = holder.get("session_id")
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                return str(value)
        elif isinstance(holder, (str, int)) and not isinstance(holder, bool) and str(holder).isdigit():
            return str(holder)
    return None


def agents_of(answer: dict[str, Any]) -> list[tuple[str, str]]:
    """``(agent id, role)`` pairs; the id is in ``name``."""
    agents = answer.get("agents")
    if not isinstance(agents, list):
        return []
    return [(str(a["name"]), str(a.get("agent_role") or "")) for a in agents
            if isinstance(a, dict) and isinstance(a.get("name"), (str, int)) and str(a["name"])]


def models_of(config: dict[str, Any]) -> list[ModelInfo]:
    """The live model catalogue of ``config``."""
    models = config.get("models")
    if not isinstance(models, list):
        return []
    found = []
    for entry in models:
        model_id = _first_string(entry, MODEL_ID_KEYS) if isinstance(entry, dict) else ""
        if model_id:
            variants: list[Any] = next((entry[k] for k in VARIANTS_KEYS if isinstance(entry.get(k), list)), [])
            found.append(ModelInfo(model_id, tuple(v for v in variants if isinstance(v, str))))
    return found


#: [assumed] where a catalogue entry names its id and variants (later clients: ``id``, ``variants``).
MODEL_ID_KEYS = ("model_id", "id")
VARIANTS_KEYS = ("supported_variants", "variants")
#: [assumed] where a chunk or message carries its answer text (``msg_content``, captured).
TEXT_KEYS = ("msg_content", "content", "text")


def _first_string(body: dict[str, Any], keys: tuple[str, ...]) -> str:
    return next((body[k] for k in keys if isinstance(body.get(k), str) and body[k]), "")


def answer_text(body: dict[str, Any]) -> str:
    """The answer text of a chunk or whole message, under any of :data:`TEXT_KEYS`."""
    return _first_string(body, TEXT_KEYS)


def turn_running(status: dict[str, Any]) -> bool:
    """Whether a session's status shows a running turn (``status.type`` 1). [assumed]"""
    session = status.get("session")
    state = session.get("status") if isinstance(session, dict) else None
    return isinstance(state, dict) and state.get("type") == 1


def upload_instruction_of(answer: dict[str, Any]) -> UploadInstruction | None:
    key = answer.get("object_key")
    instruction = answer.get("upload_instruction")
    if not isinstance(key, str) or not isinstance(instruction, dict):
        return None
    url = instruction.get("url")
    raw = instruction.get("form_fields")
    if isinstance(raw, dict):
        raw = list(raw.items())
    if not isinstance(url, str) or not isinstance(raw, list):
        return None
    fields = [(str(pair[0]), str(pair[1])) for pair in raw
              if isinstance(pair, (list, tuple)) and len(pair) == 2]
    return UploadInstruction(key, url, fields)


# -- stream frames ----------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """One SSE ``data:`` payload, classified."""

    kind: str  # "done" | "heartbeat" | "error" | "chunk" | "message" | "other"
    body: dict[str, Any]


HEARTBEAT_TYPES = ("heartbeat", 10)
CHUNK_TYPE, MESSAGE_TYPE = 6, 2
DONE = "[DONE]"


def read_frame(data: str) -> Frame:
    if data.strip() == DONE:
        return Frame("done", {})
    try:
        payload = json.loads(data)
    except ValueError:
        return Frame("other", {})
    if not isinstance(payload, dict):
        return Frame("other", {})
    kind = payload.get("type")
    if kind in HEARTBEAT_TYPES:
        return Frame("heartbeat", payload)
    if kind == "error" or payload.get("error") or payload.get("error_msg"):
        return Frame("error", payload)
    if kind == CHUNK_TYPE and isinstance(payload.get("agent_message_chunk"), dict):
        return Frame("chunk", payload["agent_message_chunk"])
    if kind == MESSAGE_TYPE and isinstance(payload.get("agent_message"), dict):
        return Frame("message", payload["agent_message"])
    return Frame("other", payload)


def error_of(frame: dict[str, Any]) -> tuple[int, str]:
    """``(code, text)`` of an error frame (``errorCode`` and ``error``/``message``)."""
    code = frame.get("errorCode", frame.get("code", -1))
    text = frame.get("message") or frame.get("error") or frame.get("error_msg") or ""
    return (code if isinstance(code, int) else -1), str(text)[:200]


#: [assumed] words of a finished tool call's ``tool_call_status`` (any case).
TOOL_DONE_WORDS = ("done", "success", "succeeded", "finished", "completed", "complete")


@dataclass(frozen=True)
class ToolStep:
    """A finished agent tool call: its id (when given), tool name and result text."""

    call_id: str
    name: str
    result: str


def tool_finished(call: dict[str, Any]) -> bool:
    """[assumed] whether an agent tool call is finished. The status may be a word or a
    number whose meanings no capture shows; a result present means it finished."""
    if call.get("tool_call_result_data") not in (None, ""):
        return True
    status = call.get("tool_call_status")
    return isinstance(status, str) and status.strip().lower() in TOOL_DONE_WORDS


def tool_steps_of(chunk: dict[str, Any]) -> list[ToolStep]:
    """[assumed] the finished agent tool calls of a chunk."""
    calls = chunk.get("tool_calls")
    if not isinstance(calls, list):
        return []
    done = []
    for call in calls:
        if isinstance(call, dict) and tool_finished(call):
            result = call.get("tool_call_result_data")
            text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
            done.append(ToolStep(str(call.get("tool_call_id") or ""), str(call.get("tool_name") or "tool"),
                                 text if result is not None else ""))
    return done


def text_of(value: object) -> str:
    return value if isinstance(value, str) else ""
