"""Photograph the live dashboard for the README: ``docs/dashboard.png``.

Runs ``sim start --api 127.0.0.1:0`` on a 200-charger fleet against the embedded CSMS (real
time, sessions arriving, a few faults of the chaos catalog on a schedule), opens the dashboard
in headless Chromium (Debian's ``chromium``, through Playwright; nothing is downloaded), lets
the charts fill for ``--fill`` seconds and writes the picture. The
run is stopped through the API at the end.

    PYTHONPATH=. python tools/screenshot_dashboard.py [--out docs/dashboard.png] [--fill 60]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

FLEET = """
[run]
name = "street-200"
seed = 2026
time = "real"

[csms.embedded]
accepted_tags = ["TAG-*"]

[[group]]
name = "street"
count = 160
id = "ST-{n:03}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 40

[group.config]
MeterValueSampleInterval = 5
HeartbeatInterval = 20

[group.sessions]
arrivals_per_hour = 240
duration = "20s..90s"
energy_kwh = "1..8"
id_tags = ["TAG-{charger}-{connector}"]

[[group]]
name = "depot"
count = 40
id = "DP-{n:02}"
vendor = "Acme"
model = "DC50"
connectors = 1
max_power_kw = 50
connect_rate = 40

[group.sessions]
arrivals_per_hour = 180
duration = "30s..2m"
energy_kwh = "5..20"
id_tags = ["TAG-{charger}"]

[[chaos]]
fault = "latency"
target = { group = "street", fraction = 0.3 }
at = "15s"
for = "15s"
params = { ms = 400, jitter_ms = 200 }

[[chaos]]
fault = "connector_fault"
target = { group = "depot", fraction = 0.2 }
at = "25s"
for = "20s"
params = { error_code = "GroundFailure" }

[[chaos]]
fault = "disconnect"
target = { group = "street", fraction = 0.1 }
at = "40s"
"""

START_TIMEOUT = 60.0
"""Seconds the run gets to say where its API listens."""


def start_run(folder: Path) -> tuple[subprocess.Popen[str], str]:
    """Start the fleet in its own process; its process and the API's base URL."""
    fleet = folder / "fleet.toml"
    fleet.write_text(FLEET)
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "start", "--toml", str(fleet), "--quiet",
         "--api", "127.0.0.1:0", "--ledger", str(folder / "run.db")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        found = re.search(r"dashboard on (http://\S+?)/ ", line)
        if found:
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, found.group(1)
    process.kill()
    raise SystemExit(f"sim start --api did not serve within {START_TIMEOUT:g} s")


def photograph(url: str, out: Path, fill: float, chromium: str) -> None:
    """Open the dashboard at ``url``, wait ``fill`` seconds, write ``out``."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(f"{url}/")
            page.wait_for_function(
                "() => document.getElementById('grid').getAttribute('data-count') === '200'",
                timeout=30_000)
            page.wait_for_timeout(fill * 1000)  # the charts fill at one point per poll
            page.select_option("#latency-action", "MeterValues")
            page.wait_for_timeout(2500)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard.png"))
    parser.add_argument("--fill", type=float, default=60.0,
                        help="seconds the charts fill before the picture (default 60)")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("no chromium on PATH: apt-get install chromium")
    with tempfile.TemporaryDirectory() as folder:
        process, url = start_run(Path(folder))
        try:
            photograph(url, args.out, args.fill, chromium)
        finally:
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(f"{url}/api/run/stop", timeout=5)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
