"""``--resume`` after a kill -9, in virtual time against the embedded CSMS.

A kill leaves the ledger as of its last commit: the test copies the ledger of a running fleet
(SQLite's backup API, taken while the ledger writer is idle) and resumes from the copy, exactly
as ``sim start --resume`` would after a kill at that instant. The resumed run must stop every
transaction that was running with reason PowerLoss and the last meter value the ledger holds,
resend every message that was queued, go on from each connector's stored energy register and
local transaction number, and use message ids the killed run never used.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import trio
import trio.testing

from simulator.actors.streams import StreamWrapper
from simulator.config import parse_fleet
from simulator.runtime import open_simulation

FLEET = """
[run]
name = "resume"
seed = 21
time = "virtual"
ledger = "{ledger}"

[csms.embedded]
accepted_tags = ["TAG-*"]

[[group]]
name = "depot"
count = 4
id = "DP-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 10

[group.config]
MeterValueSampleInterval = 30
HeartbeatInterval = 300

[group.sessions]
arrivals_per_hour = 20
duration = "10m..40m"
energy_kwh = "2..10"
id_tags = ["TAG-1", "TAG-2", "TAG-3", "TAG-4", "TAG-5", "TAG-6", "TAG-7", "TAG-8"]
"""


def rows(ledger: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ledger) as db:
        return list(db.execute(sql, args))


class CutOff(StreamWrapper):
    """From ``after`` (trio seconds) on, writes go nowhere: the charger is offline and its
    transaction messages pile up in its outbox."""

    def __init__(self, inner: trio.abc.Stream, after: float) -> None:
        super().__init__(inner)
        self.after = after

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if trio.current_time() >= self.after:
            await trio.sleep_forever()
        await super().send_all(data)


async def _run_then_kill(live: Path, killed: Path, *, kill_at: float) -> None:
    """Run the fleet on ``live`` (DP-3 cut off 20 minutes before the end); at ``kill_at`` s copy
    its ledger to ``killed`` (what a kill -9 would leave), then let the fleet end."""

    def wrap(identity: str, stream: trio.abc.Stream) -> trio.abc.Stream:
        return CutOff(stream, kill_at - 1200) if identity == "DP-3" else stream

    async with open_simulation(parse_fleet(FLEET.format(ledger=live)), grace=5,
                               wrap=wrap) as sim:
        await trio.sleep(kill_at)
        with sqlite3.connect(live) as source, sqlite3.connect(killed) as target:
            source.backup(target)
        sim.stop()
        await sim.wait_finished()


async def test_a_resumed_run_stops_what_the_killed_one_left_running_and_goes_on(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    live, killed = tmp_path / "live.db", tmp_path / "killed.db"
    await _run_then_kill(live, killed, kill_at=3600 + 17.3)
    assert rows(killed, "SELECT status FROM runs") == [("running",)]  # as a kill leaves it
    memories = {charger: json.loads(text) for charger, text
                in rows(killed, "SELECT charger, memory FROM memory")}
    open_txs = [(charger, tx) for charger, memory in memories.items()
                for tx in memory.get("open_transactions", [])]
    assert len(open_txs) >= 2  # the kill caught transactions running
    queued = rows(killed, "SELECT charger, entry FROM outbox ORDER BY charger, position")
    assert len(queued) >= 10  # DP-3's, cut off: its sample of every 30 s, and more
    ids_before = rows(killed, "SELECT charger, unique_id FROM frames WHERE direction = 'out'"
                              " AND message_type = 2")
    starts_before = rows(killed, "SELECT charger, MAX(json_extract(data, '$.local_id')) FROM"
                                 " events WHERE kind = 'tx_started' GROUP BY charger")

    async with open_simulation(parse_fleet(FLEET.format(ledger=killed)), resume=True,
                               grace=30) as sim:
        await trio.sleep(1800)
        sim.stop()
        await sim.wait_finished()
    assert sim.result is not None and sim.result.exit_code == 0, sim.result
    resumed = sim.result.run_id
    assert rows(killed, "SELECT id, status, resumed_from FROM runs ORDER BY id") == [
        (1, "interrupted", None), (resumed, "completed", 1)]

    def calls(action: str) -> list[tuple[str, dict[str, Any]]]:
        return [(charger, json.loads(raw)[3]) for charger, raw in rows(
            killed, "SELECT charger, raw FROM frames WHERE run_id = ? AND direction = 'out'"
                    " AND message_type = 2 AND action = ? ORDER BY seq", resumed, action)]

    # every transaction running at the kill: stopped with PowerLoss and the stored register
    stops = calls("StopTransaction")
    for charger, tx in open_txs:
        register = memories[charger]["registers_wh"][tx["connector_id"] - 1]
        mine = [p for c, p in stops if c == charger and p["reason"] == "PowerLoss"
                and p["transactionId"] == tx.get("transaction_id", p["transactionId"])]
        assert len(mine) == 1, (charger, tx, stops)
        assert mine[0]["meterStop"] == int(register)
    # every message queued at the kill went out again, in order
    for charger, entry in queued:
        action, payload = json.loads(entry)["action"], json.loads(json.loads(entry)["payload"])
        sent = [p for c, p in calls(action) if c == charger]
        assert any(all(p.get(k) == v for k, v in payload.items()) for p in sent), entry
    # the registers went on: no transaction starts below what its connector had stored
    for charger, start in calls("StartTransaction"):
        stored = memories[charger]["registers_wh"][start["connectorId"] - 1]
        assert start["meterStart"] >= int(stored), (charger, start)
    # local ids go on, and no charger reuses a message id of the killed run
    last_local = dict(starts_before)
    for charger, local_id in rows(killed, "SELECT charger, json_extract(data, '$.local_id')"
                                          " FROM events WHERE run_id = ? AND kind ="
                                          " 'tx_started'", resumed):
        assert local_id > last_local.get(charger, 0)
    ids_after = rows(killed, "SELECT charger, unique_id FROM frames WHERE run_id = ? AND"
                             " direction = 'out' AND message_type = 2", resumed)
    assert ids_after and not set(ids_before) & set(ids_after)
    # the transactions view pairs each interrupted transaction with its PowerLoss stop
    unstopped = rows(killed, "SELECT charger, local_id FROM transactions WHERE run_id = 1"
                             " AND stopped_t IS NULL")
    assert unstopped == []
    reasons = rows(killed, "SELECT stop_reason, COUNT(*) FROM transactions WHERE run_id = 1"
                           " GROUP BY stop_reason")
    assert dict(reasons).get("PowerLoss", 0) >= len(open_txs)
