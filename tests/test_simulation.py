"""The handle on a running simulation (``open_simulation``): its command facade, statistics
and actor tree, on a virtual clock against the embedded CSMS; and the reproducibility of
virtual runs, byte for byte per charger."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio

from simulator.actors.streams import StreamWrapper
from simulator.config import Target, parse_fleet
from simulator.events import Event
from simulator.ocpp.v16 import PLUGIN, ChargePointErrorCode
from simulator.report import render_json, render_text, summarize
from simulator.runtime import open_simulation, run_clock, run_simulation
from simulator.simulation import CommandError, Simulation, TaskNode

FLEET = """
[run]
name = "facade"
seed = 5
time = "virtual"
ledger = "{ledger}"
{duration}

[csms.embedded]
accepted_tags = ["TAG-*"]

[[group]]
name = "street"
count = 2
id = "ST-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 10

[group.config]
MeterValueSampleInterval = 10
HeartbeatInterval = 60

[[group]]
name = "depot"
count = 2
id = "DP-{{n}}"
vendor = "Acme"
model = "DC50"
connectors = 1
max_power_kw = 50
connect_rate = 10
{sessions}
"""

SESSIONS = """
[group.sessions]
arrivals_per_hour = 30
duration = "5m..20m"
energy_kwh = "2..10"
id_tags = ["TAG-1", "TAG-2", "BLOCKED-1"]
"""


def fleet_text(ledger: Path, *, duration: str | None = None, sessions: bool = False) -> str:
    return FLEET.format(ledger=ledger, duration=f'duration = "{duration}"' if duration else "",
                        sessions=SESSIONS if sessions else "")


def rows(ledger: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ledger) as db:
        return list(db.execute(sql, args))


def names(node: TaskNode) -> list[str]:
    return [node.name, *(name for child in node.children for name in names(child))]


async def wait_connected(sim: Simulation, count: int) -> None:
    await trio.sleep(2)  # the ramp: 10 chargers a second per group
    assert sim.statistics().chargers_connected == count


async def test_each_command_shows_its_effect_in_the_ledger(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = tmp_path / "facade.db"
    fleet = parse_fleet(fleet_text(ledger))
    async with open_simulation(fleet, grace=5) as sim:
        await wait_connected(sim, 4)
        assert sim.chargers() == ("ST-1", "ST-2", "DP-1", "DP-2")
        assert sim.chargers(Target(group="depot")) == ("DP-1", "DP-2")
        assert await sim.plug("ST-1", 1) == ("ST-1",)
        await trio.sleep(1)
        await sim.present_tag("ST-1", 1, "TAG-1")
        await trio.sleep(30)
        await sim.stop_transaction("ST-1", 1)
        await trio.sleep(5)
        await sim.unplug("ST-1", 1)
        await sim.set_fault(Target(group="depot"), 1, ChargePointErrorCode.GROUND_FAILURE)
        await trio.sleep(5)
        await sim.clear_fault(["DP-1"], 1)
        await sim.set_fault("ST-2", 1, "HighTemperature")  # a warning, by its name
        await trio.sleep(5)
        await sim.reboot("ST-2")
        await trio.sleep(30)
        assert sim.statistics().chargers_connected == 4
        sim.stop()
        await sim.wait_finished()
    assert sim.result is not None and sim.result.exit_code == 0

    commands = rows(ledger, "SELECT charger, connector, json_extract(data, '$.command') "
                            "FROM events WHERE kind = 'command' ORDER BY seq")
    assert commands == [
        ("ST-1", 1, "plug"), ("ST-1", 1, "present_tag"), ("ST-1", 1, "stop"),
        ("ST-1", 1, "unplug"), ("DP-1", 1, "fault"), ("DP-2", 1, "fault"),
        ("DP-1", 1, "clear_fault"), ("ST-2", 1, "fault"), ("ST-2", None, "reboot"),
    ]

    def statuses(charger: str, connector: int) -> list[str]:
        return [json.loads(raw)[3]["status"] for (raw,) in rows(
            ledger, "SELECT raw FROM frames WHERE charger = ? AND direction = 'out' "
                    "AND action = 'StatusNotification' AND message_type = 2 ORDER BY seq",
            charger) if json.loads(raw)[3]["connectorId"] == connector]

    assert statuses("ST-1", 1) == ["Available", "Preparing", "Charging", "Finishing",
                                   "Available"]
    (tx,) = rows(ledger, "SELECT id_tag, transaction_id, stop_reason FROM transactions "
                         "WHERE charger = 'ST-1'")
    assert tx[0] == "TAG-1" and tx[1] is not None and tx[2] == "Local"
    assert statuses("DP-1", 1)[-2:] == ["Faulted", "Available"]
    assert statuses("DP-2", 1)[-1] == "Faulted"
    boots = rows(ledger, "SELECT charger FROM frames WHERE action = 'BootNotification' "
                         "AND direction = 'out' AND message_type = 2")
    assert sorted(c for (c,) in boots) == ["DP-1", "DP-2", "ST-1", "ST-2", "ST-2"]


async def test_the_facade_refuses_unknown_targets_with_one_line(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    fleet = parse_fleet(fleet_text(tmp_path / "refuse.db"))
    async with open_simulation(fleet, grace=1) as sim:
        await wait_connected(sim, 4)
        with pytest.raises(CommandError, match="no charger 'XX-9'"):
            await sim.plug("XX-9", 1)
        with pytest.raises(CommandError, match="no group 'yard'"):
            await sim.reboot(Target(group="yard"))
        with pytest.raises(CommandError, match="no error code 'Meltdown'; use one of "):
            await sim.set_fault("ST-1", 1, "Meltdown")
        half = sim.chargers(Target(group="street", fraction=0.5))
        assert len(half) == 1 and half[0] in {"ST-1", "ST-2"}
    rows_ = rows(tmp_path / "refuse.db", "SELECT COUNT(*) FROM events WHERE kind = 'command'")
    assert rows_ == [(0,)]


async def test_statistics_and_the_live_actor_tree(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    fleet = parse_fleet(fleet_text(tmp_path / "tree.db"))
    async with open_simulation(fleet, grace=1) as sim:
        await wait_connected(sim, 4)
        tree = names(sim.tree())
        assert {"fleet", "ledger writer", "charger ST-1", "link ST-1", "charger DP-2"} \
            <= set(tree)
        stats = sim.charger_statistics("ST-1")
        assert stats is not None
        seen: list[Event] = []
        receive = sim.bus.subscribe_lossy(100, "test viewer")
        await sim.plug("DP-1", 1)
        await trio.sleep(1)
        while True:
            try:
                seen.append(receive.receive_nowait())
            except trio.WouldBlock:
                break
        assert any(getattr(e, "command", None) == "plug" for e in seen)


def frames_by_charger(ledger: Path) -> dict[str, list[tuple[Any, ...]]]:
    by_charger: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows(ledger, "SELECT charger, t, wall, connector, direction, message_type, "
                            "unique_id, action, latency, violations, raw FROM frames "
                            "ORDER BY seq"):
        by_charger.setdefault(row[0], []).append(row[1:])
    return by_charger


def test_two_virtual_runs_of_one_file_give_identical_frames_per_charger(
    tmp_path: Path,
) -> None:
    """Same file, same seed, virtual time: every charger's frames (times, wall clock, ids,
    payloads) are the same bytes in both runs, whatever order trio ran the chargers in."""
    views = []
    for name in ("one", "two"):
        fleet = parse_fleet(fleet_text(tmp_path / f"{name}.db", duration="2h", sessions=True))
        result = trio.run(lambda f=fleet: run_simulation(f, live=False),
                          clock=run_clock(fleet))
        assert result.exit_code == 0
        views.append(frames_by_charger(tmp_path / f"{name}.db"))
    assert set(views[0]) == {"ST-1", "ST-2", "DP-1", "DP-2"}
    assert sum(len(frames) for frames in views[0].values()) > 200
    starts = [f for f in views[0]["DP-1"] if f[6] == "StartTransaction"]
    assert starts  # the depot's sessions ran
    assert views[0]["DP-1"][0][1].startswith("2026-01-01T00:00:")  # the virtual epoch
    for charger in views[0]:
        assert views[0][charger] == views[1][charger], charger


class StallingWrites(StreamWrapper):
    """Writes hang forever once ``stalled`` is set: a link whose peer stopped reading."""

    def __init__(self, inner: trio.abc.Stream, stalled: trio.Event) -> None:
        super().__init__(inner)
        self.stalled = stalled

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.stalled.is_set():
            await trio.sleep_forever()
        await super().send_all(data)


async def test_a_stream_wrapper_that_stalls_writes_leaves_the_machine_stepping(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    """A wrapper between ST-1's socket and its WebSocket client stops passing writes on: the
    charger's machine goes on stepping (a plug-in changes its status, its CALL times out and it
    drops the link), the other chargers are untouched, and the frames that never got out are
    recorded as unsent."""
    ledger = tmp_path / "stall.db"
    stalled = trio.Event()

    def wrap(identity: str, stream: trio.abc.Stream) -> trio.abc.Stream:
        return StallingWrites(stream, stalled) if identity == "ST-1" else stream

    fleet = parse_fleet(fleet_text(ledger))
    async with open_simulation(fleet, grace=1, wrap=wrap) as sim:
        await wait_connected(sim, 4)
        stalled.set()
        stalled_at = trio.current_time()
        await sim.plug("ST-1", 2)
        await sim.plug("ST-2", 2)
        await trio.sleep(120)
        sim.stop()
    start = rows(ledger, "SELECT t FROM events WHERE kind = 'command' ORDER BY seq LIMIT 1")
    status = rows(ledger, "SELECT charger, json_extract(data, '$.new') FROM events "
                          "WHERE kind = 'status' AND connector = 2 AND t >= ? ORDER BY seq",
                  start[0][0])
    assert ("ST-1", "Preparing") in status and ("ST-2", "Preparing") in status
    timeouts = rows(ledger, "SELECT charger FROM events WHERE kind = 'call_timeout'")
    assert {c for (c,) in timeouts} == {"ST-1"}
    unsent = rows(ledger, "SELECT json_extract(data, '$.unique_id') FROM events "
                          "WHERE kind = 'frame_unsent' AND charger = 'ST-1'")
    assert unsent
    received_by_csms = {u for (u,) in rows(
        ledger, "SELECT json_extract(data, '$.unique_id') FROM events "
                "WHERE kind = 'csms_frame_in'")}
    assert not {u for (u,) in unsent} & received_by_csms
    assert stalled_at > 0


class Recording(StreamWrapper):
    """Keeps every byte written and read."""

    def __init__(self, inner: trio.abc.Stream, log: list[tuple[str, bytes]]) -> None:
        super().__init__(inner)
        self.log = log

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.log.append(("out", bytes(data)))
        await super().send_all(data)

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await super().receive_some(max_bytes)
        self.log.append(("in", bytes(data)))
        return data


async def test_a_second_protocol_version_reaches_the_wire_through_the_plugin(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    """A fake version (OCPP 1.6's actions and codec under another subprotocol name) given to
    open_simulation is what the chargers offer and the embedded CSMS accepts: the handshake
    on the wire names it, and the chargers boot over it."""
    fake = dataclasses.replace(PLUGIN, name="OCPP test", subprotocol="ocpp-test1.0")
    log: list[tuple[str, bytes]] = []
    ledger = tmp_path / "plugin.db"
    fleet = parse_fleet(fleet_text(ledger))
    async with open_simulation(
        fleet, grace=1, plugin=fake,
        wrap=lambda identity, stream: Recording(stream, log) if identity == "ST-1" else stream,
    ) as sim:
        await wait_connected(sim, 4)
        sim.stop()
    request = next(data for direction, data in log if direction == "out")
    response = next(data for direction, data in log if direction == "in")
    assert b"\r\nsec-websocket-protocol: ocpp-test1.0\r\n" in request.lower()
    assert b"\r\nsec-websocket-protocol: ocpp-test1.0\r\n" in response.lower()
    assert b"ocpp1.6" not in request + response
    connected = rows(ledger, "SELECT DISTINCT json_extract(data, '$.subprotocol') FROM events "
                             "WHERE kind = 'connected'")
    assert connected == [("ocpp-test1.0",)]
    boots = rows(ledger, "SELECT COUNT(*) FROM events WHERE kind = 'boot' "
                         "AND json_extract(data, '$.status') = 'Accepted'")
    assert boots == [(4,)]


class Refusing(StreamWrapper):
    """A central system that never lets this charger in: every write fails."""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        raise trio.BrokenResourceError("refused by the test")


async def test_a_run_that_ends_with_messages_queued_counts_them_in_its_report(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    """DP-1 never gets through and runs a transaction offline: the run still completes (the
    verdict is not the report's to give), and its report counts what DP-1 left queued, per
    action, in text and JSON; the ledger keeps that count with the run."""
    ledger = tmp_path / "queued.db"

    def wrap(identity: str, stream: trio.abc.Stream) -> trio.abc.Stream:
        return Refusing(stream) if identity == "DP-1" else stream

    text = fleet_text(ledger) + (
        "\n[group.config]\nAllowOfflineTxForUnknownId = true\nLocalAuthorizeOffline = true\n")
    async with open_simulation(parse_fleet(text), grace=1, wrap=wrap) as sim:
        await wait_connected(sim, 3)
        await sim.plug("DP-1", 1)
        await sim.present_tag("DP-1", 1, "TAG-1")
        await trio.sleep(60)
        await sim.stop_transaction("DP-1", 1)
        await trio.sleep(5)
        sim.stop()
        await sim.wait_finished()
    assert sim.result is not None
    assert (sim.result.status, sim.result.exit_code) == ("completed", 0)
    queued = dict(rows(ledger, "SELECT json_extract(entry, '$.action'), count(*) FROM outbox "
                               "WHERE charger = 'DP-1' GROUP BY 1"))
    assert queued["StartTransaction"] == queued["StopTransaction"] == 1
    assert rows(ledger, "SELECT count(*) FROM outbox WHERE charger != 'DP-1'") == [(0,)]

    report = summarize(ledger)
    assert report.messages_queued == sum(queued.values())
    assert report.queued_by_action == dict(sorted(queued.items()))
    assert report.messages_dropped == 0
    assert f"still queued {sum(queued.values())} (" in render_text(report)
    as_json = json.loads(render_json(report))
    assert (as_json["messages_queued"], as_json["queued_by_action"]) == (
        report.messages_queued, report.queued_by_action)
    [(stored,)] = rows(ledger, "SELECT json_extract(summary, '$.queued_at_end') FROM runs")
    assert json.loads(stored) == queued
