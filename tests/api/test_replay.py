"""``sim replay`` applies again every command and fault a run was given through the control API,
at the same simulated times: a virtual-time run steered through the API at chosen times, then its
replay, whose ledger has the same ``command``, ``fault`` and ``fault_ended`` events at the same
times, and the same frames."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from simulator.api.replay import Replayer, recorded_actions
from simulator.api.server import ApiService
from simulator.bus import EventBus
from simulator.config import parse_fleet
from simulator.runtime import run_simulation
from simulator.simulation import Simulation
from tests.test_cli import sim as sim_cli

FLEET = """
[run]
name = "steered"
seed = 11
time = "virtual"
ledger = "{ledger}"
duration = "100s"

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

[group.config]
MeterValueSampleInterval = 10

[[chaos]]
fault = "reset"
target = {{ ids = ["ST-3"] }}
at = "45s"

[api]
listen = "127.0.0.1:0"
"""


class Steering:
    """A test's hand on the API: at chosen times (seconds after the run's start) it gives
    commands (through the facade, with source api, as the commands endpoint does) and posts
    and deletes faults over HTTP."""

    def __init__(self, api: ApiService) -> None:
        self.api = api
        self.start = 0.0
        self.answers: list[tuple[int, dict[str, Any]]] = []

    def attach(self, bus: EventBus) -> None:
        self.start = trio.current_time()

    async def serve(self, sim: Simulation, *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        assert self.api.app is not None
        transport = httpx.ASGITransport(app=self.api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:

            async def at(t: float) -> None:
                await trio.sleep_until(self.start + t)

            async def post(body: dict[str, Any]) -> None:
                answer = await client.post("/api/chaos", json=body)
                self.answers.append((answer.status_code, answer.json()))

            await at(3)
            await sim.plug("ST-1", 1, source="api")
            await at(4.5)
            await sim.present_tag("ST-1", 1, "TAG-1", source="api")
            await at(5)
            await post({"fault": "latency", "target": {"ids": ["ST-1"]}, "for": "20s",
                        "params": {"ms": 300}})
            await at(6)
            await post({"fault": "disconnect", "target": {"group": "street", "fraction": 0.5},
                        "every": "15s", "at": 1})
            await at(8.25)
            await post({"fault": "slow_responses", "target": {"ids": ["ST-3"]}, "for": "1m"})
            await at(30)
            answer = await client.delete("/api/chaos/api3")
            self.answers.append((answer.status_code, answer.json()))
            await at(40)
            answer = await client.delete("/api/chaos/api2")
            self.answers.append((answer.status_code, answer.json()))
            await at(50)
            await sim.stop_transaction("ST-1", 1, source="api")
            await at(55)
            await sim.unplug("ST-1", 1, source="api")
            await at(60)
            await post({"fault": "power_loss", "target": {"ids": ["ST-2"]},
                        "params": {"outage": "5s"}})
            await at(80)  # before the duration's 100 s: the replay ends here too
            answer = await client.post("/api/run/stop")
            self.answers.append((answer.status_code, answer.json()))


def interactive(ledger: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ledger) as db:
        return list(db.execute(
            "SELECT t, kind, charger, connector, data FROM events"
            " WHERE kind IN ('command', 'fault', 'fault_ended') ORDER BY seq"))


def frames(ledger: Path) -> dict[str, list[tuple[float, str, str]]]:
    found: dict[str, list[tuple[float, str, str]]] = {}
    with sqlite3.connect(ledger) as db:
        for charger, t, direction, raw in db.execute(
                "SELECT charger, t, direction, raw FROM frames ORDER BY seq"):
            found.setdefault(charger, []).append((t, direction, raw))
    return found


def test_a_run_steered_through_the_api_is_replayed_at_the_same_times(tmp_path: Path) -> None:
    original = tmp_path / "steered.db"
    fleet = parse_fleet(FLEET.format(ledger=original))
    assert fleet.api is not None
    api = ApiService(fleet.api, listen=False)
    steering = Steering(api)
    result = trio.run(
        lambda: run_simulation(fleet, live=False, gc_tuning=False, alongside=[api, steering]),
        clock=trio.testing.MockClock(autojump_threshold=0))
    assert result.exit_code == 0, result.reasons
    assert [status for status, _ in steering.answers] == [201, 201, 201, 200, 200, 201, 202]

    recorded = interactive(original)
    api_events = [row for row in recorded if '"source":"api"' in row[4]]
    assert {row[1] for row in api_events} == {"command", "fault", "fault_ended"}
    assert [(row[0], row[2]) for row in api_events if row[1] == "command"] == [
        (3.0, "ST-1"), (4.5, "ST-1"), (50.0, "ST-1"), (55.0, "ST-1"), (80.0, None)]
    hits = sorted({row[0] for row in api_events if row[1] == "fault"})
    assert hits == [5.0, 7.0, 8.25, 22.0, 37.0, 60.0]  # disconnect at 7, 22, 37; deleted at 40
    assert [(row[0], row[2]) for row in api_events if row[1] == "fault_ended"] == [
        (30.0, None), (30.0, "ST-3"), (40.0, None)]

    done = sim_cli("replay", str(original), "--quiet", timeout=120)
    assert done.returncode == 0, done.stderr
    replayed = tmp_path / "steered-replay.db"
    assert f"{len(api_events)} API command(s) and fault(s)" in done.stderr
    assert interactive(replayed) == recorded  # the fleet's own reset included
    assert frames(replayed) == frames(original)
    assert sum(len(sent) for sent in frames(original).values()) > 50
    assert "dashboard on" not in done.stderr  # the run's [api] is dropped: no port taken
    served = sim_cli("replay", str(original), "--quiet", "--api", "127.0.0.1:0",
                     "--ledger", str(tmp_path / "served.db"), timeout=120)
    assert served.returncode == 0, served.stderr
    assert "dashboard on http://127.0.0.1:" in served.stderr
    assert interactive(tmp_path / "served.db") == recorded


def test_only_the_apis_events_are_read_for_the_replay(tmp_path: Path) -> None:
    original = tmp_path / "plain.db"
    fleet = parse_fleet(FLEET.format(ledger=original).replace('listen = "127.0.0.1:0"', ""))
    result = trio.run(lambda: run_simulation(fleet, live=False, gc_tuning=False),
                      clock=trio.testing.MockClock(autojump_threshold=0))
    assert result.exit_code == 0
    assert recorded_actions(original, result.run_id, 0.0) == []  # the [[chaos]] reset is not
    assert Replayer([]).actions == ()


def test_the_apis_token_is_not_asked_for_when_the_replay_serves_no_api(tmp_path: Path) -> None:
    original = tmp_path / "guarded.db"
    text = FLEET.format(ledger=original).replace('duration = "100s"', 'duration = "5s"')
    fleet = parse_fleet(text.replace('listen = "127.0.0.1:0"',
                                     'listen = "127.0.0.1:0"\ntoken = "s3cret-token"'))
    result = trio.run(lambda: run_simulation(fleet, live=False, gc_tuning=False),
                      clock=trio.testing.MockClock(autojump_threshold=0))
    assert result.exit_code == 0
    done = sim_cli("replay", str(original), "--quiet", timeout=120)
    assert done.returncode == 0, done.stderr
    asked = sim_cli("replay", str(original), "--quiet", "--api", "127.0.0.1:0",
                    "--ledger", str(tmp_path / "served.db"), timeout=120)
    assert asked.returncode == 2 and "SIM_API__TOKEN" in asked.stderr


def test_a_token_from_the_environment_is_not_asked_for_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SIM_API_TOKEN", raising=False)
    original = tmp_path / "env-guarded.db"
    text = FLEET.format(ledger=original).replace('duration = "100s"', 'duration = "5s"')
    fleet = parse_fleet(text.replace('listen = "127.0.0.1:0"',
                                     'listen = "127.0.0.1:0"\ntoken = "${SIM_API_TOKEN}"'),
                        env={"SIM_API_TOKEN": "from-env"})
    result = trio.run(lambda: run_simulation(fleet, live=False, gc_tuning=False),
                      clock=trio.testing.MockClock(autojump_threshold=0))
    assert result.exit_code == 0
    done = sim_cli("replay", str(original), "--quiet", timeout=120)
    assert done.returncode == 0, done.stderr
    asked = sim_cli("replay", str(original), "--quiet", "--api", "127.0.0.1:0",
                    "--ledger", str(tmp_path / "served.db"), timeout=120)
    assert asked.returncode == 2 and "SIM_API_TOKEN is not set" in asked.stderr
