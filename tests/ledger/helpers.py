"""What the ledger tests share: a run spec, events and outbox entries, and a way to read rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from simulator.events import Note
from simulator.ledger import Ledger, open_readonly
from simulator.ledger.writer import RunSpec
from simulator.machines.effects import OutboxEntry

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
