"""Shared pieces of the benchmarks: processes, the streaming client, /proc readings, stats.

Every benchmark starts its own fresh simulator and gateway (:class:`Stack`), drives the
gateway with plain ``requests`` clients, and compares client-side ``time.time()`` stamps
with the simulator's own epoch timeline (``/_sim/log``: ``t_send``, ``t_first_content``,
``t_finish``, ``polls``, ``poll_times``), which runs on the same machine and clock.
On the ``code`` surface the accounts are MiniMax Code accounts (:meth:`Stack.add_accounts`):
given to the gateway as the caller's access token, or, with ``signed_in``, signed in to
the gateway's shared state as server-side accounts the callers reach with an API key.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import platform
import resource
import secrets
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import requests

from tests.bench.tap import StreamTap
from tests.servers import Process, start_gateway, start_simulator
from tests.simulator.control import SimulatorControl

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "bench-results"
MODEL = "MiniMax-M2"
#: The code surface's model: MiniMax-M3 thinks only when the script says so (the
#: simulator gives the M2 names, aliased to MiniMax-M2.7, a thinking of its own), so the
#: first streamed character is answer text, as on the web surfaces.
CODE_MODEL = "MiniMax-M3"
#: Safety bound on the frames one stream may deliver (a runaway stream ends the read).
MAX_FRAMES_PER_STREAM = 200_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: The upstream surfaces a benchmark can run the gateway on (MINIMAX_SURFACE).
SURFACES = ("matrix", "session", "code")
#: The web app's surfaces: the benchmarks not ported to the code surface take only these.
WEB_SURFACES = ("matrix", "session")
#: The most code accounts the simulator mints in one call.
CODE_ACCOUNTS_PER_CALL = 100
#: The region signed-in code accounts are added under (the simulator plays both).
SIGNIN_REGION = "cn"
#: Seconds the gateway keeps its list of signed-in accounts (gateway/accounts/service.py
#: SIGNED_IN_TTL is 2 s), waited after signing accounts in.
SIGNED_IN_LIST_WAIT_S = 2.5


# --- statistics -------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), like numpy's default; None if empty."""
    data = sorted(v for v in values if v is not None)
    if not data:
        return None
    if len(data) == 1:
        return data[0]
    rank = (len(data) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return data[low] + (data[high] - data[low]) * (rank - low)


def summarize(values: Iterable[float | None]) -> dict[str, float | int | None]:
    data = [v for v in values if v is not None]
    return {
        "n": len(data),
        "min": min(data) if data else None,
        "p50": percentile(data, 50),
        "p90": percentile(data, 90),
        "p99": percentile(data, 99),
        "max": max(data) if data else None,
        "mean": sum(data) / len(data) if data else None,
    }


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.1f}"


def num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(value: float | None, goal: float) -> str:
    if value is None:
        return "n/a"
    return "PASS" if value <= goal else "FAIL"


# --- results -------------------------------------------------------------------------------

def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "started_at": time.time(),
    }


def result_name(name: str, **variants: object) -> str:
    """``name`` plus a suffix per non-default variant, so variant runs keep their own file."""
    suffix = "".join(f"-{key}" if value is True else f"-{key}-{value}"
                     for key, value in variants.items() if value not in (None, False, ""))
    return name + suffix


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    return path


# --- /proc ------------------------------------------------------------------------------------

def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn master -> its workers)."""
    found: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        for task in task_dir.iterdir():
            text = (task / "children").read_text()
            found += [int(part) for part in text.split()]
        return sorted(set(found))
    except OSError:
        pass
    for entry in Path("/proc").iterdir():  # fallback: scan every process's parent id
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy (all cores, all processes) since boot."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def unread_bytes(peer_ports: dict[str, int]) -> dict[str, int | None]:
    """Per name, the bytes waiting unread in the receive queues of the loopback TCP
    sockets connected TO that port (``/proc/net/tcp`` rx_queue): data a reader has not
    taken yet. For the gateway's port that is what the clients have not read yet; for
    the simulator's (upstream) port, what the gateway has not read yet. Tells which side
    a backlog is on."""
    totals: dict[str, int | None] = dict.fromkeys(peer_ports, 0)
    wanted = {port: name for name, port in peer_ports.items()}
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return dict.fromkeys(peer_ports)
    for line in lines:
        fields = line.split()
        if len(fields) < 5:
            continue
        name = wanted.get(int(fields[2].rsplit(":", 1)[1], 16))
        if name is not None:
            totals[name] = (totals[name] or 0) + int(fields[4].split(":")[1], 16)
    return totals


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def cpu_seconds_of(pids: int | Sequence[int]) -> float | None:
    """:func:`cpu_seconds` of one process, or the sum over several (None if any is gone)."""
    if isinstance(pids, int):
        return cpu_seconds(pids)
    values = [cpu_seconds(pid) for pid in pids]
    return None if not values or any(v is None for v in values) else sum(values)


class CpuMeter:
    """CPU share (in % of one core) of some processes between start() and stop().

    A name may stand for several pids (e.g. all gunicorn workers): their CPU is summed.
    """

    def __init__(self, pids: dict[str, int | Sequence[int]]) -> None:
        self.pids = pids
        self._start: dict[str, float | None] = {}
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._start = {name: cpu_seconds_of(pid) for name, pid in self.pids.items()}
        self._machine = machine_busy_seconds()

    def stop(self) -> dict[str, float | None]:
        elapsed = max(1e-9, time.monotonic() - self._t0)
        shares: dict[str, float | None] = {}
        for name, pid in self.pids.items():
            before, after = self._start.get(name), cpu_seconds_of(pid)
            shares[name] = None if before is None or after is None else 100.0 * (after - before) / elapsed
        machine = machine_busy_seconds()
        if machine is not None and self._machine is not None:
            shares["machine_total"] = 100.0 * (machine - self._machine) / elapsed
            ours = sum(v for k, v in shares.items() if v is not None and k != "machine_total")
            # Everything else on the machine (other sessions' tests, the OS) in the same window.
            shares["other_processes"] = max(0.0, shares["machine_total"] - ours)
        shares["wall_s"] = elapsed
        return shares


def raise_fd_limit() -> None:
    """Children inherit this: hundreds of streams need more than a 1024 soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


# --- the processes ------------------------------------------------------------------------------

class Stack:
    """A fresh simulator and a gunicorn gateway in front of it; both stopped on exit."""

    def __init__(self, name: str, gateway_env: dict[str, str] | None = None,
                 surface: str = "matrix", tap: bool = False, signed_in: bool = False) -> None:
        if surface not in SURFACES:
            raise ValueError(f"surface must be one of {SURFACES}")
        if signed_in and surface != "code":
            raise ValueError("signed-in accounts are the code surface's")
        self.name = name
        self.surface = surface
        self.model = CODE_MODEL if surface == "code" else MODEL
        self.gateway_env = {"GATEWAY_LOG_LEVEL": "warning", "MINIMAX_SURFACE": surface,
                            **(gateway_env or {})}
        self.sim_proc: Process | None = None
        self.gw_proc: Process | None = None
        self.sim_url = self.gw_url = self.stream_url = ""
        self.sim: SimulatorControl | None = None
        #: With ``tap`` (session and code surfaces) the gateway reaches the streaming host
        #: through a :class:`StreamTap`, which stamps when each upstream SSE frame arrived.
        self.tap: StreamTap | None = None
        self._want_tap = tap and surface in ("session", "code")
        #: With ``signed_in`` (code): the gateway's shared state (a SQLite file in a
        #: private temporary folder) holds the accounts, reached with ``api_key``.
        self.signed_in = signed_in
        self.api_key = f"bench-{secrets.token_hex(16)}" if signed_in else ""
        self._state_dir: str | None = None
        self.state_url = ""

    def __enter__(self) -> Stack:
        raise_fd_limit()
        try:
            self.sim_proc, self.sim_url = start_simulator(f"bench-{self.name}-simulator")
            self.sim = SimulatorControl(self.sim_url)
            self.stream_url = str(self.sim_proc.stream_url)
            env = dict(self.gateway_env)
            if self.surface == "session":
                if self._want_tap:
                    self.tap = StreamTap(self.stream_url)
                env["MINIMAX_STREAM_BASE_URL"] = self.tap.url if self.tap else self.stream_url
            if self.surface == "code":
                if self._want_tap:  # only the LLM host: sign-in and quota calls go direct
                    self.tap = StreamTap(self.sim_url, protocol="code")
                env["MINIMAX_CODE_BASE_URL"] = self.tap.url if self.tap else self.sim_url
            if self.signed_in:
                self._state_dir = tempfile.mkdtemp(prefix="bench-state-")
                self.state_url = f"sqlite:///{self._state_dir}/state.db"
                env.update(GATEWAY_STATE=self.state_url, GATEWAY_API_KEYS=self.api_key)
            self.gw_proc, self.gw_url = start_gateway(
                self.sim_url, f"bench-{self.name}-{self.surface}-gateway", env
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for proc in (self.gw_proc, self.sim_proc):
            if proc is not None:
                try:
                    proc.stop()
                except Exception as error:  # keep stopping the others
                    print(f"warning: could not stop {proc.log_path.name}: {error}")
        if self.tap is not None:
            self.tap.close()
        if self.sim is not None:
            self.sim.close()
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)  # it holds refresh tokens

    # -- accounts and answers ---------------------------------------------------------

    def add_accounts(self, count: int) -> list[dict[str, Any]]:
        """``count`` accounts of the surface's kind, each with ``credential`` (what the
        client sends as its key) and ``real_user_id`` (what ``/_sim/log`` and the
        per-account answer queues name). Web surfaces: web accounts; code: MiniMax Code
        accounts, their access token as the credential or, signed in, the API key."""
        assert self.sim is not None
        if self.surface != "code":
            return self.sim.add_accounts(count)
        accounts: list[dict[str, Any]] = []
        while len(accounts) < count:  # the simulator mints at most 100 code accounts a call
            accounts += self.sim.add_code_accounts(min(CODE_ACCOUNTS_PER_CALL, count - len(accounts)))
        if not self.signed_in:
            return accounts
        self._sign_in(accounts)
        return [{**account, "credential": self.api_key} for account in accounts]

    def _sign_in(self, accounts: list[dict[str, Any]]) -> None:
        """Store the accounts' fresh token pairs in the gateway's state, as ``login`` does."""
        # Imported here: only signed-in runs need the gateway's own modules in this process.
        from gateway.config import Settings
        from gateway.state import open_state
        from gateway.upstream.oauth import OAuthClient, TokenPair
        from gateway.upstream.signins import SignIns

        settings = Settings.from_env({"MINIMAX_ACCOUNT_BASE_URL": self.sim_url,
                                      "MINIMAX_CODE_BASE_URL": self.sim_url})
        state = open_state(self.state_url)
        client = OAuthClient(settings.code(SIGNIN_REGION))
        try:
            signins = SignIns(state, {SIGNIN_REGION: client}, settings.refresh_before)
            for account in accounts:
                signins.add(account["name"], SIGNIN_REGION, TokenPair(
                    account["access_token"], account["refresh_token"],
                    time.time() + float(account["expires_in"]), "agent.default",
                    account_id=account["name"]))
        finally:
            client.close()
            state.close()
        time.sleep(SIGNED_IN_LIST_WAIT_S)  # the gateway reads its list of them anew

    def script(self, answers: list[dict[str, Any]], account: dict[str, Any] | None = None) -> int:
        """Queue answers for ``account`` (one of :meth:`add_accounts`), or globally. With
        signed-in accounts the gateway picks the account, so every answer goes to the
        global queue (each reply is matched to its answer by prompt, not by account)."""
        assert self.sim is not None
        if account is None or self.signed_in:
            return self.sim.script(answers)
        return self.sim.script(answers, account=account["real_user_id"])

    def token_calls(self) -> dict[str, int]:
        """Calls the simulator's account host saw on /oauth2/token, and the refreshes and
        invalid grants among them (code surface; 0 elsewhere)."""
        assert self.sim is not None
        requests_by_path = self.sim.stats().get("requests") or {}
        code = self.sim.code_stats()
        return {"oauth2_token": int(requests_by_path.get("/oauth2/token", 0)),
                "refreshes": int(code.get("refreshes", 0)),
                "invalid_grants": int(code.get("invalid_grants", 0))}

    @property
    def master_pid(self) -> int:
        assert self.gw_proc is not None
        return self.gw_proc.proc.pid

    @property
    def simulator_pid(self) -> int:
        assert self.sim_proc is not None
        return self.sim_proc.proc.pid

    def worker_pids(self, expected: int = 1, timeout: float = 10.0) -> list[int]:
        deadline = time.monotonic() + timeout
        while True:
            pids = child_pids(self.master_pid)
            if len(pids) >= expected or time.monotonic() >= deadline:
                return pids
            time.sleep(0.1)

    def worker_pid(self) -> int:
        pids = self.worker_pids(1)
        if len(pids) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {pids}")
        return pids[0]


# --- the client ------------------------------------------------------------------------------------

def unique_prompt(label: str) -> str:
    """A prompt that identifies its request in the simulator log (matched by prompt)."""
    return f"bench {label} {uuid.uuid4().hex[:12]}"


def chat_body(prompt: str, stream: bool, model: str = MODEL) -> dict[str, Any]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": prompt}]}


@dataclass
class StreamResult:
    prompt: str
    t_request: float = 0.0  # just before the request is sent
    t_headers: float | None = None  # response headers received
    t_first_content: float | None = None  # chunk holding the first non-empty content delta
    t_last_content: float | None = None  # chunk holding the last content delta
    t_finish_reason: float | None = None  # chunk holding the choice's finish_reason
    t_done: float | None = None  # chunk holding "data: [DONE]"
    t_eof: float | None = None  # the body ended (connection released)
    status: int | None = None
    text: str = ""
    frames: int = 0
    content_frames: int = 0
    heartbeats: int = 0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def ok(self) -> bool:
        return self.error is None and self.status == 200 and self.t_done is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def stream_chat(
    session: requests.Session,
    gateway_url: str,
    credential: str,
    prompt: str,
    deadline_s: float = 120.0,
    read_timeout: float = 60.0,
    result: StreamResult | None = None,
    model: str = MODEL,
) -> StreamResult:
    """One streamed chat completion read frame by frame with arrival times.

    ``iter_content(chunk_size=None)`` on a chunked response yields each HTTP chunk as soon
    as it is read (urllib3 ``read_chunked``), so no client-side buffering delays a frame.
    ``result`` may be passed in so another thread can watch the stream's progress.
    """
    result = result if result is not None else StreamResult(prompt)
    headers = {"Authorization": f"Bearer {credential}"}
    deadline = time.time() + deadline_s
    result.t_request = time.time()
    try:
        with session.post(
            f"{gateway_url}/v1/chat/completions", json=chat_body(prompt, True, model), headers=headers,
            stream=True, timeout=(5.0, read_timeout),
        ) as response:
            result.t_headers = time.time()
            result.status = response.status_code
            if response.status_code != 200:
                result.error = f"HTTP {response.status_code}: {response.text[:300]}"
                return result
            buffer = b""
            parts: list[str] = []
            for chunk in response.iter_content(chunk_size=None):
                now = time.time()
                buffer += chunk
                while b"\n\n" in buffer:
                    frame, buffer = buffer.split(b"\n\n", 1)
                    _read_frame(result, frame, now, parts)
                if result.t_done is not None or result.error is not None:
                    break
                if result.frames > MAX_FRAMES_PER_STREAM or now > deadline:
                    result.error = "client deadline or frame bound reached"
                    break
            result.text = "".join(parts)
            result.t_eof = time.time()
            if result.t_done is None and result.error is None:
                result.error = "stream ended without [DONE]"
    except requests.RequestException as error:
        result.error = f"{type(error).__name__}: {str(error)[:200]}"
    return result


def _read_frame(result: StreamResult, frame: bytes, now: float, parts: list[str]) -> None:
    result.frames += 1
    for line in frame.split(b"\n"):
        if line.startswith(b":"):
            result.heartbeats += 1
            continue
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            result.t_done = now
            return
        event = json.loads(data)
        if "error" in event:
            result.error = f"error frame: {json.dumps(event['error'])[:300]}"
            return
        for choice in event.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                if result.t_first_content is None:
                    result.t_first_content = now
                result.t_last_content = now
                result.content_frames += 1
                parts.append(content)
            if choice.get("finish_reason") and result.t_finish_reason is None:
                result.t_finish_reason = now


def stream_chat_openai(gateway_url: str, credential: str, prompt: str, model: str = MODEL) -> StreamResult:
    """The same measurement through the official ``openai`` SDK (httpx underneath)."""
    import openai  # imported lazily: only the --client openai mode needs it

    result = StreamResult(prompt)
    client = openai.OpenAI(base_url=gateway_url + "/v1", api_key=credential, max_retries=0,
                           timeout=60.0)
    parts: list[str] = []
    try:
        result.t_request = time.time()
        stream = client.chat.completions.create(
            model=model, stream=True, messages=[{"role": "user", "content": prompt}])
        result.t_headers = time.time()
        result.status = 200
        for index, chunk in enumerate(stream):
            now = time.time()
            result.frames += 1
            for choice in chunk.choices:
                if choice.delta.content:
                    if result.t_first_content is None:
                        result.t_first_content = now
                    result.content_frames += 1
                    parts.append(choice.delta.content)
            if index > MAX_FRAMES_PER_STREAM:
                result.error = "frame bound reached"
                break
        # The SDK swallows "[DONE]" and ends the iteration right after it.
        result.t_done = result.t_eof = time.time()
    except openai.OpenAIError as error:
        result.error = f"{type(error).__name__}: {str(error)[:200]}"
    finally:
        client.close()
    result.text = "".join(parts)
    return result


def sim_log_by_prompt(sim: SimulatorControl) -> dict[str, dict[str, Any]]:
    return {entry["prompt"]: entry for entry in sim.log()}


def match_entry(log: dict[str, dict[str, Any]], prompt: str) -> dict[str, Any] | None:
    """The simulator generation of a request (the folded prompt equals a lone user text)."""
    entry = log.get(prompt)
    if entry is not None:
        return entry
    return next((e for p, e in log.items() if prompt in p), None)


def poll_spacing(poll_times: Sequence[float]) -> dict[str, float | int | None]:
    """How fast one chat was really polled, from the simulator's own poll timestamps.

    ``poll_rate``: (polls − 1) / (last poll − first poll), the rate of polling itself;
    ``min_poll_gap`` / ``max_poll_gap``: the shortest / longest time between two polls;
    ``max_polls_in_1s``: the most polls inside any 1 s window (starting at a poll).
    """
    times = sorted(poll_times)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    span = times[-1] - times[0] if times else 0.0
    return {
        "poll_rate": (len(times) - 1) / span if len(times) > 1 and span > 0 else None,
        "min_poll_gap": min(gaps) if gaps else None,
        "max_poll_gap": max(gaps) if gaps else None,
        "max_polls_in_1s": max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)),
                               default=0),
    }


def poll_breakdown(entry: dict[str, Any], t_first_client: float | None,
                   t_done_client: float | None) -> dict[str, float | None]:
    """Split added TTFT and tail at the upstream poll that first saw the content / finish.

    ``*_poll_wait``: from the moment the simulator made it visible to the poll that saw it
    (polling granularity, or polls arriving late); ``*_delivery``: from that poll to the
    client (the gateway's own processing and writing, plus the client reading);
    ``send_to_first_poll``: upstream send -> the first poll (the gateway polls at once).
    """
    times = sorted(entry.get("poll_times") or ())
    out: dict[str, float | None] = {
        "ttft_poll_wait": None, "ttft_delivery": None, "tail_poll_wait": None,
        "tail_delivery": None,
        # The gateway polls at once after the send: anything here is waiting for the worker.
        "send_to_first_poll": (times[0] - entry["t_send"]) if times and entry.get("t_send") else None,
    }
    first, finish = entry.get("t_first_content"), entry.get("t_finish")
    if first is not None:
        seen = next((t for t in times if t >= first), None)
        if seen is not None:
            out["ttft_poll_wait"] = seen - first
            out["ttft_delivery"] = t_first_client - seen if t_first_client is not None else None
    if finish is not None:
        seen = next((t for t in times if t >= finish), None)
        if seen is not None:
            out["tail_poll_wait"] = seen - finish
            out["tail_delivery"] = t_done_client - seen if t_done_client is not None else None
    return out
