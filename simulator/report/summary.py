"""What happened in one run, read back from its ledger into a :class:`Report`.

:func:`summarize` reads one run of a ledger (the latest by default) through a read-only
connection. Reading works while a writer is still appending and on a ledger whose process was
killed mid-run (its run still says ``running``; the duration then comes from the last event
written). Bad input (no such file, not SQLite, not a ledger, no such run) raises
:class:`ReportError`, whose message is one line naming the file.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from simulator.config import Fleet
from simulator.events import (
    CallTimedOut,
    Connected,
    ConnectFailed,
    Crashed,
    CsmsFrameIn,
    Disconnected,
    Event,
    FaultInjected,
    FrameIn,
    FrameOut,
    LoopLagged,
    MessageDropped,
    TransactionAcknowledged,
    TransactionStarted,
    TransactionStopped,
    UnmatchedResult,
)
from simulator.ledger import (
    LOOP_PROBE_SUMMARY_KEY,
    RunRecord,
    get_run,
    open_readonly,
    queued_at_end,
    queued_chargers_at_end,
)
from simulator.report.faults import fault_effects
from simulator.report.frames import FrameTally, grouped, kind, sorted_codes, to_ms
from simulator.report.model import ConnectionStats, Report, TransactionStats, Verdict
from simulator.report.outcomes import Stops, groups_of, outcomes, resume_stats, run_fleet
from simulator.report.profiles import profile_usage

VERDICTS_SUMMARY_KEY = "verdicts"
"""Set in a run's stored ``summary``: its :class:`Verdict` records, in ``[[expect]]`` order."""

OVERRUN_SHOWN_S = 0.1
"""A run that went on longer than this (s) after its configured duration says so."""

_Count = Callable[[type[Event]], int]


class ReportError(ValueError):
    """The ledger cannot be reported on: missing, not SQLite, not a ledger, no such run or
    charger, or an export that cannot be written. ``str()`` is one line naming the file."""


@contextmanager
def open_run(path: str | Path, run_id: int | None) -> Iterator[tuple[sqlite3.Connection,
                                                                     RunRecord]]:
    """A read-only connection to the ledger at ``path`` and its run ``run_id`` (default: the
    latest), closed on exit. Raises :class:`ReportError` when the file is missing, is not
    SQLite, is not a ledger, or has no such run (or no run at all); SQLite errors inside the
    block become a :class:`ReportError` too."""
    target = Path(path)
    try:
        with open_readonly(target) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if not {"runs", "events"} <= tables:
                raise ReportError(f"{target}: not a simulator ledger (no runs/events tables)")
            try:
                run = get_run(conn, run_id)
            except KeyError:
                which = "has no runs" if run_id is None else f"has no run with id {run_id}"
                raise ReportError(f"{target}: the ledger {which}") from None
            yield conn, run
    except FileNotFoundError:
        raise ReportError(f"{target}: no such ledger file") from None
    except sqlite3.DatabaseError as exc:
        raise ReportError(f"{target}: not a readable simulator ledger ({exc})") from None


def summarize(path: str | Path, run_id: int | None = None) -> Report:
    """Summarize run ``run_id`` (default: the latest run) of the ledger at ``path``.

    Opens the file read-only and never writes to it. Raises :class:`ReportError` when the file
    is missing, is not SQLite, is not a ledger, or has no such run (or no run at all)."""
    with open_run(path, run_id) as (conn, run):
        return _summarize(conn, Path(path), run)


def _summarize(conn: sqlite3.Connection, path: Path, run: RunRecord) -> Report:
    rid = run.id
    kinds = dict(
        conn.execute("SELECT kind, count(*) FROM events WHERE run_id = ? GROUP BY kind", (rid,))
    )

    def count(cls: type[Event]) -> int:
        return int(kinds.get(kind(cls), 0))

    # Rows are appended in seq order: the run's last row by rowid is its last event.
    last = conn.execute("SELECT t FROM events WHERE run_id = ? ORDER BY rowid DESC LIMIT 1",
                        (rid,)).fetchone()
    last_t = None if last is None else float(last[0])
    end_t = None
    if run.ended_at is None:  # killed or still running: it lasted up to its last event
        end_t = conn.execute("SELECT max(t) FROM events WHERE run_id = ?", (rid,)).fetchone()[0]
    csms_violations = conn.execute(
        "SELECT count(*) FROM events WHERE run_id = ? AND kind = ?"
        " AND data LIKE '%\"violations\":%' AND json_array_length(data, '$.violations') > 0",
        (rid, kind(CsmsFrameIn)),
    ).fetchone()[0]
    fleet = run_fleet(run)
    frames = FrameTally(conn, rid)
    queued = queued_at_end(conn, run)
    chargers = queued_chargers_at_end(conn, run) if queued else None
    lagged_s, loop_lag_max = conn.execute(
        "SELECT total(coalesce(json_extract(data, '$.period'), 1.0)),"
        " max(json_extract(data, '$.max')) FROM events WHERE run_id = ? AND kind = ?",
        (rid, kind(LoopLagged)),
    ).fetchone()
    stops = Stops(conn, run)
    duration = _duration(run, end_t)
    configured, overrun = _overrun(fleet, duration)
    return Report(
        path=str(path),
        run_id=rid,
        name=run.name,
        seed=run.seed,
        config_sha256=run.config_sha256,
        version=run.version,
        status=run.status,
        exit_code=run.exit_code,
        reasons=_reasons(run),
        started_at=run.started_at,
        ended_at=run.ended_at,
        duration_s=duration,
        last_event_s=last_t,
        configured_duration_s=configured,
        overrun_s=overrun,
        time=None if fleet is None else str(fleet.run.time),
        resumed_from=run.resumed_from,
        resume=resume_stats(conn, run, stops),
        resumed_by=conn.execute("SELECT min(id) FROM runs WHERE resumed_from = ?",
                                (rid,)).fetchone()[0],
        events=sum(int(n) for n in kinds.values()),
        frames_in=count(FrameIn),
        frames_out=count(FrameOut),
        frames_in_with_violations=frames.violations_in,
        actions=frames.stats(),
        call_errors_received=sorted_codes(frames.errors_received),
        call_errors_sent=sorted_codes(frames.errors_sent),
        timeouts=count(CallTimedOut),
        unmatched_results=count(UnmatchedResult),
        messages_dropped=count(MessageDropped),
        messages_queued=None if queued is None else sum(queued.values()),
        queued_by_action={} if queued is None else dict(sorted(queued.items())),
        queued_by_charger={} if chargers is None else {
            charger: seqs[0] for charger, seqs in sorted(chargers.items())},
        transactions=_transactions(conn, rid, count),
        outcomes=outcomes(conn, rid),
        energy=stops.energy(groups_of(fleet)),
        connections=_connections(conn, rid, count),
        crashes=count(Crashed),
        faults=grouped(conn, rid, FaultInjected, "$.fault"),
        csms_violations=int(csms_violations),
        loop_lagged_s=round(float(lagged_s), 3),
        loop_lag_max_ms=None if loop_lag_max is None else to_ms(float(loop_lag_max)),
        loop_lag_measured=bool(loop_lag_max is not None
                               or (run.summary or {}).get(LOOP_PROBE_SUMMARY_KEY)),
        verdicts=stored_verdicts(run),
        fault_effects=fault_effects(conn, run),
        profiles=profile_usage(conn, rid),
    )


def stored_verdicts(run: RunRecord) -> tuple[Verdict, ...] | None:
    """The verdicts ``run`` stored in its summary; ``None`` when it stored none (or they cannot
    be read back)."""
    stored = (run.summary or {}).get(VERDICTS_SUMMARY_KEY)
    if stored is None:
        return None
    try:
        return msgspec.convert(stored, tuple[Verdict, ...])
    except msgspec.ValidationError:
        return None


def _reasons(run: RunRecord) -> tuple[str, ...]:
    reasons = (run.summary or {}).get("reasons")
    return tuple(str(r) for r in reasons) if isinstance(reasons, list) else ()


def _duration(run: RunRecord, last_t: float | None) -> float:
    if run.ended_at is not None:
        try:
            started = datetime.fromisoformat(run.started_at)
            ended = datetime.fromisoformat(run.ended_at)
        except ValueError:
            pass
        else:
            return max(0.0, (ended - started).total_seconds())
    return max(0.0, float(last_t or 0.0))


def _overrun(fleet: Fleet | None, duration: float) -> tuple[float | None, float | None]:
    """The configured duration (s) and how far past it the run went (``None``: not past it)."""
    configured = None if fleet is None else fleet.run.duration
    if configured is None or duration - configured <= OVERRUN_SHOWN_S:
        return configured, None
    return configured, round(duration - configured, 3)


def _transactions(conn: sqlite3.Connection, rid: int, count: _Count) -> TransactionStats:
    accepted = conn.execute(
        "SELECT count(*) FROM events WHERE run_id = ? AND kind = ?"
        " AND json_extract(data, '$.status') = 'Accepted'",
        (rid, kind(TransactionAcknowledged)),
    ).fetchone()[0]
    # (charger, local_id) of every start and stop; a stop closes one start with the same key.
    ends: dict[str, collections.Counter[tuple[str | None, Any]]] = {}
    for tag in (kind(TransactionStarted), kind(TransactionStopped)):
        ends[tag] = collections.Counter(conn.execute(
            "SELECT charger, json_extract(data, '$.local_id') FROM events"
            " WHERE run_id = ? AND kind = ?",
            (rid, tag),
        ).fetchall())
    open_count = (ends[kind(TransactionStarted)] - ends[kind(TransactionStopped)]).total()
    return TransactionStats(
        started=count(TransactionStarted),
        acknowledged=count(TransactionAcknowledged),
        accepted=int(accepted),
        stopped=count(TransactionStopped),
        open=int(open_count),
    )


def _connections(conn: sqlite3.Connection, rid: int, count: _Count) -> ConnectionStats:
    # Not GROUP BY charger: SQLite would then walk the (run_id, charger) index over every event.
    per_charger = collections.Counter(
        charger
        for (charger,) in conn.execute(
            "SELECT charger FROM events WHERE run_id = ? AND kind = ?", (rid, kind(Connected))
        )
    )
    return ConnectionStats(
        connects=count(Connected),
        reconnects=sum(n - 1 for n in per_charger.values()),
        disconnects=count(Disconnected),
        connect_failures=count(ConnectFailed),
        chargers=len(per_charger),
    )
