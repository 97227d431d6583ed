"""One charger in one run (``sim report LEDGER --charger ID``): its connections, boots,
transactions, errors and the last status of each connector, read from the ledger."""

from __future__ import annotations

import difflib
import sqlite3
from pathlib import Path
from typing import Any

from simulator.events import (
    BootResult,
    CallTimedOut,
    Connected,
    ConnectFailed,
    Crashed,
    Disconnected,
    MessageDropped,
    StatusChanged,
)
from simulator.ledger import RunRecord, queued_at_end, queued_chargers_at_end
from simulator.report.frames import FrameTally, grouped, kind, sorted_codes
from simulator.report.model import (
    ChargerReport,
    ChargerTransaction,
    ConnectionStats,
    ConnectorStatus,
)
from simulator.report.outcomes import groups_of, kwh, run_fleet
from simulator.report.profiles import profile_usage
from simulator.report.summary import ReportError, open_run

_TRANSACTIONS = (
    "SELECT local_id, connector, id_tag, transaction_id, ack_status, started_t, stopped_t,"
    " stop_reason, meter_start, meter_stop FROM transactions WHERE run_id = ? AND charger = ?"
    " ORDER BY started_t, local_id"
)


def summarize_charger(path: str | Path, charger: str, run_id: int | None = None) -> ChargerReport:
    """Charger ``charger`` in run ``run_id`` (default: the latest run) of the ledger at
    ``path``. Raises :class:`ReportError` as :func:`~simulator.report.summarize` does, and when
    the run has no such charger (neither in its events nor in its fleet file)."""
    with open_run(path, run_id) as (conn, run):
        return _charger(conn, Path(path), run, charger)


def _charger(conn: sqlite3.Connection, path: Path, run: RunRecord, charger: str) -> ChargerReport:
    rid = run.id
    groups = groups_of(run_fleet(run))
    seen = conn.execute("SELECT 1 FROM events WHERE run_id = ? AND charger = ? LIMIT 1",
                        (rid, charger)).fetchone()
    if seen is None and charger not in groups:
        close = difflib.get_close_matches(charger, list(groups), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ReportError(f"{path}: run {rid} has no charger {charger!r}{hint}")

    def count(cls: type[Any]) -> int:
        return int(conn.execute(
            "SELECT count(*) FROM events WHERE run_id = ? AND kind = ? AND charger = ?",
            (rid, kind(cls), charger)).fetchone()[0])

    connects = count(Connected)
    transactions = tuple(_transaction(row) for row in conn.execute(_TRANSACTIONS, (rid, charger)))
    frames = FrameTally(conn, rid, charger)
    queued = queued_chargers_at_end(conn, run)
    if queued is None and queued_at_end(conn, run) == {}:  # nothing queued: none of it this one's
        queued = {}
    return ChargerReport(
        path=str(path),
        run_id=rid,
        charger=charger,
        group=groups.get(charger),
        connections=ConnectionStats(
            connects=connects, reconnects=max(0, connects - 1), disconnects=count(Disconnected),
            connect_failures=count(ConnectFailed), chargers=1 if connects else 0,
        ),
        connect_errors=grouped(conn, rid, ConnectFailed, "$.error", charger),
        boot=grouped(conn, rid, BootResult, "$.status", charger),
        transactions=transactions,
        energy_kwh=round(sum(t.energy_kwh or 0.0 for t in transactions), 3),
        call_errors_received=sorted_codes(frames.errors_received),
        call_errors_sent=sorted_codes(frames.errors_sent),
        timeouts=count(CallTimedOut),
        crashes=grouped(conn, rid, Crashed, "$.error", charger),
        messages_dropped=count(MessageDropped),
        messages_queued=None if queued is None else queued.get(charger, [0])[0],
        connectors=_connectors(conn, rid, charger),
        profiles=profile_usage(conn, rid, charger),
    )


def _transaction(row: tuple[Any, ...]) -> ChargerTransaction:
    (local_id, connector, id_tag, transaction_id, ack_status, started_t, stopped_t, reason,
     meter_start, meter_stop) = row
    energy = None
    if isinstance(meter_start, int | float) and isinstance(meter_stop, int | float):
        energy = kwh(meter_stop - meter_start)
    return ChargerTransaction(
        local_id=int(local_id), connector=connector, id_tag=id_tag,
        transaction_id=transaction_id, ack_status=ack_status, t_start_s=float(started_t),
        t_stop_s=None if stopped_t is None else float(stopped_t), stop_reason=reason,
        energy_kwh=energy,
    )


def _connectors(conn: sqlite3.Connection, rid: int, charger: str) -> tuple[ConnectorStatus, ...]:
    last: dict[int, ConnectorStatus] = {}
    for connector, status, error_code, t in conn.execute(
        "SELECT connector, json_extract(data, '$.new'), json_extract(data, '$.error_code'), t"
        " FROM events WHERE run_id = ? AND kind = ? AND charger = ? ORDER BY seq",
        (rid, kind(StatusChanged), charger),
    ):
        number = int(connector or 0)
        last[number] = ConnectorStatus(connector=number, status=str(status),
                                       error_code=str(error_code or "NoError"), t_s=float(t))
    return tuple(last[n] for n in sorted(last))
