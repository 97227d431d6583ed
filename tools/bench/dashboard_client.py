"""The dashboard client of ``dashboard.py``: an open dashboard on a run's API, in a process of
its own, until SIGTERM.

``dashboard.py`` starts it as ``dashboard.py --as-client http|browser --base URL --stats FILE``.
It writes ``FILE`` (JSON) once the dashboard is up (the page loaded, or the first round of
requests answered) and again when it stops; the figures say what it got, so a run whose client
got nothing useful is visible:

- ``answers``: ``{path: {status: count}}`` of every HTTP answer (the query string left off);
- ``events``, ``event_bytes``: server-sent events received (``http``: parsed from the stream;
  ``browser``: the bytes are not visible to Playwright, so only the page's own requests count);
- ``console_errors`` (``browser``): console errors and uncaught exceptions of the page.

``http`` does what the page does by the API contract (:data:`POLLS`, :data:`EVENT_KINDS`):
the polls one after another at each tick of a one-second schedule (a late tick is not made up),
and each event stream (``--events``; one by default) in a thread, reopened ``SSE_RETRY_S``
after it ends. ``browser`` opens
``GET /`` in Debian's headless chromium through Playwright's sync API (``executable_path``;
never a downloaded browser) and keeps the page open.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

EVENT_KINDS: Final = "status,connected,disconnected,crash,fault,tx_started,tx_stopped,command"
"""The kinds the dashboard's event stream asks for (the API contract)."""
POLLS: Final = (("/api/run", 1), ("/api/chargers/states", 2), ("/api/stats", 2),
                ("/api/chaos", 2))
"""What the page polls, with its period in seconds (the API contract)."""
SSE_RETRY_S: Final = 3.0
"""How long an ``EventSource`` waits before it reopens a stream that ended."""


class Figures:
    """What the client got; written as JSON by :meth:`write` (atomically)."""

    def __init__(self, client: str) -> None:
        self.client = client
        self.answers: defaultdict[str, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int))
        self.events = 0
        self.event_bytes = 0
        self.console_errors: list[str] = []
        self.lock = threading.Lock()

    def answer(self, url: str, status: int) -> None:
        with self.lock:
            self.answers[urlsplit(url).path][str(status)] += 1

    def write(self, path: Path) -> None:
        with self.lock:
            data = {"client": self.client, "events": self.events,
                    "event_bytes": self.event_bytes,
                    "answers": {p: dict(s) for p, s in self.answers.items()},
                    "console_errors": self.console_errors[:20]}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def stop_on_sigterm() -> threading.Event:
    """An event set by SIGTERM (and SIGINT)."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    return stopping


def run_http(base: str, stats: Path, stopping: threading.Event, figures: Figures,
             streams: list[str]) -> None:
    """Poll and hold the event streams (one per kind filter of ``streams``) as the page does,
    until ``stopping``."""
    import httpx

    def stream_events(kinds: str) -> None:
        url = f"{base}/api/events?kind={kinds}"
        with httpx.Client(timeout=httpx.Timeout(30.0, read=None)) as client:
            while not stopping.is_set():
                with contextlib.suppress(httpx.HTTPError), client.stream("GET", url) as response:
                    figures.answer(url, response.status_code)
                    if response.status_code == 200:
                        for line in response.iter_lines():
                            with figures.lock:
                                figures.event_bytes += len(line) + 1
                                figures.events += line.startswith("event:")
                            if stopping.is_set():
                                return
                stopping.wait(SSE_RETRY_S)

    for kinds in streams:
        threading.Thread(target=stream_events, args=(kinds,), daemon=True).start()
    with httpx.Client(base_url=base, timeout=10.0) as client:
        tick, started = 0, time.monotonic()
        while not stopping.is_set():
            for path, period in POLLS:
                if tick % period == 0:
                    with contextlib.suppress(httpx.HTTPError):
                        response = client.get(path)
                        figures.answer(path, response.status_code)
            if tick == 0:
                figures.write(stats)  # up: the first round is answered
            tick = int(time.monotonic() - started) + 1
            stopping.wait(max(0.0, started + tick - time.monotonic()))


def run_browser(base: str, stats: Path, stopping: threading.Event, figures: Figures,
                chromium: str) -> None:
    """Keep the run's page open in headless chromium until ``stopping``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.on("response", lambda response: figures.answer(response.url, response.status))
            page.on("console", lambda message: figures.console_errors.append(message.text)
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: figures.console_errors.append(f"uncaught: {error}"))
            page.goto(f"{base}/", wait_until="load")
            figures.write(stats)
            while not stopping.is_set():
                page.wait_for_timeout(250)  # Playwright's loop runs while this waits
        finally:
            browser.close()


def run_client(kind: str, base: str, stats: Path, chromium: str,
               streams: list[str] | None = None) -> None:
    """Run the ``kind`` client on ``base`` until SIGTERM; its figures go to ``stats``;
    ``streams``: the kind filters of its event streams (``http``; default one,
    :data:`EVENT_KINDS`)."""
    stopping = stop_on_sigterm()
    figures = Figures(kind)
    try:
        if kind == "browser":
            run_browser(base, stats, stopping, figures, chromium)
        else:
            run_http(base, stats, stopping, figures, streams or [EVENT_KINDS])
    finally:
        figures.write(stats)
