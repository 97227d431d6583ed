"""The ledger's Trio actor: batching, flushing, outbox saves, backpressure through the bus,
virtual time, cancellation, and a ledger whose writes are slow, broken or stuck (a
:class:`~simulator.ledger.Ledger` subclass passed as ``open_ledger``)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio
import trio.lowlevel
import trio.testing

from simulator.bus import EventBus
from simulator.events import Event
from simulator.ledger import Ledger, SaveOutbox, open_readonly
from simulator.ledger.writer import WRITER_BACKLOG_BATCHES, run_inline, run_ledger_writer
from tests.ledger.helpers import T0, entry, note, rows, spec


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


async def test_writer_keeps_collecting_while_its_thread_writes(tmp_path: Path) -> None:
    """The collecting task hands batches to the writer thread without waiting for the write:
    while the first batch is stuck in the database, a second is taken too, and only then does
    the channel fill and hold its publisher (backpressure)."""
    path = tmp_path / "lab.db"
    release = threading.Event()

    class SlowLedger(Ledger):
        def write_events(self, events: Sequence[Event]) -> int:
            release.wait(10)
            return super().write_events(events)

    send, receive = trio.open_memory_channel[Event](5)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_ledger_writer(
                path, receive, run=spec(), batch_size=10, flush_interval=0.01,
                open_ledger=SlowLedger.open, task_status=task_status,
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
    tmp_path: Path,
) -> None:
    path = tmp_path / "lab.db"
    written: list[int] = []

    class BrokenLedger(Ledger):
        def write_events(self, events: Sequence[Event]) -> int:
            written.append(len(events))
            raise sqlite3.OperationalError("disk I/O error (injected)")

    send, receive = trio.open_memory_channel[Event](100)
    for i in range(7):
        send.send_nowait(note(i))
    send.close()  # batches of 3: the first fails, the rest is dropped, the error comes out
    with trio.fail_after(10), pytest.raises(sqlite3.OperationalError, match="injected"):
        await run_ledger_writer(path, receive, run=spec(), batch_size=3,
                                open_ledger=BrokenLedger.open)
    assert written == [3]  # the rest was dropped, not tried
    assert rows(path, "SELECT status FROM runs") == [("running",)]
    with open_readonly(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_a_write_failing_during_cancellation_still_comes_out(tmp_path: Path) -> None:
    """A database error in the thread while the writer flushes on cancellation propagates and
    leaves the run ``running``: it is not swallowed into an ``interrupted`` run."""
    path = tmp_path / "lab.db"
    entered, go = threading.Event(), threading.Event()

    class FailingLedger(Ledger):
        def write_events(self, events: Sequence[Event]) -> int:
            entered.set()
            go.wait(10)
            raise sqlite3.OperationalError("disk I/O error (injected)")

    send, receive = trio.open_memory_channel[Event](100)
    caught: list[BaseException] = []
    try:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                await nursery.start(lambda task_status: run_ledger_writer(
                    path, receive, run=spec(), batch_size=3, open_ledger=FailingLedger.open,
                    task_status=task_status,
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


async def test_a_flush_on_cancellation_gives_up_after_its_bound(tmp_path: Path) -> None:
    """A write stuck in the database holds the cancelled writer for ``shutdown_flush_timeout``
    seconds in all (not once in the flush and again at close); the run stays ``running``."""
    path = tmp_path / "lab.db"
    entered, go = threading.Event(), threading.Event()

    class StuckLedger(Ledger):
        def write_events(self, events: Sequence[Event]) -> int:
            entered.set()
            go.wait(30)
            return super().write_events(events)

    send, receive = trio.open_memory_channel[Event](100)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_ledger_writer(
                path, receive, run=spec(), batch_size=3, shutdown_flush_timeout=1.0,
                open_ledger=StuckLedger.open, task_status=task_status,
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


