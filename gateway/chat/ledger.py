"""The record of every upstream conversation the gateway created, and the orphan sweep.

A conversation is recorded (in the shared state) as soon as its id is known, before any
of its answer is streamed, with the lease holder of the generation that made it. When
the generation ends, the record is marked *closed* (handed to the janitor), and the
janitor removes it once the conversation is deleted; or it is *kept* for the next turn
(native multi-turn), and becomes an orphan once it stayed idle past its time. A record whose generation's lease
is gone while it is still open, or that stayed closed longer than :data:`CLOSED_GRACE`
(the janitor of a worker that died), names an orphan: :func:`sweep` deletes it. Only
recorded conversations are ever deleted: nothing is swept by listing the user's chats.

A kept record changes hands atomically (a compare-and-swap of the record): a request
that continues the chat *claims* it first, and the sweep *takes* it (marks it closed)
before deleting the chat; whichever comes second sees the record changed and backs off,
so the sweep never deletes a chat a request was just told it may continue, and a kept
chat goes as soon as its time is up. :func:`release_kept` deletes every kept chat at
once (a gateway stopping with no other gateway sharing its state).

Each record keeps the account's login (it is needed to delete the conversation from any
worker or host); the shared state is the operator's, like the renewed tokens it holds.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace

from gateway.errors import (
    AccountInUse,
    AuthenticationFailed,
    GatewayError,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.state import AccountView, SharedState
from gateway.upstream.conversation import Conversation, Driver
from gateway.upstream.credentials import Credential, parse_one

log = logging.getLogger(__name__)

KIND = "chats"
#: Seconds a closed record may wait for its janitor before the sweep takes it over.
CLOSED_GRACE = 120.0
#: A record this old is dropped even when its conversation could not be deleted.
MAX_AGE = 86400.0
#: Failures after which the sweep tries again next time (the conversation may still be
#: answering, or the upstream may be down); any other failure drops the record.
TRANSIENT: tuple[type[GatewayError], ...] = (AccountInUse, UpstreamServerError, UpstreamTimeout,
                                             UpstreamUnavailable)


@dataclass(frozen=True, repr=False)
class ChatRecord:
    surface: str
    id: str
    account: str
    holder: str
    login: str
    at: float
    closed: bool = False
    #: A conversation kept for the next turn: not an orphan until this time.
    kept_until: float = 0.0

    @property
    def name(self) -> str:
        return _name(self.surface, self.id)

    def conversation(self) -> Conversation:
        return Conversation(self.surface, self.id)

    def __repr__(self) -> str:
        return f"ChatRecord({self.surface} {self.id}, account={self.account}, closed={self.closed})"


class ChatLedger:
    """Records of the conversations the gateway created, in the shared state."""

    def __init__(self, state: SharedState, clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._clock = clock
        self._open: dict[str, ChatRecord] = {}  # this process's open records, by name
        self._lock = threading.Lock()

    def opened(self, cred: Credential, conversation: Conversation, holder: str) -> None:
        if conversation.id is not None:
            record = ChatRecord(conversation.surface, conversation.id, cred.key, holder, cred.login(), self._clock())
            with self._lock:
                self._open[record.name] = record
            self._safely(lambda: self._state.add_record(KIND, record.name, _encode(record)))

    def closed(self, conversation: Conversation) -> None:
        """The generation is over; the janitor deletes the conversation now."""
        if conversation.id is None:
            return
        with self._lock:
            record = self._open.pop(_name(conversation.surface, conversation.id), None)
        if record is not None:
            done = replace(record, closed=True, at=self._clock())
            self._safely(lambda: self._state.add_record(KIND, done.name, _encode(done)))

    def kept(self, conversation: Conversation, until: float) -> None:
        """The generation is over and the conversation stays for the next turn until
        ``until`` (a later turn takes it back with :meth:`opened`); then the sweep
        deletes it."""
        if conversation.id is None:
            return
        with self._lock:
            record = self._open.pop(_name(conversation.surface, conversation.id), None)
        if record is not None:
            kept = replace(record, holder="", kept_until=until, at=self._clock())
            self._safely(lambda: self._state.add_record(KIND, kept.name, _encode(kept)))

    def claim(self, conversation: Conversation, seconds: float) -> ChatRecord | None:
        """Claim a kept conversation for a request that continues it: it stays kept (out of
        the sweep's reach) for ``seconds`` while the request waits for its account, until
        :meth:`opened` or :meth:`unclaim`. None when it is no longer kept (the sweep took it)."""
        record = self._kept(conversation)
        if record is None:
            return None
        claimed = replace(record, kept_until=self._clock() + seconds)
        return claimed if self._swapped(record, claimed) else None

    def unclaim(self, record: ChatRecord, until: float) -> None:
        """Keep a claimed conversation again, until ``until`` (its turn was never sent)."""
        kept = replace(record, kept_until=until, at=self._clock())
        self._safely(lambda: self._state.add_record(KIND, kept.name, _encode(kept)))

    def take(self, record: ChatRecord) -> bool:
        """Take a kept conversation for deletion (marked closed, so another sweep retries it
        should this one die); False when a request claimed it meanwhile."""
        return self._swapped(record, replace(record, closed=True, kept_until=0.0, holder="", at=self._clock()))

    def _kept(self, conversation: Conversation) -> ChatRecord | None:
        if conversation.id is None:
            return None
        raw = self._state.records(KIND).get(_name(conversation.surface, conversation.id))
        record = _parse(raw) if raw is not None else None
        return record if record is not None and record.kept_until else None

    def _swapped(self, old: ChatRecord, new: ChatRecord) -> bool:
        try:
            return self._state.swap_record(KIND, old.name, _encode(old), _encode(new))
        except Exception:
            log.warning("could not update the chat records", exc_info=True)
            return False

    def removed(self, conversation: Conversation) -> None:
        if conversation.id is not None:
            name = _name(conversation.surface, conversation.id)
            self._safely(lambda: self._state.remove_record(KIND, name))

    def records(self) -> list[ChatRecord]:
        return [record for raw in self._state.records(KIND).values() if (record := _parse(raw)) is not None]

    def orphans(self) -> list[ChatRecord]:
        """Records whose generation is gone and whose janitor did not finish."""
        records = self.records()
        views = self._state.accounts(sorted({record.account for record in records}))
        now = self._clock()
        return [record for record in records if _orphaned(record, views, now)]

    @staticmethod
    def _safely(action: Callable[[], object]) -> None:
        try:
            action()
        except Exception:  # the sweep is a safety net: never fail a request over it
            log.warning("could not update the chat records", exc_info=True)


def sweep(ledger: ChatLedger, drivers: Mapping[str, Driver], clock: Callable[[], float] = time.time) -> int:
    """Delete every orphan the ledger names; returns how many were deleted."""
    deleted = 0
    for record in ledger.orphans():
        if _sweep_one(ledger, drivers, record, clock()):
            deleted += 1
    return deleted


def release_kept(ledger: ChatLedger, drivers: Mapping[str, Driver], deadline: float,
                 clock: Callable[[], float] = time.time) -> int:
    """Delete every kept conversation now, until ``deadline`` (``clock`` time); returns how
    many were deleted. What is left stays recorded for a later sweep."""
    deleted = 0
    for record in ledger.records():
        if clock() >= deadline:
            break
        if record.kept_until and _sweep_one(ledger, drivers, record, clock()):
            deleted += 1
    return deleted


def _sweep_one(ledger: ChatLedger, drivers: Mapping[str, Driver], record: ChatRecord, now: float) -> bool:
    if record.kept_until and not ledger.take(record):
        return False  # a request is continuing it
    driver = drivers.get(record.surface)
    try:
        if driver is None:
            raise GatewayError(f"unknown surface {record.surface}")
        driver.discard(parse_one(record.login), record.conversation())
    except TRANSIENT as error:
        if now - record.at < MAX_AGE:
            log.info("sweep: %r not deleted yet (%s); trying again later", record, type(error).__name__)
            return False
        log.warning("sweep: giving up on %r after a day (%s)", record, type(error).__name__)
        ledger.removed(record.conversation())
        return False
    except (AuthenticationFailed, GatewayError) as error:
        log.warning("sweep: %r cannot be deleted (%s); dropping its record", record, type(error).__name__)
        ledger.removed(record.conversation())
        return False
    ledger.removed(record.conversation())
    log.info("sweep: deleted orphaned %r", record)
    return True


def _orphaned(record: ChatRecord, views: Mapping[str, AccountView], now: float) -> bool:
    if record.kept_until:
        return now > record.kept_until
    if record.closed:
        return now - record.at > CLOSED_GRACE
    return views[record.account].holder != record.holder


def _name(surface: str, conversation_id: str) -> str:
    return f"{surface}:{conversation_id}"


def _encode(record: ChatRecord) -> str:
    # Every write encodes the same way: a compare-and-swap compares these exact texts.
    return json.dumps(asdict(record))


def _parse(raw: str) -> ChatRecord | None:
    try:
        return ChatRecord(**json.loads(raw))
    except (TypeError, ValueError):
        return None
