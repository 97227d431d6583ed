"""``GET /api/tree``: the live actor tree of a fleet in which a charger has crashed, in memory
on a virtual clock. The crash comes from a real input: a protocol plugin whose decoder fails on
the fleet's first BootNotification result, as a codec bug would; the supervisor restarts the
charger and keeps the crash."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
import trio.testing

from simulator.api.server import ApiService
from simulator.config import parse_fleet
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import PLUGIN
from simulator.runtime import open_simulation

FLEET = """
[run]
name = "tree"
seed = 11
time = "virtual"
ledger = "{ledger}"

[api]
listen = "127.0.0.1:0"
token = "tree-token"

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
"""

@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def crashing_once() -> ProtocolPlugin:
    """OCPP 1.6 whose decoder raises on the first BootNotification result it decodes."""
    failed: list[str] = []

    def decode_response(action: str, raw: bytes | msgspec.Raw) -> msgspec.Struct:
        if action == "BootNotification" and not failed:
            failed.append(action)
            raise RuntimeError("a codec bug in BootNotification")
        return PLUGIN.decode_response(action, raw)

    return dataclasses.replace(PLUGIN, decode_response=decode_response)


def walk(node: dict[str, Any], depth: int = 0) -> Iterator[tuple[dict[str, Any], int]]:
    yield node, depth
    for child in node["children"]:
        yield from walk(child, depth + 1)


async def test_the_tree_shows_every_task_and_the_crashed_charger_s_supervisor(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    fleet = parse_fleet(FLEET.format(ledger=tmp_path / "r.db"))
    assert fleet.api is not None
    service = ApiService(fleet.api, listen=False)
    with trio.fail_after(120):
        async with open_simulation(fleet, alongside=[service], gc_tuning=False,
                                   plugin=crashing_once()) as sim:
            assert service.app is not None
            await trio.sleep(20)  # the ramp, the crash, the restart (backoff <= 2 s), its boot
            crashed = [i for i, c in sim.running_controls.items() if c.restarts]
            assert len(crashed) == 1
            assert sim.statistics().chargers_connected == 3
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app),
                                         base_url="http://sim",
                                         headers={"Authorization": "Bearer tree-token"}) as http:
                response = await http.get("/api/tree")
                only = await http.get("/api/tree", params={"charger": "ST-2"})
                unknown = await http.get("/api/tree", params={"charger": "ST-9"})
                refused = await http.get("/api/tree", headers={"Authorization": "Bearer no"})
                openapi = (await http.get("/api/openapi.json")).json()
            in_one_pass = msgspec.to_builtins(sim.tree("ST-2"))
            sim.stop()

    assert response.status_code == 200
    root = response.json()
    nodes = [node for node, _ in walk(root)]
    assert all(node["name"] and node["kind"] == "task" for node in nodes)
    assert set(root) == {"name", "kind", "charger", "waits_on", "children", "supervisor"}
    names = {node["name"] for node in nodes}
    assert {"fleet", "ledger writer", "charger ST-1", "link ST-1", "link ST-3"} <= names

    # every charger's tasks carry its id, down to the link's unnamed subtasks
    for node, _ in walk(root):
        if node["name"] == "charger ST-1":
            below = [n for n, _ in walk(node)]
            assert len(below) > 3 and {n["charger"] for n in below} == {"ST-1"}
    assert {n["charger"] for n in nodes if n["name"] in {"fleet", "ledger writer"}} == {None}

    # a supervisor per charger; the crashed one has its restart and its traceback
    supervisors = {n["supervisor"]["charger"]: n["supervisor"] for n in nodes if n["supervisor"]}
    assert set(supervisors) == {"ST-1", "ST-2", "ST-3"}
    [who] = crashed
    crash_view = supervisors[who]
    assert crash_view["restarts"] >= 1
    [crash] = crash_view["crashes"]
    assert crash["error"] == "RuntimeError: a codec bug in BootNotification"
    assert "Traceback" in crash["traceback"] and "decode_response" in crash["traceback"]
    assert 0 <= crash["t"] < 20  # seconds since the run started (here, at its first boot)
    assert all(s["restarts"] == 0 and s["crashes"] == [] for c, s in supervisors.items()
               if c != who)

    # what the tasks wait on: each idle task names a frame of ours or a library's, and the
    # trio call it waits in; the task that answered the request was the running one
    waiting = {n["name"]: n["waits_on"] for n in nodes}
    assert waiting["ledger writer"] is not None
    assert waiting["charger ST-2"].startswith("ChargerActor.run (simulator/actors/charger.py:")
    assert " -> trio " in waiting["charger ST-2"]
    assert waiting["link ST-2"] is not None and ".py:" in waiting["link ST-2"]
    idle = [n for n in nodes if n["waits_on"] is None]
    assert len(idle) <= 1

    # ?charger= keeps that charger's tasks and the tasks above them
    assert only.status_code == 200
    kept = [n for n, _ in walk(only.json())]
    assert {n["charger"] for n in kept if n["charger"]} == {"ST-2"}
    assert "charger ST-2" in {n["name"] for n in kept} and "fleet" in {n["name"] for n in kept}
    assert all(n["charger"] == "ST-2" or n["children"] for n in kept)
    # (the API builds it step by step; Simulation.tree in one pass: the same tasks)
    assert sorted(n["name"] for n, _ in walk(in_one_pass)) == sorted(n["name"] for n in kept)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert refused.status_code == 401 and "tree-token" not in refused.text
    # the OpenAPI document says both routes and the tree's shape
    assert {"/api/tree", "/api/events"} <= set(openapi["paths"])
    node_schema = openapi["components"]["schemas"]["TaskNode"]
    assert {"name", "kind", "charger", "waits_on", "children", "supervisor"} \
        <= set(node_schema["properties"])
    events_query = {p["name"] for p in openapi["paths"]["/api/events"]["get"]["parameters"]}
    assert {"charger", "kind", "buffer"} <= events_query
