"""The numbers behind the HTML report's charts and error tables, read from a run's ledger:
levels and rates over time (connected chargers, frames per second, transactions running), the
injected faults to lay over them, the latency distribution per action, CALLERRORs by code and
action, and the crashes.

Everything is aggregated before it reaches Python or the page: frames are counted per time
bucket and latencies per histogram bin in SQLite, so the size of a :class:`Charts` record grows
with the run's length and its number of actions, never with its number of frames. Only the
link and transaction events (a few per charger) are walked in Python, to follow each charger's
state. Times are seconds since the run's start.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import msgspec

from simulator.events import (
    Connected,
    Crashed,
    Disconnected,
    FaultInjected,
    FrameIn,
    FrameOut,
    TransactionStarted,
    TransactionStopped,
)
from simulator.report.faults import clock_origin
from simulator.report.frames import UNKNOWN_ACTION, UNKNOWN_ERROR_CODE, kind
from simulator.report.summary import open_run

MAX_BUCKETS: Final = 1200
"""Time buckets a chart holds at most: the bucket is the smallest of :data:`BUCKET_STEPS_S`
that covers the run in this many."""

BUCKET_STEPS_S: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600,
                         43200, 86400)
"""The bucket widths (s) a chart may use."""

MAX_FAULT_MARKS: Final = 120
"""Fault markers laid over the charts at most: injections of the same fault close in time are
merged into one marker (its label gives their number) until they fit. A chart draws each
marker's line but leaves out a label that would overlap another (charts.js); the report's
table of markers names them all."""

LATENCY_BOUNDS_MS: Final = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000,
                            10000, 20000, 60000)
"""Upper bounds (ms, inclusive) of the latency histogram's bins; a last bin holds what is
slower than the last bound."""

MAX_CRASHES_LISTED: Final = 50
"""Crashes listed one by one (the others are counted, by error)."""

MAX_ROWS: Final = 100
"""Rows of a grouped error table at most (the most frequent)."""


class FaultMark(msgspec.Struct, frozen=True, kw_only=True):
    """Injections of one ``fault`` from ``t_s`` to ``last_s`` (``count`` of them, on
    ``chargers`` distinct chargers; ``charger`` when there is just one), in effect until
    ``until_s`` at the latest (``None``: they act once, or their end is not known)."""

    fault: str
    t_s: float
    last_s: float
    until_s: float | None
    count: int
    chargers: int
    charger: str | None


class Series(msgspec.Struct, frozen=True, kw_only=True):
    """Values over time: bucket ``i`` covers ``[t_s[i] - bucket_s, t_s[i])``; rates are per
    second over the bucket, levels are as they stood at ``t_s[i]``. ``t_s[0]`` is 0 (every level
    0, no rate)."""

    bucket_s: float
    t_s: list[float]
    connected: list[int]
    transactions_running: list[int]
    frames_sent_per_s: list[float]
    frames_received_per_s: list[float]


class LatencyHistogram(msgspec.Struct, frozen=True, kw_only=True):
    """Answers to one action's CALLs by latency: ``counts[i]`` fall in bin ``i`` of the
    :class:`Charts` bins."""

    action: str
    results: int
    counts: list[int]


class ErrorCount(msgspec.Struct, frozen=True, kw_only=True):
    """CALLERRORs with ``code`` on ``action``: ``received`` (answers to the chargers' CALLs) and
    ``sent`` (the chargers' answers to the central system)."""

    code: str
    action: str
    received: int
    sent: int


class CrashLine(msgspec.Struct, frozen=True, kw_only=True):
    """One actor crash: when, which charger, its error line."""

    t_s: float
    charger: str | None
    error: str


class Charts(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the HTML report draws beyond :class:`~simulator.report.Report`. ``bins_ms``
    are the latency bins' upper bounds (``None``: no bound, the slowest bin), trimmed to the
    bins some action used; ``crashes_by_error`` counts every crash by its error line (the most
    frequent :data:`MAX_ROWS`), ``crashes`` lists the first :data:`MAX_CRASHES_LISTED`."""

    series: Series
    faults: list[FaultMark]
    bins_ms: list[float | None]
    latencies: list[LatencyHistogram]
    errors: list[ErrorCount]
    crashes_by_error: dict[str, int]
    crashes: list[CrashLine]


def chart_data(path: str | Path, run_id: int | None = None,
               duration_s: float | None = None) -> Charts:
    """The :class:`Charts` of run ``run_id`` (default: the latest) of the ledger at ``path``,
    over ``duration_s`` seconds (default: up to its last event). Read-only; raises
    :class:`~simulator.report.ReportError` as :func:`~simulator.report.summarize` does."""
    with open_run(path, run_id) as (conn, run):
        rid = run.id
        if duration_s is None:
            last = conn.execute("SELECT max(t) FROM events WHERE run_id = ?", (rid,)).fetchone()
            duration_s = float(last[0] or 0.0)
        bucket = bucket_width(duration_s)
        buckets = max(1, int(duration_s // bucket) + 1)
        bins, latencies = _latencies(conn, rid)
        return Charts(
            series=_series(conn, rid, bucket, buckets),
            faults=_fault_marks(conn, rid, bucket, clock_origin(run)),
            bins_ms=bins,
            latencies=latencies,
            errors=_errors(conn, rid),
            crashes_by_error=_crashes_by_error(conn, rid),
            crashes=[CrashLine(t_s=float(t), charger=charger, error=str(error or "?"))
                     for t, charger, error in conn.execute(
                         "SELECT t, charger, json_extract(data, '$.error') FROM events"
                         " WHERE run_id = ? AND kind = ? ORDER BY seq LIMIT ?",
                         (rid, kind(Crashed), MAX_CRASHES_LISTED))],
        )


def bucket_width(duration_s: float) -> float:
    """The smallest of :data:`BUCKET_STEPS_S` that covers ``duration_s`` in at most
    :data:`MAX_BUCKETS` buckets (the largest step for a longer run)."""
    for step in BUCKET_STEPS_S:
        if duration_s / step <= MAX_BUCKETS:
            return float(step)
    return float(BUCKET_STEPS_S[-1])


def _series(conn: sqlite3.Connection, rid: int, bucket: float, buckets: int) -> Series:
    sent = [0] * buckets
    received = [0] * buckets
    frame_in, frame_out = kind(FrameIn), kind(FrameOut)
    for index, what, n in conn.execute(
            "SELECT CAST(t / ? AS INTEGER), kind, count(*) FROM events"
            " WHERE run_id = ? AND kind IN (?, ?) GROUP BY 1, 2",
            (bucket, rid, frame_in, frame_out)):
        at = min(max(int(index), 0), buckets - 1)
        (received if what == frame_in else sent)[at] += int(n)
    connected = _levels(conn.execute(
        "SELECT t, kind, charger, NULL FROM events WHERE run_id = ? AND kind IN (?, ?)"
        " ORDER BY seq", (rid, kind(Connected), kind(Disconnected))),
        kind(Connected), bucket, buckets)
    running = _levels(conn.execute(
        "SELECT t, kind, charger, json_extract(data, '$.local_id') FROM events"
        " WHERE run_id = ? AND kind IN (?, ?) ORDER BY seq",
        (rid, kind(TransactionStarted), kind(TransactionStopped))),
        kind(TransactionStarted), bucket, buckets)
    return Series(
        bucket_s=bucket,
        t_s=[0.0, *(round((i + 1) * bucket, 3) for i in range(buckets))],
        connected=connected,
        transactions_running=running,
        frames_sent_per_s=[0.0, *(round(n / bucket, 3) for n in sent)],
        frames_received_per_s=[0.0, *(round(n / bucket, 3) for n in received)],
    )


def _levels(rows: Iterable[tuple[float, str, str | None, object]], up: str, bucket: float,
            buckets: int) -> list[int]:
    """How many keys ``(charger, detail)`` stood raised at the end of each bucket (with 0 at
    the start), the rows raising a key of kind ``up`` and lowering it otherwise. A key raised
    twice counts once: a crash records no disconnection, the next connection says the link
    is up again; a lowering without its raising (a transaction begun in an earlier run) is
    ignored."""
    raised: set[tuple[str | None, object]] = set()
    levels = [0] * (buckets + 1)
    filled = 0  # buckets whose level is written
    for t, what, charger, detail in rows:
        index = min(max(int(float(t) // bucket), 0), buckets - 1)
        while filled < index:
            filled += 1
            levels[filled] = len(raised)
        if what == up:
            raised.add((charger, detail))
        else:
            raised.discard((charger, detail))
    while filled < buckets:
        filled += 1
        levels[filled] = len(raised)
    return levels


def _fault_marks(conn: sqlite3.Connection, rid: int, bucket: float,
                 origin: float | None) -> list[FaultMark]:
    rows = conn.execute(
        "SELECT CAST(t / ? AS INTEGER), json_extract(data, '$.fault'), count(*), min(t), max(t),"
        " max(json_extract(data, '$.until')), count(DISTINCT charger), min(charger)"
        " FROM events WHERE run_id = ? AND kind = ? AND json_extract(data, '$.skipped') IS NULL"
        " GROUP BY 1, 2 ORDER BY 1, 2", (bucket, rid, kind(FaultInjected))).fetchall()
    width = 1
    while len({(int(r[0]) // width, r[1]) for r in rows}) > MAX_FAULT_MARKS:
        width *= 2
    merged: dict[tuple[int, str], _Mark] = {}
    for index, fault, n, first, last, until, chargers, charger in rows:
        end = None if until is None or origin is None else round(float(until) - origin, 3)
        add = _Mark(str(fault), float(first), float(last), end, int(n), int(chargers), charger)
        key = (int(index) // width, add.fault)
        merged[key] = add if key not in merged else merged[key].joined(add)
    return [mark.record() for mark in sorted(merged.values(), key=lambda m: (m.first, m.fault))]


class _Mark:
    """A :class:`FaultMark` being merged."""

    __slots__ = ("charger", "chargers", "count", "fault", "first", "last", "until")

    def __init__(self, fault: str, first: float, last: float, until: float | None, count: int,
                 chargers: int, charger: str | None) -> None:
        self.fault, self.first, self.last, self.until = fault, first, last, until
        self.count, self.chargers, self.charger = count, chargers, charger

    def joined(self, other: _Mark) -> _Mark:
        """Both marks as one (``chargers`` may count a charger twice: an upper bound)."""
        untils = [u for u in (self.until, other.until) if u is not None]
        return _Mark(self.fault, min(self.first, other.first), max(self.last, other.last),
                     max(untils) if untils else None, self.count + other.count,
                     self.chargers + other.chargers,
                     self.charger if self.charger == other.charger else None)

    def record(self) -> FaultMark:
        one = self.charger if self.chargers == 1 else None
        return FaultMark(fault=self.fault, t_s=round(self.first, 3), last_s=round(self.last, 3),
                         until_s=self.until, count=self.count, chargers=self.chargers,
                         charger=one)


def _bin_sql() -> str:
    cases = " ".join(f"WHEN latency <= {bound / 1000.0!r} THEN {i}"
                     for i, bound in enumerate(LATENCY_BOUNDS_MS))
    return f"CASE {cases} ELSE {len(LATENCY_BOUNDS_MS)} END"


_LATENCY_BINS: Final = (
    f"SELECT action, {_bin_sql()}, count(*) FROM ("
    " SELECT json_extract(data, '$.action') AS action, json_extract(data, '$.latency') AS latency"
    " FROM events WHERE run_id = ? AND kind = ? AND data LIKE '%\"latency\":%')"
    " WHERE latency IS NOT NULL GROUP BY 1, 2"
)


def _latencies(conn: sqlite3.Connection, rid: int
               ) -> tuple[list[float | None], list[LatencyHistogram]]:
    width = len(LATENCY_BOUNDS_MS) + 1
    counts: dict[str, list[int]] = {}
    for action, index, n in conn.execute(_LATENCY_BINS, (rid, kind(FrameIn))):
        name = action if isinstance(action, str) and action else UNKNOWN_ACTION
        counts.setdefault(name, [0] * width)[int(index)] += int(n)
    bounds: list[float | None] = [float(b) for b in LATENCY_BOUNDS_MS] + [None]
    used = [i for i in range(width) if any(row[i] for row in counts.values())]
    low, high = (used[0], used[-1] + 1) if used else (0, 0)
    return bounds[low:high], [
        LatencyHistogram(action=name, results=sum(row), counts=row[low:high])
        for name, row in sorted(counts.items(), key=lambda item: (item[0] == UNKNOWN_ACTION,
                                                                   item[0]))
    ]


def _errors(conn: sqlite3.Connection, rid: int) -> list[ErrorCount]:
    frame_in = kind(FrameIn)
    table: dict[tuple[str, str], list[int]] = {}
    for what, action, code, n in conn.execute(
            "SELECT kind, json_extract(data, '$.action'),"
            " CASE WHEN json_valid(json_extract(data, '$.raw'))"
            " THEN json_extract(json_extract(data, '$.raw'), '$[2]') END, count(*)"
            " FROM events WHERE run_id = ? AND kind IN (?, ?)"
            " AND data LIKE '%\"message_type\":4%' AND json_extract(data, '$.message_type') = 4"
            " GROUP BY 1, 2, 3", (rid, frame_in, kind(FrameOut))):
        key = (code if isinstance(code, str) and code else UNKNOWN_ERROR_CODE,
               action if isinstance(action, str) and action else UNKNOWN_ACTION)
        row = table.setdefault(key, [0, 0])
        row[0 if what == frame_in else 1] += int(n)
    ranked = sorted(table.items(), key=lambda item: (-sum(item[1]), item[0]))[:MAX_ROWS]
    return [ErrorCount(code=code, action=action, received=n[0], sent=n[1])
            for (code, action), n in ranked]


def _crashes_by_error(conn: sqlite3.Connection, rid: int) -> dict[str, int]:
    return {str(error or "?"): int(n) for error, n in conn.execute(
        "SELECT json_extract(data, '$.error'), count(*) FROM events WHERE run_id = ? AND kind = ?"
        " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?", (rid, kind(Crashed), MAX_ROWS))}
