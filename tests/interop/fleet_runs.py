"""Helpers for the interop and fault tests: run a fleet file against a peer (in this process or
through the CLI), and read back what the simulator's ledger says it did.

The ledger is read with plain ``sqlite3`` (read-only) through its public tables and views
(``runs``, ``events``, ``frames``, ``transactions``, ``outbox``), the way a user would, so these
helpers check the ledger's contract as well as the simulator.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import trio

import simulator.config
import simulator.runtime

TRANSACTION_ACTIONS: Final = ("StartTransaction", "StopTransaction", "MeterValues")
TROUBLE_KINDS: Final = ("validation_error", "call_error", "unhandled_exception")
CLI_GRACE_S: Final = 30.0
"""How much longer than its duration a CLI run may take before the test gives up on it."""


async def run_in_process(
    toml: Path, url: str, ledger: Path, *, duration: str | None = None
) -> simulator.runtime.RunResult:
    """Run the fleet file ``toml`` against ``url`` in this trio run (no live view, no GC tuning,
    no ``SIM_*`` environment), recording into ``ledger``."""
    overrides: dict[str, object] = {"csms.url": url, "run.ledger": str(ledger)}
    if duration is not None:
        overrides["run.duration"] = duration
    fleet = simulator.config.load_fleet(toml, env={}, overrides=overrides)
    return await simulator.runtime.run_simulation(
        fleet, resume=False, live=False, gc_tuning=False
    )


async def run_cli(toml: Path, url: str, ledger: Path, bound_s: float,
                  extra: Sequence[str] = ()) -> tuple[int, str, str]:
    """``python -m simulator start --toml TOML --csms URL --ledger LEDGER --quiet --json EXTRA``
    in a child process; returns (exit code, stdout, stderr). The child is killed after
    ``bound_s``."""
    command = [
        sys.executable, "-m", "simulator", "start", "--toml", str(toml), "--csms", url,
        "--ledger", str(ledger), "--quiet", "--json", *extra,
    ]
    with trio.fail_after(bound_s):
        done = await trio.run_process(
            command, capture_stdout=True, capture_stderr=True, check=False
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@contextmanager
def open_ledger(path: Path) -> Iterator[sqlite3.Connection]:
    """The ledger at ``path``, read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


@dataclasses.dataclass(frozen=True)
class Frame:
    """One frame of the ``frames`` view, its JSON parsed (``message`` is the whole array)."""

    seq: int
    t: float
    charger: str
    direction: str
    message_type: int
    unique_id: str
    action: str | None
    message: list[Any]

    @property
    def payload(self) -> Any:
        """The payload of a CALL (index 3) or a CALLRESULT (index 2)."""
        return self.message[3] if self.message_type == 2 else self.message[2]


def frames_of_every_run(path: Path) -> dict[int, list[Frame]]:
    """The ``frames`` view of the ledger at ``path``, every run of it: run id -> its frames in
    seq order (runs in id order)."""
    runs: dict[int, list[Frame]] = {}
    with open_ledger(path) as conn:
        for run_id, seq, t, charger, direction, message_type, unique_id, action, raw in (
            conn.execute(
                "SELECT run_id, seq, t, charger, direction, message_type, unique_id, action, raw"
                " FROM frames ORDER BY run_id, seq")
        ):
            runs.setdefault(run_id, []).append(
                Frame(seq, t, charger, direction, message_type, unique_id, action,
                      json.loads(raw)))
    return runs


@dataclasses.dataclass(frozen=True)
class LedgerTransaction:
    """One row of the ``transactions`` view (see :meth:`of_row`)."""

    charger: str
    connector: int
    local_id: int
    id_tag: str
    meter_start: int
    transaction_id: int | None
    ack_status: str | None
    meter_stop: int | None
    stop_reason: str | None

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> LedgerTransaction:
        """The row as the view gives it, but for ``transaction_id``: the view gives one outside
        SQLite's signed 64 bits as text (its exact digits), here made an ``int`` again."""
        fields = list(row)
        if isinstance(fields[5], str):
            fields[5] = int(fields[5])
        return cls(*fields)


@dataclasses.dataclass(frozen=True)
class LedgerView:
    """What one run's ledger holds, loaded once."""

    status: str
    exit_code: int
    events: list[tuple[int, float, str | None, int | None, str, dict[str, Any]]]
    """(seq, t, charger, connector, kind, data) in seq order."""
    walls: dict[int, str]
    """seq -> the event's wall time (UTC ISO)."""
    frames: list[Frame]
    transactions: list[LedgerTransaction]
    outbox_rows: int
    integrity: str

    @classmethod
    def load(cls, path: Path) -> LedgerView:
        """Read the only (or latest) run of the ledger at ``path``."""
        with open_ledger(path) as conn:
            run_id, status, exit_code = conn.execute(
                "SELECT id, status, exit_code FROM runs ORDER BY id DESC LIMIT 1").fetchone()
            rows = conn.execute(
                "SELECT seq, t, charger, connector, kind, data, wall FROM events"
                " WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
            events = [(seq, t, charger, connector, kind, json.loads(data))
                      for seq, t, charger, connector, kind, data, _ in rows]
            walls = {row[0]: row[6] for row in rows}
            frames = [
                Frame(seq, t, charger, direction, message_type, unique_id, action,
                      json.loads(raw))
                for seq, t, charger, direction, message_type, unique_id, action, raw
                in conn.execute(
                    "SELECT seq, t, charger, direction, message_type, unique_id, action, raw"
                    " FROM frames WHERE run_id = ? ORDER BY seq", (run_id,))
            ]
            transactions = [
                LedgerTransaction.of_row(row)
                for row in conn.execute(
                    "SELECT charger, connector, local_id, id_tag, meter_start, transaction_id,"
                    " ack_status, meter_stop, stop_reason FROM transactions WHERE run_id = ?",
                    (run_id,))
            ]
            outbox_rows = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return cls(status, exit_code, events, walls, frames, transactions, outbox_rows, integrity)

    def kinds(self, kind: str) -> list[tuple[int, float, str | None, int | None, dict[str, Any]]]:
        """(seq, t, charger, connector, data) of every event of ``kind``."""
        return [(seq, t, c, k, data) for seq, t, c, k, kd, data in self.events if kd == kind]

    def calls_out(self, actions: Sequence[str]) -> list[Frame]:
        """Every CALL the simulator sent with one of ``actions``, in send order."""
        return [f for f in self.frames
                if f.direction == "out" and f.message_type == 2 and f.action in actions]
