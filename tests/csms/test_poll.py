"""The embedded CSMS's own calls (``[csms.embedded] poll_interval``), in a whole virtual-time run:
every charger is called in turn with GetConfiguration and TriggerMessage, so the faults on a
charger's answers (late_result, reject_commands) have something to act on."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import trio

from simulator.config import parse_fleet
from simulator.runtime import run_clock, run_simulation

FLEET = """
[run]
name = "poll"
seed = 5
time = "virtual"
duration = "{duration}"
ledger = "{ledger}"

[csms.embedded]
{poll}

[[group]]
name = "g"
count = 2
id = "CP-{{n}}"
vendor = "Acme"
model = "AC22"

[[chaos]]
fault = "reject_commands"
target = {{ ids = ["CP-1"] }}
at = "1s"
params = {{ action = "TriggerMessage" }}

[[chaos]]
fault = "late_result"
target = {{ ids = ["CP-2"] }}
at = "1s"
params = {{ delay = "7s", count = 1 }}
"""


def run(tmp_path: Path, *, poll: str, duration: str = "95s") -> Path:
    ledger = tmp_path / "poll.db"
    fleet = parse_fleet(FLEET.format(ledger=ledger, poll=poll, duration=duration))
    result = trio.run(lambda: run_simulation(fleet, live=False), clock=run_clock(fleet))
    assert result.exit_code == 0, result.reasons
    return ledger


def csms_calls(ledger: Path) -> list[tuple[float, str, str]]:
    with sqlite3.connect(ledger) as db:
        return [(round(t, 3), charger, json.loads(raw)[2]) for t, charger, raw in db.execute(
            "SELECT t, charger, json_extract(data, '$.raw') FROM events "
            "WHERE kind = 'csms_frame_out' ORDER BY seq") if json.loads(raw)[0] == 2]


def answers(ledger: Path, charger: str) -> list[tuple[float, list[object]]]:
    with sqlite3.connect(ledger) as db:
        return [(round(t, 3), json.loads(raw)) for t, raw in db.execute(
            "SELECT t, json_extract(data, '$.raw') FROM events WHERE kind = 'frame_out' "
            "AND charger = ? ORDER BY seq", (charger,)) if json.loads(raw)[0] in (3, 4)]


def test_the_csms_calls_every_charger_in_turn(tmp_path: Path) -> None:
    ledger = run(tmp_path, poll='poll_interval = "30s"')
    calls = csms_calls(ledger)
    assert [(t, action) for t, charger, action in calls if charger == "CP-1"] == [
        (30.0, "GetConfiguration"), (60.0, "TriggerMessage"), (90.0, "GetConfiguration")]
    assert {charger for _, charger, _ in calls} == {"CP-1", "CP-2"}
    # reject_commands on TriggerMessage only: GetConfiguration answered, TriggerMessage Rejected
    cp1 = answers(ledger, "CP-1")
    assert [frame[0] for _, frame in cp1] == [3, 3, 3]
    assert cp1[1][1][2] == {"status": "Rejected"}
    assert "configurationKey" in cp1[0][1][2]
    # late_result: the first answer of CP-2 leaves 7 s after the call, the next ones at once
    assert [t for t, _ in answers(ledger, "CP-2")] == [37.0, 60.0, 90.0]


def test_without_the_option_the_csms_never_calls(tmp_path: Path) -> None:
    ledger = run(tmp_path, poll="", duration="65s")
    assert csms_calls(ledger) == []
