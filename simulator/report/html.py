"""The report as one self-contained HTML page (``sim report LEDGER --html FILE``): the summary
and the verdicts, the latency distribution per action, connected chargers, frames per second
and transactions running over time with the injected faults laid over them, and the error
tables.

The page needs no network: uPlot, the shared chart code (``simulator/web/charts.js``, the
dashboard's too), the page's script and styles and the data are all inlined, and a
Content-Security-Policy forbids every fetch. Tables are written here; the charts are drawn in
the browser from a JSON block (:class:`~simulator.report.timeline.Charts`, aggregated per time
bucket and latency bin, so the page's size follows the run's length, not its frame count).
Every name that came from outside (an action, an error code, a charger id, an error line) is
escaped, and the JSON block cannot end its ``<script>`` early.
"""

from __future__ import annotations

import html
import re
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import msgspec

from simulator.ledger import RunStatus
from simulator.report.model import FaultEffect, Report
from simulator.report.summary import ReportError
from simulator.report.text import verdict_title
from simulator.report.timeline import Charts, FaultMark, chart_data
from simulator.web import asset

MAX_FAULTS_LISTED: Final = 200
"""Injected faults the fault table lists one by one (every kind is counted above it)."""

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
)
"""The page runs its inline code and fetches nothing."""

ENDED: Final = frozenset({RunStatus.COMPLETED, RunStatus.FAILED})
"""The statuses of a run that ended normally (its verdicts judged if it had expectations)."""

_URL_SCHEME: Final = re.compile(r"\bhttps?://")
TIMES: Final = "\u00d7"
"""The times sign of a merged fault marker's label."""

_NUMERIC: Final = ' class="n"'
_encoder: Final = msgspec.json.Encoder()


def write_html(ledger: str | Path, out: Path, report: Report, run_id: int | None = None) -> int:
    """Write the HTML report of ``report`` (run ``run_id`` of ``ledger``, whose summary it is)
    to ``out``; returns its size in bytes. Raises :class:`ReportError` when the ledger cannot
    be read or ``out`` cannot be written."""
    charts = chart_data(ledger, report.run_id if run_id is None else run_id,
                        duration_s=max(report.duration_s, report.last_event_s or 0.0))
    page = render_html(report, charts).encode()
    try:
        out.write_bytes(page)
    except OSError as exc:
        raise ReportError(f"{out}: cannot write the HTML report ({exc.strerror or exc})") from None
    return len(page)


def render_html(report: Report, charts: Charts) -> str:
    """The whole page for ``report`` and its ``charts``."""
    r = report
    title = f"Run {r.run_id} {r.name} — simulator report"
    body = "\n".join([
        f"<header><h1>{_e(title)}</h1>{_status(r)}</header>",
        _section("summary", "Summary", _summary(r)),
        _section("verdicts", "Verdicts", _verdicts(r)),
        _section("timeline", "Over time",
                 '<p class="note">Dashed red lines: faults injected (a shaded span: while it'
                 " lasted; a label that would overlap another is left out: the"
                 " markers are listed under Faults)."
                 f" One point per {charts.series.bucket_s:g} s.</p>"
                 '<div id="chart-connected" class="sim-chart"></div>'
                 '<div id="chart-frames" class="sim-chart"></div>'
                 '<div id="chart-transactions" class="sim-chart"></div>'),
        _section("latency", "Latency per action", _latency(r, charts)),
        _section("errors", "Errors", _errors(r, charts)),
        _section("faults", "Faults", _faults(r) + _marks(charts)),
    ])
    data = _encoder.encode(_page_data(charts)).decode().replace("<", "\\u003c")
    return "\n".join([
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_asset('vendor/uPlot.min.css')}\n{_asset('charts.css')}\n"
        f"{_asset('report.css')}</style>",
        "</head><body>",
        body,
        f'<script type="application/json" id="sim-report-data">{data}</script>',
        f"<script>/* uPlot {_licence()} */\n{_asset('vendor/uPlot.iife.min.js')}</script>",
        f"<script>{_asset('charts.js')}</script>",
        f"<script>{_asset('report.js')}</script>",
        "</body></html>",
    ])


def _asset(name: str) -> str:
    """A shipped file as inline text: its URLs lose their scheme (the page names no URL it
    could fetch; uPlot's names its home in a comment), and a script cannot close its element
    early (``<\\/script`` reads the same inside a JavaScript string)."""
    text = asset(name).decode()
    return _URL_SCHEME.sub("", text).replace("</script", "<\\/script")


def _licence() -> str:
    return _asset("vendor/uPlot.LICENSE").replace("*/", "* /")


def _page_data(charts: Charts) -> dict[str, object]:
    """What ``report.js`` draws: the series, the fault markers with their labels, the latency
    bins' labels and counts per action."""
    return {
        "series": charts.series,
        "faults": [{"t": m.t_s, "end": m.until_s, "label": fault_label(m)} for m in charts.faults],
        "bins": [bin_label(bound) for bound in charts.bins_ms],
        "lowest": None if len(charts.bins_ms) < 2 else charts.bins_ms[0],
        "latencies": [{"action": h.action, "results": h.results, "counts": h.counts}
                      for h in charts.latencies],
    }


def fault_label(mark: FaultMark) -> str:
    """``disconnect \u00d78`` (a times sign: several injections), ``partition FLAP-014`` (one,
    on one charger)."""
    if mark.count == 1:
        return mark.fault if mark.charger is None else f"{mark.fault} {mark.charger}"
    return f"{mark.fault} {TIMES}{mark.count}"


def bin_label(bound: float | None) -> str:
    """A latency bin's label: ``≤ 5 ms``, ``≤ 2 s``, ``slower``."""
    if bound is None:
        return "slower"
    return f"≤ {bound:g} ms" if bound < 1000 else f"≤ {bound / 1000:g} s"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _section(anchor: str, heading: str, content: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(heading)}</h2>\n{content}\n</section>'


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], numeric_from: int = 1,
           empty: str = "none") -> str:
    """An HTML table; columns from ``numeric_from`` on are right-aligned numbers."""
    lines = ["".join(f"<td{_NUMERIC if i >= numeric_from else ''}>{_e(_cell(v))}</td>"
                     for i, v in enumerate(row)) for row in rows]
    if not lines:
        return f'<p class="empty">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return ("<table><thead><tr>" + head + "</tr></thead><tbody>"
            + "".join(f"<tr>{line}</tr>" for line in lines) + "</tbody></table>")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) < 1e6 else f"{value:.3g}"
    return str(value)


def _status(r: Report) -> str:
    failed = bool(r.verdicts and not all(v.passed for v in r.verdicts))
    state = "fail" if failed or r.status == "failed" else "ok"
    exit_code = "-" if r.exit_code is None else r.exit_code
    return (f'<p class="status {state}">{_e(r.status)} (exit code {_e(exit_code)})</p>'
            + "".join(f'<p class="reason">{_e(reason)}</p>' for reason in r.reasons))


def _pairs(pairs: Iterable[tuple[str, object]]) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(_cell(v))}</dd>" for k, v in pairs) + "</dl>"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in counts.items()) or "none"


def _summary(r: Report) -> str:
    t, c, e = r.transactions, r.connections, r.energy
    time = " (virtual time)" if r.time == "virtual" else ""
    run = _pairs([
        ("ledger", r.path), ("seed", r.seed), ("config sha256", r.config_sha256),
        ("version", r.version), ("started", r.started_at),
        ("ended", r.ended_at or "- (no end recorded)"),
        ("duration", f"{r.duration_s:.1f} s{time}"),
        ("events", r.events),
        ("frames", f"in {r.frames_in} ({r.frames_in_with_violations} with violations),"
                   f" out {r.frames_out}"),
    ])
    fleet = _pairs([
        ("connections", f"{c.chargers} chargers, connects {c.connects}, reconnects"
                        f" {c.reconnects}, disconnects {c.disconnects}, failed attempts"
                        f" {c.connect_failures}"),
        ("transactions", f"started {t.started}, acknowledged {t.acknowledged} ({t.accepted}"
                         f" accepted), stopped {t.stopped}, open {t.open}"),
        ("energy", f"{e.total_kwh:g} kWh by {e.transactions} stopped transaction(s)"),
        ("boot", _counts(r.outcomes.boot)),
        ("Authorize idTagInfo", _counts(r.outcomes.authorize)),
        ("StartTransaction idTagInfo", _counts(r.outcomes.start_transaction)),
        ("still queued", "not recorded" if r.messages_queued is None else r.messages_queued),
        ("faults injected", _counts(r.faults)),
        ("crashes", r.crashes),
    ])
    return f'<div class="columns">{run}{fleet}</div>'


def _verdicts(r: Report) -> str:
    """The verdicts table. A run stores its verdicts only when it has expectations, so a run
    that ended (completed or failed) with none stored expected nothing; one still running or
    interrupted may have had them judged never."""
    if not r.verdicts:
        if r.verdicts is None and r.status not in ENDED:
            return (f'<p class="empty">no verdicts stored (the run did not end normally:'
                    f" {_e(r.status)})</p>")
        return '<p class="empty">none expected (no [[expect]] table)</p>'
    passed = sum(1 for v in r.verdicts if v.passed)
    rows = "".join(
        f'<tr class="{"pass" if v.passed else "fail"}"><td>{"PASS" if v.passed else "FAIL"}</td>'
        f"<td>{_e(verdict_title(v))}</td><td>{_e(v.measured)}</td></tr>" for v in r.verdicts)
    return (f"<p>{passed} of {len(r.verdicts)} passed</p><table class=\"verdicts\"><thead><tr>"
            "<th></th><th>expectation</th><th>measured</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _latency(r: Report, charts: Charts) -> str:
    note = ('<p class="note">Latencies on the virtual clock: only simulated delays count.</p>'
            if r.time == "virtual" else "")
    table = _table(
        ("action", "sent", "received", "results", "p50 ms", "p95 ms", "p99 ms", "max ms"),
        ((a.action, a.calls_sent, a.calls_received, a.results, a.p50_ms, a.p95_ms, a.p99_ms,
          a.max_ms) for a in r.actions), empty="no frames recorded")
    grid = "".join(f'<div class="sim-chart latency" data-action="{_e(h.action)}"></div>'
                   for h in charts.latencies)
    return f'{note}{table}<div id="latency-charts" class="sim-charts-grid">{grid}</div>'


def _errors(r: Report, charts: Charts) -> str:
    by_code = _table(("code", "received", "sent"), (
        (code, r.call_errors_received.get(code, 0), r.call_errors_sent.get(code, 0))
        for code in dict.fromkeys([*r.call_errors_received, *r.call_errors_sent])))
    by_action = _table(("code", "action", "received", "sent"),
                       ((x.code, x.action, x.received, x.sent) for x in charts.errors),
                       numeric_from=2)
    per_action = _table(("action", "CALLERRORs received", "CALLERRORs sent", "timeouts"), (
        (a.action, a.errors_received, a.errors_sent, a.timeouts) for a in r.actions
        if a.errors_received or a.errors_sent or a.timeouts))
    others = _pairs([
        ("timeouts", r.timeouts), ("unmatched results", r.unmatched_results),
        ("messages dropped", r.messages_dropped),
        ("CSMS-side violations", r.csms_violations), ("crashes", r.crashes),
    ])
    crashes = _table(("error", "crashes"), charts.crashes_by_error.items())
    listed = _table(("t (s)", "charger", "error"),
                    ((x.t_s, x.charger, x.error) for x in charts.crashes), numeric_from=99)
    return (f"{others}<h3>CALLERRORs by code</h3>{by_code}"
            f"<h3>CALLERRORs by code and action</h3>{by_action}"
            f"<h3>Errors and timeouts per action</h3>{per_action}"
            f"<h3>Crashes by error</h3>{crashes}<h3>First crashes</h3>{listed}")


def _faults(r: Report) -> str:
    effects = r.fault_effects
    if not effects:
        return _table(("fault", "injected"), r.faults.items(), empty="no fault injected")
    by_name: dict[str, list[FaultEffect]] = {}
    for effect in effects:
        by_name.setdefault(effect.fault, []).append(effect)
    kinds = _table(("fault", "injected", "answered", "first reply median (s)", "CALLERRORs",
                    "disconnected", "back", "back after median (s)", "back after worst (s)"),
                   (_kind_row(name, group) for name, group in sorted(by_name.items())))
    shown = effects[:MAX_FAULTS_LISTED]
    listed = (f"the first {MAX_FAULTS_LISTED} of {len(effects)}"
              if len(effects) > MAX_FAULTS_LISTED else f"all {len(effects)}")
    rows = _table(("t (s)", "fault", "charger", "first reply", "after (s)", "CALLERRORs",
                   "disconnected", "back after (s)"),
                  (_effect_row(e) for e in shown), numeric_from=99)
    return (f"<h3>What the central system did next, by fault</h3>{kinds}"
            f"<details><summary>Each injection ({listed})</summary>{rows}</details>")


def _marks(charts: Charts) -> str:
    """The fault markers of the charts, listed: a chart leaves out a label that would overlap
    another, so this table is where every marker is named."""
    if not charts.faults:
        return ""
    rows = _table(("t (s)", "fault", "last (s)", "until (s)", "injections", "chargers"),
                  ((m.t_s, fault_label(m), m.last_s, m.until_s, m.count, m.chargers)
                   for m in charts.faults), numeric_from=99)
    return (f'<details id="fault-marks"><summary>The {len(charts.faults)} fault marker(s) of'
            f" the charts</summary>{rows}</details>")


def _kind_row(name: str, effects: list[FaultEffect]) -> tuple[object, ...]:
    replies = [e.first_reply_after_s for e in effects if e.first_reply_after_s is not None]
    down = [e for e in effects if e.disconnected]
    back = [e.recovered_after_s for e in down if e.recovered_after_s is not None]
    return (name, len(effects), len(replies), statistics.median(replies) if replies else None,
            sum(e.errors for e in effects), len(down), len(back),
            statistics.median(back) if back else None, max(back) if back else None)


def _effect_row(e: FaultEffect) -> tuple[object, ...]:
    back: object = ("not back" if e.recovered_after_s is None else e.recovered_after_s) \
        if e.disconnected else None
    return (e.t_s, e.fault + (" (deliberate)" if e.deliberate else ""), e.charger or "(fleet)",
            e.first_reply, e.first_reply_after_s, e.errors, "yes" if e.disconnected else "no",
            back)
