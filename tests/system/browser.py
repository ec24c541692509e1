"""Headless Chromium driven over the DevTools protocol, for the homepage tests.

Role: start Chromium from the Debian package on a loopback debugging port, open pages,
and record what a person would notice: console errors, uncaught exceptions, failed
loads, every network request. Only the standard library and the ``websockets`` package
(a dependency of google-genai) are used. Every wait is bounded in time.

Chromium is kept from the network: its own background services are disabled, and every
host name resolves to nothing, so a page that needed an external asset would fail
visibly (and the request would be recorded) instead of quietly fetching it.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import requests
from websockets.sync.client import ClientConnection, connect

#: Seconds Chromium may take to open its debugging port.
START_TIMEOUT_SECONDS = 30.0
#: Seconds one DevTools command (including a page load) may take.
COMMAND_TIMEOUT_SECONDS = 30.0

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--no-first-run",
    "--no-default-browser-check", "--mute-audio", "--hide-scrollbars",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    # Host names resolve to nothing; the pages under test are reached at 127.0.0.1.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--enable-logging=stderr", "--v=0",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
)
#: console.* calls that show as errors in the DevTools console.
CONSOLE_ERROR_TYPES = frozenset({"error", "assert"})


class Chromium:
    """One headless Chromium process with its own throwaway profile."""

    def __init__(self, binary: Path, profile: Path, log_path: Path) -> None:
        self.profile = profile
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(binary), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.endpoint = f"http://127.0.0.1:{self._debugging_port()}"

    def _debugging_port(self) -> int:
        # Chromium writes the port it picked (line 1) once it is listening.
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited early:\n{self.log()}")
            lines = port_file.read_text().splitlines() if port_file.exists() else []
            if lines and lines[0].strip().isdigit():
                return int(lines[0])
            time.sleep(0.1)
        raise RuntimeError(f"chromium did not open its debugging port:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def new_page(self) -> Page:
        target = requests.put(f"{self.endpoint}/json/new?about:blank", timeout=10).json()
        return Page(self, target["id"], target["webSocketDebuggerUrl"])

    def close_target(self, target_id: str) -> None:
        requests.get(f"{self.endpoint}/json/close/{target_id}", timeout=10)

    def stop(self) -> None:
        if self._log.closed:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


class Page:
    """One tab: commands in, events recorded (errors and requests in particular)."""

    def __init__(self, browser: Chromium, target_id: str, ws_url: str) -> None:
        self.browser = browser
        self.target_id = target_id
        self._closing = ExitStack()
        self._ws: ClientConnection = self._closing.enter_context(connect(ws_url, max_size=None, open_timeout=10))
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    # --- protocol -------------------------------------------------------------------

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run one command and return its result; events seen meanwhile are kept."""
        message_id = next(self._ids)
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + COMMAND_TIMEOUT_SECONDS
        while True:
            message = self._receive(deadline, method)
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_event(self, name: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline, name)
            if message.get("method") == name:
                return message.get("params", {})

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no answer to {waiting_for} within {COMMAND_TIMEOUT_SECONDS} s")
        try:
            message = json.loads(self._ws.recv(timeout=remaining))
        except TimeoutError:
            raise TimeoutError(f"no answer to {waiting_for} within {COMMAND_TIMEOUT_SECONDS} s") from None
        if "method" in message:
            self.events.append(message)
        return message

    # --- conveniences ---------------------------------------------------------------

    def goto(self, url: str) -> None:
        """Navigate and wait for the load event (and a settled event queue)."""
        self.events.clear()
        navigation = self.send("Page.navigate", url=url)
        if navigation.get("errorText"):
            raise RuntimeError(f"{url}: {navigation['errorText']}")
        self.wait_event("Page.loadEventFired")
        self.evaluate("new Promise(done => setTimeout(done, 100))")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True, userGesture=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Everything the console would show as an error, plus failed loads."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in CONSOLE_ERROR_TYPES:
                found.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}".strip())
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                found.append(f"network: {params.get('errorText')} ({params.get('type')})")
        return found

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=mobile)

    def color_scheme(self, scheme: str) -> None:
        self.send("Emulation.setEmulatedMedia",
                  features=[{"name": "prefers-color-scheme", "value": scheme}])

    def screenshot(self, path: Path) -> None:
        """The whole page, not only the viewport."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def click(self, selector: str) -> None:
        """A real mouse click (a user gesture, as the clipboard requires) on an element."""
        box = self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"],
                      button="left", clickCount=1)

    def close(self) -> None:
        self._closing.close()
        self.browser.close_target(self.target_id)
