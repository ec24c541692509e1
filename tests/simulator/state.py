"""In-memory world of the upstream simulator: the facade over its parts, and its one lock.

Role: everything the simulator remembers between requests, behind one object the web
layer calls. Generations have no background worker: each one is a precomputed timeline,
and every poll derives what is visible "now" from the elapsed time, so thousands of
concurrent chats cost nothing while idle.

The one-lock rule: all public methods of `SimState` take its one lock; none of them
sleeps or does I/O while holding it (hangs happen in the web layer, audio is encoded and
decoded there too), so it is safe under threads and gevent alike. The parts hold no lock
of their own and are only called under this one; each is cleared by `reset`:
- `LiveConfig` (settings.py): the /_sim/config values now in force;
- `Tally` (tally.py): requests, rejections, warnings, faults applied, event counters;
- `AccountBook` (accounts.py): accounts, tokens, devices, spending flags (kept by reset
  unless dropped; their flags are restored);
- `ScriptQueue` (scripts.py): which scripted answer the next turn plays;
- `FaultBoard` (faults.py): transport and semantic faults armed at endpoints;
- `ChatBook` and `SessionBook` (chats.py): matrix chats and sessions, with `ChatIds`;
- `Generations` (generations.py): every turn of both surfaces, and the /_sim/log;
- `FileStore` (files.py): STS grants, OSS objects, file ids;
- `UploadDesk` (sessions.py): the session surface's uploads;
- `SpeechDesk` (speech.py): TTS jobs, media, the ASR queue.

What crosses parts lives here, and only that: a send or a session turn (account, chat or
session, attachments, admission, the scripted answer), msg_tts's answer lookup, stats.
Both surfaces share one generation machinery: a matrix chat and a session are both a
`Chat`, each turn is a `Generation`, and the one-generation-per-account rule covers both.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Callable

from tests.simulator.accounts import SURFACE_SESSION, Account, AccountBook
from tests.simulator.chats import Chat, ChatBook, ChatIds, Session, SessionBook, title_of
from tests.simulator.faults import Fault, FaultBoard
from tests.simulator.files import FileStore, StoredObject, StsGrant
from tests.simulator.generations import Generation, Generations, TurnRequest
from tests.simulator.media import AudioInfo
from tests.simulator.oss import OssError, OssPut, object_key
from tests.simulator.protocol import (
    VOICE_MISMATCH_CODE,
    VOICE_MISMATCH_MSG,
    Attachment,
    ListChatBody,
    PolicyCallbackBody,
    SendMsgBody,
)
from tests.simulator.scripts import AnswerSpec, ScriptQueue
from tests.simulator.session_protocol import MessageBody, PrepareBody, SessionAttachment, StsAttachment
from tests.simulator.session_shapes import NOT_CONFIGURED_CODE, NOT_CONFIGURED_MSG
from tests.simulator.sessions import PreparedUpload, UploadDesk, UploadForm
from tests.simulator.settings import LiveConfig, SimSettings
from tests.simulator.speech import SpeechDesk, TtsJob, TtsPlan
from tests.simulator.tally import Tally
from tests.simulator.web_drift import WebDrift


class SimState:
    """The simulator's whole memory, guarded by one lock; each concern is one part."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.clock = settings.clock
        self.stream_url: str | None = None  # set by the server once the stream port listens
        self._lock = threading.Lock()
        self._rng = random.Random(settings.seed)
        self._tally = Tally()
        self._accounts = AccountBook(settings, self._rng, self._tally)
        self._ids = ChatIds(self._rng)
        # Worlds beside this one (the code surface) that /_sim/reset must clear too.
        self._reset_hooks: list[Callable[[bool], None]] = []
        self._clear_world()

    # -- lifecycle ----------------------------------------------------------------------

    def _clear_world(self) -> None:
        settings, tally = self.settings, self._tally
        tally.clear()
        self._config = LiveConfig(settings)
        self._scripts = ScriptQueue()
        self._faults = FaultBoard(tally)
        self._chats = ChatBook(self._ids, tally, settings.poll_times_cap)
        self._sessions = SessionBook(self._ids, tally)
        self._generations = Generations(self._ids, tally, settings.log_cap,
                                        settings.poll_times_cap)
        self._uploads = UploadDesk()
        self._files = FileStore(self._rng, settings.max_upload_bytes)
        self._speech = SpeechDesk()

    def reset(self, drop_accounts: bool = False) -> None:
        """Forget chats, scripts, faults, counters and config; keep or drop accounts."""
        with self._lock:
            self._clear_world()
            if drop_accounts:
                self._accounts.drop_all()
            self._accounts.restore_all()
        for hook in self._reset_hooks:  # outside the lock: each hook takes its own
            hook(drop_accounts)

    def on_reset(self, hook: Callable[[bool], None]) -> None:
        """Run `hook(drop_accounts)` after every reset."""
        self._reset_hooks.append(hook)

    # -- live config (read by the web layer without the lock: each is one attribute) -------

    @property
    def signature_mode(self) -> str:
        return self._config.signature_mode

    @property
    def max_skew_seconds(self) -> float:
        return self._config.max_skew_seconds

    @property
    def yy_variant(self) -> str:
        return self._config.yy_variant

    @property
    def session_prefix(self) -> str:
        return self._config.session_prefix

    @property
    def heartbeat_seconds(self) -> float:
        return self._config.heartbeat_seconds

    @property
    def linger_seconds(self) -> float:
        return self._config.linger_seconds

    @property
    def drift(self) -> WebDrift:
        """The web app's build-dependent constants and the drifting answer shapes."""
        return self._config.drift

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate every change first, then apply them all (a bad one changes nothing)."""
        with self._lock:
            return self._config.change(changes)

    # -- accounts -------------------------------------------------------------------------------

    def add_accounts(self, count: int, credits: int | None = None, expired: bool = False,
                     busy: bool = False, quota_exhausted: bool = False,
                     jwt_user_id_differs: bool = True, exp_seconds: float | None = None,
                     migrated: bool = True,
                     surfaces: dict[str, bool] | None = None) -> list[dict[str, Any]]:
        """jwt_user_id_differs stays accepted for old callers; the ids always differ now."""
        with self._lock:
            flags = {"credits": self.settings.default_credits if credits is None else credits,
                     "busy": busy, "expired": expired, "quota_exhausted": quota_exhausted,
                     "migrated": migrated, "surfaces": dict(surfaces or {})}
            exp = self.settings.default_exp_seconds if exp_seconds is None else exp_seconds
            return self._accounts.add(count, flags, exp)

    def renew(self, real_user_id: str, now: float) -> str:
        """A new JWT with a later exp; the old ones keep working until their own exp."""
        with self._lock:
            return self._accounts.renew(real_user_id, now)

    def patch_account(self, real_user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._accounts.patch(real_user_id, changes)

    def list_accounts(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._accounts.listing()

    def has_account(self, real_user_id: str) -> bool:
        with self._lock:
            return self._accounts.has(real_user_id)

    def authenticate(self, token: str, now: float) -> tuple[Account | None, str]:
        """The token's account, or None and the rejection reason."""
        with self._lock:
            return self._accounts.authenticate(token, now)

    def register_device(self, real_user_id: str, device_uuid: str) -> str:
        with self._lock:
            return self._accounts.register_device(real_user_id, device_uuid)

    def device_id_plausible(self, real_user_id: str, device_id: str) -> bool:
        """False once the account registered devices and this id is none of them (nor the JWT's)."""
        with self._lock:
            return self._accounts.device_id_plausible(real_user_id, device_id)

    def account_view(self, real_user_id: str) -> dict[str, Any]:
        with self._lock:
            return self._accounts.get(real_user_id).public()

    # -- scripts and faults -------------------------------------------------------------------

    def add_script(self, answers: list[AnswerSpec], account: str | None) -> int:
        with self._lock:
            if account is not None:
                self._accounts.get(account)  # KeyError for an unknown account
            return self._scripts.add(answers, account)

    def next_answer(self, real_user_id: str) -> AnswerSpec:
        """The next scripted answer for an account (the code surface's turns)."""
        with self._lock:
            return self._scripts.next_for(real_user_id)

    def set_default(self, answer: AnswerSpec) -> None:
        with self._lock:
            self._scripts.set_default(answer)

    def add_fault(self, endpoint: str, kind: str, count: int, seconds: float | None) -> int:
        with self._lock:
            return self._faults.add(endpoint, kind, count, seconds)

    def pending_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._faults.pending()

    def take_fault(self, endpoint: str) -> Fault | None:
        """Consume one use of the oldest fault aimed at this endpoint (or at all)."""
        with self._lock:
            return self._faults.take(endpoint)

    # -- counters, stats, log -------------------------------------------------------------------

    def count_request(self, path: str) -> None:
        with self._lock:
            self._tally.request(path)

    def reject(self, reason: str) -> None:
        with self._lock:
            self._tally.reject(reason)

    def warn(self, reason: str) -> None:
        with self._lock:
            self._tally.warn(reason)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            now = self.clock()
            sessions_alive = self._sessions.alive()
            return {**self._tally.reasons(),
                    "chats_alive": len(self._chats) + sessions_alive,
                    "matrix_chats_alive": len(self._chats), "sessions_alive": sessions_alive,
                    "chats_generating": self._generations.generating(now),
                    **self._uploads.counters,
                    "accounts": len(self._accounts), "generations": len(self._generations),
                    **self._tally.counters(), **self._files.counters(), **self._speech.counters,
                    "asr_pending": self._speech.pending_transcripts(),
                    "config": self._config.public()}

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._generations.log(self.clock())

    # -- turns of either surface ---------------------------------------------------------------

    def _admit(self, account: Account, now: float) -> None:
        """Raise the Refusal of an account that may not start a turn now."""
        self._generations.ensure_idle(account.real_user_id, now)
        self._accounts.ensure_can_spend(account)

    def _begin_turn(self, account: Account, chat: Chat, turn: TurnRequest,
                    details: tuple[dict[str, Any], ...], now: float) -> Generation:
        """Charge the account and start the chat's next turn, playing the next script."""
        self._accounts.charge(account)
        spec = self._scripts.next_for(account.real_user_id)
        return self._generations.begin(account.real_user_id, chat, turn, spec, details, now)

    # -- matrix chats ---------------------------------------------------------------------------

    def send(self, real_user_id: str, body: SendMsgBody, now: float) -> tuple[int, int]:
        """Start a generation; returns (chat_id, user msg_id) or raises Refusal."""
        with self._lock:
            account = self._accounts.get(real_user_id)
            chat = (self._chats.owned(real_user_id, body.chat_id)
                    if body.chat_id is not None else None)
            details = self._tally.counted(self._files.attachment_details, real_user_id,
                                          body.attachments)
            if self._files.image_sent_as_file(body.attachments):
                self._tally.warn("image_sent_as_file")
            self._admit(account, now)
            if chat is None:
                chat = self._chats.new(real_user_id, body.text, now)
            generation = self._begin_turn(account, chat, TurnRequest.of_send(body), details, now)
            return chat.chat_id, generation.user_msg_id

    def take_poll_fault(self, real_user_id: str, chat_id: int, now: float) -> tuple[str, float] | None:
        """Fire a generation's mid-answer fault once, on the first poll that sees text."""
        with self._lock:
            chat = self._chats.find(real_user_id, chat_id)
            return self._generations.take_poll_fault(chat.current if chat else None, now)

    def chat_detail(self, real_user_id: str, chat_id: int, now: float) -> dict[str, Any]:
        with self._lock:
            return self._chats.detail(real_user_id, chat_id, now)

    def stop(self, real_user_id: str, chat_id: int, now: float) -> None:
        with self._lock:
            self._chats.stop(real_user_id, chat_id, now)

    def delete(self, real_user_id: str, chat_id: int, now: float) -> None:
        with self._lock:
            self._chats.delete(real_user_id, chat_id, now)

    def list_chats(self, real_user_id: str, body: ListChatBody) -> dict[str, Any]:
        with self._lock:
            return self._chats.page(real_user_id, body)

    # -- files -------------------------------------------------------------------------------------

    def issue_policy(self, real_user_id: str, endpoint: str, now: float) -> dict[str, str]:
        with self._lock:
            self._tally.count("upload_policies")
            return self._files.issue(real_user_id, endpoint, now).policy()

    def authorize_put(self, put: OssPut, now: float) -> StsGrant:
        """The grant of a correctly signed PUT; raises (and counts) OssError otherwise."""
        with self._lock:
            try:
                return self._files.authorize_put(put, now)
            except OssError as exc:
                self._tally.reject(exc.reason)
                raise

    def store_object(self, grant: StsGrant, put: OssPut, body: bytes, now: float) -> StoredObject:
        with self._lock:
            return self._files.store(grant, put, body, now)

    def register_file(self, real_user_id: str, body: PolicyCallbackBody) -> str:
        with self._lock:
            return self._tally.counted(self._files.register, real_user_id, body)

    @staticmethod
    def oss_path(body: PolicyCallbackBody) -> str:
        """[simulator's choice] the ``ossPath`` policy_callback answers: the object's key."""
        return object_key(body.directory, body.file_name)

    def file_listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._files.listing()

    # -- text to speech ----------------------------------------------------------------------------

    def set_robot_voice(self, real_user_id: str, voice: str) -> None:
        with self._lock:
            self._accounts.set_robot_voice(real_user_id, voice)

    def tts_lookup(self, real_user_id: str, msg_id: int, voice: str,
                   now: float) -> TtsJob | TtsPlan:
        """The job for this call, or the plan the caller must render first (first call)."""
        with self._lock:
            self._speech.counters["tts_calls"] += 1
            account = self._accounts.get(real_user_id)
            chats = [*self._chats.owned_by(real_user_id), *self._sessions.owned_by(real_user_id)]
            chat_id, text = self._tally.counted(self._generations.finished_answer, chats,
                                                msg_id, now)
            if account.robot_voice != voice:
                raise self._tally.refuse(VOICE_MISMATCH_CODE, VOICE_MISMATCH_MSG,
                                         "tts_voice_mismatch")
            job = self._speech.job((real_user_id, msg_id, voice))
            return job if job is not None else TtsPlan(real_user_id, chat_id, msg_id, voice,
                                                       text, now)

    def tts_register(self, plan: TtsPlan, rendered: list[tuple[str, float, bytes]]) -> TtsJob:
        with self._lock:
            return self._speech.add_job(plan, rendered)

    def tts_answer(self, job: TtsJob, now: float) -> tuple[int, list[str]]:
        with self._lock:
            return job.answer(now)

    def media(self, media_id: str) -> bytes | None:
        with self._lock:
            return self._speech.media(media_id)

    def tts_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._speech.tts_log()

    # -- speech recognition ------------------------------------------------------------------------

    def asr_enqueue(self, texts: list[str]) -> int:
        with self._lock:
            return self._speech.enqueue(texts)

    def asr_transcribe(self, real_user_id: str, info: AudioInfo, size: int,
                       now: float) -> tuple[int, str]:
        with self._lock:
            return self._speech.transcribe(real_user_id, info, size, now)

    def asr_reject(self, real_user_id: str, size: int, now: float, error: str) -> None:
        with self._lock:
            self._tally.reject("asr_not_mp3")
            self._speech.reject_audio(real_user_id, size, now, error)

    def asr_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._speech.asr_log()

    # -- session surface -----------------------------------------------------------------------

    def mark_configured(self, real_user_id: str) -> None:
        with self._lock:
            self._accounts.mark_configured(real_user_id)

    def agents(self, real_user_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return self._accounts.agents(real_user_id)

    def create_session(self, real_user_id: str, agent_id: str, model_id: str,
                       now: float) -> Session | None:
        """A new session of one of the account's agents; None for a foreign/unknown agent."""
        with self._lock:
            if not self._accounts.owns_agent(real_user_id, agent_id):
                self._tally.warn("session_create_unknown_agent")
                return None
            return self._sessions.create(real_user_id, agent_id, model_id, now)

    def session_status(self, real_user_id: str, session_id: str, now: float) -> dict[str, Any]:
        with self._lock:
            return self._sessions.status(real_user_id, session_id, now)

    def archive_session(self, real_user_id: str, session_id: str, archived: bool,
                        now: float) -> None:
        with self._lock:
            self._sessions.archive(real_user_id, session_id, archived, now)

    def delete_session(self, real_user_id: str, session_id: str, now: float) -> None:
        """[assumed] deleting a session with a running turn ends the turn (no refusal)."""
        with self._lock:
            self._sessions.delete(real_user_id, session_id, now)

    def start_turn(self, real_user_id: str, session_id: str, body: MessageBody,
                   now: float) -> Generation:
        """Start a session turn or raise Refusal (its status may be an HTTP error)."""
        with self._lock:
            account = self._accounts.get(real_user_id)
            if not account.configured:
                raise self._tally.refuse(NOT_CONFIGURED_CODE, NOT_CONFIGURED_MSG,
                                         "not_configured", status=500)
            session = self._sessions.owned(real_user_id, session_id)
            details = self._tally.counted(self._attachment_details, real_user_id, body.attachments)
            self._admit(account, now)
            attachments = tuple(Attachment(d["file_type"], d["file_id"], d["file_name"])
                                for d in details)
            turn = TurnRequest(body.content, attachments, False, body.model_id or session.model_id,
                               None, SURFACE_SESSION, body.turn_id)
            if session.turns == 0:
                session.title = title_of(body.content, "New session")
            session.updated = now
            self._tally.count("stream_messages")
            return self._begin_turn(account, session, turn, details, now)

    def _attachment_details(self, real_user_id: str,
                            items: tuple[SessionAttachment | StsAttachment, ...]) -> tuple[dict[str, Any], ...]:
        """Uploaded objects (uploads/prepare) or files by ossPath (the legacy STS steps)."""
        return tuple(self._files.oss_path_detail(real_user_id, item.oss_path, item.file_name,
                                                 item.kind == "image")
                     if isinstance(item, StsAttachment)
                     else self._uploads.attachment_details(real_user_id, (item,))[0]
                     for item in items)

    def turn_generating(self, generation: Generation, now: float) -> bool:
        with self._lock:
            return generation.generating(now)

    def end_turn(self, generation: Generation, now: float, dropped: bool) -> None:
        """The stream of a running turn ended early: the client left, or a drop_mid fault."""
        with self._lock:
            self._generations.end(generation, now, dropped)

    def take_stream_fault(self, generation: Generation, now: float) -> tuple[str, float] | None:
        """Fire a turn's mid-answer fault once, when the stream has started the text."""
        with self._lock:
            return self._generations.take_stream_fault(generation, now)

    def sessions_listing(self) -> list[dict[str, Any]]:
        """Every session not deleted, with its owner and turn count (for tests)."""
        with self._lock:
            return self._sessions.listing(self.clock())

    # -- session uploads --------------------------------------------------------------------------

    def prepare_upload(self, real_user_id: str, body: PrepareBody, now: float) -> PreparedUpload:
        with self._lock:
            return self._uploads.prepare(real_user_id, body, now)

    def accept_upload(self, form: UploadForm, now: float) -> PreparedUpload:
        with self._lock:
            try:
                return self._uploads.accept(form, now)
            except Exception as exc:
                reason = getattr(exc, "reason", None)
                if reason:
                    self._tally.reject(reason)
                raise

    def upload_listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._uploads.listing()
