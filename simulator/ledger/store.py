"""The :class:`Ledger`: one ledger file open for writing, synchronously.

Rules: one thread at a time uses a ``Ledger`` (the connection allows a different thread per
call, as ``trio.to_thread`` may use any worker); every write method is one transaction and
commits before it returns, so a killed process leaves the file as of the last call (WAL); a
failed call rolls back whole. Events are appended to the current run only
(:meth:`Ledger.start_run` first). Secrets are never written here: events are redacted at source
and the config text arrives redacted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Self

import msgspec
import sqlite_utils

from simulator.events import Event
from simulator.ledger.outbox import OutboxRows, SaveOutbox, load_memory, load_outbox
from simulator.ledger.reads import (
    QUEUED_CHARGERS_SUMMARY_KEY,
    QUEUED_SUMMARY_KEY,
    RunRecord,
    get_run,
    integrity_check_conn,
    latest_run,
    queued_at_end,
    queued_by_action,
    queued_by_charger,
    queued_chargers_at_end,
)
from simulator.ledger.schema import (
    RunStatus,
    build_charger_index,
    configure_writer,
    create_schema,
    drop_charger_index_if_empty,
)
from simulator.ledger.statements import MAX_ROWS_PER_STATEMENT, RowsStatement, RowWriter

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_STRIPPED_FIELDS: Final = ("kind", "t", "charger", "connector")
_encoder: Final = msgspec.json.Encoder()

_EVENTS: Final = RowsStatement(
    8, "INSERT INTO events (run_id, seq, t, wall, charger, connector, kind, data) VALUES {}",
    "(?, ?, ?, ?, ?, ?, ?, CAST(? AS TEXT))",
)


def wall_iso(moment: datetime) -> str:
    """``moment`` as UTC ISO-8601 with microseconds and a ``Z`` (naive datetimes are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _WallFormatter:
    """Formats Unix seconds as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: events come in bursts within the
    same second, so the date-and-time prefix of the last second is kept."""

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


class Ledger:
    """A ledger file open for writing, and the reads a writer needs (see the module's rules)."""

    def __init__(self, db: sqlite_utils.Database, path: Path, *, max_rows: int) -> None:
        """Use :meth:`open`."""
        self._db = db
        self._conn: sqlite3.Connection = db.conn
        self.path = path
        self._rows = RowWriter(self._conn, max_rows)
        self._outbox = OutboxRows(self._rows)
        self._run_id: int | None = None
        self._t0 = 0.0
        self._epoch0 = 0.0
        self._seq = 0
        self._last_t = 0.0
        self._walls = _WallFormatter()
        self.outbox_saves = 0
        """The outboxes :meth:`write_events` has written: one per charger per batch (of a
        charger's :class:`SaveOutbox` events in one batch, the last is written)."""

    @classmethod
    def open(cls, path: str | Path, *, max_rows: int = MAX_ROWS_PER_STATEMENT) -> Self:
        """Open (creating it and its parent directories if needed) the ledger at ``path`` in WAL
        mode with ``synchronous=NORMAL`` and make sure the schema exists.

        ``max_rows`` bounds the rows of one multi-row statement
        (:class:`~simulator.ledger.statements.RowWriter`); the default suits every use, a smaller
        one exercises the splitting. Raises ``ValueError`` when it is below 1, and
        ``sqlite3.DatabaseError`` for a file that is not a ledger."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(target, check_same_thread=False)
        try:
            db = sqlite_utils.Database(conn, execute_plugins=False)
            configure_writer(db)
            with conn:
                create_schema(db)
            return cls(db, target, max_rows=max_rows)
        except BaseException:
            conn.close()
            raise

    @property
    def run_id(self) -> int | None:
        """The run this ledger writes events for (set by :meth:`start_run`)."""
        return self._run_id

    @property
    def db(self) -> sqlite_utils.Database:
        """The underlying sqlite-utils database (same thread rules)."""
        return self._db

    @property
    def max_rows(self) -> int:
        """Rows per multi-row statement at most (as given to :meth:`open`)."""
        return self._rows.max_rows

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
        undelivered messages are not this run's to send (left in place, a later resume would
        send them). Either way, the latest earlier run with nothing recorded of what it left
        queued (killed) first gets the outbox as it stands recorded in its summary
        (:data:`~simulator.ledger.reads.QUEUED_SUMMARY_KEY`). On a ledger with no events yet,
        the charger index (:data:`~simulator.ledger.schema.CHARGER_INDEX`) is dropped until
        :meth:`end_run`.
        Raises ``ValueError`` when ``seed`` does not fit a signed 64-bit integer.
        """
        if not _INT64_MIN <= seed <= _INT64_MAX:
            raise ValueError(f"seed {seed} does not fit a signed 64-bit integer")
        if wall0.tzinfo is None:
            wall0 = wall0.replace(tzinfo=UTC)
        with self._conn:
            drop_charger_index_if_empty(self._conn)
            _record_leftovers(self._conn)
            if resumed_from is None:
                self._outbox.clear(self._conn)
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
        one per charger replaces that charger's outbox (and its memory, if it carries one), in
        the same transaction. Raises ``RuntimeError`` before :meth:`start_run`; a database error
        rolls the whole batch back.
        """
        run_id = self._require_run()
        params: list[object] = []  # the rows' values, flat, _EVENTS.columns at a time
        saves: dict[str, tuple[Any, ...]] = {}  # the last save per charger wins the batch
        memories: dict[str, Any] = {}
        t0, epoch0, seq = self._t0, self._epoch0, self._seq
        last_t = self._last_t
        wall_of = self._walls.format
        kinds = _KINDS
        for event in events:
            if isinstance(event, SaveOutbox):
                assert event.charger is not None  # checked by SaveOutbox.__post_init__
                saves[event.charger] = event.entries
                if event.memory is not None:
                    memories[event.charger] = event.memory
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
        self._write(run_id, params, saves, memories)
        self._seq = seq
        self._last_t = last_t
        self.outbox_saves += len(saves)
        return written

    def save_outbox(self, charger: str, entries: Sequence[Any]) -> None:
        """Replace ``charger``'s outbox with ``entries`` (oldest first) in one transaction.

        Entries are msgspec Structs (or anything msgspec encodes) or already-encoded JSON
        ``bytes``/``str``; an empty sequence clears the charger's outbox. Raises ``RuntimeError``
        before :meth:`start_run`."""
        self._write(self._require_run(), [], {charger: entries})

    def _write(
        self,
        run_id: int,
        event_params: list[object],
        saves: Mapping[str, Sequence[Any]],
        memories: Mapping[str, Any] | None = None,
    ) -> None:
        """Event rows, outbox saves and chargers' memories in one transaction; on failure what
        :class:`OutboxRows` remembers of the rows is dropped along with the rolled-back rows."""
        try:
            with self._conn:
                self._rows.execute(_EVENTS, event_params)
                self._outbox.replace(run_id, saves)
                if memories:
                    self._outbox.remember(run_id, memories)
        except BaseException:
            self._outbox.forget()
            raise

    def load_outbox(self) -> dict[str, list[bytes]]:
        """Every charger's undelivered entries (oldest first) as JSON bytes, whichever run wrote
        them; chargers with an empty outbox are absent."""
        return load_outbox(self._conn)

    def load_memory(self) -> dict[str, bytes]:
        """Every charger's memory (what it keeps through a power loss) as JSON bytes, whichever
        run wrote it; chargers that never stored one are absent."""
        return load_memory(self._conn)

    def end_run(
        self,
        status: str,
        exit_code: int | None,
        summary: dict[str, Any] | None,
        *,
        t: float | None = None,
        run_id: int | None = None,
    ) -> None:
        """Set a run's final ``status`` (one of :class:`~simulator.ledger.schema.RunStatus`),
        ``exit_code``, ``summary`` (stored as JSON) and ``ended_at``, and build the charger
        index if it is missing. The stored summary also says what the run left queued
        (:data:`~simulator.ledger.reads.QUEUED_SUMMARY_KEY`): what was recorded for it before,
        else, when it is the ledger's latest run, the outbox as it stands (counted once: a later
        call, e.g. with the verdicts, keeps that count).

        For the current run (``run_id`` None or equal), ``ended_at`` is the wall time of monotonic
        ``t`` (default: the latest event time written). For another run, an ``ended_at`` already
        set is kept, else the wall time of its last event (or its start) is used. May be called
        again to overwrite (e.g. once the verdicts are known). Raises ``ValueError`` on an unknown
        status or run, ``RuntimeError`` when no run is given and none was started.
        """
        if status not in RunStatus.ALL:
            raise ValueError(f"unknown run status {status!r}; use one of {sorted(RunStatus.ALL)}")
        with self._conn:
            current = run_id is None or run_id == self._run_id
            target = self._require_run() if current else run_id
            summary = _with_queued(self._conn, target, summary)
            encoded = None if summary is None else _encoder.encode(summary).decode()
            if current:
                end_t = self._last_t if t is None else t
                ended_at = datetime.fromtimestamp(self._epoch0 + (end_t - self._t0), UTC)
                cursor = self._conn.execute(
                    "UPDATE runs SET status = ?, exit_code = ?, summary = ?, ended_at = ?"
                    " WHERE id = ?",
                    (status, exit_code, encoded, wall_iso(ended_at), target),
                )
            else:
                cursor = self._conn.execute(
                    "UPDATE runs SET status = ?, exit_code = ?, summary = ?, ended_at = COALESCE("
                    "ended_at, (SELECT wall FROM events WHERE run_id = runs.id"
                    " ORDER BY seq DESC LIMIT 1), started_at) WHERE id = ?",
                    (status, exit_code, encoded, target),
                )
            if cursor.rowcount == 1:  # the run is over: index its events by charger now
                build_charger_index(self._conn)
        if cursor.rowcount != 1:
            raise ValueError(f"no run with id {target} in {self.path}")

    def latest_run(self) -> RunRecord | None:
        """The most recently started run (highest id), or ``None`` for an empty ledger."""
        return latest_run(self._conn)

    def get_run(self, run_id: int) -> RunRecord:
        """The run ``run_id``; ``KeyError`` when there is none."""
        return get_run(self._conn, run_id)

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``'s verdict: ``"ok"`` for a sound file."""
        return integrity_check_conn(self._conn)

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close. Idempotent.

        When no other connection has the file open, the file also leaves WAL mode (for the
        rollback journal, without waiting for a lock): a closed ledger is then one file, and a
        read-only reader (``sim report``) leaves no empty ``-wal``/``-shm`` files beside it,
        which it would in WAL mode. The next :meth:`open` puts it back in WAL mode. While
        another connection has it open, it stays in WAL mode, checkpointed as far as that
        connection allows."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.ProgrammingError:  # already closed
            return
        try:
            self._conn.execute("PRAGMA busy_timeout = 0")  # another connection: leave it be
            self._conn.execute("PRAGMA journal_mode = DELETE")
        except sqlite3.OperationalError:  # "database is locked": someone else has it open
            pass
        self._conn.close()

    def _require_run(self) -> int:
        if self._run_id is None:
            raise RuntimeError("start_run() must come before writing to the ledger")
        return self._run_id


def finish_run(
    path: str | Path,
    run_id: int,
    status: str,
    exit_code: int | None,
    summary: dict[str, Any] | None,
) -> None:
    """Set a finished run's final status, exit code and summary through a connection of its own
    (sync: call it from a worker thread in Trio code). ``ended_at`` is kept when set, else it
    becomes the wall time of the run's last event. Raises ``ValueError`` on an unknown status or
    run."""
    ledger = Ledger.open(path)
    try:
        ledger.end_run(status, exit_code, summary, run_id=run_id)
    finally:
        ledger.close()


def _record_leftovers(conn: sqlite3.Connection) -> None:
    """Before a new run takes the outbox over: record it as what the latest run left queued,
    unless that run has it recorded already (it ended normally; this one was killed)."""
    run = latest_run(conn)
    if run is not None and QUEUED_SUMMARY_KEY not in (run.summary or {}):
        summary = {**(run.summary or {}), QUEUED_SUMMARY_KEY: queued_by_action(conn),
                   QUEUED_CHARGERS_SUMMARY_KEY: queued_by_charger(conn)}
        conn.execute("UPDATE runs SET summary = ? WHERE id = ?",
                     (_encoder.encode(summary).decode(), run.id))


def _with_queued(
    conn: sqlite3.Connection, run_id: int | None, summary: dict[str, Any] | None
) -> dict[str, Any] | None:
    """``summary`` with what run ``run_id`` left queued (:func:`queued_at_end`: what was recorded
    for it, else the outbox as it stands if it is the latest run, which is ending: the writer
    that ends it wrote the outbox last), per action and per charger; ``summary`` unchanged when
    neither is known (or there is no such run)."""
    try:
        run = get_run(conn, run_id)
    except KeyError:
        return summary
    queued, chargers = queued_at_end(conn, run), queued_chargers_at_end(conn, run)
    if queued is not None:
        summary = {**(summary or {}), QUEUED_SUMMARY_KEY: queued}
    if chargers is not None:
        summary = {**(summary or {}), QUEUED_CHARGERS_SUMMARY_KEY: chargers}
    return summary


def _kind(event: Event) -> str:
    """The event's tag (its ``kind``), cached per class in :data:`_KINDS`."""
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
