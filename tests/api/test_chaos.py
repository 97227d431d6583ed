"""Faults injected through the control API (``/api/chaos``), on a virtual clock against the
embedded CSMS, the app called in memory (httpx's ASGI transport)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio
import trio.testing

from simulator.api.server import ApiService
from simulator.chaos import FAULTS
from simulator.config import parse_fleet
from simulator.events import Event, FaultInjected
from simulator.runtime import open_simulation
from simulator.simulation import Simulation

FLEET = """
[run]
name = "api-chaos"
seed = 7
time = "virtual"
ledger = "{ledger}"
duration = "{duration}"

[csms.embedded]
accepted_tags = ["TAG-*"]

[[group]]
name = "street"
count = 3
id = "ST-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 10
tags = ["city"]

[[chaos]]
fault = "latency"
target = {{ group = "street" }}
at = "5s"
every = "40s"
for = "10s"
params = {{ ms = 50 }}

[api]
listen = "127.0.0.1:0"
"""


def fleet_text(ledger: Path, duration: str = "2m") -> str:
    return FLEET.format(ledger=ledger, duration=duration)


def rows(ledger: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ledger) as db:
        return list(db.execute(sql, args))


@asynccontextmanager
async def running(ledger: Path, duration: str = "2m") -> AsyncIterator[
        tuple[Simulation, httpx.AsyncClient]]:
    fleet = parse_fleet(fleet_text(ledger, duration))
    assert fleet.api is not None
    service = ApiService(fleet.api, listen=False)
    async with open_simulation(fleet, alongside=[service], gc_tuning=False, grace=2) as sim:
        assert service.app is not None
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app),
                                     base_url="http://sim") as client:
            yield sim, client


async def test_the_catalog_lists_every_fault_with_its_parameters(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(tmp_path / "r.db", "10s") as (_, client):
        answer = await client.get("/api/chaos/catalog")
    assert answer.status_code == 200
    catalog = {row["fault"]: row for row in answer.json()}
    assert sorted(catalog) == sorted(FAULTS)
    latency = catalog["latency"]
    assert latency["family"] == "transport" and latency["target"] == "charger"
    assert latency["description"]
    ms = next(p for p in latency["params"] if p["name"] == "ms")
    assert ms["kind"] == "float" and ms["default"] == 200.0 and "0..60000" in ms["description"]
    direction = next(p for p in latency["params"] if p["name"] == "direction")
    assert direction["choices"] == ["both", "send", "receive"]
    assert catalog["connector_fault"]["target"] == "connector"
    assert catalog["blackout"]["family"] == "fleet" and catalog["blackout"]["lasting"] == "required"
    assert catalog["reconnect_storm"]["lasting"] == 5.0
    wave_fault = next(p for p in catalog["wave"]["params"] if p["name"] == "fault")
    assert wave_fault["required"] is True and "partition" in wave_fault["choices"]
    assert all(row["description"] for row in catalog.values())


async def test_a_fault_injected_then_ended_is_in_the_ledger_with_its_end(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = tmp_path / "r.db"
    async with running(ledger) as (sim, client):
        await trio.sleep(3)
        posted = await client.post("/api/chaos", json={
            "fault": "slow_responses", "target": {"ids": ["ST-2"]}, "at": "2s", "for": "1m",
            "params": {"delay": "3s"}})
        assert posted.status_code == 201, posted.text
        row = posted.json()
        assert row["id"] == "api1" and row["source"] == "api" and row["state"] == "scheduled"
        assert row["chargers"] == ["ST-2"] and row["at"] == 5.0 and row["for"] == 60.0
        assert row["params"] == {"delay": 3.0} and row["family"] == "behaviour"
        await trio.sleep(4)
        listed = (await client.get("/api/chaos")).json()
        (active,) = (r for r in listed["active"] if r["source"] == "api")
        assert active["id"] == "api1" and active["until"] == 65.0 and active["state"] == "active"
        ended = await client.delete("/api/chaos/api1")
        assert ended.status_code == 200, ended.text
        assert ended.json()["state"] == "ended" and ended.json()["until"] == 7.0
        again = (await client.get("/api/chaos")).json()
        assert "api1" in [r["id"] for r in again["ended"]]
        assert "api1" not in [r["id"] for r in again["active"] + again["scheduled"]]
        sim.stop()
        await sim.wait_finished()

    faults = rows(ledger, "SELECT t, charger, json_extract(data, '$.injection'),"
                          " json_extract(data, '$.fault') FROM events WHERE kind = 'fault'"
                          " AND json_extract(data, '$.source') = 'api'")
    assert faults == [(5.0, "ST-2", "api1.0", "slow_responses")]
    ends = rows(ledger, "SELECT t, charger, json_extract(data, '$.injection'),"
                        " json_extract(data, '$.source'),"
                        " IFNULL(json_extract(data, '$.cancelled'), 0),"
                        " IFNULL(json_extract(data, '$.early'), 0)"
                        " FROM events WHERE kind = 'fault_ended' ORDER BY seq")
    assert ends == [(7.0, None, "api1", "api", 0, 0), (7.0, "ST-2", "api1.0", "api", 0, 1)]
    # the charger ended it then, as it would have at its until (its machine's note)
    assert rows(ledger, "SELECT t, charger FROM events WHERE kind = 'note'"
                        " AND json_extract(data, '$.what') = 'fault_ended'"
                        " AND json_extract(data, '$.data.injection') = 'api1.0'") \
        == [(7.0, "ST-2")]


async def test_a_fault_with_every_deleted_makes_no_more_hits(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = tmp_path / "r.db"
    async with running(ledger) as (sim, client):
        await trio.sleep(2)
        posted = await client.post("/api/chaos", json={
            "fault": "disconnect", "target": {"group": "street", "fraction": 1.0},
            "every": 10})
        assert posted.status_code == 201, posted.text
        # due now, not delivered yet: scheduled, and its target as written
        assert posted.json()["state"] == "scheduled"
        assert posted.json()["target"] == {"group": "street", "fraction": 1.0}
        await trio.sleep(25)  # firings at 2, 12, 22
        listed = (await client.get("/api/chaos")).json()
        assert "api1" in [r["id"] for r in listed["scheduled"]]
        ended = await client.delete("/api/chaos/api1")
        assert ended.json()["state"] == "ended"
        await trio.sleep(40)
        sim.stop()
        await sim.wait_finished()
    times = rows(ledger, "SELECT DISTINCT t FROM events WHERE kind = 'fault'"
                         " AND json_extract(data, '$.source') = 'api' ORDER BY t")
    assert times == [(2.0,), (12.0,), (22.0,)]
    (end,) = rows(ledger, "SELECT t, json_extract(data, '$.cancelled') FROM events"
                          " WHERE kind = 'fault_ended'")
    assert end == (27.0, 1)


async def test_the_fleet_files_rules_are_listed_and_cannot_be_ended(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(tmp_path / "r.db") as (sim, client):
        await trio.sleep(7)  # the fleet's latency: 5 s to 15 s, then every 40 s
        listed = (await client.get("/api/chaos")).json()
        (rule,) = listed["active"]
        assert rule["id"] == "chaos0" and rule["source"] == "chaos"
        assert rule["chargers"] == ["ST-1", "ST-2", "ST-3"] and rule["until"] == 15.0
        await trio.sleep(10)
        listed = (await client.get("/api/chaos")).json()
        assert [r["id"] for r in listed["scheduled"]] == ["chaos0"]
        refused = await client.delete("/api/chaos/chaos0")
        assert refused.status_code == 409
        assert refused.headers["content-type"].startswith("application/problem+json")
        sim.stop()
        await sim.wait_finished()


async def test_bad_bodies_are_answered_400_naming_the_field(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(tmp_path / "r.db", "30s") as (_, client):
        await trio.sleep(1)

        async def refused(body: object) -> dict[str, Any]:
            answer = await client.post("/api/chaos", json=body)
            assert answer.status_code == 400, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            document: dict[str, Any] = answer.json()
            assert document["status"] == 400 and document["title"] == "Bad Request"
            return document

        unknown = await refused({"fault": "latncy"})
        assert unknown["detail"].startswith('fault: unknown fault "latncy"')
        assert "did you mean 'latency'?" in unknown["detail"]
        group = await refused({"fault": "reset", "target": {"group": "stret"}})
        assert group["detail"].startswith('target.group: no group named "stret"')
        assert "did you mean 'street'?" in group["detail"]
        charger = await refused({"fault": "reset", "target": {"ids": ["ST-1", "ST-9"]}})
        assert charger["detail"].startswith('target.ids[1]: no charger "ST-9"')
        param = await refused({"fault": "latency", "params": {"ms": 99999}})
        assert param["detail"] == "params.ms: must be within 0..60000, got 99999"
        unknown_param = await refused({"fault": "latency", "params": {"mss": 5}})
        assert unknown_param["detail"].startswith("params.mss: unknown parameter; did you mean")
        needs_for = await refused({"fault": "partition"})
        assert needs_for["detail"].startswith("for: is required")
        every = await refused({"fault": "reset", "every": 0})
        assert every["detail"].startswith("every: must be longer than 0s")
        typed = await refused({"fault": "reset", "probability": "often"})
        assert "probability" in typed["detail"]
        extra = await refused({"fault": "reset", "when": 3})
        assert "when" in extra["detail"]
        missing = await refused({"target": {"ids": ["ST-1"]}})
        assert "fault" in missing["detail"]
        garbled = await client.post("/api/chaos", content=b"{not json",
                                    headers={"content-type": "application/json"})
        assert garbled.status_code == 400
        unknown_id = await client.delete("/api/chaos/api42")
        assert unknown_id.status_code == 404
        assert unknown_id.json()["detail"].startswith("no fault 'api42' in this run")
        assert [r["id"] for r in (await client.get("/api/chaos")).json()["scheduled"]] \
            == ["chaos0"]


async def test_no_fault_is_injected_once_the_run_is_ending(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = tmp_path / "r.db"
    async with running(ledger) as (sim, client):
        await trio.sleep(2)
        posted = await client.post("/api/chaos", json={"fault": "reset", "at": 10})
        assert posted.status_code == 201
        sim.stop()
        late = await client.post("/api/chaos", json={"fault": "reset"})
        assert late.status_code == 409
        assert (await client.get("/api/chaos")).json()["ended"][-1]["id"] == "api1"
        await sim.wait_finished()
    assert rows(ledger, "SELECT count(*) FROM events WHERE kind = 'fault'"
                        " AND json_extract(data, '$.source') = 'api'") == [(0,)]


async def test_a_fault_the_charger_cannot_cut_short_goes_on_until_its_end(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = tmp_path / "r.db"
    async with running(ledger) as (sim, client):
        await trio.sleep(2)
        partition = await client.post("/api/chaos", json={
            "fault": "partition", "target": {"ids": ["ST-1"]}, "for": "30s"})
        wave = await client.post("/api/chaos", json={
            "fault": "wave", "target": {"group": "street"},
            "params": {"fault": "latency", "over": "9s", "ms": 10}, "for": "1m"})
        assert (partition.status_code, wave.status_code) == (201, 201)
        assert wave.json()["family"] == "fleet" and wave.json()["params"]["fault"] == "latency"
        await trio.sleep(5)
        ended = (await client.delete("/api/chaos/api1")).json()
        assert ended["state"] == "active" and ended["until"] == 32.0  # still offline till then
        await trio.sleep(30)
        listed = (await client.get("/api/chaos")).json()
        assert "api1" in [r["id"] for r in listed["ended"]]
        assert [r["id"] for r in listed["active"] if r["source"] == "api"] == ["api2"]
        sim.stop()
        await sim.wait_finished()
    ends = rows(ledger, "SELECT charger, json_extract(data, '$.injection'),"
                        " IFNULL(json_extract(data, '$.early'), 0) FROM events"
                        " WHERE kind = 'fault_ended'")
    assert ends == [(None, "api1", 0), ("ST-1", "api1.0", 0)]
    waves = rows(ledger, "SELECT t, json_extract(data, '$.injection') FROM events"
                         " WHERE kind = 'fault' AND json_extract(data, '$.source') = 'api'"
                         " AND json_extract(data, '$.fault') = 'latency' ORDER BY seq")
    assert [t for t, _ in waves] == [2.0, 5.0, 8.0]  # one charger every 9 s / 3
    assert sorted(injection for _, injection in waves) == ["api2.0.0", "api2.0.1", "api2.0.2"]
    reconnected = rows(ledger, "SELECT min(t) FROM events WHERE kind = 'connected'"
                               " AND charger = 'ST-1' AND t > 2")
    assert reconnected[0][0] >= 32.0  # the partition was not cut short


async def test_a_fault_posted_over_a_real_socket_reaches_the_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "real.db"
    text = fleet_text(ledger).replace('time = "virtual"', 'time = "real"') \
        .replace('duration = "2m"', "")
    fleet = parse_fleet(text)
    assert fleet.api is not None and fleet.run.time.value == "real"
    service = ApiService(fleet.api)
    delivered = trio.Event()

    def heard(event: Event) -> None:
        if isinstance(event, FaultInjected) and event.source == "api":
            delivered.set()

    with trio.fail_after(30):
        async with open_simulation(fleet, alongside=[service], gc_tuning=False,
                                   grace=1) as sim:
            sim.bus.observe(heard)
            assert service.url is not None and service.url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient(base_url=service.url) as client:
                posted = await client.post("/api/chaos", json={
                    "fault": "meter_spike", "target": {"ids": ["ST-3"], "connector": 1},
                    "at": 0.2})
                assert posted.status_code == 201, posted.text
                assert posted.json()["state"] == "scheduled"  # (not "ended": nothing ran yet)
                await delivered.wait()
                listed = (await client.get("/api/chaos")).json()
                (row,) = [r for r in listed["ended"] + listed["active"] if r["id"] == "api1"]
                assert row["chargers"] == ["ST-3"] and row["target"]["connector"] == 1
                assert (await client.get("/api/chaos/catalog")).status_code == 200
                now = await client.post("/api/chaos", json={
                    "fault": "latency", "target": {"ids": ["ST-2"]}, "for": "20s",
                    "params": {"ms": 5}})  # at 0: due at once, delivered a moment later
                assert now.status_code == 201 and now.json()["state"] in ("scheduled", "active")
            sim.stop()
            await sim.wait_finished()
    (fault,) = rows(ledger, "SELECT charger, connector, json_extract(data, '$.injection')"
                            " FROM events WHERE kind = 'fault'"
                            " AND json_extract(data, '$.injection') LIKE 'api1.%'")
    assert fault == ("ST-3", 1, "api1.0")


async def test_ids_never_reuse_one_a_replay_gave_again(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(tmp_path / "r.db", "20s") as (sim, client):
        await trio.sleep(1)
        await sim.bus.publish(FaultInjected(t=trio.current_time(), charger="ST-1",
                                            fault="reset", injection="api7.0", source="api"))
        posted = await client.post("/api/chaos", json={"fault": "reset"})
        assert posted.json()["id"] == "api8"
