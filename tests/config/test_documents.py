"""The fleet file (``simulator.config``): the documented files parse as written, ids expand, the
environment and overrides reach every field."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from simulator.config import (
    CHAOS_CATALOG,
    CHAOS_FAULTS,
    Fleet,
    StepAction,
    TimeMode,
    load_fleet,
    parse_fleet,
)
from simulator.durations import Range
from simulator.machines.workload import SessionPlan
from tests.config.documents import DESIGN_SKETCH, GROUP, INTEROP, NO_ENV, SCENARIOS, parse

# --- the contract: the documented files parse as written ------------------------------------------


def test_interop_file_parses_exactly() -> None:
    fleet = parse_fleet(INTEROP, source="scenarios/interop.toml", env=NO_ENV)
    assert fleet.run.name == "interop"
    assert fleet.run.seed == 7
    assert fleet.run.duration == 20.0
    assert fleet.run.ledger == "runs/interop.db"
    assert fleet.run.time is TimeMode.REAL
    assert fleet.csms.url == "ws://127.0.0.1:9100/ocpp"
    assert not fleet.csms.is_embedded
    assert fleet.csms.security_profile == 0
    (group,) = fleet.groups
    assert (group.name, group.count, group.vendor, group.model) == ("ac", 10, "Acme", "AC22")
    assert group.ids == tuple(f"AC-{n:03}" for n in range(1, 11))
    assert (group.connectors, group.max_power_kw, group.connect_rate) == (2, 22.0, 50.0)
    assert group.config == {"MeterValueSampleInterval": 2, "HeartbeatInterval": 3}
    assert isinstance(group.sessions, SessionPlan)
    assert group.sessions.arrivals_per_hour == 720.0
    assert group.sessions.duration == Range(3.0, 8.0)
    assert group.sessions.energy_kwh == Range(1.0, 5.0)
    assert group.sessions.id_tags == ("TAG-1", "TAG-2")
    assert (fleet.steps, fleet.chaos, fleet.expect) == ((), (), ())


def test_shipped_interop_scenario_is_the_documented_file() -> None:
    assert (SCENARIOS / "interop.toml").read_text() == INTEROP
    assert load_fleet(SCENARIOS / "interop.toml", env=NO_ENV).source == str(
        SCENARIOS / "interop.toml"
    )


def test_design_sketch_parses() -> None:
    fleet = parse_fleet(DESIGN_SKETCH, source="lab.toml", env=NO_ENV)
    assert fleet.run.name == "lab"
    assert fleet.run.ledger == "runs/lab.db"
    assert fleet.run.duration == 120.0
    assert fleet.csms.is_embedded
    assert len(fleet.charger_ids()) == 50
    assert fleet.groups[0].sessions is not None
    assert fleet.groups[0].sessions.duration == Range(1200.0, 7200.0)
    (step,) = fleet.steps
    assert step.at == 10.0
    assert step.do is StepAction.PLUG
    assert step.target.ids == ("AC-0001",)
    assert step.target.connector == 1
    (chaos,) = fleet.chaos
    assert (chaos.fault, chaos.at, chaos.for_, chaos.every) == ("disconnect", 30.0, 20.0, None)
    assert (chaos.target.group, chaos.target.fraction) == ("street", 0.2)
    assert chaos.probability == 1.0
    assert [e.check for e in fleet.expect] == ["no_lost_transactions", "latency"]
    assert fleet.expect[1].params == {"action": "BootNotification", "p95": "2s"}


def test_default_fleet_runs_briefly_against_the_embedded_csms() -> None:
    fleet = load_fleet(SCENARIOS / "fleet.toml", env=NO_ENV)
    assert fleet.csms.is_embedded
    assert fleet.run.duration is not None and fleet.run.duration <= 60
    assert len(fleet.charger_ids()) == 8
    assert all(group.connectors == 2 and group.sessions for group in fleet.groups)
    tags = [tag for group in fleet.groups if group.sessions for tag in group.sessions.id_tags]
    assert any(tag.startswith("BLOCKED") for tag in tags)
    assert fleet.csms.embedded.blocked_tags == ("BLOCKED-*",)


def test_defaults() -> None:
    fleet = parse_fleet(GROUP, env=NO_ENV)
    assert fleet.source is None
    assert fleet.run.name == "fleet"
    assert fleet.run.seed == 0
    assert fleet.run.duration is None
    assert fleet.run.ledger == "runs/fleet.db"
    assert fleet.run.time is TimeMode.REAL
    assert fleet.csms.url == "embedded"
    assert fleet.csms.password is None
    assert fleet.csms.embedded.boot_status == "Accepted"
    assert fleet.csms.embedded.heartbeat_interval == 60.0
    group = fleet.groups[0]
    assert (group.max_power_kw, group.connect_rate, group.sessions) == (22.0, 50.0, None)
    assert group.firmware_version is None and group.serial_number(1) is None


def test_run_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "night shift.toml"
    path.write_text(GROUP)
    fleet = load_fleet(path, env=NO_ENV)
    assert fleet.run.name == "night-shift"
    assert fleet.run.ledger == "runs/night-shift.db"


# --- charger ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "count", "first", "last"),
    [
        ("AC-{n:04}", 3, "AC-0001", "AC-0003"),
        ("CP{n}", 12, "CP1", "CP12"),
        ("site1.bay-{n:02d}", 2, "site1.bay-01", "site1.bay-02"),
        ("SOLO", 1, "SOLO", "SOLO"),
    ],
)
def test_charger_id_expansion(template: str, count: int, first: str, last: str) -> None:
    text = GROUP.replace('"AC-{n:04}"', json.dumps(template)).replace(
        "count = 3", f"count = {count}"
    )
    group = parse(text).groups[0]
    assert len(group.ids) == count
    assert (group.ids[0], group.ids[-1]) == (first, last)


def test_ids_span_groups_and_lookup() -> None:
    fleet = parse(GROUP + GROUP.replace('"ac"', '"dc"').replace("AC-", "DC-"))
    assert fleet.charger_ids() == ("AC-0001", "AC-0002", "AC-0003", "DC-0001", "DC-0002", "DC-0003")
    assert fleet.group_of("DC-0002").name == "dc"
    with pytest.raises(KeyError):
        fleet.group_of("XX-1")


def test_serial_template() -> None:
    group = parse(GROUP.replace('model = "AC22"', 'model = "AC22"\nserial = "SN-{n:06}-{id}"'))
    assert group.groups[0].serial_number(2) == "SN-000002-AC-0002"


def test_every_catalog_fault_is_accepted() -> None:
    needs = {"wave": 'params = { fault = "reset" }\n'}  # (partition and blackout need a for)
    faults = "".join(f'[[chaos]]\nfault = "{name}"\nfor = "10s"\n{needs.get(name, "")}'
                     for name in sorted(CHAOS_FAULTS))
    fleet = parse(GROUP + faults)
    assert {chaos.fault for chaos in fleet.chaos} == CHAOS_FAULTS
    assert len(CHAOS_FAULTS) == sum(len(names) for names in CHAOS_CATALOG.values())


@pytest.mark.parametrize("action", [action.value for action in StepAction])
def test_every_step_action_is_accepted(action: str) -> None:
    params = 'params = { id_tag = "TAG-1" }\n' if action == "present_tag" else ""
    (step,) = parse(GROUP + f'[[step]]\nat = "1m"\ndo = "{action}"\n{params}').steps
    assert step.do == action and step.at == 60.0


# --- environment interpolation and overrides ------------------------------------------------------


def test_env_interpolation() -> None:
    text = (
        '[run]\nname = "${RUN_NAME}"\nledger = "${LEDGER_DIR:-runs}/{name}.db"\n'
        '[csms]\nurl = "ws://${CSMS_HOST:-localhost}:9000/ocpp"\n' + GROUP
    )
    fleet = parse(text, env={"RUN_NAME": "night", "CSMS_HOST": "csms.example"})
    assert fleet.run.name == "night"
    assert fleet.run.ledger == "runs/night.db"
    assert fleet.csms.url == "ws://csms.example:9000/ocpp"


def test_env_interpolation_reaches_arrays_and_escapes() -> None:
    text = GROUP + '[group.sessions]\narrivals_per_hour = 1\nid_tags = ["${TAG}", "$${LITERAL}"]\n'
    sessions = parse(text, env={"TAG": "TAG-9"}).groups[0].sessions
    assert sessions is not None
    assert sessions.id_tags == ("TAG-9", "${LITERAL}")


@pytest.mark.parametrize(
    ("env", "read", "expected"),
    [
        ({"SIM_CSMS__URL": "ws://10.0.0.1/ocpp"}, lambda f: f.csms.url, "ws://10.0.0.1/ocpp"),
        ({"SIM_RUN__SEED": "9"}, lambda f: f.run.seed, 9),
        ({"SIM_RUN__DURATION": "10s"}, lambda f: f.run.duration, 10.0),
        ({"SIM_RUN__TIME": "virtual"}, lambda f: f.run.time, TimeMode.VIRTUAL),
        ({"SIM_GROUP__0__COUNT": "5"}, lambda f: f.groups[0].count, 5),
        ({"SIM_GROUP__AC__CONNECTORS": "1"}, lambda f: f.groups[0].connectors, 1),
        (
            {"SIM_GROUP__0__CONFIG__HEARTBEATINTERVAL": "7"},
            lambda f: f.groups[0].config,
            {"HeartbeatInterval": 7},
        ),
        (
            {"SIM_CSMS__EMBEDDED__BOOT_STATUS": "Pending"},
            lambda f: f.csms.embedded.boot_status,
            "Pending",
        ),
        ({"SIM_CSMS_PASSWORD": "not an override"}, lambda f: f.csms.password, None),
        ({"OTHER__THING": "x"}, lambda f: f.run.seed, 0),
    ],
)
def test_sim_environment_overrides(
    env: dict[str, str], read: Callable[[Fleet], object], expected: object
) -> None:
    text = GROUP + "[group.config]\nHeartbeatInterval = 30\n"
    assert read(parse(text, env=env)) == expected


def test_programmatic_overrides_apply_last() -> None:
    fleet = parse(
        INTEROP,
        env={"SIM_RUN__SEED": "9", "SIM_CSMS__URL": "ws://a/ocpp"},
        overrides={
            "run.seed": 3,
            "csms.url": "embedded",
            "group[0].count": 2,
            "group.0.model": "X",
        },
    )
    assert fleet.run.seed == 3
    assert fleet.csms.is_embedded
    assert fleet.groups[0].ids == ("AC-001", "AC-002")
    assert fleet.groups[0].model == "X"


def test_override_values_parse_as_toml_scalars() -> None:
    text = GROUP + "[group.config]\nLocalPreAuthorize = false\n"
    fleet = parse(text, env={"SIM_GROUP__0__CONFIG__LOCALPREAUTHORIZE": "true",
                             "SIM_RUN__NAME": "x-1"})
    assert fleet.groups[0].config == {"LocalPreAuthorize": True}
    assert fleet.run.name == "x-1"


def test_the_package_exports_its_public_api() -> None:
    config = importlib.import_module("simulator.config")
    assert sorted(config.__all__) == sorted(set(config.__all__))
    for name in config.__all__:
        assert getattr(config, name) is not None, name
    for name in ("load_fleet", "parse_fleet", "Fleet", "Group", "Run", "Csms", "ConfigError",
                 "TimeMode", "StepAction", "SessionPlan", "describe", "json_schema"):
        assert name in config.__all__, name
    assert config.SessionPlan is SessionPlan


def test_session_tags_may_be_made_per_charger_and_connector() -> None:
    (group,) = parse(GROUP + '[group.sessions]\narrivals_per_hour = 1\n'
                     'id_tags = ["T-{charger}-{connector}", "FIXED-{x}"]\n').groups
    assert group.sessions is not None
    assert [group.sessions.tag(t, "AC-7", 2) for t in group.sessions.id_tags] == [
        "T-AC-7-2", "FIXED-{x}"]  # only the two placeholders are filled in
