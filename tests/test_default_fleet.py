"""The default fleet shows deliberate behaviour only: run ten simulated minutes of it (virtual
time, the same file otherwise) and every refusal is one the file asks for. Drivers never share a
tag by accident (no ConcurrentTx: each connector has tags of its own), and the blocked tags are
refused at Authorize, so they never start a transaction."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import trio

from simulator.config import load_fleet
from simulator.config.library import fleet_file
from simulator.runtime import run_clock, run_simulation


def test_ten_minutes_of_the_default_fleet_refuse_only_the_blocked_tags(tmp_path: Path) -> None:
    ledger = tmp_path / "default.db"
    fleet = load_fleet(fleet_file(None), overrides={
        "run.time": "virtual", "run.duration": "10m", "run.ledger": str(ledger)})
    result = trio.run(lambda: run_simulation(fleet, live=False), clock=run_clock(fleet))
    assert result.exit_code == 0, result.reasons
    with sqlite3.connect(ledger) as db:
        acked = Counter(status for (status,) in db.execute(
            "SELECT json_extract(data, '$.status') FROM events WHERE kind = 'tx_acked'"))
        authorized = [json.loads(raw) for (raw,) in db.execute(
            "SELECT raw FROM frames WHERE direction = 'in' AND action = 'Authorize'")]
        started = [json.loads(raw)[3]["idTag"] for (raw,) in db.execute(
            "SELECT raw FROM frames WHERE direction = 'out' AND message_type = 2"
            " AND action = 'StartTransaction'")]
    assert sum(acked.values()) >= 100 and set(acked) == {"Accepted"}, acked
    answers = Counter(frame[2]["idTagInfo"]["status"] for frame in authorized)
    assert answers["Blocked"] >= 10 and set(answers) == {"Accepted", "Blocked"}, answers
    assert not [tag for tag in started if tag.startswith("BLOCKED")]
    assert len(set(started)) > 20  # tags of their own, per connector
