"""A run lasts its duration: at its end every charger closes its connection at once, its
closing handshake answered, instead of waiting out the close timeouts (2 s on the charger's
side, 5 s on the CSMS's), which made a 60 s run end at 65 s. Under virtual time, so the
seconds counted are the run's own and the test takes none of them."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import trio

from simulator.config import parse_fleet
from simulator.runtime import run_clock, run_simulation

FLEET = """
[run]
name = "length"
seed = 11
time = "virtual"
duration = "60s"
ledger = "{ledger}"

[[group]]
name = "ac"
count = 3
id = "LEN-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 2

[group.config]
MeterValueSampleInterval = 5

[group.sessions]
arrivals_per_hour = 360
duration = "20s..40s"
energy_kwh = "1..2"
id_tags = ["TAG-1"]
"""


def test_a_run_ends_at_its_duration_with_every_connection_closed_cleanly(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "length.db"
    fleet = parse_fleet(FLEET.format(ledger=ledger))
    result = trio.run(lambda: run_simulation(fleet, live=False), clock=run_clock(fleet))
    assert result.exit_code == 0, result.reasons
    with sqlite3.connect(ledger) as db:
        started, ended = db.execute("SELECT started_at, ended_at FROM runs").fetchone()
        stopped = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'tx_stopped'"
                             " AND json_extract(data, '$.reason') = 'Local'").fetchone()[0]
        closes = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'csms_note'"
                            " AND json_extract(data, '$.what') = 'disconnected'").fetchone()[0]
    length = (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
    assert stopped > 0  # transactions were running at the end, and were stopped in the grace
    assert closes == 3
    assert 60.0 <= length < 61.0  # not 62 s or 65 s: no close waited out a timeout
