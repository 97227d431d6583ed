"""What a check reads and returns: :class:`RunLedger`, one run of a ledger behind a read-only
connection, and :class:`Outcome`, the check's answer.

A check (built in, or a user's, registered by entry point) gets a :class:`RunLedger` and reads
the run through it: the events decoded into their :mod:`simulator.events` Structs (with ``t`` in
seconds since the run's start), the run's row, its fleet file, or plain SQL over ``conn`` (the
ledger's tables and views: ``events``, ``frames``, ``faults``, ``transactions``). It never
writes: the connection is read-only.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, TypeVar

import msgspec

from simulator.config import Fleet
from simulator.events import Event
from simulator.ledger import RunRecord
from simulator.report.frames import kind

E = TypeVar("E", bound=Event)

_data_decoder: Final = msgspec.json.Decoder(dict[str, Any])


def seconds(value: float) -> str:
    """A duration for a measured line: milliseconds below a second, else seconds."""
    if abs(value) < 1.0:
        return f"{value * 1000:.0f} ms" if abs(value) >= 0.01 else f"{value * 1000:.2f} ms"
    return f"{value:.2f} s"


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a check found: ``passed``, and ``measured``, one line with the numbers that decided
    it (``"p95 1.2 s <= 2 s over 40 answers"``)."""

    passed: bool
    measured: str


class RunLedger:
    """Run ``run`` of the ledger at ``path``, read through ``conn`` (read-only, owned by the
    caller, open while checks run). ``fleet`` is the fleet file the run was started with
    (``None`` when it cannot be read back)."""

    def __init__(self, conn: sqlite3.Connection, run: RunRecord, fleet: Fleet | None,
                 path: Path) -> None:
        self.conn = conn
        self.run = run
        self.fleet = fleet
        self.path = path

    @property
    def run_id(self) -> int:
        """The run's id in the ledger."""
        return self.run.id

    def events(self, of: type[E], *, charger: str | None = None) -> Iterator[E]:
        """The run's events of class ``of`` (of one ``charger`` if given), in the order they
        were recorded, with ``t`` in seconds since the run's start."""
        sql = ("SELECT t, charger, connector, data FROM events WHERE run_id = ? AND kind = ?"
               + ("" if charger is None else " AND charger = ?") + " ORDER BY seq")
        args: tuple[Any, ...] = (self.run.id, kind(of))
        for t, who, connector, data in self.conn.execute(
                sql, args if charger is None else (*args, charger)):
            fields = _data_decoder.decode(data)
            fields.update(t=t, charger=who, connector=connector)
            yield msgspec.convert(fields, of)

    def count(self, of: type[Event], *, charger: str | None = None) -> int:
        """How many events of class ``of`` the run recorded (of one ``charger`` if given)."""
        sql = ("SELECT count(*) FROM events WHERE run_id = ? AND kind = ?"
               + ("" if charger is None else " AND charger = ?"))
        args: tuple[Any, ...] = (self.run.id, kind(of))
        return int(self.conn.execute(sql, args if charger is None else (*args, charger))
                   .fetchone()[0])

    def end_s(self) -> float:
        """When the run ended, in seconds since its start: its recorded end, else (a killed
        run) its last event (0 without events)."""
        if self.run.ended_at is not None:
            try:
                lasted = (dt.datetime.fromisoformat(self.run.ended_at)
                          - dt.datetime.fromisoformat(self.run.started_at))
            except ValueError:
                pass
            else:
                return max(0.0, lasted.total_seconds())
        last = self.conn.execute("SELECT t FROM events WHERE run_id = ? ORDER BY rowid DESC"
                                 " LIMIT 1", (self.run.id,)).fetchone()  # appended in order
        return 0.0 if last is None else float(last[0])

    def charger_ids(self) -> tuple[str, ...]:
        """The run's chargers: those of its fleet file, else those its events name."""
        if self.fleet is not None:
            return self.fleet.charger_ids()
        rows = self.conn.execute("SELECT DISTINCT charger FROM events WHERE run_id = ?"
                                 " AND charger IS NOT NULL ORDER BY charger", (self.run.id,))
        return tuple(str(charger) for (charger,) in rows)
