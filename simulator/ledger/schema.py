"""The ledger's schema: its tables, views and indexes, the values of ``runs.status``, and the
connection settings every writer uses.

Tables: ``runs`` (one row per run, including resumed ones), ``events`` (every bus event:
``run_id``, ``seq``, ``t`` in seconds since run start, ``wall`` as UTC ISO-8601 with ``Z``,
``charger``, ``connector``, ``kind`` and the rest of the event as JSON ``data``), ``outbox``
(per charger, the transaction messages not yet delivered, at ``position = seq``) and ``memory``
(per charger, what it keeps through a power loss: registers, numbering, running transactions).
Views: ``frames``, ``faults`` and ``transactions``, read from ``events``. ``events`` is indexed on
``(run_id, kind)`` always and on ``(run_id, charger)`` (:data:`CHARGER_INDEX`) between runs only:
the first run on a ledger writes without it and builds it when it ends.

Every function here takes a connection and runs in its caller's transaction; none commits.
"""

from __future__ import annotations

import sqlite3
from typing import Final

import sqlite_utils

CHARGER_INDEX: Final = "idx_events_run_id_charger"
"""The index on ``events (run_id, charger)``: built when a run ends; the first run on a ledger
writes without it, since keeping it up row by row was the writer's largest cost."""

KIND_INDEX: Final = "idx_events_run_id_kind"
"""The index on ``events (run_id, kind)``, always present."""

CACHE_KIB: Final = 16384
"""SQLite page cache of a writer connection, in KiB (a larger cache wrote no faster and held
more memory: see ``tools/bench/README.md``, "Ledger")."""

WAL_AUTOCHECKPOINT_PAGES: Final = 10000
"""WAL size (pages) that triggers a checkpoint into the main file."""


class RunStatus:
    """The values of ``runs.status``."""

    RUNNING: Final = "running"
    COMPLETED: Final = "completed"
    FAILED: Final = "failed"
    INTERRUPTED: Final = "interrupted"

    ALL: Final = frozenset({RUNNING, COMPLETED, FAILED, INTERRUPTED})


VIEWS: Final = {
    "frames": """
        SELECT run_id, seq, t, wall, charger, connector,
               CASE kind WHEN 'frame_in' THEN 'in' ELSE 'out' END AS direction,
               json_extract(data, '$.message_type') AS message_type,
               json_extract(data, '$.unique_id') AS unique_id,
               json_extract(data, '$.action') AS action,
               json_extract(data, '$.latency') AS latency,
               json_extract(data, '$.violations') AS violations,
               json_extract(data, '$.raw') AS raw
        FROM events WHERE kind IN ('frame_in', 'frame_out')
    """,
    "faults": """
        SELECT run_id, seq, t, wall, charger, connector,
               json_extract(data, '$.fault') AS fault,
               json_extract(data, '$.params') AS params
        FROM events WHERE kind = 'fault'
    """,
    "transactions": """
        SELECT s.run_id, s.charger, s.connector,
               json_extract(s.data, '$.local_id') AS local_id,
               json_extract(s.data, '$.id_tag') AS id_tag,
               json_extract(s.data, '$.meter_start') AS meter_start,
               s.t AS started_t, s.wall AS started_wall,
               -- An id outside signed 64 bits is a REAL that lost digits from json_extract; with
               -- two paths it gives JSON text, "[<the id as written>,null]": cut as TEXT.
               (SELECT CASE typeof(json_extract(a.data, '$.transaction_id')) WHEN 'real'
                       THEN rtrim(ltrim(json_extract(a.data, '$.transaction_id', '$[0]'), '['),
                                  ',nul]')
                       ELSE json_extract(a.data, '$.transaction_id') END FROM events a
                 WHERE a.run_id IN (s.run_id, r.next_run) AND a.kind = 'tx_acked'
                   AND a.charger IS s.charger
                   AND json_extract(a.data, '$.local_id') = json_extract(s.data, '$.local_id')
                 ORDER BY a.seq LIMIT 1) AS transaction_id,
               (SELECT json_extract(a.data, '$.status') FROM events a
                 WHERE a.run_id IN (s.run_id, r.next_run) AND a.kind = 'tx_acked'
                   AND a.charger IS s.charger
                   AND json_extract(a.data, '$.local_id') = json_extract(s.data, '$.local_id')
                 ORDER BY a.seq LIMIT 1) AS ack_status,
               e.t AS stopped_t, e.wall AS stopped_wall,
               json_extract(e.data, '$.meter_stop') AS meter_stop,
               json_extract(e.data, '$.reason') AS stop_reason
        FROM events s
        LEFT JOIN (SELECT resumed_from AS run_id, MIN(id) AS next_run FROM runs
                   WHERE resumed_from IS NOT NULL GROUP BY resumed_from) r
          ON r.run_id = s.run_id
        LEFT JOIN events e
          ON e.run_id IN (s.run_id, r.next_run) AND e.kind = 'tx_stopped'
         AND e.charger IS s.charger
         AND json_extract(e.data, '$.local_id') = json_extract(s.data, '$.local_id')
        WHERE s.kind = 'tx_started'
    """,
}
"""The views, by name: their SQL over ``events``. A transaction's acknowledgement and stop may
come in the run that resumed its own (after a kill, the resumed charger stops it with
PowerLoss): ``transactions`` looks for them there too."""


def configure_writer(db: sqlite_utils.Database) -> None:
    """Put a writer connection in WAL mode with ``synchronous=NORMAL`` (a killed process leaves
    a consistent file: the last transactions may be missing, never half-written), with the page
    cache of :data:`CACHE_KIB` and checkpoints every :data:`WAL_AUTOCHECKPOINT_PAGES` pages
    (index upkeep dominates insert cost: the cache keeps the hot index pages in memory, and rarer
    checkpoints batch the writes back into the main file)."""
    db.enable_wal()
    db.conn.execute("PRAGMA synchronous=NORMAL")
    db.conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    db.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")


def create_schema(db: sqlite_utils.Database) -> None:
    """Create the tables and :data:`KIND_INDEX` where missing, and the views afresh; an existing
    ledger's data is left as it is. :data:`CHARGER_INDEX` is not created here
    (:func:`build_charger_index`)."""
    db.table("runs").create(
        {
            "id": int, "name": str, "started_at": str, "ended_at": str, "seed": int,
            "config": str, "config_sha256": str, "version": str, "status": str,
            "exit_code": int, "summary": str, "resumed_from": int,
        },
        pk="id",
        not_null=["name", "started_at", "status"],
        if_not_exists=True,
    )
    db.table("events").create(
        {
            "run_id": int, "seq": int, "t": float, "wall": str, "charger": str,
            "connector": int, "kind": str, "data": str,
        },
        not_null=["run_id", "seq", "t", "wall", "kind", "data"],
        if_not_exists=True,
    )
    db.table("events").create_index(["run_id", "kind"], KIND_INDEX, if_not_exists=True)
    db.table("outbox").create(
        {"charger": str, "position": int, "run_id": int, "entry": str},
        pk=("charger", "position"),
        not_null=["run_id", "entry"],
        if_not_exists=True,
    )
    db.table("memory").create(
        {"charger": str, "run_id": int, "memory": str},
        pk="charger",
        not_null=["run_id", "memory"],
        if_not_exists=True,
    )
    for name, sql in VIEWS.items():
        db.create_view(name, sql, replace=True)  # a ledger of an older version gets today's


def drop_charger_index_if_empty(conn: sqlite3.Connection) -> None:
    """Drop :data:`CHARGER_INDEX` when ``events`` has no rows yet. A ledger that already holds
    events keeps it: rebuilding it over the earlier runs' events too would cost more at every
    run's end than keeping it up."""
    if conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None:
        conn.execute(f"DROP INDEX IF EXISTS {CHARGER_INDEX}")


def build_charger_index(conn: sqlite3.Connection) -> None:
    """Create :data:`CHARGER_INDEX` if it is missing (a run is over: index its events)."""
    conn.execute(f"CREATE INDEX IF NOT EXISTS {CHARGER_INDEX} ON events (run_id, charger)")
