"""The director in a whole run, on a virtual clock against the embedded CSMS: ``[[step]]`` tables
become ``command`` events and transactions, ``[[chaos]]`` tables ``fault`` events and dropped,
then restored, connections; chargers the ramp has not started are skipped, not waited for; the
fault sequence per charger is the seed's, in every run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from simulator.actors.director import NOT_STARTED
from simulator.config import Target, parse_fleet
from simulator.runtime import open_simulation, run_clock, run_simulation
from simulator.simulation import CommandError

FLEET = """
[run]
name = "director"
seed = {seed}
time = "virtual"
duration = "5m"
ledger = "{ledger}"

[csms.embedded]
accepted_tags = ["TAG-*"]
heartbeat_interval = "1m"

[[group]]
name = "street"
count = 2
id = "ST-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 2
tags = ["urban"]

[[group]]
name = "depot"
count = 3
id = "DP-{{n}}"
vendor = "Acme"
model = "DC50"
connect_rate = 1

[[step]]
at = "5s"
do = "plug"
target = {{ ids = ["ST-1"], connector = 1 }}

[[step]]
at = "6s"
do = "present_tag"
target = {{ ids = ["ST-1"], connector = 1 }}
params = {{ id_tag = "TAG-1" }}

[[step]]
at = "1.5s"
do = "fault"
target = {{ group = "depot" }}
params = {{ error_code = "GroundFailure" }}

[[step]]
at = "100s"
do = "disconnect"
target = {{ ids = ["ST-2"] }}
params = {{ code = 4001 }}

[[step]]
at = "4m"
do = "stop"
target = {{ tag = "urban", connector = 1 }}

[[chaos]]
fault = "partition"
target = {{ group = "depot" }}
at = "0.5s"
for = "20s"

[[chaos]]
fault = "partition"
target = {{ tag = "urban" }}
at = "30s"
for = "30s"

[[chaos]]
fault = "disconnect"
at = "90s"
every = "20s"
probability = 0.5

[[chaos]]
fault = "reconnect_storm"
target = {{ group = "depot" }}
at = "150s"
"""


def run(tmp_path: Path, name: str, seed: int = 3) -> Path:
    ledger = tmp_path / f"{name}.db"
    fleet = parse_fleet(FLEET.format(seed=seed, ledger=ledger))
    result = trio.run(lambda: run_simulation(fleet, live=False), clock=run_clock(fleet))
    assert result.exit_code == 0, result.reasons
    return ledger


def rows(ledger: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ledger) as db:
        return list(db.execute(sql))


def faults(ledger: Path) -> dict[str, list[tuple[float, str, str, str | None]]]:
    """Each charger's faults: (t, fault, injection id, skipped)."""
    by_charger: dict[str, list[tuple[float, str, str, str | None]]] = {}
    for charger, t, raw in rows(ledger, "SELECT charger, t, data FROM events "
                                        "WHERE kind = 'fault' ORDER BY seq"):
        data = json.loads(raw)
        by_charger.setdefault(charger, []).append(
            (round(t, 6), data["fault"], data["injection"], data.get("skipped")))
    return by_charger


def test_steps_and_faults_reach_the_chargers_and_the_ledger(tmp_path: Path) -> None:
    ledger = run(tmp_path, "one")
    commands = rows(ledger, "SELECT round(t, 3), charger, connector, "
                            "json_extract(data, '$.command'), json_extract(data, '$.skipped') "
                            "FROM events WHERE kind = 'command' ORDER BY seq")
    assert commands == [
        (1.5, "DP-1", 1, "fault", None), (1.5, "DP-2", 1, "fault", None),
        (1.5, "DP-3", None, "fault", NOT_STARTED),  # the ramp starts it at 2 s
        (5.0, "ST-1", 1, "plug", None), (6.0, "ST-1", 1, "present_tag", None),
        (240.0, "ST-1", 1, "stop", None), (240.0, "ST-2", 1, "stop", None)]
    (tx,) = rows(ledger, "SELECT charger, id_tag, stop_reason FROM transactions")
    assert tx == ("ST-1", "TAG-1", "Local")

    by_charger = faults(ledger)
    # the depot ramps one charger a second: at 0.5 s only DP-1 runs
    assert by_charger["DP-1"][0] == (0.5, "partition", "0.0", None)
    assert by_charger["DP-2"][0] == (0.5, "partition", "0.0", NOT_STARTED)
    assert by_charger["DP-3"][0] == (0.5, "partition", "0.0", NOT_STARTED)
    for street in ("ST-1", "ST-2"):
        assert by_charger[street][0] == (30.0, "partition", "1.0", None)
    storms = [f for charger in ("DP-1", "DP-2", "DP-3") for f in by_charger[charger]
              if f[1] == "reconnect_storm"]
    assert storms == [(150.0, "reconnect_storm", "3.0", None)] * 3
    disconnects = [f for fs in by_charger.values() for f in fs if f[1] == "disconnect"]
    assert 0 < len(disconnects) < 5 * 11  # probability 0.5, 11 firings, 5 chargers

    (data,) = rows(ledger, "SELECT data FROM events WHERE kind = 'fault' AND "
                                "charger = 'ST-1' AND json_extract(data, '$.injection') = '1.0'")
    event = json.loads(data[0])
    assert event["family"] == "transport" and "deliberate" not in event  # (false: omitted)
    assert event.get("source", "chaos") == "chaos"  # the default, omitted
    assert event["seed_path"] == ["chaos", 1, "ST-1", 0]
    assert "params" not in event  # (a partition takes none)
    (data,) = rows(ledger, "SELECT data FROM events WHERE kind = 'fault' "
                           "AND json_extract(data, '$.fault') = 'disconnect' LIMIT 1")[0]
    assert json.loads(data)["params"] == {"code": 1000}

    def connects(charger: str) -> list[float]:
        return [t for (t,) in rows(ledger, "SELECT t FROM events WHERE kind = 'connected' "
                                           f"AND charger = '{charger}' ORDER BY seq")]

    # held offline by the partition, back exactly at its end; back at once after the storm
    st1 = connects("ST-1")
    assert [t for t in st1 if 30 <= t < 60] == [] and 60.0 in [round(t, 6) for t in st1]
    dp1 = connects("DP-1")
    assert [t for t in dp1 if 0.5 <= t < 20.5] == [] and 20.5 in [round(t, 6) for t in dp1]
    assert all(155.0 in [round(t, 6) for t in connects(dp)] for dp in ("DP-1", "DP-2", "DP-3"))
    assert rows(ledger, "SELECT COUNT(*) FROM events WHERE kind = 'crash'") == [(0,)]

    (step,) = rows(ledger, "SELECT round(t, 3), data FROM events WHERE kind = 'fault' "
                           "AND json_extract(data, '$.source') = 'step'")
    assert step[0] == 100.0 and json.loads(step[1])["params"] == {"code": 4001}
    assert json.loads(step[1])["injection"] == "step3"
    closes = rows(ledger, "SELECT round(t, 3) FROM events WHERE kind = 'disconnected' "
                          "AND charger = 'ST-2'")
    assert (100.0,) in closes


def test_the_fault_sequence_per_charger_is_the_seeds(tmp_path: Path) -> None:
    one, two, other = (faults(run(tmp_path, name, seed))
                       for name, seed in (("one", 3), ("two", 3), ("other", 4)))
    assert one == two
    assert one != other
    assert set(one) == set(other) == {"ST-1", "ST-2", "DP-1", "DP-2", "DP-3"}


async def test_the_facade_picks_chargers_by_tag(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    fleet = parse_fleet(FLEET.format(seed=3, ledger=tmp_path / "tag.db"))
    async with open_simulation(fleet, grace=1) as sim:
        assert sim.chargers(Target(tag="urban")) == ("ST-1", "ST-2")
        with pytest.raises(CommandError, match="no group has the tag 'rural'"):
            sim.chargers(Target(tag="rural"))
        sim.stop()
        await sim.wait_finished()
