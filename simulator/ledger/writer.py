"""The ledger's Trio actor: :func:`run_ledger_writer` drains the bus's lossless subscription
into batches and writes them, one transaction each, through a :class:`~simulator.ledger.Ledger`
it owns.

Rules:

- Batches go to one dedicated writer thread that writes them in order and never waits on the
  event loop between two of them, so the loop's lag does not pace the ledger. While a batch
  fills, the channel is polled, not waited on (a waiting receiver is woken by every event
  published).
- Backpressure, never loss: the thread holds at most :data:`WRITER_BACKLOG_BATCHES` batches'
  worth; beyond that the collecting task takes no events, the channel's buffer fills, and then
  its publishers wait.
- :class:`~simulator.ledger.SaveOutbox` controls travel on the same channel as the events, so an
  outbox is saved in the same transaction as the events published before it.
- Once a batch is committed, its :class:`~simulator.ledger.SaveOutbox` controls go to
  ``on_stored`` in the Trio thread (from the writer thread with ``TrioToken.run_sync_soon``): the
  chargers' write-ahead waits for that before sending a transaction message.
- Under virtual time pass ``offload=run_inline``: every ledger call then runs in the Trio thread,
  one batch at a time, and the task waits on the channel (a thread looks idle to the mock clock,
  which would jump ahead while a batch is written).
- Shutdown is bounded: on cancellation what was received is flushed within
  ``shutdown_flush_timeout`` seconds in all. A database error always propagates and leaves the
  run ``running``.

This is the only module of :mod:`simulator.ledger` that imports trio.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

import msgspec
import trio

from simulator.events import Event
from simulator.ledger.outbox import SaveOutbox
from simulator.ledger.schema import RunStatus
from simulator.ledger.store import Ledger

DEFAULT_BATCH_SIZE: Final = 2000
"""Events per write transaction, at most."""

DEFAULT_FLUSH_INTERVAL: Final = 0.2
"""Seconds an event may wait in the collecting task before its batch is handed to the writer
thread (which may still hold up to :data:`WRITER_BACKLOG_BATCHES` batches before it)."""

SAVE_FLUSH_INTERVAL: Final = 0.01
"""Seconds a batch holding an outbox save may wait before it goes to the writer thread (the
threaded writer): the chargers' transaction messages wait for that save's commit (write-ahead),
and a batch held the whole flush interval released all of them at once, a burst that the CSMS
then answered seconds apart (the latency measured rose from 1 to 36 ms at 1,000 chargers)."""

FLUSH_POLLS: Final = 8
"""Looks at the channel per flush interval while a batch fills, or at the writer thread while
it has no room. While the thread has no room, a full channel buffer holds its publishers until
the next look."""

MIN_POLL: Final = 0.001
"""Seconds between two looks at least (a flush interval of 0 would spin)."""

DEFAULT_SHUTDOWN_FLUSH_TIMEOUT: Final = 10.0
"""Seconds the writer may spend flushing on cancellation before it gives up."""

WRITER_BACKLOG_BATCHES: Final = 4
"""Batches' worth of events the writer thread may hold before the collecting task stops taking
events (the last batch handed may overshoot by less than a batch). Beyond that the channel's
buffer takes the slack, then its publishers wait."""

_FINISH_POLL: Final = 0.005
"""Seconds between looks at a finishing writer thread."""


class RunSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The run row :func:`run_ledger_writer` starts: the arguments of ``Ledger.start_run``."""

    name: str
    seed: int
    config_text: str
    config_sha256: str
    version: str
    t0: float
    wall0: datetime
    resumed_from: int | None = None


class WriterStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`run_ledger_writer` wrote: rows, batches, outbox snapshots applied, and the
    status it set (None when it set none)."""

    run_id: int
    events: int
    batches: int
    outbox_saves: int
    status: str | None


class WritableLedger(Protocol):
    """What the writer needs of a ledger (:class:`~simulator.ledger.Ledger` is one); the same
    thread rules apply: one thread at a time."""

    @property
    def run_id(self) -> int | None: ...

    @property
    def outbox_saves(self) -> int: ...

    def start_run(
        self, *, name: str, seed: int, config_text: str, config_sha256: str, version: str,
        t0: float, wall0: datetime, resumed_from: int | None = None,
    ) -> int: ...

    def write_events(self, events: Sequence[Event]) -> int: ...

    def end_run(
        self, status: str, exit_code: int | None, summary: dict[str, Any] | None, *,
        t: float | None = None, run_id: int | None = None,
    ) -> None: ...

    def close(self) -> None: ...


LedgerOpener = Callable[[Path], WritableLedger]
"""How the writer opens its ledger: ``open_ledger(path)``, called in the offload (a worker
thread by default). ``Ledger.open`` by default."""

Offload = Callable[..., Awaitable[Any]]
"""How the ledger writer runs a blocking ledger call: ``await offload(fn, *args)``."""


async def run_inline(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a ledger call in the Trio thread (blocking it): the ``offload`` for virtual time."""
    return fn(*args)


async def run_ledger_writer(
    ledger_path: str | Path,
    receive: trio.MemoryReceiveChannel[Event],
    *,
    run: RunSpec,
    batch_size: int = DEFAULT_BATCH_SIZE,
    flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    finish: bool = True,
    mark_interrupted: bool = True,
    shutdown_flush_timeout: float = DEFAULT_SHUTDOWN_FLUSH_TIMEOUT,
    offload: Offload | None = None,
    open_ledger: LedgerOpener = Ledger.open,
    on_stored: Callable[[list[SaveOutbox]], None] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> WriterStatistics:
    """The ledger actor: write everything that arrives on ``receive`` to ``ledger_path``.

    Opens the ledger with ``open_ledger`` and starts the run row from ``run`` in a worker
    thread, then reports the run id with ``task_status.started(run_id)``. Events (including
    ``SaveOutbox`` controls) are written in batches of at most ``batch_size``, at the latest
    ``flush_interval`` seconds after the first event of a batch arrived (the channel is polled
    :data:`FLUSH_POLLS` times per interval meanwhile), by the writer thread (see the module's
    rules on backpressure).

    At end-of-channel: writes what is left, marks the run ``completed`` (exit code unset; the
    caller may overwrite it with ``finish_run`` once the verdicts are known) when ``finish``,
    closes the ledger and returns its statistics. On cancellation (Ctrl-C): shielded and bounded by
    ``shutdown_flush_timeout`` seconds in all, writes what was received or is still buffered,
    marks the run ``interrupted`` when ``mark_interrupted`` and all of it was written, closes the
    ledger and re-raises (a flush that overran the bound leaves the run ``running`` and the
    thread writing: the process ends with it, and WAL keeps the file sound). Owns and closes
    ``receive``. A database error propagates, also when it comes during a cancellation (the run
    stays ``running``).

    ``on_stored(saves)`` is called in the Trio thread with the ``SaveOutbox`` controls of each
    batch once it is committed (never for a batch that failed or was not written).

    ``offload``, when given, runs every ledger call instead (``await offload(fn, *args)``), one
    batch at a time, with this task waiting on the channel, not polling it: pass
    :func:`run_inline` under virtual time. Raises ``ValueError`` for a ``batch_size`` below 1 or
    a negative ``flush_interval``.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if flush_interval < 0 or math.isnan(flush_interval):
        raise ValueError(f"flush_interval must be >= 0 seconds, got {flush_interval}")
    run_sync: Offload = offload if offload is not None else trio.to_thread.run_sync
    with receive:  # closed without a checkpoint: a database error must not become Cancelled
        ledger: WritableLedger = await run_sync(open_ledger, Path(ledger_path))
        counts = {"events": 0, "batches": 0, "outbox": 0}
        status: str | None = None
        run_id: int | None = None

        token = trio.lowlevel.current_trio_token()

        def write(batch: Sequence[Event]) -> None:
            counts["events"] += ledger.write_events(batch)
            counts["batches"] += 1
            counts["outbox"] = ledger.outbox_saves
            if on_stored is not None:
                saves = [event for event in batch if isinstance(event, SaveOutbox)]
                if saves and worker is None:
                    on_stored(saves)
                elif saves:
                    # (a run already over has nobody waiting any more)
                    with contextlib.suppress(trio.RunFinishedError):
                        token.run_sync_soon(on_stored, saves)

        worker = None if offload is not None else _WriterThread(write, batch_size)
        if worker is not None:
            worker.start()  # before anything can fail: finish() then always has a thread to stop
        pending: list[Event] = []
        bound: float | None = None  # when a flush on cancellation must give up
        try:
            run_id = await run_sync(lambda: ledger.start_run(
                name=run.name, seed=run.seed, config_text=run.config_text,
                config_sha256=run.config_sha256, version=run.version, t0=run.t0,
                wall0=run.wall0, resumed_from=run.resumed_from,
            ))
            task_status.started(run_id)
            if worker is None:
                await _collect_inline(receive, pending, run_sync, write, batch_size, flush_interval)
            else:
                await _collect_threaded(receive, pending, worker, batch_size, flush_interval)
                await worker.finish()
                worker.check()
            if finish:
                status = RunStatus.COMPLETED
                end_t = trio.current_time()
                await run_sync(
                    lambda: ledger.end_run(RunStatus.COMPLETED, None, None, t=end_t)
                )
        except (trio.Cancelled, KeyboardInterrupt):
            bound = trio.current_time() + shutdown_flush_timeout
            with trio.CancelScope(shield=True, deadline=bound):
                _drain_nowait(receive, pending, math.inf)
                if ledger.run_id is not None:
                    if worker is not None:
                        worker.hand(pending)
                        written = await worker.finish()
                        worker.check()  # a database error wins over the cancellation
                    else:
                        if pending:
                            await run_sync(write, pending)
                        written = True
                    pending = []
                    if written and mark_interrupted:
                        status = RunStatus.INTERRUPTED
                        end_t = trio.current_time()
                        await run_sync(
                            lambda: ledger.end_run(RunStatus.INTERRUPTED, None, None, t=end_t)
                        )
            raise
        finally:
            with trio.CancelScope(shield=True):
                # A thread still writing (after a flush that overran its bound) keeps the
                # connection: the process ends with it, and WAL keeps the file sound.
                if bound is None:
                    bound = trio.current_time() + shutdown_flush_timeout
                if worker is None or await worker.finish(deadline=bound):
                    await run_sync(ledger.close)
    assert run_id is not None
    return WriterStatistics(
        run_id=run_id, events=counts["events"], batches=counts["batches"],
        outbox_saves=counts["outbox"], status=status,
    )


def _drain_nowait(
    receive: trio.MemoryReceiveChannel[Event], batch: list[Event], limit: float
) -> bool:
    """Move buffered events into ``batch`` up to ``limit``; True when the channel has ended."""
    while len(batch) < limit:
        try:
            batch.append(receive.receive_nowait())
        except trio.WouldBlock:
            return False
        except trio.EndOfChannel:
            return True
    return False


async def _fill_until(
    receive: trio.MemoryReceiveChannel[Event], batch: list[Event], limit: int, deadline: float
) -> bool:
    """Add events to ``batch`` as they arrive until it holds ``limit`` or ``deadline`` passes;
    True when the channel has ended."""
    while True:
        if _drain_nowait(receive, batch, limit):
            return True
        if len(batch) >= limit:
            return False
        with trio.move_on_at(deadline) as scope:
            try:
                batch.append(await receive.receive())
            except trio.EndOfChannel:
                return True
        if scope.cancelled_caught:
            return False


async def _collect_inline(
    receive: trio.MemoryReceiveChannel[Event],
    pending: list[Event],
    run_sync: Offload,
    write: Callable[[Sequence[Event]], None],
    batch_size: int,
    flush_interval: float,
) -> None:
    """Fill a batch while waiting on the channel, then write it through ``run_sync`` and wait
    for that; until end-of-channel. ``pending`` holds what is collected and not written (the
    caller's, for a flush on cancellation)."""
    ended = False
    while not ended:
        try:
            pending.append(await receive.receive())
        except trio.EndOfChannel:
            return
        deadline = trio.current_time() + flush_interval
        ended = await _fill_until(receive, pending, batch_size, deadline)
        await run_sync(write, pending)
        pending.clear()


async def _collect_threaded(
    receive: trio.MemoryReceiveChannel[Event],
    pending: list[Event],
    worker: _WriterThread,
    batch_size: int,
    flush_interval: float,
) -> None:
    """Fill batches by polling the channel and hand them to ``worker`` without waiting for the
    writes, until end-of-channel (then hand what is left). One turn takes all the thread has
    room for, in batches, so that the loop's lag does not bound the ledger's rate. ``pending``
    is as for :func:`_collect_inline`."""
    poll = max(flush_interval / FLUSH_POLLS, MIN_POLL)
    while True:
        worker.check()
        while worker.behind():  # backpressure: take no events until the thread catches up
            await trio.sleep(poll)
            worker.check()
        try:
            pending.append(await receive.receive())
        except trio.EndOfChannel:
            return
        deadline = trio.current_time() + flush_interval
        seen = 0  # the events of ``pending`` already looked at for a save
        while True:
            ended = _drain_nowait(receive, pending, max(batch_size, worker.room()))
            now = trio.current_time()
            if seen < len(pending) and any(isinstance(event, SaveOutbox)
                                           for event in pending[seen:]):
                deadline = min(deadline, now + SAVE_FLUSH_INTERVAL)
            seen = len(pending)
            if ended or len(pending) >= batch_size or now >= deadline:
                break
            await trio.sleep(min(poll, deadline - now))
        _hand_over(worker, pending, batch_size)
        if ended:
            return


@trio.lowlevel.enable_ki_protection
def _hand_over(worker: _WriterThread, pending: list[Event], batch_size: int) -> None:
    """Hand ``pending`` to ``worker`` in batches and empty it, as one step: a Ctrl-C between
    the two would have the flush on cancellation hand the same events again."""
    for start in range(0, len(pending), batch_size):
        worker.hand(pending[start:start + batch_size])
    pending.clear()


class _WriterThread:
    """The ledger's one writer thread: writes the batches handed to it in order, one transaction
    each, and never waits on the Trio loop between two of them (a writer that awaited
    ``trio.to_thread.run_sync`` per batch could write only once per turn of the loop, and fell
    behind a busy fleet for good).

    Handing over is thread-safe and never blocks; :meth:`behind` says when the collecting task
    should stop taking events. The first failed write is kept (:meth:`check` raises it) and what
    is handed after it is dropped: the run stays ``running``, as with any database error."""

    def __init__(self, write: Callable[[Sequence[Event]], None], batch_size: int) -> None:
        self._write = write
        self._limit = WRITER_BACKLOG_BATCHES * batch_size
        self._batches: queue.SimpleQueue[list[Event] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._backlog = 0
        self._failure: BaseException | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def hand(self, events: list[Event]) -> None:
        """Queue ``events`` (nothing when empty) as one batch; the thread owns the list now."""
        if not events:
            return
        with self._lock:
            self._backlog += len(events)
        self._batches.put(events)

    def room(self) -> int:
        """Events the thread may still take before it is :meth:`behind`."""
        return max(0, self._limit - self._backlog)

    def behind(self) -> bool:
        """Whether the thread holds at least :data:`WRITER_BACKLOG_BATCHES` batches' worth."""
        return self._backlog >= self._limit

    def check(self) -> None:
        """Raise the thread's write failure, if any."""
        if self._failure is not None:
            raise self._failure

    async def finish(self, deadline: float = math.inf) -> bool:
        """Let the thread write what it holds and end; wait for it (polling) until ``deadline``.
        True when it has ended, False when it is still writing. Idempotent; a cancellation
        point."""
        if not self._stopped:
            self._stopped = True
            self._batches.put(None)
        while self._thread.is_alive():
            if trio.current_time() >= deadline:
                return False
            await trio.sleep(_FINISH_POLL)
        return True

    def _run(self) -> None:
        while (batch := self._batches.get()) is not None:
            if self._failure is None:
                try:
                    self._write(batch)
                except BaseException as error:  # kept for the Trio side: check() raises it
                    self._failure = error
            with self._lock:
                self._backlog -= len(batch)
