"""The chat part of the protocol: send_msg bodies and reading get_chat_detail answers.

The upstream has no push channel: a generation is observed by polling get_chat_detail,
whose message contents are cumulative. :func:`read_snapshot` reduces one poll to a
:class:`Snapshot` (answer text so far, reasoning so far, agent steps, finished or not);
the chat core diffs consecutive snapshots into stream events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import UpstreamBadAnswer
from gateway.upstream import constants as C

#: Separator between several assistant texts (or reasoning texts) of one turn.
PART_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Attachment:
    """A file already uploaded upstream, ready to attach to send_msg."""

    file_id: str
    file_name: str
    is_image: bool


@dataclass(frozen=True)
class Step:
    """An agent tool step (e.g. ``web_search``) and what it produced so far."""

    name: str
    content: str


@dataclass(frozen=True)
class Snapshot:
    """What one poll shows of the current turn."""

    finished: bool
    text: str
    reasoning: str
    steps: tuple[Step, ...]
    title: str = ""
    #: The id of the (last) answer message, e.g. to have it spoken.
    answer_msg_id: int | None = None


def send_body(
    prompt: str,
    model: str,
    *,
    chat_id: int | None = None,
    attachments: tuple[Attachment, ...] = (),
    web_search: bool = False,
    chat_type: int = C.CHAT_TYPE_LIGHTNING,
) -> dict[str, Any]:
    """The send_msg body, keys in the web app's order."""
    body: dict[str, Any] = {"msg_type": C.MSG_TYPE_USER, "text": prompt, "chat_type": chat_type}
    if chat_id is not None:
        body["chat_id"] = chat_id
    body["attachments"] = [_attachment(item) for item in attachments]
    body["selected_mcp_tools"] = []
    body["backend_config"] = dict(C.WEB_SEARCH_BACKEND_CONFIG) if web_search else {}
    body["sub_agent_ids"] = []
    body["model_option"] = {"display_name": model, "model_type": C.MODEL_TYPE}
    return body


def _attachment(item: Attachment) -> dict[str, Any]:
    file_type = C.FILE_TYPE_IMAGE if item.is_image else C.FILE_TYPE_OTHER
    return {"file_type": file_type, "file_id": item.file_id, "file_name": item.file_name}


def sent_ids(answer: dict[str, Any]) -> tuple[int, int | None]:
    """``(chat_id, msg_id)`` from a send_msg answer."""
    chat_id = answer.get("chat_id")
    if not isinstance(chat_id, int) or isinstance(chat_id, bool):
        raise UpstreamBadAnswer("MiniMax accepted the message but returned no chat id.")
    msg_id = answer.get("msg_id")
    return chat_id, msg_id if isinstance(msg_id, int) else None


def read_snapshot(detail: dict[str, Any], user_msg_id: int | None = None) -> Snapshot:
    """Reduce a get_chat_detail answer to the current turn's state."""
    chat = detail.get("chat")
    messages = detail.get("messages")
    if not isinstance(chat, dict) or not isinstance(messages, list):
        raise UpstreamBadAnswer("MiniMax chat detail lacks 'chat' or 'messages'.")
    turn = _current_turn([m for m in messages if isinstance(m, dict)], user_msg_id)
    texts, thoughts, steps, answer_id = [], [], [], None
    for message in turn:
        content = _text(message.get("msg_content"))
        extra = message.get("extra_info") if isinstance(message.get("extra_info"), dict) else {}
        thoughts.append(_text(extra.get("thinking_content")))
        tool_call = message.get("tool_call")
        if isinstance(tool_call, dict) and tool_call:
            steps.append(Step(_text(tool_call.get("tool_call_name")) or "tool", content))
        else:
            texts.append(content)
            answer_id = message.get("msg_id") if isinstance(message.get("msg_id"), int) else answer_id
    return Snapshot(
        finished=chat.get("chat_status") == C.CHAT_STATUS_FINISHED,
        text=_join(texts),
        reasoning=_join(thoughts),
        steps=tuple(steps),
        title=_text(chat.get("chat_title")),
        answer_msg_id=answer_id,
    )


def _current_turn(messages: list[dict[str, Any]], user_msg_id: int | None) -> list[dict[str, Any]]:
    """Assistant messages after the user message that started this turn.

    The turn starts at the user message with ``user_msg_id`` or, when send_msg named
    none (or another id), at the last user message.
    """
    users = [i for i, m in enumerate(messages) if m.get("msg_type") == C.MSG_TYPE_USER]
    if not users:
        return []
    matching = [i for i in users if user_msg_id is not None and messages[i].get("msg_id") == user_msg_id]
    start = (matching or users)[-1]
    return [m for m in messages[start + 1 :] if m.get("msg_type") == C.MSG_TYPE_ASSISTANT]


def _join(parts: list[str]) -> str:
    return PART_SEPARATOR.join(part for part in parts if part)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
