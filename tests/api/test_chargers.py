"""The chargers' read endpoints: the paginated, filtered list; the grid's state codes; one
charger's detail (connectors, transaction, configuration with secrets redacted, last frames);
and the problem documents for what does not exist."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import msgspec
import trio

from simulator.actors.charger import ChargerControl
from simulator.api.chargers import States
from simulator.api.fleetview import LEGEND, link_state, state_code
from simulator.api.recent import FRAMES_KEPT, RAW_KEPT, RecentActivity
from simulator.events import Connected, Crashed, FrameIn, FrameOut
from simulator.ocpp.v16 import PLUGIN, GetConfigurationRequest
from tests.api.support import Watcher, api_client, assert_problem, fleet_text

SECRET = "0123456789abcdef0123"  # the fleet's AuthorizationKey (tests.api.support)


async def test_the_list_pages_and_filters(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    async with api_client(tmp_path / "r.db", depot_rate=0.01) as (_, client):  # DP-2 at 100 s
        await trio.sleep(2)
        page = (await client.get("/api/chargers", params={"limit": 2})).json()
        assert (page["total"], page["offset"], page["limit"]) == (5, 0, 2)
        assert [row["id"] for row in page["items"]] == ["ST-1", "ST-2"]
        row = page["items"][0]
        assert row == {"id": "ST-1", "group": "street", "link": "connected", "boot": "accepted",
                       "restarts": 0, "outbox": 0, "connectors": [
                           {"id": 1, "status": "Available", "error_code": "NoError",
                            "transaction_id": None},
                           {"id": 2, "status": "Available", "error_code": "NoError",
                            "transaction_id": None}]}
        rest = (await client.get("/api/chargers", params={"offset": 2, "limit": 10})).json()
        assert [row["id"] for row in rest["items"]] == ["ST-3", "DP-1", "DP-2"]
        assert rest["items"][-1] == {"id": "DP-2", "group": "depot", "link": "not_started",
                                     "boot": "off", "restarts": 0, "outbox": 0,
                                     "connectors": []}
        beyond = (await client.get("/api/chargers", params={"offset": 50})).json()
        assert (beyond["total"], beyond["items"]) == (5, [])

        depot = (await client.get("/api/chargers", params={"group": "depot"})).json()
        assert [row["id"] for row in depot["items"]] == ["DP-1", "DP-2"]
        waiting = (await client.get("/api/chargers", params={"status": "NOT_STARTED"})).json()
        assert [row["id"] for row in waiting["items"]] == ["DP-2"]

        await client.post("/api/chargers/ST-2/commands", json={"do": "plug", "connector": 2})
        await client.post("/api/chargers/ST-2/commands", json={
            "do": "present_tag", "connector": 2, "params": {"id_tag": "TAG-9"}})
        await client.post("/api/chargers/DP-1/commands", json={
            "do": "fault", "params": {"error_code": "GroundFailure"}})
        await trio.sleep(10)
        charging = (await client.get("/api/chargers", params={"status": "charging"})).json()
        assert [row["id"] for row in charging["items"]] == ["ST-2"]
        assert charging["items"][0]["connectors"][1]["transaction_id"] is not None
        faulted = (await client.get("/api/chargers",
                                    params={"status": "Faulted", "group": "depot"})).json()
        assert [row["id"] for row in faulted["items"]] == ["DP-1"]
        assert faulted["items"][0]["connectors"][0]["error_code"] == "GroundFailure"
        connected = (await client.get("/api/chargers", params={"status": "connected"})).json()
        assert connected["total"] == 4

        assert_problem(await client.get("/api/chargers", params={"group": "nowhere"}), 404,
                       "nowhere")
        for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "many"}):
            assert_problem(await client.get("/api/chargers", params=bad), 400)


async def test_the_states_grid_codes_each_charger(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    async with api_client(tmp_path / "r.db", depot_rate=0.01) as (sim, client):
        await trio.sleep(2)
        response = await client.get("/api/chargers/states")
        assert response.headers["content-type"] == "application/json"
        msgspec.json.decode(response.content, type=States)  # (encoded in parts: still States)
        states = response.json()
        assert states["ids"] == list(sim.chargers())
        assert states["legend"] == {str(code): name for code, name in LEGEND.items()}
        assert states["codes"] == [2, 2, 2, 2, 0]
        await client.post("/api/chargers/ST-1/commands", json={"do": "plug", "connector": 1})
        await client.post("/api/chargers/ST-2/commands", json={"do": "plug", "connector": 1})
        await client.post("/api/chargers/ST-2/commands", json={
            "do": "present_tag", "connector": 1, "params": {"id_tag": "TAG-1"}})
        await client.post("/api/chargers/DP-1/commands", json={
            "do": "fault", "connector": 1, "params": {"error_code": "GroundFailure"}})
        await trio.sleep(10)
        codes = (await client.get("/api/chargers/states")).json()["codes"]
        assert codes == [3, 4, 2, 6, 0]  # preparing, charging, available, faulted, not started
        await client.post("/api/run/stop")
        await sim.wait_finished()
        codes = (await client.get("/api/chargers/states")).json()["codes"]
        assert codes == [8, 8, 8, 8, 0]


async def test_link_states_and_codes_of_a_control() -> None:
    control = ChargerControl()
    assert (link_state(None), state_code(None)) == ("not_started", 0)
    assert (link_state(control), state_code(control)) == ("restarting", 7)  # no machine
    control.done.set()
    assert (link_state(control), state_code(control)) == ("finished", 8)


async def test_a_chargers_detail(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with api_client(tmp_path / "r.db") as (sim, client):
        await trio.sleep(2)
        await client.post("/api/chargers/ST-1/commands", json={"do": "plug", "connector": 2})
        await client.post("/api/chargers/ST-1/commands", json={
            "do": "present_tag", "connector": 2, "params": {"id_tag": "TAG-1"}})
        await trio.sleep(600)
        response = await client.get("/api/chargers/ST-1")
        assert response.status_code == 200
        assert SECRET not in response.text
        detail = response.json()
        assert (detail["id"], detail["group"], detail["link"], detail["boot"]) == (
            "ST-1", "street", "connected", "accepted")
        assert detail["last_crash"] is None and detail["outbox"] <= 1  # a MeterValues in flight
        idle, busy = detail["connectors"]
        assert idle["transaction"] is None and idle["energy_wh"] == 0
        assert busy["status"] == "Charging" and busy["energy_wh"] > 1000  # 22 kW, 10 minutes
        tx = busy["transaction"]
        assert tx["id"] == busy["transaction_id"] is not None
        assert (tx["id_tag"], tx["meter_start"]) == ("TAG-1", 0)
        assert 2 <= tx["started"] <= 3
        keys = {key["key"]: key for key in detail["configuration"]}
        assert keys["AuthorizationKey"] == {"key": "AuthorizationKey", "value": "<redacted>",
                                            "readonly": False}
        assert keys["MeterValueSampleInterval"]["value"] == "10"
        assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "value": "2",
                                              "readonly": True}
        frames = detail["frames"]
        assert len(frames) == FRAMES_KEPT
        assert [f["t"] for f in frames] == sorted(f["t"] for f in frames)
        assert frames[-1]["t"] <= 602
        assert {f["direction"] for f in frames} == {"in", "out"}
        assert "MeterValues" in {f["action"] for f in frames}
        assert all(f["raw"].startswith("[") for f in frames)

        assert_problem(await client.get("/api/chargers/NOPE"), 404, "NOPE")

        # a frame naming the key shows no value, whoever published it
        change = json.dumps([2, "c1", "ChangeConfiguration",
                             {"key": "AuthorizationKey", "value": SECRET}], separators=(",", ":"))
        await sim.bus.publish(FrameIn(t=trio.current_time(), charger="ST-1", raw=change,
                                      message_type=2, action="ChangeConfiguration"))
        response = await client.get("/api/chargers/ST-1")
        assert SECRET not in response.text
        assert response.json()["frames"][-1]["raw"] == (
            '[2,"c1","ChangeConfiguration",{"key":"AuthorizationKey","value":"***"}]')


def test_recent_activity_is_bounded_and_keeps_the_last_crash() -> None:
    recent = RecentActivity()
    for n in range(FRAMES_KEPT + 5):
        recent.observe(FrameOut(t=float(n), charger="A", raw=f"[2,\"{n}\",\"Heartbeat\",{{}}]",
                                message_type=2, action="Heartbeat"))
    recent.observe(FrameIn(t=99.0, charger="A", raw="x" * (RAW_KEPT + 10), action="Heartbeat"))
    recent.observe(Connected(t=100.0, charger="A", url="ws://x"))  # not a frame: ignored
    recent.observe(FrameIn(t=100.0, charger=None, raw="[]"))  # no charger: ignored
    frames = recent.frames("A")
    assert len(frames) == FRAMES_KEPT
    assert frames[0].t == 6.0 and frames[-2].direction == "out"
    assert frames[-1].direction == "in" and len(frames[-1].raw) == RAW_KEPT + 1
    assert recent.frames("B") == () and recent.crash("A") is None
    recent.observe(Crashed(t=5.0, charger="A", error="ValueError: one", traceback="tb1",
                           restart_in=1.0))
    recent.observe(Crashed(t=7.0, charger="A", error="KeyError: two", traceback="tb2",
                           restart_in=2.0))
    assert recent.crash("A") == (7.0, "KeyError: two", "tb2")


def _decode_request(action: str, raw: bytes | msgspec.Raw) -> msgspec.Struct:
    if action == "GetConfiguration":
        return GetConfigurationRequest(key=12345)  # type: ignore[arg-type]  # a codec bug
    return PLUGIN.decode_request(action, raw)


BUGGY = dataclasses.replace(PLUGIN, decode_request=_decode_request)
"""OCPP 1.6 whose codec hands the charger a GetConfiguration it fails on."""


async def test_a_crashed_charger_shows_restarting_then_its_last_crash(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    text = fleet_text(tmp_path / "r.db").replace(
        "[csms.embedded]\n", '[csms.embedded]\npoll_interval = "30s"\n')
    watcher = Watcher()
    async with api_client(tmp_path / "r.db", text=text, watcher=watcher,
                          plugin=BUGGY) as (sim, client):
        await watcher.until(lambda events: any(type(e) is Crashed for e in events))
        crash = next(e for e in watcher.events if type(e) is Crashed)
        assert crash.charger is not None and crash.restart_in > 0
        await trio.sleep(crash.restart_in / 2)
        assert sim.running_controls[crash.charger].machine is None
        states = (await client.get("/api/chargers/states")).json()
        assert states["codes"][states["ids"].index(crash.charger)] == 7
        restarting = (await client.get("/api/chargers", params={"status": "restarting"})).json()
        assert crash.charger in [row["id"] for row in restarting["items"]]
        await trio.sleep(crash.restart_in)
        detail = (await client.get(f"/api/chargers/{crash.charger}")).json()
        assert detail["restarts"] >= 1 and detail["link"] != "restarting"
        last = detail["last_crash"]
        assert last is not None and "TypeError" in last["error"]
        assert "Traceback" in last["traceback"] and last["t"] >= 30
