"""Reading a ledger: read-only connections, the ``runs`` rows and what a run left queued, for
the report and the CLI.

Everything here works through a plain ``sqlite3`` connection, also while a writer is active
(WAL lets readers see the last committed transaction). A file that is not a ledger raises
``sqlite3.DatabaseError`` at the first query.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import msgspec

LOOP_PROBE_SUMMARY_KEY: Final = "loop_lag_probe"
"""Set (true) in a run's stored ``summary`` when its event-loop lag probe ran
(``simulator.actors.lag``): the report then tells a loop on time from one not measured."""

QUEUED_SUMMARY_KEY: Final = "queued_at_end"
"""Set in a run's stored ``summary``: the transaction messages the run left undelivered in the
outbox, counted per action. The ledger records it as the run ends (for a run whose process was
killed, as the next run starts), because a later run empties the outbox or delivers them."""

QUEUED_CHARGERS_SUMMARY_KEY: Final = "queued_chargers_at_end"
"""Set in a run's stored ``summary`` beside :data:`QUEUED_SUMMARY_KEY`, at the same moments: per
charger, ``[count, first_seq, last_seq]`` of the messages it left in the outbox (a charger's
messages leave its FIFO from the front, so a later run can tell how many of them it delivered)."""

_summary_decoder: Final = msgspec.json.Decoder(dict[str, Any])

_RUN_SELECT: Final = (
    "SELECT id, name, started_at, ended_at, seed, config, config_sha256, version, status,"
    " exit_code, summary, resumed_from FROM runs"
)


class RunRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``runs``. Times are UTC ISO-8601 strings; ``summary`` is the decoded JSON."""

    id: int
    name: str
    started_at: str
    ended_at: str | None
    seed: int | None
    config: str | None
    config_sha256: str | None
    version: str | None
    status: str
    exit_code: int | None
    summary: dict[str, Any] | None
    resumed_from: int | None


@contextmanager
def open_readonly(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the ledger at ``path``, closed on exit (usable while a writer
    is active). Raises ``FileNotFoundError`` when there is no such file."""
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"no ledger at {target}")
    conn = sqlite3.connect(f"{target.resolve().as_uri()}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def latest_run(conn: sqlite3.Connection) -> RunRecord | None:
    """The most recently started run (highest id) read through ``conn``, or ``None`` for a
    ledger with no runs."""
    row = conn.execute(f"{_RUN_SELECT} ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else _run_record(row)


def get_run(conn: sqlite3.Connection, run_id: int | None = None) -> RunRecord:
    """Run ``run_id`` (default: the latest) read through ``conn``; ``KeyError`` when absent."""
    if run_id is None:
        record = latest_run(conn)
        if record is None:
            raise KeyError("the ledger has no runs")
        return record
    row = conn.execute(f"{_RUN_SELECT} WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise KeyError(f"no run with id {run_id}")
    return _run_record(row)


def queued_by_action(conn: sqlite3.Connection) -> dict[str, int]:
    """The outbox as it stands (every charger's undelivered transaction messages, whichever
    run queued them), counted per action, by action name."""
    counts = conn.execute(
        "SELECT json_extract(entry, '$.action'), count(*) FROM outbox GROUP BY 1")
    return dict(sorted((str(action), int(n)) for action, n in counts))


def queued_at_end(conn: sqlite3.Connection, run: RunRecord) -> dict[str, int] | None:
    """What ``run`` left queued, per action: as recorded in its summary
    (:data:`QUEUED_SUMMARY_KEY`); with nothing recorded, the outbox as it stands if ``run`` is
    the ledger's latest run (still going, killed, or ended by a version that did not record it:
    no run has touched the outbox since); ``None`` when it cannot be known."""
    recorded = (run.summary or {}).get(QUEUED_SUMMARY_KEY)
    if isinstance(recorded, dict):
        return {str(action): int(n) for action, n in recorded.items()}
    latest = conn.execute("SELECT max(id) FROM runs").fetchone()[0]
    has_outbox = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").fetchone()
    return queued_by_action(conn) if run.id == latest and has_outbox else None


def queued_by_charger(conn: sqlite3.Connection) -> dict[str, list[int]]:
    """The outbox as it stands, per charger (by id): ``[count, first_seq, last_seq]`` of its
    undelivered messages."""
    rows = conn.execute(
        "SELECT charger, count(*), min(position), max(position) FROM outbox GROUP BY charger")
    return {str(charger): [int(n), int(first), int(last)] for charger, n, first, last in rows}


def queued_chargers_at_end(
    conn: sqlite3.Connection, run: RunRecord
) -> dict[str, list[int]] | None:
    """What ``run`` left queued, per charger (``[count, first_seq, last_seq]``): as
    :func:`queued_at_end`, from its summary (:data:`QUEUED_CHARGERS_SUMMARY_KEY`), else the
    outbox as it stands if ``run`` is the latest run, else ``None``."""
    recorded = (run.summary or {}).get(QUEUED_CHARGERS_SUMMARY_KEY)
    if isinstance(recorded, dict):
        return {str(charger): [int(v) for v in seqs] for charger, seqs in recorded.items()}
    if QUEUED_SUMMARY_KEY in (run.summary or {}):  # recorded by a version without this key
        return None
    latest = conn.execute("SELECT max(id) FROM runs").fetchone()[0]
    has_outbox = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").fetchone()
    return queued_by_charger(conn) if run.id == latest and has_outbox else None


def integrity_check_conn(conn: sqlite3.Connection) -> str:
    """``PRAGMA integrity_check`` through ``conn``, its rows joined by newlines (``"ok"`` for a
    sound file)."""
    return "\n".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    summary = None if row[10] is None else _summary_decoder.decode(row[10])
    return RunRecord(
        id=row[0], name=row[1], started_at=row[2], ended_at=row[3], seed=row[4], config=row[5],
        config_sha256=row[6], version=row[7], status=row[8], exit_code=row[9], summary=summary,
        resumed_from=row[11],
    )
