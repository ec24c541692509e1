"""The per-dialect adapter table of the fault matrix.

Role: one :class:`Dialect` per client API (OpenAI, Responses, Anthropic, Gemini) says how to post a
chat streamed or not and how to read that dialect's own error body and in-stream error
frame, so each fault case is written once and asserted in every dialect's shape.
:func:`ask` posts one request and reduces what came back to an :class:`Outcome`,
handing everything it saw to the secrets sweep.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from tests.secrets import record_response, record_text

#: HTTP status of each neutral error kind (gateway/errors.py), the same in every dialect.
STATUS: dict[str, int] = {"upstream": 502, "unavailable": 503, "timeout": 504,
                          "rate_limit": 429, "quota": 429, "authentication": 401}
CLIENT_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Outcome:
    """What the client got: status, the error's label in the dialect's words (None: no
    error), the answer text, whether the answer ended normally, and how long it took."""

    status: int
    error: str | None
    text: str
    finished: bool
    seconds: float


@dataclass(frozen=True)
class Dialect:
    name: str
    path: Callable[[bool], str]
    headers: Callable[[str], dict[str, str]]
    body: Callable[[str, bool], dict[str, Any]]
    #: neutral error kind -> the label this dialect gives it
    labels: dict[str, str]
    #: an error body -> its label, asserting the dialect's shape
    error_label: Callable[[dict[str, Any]], str]
    #: a whole streamed body -> (text, error label or None, finished normally)
    read_stream: Callable[[str], tuple[str, str | None, bool]]
    #: a non-stream answer -> its text
    answer_text: Callable[[dict[str, Any]], str]
    #: neutral error kind -> its label in an in-stream error, where that differs from ``labels``
    stream_labels: dict[str, str] | None = None

    def __str__(self) -> str:
        return self.name


def _data_frames(body: str) -> Iterator[tuple[str, str]]:
    """(event name or "", data) of each SSE frame; comments (keep-alives) skipped."""
    for block in body.replace("\r\n", "\n").split("\n\n"):
        event, data = "", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            yield event, "\n".join(data)


# -- OpenAI -------------------------------------------------------------------------------
def _openai_label(body: dict[str, Any]) -> str:
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, body
    assert error["message"] and error["type"], body
    return str(error["code"])


def _openai_stream(body: str) -> tuple[str, str | None, bool]:
    text, error, done = [], None, False
    for _, data in _data_frames(body):
        if data == "[DONE]":
            done = True
            continue
        frame = json.loads(data)
        if "error" in frame:
            error = _openai_label(frame)
            continue
        for choice in frame.get("choices") or []:
            text.append(choice.get("delta", {}).get("content") or "")
    return "".join(text), error, done and error is None


OPENAI = Dialect(
    name="openai",
    path=lambda stream: "/v1/chat/completions",
    headers=lambda credential: {"Authorization": f"Bearer {credential}"},
    body=lambda prompt, stream: {"model": "MiniMax-M2", "stream": stream,
                                 "messages": [{"role": "user", "content": prompt}]},
    labels={"upstream": "upstream_error", "unavailable": "upstream_unavailable",
            "timeout": "upstream_timeout", "rate_limit": "rate_limit_exceeded",
            "quota": "insufficient_quota", "authentication": "invalid_api_key"},
    error_label=_openai_label,
    read_stream=_openai_stream,
    answer_text=lambda body: body["choices"][0]["message"]["content"],
)


# -- OpenAI Responses ---------------------------------------------------------------------
def _responses_stream(body: str) -> tuple[str, str | None, bool]:
    text, error, done = [], None, False
    for event, data in _data_frames(body):
        frame = json.loads(data)
        assert event == frame["type"], frame
        if frame["type"] == "response.output_text.delta":
            text.append(frame["delta"])
        elif frame["type"] == "response.failed":
            failure = frame["response"]["error"]
            assert failure["message"], frame
            error = str(failure["code"])
        elif frame["type"] == "response.completed":
            done = True
    return "".join(text), error, done and error is None


RESPONSES = Dialect(
    name="responses",
    path=lambda stream: "/v1/responses",
    headers=lambda credential: {"Authorization": f"Bearer {credential}"},
    body=lambda prompt, stream: {"model": "MiniMax-M2", "stream": stream, "input": prompt, "store": False},
    labels=OPENAI.labels,
    error_label=_openai_label,
    read_stream=_responses_stream,
    answer_text=lambda body: "".join(part["text"] for item in body["output"] if item["type"] == "message"
                                     for part in item["content"]),
    # response.failed names only what a client acts on (retry later, top up, compact).
    stream_labels={"upstream": "server_error", "unavailable": "server_error", "timeout": "server_error",
                   "rate_limit": "rate_limit_exceeded", "quota": "insufficient_quota"},
)


# -- Anthropic ----------------------------------------------------------------------------
def _anthropic_label(body: dict[str, Any]) -> str:
    assert body["type"] == "error" and body["error"]["message"], body
    return str(body["error"]["type"])


def _anthropic_stream(body: str) -> tuple[str, str | None, bool]:
    text, error, stopped = [], None, False
    for event, data in _data_frames(body):
        frame = json.loads(data)
        if event == "error":
            assert frame["type"] == "error" and frame["error"]["message"], frame
            error = str(frame["error"]["type"])
        elif event == "message_stop":
            stopped = True
        elif event == "content_block_delta" and frame["delta"].get("type") == "text_delta":
            text.append(frame["delta"]["text"])
    return "".join(text), error, stopped and error is None


ANTHROPIC = Dialect(
    name="anthropic",
    path=lambda stream: "/v1/messages",
    headers=lambda credential: {"x-api-key": credential, "anthropic-version": "2023-06-01"},
    body=lambda prompt, stream: {"model": "claude-sonnet-4-5", "max_tokens": 8000, "stream": stream,
                                 "messages": [{"role": "user", "content": prompt}]},
    labels={"upstream": "api_error", "unavailable": "overloaded_error", "timeout": "timeout_error",
            "rate_limit": "rate_limit_error", "quota": "rate_limit_error",
            "authentication": "authentication_error"},
    error_label=_anthropic_label,
    read_stream=_anthropic_stream,
    answer_text=lambda body: "".join(block.get("text", "") for block in body["content"]),
)


# -- Gemini -------------------------------------------------------------------------------
def _gemini_label(body: dict[str, Any]) -> str:
    error = body["error"]
    assert isinstance(error["code"], int) and error["message"], body
    return str(error["status"])


def _gemini_parts_text(frame: dict[str, Any]) -> str:
    parts = ((frame.get("candidates") or [{}])[0].get("content") or {}).get("parts") or []
    return "".join(part.get("text", "") for part in parts if not part.get("thought"))


def _gemini_stream(body: str) -> tuple[str, str | None, bool]:
    text, error, finished = [], None, False
    for event, data in _data_frames(body):
        assert not event, "gemini-cli rejects event: lines"
        frame = json.loads(data)
        if "error" in frame:
            error = _gemini_label(frame)
            continue
        text.append(_gemini_parts_text(frame))
        finished = bool((frame.get("candidates") or [{}])[0].get("finishReason"))
    return "".join(text), error, finished and error is None


def _gemini_path(stream: bool) -> str:
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/gemini-2.5-flash:{method}"


GEMINI = Dialect(
    name="gemini",
    path=_gemini_path,
    headers=lambda credential: {"x-goog-api-key": credential},
    body=lambda prompt, stream: {"contents": [{"role": "user", "parts": [{"text": prompt}]}]},
    labels={"upstream": "INTERNAL", "unavailable": "UNAVAILABLE", "timeout": "DEADLINE_EXCEEDED",
            "rate_limit": "RESOURCE_EXHAUSTED", "quota": "RESOURCE_EXHAUSTED",
            "authentication": "UNAUTHENTICATED"},
    error_label=_gemini_label,
    read_stream=_gemini_stream,
    answer_text=_gemini_parts_text,
)

DIALECTS: tuple[Dialect, ...] = (OPENAI, RESPONSES, ANTHROPIC, GEMINI)
BY_NAME: dict[str, Dialect] = {dialect.name: dialect for dialect in DIALECTS}


# -- asking -------------------------------------------------------------------------------
def ask(gateway: str, dialect: Dialect, credential: str, stream: bool, prompt: str = "Hello there",
        timeout: float = CLIENT_TIMEOUT_SECONDS) -> Outcome:
    """Post one chat and read all of its answer; everything seen goes to the sweep."""
    where = f"faults {dialect.name} stream={stream}"
    started = time.monotonic()
    try:
        response = requests.post(gateway + dialect.path(stream), json=dialect.body(prompt, stream),
                                 headers=dialect.headers(credential), timeout=timeout)
    except requests.RequestException as exc:
        record_text(where, str(exc))
        raise
    seconds = time.monotonic() - started
    record_response(where, response)
    return _outcome(dialect, stream, response.status_code, response.text, seconds)


def _outcome(dialect: Dialect, stream: bool, status: int, body: str, seconds: float) -> Outcome:
    if status != 200:
        return Outcome(status, dialect.error_label(json.loads(body)), "", False, seconds)
    if stream:
        text, error, finished = dialect.read_stream(body)
        return Outcome(status, error, text, finished, seconds)
    return Outcome(status, None, dialect.answer_text(json.loads(body)), True, seconds)


def expect_error(outcome: Outcome, dialect: Dialect, kind: str, in_stream: bool) -> None:
    """The failure reached the client in the dialect's own shape: as an HTTP error, or
    (a failure after a stream began) as an error frame of a 200 stream, never as text."""
    if in_stream:
        assert outcome.status == 200, outcome
        assert outcome.error == (dialect.stream_labels or dialect.labels)[kind], outcome
        assert not outcome.finished, outcome
    else:
        assert (outcome.status, outcome.error) == (STATUS[kind], dialect.labels[kind]), outcome


# -- raw connections (disconnects, slow readers) ------------------------------------------
class SmallWindow(http.client.HTTPConnection):
    """A connection whose receive buffer is tiny, so a slow reader pushes back at once."""

    def __init__(self, host: str, port: int, rcvbuf: int | None = None) -> None:
        super().__init__(host, port, timeout=CLIENT_TIMEOUT_SECONDS)
        self.rcvbuf = rcvbuf

    def connect(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf is not None:  # before connect, so the advertised window is small too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.settimeout(self.timeout)
        sock.connect((self.host, self.port))
        self.sock = sock


def open_raw(gateway: str, dialect: Dialect, credential: str, stream: bool, prompt: str = "Hello there",
             rcvbuf: int | None = None) -> SmallWindow:
    """Send a chat request on a raw connection without reading the answer yet."""
    host, port = gateway.removeprefix("http://").rsplit(":", 1)
    conn = SmallWindow(host, int(port), rcvbuf)
    headers = {**dialect.headers(credential), "Content-Type": "application/json"}
    conn.request("POST", dialect.path(stream), json.dumps(dialect.body(prompt, stream)), headers)
    return conn
