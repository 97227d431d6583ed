"""The HTML report (``sim report LEDGER --html FILE``): one self-contained page with the summary,
the verdicts, the charts' data (levels and rates over time, faults, latency bins per action) and
the error tables; no URL, no fetch; its size follows the run's length, not its frame count."""

from __future__ import annotations

import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import trio

from simulator.events import (
    BootResult,
    Connected,
    Crashed,
    Disconnected,
    Event,
    FaultInjected,
    FrameIn,
    FrameOut,
    TransactionStarted,
    TransactionStopped,
)
from simulator.ledger import RunStatus, finish_run
from simulator.ledger.writer import RunSpec, run_ledger_writer
from simulator.report import CLOCK_ORIGIN_SUMMARY_KEY, summarize
from simulator.report.html import render_html
from simulator.report.timeline import (
    MAX_BUCKETS,
    MAX_FAULT_MARKS,
    Series,
    bucket_width,
    chart_data,
)
from tests.report.helpers import T0, WALL0, fleet
from tests.test_cli import assert_one_clear_line, sim

HOSTILE = "</script><script>window.pwned = 1</script>"
"""An error line no page may run."""

SECTIONS = ("summary", "verdicts", "timeline", "latency", "errors", "faults")


def _frames(t: float, charger: str, uid: str, action: str, latency: float) -> list[Event]:
    return [
        FrameOut(t=T0 + t, charger=charger, raw=f'[2, "{uid}", "{action}", {{}}]',
                 message_type=2, unique_id=uid, action=action),
        FrameIn(t=T0 + t + latency, charger=charger, raw=f'[3, "{uid}", {{}}]', message_type=3,
                unique_id=uid, action=action, latency=latency),
    ]


STORY: list[Event] = [
    Connected(t=T0 + 1, charger="A", url="ws://cs"),
    Connected(t=T0 + 2, charger="B", url="ws://cs"),
    *_frames(2.1, "B", "b1", "BootNotification", 1.5),
    BootResult(t=T0 + 3.6, charger="B", status="Accepted", interval=60),
    *(event for i in range(4) for event in _frames(3 + i, "A", f"h{i}", "Heartbeat", 0.003)),
    TransactionStarted(t=T0 + 5, charger="A", connector=1, id_tag="T1", meter_start=0,
                       local_id=1),
    TransactionStarted(t=T0 + 10, charger="B", connector=1, id_tag="T2", meter_start=0,
                       local_id=1),
    FrameOut(t=T0 + 12, charger="A", raw='[2, "d1", "DataTransfer", {}]', message_type=2,
             unique_id="d1", action="DataTransfer"),
    FrameIn(t=T0 + 12.02, charger="A", raw=json.dumps([4, "d1", "NotImplemented", "", {}]),
            message_type=4, unique_id="d1", action="DataTransfer", latency=0.02),
    FrameIn(t=T0 + 13, charger="B", raw='[2, "c1", "Reset", {"type": "Soft"}]', message_type=2,
            unique_id="c1", action="Reset"),
    FrameOut(t=T0 + 13, charger="B", raw=json.dumps([4, "c1", "NotSupported", "", {}]),
             message_type=4, unique_id="c1", action="Reset"),
    FaultInjected(t=T0 + 20, charger="B", fault="partition", family="transport",
                  injection="i1", until=T0 + 40),
    Disconnected(t=T0 + 20, charger="B", code=1006),
    TransactionStopped(t=T0 + 30, charger="A", connector=1, local_id=1, transaction_id=7,
                       meter_stop=1500, reason="Local"),
    Crashed(t=T0 + 35, charger="A", error=f"ValueError: {HOSTILE}", traceback="...",
            restart_in=1.0),
    Connected(t=T0 + 41, charger="B", url="ws://cs"),
    Connected(t=T0 + 42, charger="A", url="ws://cs"),  # after its crash: no disconnection
    *_frames(59, "A", "h9", "Heartbeat", 0.003),
]


async def write_ledger(path: Path, events: list[Event], *, duration: str = "60s",
                       status: str = RunStatus.COMPLETED) -> None:
    """``events`` as one run of ``path`` that ended with ``status`` (clock origin ``T0``), with
    no verdicts stored (the runtime stores them only for a fleet with ``[[expect]]``)."""
    run = RunSpec(name="story", seed=7, config_text=fleet(duration), config_sha256="ab" * 32,
                  version="9.9.9", t0=T0, wall0=WALL0)
    send, receive = trio.open_memory_channel[Event](len(events) + 1)
    for event in events:
        send.send_nowait(event)
    send.close()
    with trio.fail_after(60):
        stats = await run_ledger_writer(path, receive, run=run, batch_size=1000, finish=False)
    finish_run(path, stats.run_id, status, 0, {CLOCK_ORIGIN_SUMMARY_KEY: T0})


async def story_ledger(path: Path) -> Path:
    """The ledger of :data:`STORY` at ``path`` (shared with the browser test)."""
    await write_ledger(path, STORY)
    return path


def level_at(series: Series, values: list[int], t: float) -> int:
    """The level ``values`` held at ``t`` s (a multiple of the bucket)."""
    return values[series.t_s.index(t)]


class _Links(HTMLParser):
    """Every attribute of the page's elements that makes a browser fetch something."""

    FETCHING = frozenset({"src", "href", "srcset", "poster", "data", "action", "background"})

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str | None]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.found += [(tag, name, value) for name, value in attrs if name in self.FETCHING]


def parsed(page: str) -> _Links:
    """``page`` read as a browser reads it (scripts and styles as text)."""
    links = _Links()
    links.feed(page)
    links.close()
    return links


def page_data(page: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="sim-report-data">(.*?)</script>',
                      page, re.S)
    assert found is not None
    data = json.loads(found.group(1))
    assert isinstance(data, dict)
    return data


async def test_the_charts_follow_each_charger_and_bin_each_answer(tmp_path: Path) -> None:
    charts = chart_data(await story_ledger(tmp_path / "r.db"))
    s = charts.series
    assert s.bucket_s == 1.0 and s.t_s[:3] == [0.0, 1.0, 2.0]
    assert [level_at(s, s.connected, t) for t in (1, 2, 3, 20, 21, 41, 42, 43, 60)] == \
        [0, 1, 2, 2, 1, 1, 2, 2, 2]  # A's reconnection after its crash counts once
    assert [level_at(s, s.transactions_running, t) for t in (5, 6, 11, 30, 31, 60)] == \
        [0, 1, 2, 2, 1, 1]
    assert s.frames_sent_per_s[s.t_s.index(4)] == 1.0  # the heartbeat at 3 s
    assert sum(s.frames_sent_per_s) == 8 and sum(s.frames_received_per_s) == 8
    [mark] = charts.faults
    assert (mark.fault, mark.t_s, mark.until_s, mark.charger) == ("partition", 20.0, 40.0, "B")
    assert charts.bins_ms == [5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]
    counts = {h.action: h.counts for h in charts.latencies}
    assert counts == {"BootNotification": [0, 0, 0, 0, 0, 0, 0, 0, 1],
                      "DataTransfer": [0, 0, 1, 0, 0, 0, 0, 0, 0],
                      "Heartbeat": [5, 0, 0, 0, 0, 0, 0, 0, 0]}
    assert [(e.code, e.action, e.received, e.sent) for e in charts.errors] == [
        ("NotImplemented", "DataTransfer", 1, 0), ("NotSupported", "Reset", 0, 1)]
    assert [c.charger for c in charts.crashes] == ["A"]
    assert charts.crashes_by_error == {f"ValueError: {HOSTILE}": 1}


async def test_the_page_is_self_contained_and_holds_every_section(tmp_path: Path) -> None:
    path = await story_ledger(tmp_path / "r.db")
    page = render_html(summarize(path), chart_data(path))
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in page
    assert re.search(r"[a-z][a-z0-9+.-]*://", page, re.I) is None  # no URL at all
    elements = parsed(page)
    assert elements.found == [] and "@import" not in page and "url(" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "uPlot" in page and "SimCharts" in page  # the libraries are inlined
    assert HOSTILE not in page and "ValueError: &lt;/script&gt;" in page
    assert elements.tags.count("script") == page.count("</script>") == 4  # nothing injected
    data = page_data(page)
    series = data["series"]
    assert isinstance(series, dict) and series["connected"][3] == 2
    assert data["faults"] == [{"t": 20.0, "end": 40.0, "label": "partition B"}]
    assert data["bins"][0] == "≤ 5 ms" and data["bins"][-1] == "≤ 2 s"
    assert [h["action"] for h in data["latencies"]] == [  # type: ignore[union-attr]
        "BootNotification", "DataTransfer", "Heartbeat"]
    for text in ("NotImplemented", "NotSupported", "DataTransfer", "partition", "story"):
        assert text in page


def _big_run(chargers: int, seed: int) -> list[Event]:
    """Two hours of ``chargers`` chargers: a heartbeat each 2 min, a fault now and then."""
    rng = random.Random(seed)
    events: list[Event] = []
    for n in range(chargers):
        events.append(Connected(t=T0 + rng.uniform(0, 10), charger=f"C{n}", url="ws://cs"))
    for n in range(chargers):
        for beat in range(60):
            t = beat * 120 + rng.uniform(10, 120)
            events += _frames(t, f"C{n}", f"{n}-{beat}", "Heartbeat", rng.uniform(0.001, 0.3))
            if rng.random() < 0.05:
                events.append(FaultInjected(t=T0 + t, charger=f"C{n}", fault="disconnect",
                                            injection=f"{n}-{beat}"))
    events.sort(key=lambda e: e.t)
    return events


async def test_the_page_grows_with_the_run_s_length_not_its_frames(tmp_path: Path) -> None:
    sizes = {}
    for chargers in (5, 150):
        path = tmp_path / f"r{chargers}.db"
        await write_ledger(path, _big_run(chargers, seed=chargers), duration="2h")
        charts = chart_data(path)
        assert charts.series.bucket_s == bucket_width(7200.0) == 10.0
        assert len(charts.series.t_s) <= MAX_BUCKETS + 1
        assert len(charts.faults) <= MAX_FAULT_MARKS
        page = render_html(summarize(path), charts)
        sizes[chargers] = (len(page.encode()), len(json.dumps(page_data(page))))
    (small_page, small_data), (big_page, big_data) = sizes[5], sizes[150]
    assert big_data < 2 * small_data + 20_000  # 30 times the frames, not 30 times the data
    assert small_page < big_page < 1_000_000


async def test_sim_report_html_writes_the_file_and_keeps_the_text(tmp_path: Path) -> None:
    path = await story_ledger(tmp_path / "r.db")
    out = tmp_path / "report.html"
    done = await trio.to_thread.run_sync(
        lambda: sim("report", str(path), "--html", str(out), "--json"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["run_id"] == 1  # the JSON page is printed as before
    assert f"wrote {out}" in done.stderr
    assert out.stat().st_size > 20_000 and '<section id="verdicts">' in out.read_text()
    charger = await trio.to_thread.run_sync(
        lambda: sim("report", str(path), "--charger", "A", "--html", str(out)))
    assert charger.returncode == 0 and charger.stdout.startswith("Charger A")


async def test_sim_report_html_on_a_bad_ledger_or_file_says_so_in_one_line(
        tmp_path: Path) -> None:
    missing = await trio.to_thread.run_sync(
        lambda: sim("report", str(tmp_path / "missing.db"), "--html", str(tmp_path / "r.html")))
    assert_one_clear_line(missing, "missing.db")
    not_ledger = tmp_path / "notes.db"
    not_ledger.write_text("hello")
    garbage = await trio.to_thread.run_sync(
        lambda: sim("report", str(not_ledger), "--html", str(tmp_path / "r.html")))
    assert_one_clear_line(garbage, "notes.db")
    path = await story_ledger(tmp_path / "r.db")
    unwritable = await trio.to_thread.run_sync(
        lambda: sim("report", str(path), "--html", str(tmp_path / "no" / "such" / "r.html")))
    assert_one_clear_line(unwritable, "r.html", "cannot write")
    assert not (tmp_path / "r.html").exists()


async def test_a_run_with_no_events_still_gives_a_page(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    await write_ledger(path, [])
    charts = chart_data(path)
    assert charts.series.t_s == [0.0, 1.0] and charts.series.connected == [0, 0]
    assert (charts.faults, charts.bins_ms, charts.latencies, charts.errors) == ([], [], [], [])
    page = render_html(summarize(path), charts)
    assert page_data(page)["latencies"] == [] and "no frames recorded" in page


async def test_a_run_without_expectations_is_told_from_one_that_did_not_end(
        tmp_path: Path) -> None:
    said = {}
    for status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.INTERRUPTED):
        path = tmp_path / f"{status}.db"
        await write_ledger(path, STORY[:3], status=status)
        report = summarize(path)
        assert report.verdicts is None
        found = re.search(r'<section id="verdicts">.*?<p class="empty">(.*?)</p>',
                          render_html(report, chart_data(path)), re.S)
        assert found is not None
        said[status] = found.group(1)
    assert said == {
        RunStatus.COMPLETED: "none expected (no [[expect]] table)",
        RunStatus.FAILED: "none expected (no [[expect]] table)",
        RunStatus.INTERRUPTED: "no verdicts stored (the run did not end normally: interrupted)",
    }


async def test_every_fault_marker_is_named_in_a_table(tmp_path: Path) -> None:
    """A chart leaves out a label that would overlap another: the table names every marker."""
    events = [*STORY, *(FaultInjected(t=T0 + 21 + i / 10, charger="A", fault=f"latency{i}",
                                      family="transport", injection=f"x{i}") for i in range(5))]
    events.sort(key=lambda e: e.t)
    path = tmp_path / "r.db"
    await write_ledger(path, events)
    charts = chart_data(path)
    assert len(charts.faults) == 6
    found = re.search(r'<details id="fault-marks"><summary>(.*?)</summary>(.*?)</details>',
                      render_html(summarize(path), charts), re.S)
    assert found is not None and found.group(1) == "The 6 fault marker(s) of the charts"
    rows = re.findall(r"<tr><td[^>]*>(.*?)</td><td[^>]*>(.*?)</td>", found.group(2))
    assert rows == [("20.0", "partition B"), *((f"{21 + i / 10:.1f}", f"latency{i} A")
                                                for i in range(5))]
