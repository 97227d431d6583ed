"""The dashboard's page logic against the API contract alone: the page, its files and every
``/api/...`` request are answered through Playwright's routing (no run, no server), from a
fake origin. Where the page's polls matter, Playwright's clock drives them: the test moves
the page's time on, the requests it then makes are answered at once. The one exception runs
on real time for a few seconds: the event stream's reconnections are the browser's own
timers, which the clock does not drive.

- The fault form leaves an optional choice param (no default) out of the request unless one is
  chosen, and will not send a required one left unchosen.
- GET /api/chaos is asked every CHAOS_EVERY whatever the stream brings; the stream's faults
  are listed in between.
- Every series of the charts is as long as their time axis, whenever an action first answers;
  an action's p50 / p95 are drawn only while it has new answers.
- A recurring fault is one mark per firing on the charts, not one span.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from simulator.web import asset
from tests.browser.conftest import console_errors
from tests.browser.test_dashboard import FakeApi

ORIGIN = "http://dashboard.test"
"""The page's origin: nothing listens there, the routing answers everything."""

WAIT = 10_000
"""Milliseconds a page gets to do what a test waits for."""

CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}

MALFORMED_JSON = {
    "fault": "malformed_json", "family": "protocol", "description": "bad JSON",
    "target": "charger", "params": [
        {"name": "count", "kind": "int", "default": 1, "description": ""},
        {"name": "action", "kind": "str", "default": None, "description": "absent: any",
         "choices": ["Heartbeat", "MeterValues"]}]}
WAVE = {
    "fault": "wave", "family": "fleet", "description": "rolls a fault", "target": "fleet",
    "params": [{"name": "fault", "kind": "str", "default": None, "required": True,
                "description": "", "choices": ["partition", "reset"]}]}


@pytest.fixture
def open_page(page: Any) -> Callable[[FakeApi], None]:
    """``open_page(fake)``: the dashboard from :data:`ORIGIN`, its files from the package,
    its API answered by ``fake``."""

    def files(route: Any) -> None:
        path = urlsplit(route.request.url).path
        if path.startswith("/api/"):
            fake.answer(route)
            return
        name = "dashboard.html" if path == "/" else path.removeprefix("/static/")
        suffix = name[name.rfind("."):]
        route.fulfill(status=200, body=asset(name), content_type=CONTENT_TYPES[suffix])

    fake = FakeApi(0)

    def open_with(given: FakeApi) -> None:
        nonlocal fake
        fake = given
        page.route(f"{ORIGIN}/**", files)
        page.goto(f"{ORIGIN}/")
        page.wait_for_function("() => document.getElementById('grid').dataset.count"
                               f" === '{given.size}'", timeout=WAIT)

    return open_with


def test_the_fault_form_sends_an_optional_choice_only_when_chosen(
    page: Any, open_page: Callable[[FakeApi], None],
) -> None:
    fake = CatalogApi(10)
    open_page(fake)
    page.wait_for_selector("#fault-name option[value=malformed_json]", state="attached",
                           timeout=WAIT)
    page.select_option("#fault-name", "malformed_json")
    action = "#fault-params [name=action]"
    assert page.input_value(action) == ""
    assert page.locator(f"{action} option").first.inner_text() == "(any)"
    for chosen in ("", "MeterValues"):
        page.select_option(action, chosen)
        inject(page)
    assert [body["params"] for _, body in fake.posted] == [
        {"count": 1}, {"count": 1, "action": "MeterValues"}]
    # a required choice with no default must be chosen: the form is not sent
    page.select_option("#fault-name", "wave")
    assert page.locator("#fault-params [name=fault] option").first.inner_text() == "(choose)"
    page.click("#fault-inject")
    assert page.evaluate("() => document.getElementById('fault-form').checkValidity()") is False
    page.select_option("#fault-params [name=fault]", "reset")
    inject(page)
    assert len(fake.posted) == 3 and fake.posted[-1][1]["params"] == {"fault": "reset"}
    assert console_errors(page) == []


def inject(page: Any) -> None:
    """Send the fault form and wait for its answer."""
    page.evaluate("() => { document.getElementById('fault-result').textContent = ''; }")
    page.click("#fault-inject")
    page.wait_for_function("() => document.getElementById('fault-result').textContent"
                           ".startsWith('injected')", timeout=WAIT)


class CatalogApi(FakeApi):
    """The fake API, with a protocol fault whose ``action`` is optional and a wave whose
    ``fault`` is required."""

    def document(self, method: str, path: str, data: str | None) -> tuple[int, Any]:
        if method == "GET" and path == "/api/chaos/catalog":
            return 200, [MALFORMED_JSON, WAVE]
        return super().document(method, path, data)


class StreamingApi(FakeApi):
    """The fake API whose event stream brings a new fault (another fleet rule) on every
    connection and asks the page to come back 100 ms later; the time of every GET
    /api/chaos is kept (``time.monotonic()``, s)."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.faults = 0
        self.chaos_at: list[float] = []

    def stream(self, query: dict[str, list[str]]) -> str:
        self.faults += 1
        n = self.faults
        event = {"kind": "fault", "t": float(n), "charger": "CP-1", "fault": "latency",
                 "injection": f"{100 + n}.0", "source": "chaos"}
        return f"retry: 100\n\nevent: fault\ndata: {json.dumps(event)}\n\n"

    def answer(self, route: Any) -> None:
        if route.request.method == "GET" and urlsplit(route.request.url).path == "/api/chaos":
            self.chaos_at.append(time.monotonic())
        super().answer(route)


def test_the_fault_list_is_polled_every_5_s_whatever_the_stream_brings(
    page: Any, open_page: Callable[[FakeApi], None],
) -> None:
    fake = StreamingApi(10)
    began = time.monotonic()
    open_page(fake)
    # a new fault comes on the stream every ~100 ms (on every other connection: the list's
    # stream gets the others); the page draws them every 500 ms, a few times here
    page.wait_for_function(
        "() => document.querySelectorAll('#fault-timeline li').length >= 25", timeout=30_000)
    spent = time.monotonic() - began
    assert page.locator("#fault-timeline li .state", has_text="seen").count() >= 22
    assert fake.chaos_at, "GET /api/chaos was never asked"
    gaps = [b - a for a, b in itertools.pairwise(fake.chaos_at)]
    assert all(gap >= 4.9 for gap in gaps), (gaps, spent)
    assert len(fake.chaos_at) <= 1 + spent // 5, (fake.chaos_at, spent)
    assert console_errors(page) == []


class GrowingApi(FakeApi):
    """The fake API whose stats bring one action more on each of the first polls (so each
    appears after the charts began), MeterValues answered only until the fourth."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.stats = 0

    def document(self, method: str, path: str, data: str | None) -> tuple[int, Any]:
        if path != "/api/stats":
            return super().document(method, path, data)
        self.stats += 1
        n = self.stats
        actions = {}
        for k, name in enumerate(("Heartbeat", "MeterValues", "StatusNotification")):
            if n > k:
                answers = min(n, 4) if name == "MeterValues" else n
                actions[name] = {"sent": 10 * n, "received": 10 * n, "errors": 0,
                                 "p50": 0.01 * (k + 1), "p95": 0.03 * (k + 1),
                                 "count": 3 * answers}
        return 200, {"t": 2.0 * n, "exchanges": 100 * n, "callerrors": {}, "faults": {},
                     "actions": actions}


def test_every_series_follows_the_time_axis_and_stale_latency_is_not_drawn(
    page: Any, open_page: Callable[[FakeApi], None],
) -> None:
    fake = GrowingApi(10)
    page.clock.install()
    open_page(fake)
    for polls in range(2, 7):
        page.clock.run_for(2100)  # the stats are polled every 2 s
        page.wait_for_function("n => document.getElementById('chart-rate').dataset.points"
                               " === String(n)", arg=polls - 1, timeout=WAIT)
    lengths = page.evaluate("""() => SimCharts.instances
        .filter(c => c.element.id !== 'chart-fleet')
        .map(c => [c.element.id, c.plot.data.map(values => values.length)])""")
    assert {chart for chart, _ in lengths} == {"chart-rate", "chart-latency"}
    for chart, data in lengths:
        assert len(set(data)) == 1 and data[0] == 5, (chart, data)  # 6 polls: 5 points
    page.select_option("#latency-action", "MeterValues")
    p50 = page.evaluate("() => SimCharts.instances.filter(c => c.element.id === 'chart-latency')"
                        "[0].plot.data[1]")
    # answers at polls 2, 3 and 4 (the first point is poll 2's), none after
    assert p50 == [0.02, 0.02, 0.02, None, None], p50
    assert console_errors(page) == []


class RecurringApi(FakeApi):
    """The fake API with a fleet rule firing every ``every`` s from 2 s, each firing lasting
    0.2 s, and an API fault that acted once, at 5.5 s."""

    every = 0.5

    def document(self, method: str, path: str, data: str | None) -> tuple[int, Any]:
        if method == "GET" and path == "/api/chaos":
            row = {**self.fault_row("chaos3", "partition", "active"), "at": 2.0,
                   "every": self.every, "for": 0.2, "until": 1000.0}
            once = {**self.fault_row("api1", "reset", "ended"), "at": 5.5, "for": None,
                    "until": None}
            return 200, {"active": [row], "scheduled": [], "ended": [once]}
        return super().document(method, path, data)


def fault_marks(page: Any, open_page: Callable[[FakeApi], None], fake: FakeApi,
                ) -> tuple[list[dict[str, Any]], float, float]:
    """The marks the page lays over its charts once it has drawn ``fake``'s faults and two
    stats samples, and the run's times they cover."""
    page.clock.install()
    open_page(fake)
    page.wait_for_selector("#fault-timeline li[data-id=chaos3]", timeout=WAIT)
    for points in (1, 2):
        page.clock.run_for(2100)  # the stats are polled every 2 s
        page.wait_for_function("n => document.getElementById('chart-rate').dataset.points"
                               " === String(n)", arg=points, timeout=WAIT)
    drawn = page.evaluate("() => window.dashboard.faults()")
    return drawn["marks"], drawn["from"], drawn["until"]


def test_a_recurring_fault_is_one_mark_per_firing(
    page: Any, open_page: Callable[[FakeApi], None],
) -> None:
    marks, start, end = fault_marks(page, open_page, RecurringApi(10))
    assert "every 500 ms" in page.inner_text("#fault-timeline li[data-id=chaos3]")
    firings = [m for m in marks if m["label"] == "partition"]
    assert len(firings) >= 2, (firings, start, end)
    assert all(m["end"] == pytest.approx(m["t"] + 0.2) for m in firings), firings
    times = [m["t"] for m in firings]
    assert all(b - a == pytest.approx(0.5) for a, b in itertools.pairwise(times))
    assert times[0] <= start + 0.5 and end - 0.5 < times[-1] <= end, (times, start, end)
    assert [(m["t"], m.get("end")) for m in marks if m["label"] == "reset"] == [(5.5, None)]
    assert console_errors(page) == []


def test_a_fault_firing_too_often_to_draw_is_one_line(
    page: Any, open_page: Callable[[FakeApi], None],
) -> None:
    fake = RecurringApi(10)
    fake.every = 0.001  # thousands of firings in view
    marks, _, _ = fault_marks(page, open_page, fake)
    [line] = [m for m in marks if m["label"].startswith("partition")]
    assert line["label"] == "partition every 1 ms" and line.get("end") is None
    assert console_errors(page) == []
