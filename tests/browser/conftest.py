"""Browser tests: headless Chromium from Debian's ``chromium`` package, driven by Playwright
(Python) through ``executable_path``; nothing downloads a browser build.

``.ci/run`` installs the package when it is missing, so under CI (``CI`` set) a missing browser
fails the tests instead of skipping them. Every page a test opens records its console errors
and uncaught exceptions (``console_errors(page)``) and is photographed when the test ends, to
``runs/artifacts/screenshots/<test>.png`` (``SIM_ARTIFACTS`` moves the folder).

``live_sim(text)`` runs ``sim start --api 127.0.0.1:0`` on a fleet file in a separate process
and gives its base URL; the process is stopped (through the API, else killed) at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

if os.environ.get("CI"):  # under CI the browser tests run, never skip (a dev dependency)
    import playwright.sync_api as playwright_sync
else:
    playwright_sync = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(os.environ.get("SIM_ARTIFACTS", "runs/artifacts"))
START_TIMEOUT = 30.0
"""Seconds a ``sim start --api`` process gets to say where it listens."""


def chromium_path() -> str | None:
    """Debian's chromium (``SIM_CHROMIUM`` overrides)."""
    return os.environ.get("SIM_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        message = "no chromium on PATH: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            browser.close()


_ERRORS: dict[int, list[str]] = {}


def console_errors(page: Any) -> list[str]:
    """The console errors and uncaught exceptions ``page`` has seen so far."""
    return _ERRORS.setdefault(id(page), [])


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors = console_errors(page)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    try:
        yield page
    finally:
        shots = ARTIFACTS / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        with contextlib.suppress(Exception):
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        _ERRORS.pop(id(page), None)
        context.close()


@pytest.fixture
def live_sim(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``live_sim(text, *args)``: start ``sim start --api 127.0.0.1:0`` on the fleet file
    ``text`` (ledger ``tmp_path/run.db``), return its base URL once it serves."""
    processes: list[subprocess.Popen[str]] = []
    urls: list[str] = []

    def start(text: str, *args: str) -> str:
        fleet = tmp_path / "fleet.toml"
        fleet.write_text(text)
        process = subprocess.Popen(
            [sys.executable, "-m", "simulator", "start", "--toml", str(fleet), "--quiet",
             "--api", "127.0.0.1:0", "--ledger", str(tmp_path / "run.db"), *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        processes.append(process)
        deadline = time.monotonic() + START_TIMEOUT
        assert process.stderr is not None
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            found = re.search(r"dashboard on (http://\S+?)/ ", line)
            if found:
                urls.append(found.group(1))
                stream = process.stderr  # drained from now on, so the process never blocks
                threading.Thread(target=stream.read, daemon=True).start()
                return found.group(1)
        process.kill()
        raise AssertionError(f"sim start --api did not serve within {START_TIMEOUT} s")

    try:
        yield start
    finally:
        for process, url in zip(processes, urls + [""] * len(processes), strict=False):
            if process.poll() is None and url:
                with contextlib.suppress(httpx.HTTPError):
                    httpx.post(f"{url}/api/run/stop", timeout=5)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
