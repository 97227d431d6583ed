"""The run's endpoints (``GET /api/run``, ``POST /api/run/stop``) in memory under virtual time,
every chargers' endpoint over a real socket under real time, and ``sim start --api``: a run
without a duration lasts until the API stops it; a non-loopback address without a token is
refused with exit 2."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio

from simulator.api.server import ApiService
from simulator.config import Api, Secret, parse_fleet
from simulator.events import Connected, StatusChanged
from simulator.runtime import open_simulation, run_simulation
from simulator.simulation import Simulation
from tests.api.support import Watcher, api_client, assert_problem, fleet_text, rows

REAL_FLEET = """
[run]
name = "real"
seed = 3
ledger = "{ledger}"

[[group]]
name = "street"
count = 2
id = "RT-{{n}}"
vendor = "Acme"
model = "AC11"
connectors = 1
connect_rate = 50
"""
START_TIMEOUT = 60.0
"""Seconds a ``sim start --api`` process gets to serve, and to end once stopped."""


async def test_the_run_names_itself_and_counts_the_fleet(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = tmp_path / "r.db"
    async with api_client(ledger, depot_rate=0.01) as (sim, client):
        await trio.sleep(3)
        run = (await client.get("/api/run")).json()
        assert {k: run[k] for k in ("name", "seed", "status", "time", "duration", "run_id")} == {
            "name": "api", "seed": 7, "status": "running", "time": "virtual", "duration": None,
            "run_id": sim.run_id}
        assert run["config_sha256"] == sim.fleet.sha256 and run["ledger"] == str(ledger)
        assert run["started"] == "2026-01-01T00:00:00+00:00"  # [run] epoch's default
        assert run["elapsed"] == 3.0
        assert run["fleet"] == {"size": 5, "started": 4, "connected": 4, "in_transaction": 0}
        assert run["live"]["chargers_connected"] == 4 and run["live"]["frames_out"] > 0
        stop = await client.post("/api/run/stop")
        assert (stop.status_code, stop.json()) == (202, {"status": "stopping"})
        assert (await client.get("/api/run")).json()["status"] == "stopping"
        assert (await client.post("/api/run/stop")).status_code == 202  # again: no change
        await sim.wait_finished()
    assert sim.result is not None and sim.result.status == "completed"


async def test_the_endpoints_are_documented_and_guarded_by_the_token(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger, token = tmp_path / "r.db", "tok-9f8e7d6c5b4a"
    api = Api(host="127.0.0.1", port=0, token=Secret(token))
    async with api_client(ledger, api=api) as (_, client):
        await trio.sleep(2)
        bearer = {"Authorization": f"Bearer {token}"}
        document = (await client.get("/api/openapi.json", headers=bearer)).json()
        assert {"/api/run", "/api/run/stop", "/api/chargers", "/api/chargers/states",
                "/api/chargers/{charger_id}",
                "/api/chargers/{charger_id}/commands"} <= set(document["paths"])
        body = document["components"]["schemas"]["CommandBody"]
        assert set(body["properties"]) == {"do", "connector", "params"}
        for method, path in (("GET", "/api/run"), ("POST", "/api/run/stop"),
                             ("GET", "/api/chargers"), ("GET", "/api/chargers/states"),
                             ("GET", "/api/chargers/ST-1"),
                             ("POST", "/api/chargers/ST-1/commands")):
            refused = await client.request(method, path, json={"do": "plug"})
            assert_problem(refused, 401, "token")
        given = await client.post("/api/chargers/ST-1/commands", json={"do": "plug"},
                                  headers=bearer)
        assert given.status_code == 202
        assert (await client.get("/api/run", headers=bearer)).json()["status"] == "running"
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT count(*) FROM events WHERE kind = 'command'").fetchone() == (2,)
        assert not any(token in str(row) for row in db.execute("SELECT * FROM events"))
        assert not any(token in str(row) for row in db.execute("SELECT * FROM runs"))


async def test_stop_ends_a_run_without_a_duration(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = tmp_path / "r.db"
    service = ApiService(Api(host="127.0.0.1", port=0), listen=False)

    async def stop_in_a_minute(_: Simulation) -> None:  # (served once the API is)
        await trio.sleep(60)
        assert service.app is not None
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            assert (await client.post("/api/run/stop")).status_code == 202

    result = await run_simulation(parse_fleet(fleet_text(ledger)),
                                  alongside=[service, Watcher(stop_in_a_minute)],
                                  gc_tuning=False, live=False)
    assert (result.status, result.exit_code) == ("completed", 0)
    assert 60 <= trio.current_time() < 70  # stopped at 60 s, after a short grace period
    assert rows(ledger, "SELECT status FROM runs") == [("completed",)]


async def test_every_endpoint_over_a_real_socket(tmp_path: Path) -> None:
    ledger = tmp_path / "real.db"
    fleet = parse_fleet(REAL_FLEET.format(ledger=ledger))
    service, watcher = ApiService(Api(host="127.0.0.1", port=0)), Watcher()
    with trio.fail_after(60):
        async with open_simulation(fleet, alongside=[service, watcher], gc_tuning=False,
                                   grace=2) as sim:
            await watcher.until(lambda events: sum(type(e) is Connected for e in events) == 2)
            assert service.url is not None and service.url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
                run = (await client.get("/api/run")).json()
                assert (run["status"], run["time"], run["fleet"]["connected"]) == (
                    "running", "real", 2)
                page = (await client.get("/api/chargers")).json()
                assert [row["link"] for row in page["items"]] == ["connected", "connected"]
                states = (await client.get("/api/chargers/states")).json()
                assert states["ids"] == ["RT-1", "RT-2"] and states["codes"] == [2, 2]
                given = await client.post("/api/chargers/RT-1/commands",
                                          json={"do": "plug", "connector": 1})
                assert given.status_code == 202
                await watcher.until(lambda events: any(
                    type(e) is StatusChanged and e.charger == "RT-1" and e.new == "Preparing"
                    for e in events))
                assert (await client.get("/api/chargers/states")).json()["codes"] == [3, 2]
                detail = (await client.get("/api/chargers/RT-1")).json()
                assert detail["connectors"][0]["status"] == "Preparing"
                assert any(f["action"] == "StatusNotification" for f in detail["frames"])
                missing = await client.get("/api/chargers/RT-9")
                assert missing.status_code == 404
                assert missing.headers["content-type"].startswith("application/problem+json")
                assert (await client.post("/api/run/stop")).status_code == 202
            await sim.wait_finished()
    assert sim.result is not None and sim.result.status == "completed"
    assert rows(ledger, "SELECT charger, json_extract(data, '$.command'), "
                        "json_extract(data, '$.source') FROM events WHERE kind = 'command'") \
        == [("RT-1", "plug", "api"), (None, "stop_run", "api")]  # the stop, recorded too


def test_sim_start_with_api_runs_until_stopped_through_it(tmp_path: Path) -> None:
    ledger = tmp_path / "cli.db"
    toml = tmp_path / "fleet.toml"
    toml.write_text(REAL_FLEET.format(ledger=ledger))
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "start", "--toml", str(toml), "--quiet",
         "--api", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            found = re.search(r"dashboard on (http://\S+?)/ ", line)
            url = found.group(1) if found else None
        assert url is not None, "sim start --api never said where it serves"
        while httpx.get(f"{url}/api/run", timeout=5).json()["fleet"]["connected"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert process.poll() is None  # no duration: it runs on
        assert httpx.post(f"{url}/api/run/stop", timeout=5).status_code == 202
        output, _ = process.communicate(timeout=START_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert rows(ledger, "SELECT status FROM runs") == [("completed",)]


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0"])
def test_a_public_address_without_a_token_is_refused(tmp_path: Path, listen: str) -> None:
    toml = tmp_path / "fleet.toml"
    toml.write_text(REAL_FLEET.format(ledger=tmp_path / "never.db"))
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "start", "--toml", str(toml), "--api", listen],
        capture_output=True, text=True, timeout=START_TIMEOUT, check=False,
    )
    assert done.returncode == 2
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "token" in lines[0], lines
    assert not (tmp_path / "never.db").exists()
    assert "Traceback" not in lines[0]
