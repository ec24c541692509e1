"""Wire shapes of the MiniMax Code surface: catalogue, error bodies, SSE frames, token counts.

Role: the simulator's reading of /work/shared/UPSTREAM-CODE.md (the "page") as constants
and pure builders, so the routes (`code_app`, `code_account_app`) and the stream
(`code_stream`) say each shape once. Values the page marks [assumed] or [unknown] are
named here with the simulator's choice:
- [assumed] a token that is not valid (expired, unknown, revoked, a refused web JWT) on
  /messages answers 401 `{"code":401,"message":"token is expired or invalid"}` (the page:
  "401 (other body)", shape unknown);
- [assumed] Token Plan exhaustion answers HTTP 429 with an Anthropic error body that also
  carries `base_resp.status_code` 2056 "usage limit exceeded" (the page: status and wire
  text unknown, the business code 2056 wins over the HTTP status);
- [assumed] a body over 16 MiB answers 413 `request_too_large` (Anthropic's own status for
  it; the page only says the strictest channel rejects ~16-18 MB);
- token counts are a deterministic estimate: ceil(characters / 4) per text, plus a fixed
  cost per message and per image (the real tokenizer is unknown and irrelevant here).
"""

from __future__ import annotations

import json
import math
from typing import Any

MESSAGES_PATH: str = "/mavis/api/v1/llm/v1/messages"
COUNT_TOKENS_PATH: str = "/mavis/api/v1/llm/v1/messages/count_tokens"
LLM_PREFIX: str = "/mavis/api/v1/llm/"
MODELS_PATH: str = "/mavis/api/v1/models"
CATALOGUE_TTL_SECONDS: int = 300
CATALOGUE_REGIONS: tuple[str, ...] = ("cn", "en")

ACCESS_PREFIX: str = "mmoat_"
REFRESH_PREFIX: str = "mmort_"
TOKEN_BODY_CHARS: int = 54  # 60 characters in all, like the page's measured tokens

MAX_BODY_BYTES: int = 16 * 1024 * 1024
MAX_IMAGE_BYTES: int = 10 * 1024 * 1024
MAX_ATTACHMENTS: int = 4  # per request (the catalogue's capability; per-message is not said)
IMAGE_MEDIA_TYPES: tuple[str, ...] = ("image/png", "image/jpeg", "image/gif", "image/webp")

INVALID_PARAMS_CODE: int = 2013
USAGE_LIMIT_CODE: int = 2056
USAGE_LIMIT_MSG: str = "usage limit exceeded"
DIRECT_ROUTE_CODE: int = 50115
CHARS_PER_TOKEN: int = 4
TOKENS_PER_MESSAGE: int = 4
TOKENS_PER_IMAGE: int = 1000

TOKEN_REQUIRED: dict[str, Any] = {"code": 401, "message": "token is required"}
TOKEN_INVALID: dict[str, Any] = {"code": 401, "message": "token is expired or invalid"}
DIRECT_ROUTE: dict[str, Any] = {"errorCode": DIRECT_ROUTE_CODE,
                                "errorReason": "direct_route_not_configured"}

FORCED_ON: str = "forced_on"
SWITCHABLE: str = "switchable"
# The official first-run catalogue (page §3), in model_order.
MODELS: dict[str, dict[str, Any]] = {
    "MiniMax-M3.1-Flash-Preview": {
        "name": "M3.1-Flash-Preview", "context": 512000, "context_options": [512000, 1000000],
        "input": ["text", "image", "video"], "thinking_config": {"mode": FORCED_ON},
        "effort_options": ["default", "low", "medium", "high", "xhigh", "max"],
        "default_effort": "default"},
    "MiniMax-M3": {
        "name": "M3", "context": 512000, "context_options": [512000, 1000000],
        "input": ["text", "image", "video"],
        "thinking_config": {"mode": SWITCHABLE, "default_value": "true"},
        "effort_options": [], "default_effort": None},
    "MiniMax-M2.7-highspeed": {
        "name": "M2.7-highspeed", "context": 200000, "context_options": [200000],
        "input": ["text"], "thinking_config": {"mode": FORCED_ON},
        "effort_options": [], "default_effort": None},
    "MiniMax-M2.7": {
        "name": "M2.7", "context": 200000, "context_options": [200000],
        "input": ["text"], "thinking_config": {"mode": FORCED_ON},
        "effort_options": [], "default_effort": None},
}
MODEL_OUTPUT_LIMIT: int = 128000
ADAPTIVE_PREFIX: str = "MiniMax-M3.1"  # M3.1* require adaptive thinking (page: by prefix)


# --- Errors ------------------------------------------------------------------------------------

def anthropic_error(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, **extra}


def invalid_params(detail: str) -> dict[str, Any]:
    """400 (2013): the page's `invalid_request_error … (2013)`."""
    return anthropic_error("invalid_request_error",
                           f"invalid params, {detail} ({INVALID_PARAMS_CODE})")


def usage_limit() -> dict[str, Any]:
    return anthropic_error("rate_limit_error", f"{USAGE_LIMIT_MSG} ({USAGE_LIMIT_CODE})",
                           base_resp={"status_code": USAGE_LIMIT_CODE,
                                      "status_msg": USAGE_LIMIT_MSG})


def insufficient_balance() -> dict[str, Any]:
    """Credits used up (page §2: 402, or body status_code 1008 "insufficient balance")."""
    return anthropic_error("billing_error", "insufficient balance (1008)",
                           base_resp={"status_code": 1008, "status_msg": "insufficient balance"})


def rate_limited() -> dict[str, Any]:
    return anthropic_error("rate_limit_error", "rate limit exceeded (2045)")


def overloaded() -> dict[str, Any]:
    return anthropic_error("overloaded_error", "the server cluster is overloaded (529)")


def too_large() -> dict[str, Any]:
    return anthropic_error("request_too_large",
                           f"request body exceeds {MAX_BODY_BYTES} bytes")


def adaptive_required(model: str, given: str) -> str:
    """The page's exact 2013 text for `disabled` (and, [assumed], for a missing thinking)."""
    return (f'model "{model}" requires adaptive thinking; thinking.type="{given}" '
            "(including reasoning.effort=none) is not allowed")


# --- The catalogue ---------------------------------------------------------------------------

def _model_entry(wire_id: str, info: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": wire_id, "name": info["name"],
        "limit": {"context": info["context"], "output": MODEL_OUTPUT_LIMIT},
        "context_window_options": list(info["context_options"]),
        "modalities": {"input": list(info["input"]), "output": ["text"]},
        "effort_options": list(info["effort_options"]),
        "thinking_config": dict(info["thinking_config"]),
    }
    if info["default_effort"] is not None:
        entry["default_effort"] = info["default_effort"]
    return entry


def catalogue(region: str | None, build_env: str | None) -> dict[str, Any]:
    """providers[0].config.models keyed by wire id; empty without region/buildEnv (page §3)."""
    full = region in CATALOGUE_REGIONS and build_env == "prod"
    models = {wire_id: _model_entry(wire_id, info) for wire_id, info in MODELS.items()} if full else {}
    return {"providers": [{"providerId": "minimax",
                           "config": {"models": models, "model_order": list(models)}}],
            "ttlSeconds": CATALOGUE_TTL_SECONDS}


def thinking_mode(model: str) -> str:
    return str(MODELS[model]["thinking_config"]["mode"])


# --- Token estimate ----------------------------------------------------------------------------

def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return text_tokens(block)
    if not isinstance(block, dict):
        return 0
    kind = block.get("type")
    if kind == "image":
        return TOKENS_PER_IMAGE
    if kind in ("text", "thinking"):
        return text_tokens(str(block.get(kind, "")))
    if kind == "tool_use":
        return text_tokens(str(block.get("name", "")) + json.dumps(block.get("input", {})))
    if kind == "tool_result":
        content = block.get("content", "")
        return _content_tokens(content) if isinstance(content, list) else text_tokens(str(content))
    return 0


def _content_tokens(content: Any) -> int:
    if isinstance(content, list):
        return sum(_block_tokens(block) for block in content)
    return _block_tokens(content)


def input_tokens(body: dict[str, Any]) -> int:
    """The estimate count_tokens answers and message_delta reports (they agree)."""
    total = _content_tokens(body.get("system", ""))
    for message in body.get("messages", []):
        total += TOKENS_PER_MESSAGE + _content_tokens(message.get("content", ""))
    for tool in body.get("tools", []) or []:
        total += text_tokens(json.dumps(tool, sort_keys=True))
    return total


# --- SSE ---------------------------------------------------------------------------------------

def sse(event: dict[str, Any]) -> bytes:
    """One frame: `event:` names the data's type, as Anthropic streams do."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode("utf-8")


def message_shell(message_id: str, model: str) -> dict[str, Any]:
    return {"id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0}}


def usage_of(input_count: int, output: int, thinking: int) -> dict[str, Any]:
    return {"input_tokens": input_count, "output_tokens": output,
            "output_tokens_details": {"thinking_tokens": thinking}}


def block_start(index: int, block: dict[str, Any]) -> bytes:
    return sse({"type": "content_block_start", "index": index, "content_block": block})


def block_delta(index: int, delta: dict[str, Any]) -> bytes:
    return sse({"type": "content_block_delta", "index": index, "delta": delta})


def block_stop(index: int) -> bytes:
    return sse({"type": "content_block_stop", "index": index})


PING: bytes = sse({"type": "ping"})
MESSAGE_STOP: bytes = sse({"type": "message_stop"})


def stream_error_frame() -> bytes:
    """error_mid on this surface: the quota wall, as an in-stream error frame with its code."""
    return sse({"type": "error", "error": {"type": "rate_limit_error",
                                           "message": f"{USAGE_LIMIT_MSG} ({USAGE_LIMIT_CODE})",
                                           "code": USAGE_LIMIT_CODE}})
