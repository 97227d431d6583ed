"""The outbox: per charger, the transaction messages not yet delivered, so that a restarted
simulator resumes them.

A charger's outbox is replaced whole by a save (:class:`SaveOutbox` through the writer, or
``Ledger.save_outbox``); what is stored is always the last save's entries, in order. Entries with
a strictly increasing ``seq`` (``simulator.machines.effects.OutboxEntry``) are stored at
``position = seq``, and :class:`OutboxRows` remembers what each charger's rows hold, so a save
writes only the rows that changed: a queue that grows during an outage costs one row per new
message, not the whole queue again at every message. Other entries (already-encoded JSON) are
numbered from 0 and rewritten whole. The saves of one batch go in a few multi-row statements
(rows cleared, rows gone, rows written) for all chargers together.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import msgspec

from simulator.events import Event
from simulator.ledger.statements import RowsStatement, RowWriter

_encoder: Final = msgspec.json.Encoder()
_SEQ: Final = operator.attrgetter("seq")


class SaveOutbox(Event, frozen=True, tag="outbox_saved"):
    """Control event: replace ``charger``'s outbox with ``entries`` (oldest first).

    Publish it with ``EventBus.publish_control`` (the effect ``PersistOutbox`` becomes one of
    these), so that the writer applies it in the same transaction as the events published before
    it; once that transaction is committed the writer hands it to its ``on_stored`` callback.
    Entries are msgspec Structs (or already-encoded JSON ``bytes``); the writer encodes them
    as JSON. It is an instruction to the writer, not a fact: no ``events`` row records it, and a
    later snapshot of the same charger in the same batch supersedes it. Raises ``ValueError``
    without a ``charger``.
    """

    entries: tuple[Any, ...] = ()
    through: int = 0
    """Every message of the charger up to this ``seq`` is durable once the save is committed."""
    memory: Any = None
    """What the charger keeps through a power loss (a msgspec Struct; None: unchanged), stored
    in the ``memory`` table in the same transaction."""

    def __post_init__(self) -> None:
        if self.charger is None:
            raise ValueError("SaveOutbox needs the charger whose outbox it replaces")


_MEMORY: Final = RowsStatement(
    3, "INSERT OR REPLACE INTO memory (charger, run_id, memory) VALUES {}", "(?, ?, ?)",
)
_CLEAR: Final = RowsStatement(1, "DELETE FROM outbox WHERE charger IN ({})", "?")
_DELETE: Final = RowsStatement(
    # a join with the pairs finds the rows by the primary key's index; a row-value IN over
    # VALUES would scan the table
    2, "DELETE FROM outbox WHERE rowid IN (SELECT o.rowid FROM (VALUES {}) AS v"
       " JOIN outbox AS o ON o.charger = v.column1 AND o.position = v.column2)",
    "(?, ?)",
)
_WRITE: Final = RowsStatement(
    4, "INSERT OR REPLACE INTO outbox (charger, position, run_id, entry) VALUES {}",
    "(?, ?, ?, ?)",
)


class OutboxRows:
    """Writes outbox saves through one connection, remembering per charger what its rows hold.

    The memory is of this connection's own writes: a charger not saved since it was made (or
    last saved from entries without a ``seq``) is rewritten whole. The caller owns the
    transaction and must call :meth:`forget` when it rolls back, since the rows no longer match.
    """

    def __init__(self, rows: RowWriter) -> None:
        self._rows = rows
        self._stored: dict[str, tuple[list[int], tuple[Any, ...]]] = {}
        """Per charger, the seqs of its rows and the entries they hold, as last written."""

    def remember(self, run_id: int, memories: Mapping[str, Any]) -> None:
        """Store each charger's memory in ``memories`` (replacing the one before), in the
        caller's transaction."""
        rows: list[object] = []
        for charger, memory in memories.items():
            rows += (charger, run_id, _entry_text(memory))
        self._rows.execute(_MEMORY, rows)

    def replace(self, run_id: int, saves: Mapping[str, Sequence[Any]]) -> None:
        """Make each charger's rows in ``saves`` hold its entries, in order, in the caller's
        transaction (one save per charger; an empty sequence clears the charger's rows)."""
        cleared: list[object] = []  # chargers whose rows all go
        gone: list[object] = []  # (charger, position) pairs, flat
        rows: list[object] = []  # (charger, position, run_id, entry), flat
        for charger, entries in saves.items():
            stored = self._stored.pop(charger, None)
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
                self._stored[charger] = (seqs, tuple(entries))
        self._rows.execute(_CLEAR, cleared)
        self._rows.execute(_DELETE, gone)
        self._rows.execute(_WRITE, rows)

    def clear(self, conn: sqlite3.Connection) -> None:
        """Delete every charger's rows and memory, in the caller's transaction."""
        conn.execute("DELETE FROM outbox")
        conn.execute("DELETE FROM memory")
        self._stored.clear()

    def forget(self) -> None:
        """Forget what the rows hold (after a rollback): the next save of each charger rewrites
        its rows whole."""
        self._stored.clear()


def load_outbox(conn: sqlite3.Connection) -> dict[str, list[bytes]]:
    """Every charger's stored entries (oldest first) as JSON bytes, whichever run wrote them;
    chargers with an empty outbox are absent."""
    outbox: dict[str, list[bytes]] = {}
    for charger, entry in conn.execute(
        "SELECT charger, entry FROM outbox ORDER BY charger, position"
    ):
        outbox.setdefault(charger, []).append(entry.encode())
    return outbox


def load_memory(conn: sqlite3.Connection) -> dict[str, bytes]:
    """Every charger's stored memory as JSON bytes, whichever run wrote it."""
    return {charger: memory.encode()
            for charger, memory in conn.execute("SELECT charger, memory FROM memory")}


def _outbox_update(
    old_seqs: list[int], old: tuple[Any, ...], new: Sequence[Any]
) -> tuple[list[int], list[int], list[Any]] | None:
    """How the outbox rows of ``old`` (stored, in ``seq`` order) become those of ``new``:
    ``new`` 's seqs, the seqs whose rows go, and the entries to write (new, or changed since);
    None when ``new`` must be rewritten whole (an entry without a seq, or out of order).

    A queue changes at its ends, delivered from the head and growing at the tail, and in place
    (an id filled in, a retry counted). The entries that stayed are the same objects, so the
    common case costs a comparison by identity per entry and the work of the change only,
    however long the queue has grown during an outage."""
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


def _seqs(entries: Sequence[Any]) -> list[int] | None:
    """The entries' ``seq`` s, or None unless every entry has one and they strictly increase
    (the FIFO's order; already-encoded JSON entries have none)."""
    try:
        seqs = [entry.seq for entry in entries]
        increasing = all(map(operator.lt, seqs, itertools.islice(seqs, 1, None)))
    except (AttributeError, TypeError):
        return None
    return seqs if increasing else None


def _entry_text(entry: Any) -> str:
    """An outbox entry as the JSON text of its row: ``bytes``/``str`` are taken as already
    encoded, anything else is encoded by msgspec."""
    match entry:
        case bytes() | bytearray() | memoryview():
            return bytes(entry).decode()
        case str():
            return entry
        case _:
            return _encoder.encode(entry).decode()
