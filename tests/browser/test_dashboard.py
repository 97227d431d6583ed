"""The live dashboard (``GET /``) in headless Chromium.

Two kinds of test:

- Against a live run (``sim start --api``): the page loads with no console error and shows the
  fleet; a plug and a tag from a charger's drawer start a transaction that reaches the ledger
  as commands from the API; the fault form injects a fault that appears on the timeline; the
  actor tree shows a charger's crash (a run whose protocol codec fails on one status report,
  as a codec bug would: the fault command from the drawer makes that charger crash).
- Against the API contract alone (the page's own requests answered by the test through
  Playwright's routing, the page and its files served by a live run): a 10,000-charger grid,
  every panel filled from the documented JSON, the requests the buttons and the fault form
  send, a problem's ``detail`` shown to the user, and the token asked for once, then sent as
  a header and as ``access_token`` on the event stream.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.browser.conftest import START_TIMEOUT, console_errors

FLEET = """
[run]
name = "dashboard-live"
seed = 18

[csms.embedded]
accepted_tags = ["TAG-*"]

[[group]]
name = "street"
count = {count}
id = "CP-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 50

[group.config]
MeterValueSampleInterval = 5
HeartbeatInterval = 10
"""

WAIT = 30_000
"""Milliseconds a page gets to show what a live run did (a few polls of the page)."""


def fleet_text(count: int) -> str:
    return FLEET.format(count=count)


def ledger_rows(ledger: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(ledger)) as db:
        return list(db.execute(sql, args))


def stop_and_wait(url: str, ledger: Path) -> None:
    """Stop the run through the API and wait (at most 30 s) until its ledger says it ended."""
    assert httpx.post(f"{url}/api/run/stop", timeout=10).status_code == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.OperationalError):
            if ledger_rows(ledger, "SELECT status FROM runs")[-1][0] != "running":
                return
        time.sleep(0.1)  # (another process writes the ledger: nothing to wait on but the file)
    raise AssertionError("the run did not end within 30 s of POST /api/run/stop")


def open_dashboard(page: Any, url: str, chargers: int) -> None:
    page.goto(f"{url}/")
    page.wait_for_function(
        "n => document.getElementById('grid').getAttribute('data-count') === String(n)",
        arg=chargers, timeout=WAIT)


def click_charger(page: Any, identity: str) -> None:
    """Click ``identity``'s cell on the grid's canvas (where the page drew it)."""
    spot = page.evaluate("id => window.dashboard.cellCenter(id)", identity)
    assert spot is not None, f"{identity} is not on the grid"
    page.locator("#grid").click(position=spot)
    page.wait_for_selector(f"#drawer[data-charger='{identity}'] tr[data-connector='1']",
                           timeout=WAIT)


# --- against a live run ---------------------------------------------------------------------


def test_the_dashboard_shows_the_fleet(live_sim: Callable[..., str], page: Any) -> None:
    url = live_sim(fleet_text(24))
    open_dashboard(page, url, 24)
    page.wait_for_function(
        "() => Number(document.querySelector('[data-counter=connected]').dataset.value) === 24",
        timeout=WAIT)
    # connected, both connectors Available (the grid's states are polled apart from the run's)
    page.wait_for_selector("#legend span[data-state=available][data-count='24']", timeout=WAIT)
    legend = {span.get_attribute("data-state"): int(span.get_attribute("data-count") or 0)
              for span in page.locator("#legend span").all()}
    assert sum(legend.values()) == 24, legend
    # the charts fill as the stats come (one point per poll)
    page.wait_for_function(
        "() => Number(document.getElementById('chart-rate').dataset.points) >= 2"
        " && Number(document.getElementById('chart-fleet').dataset.points) >= 2", timeout=WAIT)
    # the event stream shows what happens from now on (here: a plug given through the API)
    page.wait_for_function("() => document.getElementById('events-state').textContent === 'live'",
                           timeout=WAIT)
    assert httpx.post(f"{url}/api/chargers/CP-5/commands", json={"do": "plug", "connector": 2},
                      timeout=10).status_code == 202
    page.wait_for_selector("#events li[data-kind=command]", timeout=WAIT)
    assert "plug connector 2 from api" in page.inner_text("#events li[data-kind=command]")
    page.wait_for_selector("#events li[data-kind=status]", timeout=WAIT)
    page.locator("#grid").hover(position=page.evaluate("id => window.dashboard.cellCenter(id)",
                                                       "CP-3"))
    assert page.locator("#grid-tip").inner_text().startswith("CP-3 ")
    assert console_errors(page) == []


def test_a_plug_from_the_drawer_starts_a_transaction_in_the_ledger(
    live_sim: Callable[..., str], page: Any, tmp_path: Path,
) -> None:
    url = live_sim(fleet_text(6))
    open_dashboard(page, url, 6)
    page.wait_for_function(
        "() => Number(document.querySelector('[data-counter=connected]').dataset.value) === 6",
        timeout=WAIT)
    click_charger(page, "CP-4")
    page.click("#drawer button[data-command=plug][data-connector='1']")
    page.wait_for_selector("#drawer tr[data-connector='1'][data-status=Preparing]", timeout=WAIT)
    page.click("#drawer button[data-command=present_tag][data-connector='1']")
    page.fill("#drawer-ask-input", "TAG-42")
    page.click("#drawer-ask button[type=submit]")
    page.wait_for_selector("#drawer tr[data-connector='1'][data-status=Charging]", timeout=WAIT)
    assert console_errors(page) == []

    ledger = tmp_path / "run.db"
    stop_and_wait(url, ledger)
    commands = [(charger, json.loads(data)) for charger, data in ledger_rows(
        ledger, "SELECT charger, data FROM events WHERE kind = 'command' ORDER BY seq")]
    assert [(c, d["command"], d.get("source")) for c, d in commands] == [
        ("CP-4", "plug", "api"), ("CP-4", "present_tag", "api"),
        (None, "stop_run", "api")], commands  # (the test's own stop, through the API)
    started = ledger_rows(ledger, "SELECT connector, data FROM events "
                                  "WHERE kind = 'tx_started' AND charger = 'CP-4'")
    assert [(c, json.loads(d)["id_tag"]) for c, d in started] == [(1, "TAG-42")]
    sent = ledger_rows(ledger, "SELECT data FROM events WHERE kind = 'frame_out' "
                               "AND charger = 'CP-4' AND data LIKE '%StartTransaction%'")
    assert len(sent) == 1 and "TAG-42" in json.loads(sent[0][0])["raw"]


def test_the_fault_form_puts_a_fault_on_the_timeline(
    live_sim: Callable[..., str], page: Any, tmp_path: Path,
) -> None:
    url = live_sim(fleet_text(6))
    open_dashboard(page, url, 6)
    page.wait_for_selector("#fault-name option[value=connector_fault]", state="attached",
                           timeout=WAIT)
    page.select_option("#fault-name", "connector_fault")
    page.fill("#target-ids", "CP-2, CP-5")
    page.fill("#fault-for", "1m")
    page.click("#fault-inject")
    page.wait_for_selector("#fault-timeline li[data-fault=connector_fault]", timeout=WAIT)
    assert "injected connector_fault" in page.inner_text("#fault-result")
    row = page.locator("#fault-timeline li[data-fault=connector_fault]").first
    assert "2 charger(s)" in row.inner_text()
    # a bad request is refused with the problem's detail shown
    page.fill("#target-ids", "")
    page.fill("#target-group", "nowhere")
    page.click("#fault-inject")
    page.wait_for_selector("#fault-result[data-error]", timeout=WAIT)
    refused = httpx.post(f"{url}/api/chaos", timeout=10, json={
        "fault": "connector_fault", "target": {"group": "nowhere"}, "for": "1m"})
    assert refused.status_code == 400
    assert page.inner_text("#fault-result") == refused.json()["detail"]
    problems = [e for e in console_errors(page) if "400" not in e]  # (Chromium logs the 400)
    assert problems == []

    ledger = tmp_path / "run.db"
    stop_and_wait(url, ledger)
    faults = ledger_rows(ledger, "SELECT charger, data FROM events WHERE kind = 'fault'")
    assert sorted(c for c, d in faults if json.loads(d)["fault"] == "connector_fault") == [
        "CP-2", "CP-5"]
    assert {json.loads(d).get("source") for _, d in faults} == {"api"}


CRASHING_RUN = r"""
import dataclasses, sys
import trio
from simulator.api.server import ApiService
from simulator.config import parse_fleet
from simulator.ocpp.v16 import PLUGIN
from simulator.runtime import open_simulation

def encode(payload):
    # a codec bug: the charger's actor fails on one status report, and is restarted
    if getattr(payload, "error_code", None) == "GroundFailure":
        raise RuntimeError("the codec cannot encode GroundFailure")
    return PLUGIN.encode_payload(payload)

async def main():
    fleet = parse_fleet(open(sys.argv[1]).read(), overrides={"run.ledger": sys.argv[2]})
    service = ApiService(fleet.api, notify=lambda line: print(line, file=sys.stderr, flush=True))
    plugin = dataclasses.replace(PLUGIN, encode_payload=encode)
    async with open_simulation(fleet, plugin=plugin, alongside=[service]) as sim:
        await sim.wait_finished()

trio.run(main)
"""


@pytest.fixture
def crashing_sim(tmp_path: Path) -> Iterator[str]:
    """A run (real time, its own process) whose codec fails on a ``GroundFailure`` status
    report; its base URL."""
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(fleet_text(4) + '\n[api]\nlisten = "127.0.0.1:0"\n')
    process = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RUN, str(fleet), str(tmp_path / "run.db")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    url = None
    deadline = time.monotonic() + START_TIMEOUT
    while url is None and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        found = re.search(r"dashboard on (http://\S+?)/ ", line)
        url = found.group(1) if found else None
    try:
        assert url is not None, "the crashing run did not serve"
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield url
    finally:
        if process.poll() is None and url is not None:
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(f"{url}/api/run/stop", timeout=5)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_actor_tree_shows_a_chargers_crash(crashing_sim: str, page: Any) -> None:
    open_dashboard(page, crashing_sim, 4)
    page.wait_for_function(
        "() => Number(document.querySelector('[data-counter=connected]').dataset.value) === 4",
        timeout=WAIT)
    click_charger(page, "CP-3")
    page.click("#drawer button[data-command=fault][data-connector='2']")
    page.fill("#drawer-ask-input", "GroundFailure")
    page.click("#drawer-ask button[type=submit]")
    page.click("#tree-section > summary")
    crash = page.locator("#crashes [data-crashed=CP-3] .crash").first
    crash.wait_for(timeout=WAIT)
    assert "RuntimeError: the codec cannot encode GroundFailure" in crash.inner_text()
    crash.locator("summary").click()
    assert "Traceback" in crash.locator("pre").inner_text()
    # the tree itself opens down to the supervisor that restarted it
    supervisor = page.locator("#tree .sup.crashed").first
    supervisor.wait_for(timeout=WAIT)
    assert "restarts 1" in supervisor.inner_text()
    page.wait_for_selector("#drawer[data-charger=CP-3][data-link=connected]", timeout=WAIT)
    assert console_errors(page) == []


# --- against the contract alone -------------------------------------------------------------


class FakeApi:
    """Answers the page's ``/api/...`` requests with documents of the contract: ``size``
    chargers, stats that grow with each poll, one crash in the tree; records what the page
    posts. ``token``: every request must carry it (401 problem otherwise)."""

    def __init__(self, size: int, token: str | None = None) -> None:
        self.size = size
        self.token = token
        self.polls = 0
        self.posted: list[tuple[str, Any]] = []
        self.seen: list[tuple[str, dict[str, list[str]], str | None]] = []

    def ids(self) -> list[str]:
        return [f"CP-{n}" for n in range(1, self.size + 1)]

    def answer(self, route: Any) -> None:
        request = route.request
        parts = urlsplit(request.url)
        query = parse_qs(parts.query)
        auth = request.headers.get("authorization")
        self.seen.append((parts.path, query, auth))
        if self.token is not None:
            given = auth or ("Bearer " + query["access_token"][0] if "access_token" in query
                             else None)
            if given != f"Bearer {self.token}":
                route.fulfill(status=401, content_type="application/problem+json",
                              body=json.dumps({"status": 401, "title": "Unauthorized",
                                               "detail": "this API needs its bearer token"}))
                return
        if parts.path == "/api/events":
            route.fulfill(status=200, content_type="text/event-stream", body=self.stream(query))
            return
        status, body = self.document(request.method, parts.path, request.post_data)
        route.fulfill(status=status, body=json.dumps(body),
                      content_type="application/json" if status < 400
                      else "application/problem+json")

    def stream(self, query: dict[str, list[str]]) -> str:
        events = [("status", {"kind": "status", "t": 5.0, "charger": "CP-2", "connector": 1,
                              "old": "Available", "new": "Preparing"}),
                  ("fault", {"kind": "fault", "t": 6.0, "charger": "CP-9", "fault": "latency",
                             "injection": "7.0", "source": "chaos"}),
                  ("fault", {"kind": "fault", "t": 6.0, "charger": "CP-1", "fault": "latency",
                             "injection": "api1.0", "source": "api"}),
                  ("dropped", {"dropped": 5})]
        return "retry: 600000\n\n" + "".join(
            f"event: {kind}\ndata: {json.dumps(data)}\n\n" for kind, data in events)

    def document(self, method: str, path: str, data: str | None) -> tuple[int, Any]:
        if method == "POST":
            body = json.loads(data or "{}")
            self.posted.append((path, body))
            if path.endswith("/commands"):
                if body["do"] == "stop":
                    return 409, {"status": 409, "detail": "no transaction on CP-7 connector 1"}
                return 202, {"command": body["do"], "charger": path.split("/")[3],
                             "connectors": [body.get("connector", 1)]}
            if path == "/api/chaos":
                if body.get("probability", 1) > 1:
                    return 400, {"status": 400, "detail": "probability: must be within 0..1"}
                return 201, self.fault_row("api2", body["fault"], "active")
        self.polls += 1
        size = self.size
        if path == "/api/run":
            return 200, {
                "name": "fake", "seed": 1, "status": "running", "started": "2026-12-07T00:00:00Z",
                "elapsed": 10.0 + self.polls, "duration": None, "time": "real",
                "config_sha256": "0" * 64, "ledger": "x.db", "run_id": 1,
                "fleet": {"size": size, "started": size, "connected": size - 1000,
                          "in_transaction": 4000},
                "live": {"t": 1.0, "events": 100, "chargers_connected": size - 1000,
                         "chargers_in_transaction": 4000, "transactions_open": 4000,
                         "frames_in": 70000, "frames_out": 80000, "messages_in_per_s": 812.5,
                         "messages_out_per_s": 830.0, "call_errors_received": 3,
                         "call_errors_sent": 0, "timeouts": 2, "connects": size,
                         "reconnects": 9, "connect_failures": 0, "crashes": 1}}
        if path == "/api/chargers/states":
            return 200, {"ids": self.ids(), "codes": [n % 9 for n in range(size)],
                         "legend": {str(c): name for c, name in enumerate((
                             "not_started", "connecting", "available", "preparing",
                             "charging", "suspended", "faulted", "restarting", "finished"))}}
        if path == "/api/stats":
            t = 2.0 * self.polls
            return 200, {"t": t, "exchanges": int(100 * t), "callerrors": {}, "faults": {},
                         "actions": {name: {"sent": int(k * t), "received": int(k * t),
                                            "errors": 0, "p50": 0.01 * k, "p95": 0.03 * k,
                                            "count": int(k * t)}
                                     for k, name in ((5, "Heartbeat"), (20, "MeterValues"),
                                                     (3, "StatusNotification"))}}
        if path == "/api/chaos":
            return 200, {"active": [self.fault_row("api1", "latency", "active")],
                         "scheduled": [],
                         "ended": [self.fault_row("chaos0", "disconnect", "ended")]}
        if path == "/api/chaos/catalog":
            return 200, [
                {"fault": "latency", "family": "transport", "description": "adds delay",
                 "target": "charger", "params": [
                     {"name": "delay", "kind": "duration", "default": "200ms",
                      "description": "added to each frame"},
                     {"name": "jitter", "kind": "float", "default": 0.1, "description": ""}]},
                {"fault": "disconnect", "family": "transport", "description": "closes",
                 "target": "charger", "params": [
                     {"name": "code", "kind": "int", "default": 1006, "description": "",
                      "choices": [1000, 1001, 1006]}]}]
        if path == "/api/tree":
            def task(name: str, *children: Any, charger: str | None = None,
                     supervisor: Any = None) -> dict[str, Any]:
                return {"name": name, "kind": "task", "charger": charger, "waits_on": None,
                        "children": list(children), "supervisor": supervisor}
            crash = {"t": 7.5, "error": "RuntimeError: boom in receive",
                     "traceback": "Traceback (most recent call last):\nRuntimeError: boom"}
            return 200, task("<init>", task("fleet", *(
                task(f"charger {i}", task("receive"), charger=i, supervisor={
                    "charger": i, "restarts": 1 if i == "CP-2" else 0,
                    "crashes": [crash] if i == "CP-2" else []})
                for i in self.ids()[:3])))
        if path.startswith("/api/chargers/"):
            identity = path.rsplit("/", 1)[1]
            return 200, {
                "id": identity, "group": "street", "link": "connected", "boot": "Accepted",
                "restarts": 0, "outbox": 0, "last_crash": None,
                "configuration": [{"key": "HeartbeatInterval", "value": "60", "readonly": False}],
                "frames": [{"t": 3.0, "direction": "out", "action": "Heartbeat",
                            "message_type": 2, "raw": '[2,"1","Heartbeat",{}]'}],
                "connectors": [{"id": 1, "status": "Charging", "error_code": "NoError",
                                "transaction_id": 11, "energy_wh": 2500,
                                "transaction": {"id": 11, "id_tag": "TAG-1", "meter_start": 0,
                                                "started": "2026-12-07T00:00:01Z"}}]}
        return 404, {"status": 404, "detail": f"no {path}"}

    @staticmethod
    def fault_row(identity: str, fault: str, state: str) -> dict[str, Any]:
        return {"id": identity, "fault": fault, "family": "transport", "target": {},
                "chargers": ["CP-1", "CP-2"], "at": 4.0, "every": None, "for": 30.0,
                "until": 34.0 if state != "ended" else 9.0, "params": {}, "state": state,
                "source": "api"}


def test_the_page_draws_every_panel_of_the_contract(
    live_sim: Callable[..., str], page: Any,
) -> None:
    url = live_sim(fleet_text(1))
    fake = FakeApi(10_000)
    page.route(re.compile(r".*/api/(?!docs|openapi).*"), fake.answer)
    open_dashboard(page, url, 10_000)
    # every charger is a cell of the canvas; the legend counts them by state
    legend = {span.get_attribute("data-state"): span.get_attribute("data-count")
              for span in page.locator("#legend span").all()}
    assert legend["charging"] == "1111" and legend["not_started"] == "1112", legend
    assert page.locator("[data-counter=connected]").get_attribute("data-value") == "9000"
    draws = [page.evaluate("() => window.dashboard.redraw()") for _ in range(10)]
    assert sorted(draws)[5] < 100, draws  # ms to lay out and draw 10,000 cells: fluid
    page.wait_for_function(
        "() => Number(document.getElementById('chart-rate').dataset.points) >= 2", timeout=WAIT)
    assert page.locator("#latency-action option").count() == 4  # (all) and three actions
    page.select_option("#latency-action", "MeterValues")
    assert "MeterValues p95" in page.inner_text("#chart-latency")
    # the faults: the rows of GET /api/chaos and one seen only on the stream (rule 7 of the
    # fleet file); the stream's hit of api1 is that row's, not another line
    page.wait_for_selector("#fault-timeline li[data-id=chaos7]", timeout=WAIT)
    assert page.locator("#fault-timeline li[data-id=api1] button").count() == 1  # active: "end"
    assert page.locator("#fault-timeline li[data-id=chaos0] button").count() == 0
    assert page.locator("#fault-timeline li").count() == 3
    # the stream: events newest first, and the dropped notice
    page.wait_for_selector("#events li.dropped", timeout=WAIT)
    assert "dropped 5 events" in page.inner_text("#events li.dropped")
    assert page.locator("#events li[data-kind]").first.get_attribute("data-kind") == "dropped"
    # the tree, with the crash and its traceback
    page.click("#tree-section > summary")
    page.wait_for_selector("#crashes [data-crashed=CP-2]", timeout=WAIT)
    assert "RuntimeError: boom in receive" in page.inner_text("#tree")
    assert page.locator("#tree .sup.crashed").inner_text() == "restarts 1 · 1 crash(es)"

    # the drawer and its commands
    click_charger(page, "CP-7")
    assert "TAG-1" in page.inner_text("#drawer tr[data-connector='1']")
    page.click("#drawer button[data-command=plug][data-connector='1']")
    page.wait_for_function("() => document.getElementById('drawer-result').textContent"
                           ".startsWith('plug sent to CP-7')", timeout=WAIT)
    page.click("#drawer button[data-command=present_tag][data-connector='1']")
    page.fill("#drawer-ask-input", "TAG-77")
    page.click("#drawer-ask button[type=submit]")
    page.wait_for_function("() => document.getElementById('drawer-result').textContent"
                           ".startsWith('present_tag sent')", timeout=WAIT)
    page.click("#drawer button[data-command=stop][data-connector='1']")
    page.wait_for_selector("#drawer-result[data-error]", timeout=WAIT)
    assert page.inner_text("#drawer-result") == "no transaction on CP-7 connector 1"
    # the fault form, from the catalog
    page.select_option("#fault-name", "disconnect")
    assert page.input_value("#fault-params [name=code]") == "1006"
    page.select_option("#fault-params [name=code]", "1001")
    page.fill("#target-group", "street")
    page.fill("#fault-every", "30s")
    page.click("#fault-inject")
    page.wait_for_function("() => document.getElementById('fault-result').textContent"
                           ".startsWith('injected disconnect')", timeout=WAIT)
    assert fake.posted == [
        ("/api/chargers/CP-7/commands", {"do": "plug", "connector": 1}),
        ("/api/chargers/CP-7/commands", {"do": "present_tag", "connector": 1,
                                         "params": {"id_tag": "TAG-77"}}),
        ("/api/chargers/CP-7/commands", {"do": "stop", "connector": 1}),
        ("/api/chaos", {"fault": "disconnect", "target": {"group": "street"}, "every": "30s",
                        "params": {"code": 1001}}),
    ]
    # a 10,000-charger tree is fetched when the section opens and on "refresh", not every 5 s
    assert [path for path, _, _ in fake.seen].count("/api/tree") == 1
    with page.expect_request(re.compile(r".*/api/tree$"), timeout=WAIT):
        page.click("#tree-refresh")
    # nothing but the refused stop (a 409 Chromium logs) went wrong
    assert [e for e in console_errors(page) if "409" not in e] == []


def test_the_page_asks_for_the_token_once_and_sends_it(
    live_sim: Callable[..., str], page: Any,
) -> None:
    url = live_sim(fleet_text(1))
    fake = FakeApi(50, token="t0ken-for-the-page")
    page.route(re.compile(r".*/api/(?!docs|openapi).*"), fake.answer)
    page.goto(f"{url}/")
    page.wait_for_selector("#token-dialog[open]", timeout=WAIT)
    page.fill("#token-input", "t0ken-for-the-page")
    page.click("#token-form button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('grid').getAttribute('data-count') === '50'",
        timeout=WAIT)
    page.wait_for_selector("#events li.dropped", timeout=WAIT)
    assert page.evaluate("() => sessionStorage.getItem('sim-api-token')") == "t0ken-for-the-page"
    assert page.locator("#token-dialog[open]").count() == 0
    after = fake.seen[[auth for _, _, auth in fake.seen].index("Bearer t0ken-for-the-page"):]
    streams = [query for path, query, _ in after if path == "/api/events"]
    assert streams and all(q["access_token"] == ["t0ken-for-the-page"] for q in streams)
    assert all(auth == "Bearer t0ken-for-the-page" for path, _, auth in after
               if path != "/api/events")
    # the 401s before the token (which Chromium logs) are all that went wrong
    assert [e for e in console_errors(page) if "401" not in e] == []
