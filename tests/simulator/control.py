"""Client for the simulator's /_sim/ control API, for tests and benchmarks.

Role: the one place tests talk to the simulator's knobs (accounts, scripts, faults,
config, stats, log, uploaded files, TTS and ASR), so the control wire format can change
without touching tests.
"""

from __future__ import annotations

import time
from typing import Any

import requests

CONTROL_TIMEOUT_SECONDS: float = 10.0
IDLE_POLL_SECONDS: float = 0.05


class SimulatorControl:
    """Drives a running simulator at `base_url` (e.g. http://127.0.0.1:9000)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._stream_url: str | None = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._session.request(method, f"{self.base_url}/_sim/{path}", json=body,
                                         timeout=CONTROL_TIMEOUT_SECONDS)
        if response.status_code >= 400:
            raise RuntimeError(f"simulator control {method} {path}: "
                               f"{response.status_code} {response.text}")
        return response.json()

    def reset(self, drop_accounts: bool = False) -> None:
        """Forget chats, scripts, faults, counters, config; accounts stay unless dropped."""
        self._call("POST", "reset", {"drop_accounts": drop_accounts})

    def add_accounts(self, count: int = 1, **opts: Any) -> list[dict[str, Any]]:
        """opts: credits, expired, busy, quota_exhausted, exp_seconds, migrated (default
        True: credits only in op_credit_summary), surfaces ({"matrix": False} or
        {"session": False} switches a surface off). Each account: real_user_id, jwt,
        credential, device_id, jwt_user_id (always differs), agents, surfaces, ..."""
        return self._call("POST", "accounts", {"count": count, **opts})["accounts"]

    def accounts(self) -> list[dict[str, Any]]:
        return self._call("GET", "accounts")["accounts"]

    def patch_account(self, real_user_id: str, **opts: Any) -> dict[str, Any]:
        """opts: credits, busy, expired, quota_exhausted, migrated, surfaces."""
        return self._call("PATCH", f"accounts/{real_user_id}", opts)

    def script(self, answers: list[dict[str, Any]], account: str | None = None) -> int:
        """Queue answers (global queue, or one account's); returns the queue length."""
        body: dict[str, Any] = {"answers": answers}
        if account is not None:
            body["account"] = account
        return self._call("POST", "script", body)["queued"]

    def set_default(self, answer: dict[str, Any]) -> None:
        """Answer fields as for script; {"echo": "quoted"} repeats the prompt's last <<<…>>>."""
        self._call("POST", "default", {"answer": answer})

    def fault(self, endpoint: str, kind: str, count: int = 1, seconds: float | None = None) -> None:
        """endpoint: a protocol endpoint name (send_msg, msg_tts, phone_msg, user_renewal,
        ...), a session one (session_config, session_agents, session_create,
        session_message, session_status, session_archive, session_delete, uploads_prepare,
        session_events), "upload_post", "oss_put", "media" (the TTS MP3 download), a code
        surface one (code_device, code_token, code_messages, code_count_tokens, code_models,
        code_quota) or "*".
        kind: http_500/502/503, hang, drop, drop_after, expired, no_credits, quota, busy,
        busy_msg (another code whose status_msg still says 'chat is running'); on code
        endpoints only: http_429 (seconds -> Retry-After), http_529, and drop_mid,
        error_mid, hang_mid (played by the next answer's stream)."""
        body: dict[str, Any] = {"endpoint": endpoint, "kind": kind, "count": count}
        if seconds is not None:
            body["seconds"] = seconds
        self._call("POST", "faults", body)

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "faults")["faults"]

    def config(self, **opts: Any) -> dict[str, Any]:
        """opts: signature_mode ("bundle" | "jwt" | "either"), max_skew_seconds,
        yy_variant ("captured" | "legacy"), session_prefix ("/archon/api/v1" |
        "/minimax-cloud/api/v1"), heartbeat_seconds, linger_seconds; the web app's drift
        (tests/simulator/web_drift.py): bundle_salt, bundle_yy_suffix, bundle_version_code
        (what the gate verifies and the served bundle shows), tool_status_form ("word" |
        "number"), uploads_prepare ("on" | "missing" | "refused"). reset() restores them."""
        return self._call("POST", "config", opts)

    @property
    def stream_url(self) -> str:
        """The stream host's base URL (session message POST and /events)."""
        if self._stream_url is None:
            self._stream_url = self._call("GET", "info")["stream_url"]
        return self._stream_url

    def sessions(self) -> list[dict[str, Any]]:
        """Sessions not deleted: session_id, agent_name, title, status {type}, archived,
        created_at, updated_at, account, turns, model_id."""
        return self._call("GET", "sessions")["sessions"]

    def uploads(self) -> list[dict[str, Any]]:
        """Session-surface uploads: object_key, account, file_name, mime_type, size_bytes,
        uploaded, sha256."""
        return self._call("GET", "uploads")["uploads"]

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")

    def log(self) -> list[dict[str, Any]]:
        """One entry per generation of either surface ("surface": "matrix" | "session";
        for sessions chat_id is the session id as a string, turn_id the message's)."""
        return self._call("GET", "log")

    def files(self) -> list[dict[str, Any]]:
        """Stored OSS objects: bucket, key, account, size, sha256, content_type,
        sniffed_image, uploaded, file_id (once registered), origin_file_name, mime_type."""
        return self._call("GET", "files")["files"]

    def tts_log(self) -> list[dict[str, Any]]:
        """One entry per TTS job (account, msgID, voice): chat_id, msg_id, voice, text,
        segments, duration (also as total_duration), calls, delivered."""
        return self._call("GET", "tts_log")

    def asr(self, texts: list[str]) -> int:
        """Queue transcripts for the next non-silent phone_msg calls; returns the queue length."""
        return self._call("POST", "asr", {"texts": texts})["queued"]

    def asr_log(self) -> list[dict[str, Any]]:
        """One entry per phone_msg call: duration, sample_rate, channels, rms, transcript,
        status_code, bytes, error."""
        return self._call("GET", "asr_log")

    # -- the MiniMax Code surface (tests/simulator/code_control.py has the wire format) ------

    def add_code_accounts(self, count: int = 1, **opts: Any) -> list[dict[str, Any]]:
        """Signed-in code accounts. opts: of (a web account's real_user_id to link; count 1),
        expires_in (s: the first pair's; refreshed pairs live code_config(expires_in=...)),
        quota (per interval), quota_left, web_token_accepted, has_token_plan.
        Each: name, real_user_id, access_token, refresh_token, credential (= access_token),
        expires_in, web_jwt, workspace_id, op_group_id, quota_total, quota_left, ..."""
        return self._call("POST", "code/accounts", {"count": count, **opts})["accounts"]

    def code_accounts(self) -> list[dict[str, Any]]:
        return self._call("GET", "code/accounts")["accounts"]

    def patch_code_account(self, name: str, **changes: Any) -> dict[str, Any]:
        """changes: quota_left, quota_total, web_token_accepted, has_token_plan,
        expire_access=True (its access tokens expire now), revoke=True (its refresh tokens die)."""
        return self._call("PATCH", f"code/accounts/{name}", changes)

    def approve_device(self, user_code: str, account: str | None = None,
                       deny: bool = False) -> dict[str, Any]:
        """Approve (or deny) a pending device login; without `account` a new one is made.
        Returns {"ok", "account"}."""
        body: dict[str, Any] = {"user_code": user_code, "deny": deny}
        if account is not None:
            body["account"] = account
        return self._call("POST", "code/approve", body)

    def code_devices(self) -> list[dict[str, Any]]:
        """Device logins: user_code, verdict (pending|approved|denied|consumed), interval, account."""
        return self._call("GET", "code/devices")["devices"]

    def code_config(self, **opts: Any) -> dict[str, Any]:
        """opts: pending_form ("200" | "400"), slow_down_once, slow_down_step, expires_in,
        device_expires_in, interval, accept_web_tokens, m31_thinking_omitted ("accept" |
        "refuse"), token_extras, refresh_keeps_token, ping_seconds, device_variant
        ("standard" | "user_code": no device_code, expired_in epoch ms, interval ms, polls
        by user_code). reset() restores them."""
        return self._call("POST", "code/config", opts)

    def code_stats(self) -> dict[str, Any]:
        """Counters (messages_calls, generations, refreshes, invalid_grants, token_polls,
        slow_downs, grants, ...), rejections and warnings by reason, per-account
        {active, max_active, messages, refreshes, quota_left}, generating, max_concurrent."""
        return self._call("GET", "code/stats")

    def code_log(self) -> list[dict[str, Any]]:
        """One entry per /messages or count_tokens call: t, path, auth, headers (no secrets),
        body (image data as size + sha256), account, status, reason, extra_fields."""
        return self._call("GET", "code/log")

    def wait_idle(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until nothing generates on any surface (code included) and no matrix chat is
        left undeleted nor any session left unarchived/undeleted; returns stats."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            code_generating = self.code_stats()["generating"]
            if stats["chats_generating"] == 0 and stats["chats_alive"] == 0 and not code_generating:
                return stats
            if time.monotonic() >= deadline:
                raise TimeoutError(f"simulator not idle after {timeout}s: "
                                   f"{stats['chats_generating']} generating, "
                                   f"{stats['chats_alive']} alive")
            time.sleep(IDLE_POLL_SECONDS)

    def close(self) -> None:
        self._session.close()
