"""``POST /api/chargers/{id}/commands``: every command reaches the charger through the facade
(its effect is in the ledger, recorded as a ``command`` event with source ``api`` at the time
it took effect), bodies are checked exactly as ``[[step]]`` tables are, and what cannot be
carried out is a problem document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from simulator.config import ConfigError, parse_fleet
from tests.api.support import api_client, assert_problem, fleet_text, rows


def statuses(ledger: Path, charger: str, connector: int) -> list[str]:
    """The statuses ``charger`` reported for ``connector``, in order."""
    return [json.loads(raw)[3]["status"] for (raw,) in rows(
        ledger, "SELECT raw FROM frames WHERE charger = ? AND direction = 'out' "
                "AND action = 'StatusNotification' AND message_type = 2 ORDER BY seq",
        charger) if json.loads(raw)[3]["connectorId"] == connector]


async def test_every_command_shows_its_effect_in_the_ledger(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = tmp_path / "r.db"
    given: list[tuple[float, str, str]] = []  # (run time, charger, command) as the API took it

    async with api_client(ledger) as (sim, client):
        await trio.sleep(2)
        start = (await client.get("/api/run")).json()["elapsed"] - trio.current_time()

        async def command(charger: str, body: dict[str, Any]) -> dict[str, Any]:
            response = await client.post(f"/api/chargers/{charger}/commands", json=body)
            assert response.status_code == 202, response.text
            given.append((round(trio.current_time() + start, 6), charger, body["do"]))
            answer: dict[str, Any] = response.json()
            return answer

        assert await command("ST-1", {"do": "plug", "connector": 1}) == {
            "command": "plug", "charger": "ST-1", "connectors": [1]}
        await trio.sleep(1)
        await command("ST-1", {"do": "present_tag", "connector": 1,
                               "params": {"id_tag": "TAG-1"}})
        await trio.sleep(30)
        await command("ST-1", {"do": "stop", "connector": 1,
                               "params": {"reason": "EVDisconnected"}})
        await trio.sleep(5)
        await command("ST-1", {"do": "unplug", "connector": 1})
        await command("DP-1", {"do": "fault", "params": {"error_code": "GroundFailure"}})
        await trio.sleep(5)
        await command("DP-1", {"do": "clear_fault", "connector": 1})
        reboot = await command("ST-2", {"do": "reboot", "params": {"hard": True}})
        assert reboot["connectors"] == []
        await trio.sleep(30)
        assert sim.statistics().chargers_connected == 5
    assert sim.result is not None and sim.result.exit_code == 0, sim.result

    recorded = rows(ledger, "SELECT t, charger, json_extract(data, '$.command'), "
                            "json_extract(data, '$.source'), data FROM events "
                            "WHERE kind = 'command' ORDER BY seq")
    assert [(c, name) for _, c, name, _, _ in recorded] == [(c, n) for _, c, n in given]
    assert {source for _, _, _, source, _ in recorded} == {"api"}
    # each at the simulated time the API carried it out (the run's clock starts at the API's)
    assert [t for t, *_ in recorded] == pytest.approx([t for t, _, _ in given], abs=1e-6)
    assert json.loads(recorded[1][4])["params"] == {"id_tag": "TAG-1"}
    assert json.loads(recorded[2][4])["params"] == {"reason": "EVDisconnected"}
    assert json.loads(recorded[4][4])["params"]["error_code"] == "GroundFailure"

    assert statuses(ledger, "ST-1", 1) == ["Available", "Preparing", "Charging", "Finishing",
                                           "Available"]
    (tx,) = rows(ledger, "SELECT id_tag, transaction_id, stop_reason FROM transactions "
                         "WHERE charger = 'ST-1'")
    assert tx[0] == "TAG-1" and tx[1] is not None and tx[2] == "EVDisconnected"
    assert statuses(ledger, "DP-1", 1)[-2:] == ["Faulted", "Available"]
    boots = rows(ledger, "SELECT count(*) FROM frames WHERE charger = 'ST-2' "
                         "AND action = 'BootNotification' AND direction = 'out' "
                         "AND message_type = 2")
    assert boots == [(2,)]


async def test_a_connector_command_without_a_connector_acts_on_every_connector(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = tmp_path / "r.db"
    async with api_client(ledger) as (_, client):
        await trio.sleep(2)
        response = await client.post("/api/chargers/ST-3/commands", json={"do": "plug"})
        assert response.status_code == 202
        assert response.json()["connectors"] == [1, 2]
        await trio.sleep(5)
        states = (await client.get("/api/chargers/states")).json()
        assert states["codes"][states["ids"].index("ST-3")] == 3  # preparing
    assert statuses(ledger, "ST-3", 1)[-1] == statuses(ledger, "ST-3", 2)[-1] == "Preparing"


BODIES: list[dict[str, Any]] = [
    {"do": "plug"}, {"do": "plug", "connector": 2}, {"do": "plug", "connector": 3},
    {"do": "plug", "connector": 0}, {"do": "plog"}, {"do": "present_tag", "connector": 1},
    {"do": "present_tag", "params": {"id_tag": "TAG-1"}},
    {"do": "present_tag", "params": {"id_tag": "X" * 21}},
    {"do": "present_tag", "params": {"id_tag": 7}},
    {"do": "stop", "params": {"reason": "Local"}}, {"do": "stop", "params": {"reason": "Bored"}},
    {"do": "reboot", "params": {"hard": "yes"}}, {"do": "reboot", "params": {"soft": True}},
    {"do": "fault", "connector": 1, "params": {"error_code": "HighTemperature", "info": "hot"}},
    {"do": "fault", "params": {"error_code": "Melted"}}, {"do": "clear_fault", "connector": 2},
    {"do": "unplug", "params": {"force": 1}},
]
"""Bodies a [[step]] table accepts and refuses alike (connectors of group street: 2)."""


def step_accepted(tmp_path: Path, body: dict[str, Any]) -> bool:
    """Whether the fleet file takes ``body`` as a [[step]] on ST-1."""
    target = {"ids": ["ST-1"]} | ({"connector": body["connector"]} if "connector" in body else {})
    step = {"at": 1, "do": body["do"], "target": target, "params": body.get("params", {})}
    text = fleet_text(tmp_path / "s.db") + "\n[[step]]\n" + "\n".join(
        f"{key} = {json.dumps(value) if not isinstance(value, dict) else inline(value)}"
        for key, value in step.items())
    try:
        parse_fleet(text)
    except ConfigError:
        return False
    return True


def inline(table: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in table.items()) + "}"


async def test_a_command_is_accepted_exactly_when_a_step_would_be(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    expected = [step_accepted(tmp_path, body) for body in BODIES]
    assert True in expected and False in expected
    async with api_client(tmp_path / "r.db") as (_, client):
        await trio.sleep(2)
        for body, accepted in zip(BODIES, expected, strict=True):
            response = await client.post("/api/chargers/ST-1/commands", json=body)
            if accepted:
                assert response.status_code == 202, (body, response.text)
            else:
                problem = assert_problem(response, 400)
                assert problem["field"].split(".")[0] in {"do", "connector", "params"}, problem


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"do": "present_tag"}, "params.id_tag", ["id_tag"]),
    ({"do": "plug", "connector": 9}, "connector", ["connector 9 does not exist"]),
    ({"do": "plog"}, "do", ["plug"]),
    ({"do": "fault", "params": {"error_code": "Melted"}}, "params.error_code", ["Melted"]),
    ({"do": "disconnect"}, "do", ["/api/chaos"]),
])
async def test_a_bad_body_is_a_400_naming_the_field(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, body: dict[str, Any], field: str,
    words: list[str],
) -> None:
    async with api_client(tmp_path / "r.db") as (_, client):
        await trio.sleep(2)
        response = await client.post("/api/chargers/ST-1/commands", json=body)
        assert assert_problem(response, 400, *words)["field"] == field
        for malformed in ({"do": "plug", "extra": 1}, {"connector": 1}, {"do": "plug",
                          "connector": -1}, {"do": "plug", "params": {"a": [1]}}):
            assert_problem(await client.post("/api/chargers/ST-1/commands", json=malformed),
                           400)
        assert_problem(await client.post("/api/chargers/ST-1/commands", content=b"{nope",
                                          headers={"content-type": "application/json"}), 400)
    assert rows(tmp_path / "r.db", "SELECT count(*) FROM events WHERE kind = 'command'") == [(0,)]


async def test_unknown_not_started_and_stopping_are_problems(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = tmp_path / "r.db"
    async with api_client(ledger, depot_rate=0.01) as (sim, client):  # DP-2 starts at 100 s
        await trio.sleep(2)
        assert "DP-2" not in sim.running_controls
        assert_problem(await client.post("/api/chargers/NOPE/commands", json={"do": "plug"}),
                       404, "NOPE")
        assert_problem(await client.post("/api/chargers/DP-2/commands", json={"do": "plug"}),
                       409, "not been started")
        assert (await client.post("/api/run/stop")).status_code == 202
        assert_problem(await client.post("/api/chargers/ST-1/commands", json={"do": "plug"}),
                       409, "stopping")
    assert rows(ledger, "SELECT json_extract(data, '$.command') FROM events "
                        "WHERE kind = 'command'") == [("stop_run",)]  # the stop alone
