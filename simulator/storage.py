"""The ledger: one SQLite file per run (WAL mode), written in batches by one writer thread.

Tables (see DESIGN.md, "The ledger"): ``runs`` (one row per run, including resumed ones),
``events`` (every bus event: ``run_id``, ``seq``, ``t`` in seconds since run start, ``wall`` as UTC
ISO-8601 with ``Z``, ``charger``, ``connector``, ``kind`` and the rest of the event as JSON
``data``), ``outbox`` (per charger, the transaction messages not yet delivered, so that a restarted
simulator resumes them) and the views ``frames``, ``faults`` and ``transactions``. ``events`` is
indexed on ``(run_id, kind)`` always and on ``(run_id, charger)`` once a run has ended: the first
run on a ledger writes without that index and builds it when it ends (:data:`CHARGER_INDEX`).

:class:`Ledger` is synchronous and must be used by one thread at a time; :func:`run_ledger_writer`
is the Trio actor that owns one, drains the bus's lossless subscription into batches and hands
them to one writer thread (one transaction per batch). Outbox snapshots travel on the same
channel as :class:`SaveOutbox` control events (``EventBus.publish_control``), so they are applied
in the same transaction as the events published before them; they are not rows of ``events``, and
only the last snapshot per charger in a batch is written.
WAL with ``synchronous=NORMAL`` means a killed process leaves a consistent file (the last batches
may be missing, never half-written). Secrets are never written here: events are redacted at
source and the config text arrives redacted.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import operator
import queue
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import sqlite_utils
import trio

from simulator.events import Event

DEFAULT_BATCH_SIZE: Final = 2000
"""Events per write transaction, at most."""

DEFAULT_FLUSH_INTERVAL: Final = 0.2
"""Seconds an event may wait in the writer before its batch is handed to the writer thread
(which may still hold up to :data:`WRITER_BACKLOG_BATCHES` batches before it)."""

FLUSH_POLLS: Final = 8
"""Looks at the channel per flush interval while a batch fills, or at the writer thread while
it has no room. While the writer sleeps a full buffer makes the publishers wait (backpressure)
until the next look: the ledger's buffer (``runtime.LEDGER_BUFFER``, 8,192 events) holds about
300 ms of events of a saturated 10,000-charger fleet, and a look comes every 25 ms."""

MIN_POLL: Final = 0.001
"""Seconds between two looks at least (a flush interval of 0 would spin)."""

DEFAULT_SHUTDOWN_FLUSH_TIMEOUT: Final = 10.0
"""Seconds the writer may spend flushing on cancellation before it gives up."""

CACHE_KIB: Final = 16384
"""SQLite page cache of the writer connection, in KiB. Measured with 10,000 chargers writing
400,000 events, 64 MiB wrote no faster than 16 or 8 (about 11 µs an event: the pages it misses
come from the OS cache) and held 50 MiB more: 5 KiB of RSS per charger."""

WAL_AUTOCHECKPOINT_PAGES: Final = 10000
"""WAL size (pages) that triggers a checkpoint into the main file."""

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_STRIPPED_FIELDS: Final = ("kind", "t", "charger", "connector")

CHARGER_INDEX: Final = "idx_events_run_id_charger"
"""The index on ``events (run_id, charger)``: built when a run ends; the first run on a ledger
writes without it (kept up row by row it was the writer's largest cost)."""

_MAX_CHUNK_BITS: Final = 8
"""At most 2**8 = 256 rows per statement."""

_encoder: Final = msgspec.json.Encoder()
_summary_decoder: Final = msgspec.json.Decoder(dict[str, Any])


class RunStatus:
    """The values of ``runs.status``."""

    RUNNING: Final = "running"
    COMPLETED: Final = "completed"
    FAILED: Final = "failed"
    INTERRUPTED: Final = "interrupted"

    ALL: Final = frozenset({RUNNING, COMPLETED, FAILED, INTERRUPTED})


LOOP_PROBE_SUMMARY_KEY: Final = "loop_lag_probe"
"""Set (true) in a run's stored ``summary`` when its event-loop lag probe ran
(``simulator.actors.lag``): the report then tells a loop on time from one not measured."""

class SaveOutbox(Event, frozen=True, tag="outbox_saved"):
    """Control event: replace ``charger``'s outbox with ``entries`` (oldest first).

    Publish it with ``EventBus.publish_control`` (the effect ``PersistOutbox`` becomes one of
    these). Entries are msgspec Structs (or already-encoded JSON ``bytes``); the writer encodes them
    as JSON. It is an instruction to the writer, not a fact: no ``events`` row records it, and a
    later snapshot of the same charger in the same batch supersedes it.
    """

    entries: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.charger is None:
            raise ValueError("SaveOutbox needs the charger whose outbox it replaces")


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


class RunSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`run_ledger_writer` needs to start a run row (see :meth:`Ledger.start_run`)."""

    name: str
    seed: int
    config_text: str
    config_sha256: str
    version: str
    t0: float
    wall0: datetime
    resumed_from: int | None = None


class WriterStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`run_ledger_writer` wrote: rows, batches, outbox snapshots applied."""

    run_id: int
    events: int
    batches: int
    outbox_saves: int
    status: str | None


# --- schema -------------------------------------------------------------------------------------

_VIEWS: Final = {
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
               (SELECT json_extract(a.data, '$.transaction_id') FROM events a
                 WHERE a.run_id = s.run_id AND a.kind = 'tx_acked' AND a.charger IS s.charger
                   AND json_extract(a.data, '$.local_id') = json_extract(s.data, '$.local_id')
                 ORDER BY a.seq LIMIT 1) AS transaction_id,
               (SELECT json_extract(a.data, '$.status') FROM events a
                 WHERE a.run_id = s.run_id AND a.kind = 'tx_acked' AND a.charger IS s.charger
                   AND json_extract(a.data, '$.local_id') = json_extract(s.data, '$.local_id')
                 ORDER BY a.seq LIMIT 1) AS ack_status,
               e.t AS stopped_t, e.wall AS stopped_wall,
               json_extract(e.data, '$.meter_stop') AS meter_stop,
               json_extract(e.data, '$.reason') AS stop_reason
        FROM events s
        LEFT JOIN events e
          ON e.run_id = s.run_id AND e.kind = 'tx_stopped' AND e.charger IS s.charger
         AND json_extract(e.data, '$.local_id') = json_extract(s.data, '$.local_id')
        WHERE s.kind = 'tx_started'
    """,
}


def _create_schema(db: sqlite_utils.Database) -> None:
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
    events = db.table("events")
    events.create_index(["run_id", "kind"], if_not_exists=True)
    # (run_id, charger) is built when a run ends (Ledger.end_run), not kept up while it runs.
    db.table("outbox").create(
        {"charger": str, "position": int, "run_id": int, "entry": str},
        pk=("charger", "position"),
        not_null=["run_id", "entry"],
        if_not_exists=True,
    )
    for name, sql in _VIEWS.items():
        db.create_view(name, sql, ignore=True)


def wall_iso(moment: datetime) -> str:
    """``moment`` as UTC ISO-8601 with microseconds and a ``Z`` (naive datetimes are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _WallFormatter:
    """Formats Unix seconds as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` quickly: events come in bursts
    within the same second, so the date-and-time prefix of the last second is cached."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second: int | None = None
        self._prefix = ""

    def format(self, timestamp: float) -> str:
        second, micros = divmod(round(timestamp * 1_000_000), 1_000_000)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{micros:06d}Z"


# --- the ledger ---------------------------------------------------------------------------------


class Ledger:
    """A ledger file open for writing (and the read helpers a writer needs).

    Not thread-safe: one thread at a time (the connection allows a different thread per call, as
    ``trio.to_thread`` may use any worker). Every write method commits before it returns.
    """

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        """Use :meth:`open`."""
        self._db = db
        self._conn: sqlite3.Connection = db.conn
        self.path = path
        self._run_id: int | None = None
        self._t0 = 0.0
        self._epoch0 = 0.0
        self._seq = 0
        self._last_t = 0.0
        self._walls = _WallFormatter()
        self.outbox_saves = 0
        """The outboxes :meth:`write_events` has written: one per charger per batch (of a
        charger's :class:`SaveOutbox` events in one batch, the last is written)."""
        self._outbox_rows: dict[str, tuple[list[int], tuple[Any, ...]]] = {}
        """Per charger, the entries its outbox rows hold (each at ``position = seq``) and their
        seqs, as this connection last wrote them, so that a save writes only what changed: a queue
        that grows offline costs one row per new message, not the whole queue again at every
        message (quadratic). A charger absent here (not saved since the ledger was opened, or
        saved from entries without a ``seq``) is rewritten whole; any failed transaction
        clears it all."""
        self._variables = self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        """SQLite's limit on the parameters of one statement."""
        self._max_rows = 1 << _MAX_CHUNK_BITS
        """Rows per multi-row statement at most (see :meth:`_rows_per_statement`)."""

    @classmethod
    def open(cls, path: str | Path) -> Ledger:
        """Open (creating it and its parent directories if needed) the ledger at ``path`` in WAL
        mode with ``synchronous=NORMAL`` and make sure the schema exists."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(target, check_same_thread=False)
        try:
            db = sqlite_utils.Database(conn, execute_plugins=False)
            db.enable_wal()
            conn.execute("PRAGMA synchronous=NORMAL")
            # Index upkeep dominates insert cost: the page cache keeps the hot index pages in
            # memory, and rarer checkpoints batch the writes back into the main file.
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            with conn:
                _create_schema(db)
        except BaseException:
            conn.close()
            raise
        return cls(db, target)

    @property
    def run_id(self) -> int | None:
        """The run this ledger writes events for (set by :meth:`start_run`)."""
        return self._run_id

    @property
    def db(self) -> sqlite_utils.Database:
        """The underlying sqlite-utils database (same thread rules)."""
        return self._db

    def journal_mode(self) -> str:
        """SQLite's journal mode for this file (``"wal"``)."""
        row = self._conn.execute("PRAGMA journal_mode").fetchone()
        return str(row[0])

    def start_run(
        self,
        *,
        name: str,
        seed: int,
        config_text: str,
        config_sha256: str,
        version: str,
        t0: float,
        wall0: datetime,
        resumed_from: int | None = None,
    ) -> int:
        """Insert a ``running`` run row and make it the target of :meth:`write_events`.

        ``t0`` (monotonic seconds) is the run start; it maps to ``wall0`` (aware UTC datetime;
        naive means UTC). With ``resumed_from``, that earlier run, if still ``running`` (its
        process was killed), is marked ``interrupted`` and ends at its last event; the outbox
        table is left as it is. Without, the outbox table is emptied: an earlier run's
        undelivered messages are discarded. On a ledger with no events yet, the
        :data:`CHARGER_INDEX` is dropped until :meth:`end_run`.
        Raises ``ValueError`` when ``seed`` does not fit a signed 64-bit integer.
        """
        if not _INT64_MIN <= seed <= _INT64_MAX:
            raise ValueError(f"seed {seed} does not fit a signed 64-bit integer")
        if wall0.tzinfo is None:
            wall0 = wall0.replace(tzinfo=UTC)
        with self._conn:
            # Kept up row by row, the (run_id, charger) index made an insert cost 13 µs instead
            # of 5 with 10,000 chargers (each insert lands on a random leaf); built at the end
            # of the run it costs about 1 µs a row. Only a ledger with no events yet drops it:
            # rebuilding it over earlier runs' events too would cost more at every run's end.
            if self._conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None:
                self._conn.execute(f"DROP INDEX IF EXISTS {CHARGER_INDEX}")
            if resumed_from is None:
                # A fresh run: an earlier run's undelivered messages are not this run's to send
                # (``sim start`` warns); left in place, a later --resume would send them.
                self._conn.execute("DELETE FROM outbox")
                self._outbox_rows.clear()
            else:
                # It ended (unrecorded) at its last written event.
                self._conn.execute(
                    "UPDATE runs SET status = ?, ended_at = COALESCE(ended_at, (SELECT wall"
                    " FROM events WHERE run_id = runs.id ORDER BY seq DESC LIMIT 1), started_at)"
                    " WHERE id = ? AND status = ?",
                    (RunStatus.INTERRUPTED, resumed_from, RunStatus.RUNNING),
                )
            cursor = self._conn.execute(
                "INSERT INTO runs (name, started_at, seed, config, config_sha256, version, status,"
                " resumed_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, wall_iso(wall0), seed, config_text, config_sha256, version,
                 RunStatus.RUNNING, resumed_from),
            )
        run_id = cursor.lastrowid
        assert run_id is not None  # an INSERT into a rowid table always sets it
        self._run_id = run_id
        self._t0 = t0
        self._epoch0 = wall0.timestamp()
        self._seq = 0
        self._last_t = t0
        return run_id

    def write_events(self, events: Sequence[Event]) -> int:
        """Append ``events`` to the current run in one transaction; returns the rows written.

        ``seq`` continues from the previous call; ``t`` becomes seconds since ``t0``; ``wall`` is
        ``wall0 + (t - t0)``; ``data`` is the event's fields other than kind/t/charger/connector as
        JSON (fields at their default are omitted). A :class:`SaveOutbox` writes no row; the last
        one per charger replaces that charger's outbox, in the same transaction. Raises
        ``RuntimeError`` before :meth:`start_run`.
        """
        run_id = self._require_run()
        params: list[object] = []  # the rows' values, flat, _EVENTS.columns at a time
        saves: dict[str, tuple[Any, ...]] = {}  # the last save per charger wins the batch
        t0, epoch0, seq = self._t0, self._epoch0, self._seq
        last_t = self._last_t
        wall_of = self._walls.format
        kinds = _KINDS
        for event in events:
            if isinstance(event, SaveOutbox):
                assert event.charger is not None  # checked by SaveOutbox.__post_init__
                saves[event.charger] = event.entries
                continue
            seq += 1
            t = event.t
            if t > last_t:
                last_t = t
            fields = msgspec.to_builtins(event)
            for key in _STRIPPED_FIELDS:
                fields.pop(key, None)
            data = _encoder.encode(fields)
            since = t - t0
            wall = wall_of(epoch0 + since)
            params.extend((run_id, seq, since, wall, event.charger, event.connector,
                           kinds.get(type(event)) or _kind(event), data))
        written = len(params) // _EVENTS.columns
        with self._outbox_transaction():
            self._execute_rows(_EVENTS, params)
            self._replace_outboxes(run_id, saves)
        self._seq = seq
        self._last_t = last_t
        self.outbox_saves += len(saves)
        return written

    def _execute_rows(self, statement: _RowsStatement, params: list[object]) -> None:
        """Run ``statement`` over the rows in ``params`` (flat, ``statement.columns`` values a
        row) with multi-row statements of power-of-two sizes.

        ``executemany`` steps once per row, and the sqlite3 module hands the GIL back and forth
        around every step: with the event loop busy in the main thread, each handoff waits for
        it, and a row cost ~50 µs of CPU instead of ~3 (measured). A statement of up to 256 rows
        steps once. The few statement texts (one per power of two) stay in the connection's
        statement cache."""
        columns = statement.columns
        row, total = 0, len(params) // columns
        size = self._rows_per_statement(columns)
        while row < total:
            while size > total - row:
                size //= 2
            start = row * columns
            self._conn.execute(statement.sql(size), params[start:start + size * columns])
            row += size

    def _rows_per_statement(self, columns: int) -> int:
        """The most rows of ``columns`` parameters one statement takes: a power of two within
        SQLite's variable limit, at most :attr:`_max_rows`."""
        return min(self._max_rows, 1 << ((self._variables // columns).bit_length() - 1))

    def save_outbox(self, charger: str, entries: Sequence[Any]) -> None:
        """Replace ``charger``'s outbox with ``entries`` (oldest first) in one transaction.

        Entries are msgspec Structs (or anything msgspec encodes) or already-encoded JSON
        ``bytes``/``str``; an empty sequence clears the charger's outbox. Raises ``RuntimeError``
        before :meth:`start_run`."""
        run_id = self._require_run()
        with self._outbox_transaction():
            self._replace_outboxes(run_id, {charger: entries})

    @contextmanager
    def _outbox_transaction(self) -> Iterator[None]:
        """A transaction (``with self._conn``) that forgets the outbox rows it was writing
        when it fails: the rolled-back rows no longer match :attr:`_outbox_rows`."""
        try:
            with self._conn:
                yield
        except BaseException:
            self._outbox_rows.clear()
            raise

    def _replace_outboxes(self, run_id: int, saves: Mapping[str, Sequence[Any]]) -> None:
        """Make each saved charger's outbox rows hold its entries, in order, with a few
        multi-row statements for all of them (a statement per save, stepped per row, cost a GIL
        handoff per row: see :meth:`_execute_rows`). One save per charger. Entries with a
        ``seq`` (:class:`~simulator.machines.effects.OutboxEntry`) are stored at ``position =
        seq`` and only the rows that changed are written; others are numbered from 0, and the
        charger's rows rewritten whole. ``saves``: each charger's entries."""
        cleared: list[object] = []  # chargers whose rows all go
        gone: list[object] = []  # (charger, position) pairs, flat
        rows: list[object] = []  # (charger, position, run_id, entry), flat
        for charger, entries in saves.items():
            stored = self._outbox_rows.pop(charger, None)
            update = None if stored is None else _outbox_update(*stored, entries)
            if update is None:
                seqs = _seqs(entries)
                cleared.append(charger)
                changed: Sequence[Any] = entries
                positions: Iterable[int] = range(len(entries)) if seqs is None else seqs
            else:
                seqs, gone_seqs, changed = update
                for seq in gone_seqs:
                    gone += (charger, seq)
                positions = [entry.seq for entry in changed]
            for position, entry in zip(positions, changed, strict=True):
                rows += (charger, position, run_id, _entry_text(entry))
            if seqs is not None:
                self._outbox_rows[charger] = (seqs, tuple(entries))
        self._execute_rows(_OUTBOX_CLEAR, cleared)
        self._execute_rows(_OUTBOX_DELETE, gone)
        self._execute_rows(_OUTBOX_WRITE, rows)

    def load_outbox(self) -> dict[str, list[bytes]]:
        """Every charger's undelivered entries (oldest first) as JSON bytes, whichever run wrote
        them; chargers with an empty outbox are absent."""
        outbox: dict[str, list[bytes]] = {}
        rows = self._conn.execute(
            "SELECT charger, entry FROM outbox ORDER BY charger, position"
        )
        for charger, entry in rows:
            outbox.setdefault(charger, []).append(entry.encode())
        return outbox

    def end_run(
        self,
        status: str,
        exit_code: int | None,
        summary: dict[str, Any] | None,
        *,
        t: float | None = None,
        run_id: int | None = None,
    ) -> None:
        """Set a run's final ``status`` (one of :class:`RunStatus`), ``exit_code``, ``summary``
        (stored as JSON) and ``ended_at``.

        Builds the ``(run_id, charger)`` index (:data:`CHARGER_INDEX`) if it is missing.

        For the current run (``run_id`` None or equal), ``ended_at`` is the wall time of monotonic
        ``t`` (default: the latest event time written). For another run, an ``ended_at`` already
        set is kept, else the wall time of its last event (or its start) is used. May be called
        again to overwrite (e.g. once the verdicts are known). Raises ``ValueError`` on an unknown
        status or run, ``RuntimeError`` when no run is given and none was started.
        """
        if status not in RunStatus.ALL:
            raise ValueError(f"unknown run status {status!r}; use one of {sorted(RunStatus.ALL)}")
        encoded = None if summary is None else _encoder.encode(summary).decode()
        with self._conn:
            if run_id is None or run_id == self._run_id:
                target = self._require_run()
                end_t = self._last_t if t is None else t
                ended_at = datetime.fromtimestamp(self._epoch0 + (end_t - self._t0), UTC)
                cursor = self._conn.execute(
                    "UPDATE runs SET status = ?, exit_code = ?, summary = ?, ended_at = ?"
                    " WHERE id = ?",
                    (status, exit_code, encoded, wall_iso(ended_at), target),
                )
            else:
                target = run_id
                cursor = self._conn.execute(
                    "UPDATE runs SET status = ?, exit_code = ?, summary = ?, ended_at = COALESCE("
                    "ended_at, (SELECT wall FROM events WHERE run_id = runs.id"
                    " ORDER BY seq DESC LIMIT 1), started_at) WHERE id = ?",
                    (status, exit_code, encoded, target),
                )
            if cursor.rowcount == 1:  # the run is over: index its events by charger now
                self._conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {CHARGER_INDEX} ON events (run_id, charger)"
                )
        if cursor.rowcount != 1:
            raise ValueError(f"no run with id {target} in {self.path}")

    def latest_run(self) -> RunRecord | None:
        """The most recently started run (highest id), or ``None`` for an empty ledger."""
        row = self._conn.execute(f"{_RUN_SELECT} ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else _run_record(row)

    def get_run(self, run_id: int) -> RunRecord:
        """The run ``run_id``; ``KeyError`` when there is none."""
        return get_run(self._conn, run_id)

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``'s verdict: ``"ok"`` for a sound file."""
        return integrity_check_conn(self._conn)

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close. Idempotent."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.ProgrammingError:  # already closed
            return
        self._conn.close()

    def _require_run(self) -> int:
        if self._run_id is None:
            raise RuntimeError("start_run() must come before writing to the ledger")
        return self._run_id


def _kind(event: Event) -> str:
    """The event's tag (its ``kind``)."""
    cls = type(event)
    tag = _KINDS.get(cls)
    if tag is None:
        config_tag = cls.__struct_config__.tag
        if not isinstance(config_tag, str):
            raise TypeError(f"{cls.__name__} has no string kind tag")
        tag = _KINDS.setdefault(cls, config_tag)
    return tag


_KINDS: Final[dict[type[Event], str]] = {}
"""Cache of event class → kind (a pure function of the class; filled on first use)."""


class _RowsStatement:
    """A statement over any number of rows: ``sql(n)`` is its text for ``n`` rows of
    ``columns`` parameters each (cached: the sizes used are powers of two)."""

    def __init__(self, columns: int, template: str, row: str) -> None:
        self.columns = columns
        self._template = template
        self._row = row
        self.sql = functools.cache(self._text)

    def _text(self, rows: int) -> str:
        return self._template.format(", ".join([self._row] * rows))


_EVENTS: Final = _RowsStatement(
    8, "INSERT INTO events (run_id, seq, t, wall, charger, connector, kind, data) VALUES {}",
    "(?, ?, ?, ?, ?, ?, ?, CAST(? AS TEXT))",
)
_OUTBOX_CLEAR: Final = _RowsStatement(1, "DELETE FROM outbox WHERE charger IN ({})", "?")
_OUTBOX_DELETE: Final = _RowsStatement(
    # a join with the pairs finds the rows by the primary key's index; a row-value IN over
    # VALUES would scan the table
    2, "DELETE FROM outbox WHERE rowid IN (SELECT o.rowid FROM (VALUES {}) AS v"
       " JOIN outbox AS o ON o.charger = v.column1 AND o.position = v.column2)",
    "(?, ?)",
)
_OUTBOX_WRITE: Final = _RowsStatement(
    4, "INSERT OR REPLACE INTO outbox (charger, position, run_id, entry) VALUES {}",
    "(?, ?, ?, ?)",
)


def _seqs(entries: Sequence[Any]) -> list[int] | None:
    """The entries' ``seq`` s, or None unless every entry has one and they strictly increase
    (the FIFO's order; already-encoded JSON entries have none)."""
    try:
        seqs = [entry.seq for entry in entries]
        increasing = all(map(operator.lt, seqs, itertools.islice(seqs, 1, None)))
    except (AttributeError, TypeError):
        return None
    return seqs if increasing else None


def _outbox_update(
    old_seqs: list[int], old: tuple[Any, ...], new: Sequence[Any]
) -> tuple[list[int], list[int], list[Any]] | None:
    """How the outbox rows of ``old`` (stored, in ``seq`` order) become those of ``new``:
    ``new`` 's seqs, the seqs whose rows go, and the entries to write (new, or changed since);
    None when ``new`` must be rewritten whole (an entry without a seq, or out of order).

    A queue changes at its ends, delivered from the head and growing at the tail, and in place
    (an id filled in, a retry counted). The entries that stayed are the same objects, so the
    common case costs a comparison by identity per entry (in C) and the work of the change
    only, however long the queue has grown during an outage."""
    if not new:
        return [], list(old_seqs), []
    try:
        head = bisect.bisect_left(old_seqs, new[0].seq)  # old[:head]: delivered
        tail = bisect.bisect_right(new, old_seqs[-1], key=_SEQ) if old else 0  # new[tail:]: new
    except (AttributeError, TypeError):
        return None
    kept = len(old) - head
    if tail == kept and all(map(operator.is_, itertools.islice(old, head, None),
                                itertools.islice(new, tail))):
        added = _seqs(new[tail:])
        if added is None or (added and old and added[0] <= old_seqs[-1]):
            return None
        return old_seqs[head:] + added, old_seqs[:head], list(new[tail:])
    seqs = _seqs(new)  # changed in place, or one left from the middle: by seq
    if seqs is None:
        return None
    before = dict(zip(old_seqs, old, strict=True))
    now = set(seqs)
    gone = [seq for seq in old_seqs if seq not in now]
    changed = [entry for seq, entry in zip(seqs, new, strict=True)
               if (was := before.get(seq)) is not entry and was != entry]
    return seqs, gone, changed


_SEQ: Final = operator.attrgetter("seq")


def _entry_text(entry: Any) -> str:
    match entry:
        case bytes() | bytearray() | memoryview():
            return bytes(entry).decode()
        case str():
            return entry
        case _:
            return _encoder.encode(entry).decode()


_RUN_SELECT: Final = (
    "SELECT id, name, started_at, ended_at, seed, config, config_sha256, version, status,"
    " exit_code, summary, resumed_from FROM runs"
)


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    summary = None if row[10] is None else _summary_decoder.decode(row[10])
    return RunRecord(
        id=row[0], name=row[1], started_at=row[2], ended_at=row[3], seed=row[4], config=row[5],
        config_sha256=row[6], version=row[7], status=row[8], exit_code=row[9], summary=summary,
        resumed_from=row[11],
    )


def get_run(conn: sqlite3.Connection, run_id: int | None = None) -> RunRecord:
    """Run ``run_id`` (default: the latest) read through ``conn``; ``KeyError`` when absent."""
    if run_id is None:
        row = conn.execute(f"{_RUN_SELECT} ORDER BY id DESC LIMIT 1").fetchone()
    else:
        row = conn.execute(f"{_RUN_SELECT} WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise KeyError("the ledger has no runs" if run_id is None else f"no run with id {run_id}")
    return _run_record(row)


def integrity_check_conn(conn: sqlite3.Connection) -> str:
    """``PRAGMA integrity_check`` through ``conn``, its rows joined by newlines."""
    return "\n".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))


@contextmanager
def open_readonly(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the ledger at ``path`` (usable while a writer is active).

    Raises ``FileNotFoundError`` when there is no such file."""
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"no ledger at {target}")
    conn = sqlite3.connect(f"{target.resolve().as_uri()}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


# --- the writer actor ---------------------------------------------------------------------------


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
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> WriterStatistics:
    """The ledger actor: write everything that arrives on ``receive`` to ``ledger_path``.

    Opens the ledger and starts the run row from ``run`` in a worker thread, then reports the
    run id with ``task_status.started(run_id)``. Events (including :class:`SaveOutbox` controls)
    are written in batches of at most ``batch_size``, at the latest ``flush_interval`` seconds
    after the first event of a batch arrived (the channel is polled :data:`FLUSH_POLLS` times per
    interval meanwhile).

    By default the batches go to one writer thread (:class:`_WriterThread`) that writes them one
    after the other while this task goes on collecting: at most :data:`WRITER_BACKLOG_BATCHES`
    batches are handed over and not yet written; beyond that this task stops taking events, the
    channel's buffer fills and then the publishers wait (backpressure, nothing dropped).

    At end-of-channel: writes what is left, marks the run ``completed`` (exit code unset; the
    caller may overwrite it with :func:`finish_run` once the verdicts are known) when ``finish``,
    closes the ledger and returns its statistics. On cancellation (Ctrl-C): shielded and bounded by
    ``shutdown_flush_timeout`` seconds in all, writes what was received or is still buffered,
    marks the run ``interrupted`` when ``mark_interrupted`` and all of it was written, closes the
    ledger and re-raises (a flush that overran the bound leaves the run ``running`` and the
    thread writing: the process ends with it, and WAL keeps the file sound). Owns and closes
    ``receive``. A database error propagates, also when it comes during a cancellation (the run
    stays ``running``).

    ``offload``, when given, runs every ledger call instead (``await offload(fn, *args)``), one
    batch at a time, with this task waiting on the channel, not polling it. Under virtual time
    pass :func:`run_inline`: a thread looks idle to the mock clock, which would then jump ahead
    while a batch is written, and a publisher waiting on a full buffer would let it jump to the
    next poll.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if flush_interval < 0 or math.isnan(flush_interval):
        raise ValueError(f"flush_interval must be >= 0 seconds, got {flush_interval}")
    run_sync: Offload = offload if offload is not None else trio.to_thread.run_sync
    with receive:  # closed without a checkpoint: a database error must not become Cancelled
        ledger = await run_sync(Ledger.open, ledger_path)
        counts = {"events": 0, "batches": 0, "outbox": 0}
        status: str | None = None
        run_id: int | None = None

        def write(batch: Sequence[Event]) -> None:
            counts["events"] += ledger.write_events(batch)
            counts["batches"] += 1
            counts["outbox"] = ledger.outbox_saves

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
    writes, until end-of-channel (then hand what is left). Polled, not waited on: a receiver that
    waits is woken by every event published, a task switch each (about 5 per exchange, measured
    as 10% of a fleet's CPU). One turn takes all the thread has room for, in batches, so that
    the loop's lag does not bound the ledger's rate. ``pending`` is as for
    :func:`_collect_inline`."""
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
        while not (ended := _drain_nowait(receive, pending, max(batch_size, worker.room()))):
            now = trio.current_time()
            if len(pending) >= batch_size or now >= deadline:
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


WRITER_BACKLOG_BATCHES: Final = 4
"""Batches' worth of events the writer thread may hold before the collecting task stops taking
events (the last batch handed may overshoot by less than a batch). Beyond that the channel's
buffer takes the slack, then its publishers wait."""

_FINISH_POLL: Final = 0.005
"""Seconds between looks at a finishing writer thread."""


class _WriterThread:
    """The ledger's one writer thread: writes the batches handed to it in order, one transaction
    each, and never waits on the Trio loop between two of them.

    A writer that awaited ``trio.to_thread.run_sync`` per batch could write only once per turn of
    the event loop: with a 10,000-charger fleet near saturation the loop's lag reached 250 ms, the
    writer fell to 3-4 batches a second, below the fleet's event rate, and the publishers waiting
    on its full buffer made every exchange dearer, so it never caught up.

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


def finish_run(
    path: str | Path,
    run_id: int,
    status: str,
    exit_code: int | None,
    summary: dict[str, Any] | None,
) -> None:
    """Set a finished run's final status, exit code and summary (sync; call it from a worker
    thread in Trio code). ``ended_at`` becomes the wall time of the run's last event. Raises
    ``ValueError`` on an unknown status or run."""
    ledger = Ledger.open(path)
    try:
        ledger.end_run(status, exit_code, summary, run_id=run_id)
    finally:
        ledger.close()
