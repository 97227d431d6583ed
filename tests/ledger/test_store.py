"""The synchronous ledger: schema and WAL, the charger index, the runs row's life cycle, event
rows, and read-only connections."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from simulator.events import (
    FrameIn,
    TransactionAcknowledged,
    TransactionStarted,
    TransactionStopped,
)
from simulator.ledger import (
    CHARGER_INDEX,
    KIND_INDEX,
    QUEUED_CHARGERS_SUMMARY_KEY,
    QUEUED_SUMMARY_KEY,
    Ledger,
    RunStatus,
    finish_run,
    get_run,
    open_readonly,
)
from tests.ledger.helpers import T0, entry, note, rows, start


def test_open_creates_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "lab.db"
    ledger = Ledger.open(path)
    try:
        assert ledger.journal_mode() == "wal"
        assert ledger.integrity_check() == "ok"
    finally:
        ledger.close()
    with open_readonly(path) as conn:
        # closed, it is one file: a reader finds the rollback journal and leaves nothing beside
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"runs", "events", "outbox", "frames", "faults", "transactions"} <= names
    assert KIND_INDEX == "idx_events_run_id_kind" and KIND_INDEX in names
    assert sorted(p.name for p in path.parent.iterdir()) == ["lab.db"]
    ledger = Ledger.open(path)  # reopening an existing ledger keeps it as it is, in WAL mode
    try:
        assert ledger.journal_mode() == "wal"
    finally:
        ledger.close()


def test_a_ledger_closed_while_a_reader_has_it_open_stays_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    ledger = Ledger.open(path)
    start(ledger)
    ledger.write_events([note(1)])
    with open_readonly(path) as conn:
        conn.execute("BEGIN")
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1  # a read snapshot
        ledger.close()  # does not wait for the reader to leave
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute("COMMIT")
    assert rows(path, "SELECT count(*) FROM events") == [(1,)]


def test_the_charger_index_is_built_when_the_run_ends(tmp_path: Path) -> None:
    """Kept up while a run writes, (run_id, charger) costs more than the rest of an insert;
    it exists between runs, not during one."""
    path = tmp_path / "index.db"

    def indexes() -> set[object]:
        return {row[0] for row in rows(path, "SELECT name FROM sqlite_master WHERE type = 'index'"
                                             " AND tbl_name = 'events'")}

    ledger = Ledger.open(path)
    try:
        start(ledger)
        ledger.write_events([note(i, f"CP-{i % 3}") for i in range(30)])
        assert indexes() == {"idx_events_run_id_kind"}
        ledger.end_run(RunStatus.COMPLETED, 0, None)
        assert indexes() == {"idx_events_run_id_kind", CHARGER_INDEX}
        plan = rows(path, "EXPLAIN QUERY PLAN SELECT count(*) FROM events"
                          " WHERE run_id = 1 AND charger = 'CP-1'")
        assert CHARGER_INDEX in str(plan)
        start(ledger)  # the next run keeps it: rebuilding over run 1's events would cost more
        assert indexes() == {"idx_events_run_id_kind", CHARGER_INDEX}
    finally:
        ledger.close()


def test_run_row_life_cycle(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    ledger = Ledger.open(path)
    try:
        run_id = start(ledger)
        record = ledger.get_run(run_id)
        assert (record.status, record.ended_at, record.exit_code, record.summary) == (
            RunStatus.RUNNING, None, None, None,
        )
        assert (record.name, record.seed, record.config_sha256, record.version) == (
            "lab", 42, "ab" * 32, "0.1.0",
        )
        assert record.config == "[run]\nname = 'lab'\n"
        assert record.started_at == "2026-01-02T03:04:05.000000Z"
        ledger.write_events([note(1), note(2)])
        ledger.end_run(RunStatus.COMPLETED, None, None, t=T0 + 10.5)
        record = ledger.get_run(run_id)
        assert (record.status, record.ended_at) == ("completed", "2026-01-02T03:04:15.500000Z")
        with pytest.raises(ValueError, match="unknown run status"):
            ledger.end_run("done", 0, None)
    finally:
        ledger.close()
    # the verdict comes later, from another connection; ended_at is kept
    finish_run(path, run_id, RunStatus.FAILED, 1, {"reasons": ["1 crash"]})
    with open_readonly(path) as conn:
        record = get_run(conn)
    assert (record.status, record.exit_code) == ("failed", 1)
    assert record.summary == {"reasons": ["1 crash"], "queued_at_end": {},
                              "queued_chargers_at_end": {}}
    assert record.ended_at == "2026-01-02T03:04:15.500000Z"
    with pytest.raises(ValueError, match="no run with id 99"):
        finish_run(path, 99, RunStatus.FAILED, 1, None)


def test_a_resumed_run_closes_the_killed_one(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    killed = Ledger.open(path)
    first = start(killed)
    killed.write_events([note(1), note(7)])
    killed.close()  # never ended: as after kill -9
    ledger = Ledger.open(path)
    try:
        second = start(ledger, resumed_from=first)
        earlier = ledger.get_run(first)
        assert (earlier.status, earlier.ended_at) == ("interrupted", "2026-01-02T03:04:12.000000Z")
        latest = ledger.latest_run()
        assert latest is not None
        assert (latest.id, latest.resumed_from, latest.status) == (second, first, "running")
        ledger.write_events([note(1)])
    finally:
        ledger.close()
    assert rows(path, "SELECT run_id, seq FROM events ORDER BY rowid") == [
        (first, 1), (first, 2), (second, 1),
    ]


def queued_record(path: Path, run_id: int) -> object:
    with open_readonly(path) as conn:
        summary = get_run(conn, run_id).summary
    return None if summary is None else summary.get(QUEUED_SUMMARY_KEY)


def test_each_run_keeps_what_it_left_queued_whatever_later_runs_do(tmp_path: Path) -> None:
    """What a run left in the outbox is recorded with the run as it ends (a killed run's, as
    the next run starts), so that a later run emptying or delivering the outbox leaves it be,
    and overwriting an earlier run's verdict keeps it."""
    path = tmp_path / "lab.db"
    ledger = Ledger.open(path)
    try:
        first = start(ledger)
        ledger.save_outbox("CP-1", [entry(1, "StartTransaction"), entry(2), entry(3)])
        ledger.save_outbox("CP-2", [entry(1, "StopTransaction")])
        ledger.end_run(RunStatus.COMPLETED, None, None)
    finally:
        ledger.close()
    left = {"MeterValues": 2, "StartTransaction": 1, "StopTransaction": 1}
    finish_run(path, first, RunStatus.COMPLETED, 0, {"reasons": []})
    assert queued_record(path, first) == left

    ledger = Ledger.open(path)
    try:
        second = start(ledger)  # a fresh run: the outbox is emptied
        ledger.save_outbox("CP-1", [entry(1, "StopTransaction")])
        ledger.close()  # killed: never ended
        ledger = Ledger.open(path)
        third = start(ledger, resumed_from=second)  # the killed run's leftovers are recorded
        ledger.save_outbox("CP-1", [])  # and delivered
        ledger.end_run(RunStatus.COMPLETED, None, None)
    finally:
        ledger.close()
    finish_run(path, first, RunStatus.FAILED, 1, {"reasons": ["a later verdict"]})
    with open_readonly(path) as conn:
        assert get_run(conn, first).summary == {
            "reasons": ["a later verdict"], QUEUED_SUMMARY_KEY: left,
            QUEUED_CHARGERS_SUMMARY_KEY: {"CP-1": [3, 1, 3], "CP-2": [1, 1, 1]}}
        assert get_run(conn, second).status == RunStatus.INTERRUPTED
    assert queued_record(path, second) == {"StopTransaction": 1}
    assert queued_record(path, third) == {}
    with open_readonly(path) as conn:  # per charger: [count, first seq, last seq]
        assert get_run(conn, second).summary[QUEUED_CHARGERS_SUMMARY_KEY] == {"CP-1": [1, 1, 1]}
        assert get_run(conn, third).summary[QUEUED_CHARGERS_SUMMARY_KEY] == {}


def test_event_rows(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    ledger = Ledger.open(path)
    try:
        with pytest.raises(RuntimeError, match="start_run"):
            ledger.write_events([note(1)])
        run_id = start(ledger)
        frame = FrameIn(t=T0 + 2.25, charger="CP-9", connector=2, raw='[3,"a",{}]',
                        message_type=3, unique_id="a", action="Heartbeat", latency=0.125)
        assert ledger.write_events([note(1), frame]) == 2
        assert ledger.write_events([note(3)]) == 1
    finally:
        ledger.close()
    got = rows(path, "SELECT run_id, seq, t, wall, charger, connector, kind, data FROM events"
                     " ORDER BY seq")
    assert got[1] == (
        run_id, 2, 2.25, "2026-01-02T03:04:07.250000Z", "CP-9", 2, "frame_in",
        '{"raw":"[3,\\"a\\",{}]","message_type":3,"unique_id":"a","action":"Heartbeat",'
        '"latency":0.125}',
    )
    assert [(r[1], r[6], json.loads(str(r[7]))) for r in got] == [
        (1, "note", {"what": "n1"}), (2, "frame_in", json.loads(str(got[1][7]))),
        (3, "note", {"what": "n3"}),
    ]
    assert rows(path, "SELECT action, latency, direction FROM frames") == [
        ("Heartbeat", 0.125, "in"),
    ]


def test_open_readonly_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), open_readonly(tmp_path / "nope.db"):
        pass


def test_readonly_connection_on_a_non_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, not a database\n" * 100)
    with pytest.raises(sqlite3.DatabaseError), open_readonly(path) as conn:
        conn.execute("SELECT * FROM runs")


@pytest.mark.parametrize(
    "transaction_id",
    [1, -5, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**40],
)
def test_the_transactions_view_gives_the_central_systems_id_exactly(
    tmp_path: Path, transaction_id: int
) -> None:
    """An id SQLite holds as an integer comes as one; any other comes as its exact digits
    (text), never as a float that lost them."""
    path = tmp_path / "lab.db"
    ledger = Ledger.open(path)
    try:
        start(ledger)
        ledger.write_events([
            TransactionStarted(t=T0 + 1, charger="CP-1", connector=1, id_tag="TAG",
                               meter_start=0, local_id=1),
            TransactionAcknowledged(t=T0 + 2, charger="CP-1", connector=1, local_id=1,
                                    transaction_id=transaction_id, status="Accepted"),
            TransactionStopped(t=T0 + 3, charger="CP-1", connector=1, local_id=1,
                               transaction_id=transaction_id, meter_stop=10, reason="Local"),
        ])
    finally:
        ledger.close()
    [(shown, status)] = rows(path, "SELECT transaction_id, ack_status FROM transactions")
    fits = -(2**63) <= transaction_id < 2**63
    assert shown == (transaction_id if fits else str(transaction_id))
    assert status == "Accepted"
