"""Every [assumed] shape of the session surface, in one place.

Role: the answers, codes, frames and upload forms of the MiniMax Agent "session" API that
no genuine capture shows (/work/shared/CAPTURES.md holds no response bodies). They follow
/tmp/session-contract.md and /work/shared/UPSTREAM-SESSION.md. THESE ARE ASSUMPTIONS: when
real answers are seen, correct them here (and only here); the rest of the simulator builds
its replies through these constants and builders.
"""

from __future__ import annotations

import json
from typing import Any

# --- Prefixes and models --------------------------------------------------------------------

SESSION_PREFIXES: tuple[str, ...] = ("/archon/api/v1", "/minimax-cloud/api/v1")
DEFAULT_SESSION_PREFIX: str = "/archon/api/v1"

MODELS: tuple[dict[str, Any], ...] = (
    {"model_id": "MiniMax-M3", "context_limit": 450000, "supported_variants": ["", "thinking"],
     "thinking_config": {"mode": "switchable"}},
    {"model_id": "MiniMax-M2.7", "context_limit": 200000, "supported_variants": [""],
     "thinking_config": {"mode": "always"}},
    {"model_id": "MiniMax-M2.7-highspeed", "context_limit": 200000, "supported_variants": [""],
     "thinking_config": {"mode": "none"}},
)
MODEL_PROVIDER: str = "minimax"
DEFAULT_MODEL_ID: str = "MiniMax-M3"

AGENT_ROLES: tuple[tuple[str, str], ...] = (("mavis", "Mavis"), ("general", "General"))

# --- Codes ------------------------------------------------------------------------------------

OK_CODE: int = 0
NOT_CONFIGURED_CODE: int = 1400010501
NOT_CONFIGURED_MSG: str = "Environment Variables not configured"
INVALID_MODEL_CODE: int = 1406010011
INVALID_MODEL_MSG: str = "invalid model selection"
BAD_DEVICE_CODE: int = 1406011050
BAD_DEVICE_ERROR: str = "internal error"
BAD_DEVICE_LABEL: str = "UNEXPECTED_ERROR"
# [simulator's choice] no source names codes for these.
SESSION_NOT_FOUND_CODE: int = 1406010404
SESSION_NOT_FOUND_MSG: str = "session not found"
UPLOAD_NOT_FOUND_CODE: int = 1406010460
UPLOAD_NOT_FOUND_MSG: str = "uploaded object not found"
UPLOAD_MISMATCH_CODE: int = 1406010461
UPLOAD_MISMATCH_MSG: str = "attachment does not match the uploaded object"
# uploads/prepare refused (the `uploads_prepare: refused` drift knob), HTTP 403.
UPLOAD_REFUSED_CODE: int = 1406010403
UPLOAD_REFUSED_MSG: str = "upload not permitted"
# The fault kind busy_msg: a code other than 1400010170 whose message still says busy.
BUSY_MSG_CODE: int = 1400010172
BUSY_MSG_MSG: str = "chat is running"


def base_resp(code: int = OK_CODE, msg: str = "success") -> dict[str, Any]:
    return {"status_code": code, "status_msg": msg}


def ok(**fields: Any) -> dict[str, Any]:
    return {**fields, "base_resp": base_resp()}


def error(code: int, msg: str) -> dict[str, Any]:
    return {"base_resp": base_resp(code, msg)}


def bad_device() -> dict[str, Any]:
    return {"error": BAD_DEVICE_ERROR, "code": BAD_DEVICE_LABEL,
            "base_resp": base_resp(BAD_DEVICE_CODE, BAD_DEVICE_ERROR)}


# --- The SPA page a wrong path answers (HTTP 200 text/html) --------------------------------------

SPA_HTML: str = ("<!DOCTYPE html><html lang=\"zh\"><head><meta charset=\"utf-8\">"
                 "<title>MiniMax Agent</title></head><body><div id=\"root\"></div>"
                 "<script src=\"/static/js/main.js\"></script></body></html>")

# --- Answers ---------------------------------------------------------------------------------------

def config_answer() -> dict[str, Any]:
    return ok(models=[dict(model) for model in MODELS])


def agent_entry(agent_id: str, role: str, display_name: str, root_session_id: str) -> dict[str, Any]:
    return {"name": agent_id, "agent_role": role, "display_name": display_name,
            "root_session_id": root_session_id}


def agents_answer(agents: list[dict[str, Any]]) -> dict[str, Any]:
    return ok(agents=agents)


def created_answer(session_id: int, agent_id: str) -> dict[str, Any]:
    return ok(session_id=str(session_id), agent_name=agent_id)


def session_view(session_id: int, agent_id: str, title: str, running: bool, archived: bool,
                 created_ms: int, updated_ms: int) -> dict[str, Any]:
    return {"session_id": str(session_id), "agent_name": agent_id, "title": title,
            "status": {"type": 1 if running else 0}, "archived": archived,
            "created_at": created_ms, "updated_at": updated_ms}


def status_answer(view: dict[str, Any]) -> dict[str, Any]:
    return ok(session=view)


def archive_answer() -> dict[str, Any]:
    return ok(success=True)


def delete_answer() -> dict[str, Any]:
    return ok()


# --- Uploads -----------------------------------------------------------------------------------------

UPLOAD_PURPOSE: int = 1
UPLOAD_ROUTE: str = "/_upload"
UPLOAD_FILE_FIELD: str = "file"
UPLOAD_LIFETIME_SECONDS: float = 3600.0
UPLOAD_SUCCESS_STATUS: str = "204"
# Order matters: the POST must repeat them in exactly this order, then the file part.
UPLOAD_FIELD_NAMES: tuple[str, ...] = ("key", "policy", "x-sim-credential",
                                       "success_action_status", "signature")


def prepare_answer(object_key: str, url: str, fields: list[list[str]]) -> dict[str, Any]:
    return ok(object_key=object_key,
              upload_instruction={"method": "POST", "url": url, "form_fields": fields})


def attachment_type_of(mime_type: str) -> int:
    """The matrix file_type a session attachment maps to in the log (2 image, 6 other)."""
    return 2 if mime_type.startswith("image/") else 6


# --- SSE frames ----------------------------------------------------------------------------------------

DONE_LINE: bytes = b"data:[DONE]\n\n"
HEARTBEATS: tuple[dict[str, Any], ...] = ({"type": "heartbeat"}, {"type": 10})
FRAME_MESSAGE: int = 2
FRAME_CHUNK: int = 6
MSG_TYPE_TEXT: int = 1
CHUNK_KIND: str = "text"
FINISH_REASON_STOP: str = "stop"
TOOL_RUNNING: str = "running"
TOOL_DONE: str = "done"
# A tool call's status (running, finished) per `tool_status_form`: the words of the web
# app's own reducer, or numbers as some clients report them [simulator's choice: 1, 2].
TOOL_STATUSES: dict[str, tuple[str | int, str | int]] = {"word": (TOOL_RUNNING, TOOL_DONE),
                                                         "number": (1, 2)}


def frame(payload: dict[str, Any]) -> bytes:
    """`data:{json}` with no space after the colon, then a blank line."""
    return b"data:" + json.dumps(payload, ensure_ascii=False,
                                 separators=(",", ":")).encode("utf-8") + b"\n\n"


def user_echo(msg_id: int, content: str) -> dict[str, Any]:
    return {"type": FRAME_MESSAGE, "agent_message": {
        "role": "user", "msg_type": MSG_TYPE_TEXT, "msg_id": msg_id, "msg_content": content}}


def chunk(msg_id: int, index: int, timestamp_ms: int, text: str = "", thinking: str = "",
          finish: bool = False, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"msg_id": msg_id, "chunk_index": index, "msg_type": MSG_TYPE_TEXT,
                            "role": "assistant", "timestamp": timestamp_ms, "kind": CHUNK_KIND,
                            "msg_content": text, "thinking_content": thinking, "finish": finish}
    if finish:
        body["finish_reason"] = FINISH_REASON_STOP
    if tool_calls is not None:
        body["tool_calls"] = tool_calls
    return {"type": FRAME_CHUNK, "agent_message_chunk": body}


def tool_call(call_id: str, name: str, args: dict[str, Any], result: str | None,
              status_form: str = "word") -> dict[str, Any]:
    running, done = TOOL_STATUSES[status_form]
    entry: dict[str, Any] = {"tool_call_id": call_id, "tool_name": name,
                             "tool_call_args": json.dumps(args, ensure_ascii=False),
                             "tool_call_status": running if result is None else done}
    if result is not None:
        entry["tool_call_result_data"] = result
    return entry


def usage(prompt: str, answer: str, thinking: str) -> dict[str, int]:
    # [simulator's choice] about four characters a token.
    inputs, outputs = -(-len(prompt) // 4), -(-(len(answer) + len(thinking)) // 4)
    return {"input_tokens": inputs, "output_tokens": outputs, "total_tokens": inputs + outputs}


def final_message(msg_id: int, text: str, thinking: str, usage_: dict[str, int]) -> dict[str, Any]:
    return {"type": FRAME_MESSAGE, "agent_message": {
        "role": "assistant", "msg_type": MSG_TYPE_TEXT, "msg_id": msg_id, "msg_content": text,
        "thinking_content": thinking, "finish_reason": FINISH_REASON_STOP, "usage": usage_}}


def stream_error(code: int, message: str) -> dict[str, Any]:
    return {"type": "error", "errorCode": code, "message": message}
