"""The outbox: saves read back as saved, only changed rows written, a batch's many saves in
multi-row statements, and event batches of any size across statement sizes."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import msgspec
import pytest

from simulator.events import Event
from simulator.ledger import Ledger, SaveOutbox
from simulator.machines.effects import OutboxEntry
from tests.ledger.helpers import T0, entry, note, rows, start


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
                # the database refuses the batch's new outbox row, after its event row and its
                # other outbox statements: the whole batch is rolled back
                conn = ledger.db.conn
                conn.execute(f"CREATE TEMP TRIGGER refuse BEFORE INSERT ON outbox"
                             f" WHEN NEW.position = {next_seq}"
                             " BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END")
                with pytest.raises(sqlite3.IntegrityError, match="injected"):
                    ledger.write_events([note(step), SaveOutbox(t=T0, charger=charger,
                                                                 entries=(entry(next_seq),))])
                conn.execute("DROP TRIGGER refuse")
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
    ledger = Ledger.open(path, max_rows=chunk)
    assert ledger.max_rows == chunk
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
    ledger = Ledger.open(path, max_rows=chunk)
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


