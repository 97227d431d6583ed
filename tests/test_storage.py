"""The ledger: schema and WAL, runs row life cycle, event rows, outbox, the batching writer actor,
and a writer killed with SIGKILL mid-run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
import trio.lowlevel
import trio.testing

from simulator.bus import EventBus
from simulator.events import Event, FrameIn, Note
from simulator.machines.effects import OutboxEntry
from simulator.report import ActionStats, summarize
from simulator.storage import (
    CHARGER_INDEX,
    WRITER_BACKLOG_BATCHES,
    Ledger,
    RunSpec,
    RunStatus,
    SaveOutbox,
    finish_run,
    get_run,
    open_readonly,
    run_inline,
    run_ledger_writer,
)

WALL0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T0 = 1000.0


def spec(name: str = "lab", resumed_from: int | None = None) -> RunSpec:
    return RunSpec(
        name=name, seed=42, config_text="[run]\nname = 'lab'\n", config_sha256="ab" * 32,
        version="0.1.0", t0=T0, wall0=WALL0, resumed_from=resumed_from,
    )


def start(ledger: Ledger, name: str = "lab", resumed_from: int | None = None) -> int:
    s = spec(name, resumed_from)
    return ledger.start_run(
        name=s.name, seed=s.seed, config_text=s.config_text, config_sha256=s.config_sha256,
        version=s.version, t0=s.t0, wall0=s.wall0, resumed_from=s.resumed_from,
    )


def note(i: int, charger: str = "CP-1") -> Note:
    return Note(t=T0 + i, charger=charger, what=f"n{i}")


def rows(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with open_readonly(path) as conn:
        return conn.execute(sql, args).fetchall()


def entry(seq: int, action: str = "MeterValues") -> OutboxEntry:
    return OutboxEntry(seq=seq, action=action, payload=json.dumps({"connectorId": 1, "n": seq}),
                       local_tx=3, attempts=seq % 2)


# --- the synchronous ledger ---------------------------------------------------------------------


def test_open_creates_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "lab.db"
    ledger = Ledger.open(path)
    try:
        assert ledger.journal_mode() == "wal"
        assert ledger.integrity_check() == "ok"
    finally:
        ledger.close()
    with open_readonly(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"runs", "events", "outbox", "frames", "faults", "transactions"} <= names
    assert "idx_events_run_id_kind" in names
    Ledger.open(path).close()  # reopening an existing ledger keeps it as it is


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
    assert record.summary == {"reasons": ["1 crash"]}
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


def test_outbox_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    ledger = Ledger.open(path)
    try:
        start(ledger)
        ledger.save_outbox("CP-1", [entry(1, "StartTransaction"), entry(2), entry(3)])
        ledger.save_outbox("CP-2", [entry(5)])
        ledger.save_outbox("CP-3", [entry(6)])
        ledger.save_outbox("CP-3", [])  # delivered: cleared
        ledger.save_outbox("CP-1", [entry(2), entry(3)])  # the head was delivered
        # the control event replaces the outbox in the same transaction as the events around it
        ledger.write_events([note(1), SaveOutbox(t=T0 + 2, charger="CP-2", entries=(entry(5),
                                                                                     entry(8)))])
    finally:
        ledger.close()
    ledger = Ledger.open(path)  # what a restarted simulator sees
    try:
        stored = ledger.load_outbox()
    finally:
        ledger.close()
    decoder = msgspec.json.Decoder(OutboxEntry)
    restored = {charger: [decoder.decode(raw) for raw in raws] for charger, raws in stored.items()}
    assert restored == {"CP-1": [entry(2), entry(3)], "CP-2": [entry(5), entry(8)]}
    # an instruction to the writer, not a fact: no row records it
    assert rows(path, "SELECT kind FROM events") == [("note",)]
    with pytest.raises(ValueError, match="charger"):
        SaveOutbox(t=0, entries=())


def test_a_growing_outbox_writes_only_the_rows_that_changed(tmp_path: Path) -> None:
    """A queue that grows offline is saved at every new message: each save writes that message,
    not the whole queue again (which made an outage quadratic in the ledger). A delivery deletes
    one row, an entry updated in place rewrites one."""
    ledger = Ledger.open(tmp_path / "grow.db")
    conn = ledger.db.conn
    try:
        start(ledger)
        queue: list[OutboxEntry] = []
        for seq in range(1, 201):
            queue.append(entry(seq))
            before = conn.total_changes
            ledger.save_outbox("CP-1", queue)
            assert conn.total_changes - before == 1
        del queue[0]  # the head was delivered
        before = conn.total_changes
        ledger.save_outbox("CP-1", queue)
        assert conn.total_changes - before == 1
        queue[0] = msgspec.structs.replace(queue[0], transaction_id=77)  # answered: id known
        before = conn.total_changes
        ledger.write_events([SaveOutbox(t=T0, charger="CP-1", entries=tuple(queue))])
        assert conn.total_changes - before == 1
        stored = ledger.load_outbox()["CP-1"]
        assert [msgspec.json.decode(raw, type=OutboxEntry) for raw in stored] == queue
    finally:
        ledger.close()


def test_outbox_saves_in_any_order_of_changes_read_back_as_saved(tmp_path: Path) -> None:
    """Seeded random walks over what a queue goes through (appends, deliveries from the head,
    updates in place, retries that drop a message, encoded entries, reopening the ledger, a
    batch rolled back): after every save the table reads back exactly the last entries saved."""
    import random

    rng = random.Random(20261126)
    path = tmp_path / "walk.db"
    ledger = Ledger.open(path)
    start(ledger)
    queues: dict[str, list[OutboxEntry]] = {"CP-1": [], "CP-2": []}
    next_seq = 1
    try:
        for step in range(600):
            charger = rng.choice(sorted(queues))
            queue = queues[charger]
            move = rng.random()
            encoded = False
            if move < 0.45 or not queue:
                queue.append(entry(next_seq))
                next_seq += 1
            elif move < 0.65:
                del queue[0]
            elif move < 0.8:
                i = rng.randrange(len(queue))
                queue[i] = msgspec.structs.replace(queue[i], attempts=queue[i].attempts + 1)
            elif move < 0.85:
                del queue[rng.randrange(len(queue))]
            elif move < 0.88:
                queue.clear()
            elif move < 0.9:
                queue.append(entry(next_seq))
                next_seq += 1
                encoded = True
            elif move < 0.92:
                ledger.close()
                ledger = Ledger.open(path)  # a restarted simulator (--resume)
                start(ledger, resumed_from=1)
            elif move < 0.94:
                def fail(*args: object, original: Any = ledger._replace_outboxes) -> None:
                    original(*args)
                    raise sqlite3.OperationalError("disk I/O error (injected)")

                ledger._replace_outboxes = fail  # type: ignore[method-assign]
                with pytest.raises(sqlite3.OperationalError):
                    ledger.write_events([note(step), SaveOutbox(t=T0, charger=charger,
                                                                 entries=(entry(next_seq),))])
                del ledger._replace_outboxes
                next_seq += 1
                continue
            if encoded:
                ledger.save_outbox(charger, [msgspec.json.encode(e) for e in queue])
            elif rng.random() < 0.5:
                ledger.save_outbox(charger, queue)
            else:
                ledger.write_events([SaveOutbox(t=T0, charger=charger, entries=tuple(queue))])
            stored = ledger.load_outbox()
            for name, expected in queues.items():
                restored = [msgspec.json.decode(raw, type=OutboxEntry)
                            for raw in stored.get(name, [])]
                if name == charger:
                    assert restored == expected, step
    finally:
        ledger.close()


@pytest.mark.parametrize("chunk", [1, 4, 256])
def test_batches_of_any_size_are_written_whole_and_in_order(tmp_path: Path, chunk: int) -> None:
    """Rows go in multi-row INSERTs of power-of-two sizes up to the ledger's chunk: every batch
    size, on either side of a power of two, lands whole, with seq in publication order."""
    path = tmp_path / "chunks.db"
    ledger = Ledger.open(path)
    assert ledger._rows_per_statement(8) in (64, 128, 256)  # within SQLite's variable limit
    ledger._max_rows = chunk
    sizes = [0, 1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 1000]
    try:
        start(ledger)
        i = 0
        for size in sizes:
            assert ledger.write_events([note(i + k) for k in range(size)]) == size
            i += size
    finally:
        ledger.close()
    written = rows(path, "SELECT seq, json_extract(data, '$.what') FROM events ORDER BY rowid")
    assert written == [(n + 1, f"n{n}") for n in range(sum(sizes))]


@pytest.mark.parametrize("chunk", [1, 2, 256])
def test_a_batch_of_many_outbox_saves_lands_whole(tmp_path: Path, chunk: int) -> None:
    """The outbox saves of one batch go in multi-row statements (rows cleared, rows gone, rows
    written): across chunk sizes, every charger's rows end as its last save says."""
    path = tmp_path / "outbox.db"
    ledger = Ledger.open(path)
    ledger._max_rows = chunk
    chargers = [f"CP-{n}" for n in range(37)]
    try:
        start(ledger)
        # first batch: a queue of 3 per charger, written whole (nothing stored yet); the second
        # save of CP-0 in the batch supersedes the first
        first = [SaveOutbox(t=T0, charger="CP-0", entries=(entry(90),))]
        first += [SaveOutbox(t=T0, charger=c, entries=(entry(1), entry(2), entry(3)))
                  for c in chargers]
        ledger.write_events([note(0), *first])
        # second batch: the head delivered and one more queued (a row gone, a row new), except
        # CP-1, emptied, and CP-2, replaced by encoded entries (rewritten whole)
        second: list[Event] = [note(1)]
        for c in chargers:
            if c == "CP-1":
                second.append(SaveOutbox(t=T0, charger=c, entries=()))
            elif c == "CP-2":
                second.append(SaveOutbox(t=T0, charger=c, entries=(b'{"seq": 7}',)))
            else:
                second.append(SaveOutbox(t=T0, charger=c, entries=(entry(2), entry(3),
                                                                   entry(4))))
        ledger.write_events(second)
        assert ledger.outbox_saves == 2 * len(chargers)
    finally:
        ledger.close()
    stored = rows(path, "SELECT charger, position, json_extract(entry, '$.seq') FROM outbox"
                        " ORDER BY charger, position")
    expected = [("CP-2", 0, 7)] + [(c, seq, seq) for c in chargers if c not in ("CP-1", "CP-2")
                                   for seq in (2, 3, 4)]
    assert stored == sorted(expected)


def test_open_readonly_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), open_readonly(tmp_path / "nope.db"):
        pass


# --- the writer actor ---------------------------------------------------------------------------


async def test_writer_batches_by_size_and_completes_at_end_of_channel(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    send, receive = trio.open_memory_channel[Event](100)
    for i in range(7):
        send.send_nowait(note(i))
    send.close()  # everything is buffered before the writer starts: batches of 3, 3, 1
    with trio.fail_after(10):
        stats = await run_ledger_writer(path, receive, run=spec(), batch_size=3)
    assert (stats.events, stats.batches, stats.status) == (7, 3, "completed")
    assert rows(path, "SELECT seq FROM events ORDER BY seq") == [(i,) for i in range(1, 8)]
    assert rows(path, "SELECT status FROM runs") == [("completed",)]


async def test_writer_counts_the_outbox_saves_it_wrote(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    send, receive = trio.open_memory_channel[Event](100)

    def save(charger: str, seq: int) -> SaveOutbox:
        return SaveOutbox(t=float(seq), charger=charger, entries=(b'{"seq": %d}' % seq,))

    # batches of 3: two saves of CP-1 in the first (the last one is written), one of CP-2 later
    for event in (note(0), save("CP-1", 1), save("CP-1", 2), note(1), save("CP-2", 3), note(2)):
        send.send_nowait(event)
    send.close()
    with trio.fail_after(10):
        stats = await run_ledger_writer(path, receive, run=spec(), batch_size=3)
    assert (stats.events, stats.outbox_saves) == (3, 2)  # a save is no event row
    assert rows(path, "SELECT charger, entry FROM outbox ORDER BY charger") == [
        ("CP-1", '{"seq": 2}'), ("CP-2", '{"seq": 3}')]


async def test_writer_flushes_a_partial_batch_after_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    send, receive = trio.open_memory_channel[Event](100)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_ledger_writer(
            path, receive, run=spec(), batch_size=1000, flush_interval=0.02,
            task_status=task_status,
        ))
        await send.send(note(1))
        with trio.fail_after(5):  # written without waiting for a full batch or the end
            for _ in range(1000):
                if rows(path, "SELECT seq FROM events"):
                    break
                await trio.sleep(0.01)
        assert rows(path, "SELECT seq FROM events") == [(1,)]
        assert rows(path, "SELECT status FROM runs") == [("running",)]
        await send.aclose()


async def test_writer_through_the_bus_loses_nothing_under_backpressure(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    bus = EventBus()
    ledger_channel = bus.subscribe_lossless(4)  # tiny buffer: publishers wait on every batch
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            run_id = await nursery.start(lambda task_status: run_ledger_writer(
                path, ledger_channel, run=spec(), batch_size=50, flush_interval=0.001,
                task_status=task_status,
            ))

            async def publisher(charger: str) -> None:
                for i in range(500):
                    await bus.publish(note(i, charger))
                    await bus.publish_control(SaveOutbox(t=T0 + i, charger=charger,
                                                         entries=(entry(i),)))

            async with trio.open_nursery() as publishers:
                for charger in ("A", "B"):
                    publishers.start_soon(publisher, charger)
            await bus.aclose()
    assert bus.statistics().subscribers[0].dropped == 0
    counts = rows(path, "SELECT charger, kind, count(*) FROM events WHERE run_id = ?"
                        " GROUP BY 1, 2 ORDER BY 1, 2", run_id)
    assert counts == [("A", "note", 500), ("B", "note", 500)]
    # per publisher, the order is kept
    for charger in ("A", "B"):
        whats = rows(path, "SELECT json_extract(data, '$.what') FROM events WHERE charger = ?"
                           " AND kind = 'note' ORDER BY seq", charger)
        assert whats == [(f"n{i}",) for i in range(500)]
    assert rows(path, "SELECT charger, json_extract(entry, '$.seq') FROM outbox ORDER BY 1") == [
        ("A", 499), ("B", 499),
    ]


async def test_under_virtual_time_a_full_buffer_costs_no_virtual_time(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    """Inline (virtual time) the writer waits on the channel: publishers that find the buffer
    full are let through at once, where a poll would let the mock clock jump to it."""
    path = tmp_path / "lab.db"
    send, receive = trio.open_memory_channel[Event](64)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_ledger_writer(
            path, receive, run=spec(), offload=run_inline, task_status=task_status,
        ))
        started = trio.current_time()
        async with send:
            for i in range(6400):  # a hundred buffers' worth, back to back
                await send.send(note(i))
        assert trio.current_time() == started
    assert rows(path, "SELECT count(*) FROM events") == [(6400,)]


async def test_writer_on_cancel_writes_what_it_has_and_marks_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    send, receive = trio.open_memory_channel[Event](100)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_ledger_writer(
                path, receive, run=spec(), flush_interval=3600, task_status=task_status,
            ))
            for i in range(5):
                await send.send(note(i))
            await trio.lowlevel.checkpoint()  # the writer takes the first one
            nursery.cancel_scope.cancel()  # as Ctrl-C: nothing was flushed yet
    assert rows(path, "SELECT count(*) FROM events") == [(5,)]
    ((status, ended_at),) = rows(path, "SELECT status, ended_at FROM runs")
    assert status == "interrupted" and ended_at is not None
    with open_readonly(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_writer_keeps_collecting_while_its_thread_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collecting task hands batches to the writer thread without waiting for the write:
    while the first batch is stuck in the database, a second is taken too, and only then does
    the channel fill and hold its publisher (backpressure)."""
    path = tmp_path / "lab.db"
    release = threading.Event()
    real_write = Ledger.write_events

    def slow_write(self: Ledger, events: Any) -> int:
        release.wait(10)
        return real_write(self, events)

    monkeypatch.setattr(Ledger, "write_events", slow_write)
    send, receive = trio.open_memory_channel[Event](5)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_ledger_writer(
                path, receive, run=spec(), batch_size=10, flush_interval=0.01,
                task_status=task_status,
            ))
            taken = idle = 0
            while idle < 40:  # until the channel has stayed full for 40 polls of the writer
                try:
                    send.send_nowait(note(taken))
                except trio.WouldBlock:
                    idle += 1
                    await trio.sleep(0.005)
                else:
                    taken, idle = taken + 1, 0
            # the thread holds at least two batches' worth (the last handed may overshoot by
            # less than a batch), and the channel 5 more; none of it is written yet
            limit = 10 * WRITER_BACKLOG_BATCHES
            assert limit + 5 <= taken < limit + 10 + 5
            assert rows(path, "SELECT count(*) FROM events") == [(0,)]
            release.set()
            for i in range(taken, 100):
                await send.send(note(i))
            await send.aclose()
    assert rows(path, "SELECT count(*), min(seq), max(seq) FROM events") == [(100, 1, 100)]
    assert rows(path, "SELECT status FROM runs") == [("completed",)]


async def test_a_failed_write_in_the_thread_ends_the_writer_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "lab.db"

    def broken_write(self: Ledger, events: Any) -> int:
        raise sqlite3.OperationalError("disk I/O error (injected)")

    monkeypatch.setattr(Ledger, "write_events", broken_write)
    send, receive = trio.open_memory_channel[Event](100)
    for i in range(7):
        send.send_nowait(note(i))
    send.close()  # batches of 3: the first fails, the rest is dropped, the error comes out
    with trio.fail_after(10), pytest.raises(sqlite3.OperationalError, match="injected"):
        await run_ledger_writer(path, receive, run=spec(), batch_size=3)
    assert rows(path, "SELECT status FROM runs") == [("running",)]
    with open_readonly(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_a_write_failing_during_cancellation_still_comes_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database error in the thread while the writer flushes on cancellation propagates and
    leaves the run ``running``: it is not swallowed into an ``interrupted`` run."""
    path = tmp_path / "lab.db"
    entered, go = threading.Event(), threading.Event()

    def failing_write(self: Ledger, events: Any) -> int:
        entered.set()
        go.wait(10)
        raise sqlite3.OperationalError("disk I/O error (injected)")

    monkeypatch.setattr(Ledger, "write_events", failing_write)
    send, receive = trio.open_memory_channel[Event](100)
    caught: list[BaseException] = []
    try:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                await nursery.start(lambda task_status: run_ledger_writer(
                    path, receive, run=spec(), batch_size=3, task_status=task_status,
                ))
                for i in range(3):  # a full batch: handed over, and the thread is stuck in it
                    await send.send(note(i))
                assert await trio.to_thread.run_sync(entered.wait, 10)
                await send.send(note(3))
                threading.Timer(0.1, go.set).start()  # fails while the flush waits for it
                nursery.cancel_scope.cancel()
    except* sqlite3.OperationalError as group:
        caught.extend(group.exceptions)
    assert len(caught) == 1
    assert rows(path, "SELECT status FROM runs") == [("running",)]


async def test_a_flush_on_cancellation_gives_up_after_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write stuck in the database holds the cancelled writer for ``shutdown_flush_timeout``
    seconds in all (not once in the flush and again at close); the run stays ``running``."""
    path = tmp_path / "lab.db"
    entered, go = threading.Event(), threading.Event()
    real_write = Ledger.write_events

    def stuck_write(self: Ledger, events: Any) -> int:
        entered.set()
        go.wait(30)
        return real_write(self, events)

    monkeypatch.setattr(Ledger, "write_events", stuck_write)
    send, receive = trio.open_memory_channel[Event](100)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_ledger_writer(
                path, receive, run=spec(), batch_size=3, shutdown_flush_timeout=1.0,
                task_status=task_status,
            ))
            for i in range(3):
                await send.send(note(i))
            assert await trio.to_thread.run_sync(entered.wait, 10)
            cancelled_at = trio.current_time()
            nursery.cancel_scope.cancel()
        waited = trio.current_time() - cancelled_at
        assert 1.0 <= waited < 1.8
        assert rows(path, "SELECT status FROM runs") == [("running",)]
    finally:
        go.set()  # let the thread end


@pytest.mark.parametrize(("batch_size", "flush_interval"), [(0, 0.1), (10, -1.0)])
async def test_writer_rejects_bad_settings(
    tmp_path: Path, batch_size: int, flush_interval: float
) -> None:
    _, receive = trio.open_memory_channel[Event](1)
    with pytest.raises(ValueError):
        await run_ledger_writer(tmp_path / "x.db", receive, run=spec(), batch_size=batch_size,
                                flush_interval=flush_interval)


# --- kill -9 ------------------------------------------------------------------------------------

_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime

    import trio

    from simulator.bus import EventBus
    from simulator.events import FrameOut, Note
    from simulator.storage import RunSpec, SaveOutbox, run_ledger_writer


    async def main(path: str) -> None:
        bus = EventBus()
        channel = bus.subscribe_lossless(256)
        spec = RunSpec(name="killed", seed=7, config_text="", config_sha256="00" * 32,
                       version="test", t0=trio.current_time(), wall0=datetime.now(UTC))
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_ledger_writer(
                path, channel, run=spec, batch_size=100, flush_interval=0.005,
                task_status=task_status))
            i = 0
            while True:  # until SIGKILL
                i += 1
                now = trio.current_time()
                await bus.publish(Note(t=now, charger=f"CP-{i % 7}", what="tick",
                                       data={"i": i, "pad": "x" * 200}))
                await bus.publish(FrameOut(t=now, charger=f"CP-{i % 7}", raw="[2]",
                                           message_type=2, unique_id=str(i), action="Heartbeat"))
                await bus.publish_control(SaveOutbox(t=now, charger=f"CP-{i % 7}",
                                                     entries=(b'{"seq": %d}' % i,)))


    trio.run(main, sys.argv[1])
    """
)


def test_kill_9_mid_run_leaves_a_sound_readable_ledger(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    script = tmp_path / "writer.py"
    script.write_text(_KILLED_WRITER)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    process = subprocess.Popen([sys.executable, str(script), str(path)], env=env)
    try:
        deadline = time.monotonic() + 6  # start-up included; the whole test stays under 10 s
        written = 0
        while written < 3000:  # let it run through many batches (and a WAL checkpoint or so)
            assert time.monotonic() < deadline, f"only {written} events written"
            assert process.poll() is None, "the writer died on its own"
            time.sleep(0.02)
            try:
                written = int(str(rows(path, "SELECT count(*) FROM events")[0][0]))
            except (FileNotFoundError, sqlite3.OperationalError):
                continue  # not created yet
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=2) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert path.with_name("killed.db-wal").is_file()  # killed with its WAL not checkpointed
    with open_readonly(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        record = get_run(conn)
        assert (record.name, record.status, record.ended_at) == ("killed", "running", None)
        events = conn.execute("SELECT seq, kind, data FROM events ORDER BY seq").fetchall()
        outbox = conn.execute("SELECT charger, entry FROM outbox").fetchall()
    assert len(events) >= written
    assert [seq for seq, _, _ in events] == list(range(1, len(events) + 1))  # no gap, no tear
    for _, kind, data in events:
        assert isinstance(json.loads(data), dict)
        assert kind in ("note", "frame_out")
    assert {charger for charger, _ in outbox} <= {f"CP-{n}" for n in range(7)}
    assert all(json.loads(raw)["seq"] > 0 for _, raw in outbox)
    # the report reads it as it is: the run never ended
    report = summarize(path)
    frames_out = sum(1 for _, kind, _ in events if kind == "frame_out")
    assert (report.status, report.ended_at, report.frames_out) == ("running", None, frames_out)
    assert report.actions == (ActionStats(action="Heartbeat", calls_sent=frames_out),)
    assert report.duration > 0
    # and a writer can take the file up again
    ledger = Ledger.open(path)
    try:
        assert ledger.integrity_check() == "ok"
        assert start(ledger, resumed_from=record.id) == record.id + 1
        assert ledger.get_run(record.id).status == "interrupted"
    finally:
        ledger.close()


def test_readonly_connection_on_a_non_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, not a database\n" * 100)
    with pytest.raises(sqlite3.DatabaseError), open_readonly(path) as conn:
        conn.execute("SELECT * FROM runs")
