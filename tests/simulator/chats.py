"""Chats part of the simulator's world: matrix chats, sessions, and the ids they carry.

Role: both surfaces keep conversations the same way. A matrix chat is a `Chat`; a
session is a `Session` (a chat that also has an agent, an archive flag and a model).
Each turn of either is a `Generation` (`tests.simulator.generations`) and the chat keeps
the finished turns as frozen history. `ChatBook` holds the matrix chats and answers
get_chat_detail, stop_chat, delete_chat and list_chat; `SessionBook` holds the sessions
and answers their status, archive and delete. `ChatIds` mints chat, session and message
ids, which never restart, even across resets: a stale id from an earlier test must be
"not found", never silently match a new chat. Like every part, none holds a lock:
`SimState` uses them under its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tests.simulator.protocol import (
    CHAT_NOT_FOUND_CODE,
    CHAT_NOT_FOUND_MSG,
    CHAT_RUNNING_CODE,
    CHAT_RUNNING_MSG,
    CHAT_STATUS_FINISHED,
    CHAT_STATUS_GENERATING,
    ListChatBody,
)
from tests.simulator.session_shapes import (
    DEFAULT_MODEL_ID,
    SESSION_NOT_FOUND_CODE,
    SESSION_NOT_FOUND_MSG,
    session_view,
)
from tests.simulator.tally import Tally
from tests.simulator.timeline import ms

if TYPE_CHECKING:
    from tests.simulator.generations import Generation

TITLE_CHARS: int = 30
SESSION_ID_OFFSET: int = 10**14


def title_of(text: str, fallback: str) -> str:
    """A chat's title: the first non-blank line of its first prompt, cut short."""
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first_line[:TITLE_CHARS] or fallback


class ChatIds:
    """Chat, session and message ids of one simulator, for its whole life."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._next_chat_id = rng.randint(3 * 10**14, 4 * 10**14)
        self._next_msg_id = rng.randint(10**15, 2 * 10**15)

    def chat_id(self) -> int:
        self._next_chat_id += self._rng.randint(1, 97)
        return self._next_chat_id

    def session_id(self) -> int:
        # 15 digits like the captured 405396425946024, drawn from the chat id sequence.
        return self.chat_id() + SESSION_ID_OFFSET

    def msg_id(self) -> int:
        self._next_msg_id += 1
        return self._next_msg_id


@dataclass(eq=False)
class Chat:
    chat_id: int
    owner: str
    title: str
    created: float
    history: list[dict[str, Any]] = field(default_factory=list)  # frozen earlier turns
    current: Generation | None = None
    turns: int = 0
    deleted: bool = False

    def alive(self) -> bool:
        return not self.deleted


@dataclass(eq=False)
class Session(Chat):
    """A session of the session surface: a chat that also has an agent and can be archived."""

    agent_name: str = ""
    model_id: str = DEFAULT_MODEL_ID
    archived: bool = False
    updated: float = 0.0

    def alive(self) -> bool:
        return not self.deleted and not self.archived

    def view(self, now: float) -> dict[str, Any]:
        running = self.current is not None and self.current.generating(now)
        return session_view(self.chat_id, self.agent_name, self.title, running, self.archived,
                            ms(self.created), ms(self.updated))


C = TypeVar("C", bound=Chat)


class _Book(Generic[C]):
    """Chats (or sessions) by id, and the same by owner, in order of creation."""

    def __init__(self) -> None:
        self._all: dict[int, C] = {}
        self._by_owner: dict[str, dict[int, C]] = {}

    def _add(self, chat: C) -> None:
        self._all[chat.chat_id] = chat
        self._by_owner.setdefault(chat.owner, {})[chat.chat_id] = chat

    def _remove(self, chat: C) -> None:
        chat.deleted = True
        del self._by_owner[chat.owner][chat.chat_id]
        del self._all[chat.chat_id]

    def owned_by(self, owner: str) -> list[C]:
        return list(self._by_owner.get(owner, {}).values())

    def __len__(self) -> int:
        return len(self._all)


class ChatBook(_Book[Chat]):
    """The matrix surface's chats."""

    def __init__(self, ids: ChatIds, tally: Tally, poll_times_cap: int) -> None:
        super().__init__()
        self._ids, self._tally, self._poll_times_cap = ids, tally, poll_times_cap

    def find(self, owner: str, chat_id: int) -> Chat | None:
        return self._by_owner.get(owner, {}).get(chat_id)

    def owned(self, owner: str, chat_id: int) -> Chat:
        chat = self.find(owner, chat_id)
        if chat is None:
            raise self._tally.refuse(CHAT_NOT_FOUND_CODE, CHAT_NOT_FOUND_MSG, "chat_not_found")
        return chat

    def new(self, owner: str, text: str, now: float) -> Chat:
        chat = Chat(self._ids.chat_id(), owner, title_of(text, "New chat"), now)
        self._add(chat)
        return chat

    def detail(self, owner: str, chat_id: int, now: float) -> dict[str, Any]:
        """get_chat_detail: one poll of the chat's current turn, its history before it."""
        chat = self.owned(owner, chat_id)
        generation = _current(chat)
        generation.record_poll(now, self._poll_times_cap)
        self._tally.count("polls")
        status = CHAT_STATUS_GENERATING if generation.generating(now) else CHAT_STATUS_FINISHED
        return {"chat": {"chat_id": chat.chat_id, "chat_status": status,
                         "chat_title": chat.title},
                "messages": chat.history + generation.messages(now)}

    def stop(self, owner: str, chat_id: int, now: float) -> None:
        # Stopping a finished chat is a harmless no-op, as a late stop from a client is.
        if _current(self.owned(owner, chat_id)).stop(now):
            self._tally.count("stops")

    def delete(self, owner: str, chat_id: int, now: float) -> None:
        chat = self.owned(owner, chat_id)
        if _current(chat).generating(now):
            raise self._tally.refuse(CHAT_RUNNING_CODE, CHAT_RUNNING_MSG, "delete_running")
        self._remove(chat)
        self._tally.count("deletes")

    def page(self, owner: str, body: ListChatBody) -> dict[str, Any]:
        """list_chat: newest first, below next_page_index_id when given."""
        chats = self._by_owner.get(owner, {})
        ids = sorted(chats, reverse=True)
        if body.next_page_index_id is not None:
            ids = [chat_id for chat_id in ids if chat_id < body.next_page_index_id]
        page = ids[:body.page_size]
        return {"chats": [{"chat_id": chat_id, "chat_title": chats[chat_id].title,
                           "create_timestamp": ms(chats[chat_id].created)}
                          for chat_id in page],
                "has_more": len(ids) > len(page)}


def _current(chat: Chat) -> Generation:
    # A matrix chat is created by its first send, which starts its first turn at once.
    assert chat.current is not None
    return chat.current


class SessionBook(_Book[Session]):
    """The session surface's sessions."""

    def __init__(self, ids: ChatIds, tally: Tally) -> None:
        super().__init__()
        self._ids, self._tally = ids, tally

    def create(self, owner: str, agent_name: str, model_id: str, now: float) -> Session:
        session = Session(self._ids.session_id(), owner, "New session", now,
                          agent_name=agent_name, model_id=model_id, updated=now)
        self._add(session)
        self._tally.count("sessions_created")
        return session

    def owned(self, owner: str, session_id: str) -> Session:
        owned = self._by_owner.get(owner, {})
        session = owned.get(int(session_id)) if session_id.isdigit() else None
        if session is None:
            raise self._tally.refuse(SESSION_NOT_FOUND_CODE, SESSION_NOT_FOUND_MSG,
                                     "session_not_found")
        return session

    def status(self, owner: str, session_id: str, now: float) -> dict[str, Any]:
        return self.owned(owner, session_id).view(now)

    def archive(self, owner: str, session_id: str, archived: bool, now: float) -> None:
        session = self.owned(owner, session_id)
        session.archived, session.updated = archived, now
        self._tally.count("archives")

    def delete(self, owner: str, session_id: str, now: float) -> None:
        """[assumed] deleting a session with a running turn ends the turn (no refusal): a
        client that closes the stream and deletes at once must not race the disconnect."""
        session = self.owned(owner, session_id)
        if session.current is not None and session.current.stop(now):
            self._tally.count("stops")
        self._remove(session)
        self._tally.count("deletes")

    def alive(self) -> int:
        return sum(1 for session in self._all.values() if session.alive())

    def listing(self, now: float) -> list[dict[str, Any]]:
        """Every session not deleted, with its owner and turn count (for tests)."""
        return [{**session.view(now), "account": session.owner, "turns": session.turns,
                 "model_id": session.model_id} for session in self._all.values()]
