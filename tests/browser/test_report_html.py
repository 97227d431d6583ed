"""The HTML report in headless Chromium: written by ``sim report --html`` for a real run (the
flapping scenario under virtual time: chargers dropping and coming back, faults, transactions),
opened from file:// with no network, it renders with no console error, fetches nothing, and
every chart holds data and has drawn it (the fault markers too)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import console_errors

RUN_TIMEOUT = 120.0
"""Seconds the scenario run and the report get (about two on an idle machine)."""

FAULT_RED = "(r, g, b) => r > 150 && g < 110 && b < 110"
"""A pixel of the fault overlay's red (charts.js FAULT_COLOR, blended)."""


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    ledger, page = folder / "run.db", folder / "report.html"
    env = {**os.environ, "SIM_RUN__TIME": "virtual"}
    for args in (["start", "--toml", "flapping", "--quiet", "--ledger", str(ledger)],
                 ["report", str(ledger), "--html", str(page)]):
        done = subprocess.run([sys.executable, "-m", "simulator", *args], env=env,
                              capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
        assert done.returncode in (0, 1), done.stderr  # 1: a verdict failed; still a report
    return page


def _canvas_pixels(page: Any, selector: str, test: str) -> int:
    """Pixels of the canvas under ``selector`` that pass the JavaScript ``test(r, g, b, a)``."""
    count: int = page.eval_on_selector(selector + " canvas", f"""canvas => {{
        const test = {test};
        const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; i < pixels.length; i += 4) {{
            if (test(pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3])) n++;
        }}
        return n;
    }}""")
    return count


def test_the_report_renders_offline_with_every_chart_drawn(
        page: Any, report_file: Path) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report_file.as_uri())
    page.wait_for_selector("body[data-report=ready]", timeout=10_000)
    assert console_errors(page) == []
    assert requests == [report_file.as_uri()]  # nothing fetched beyond the file itself

    charts = page.evaluate("window.simReport.charts")
    ids = [chart["id"] for chart in charts]
    assert ids[:3] == ["chart-connected", "chart-frames", "chart-transactions"]
    latency = [chart for chart in charts if chart["id"].startswith("latency-")]
    assert {"latency-BootNotification", "latency-StatusNotification"} <= {c["id"] for c in latency}
    assert all(chart["points"] > 0 for chart in charts), charts
    assert all(chart["points"] > 40 for chart in charts[:3])  # 45 s, one point a second

    points = page.eval_on_selector_all("[data-chart]", "els => els.map(e => +e.dataset.points)")
    assert len(points) == len(charts) and min(points) > 0
    assert page.locator("canvas").count() == len(charts)
    for selector in ("#chart-connected", "#chart-frames", "#chart-transactions",
                     "#latency-charts .latency"):
        drawn = _canvas_pixels(page, selector, "(r, g, b, a) => a > 0")
        assert drawn > 1000, (selector, drawn)
    assert _canvas_pixels(page, "#chart-connected", FAULT_RED) > 50  # the faults laid over

    # close faults: no label written over another, and every marker named in the table
    for chart in ("chart-connected", "chart-frames", "chart-transactions"):
        assert_apart(page.evaluate(f"SimCharts.instances.find(c => c.element.id === '{chart}')"
                                   ".faultLabels()"))
    marks = page.evaluate("JSON.parse(document.getElementById('sim-report-data').textContent)"
                          ".faults.length")
    assert marks > 0 and page.locator("#fault-marks tbody tr").count() == marks

    for section in ("summary", "verdicts", "timeline", "latency", "errors", "faults"):
        assert page.locator(f"section#{section}").is_visible()
    assert page.locator("#verdicts tr.pass").count() == 4


def assert_apart(labels: list[dict[str, Any]]) -> None:
    """No two of a chart's fault labels (``chart.faultLabels()``) overlap on one row."""
    for row in {label["row"] for label in labels}:
        spans = sorted((label["x"], label["x"] + label["width"]) for label in labels
                       if label["row"] == row)
        for (_, right), (left, _) in itertools.pairwise(spans):
            assert left >= right, (row, spans)


def chart_page(page: Any) -> None:
    """A blank page with uPlot and the shared chart code, and two chart boxes ``#t``, ``#h``."""
    from simulator.web import asset

    page.set_content(
        "<!doctype html><html><head><style>"
        + asset("vendor/uPlot.min.css").decode() + asset("charts.css").decode()
        + '</style></head><body><div id="box" style="width: 800px">'
        '<div id="t" class="sim-chart"></div><div id="h" class="sim-chart"></div></div>'
        f"<script>{asset('vendor/uPlot.iife.min.js').decode()}</script>"
        f"<script>{asset('charts.js').decode()}</script></body></html>")


def test_close_fault_labels_are_left_out_not_written_over_each_other(page: Any) -> None:
    chart_page(page)
    drawn = page.evaluate("""async () => {
        const times = Array.from({length: 101}, (_, i) => i);
        const faults = Array.from({length: 40}, (_, i) =>
            ({t: 20 + i * 0.5, end: 20 + i * 0.5 + 0.2, label: "reconnect_storm " + i}));
        faults.push({t: 90, label: "alone"});
        const chart = SimCharts.timeSeries(document.getElementById("t"), {
            time: false, times: times, series: [{label: "a", values: times}], faults: faults});
        await new Promise(resolve => requestAnimationFrame(resolve));  // (uPlot draws then)
        return {labels: chart.faultLabels(), count: chart.element.dataset.faultLabels};
    }""")
    labels = drawn["labels"]
    assert_apart(labels)
    assert 3 <= len(labels) < 40 and drawn["count"] == str(len(labels))
    names = [label["label"] for label in labels]
    assert "reconnect_storm 0" in names and "alone" in names
    assert {label["row"] for label in labels} == {0, 1, 2}
    # the lines stay, one per fault, labelled or not
    red = _canvas_pixels(page, "#t", FAULT_RED)
    page.evaluate("async () => { SimCharts.instances[0].setFaults([]);"
                  " await new Promise(resolve => requestAnimationFrame(resolve)); }")
    assert red > _canvas_pixels(page, "#t", FAULT_RED) + 40 * 50
    assert console_errors(page) == []


def test_the_shared_chart_code_takes_live_updates(page: Any) -> None:
    """What the dashboard relies on: push, update and setFaults redraw a chart in place, a
    histogram takes new counts, and a chart follows its container's width."""
    chart_page(page)
    result = page.evaluate("""() => {
        const t = SimCharts.timeSeries(document.getElementById("t"), {
            title: "live", time: false, times: [0, 1], maxPoints: 5,
            series: [{label: "a", values: [1, 2]}, {label: "b", values: [3, null]}]});
        const seen = [t.points()];
        for (let i = 2; i < 9; i++) t.push(i, [i, i * 2]);
        seen.push(t.points(), t.plot.data[0][0], t.plot.data[2][4]);
        t.setFaults([{t: 6, label: "reset"}, {t: 7, end: 8, label: "partition"}]);
        t.update([0, 10, 20], [[1, 2, 3], [4, 5, 6]]);
        seen.push(t.points(), document.getElementById("t").dataset.points);
        const h = SimCharts.histogram(document.getElementById("h"), {
            buckets: ["≤ 1 ms", "≤ 2 ms", "slower"], counts: [0, 0, 0]});
        h.update([4, 0, 1]);
        seen.push(h.plot.data[1], SimCharts.instances.length, t.plot.width);
        return seen;
    }""")
    assert result[:7] == [2, 5, 4, 16, 3, "3", [4, 0, 1]]
    assert result[7] == 2 and 700 <= result[8] <= 800
    page.evaluate("document.getElementById('box').style.width = '500px'")
    page.wait_for_function("SimCharts.instances[0].plot.width <= 500", timeout=5_000)
    page.evaluate("SimCharts.instances[0].destroy()")
    assert page.evaluate("SimCharts.instances.length") == 1
    assert console_errors(page) == []
