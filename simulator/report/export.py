"""A run's rows as CSV files (``sim report LEDGER --csv DIR``): ``frames.csv``,
``transactions.csv`` and ``events.csv``, each with a header row (the ledger's column names),
streamed row by row from SQLite so that a ledger of any size is written in constant memory.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path
from typing import Final

from simulator.report.summary import ReportError, open_run

TABLES: Final = {
    "frames": "SELECT * FROM frames WHERE run_id = ? ORDER BY seq",
    "transactions": "SELECT * FROM transactions WHERE run_id = ? ORDER BY started_t, charger",
    "events": "SELECT run_id, seq, t, wall, charger, connector, kind, data FROM events"
              " WHERE run_id = ? ORDER BY seq",
}
"""Each exported file's stem and the query of its rows (one parameter: the run id)."""

_BATCH: Final = 1000


def write_csv(
    path: str | Path, directory: str | Path, run_id: int | None = None
) -> dict[Path, int]:
    """Write run ``run_id`` (default: the latest) of the ledger at ``path`` as one CSV file per
    entry of :data:`TABLES` in ``directory`` (created with its parents if missing; files there
    are overwritten). Returns each file written with its data rows (the header not counted).
    Raises :class:`ReportError` (one line) for a ledger :func:`summarize` refuses and for a
    directory that cannot be created or written."""
    target = Path(directory)
    with open_run(path, run_id) as (conn, run):
        try:
            target.mkdir(parents=True, exist_ok=True)
            return {target / f"{stem}.csv": _write(conn, sql, run.id, target / f"{stem}.csv")
                    for stem, sql in TABLES.items()}
        except OSError as exc:
            where = exc.filename or target
            raise ReportError(f"{where}: cannot write the CSV files:"
                              f" {exc.strerror or exc}") from None


def _write(conn: sqlite3.Connection, sql: str, rid: int, file: Path) -> int:
    cursor = conn.execute(sql, (rid,))
    rows = 0
    with file.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow([column[0] for column in cursor.description])
        while batch := cursor.fetchmany(_BATCH):
            writer.writerows(batch)
            rows += len(batch)
    return rows
