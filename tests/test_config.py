"""The fleet file (``simulator.config``): the contract with users, and its one-line errors."""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]
import pytest

from simulator.config import (
    CHAOS_CATALOG,
    CHAOS_FAULTS,
    ConfigError,
    Fleet,
    Secret,
    StepAction,
    TimeMode,
    describe,
    json_schema,
    load_fleet,
    parse_fleet,
)
from simulator.durations import Range

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"

INTEROP = """\
[run]
name = "interop"
seed = 7
duration = "20s"
ledger = "runs/interop.db"

[csms]
url = "ws://127.0.0.1:9100/ocpp"

[[group]]
name = "ac"
count = 10
id = "AC-{n:03}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 50

[group.config]
MeterValueSampleInterval = 2
HeartbeatInterval = 3

[group.sessions]
arrivals_per_hour = 720
duration = "3s..8s"
energy_kwh = "1..5"
id_tags = ["TAG-1", "TAG-2"]
"""

DESIGN_SKETCH = """\
[run]
name = "lab"
seed = 42                      # every random choice in the run derives from this
duration = "2m"                # omit: until Ctrl-C
ledger = "runs/{name}.db"
time = "real"                  # "virtual": whole fleet + embedded CSMS on a mock clock

[csms]
url = "embedded"               # or ws://host:port/path — the charger identity is appended
security_profile = 0           # 0 none, 1 basic, 2 TLS + basic, 3 mutual TLS
# password = "${SIM_CSMS_PASSWORD}"   # environment interpolation; never written to the ledger

[[group]]
name = "street"
count = 50
id = "AC-{n:04}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 20              # new connections per second (ramp)
[group.config]                 # OCPP configuration keys
MeterValueSampleInterval = 30
[group.sessions]               # automatic transactions
arrivals_per_hour = 2          # Poisson, per connector
duration = "20m..2h"
energy_kwh = "5..40"
id_tags = ["TAG-1", "TAG-2", "BLOCKED-9"]

[[step]]                       # scripted domain actions
at = "10s"
do = "plug"                    # plug, unplug, present_tag, reboot, fault, ...
target = { ids = ["AC-0001"], connector = 1 }

[[chaos]]                      # faults, seeded
fault = "disconnect"
target = { group = "street", fraction = 0.2 }
at = "30s"
for = "20s"

[[expect]]                     # verdicts; any failure → exit code 1
check = "no_lost_transactions"
[[expect]]
check = "latency"
action = "BootNotification"
p95 = "2s"
"""

GROUP = """
[[group]]
name = "ac"
count = 3
id = "AC-{n:04}"
vendor = "Acme"
model = "AC22"
connectors = 2
"""

NO_ENV: dict[str, str] = {}


def parse(text: str, **kwargs: Any) -> Fleet:
    kwargs.setdefault("env", NO_ENV)
    return parse_fleet(text, source="scenarios/x.toml", **kwargs)


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
    assert group.sessions is not None
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


# --- errors: one line, file and field, what to do -------------------------------------------------

ERRORS: list[tuple[str, str, str]] = [
    # (case, text, expected error line)
    (
        "out of range",
        GROUP.replace("count = 3", "count = -3"),
        "scenarios/x.toml: group[0].count: must be >= 1, got -3",
    ),
    (
        "unknown key",
        GROUP.replace("count = 3", "conut = 3"),
        "scenarios/x.toml: group[0].conut: unknown key; did you mean 'count'?",
    ),
    (
        "unknown section",
        "[runn]\nseed = 1\n" + GROUP,
        "scenarios/x.toml: runn: unknown key; did you mean 'run'?",
    ),
    (
        "unknown key in run",
        "[run]\nsed = 1\n" + GROUP,
        "scenarios/x.toml: run.sed: unknown key; did you mean 'seed'?",
    ),
    (
        "unknown key in target",
        GROUP + '[[step]]\nat = 1\ndo = "plug"\ntarget = { idz = ["AC-0001"] }\n',
        "scenarios/x.toml: step[0].target.idz: unknown key; did you mean 'ids'?",
    ),
    (
        "wrong type",
        GROUP.replace("count = 3", 'count = "3"'),
        'scenarios/x.toml: group[0].count: must be an integer, got a string "3"',
    ),
    (
        "wrong type bool",
        "[run]\nseed = true\n" + GROUP,
        "scenarios/x.toml: run.seed: must be an integer, got true",
    ),
    (
        "too long",
        GROUP.replace('"Acme"', '"A Very Long Vendor Name"'),
        "scenarios/x.toml: group[0].vendor: must be at most 20 characters long, got 23",
    ),
    (
        "bad duration",
        '[run]\nduration = "5x"\n' + GROUP,
        'scenarios/x.toml: run.duration: "5x" is not a duration',
    ),
    (
        "zero duration",
        '[run]\nduration = "0s"\n' + GROUP,
        "scenarios/x.toml: run.duration: must be longer than 0s",
    ),
    (
        "bad range",
        GROUP + '[group.sessions]\narrivals_per_hour = 1\nduration = "2h..20m"\nid_tags = ["A"]\n',
        'scenarios/x.toml: group[0].sessions.duration: "2h..20m" has low 2h above high 20m',
    ),
    (
        "bad number range",
        GROUP + '[group.sessions]\narrivals_per_hour = 1\nenergy_kwh = "5..x"\nid_tags = ["A"]\n',
        'scenarios/x.toml: group[0].sessions.energy_kwh: "5..x" is not a range',
    ),
    (
        "empty id_tags",
        GROUP + "[group.sessions]\narrivals_per_hour = 1\nid_tags = []\n",
        "scenarios/x.toml: group[0].sessions.id_tags: must list at least 1 item",
    ),
    (
        "negative arrivals",
        GROUP + '[group.sessions]\narrivals_per_hour = -1\nid_tags = ["A"]\n',
        "scenarios/x.toml: group[0].sessions.arrivals_per_hour: must be >= 0, got -1",
    ),
    (
        "bad url scheme",
        '[csms]\nurl = "http://example.com/ocpp"\n' + GROUP,
        'scenarios/x.toml: csms.url: "http://example.com/ocpp" must be "embedded" or start with '
        "ws:// or wss://",
    ),
    (
        "bad url port",
        '[csms]\nurl = "ws://example.com:99999/ocpp"\n' + GROUP,
        'scenarios/x.toml: csms.url: "ws://example.com:99999/ocpp" is not a valid URL',
    ),
    (
        "url without host",
        '[csms]\nurl = "ws:///ocpp"\n' + GROUP,
        'scenarios/x.toml: csms.url: "ws:///ocpp" has no host',
    ),
    (
        "duplicate ids",
        GROUP + GROUP.replace('"ac"', '"ac2"'),
        'scenarios/x.toml: group[1].id: charger id "AC-0001" is also made by group[0].id',
    ),
    (
        "duplicate group names",
        GROUP + GROUP.replace("AC-", "DC-"),
        'scenarios/x.toml: group[1].name: "ac" is already the name of group[0]',
    ),
    (
        "constant template",
        GROUP.replace("AC-{n:04}", "AC"),
        'scenarios/x.toml: group[0].id: "AC" gives the same id "AC" to every charger; put {n}',
    ),
    (
        "unknown placeholder",
        GROUP.replace("AC-{n:04}", "AC-{x}"),
        'scenarios/x.toml: group[0].id: cannot fill in "AC-{x}": unknown placeholder {x}',
    ),
    (
        "bad format spec",
        GROUP.replace("AC-{n:04}", "AC-{n:q}"),
        'scenarios/x.toml: group[0].id: cannot fill in "AC-{n:q}"',
    ),
    (
        "id not url safe",
        GROUP.replace("AC-{n:04}", "AC {n}"),
        'scenarios/x.toml: group[0].id: charger id "AC 1" must be 1-48 letters',
    ),
    (
        "unknown fault",
        GROUP + '[[chaos]]\nfault = "disconect"\n',
        'scenarios/x.toml: chaos[0].fault: unknown fault "disconect"; expected one of',
    ),
    (
        "unknown action",
        GROUP + '[[step]]\nat = "1s"\ndo = "plugin"\n',
        'scenarios/x.toml: step[0].do: unknown value "plugin"; expected one of plug, unplug',
    ),
    (
        "missing step time",
        GROUP + '[[step]]\ndo = "plug"\n',
        "scenarios/x.toml: step[0].at: is required; add it",
    ),
    (
        "unknown charger in target",
        GROUP + '[[step]]\nat = 1\ndo = "plug"\ntarget = { ids = ["AC-0009"] }\n',
        'scenarios/x.toml: step[0].target.ids[0]: no charger "AC-0009" in the fleet',
    ),
    (
        "unknown group in target",
        GROUP + '[[chaos]]\nfault = "reset"\ntarget = { group = "acc" }\n',
        'scenarios/x.toml: chaos[0].target.group: no group named "acc"',
    ),
    (
        "ids and group",
        GROUP + '[[chaos]]\nfault = "reset"\ntarget = { group = "ac", ids = ["AC-0001"] }\n',
        "scenarios/x.toml: chaos[0].target: give ids or group, not both",
    ),
    (
        "connector out of range",
        GROUP + '[[step]]\nat = 1\ndo = "plug"\ntarget = { connector = 3 }\n',
        "scenarios/x.toml: step[0].target.connector: connector 3 does not exist",
    ),
    (
        "fraction out of range",
        GROUP + '[[chaos]]\nfault = "reset"\ntarget = { fraction = 1.5 }\n',
        "scenarios/x.toml: chaos[0].target.fraction: must be <= 1, got 1.5",
    ),
    (
        "probability out of range",
        GROUP + '[[chaos]]\nfault = "reset"\nprobability = -0.1\n',
        "scenarios/x.toml: chaos[0].probability: must be >= 0, got -0.1",
    ),
    (
        "bad for",
        GROUP + '[[chaos]]\nfault = "partition"\nfor = "ever"\n',
        'scenarios/x.toml: chaos[0].for: "ever" is not a duration',
    ),
    (
        "zero every",
        GROUP + '[[chaos]]\nfault = "partition"\nevery = 0\n',
        "scenarios/x.toml: chaos[0].every: must be longer than 0s",
    ),
    (
        "present_tag without tag",
        GROUP + '[[step]]\nat = 1\ndo = "present_tag"\n',
        "scenarios/x.toml: step[0].params.id_tag: present_tag needs params.id_tag",
    ),
    (
        "nested config value",
        GROUP + "[group.config]\nFoo = [1]\n",
        "scenarios/x.toml: group[0].config.Foo: must be a string, a number or true/false, "
        "got a list",
    ),
    (
        "config sub-table",
        GROUP + "[group.config.Foo]\nx = 1\n",
        "scenarios/x.toml: group[0].config.Foo: must be a string, a number or true/false, "
        "got a table",
    ),
    (
        "single group table",
        GROUP.replace("[[group]]", "[group]"),
        "scenarios/x.toml: group: must be written [[group]] (a list of tables), not [group]",
    ),
    (
        "no group",
        "[run]\nseed = 1\n",
        "scenarios/x.toml: group: is required; add at least one [[group]] table",
    ),
    (
        "expect without check",
        GROUP + '[[expect]]\np95 = "2s"\n',
        "scenarios/x.toml: expect[0].check: is required",
    ),
    (
        "bad time mode",
        '[run]\ntime = "virtul"\n' + GROUP,
        'scenarios/x.toml: run.time: unknown value "virtul"; expected one of real, virtual; '
        "did you mean 'virtual'?",
    ),
    (
        "bad ledger template",
        '[run]\nledger = "runs/{nme}.db"\n' + GROUP,
        'scenarios/x.toml: run.ledger: cannot fill in "runs/{nme}.db": unknown placeholder {nme}',
    ),
    (
        "bad run name",
        '[run]\nname = "../etc"\n' + GROUP,
        'scenarios/x.toml: run.name: "../etc" must be letters, digits',
    ),
    (
        "profile out of range",
        "[csms]\nsecurity_profile = 5\n" + GROUP,
        "scenarios/x.toml: csms.security_profile: must be <= 3, got 5",
    ),
    (
        "basic auth without password",
        '[csms]\nurl = "ws://h/ocpp"\nsecurity_profile = 1\n' + GROUP,
        "scenarios/x.toml: csms.password: security_profile 1 needs a password",
    ),
    (
        "tls profile without wss",
        '[csms]\nurl = "ws://h/ocpp"\nsecurity_profile = 2\npassword = "p"\n' + GROUP,
        "scenarios/x.toml: csms.url: security_profile 2 needs TLS: use a wss:// URL",
    ),
    (
        "mutual tls without cert",
        '[csms]\nurl = "wss://h/ocpp"\nsecurity_profile = 3\n' + GROUP,
        "scenarios/x.toml: csms.cert_file: security_profile 3 (mutual TLS) needs cert_file",
    ),
    (
        "bad boot status",
        '[csms.embedded]\nboot_status = "Acepted"\n' + GROUP,
        'scenarios/x.toml: csms.embedded.boot_status: unknown value "Acepted"',
    ),
    (
        "missing env variable",
        '[csms]\npassword = "${NOT_SET_ANYWHERE}"\n' + GROUP,
        "scenarios/x.toml: csms.password: environment variable NOT_SET_ANYWHERE is not set; "
        "set it, or write ${NOT_SET_ANYWHERE:-default}",
    ),
    (
        "toml date where int expected",
        "[run]\nseed = 1979-05-27\n" + GROUP,
        "scenarios/x.toml: run.seed: must be an integer, got a date 1979-05-27",
    ),
    (
        "broken toml",
        "[run\nseed = 1\n" + GROUP,
        "scenarios/x.toml: line 1, column 5: invalid TOML: Expected ']' at the end of a table "
        "declaration; fix the syntax",
    ),
    (
        "broken toml value",
        "[run]\nseed = = 1\n" + GROUP,
        "scenarios/x.toml: line 2, column 8: invalid TOML: Invalid value; fix the syntax",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errors_are_one_line_naming_file_and_field(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(expected), line
    assert caught.value.source == "scenarios/x.toml"


def test_error_fields_are_exposed() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(GROUP.replace("count = 3", "count = 0"))
    assert caught.value.field == "group[0].count"
    assert caught.value.message == "must be >= 1, got 0"


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_fleet(missing)
    assert str(caught.value) == (
        f"{missing}: cannot read the file: No such file or directory; check the path"
    )
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_fleet(tmp_path)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(GROUP.replace("Acme", "Acm\xe9").encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.toml: not UTF-8 text \(byte \d+\)"):
        load_fleet(path)


def test_broken_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[[group]\n")
    with pytest.raises(ConfigError) as caught:
        load_fleet(path)
    assert str(caught.value).startswith(f"{path}: line 1, column 8: invalid TOML")


def test_every_catalog_fault_is_accepted() -> None:
    faults = "".join(f'[[chaos]]\nfault = "{name}"\n' for name in sorted(CHAOS_FAULTS))
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


@pytest.mark.parametrize(
    ("env", "overrides", "expected"),
    [
        (
            {"SIM_RUN__SEED": "x"},
            None,
            'scenarios/x.toml: run.seed: must be an integer, got a string "x" '
            "(set by SIM_RUN__SEED)",
        ),
        (
            {"SIM_GROUP__0__COUNT": "0"},
            None,
            "scenarios/x.toml: group[0].count: must be >= 1, got 0 (set by SIM_GROUP__0__COUNT)",
        ),
        (
            {"SIM_RUNN__SEED": "1"},
            None,
            "scenarios/x.toml: runn: unknown section; did you mean 'run'? (set by SIM_RUNN__SEED)",
        ),
        (
            {"SIM_GROUP__3__COUNT": "1"},
            None,
            "scenarios/x.toml: group: has no entry '3' (the file has 1); use an index from 0 or a "
            "group name (set by SIM_GROUP__3__COUNT)",
        ),
        (
            {"SIM_CSMS__URL": "http://x"},
            None,
            'scenarios/x.toml: csms.url: "http://x" must be "embedded"',
        ),
        (
            {},
            {"run.duration": "soon"},
            'scenarios/x.toml: run.duration: "soon" is not a duration',
        ),
        (
            {},
            {"run.seed": "3"},
            'scenarios/x.toml: run.seed: must be an integer, got a string "3" '
            "(set by override 'run.seed')",
        ),
        (
            {},
            {"run..seed": 3},
            "scenarios/x.toml: override 'run..seed' is not a dotted path",
        ),
        (
            {},
            {"step[0].at": 1},
            "scenarios/x.toml: step: has no entry 0 (the file has 0)",
        ),
    ],
)
def test_override_errors(
    env: dict[str, str], overrides: dict[str, object] | None, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(GROUP, env=env, overrides=overrides)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(expected), str(caught.value)


def test_override_values_parse_as_toml_scalars() -> None:
    text = GROUP + "[group.config]\nFlag = false\n"
    fleet = parse(text, env={"SIM_GROUP__0__CONFIG__FLAG": "true", "SIM_RUN__NAME": "x-1"})
    assert fleet.groups[0].config == {"Flag": True}
    assert fleet.run.name == "x-1"


# --- the resolved text, secrets, describe, schema -------------------------------------------------

SECURE = """
[csms]
url = "wss://csms.example/ocpp"
security_profile = 2
password = "${PW}"
ca_file = "ca.pem"
""" + GROUP.replace('model = "AC22"', 'model = "AC22"\n[group.config]\nAuthorizationKey = "00ff"')


def test_text_round_trips_to_the_same_fleet() -> None:
    for text in (INTEROP, DESIGN_SKETCH, (SCENARIOS / "fleet.toml").read_text()):
        fleet = parse(text)
        again = parse(fleet.text)
        assert again == fleet
        assert fleet.sha256 == hashlib.sha256(fleet.text.encode()).hexdigest()


def test_text_keeps_literal_dollar_braces() -> None:
    text = GROUP.replace('model = "AC22"', 'model = "$${M}"')
    fleet = parse(text)
    assert fleet.groups[0].model == "${M}"
    assert parse(fleet.text) == fleet


def test_duration_pattern_in_the_schema_matches_the_parser() -> None:
    duration = json_schema()["$defs"]["RunTable"]["properties"]["duration"]
    validator = jsonschema.Draft202012Validator(duration)
    for good in ["500ms", "30s", "1h30m", " 2 m ", "30", "1.5h", 0, 2.5]:
        assert validator.is_valid(good), good
    for bad in ["5x", "", "h", "-5s", "5 10s", -1]:
        assert not validator.is_valid(bad), bad


def test_text_is_resolved() -> None:
    fleet = parse(INTEROP, env={"SIM_RUN__SEED": "11"}, overrides={"run.duration": "1m"})
    data = tomllib.loads(fleet.text)
    assert data["run"] == {
        "name": "interop",
        "seed": 11,
        "duration": "1m",
        "ledger": "runs/interop.db",
        "time": "real",
    }
    assert data["group"][0]["connect_rate"] == 50
    assert "step" not in data


def test_secrets_never_reach_the_text() -> None:
    fleet = parse(SECURE, env={"PW": "hunter2"})
    assert fleet.csms.password == "hunter2"
    assert isinstance(fleet.csms.password, Secret)
    assert "hunter2" not in repr(fleet)
    assert "hunter2" not in fleet.text and "00ff" not in fleet.text
    assert "hunter2" not in describe(fleet)
    data = tomllib.loads(fleet.text)
    assert data["csms"]["password"] == "${PW}"  # the reference, which is not the secret
    assert data["group"][0]["config"]["AuthorizationKey"] == "<redacted>"
    assert data["csms"]["ca_file"] == "ca.pem"


def test_literal_and_overridden_secrets_are_redacted() -> None:
    literal = parse(SECURE.replace("${PW}", "hunter2"))
    assert "hunter2" not in literal.text
    assert tomllib.loads(literal.text)["csms"]["password"] == "<redacted>"
    overridden = parse(SECURE, env={"PW": "a", "SIM_CSMS__PASSWORD": "hunter3"})
    assert overridden.csms.password == "hunter3"
    assert tomllib.loads(overridden.text)["csms"]["password"] == "<redacted>"


def test_describe_summarises_the_fleet() -> None:
    fleet = parse_fleet(DESIGN_SKETCH, source="lab.toml", env=NO_ENV)
    text = describe(fleet)
    assert "run 'lab', seed 42, duration 2m" in text
    assert "street: 50 x AC-0001 .. AC-0050" in text
    assert "1 step(s), 1 fault(s), 2 expectation(s)" in text
    assert text.endswith(fleet.text)


def test_json_schema_validates_the_shipped_and_documented_files() -> None:
    schema = json_schema()
    json.dumps(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    documents = [INTEROP, DESIGN_SKETCH, SECURE]
    documents += [path.read_text() for path in sorted(SCENARIOS.glob("*.toml"))]
    for text in documents:
        validator.validate(tomllib.loads(text))
        validator.validate(tomllib.loads(parse(text, env={"PW": "x"}).text))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["group"][0].update(conut=1),
        lambda d: d["group"][0].update(count=0),
        lambda d: d["group"][0].update(vendor="x" * 21),
        lambda d: d["run"].update(time="later"),
        lambda d: d.update(chaos=[{"fault": "nope"}]),
        lambda d: d.update(step=[{"at": "1s", "do": "dance"}]),
        lambda d: d.update(expect=[{"p95": "2s"}]),
        lambda d: d["group"][0]["config"].update(Key={"x": 1}),
        lambda d: d.pop("group"),
    ],
)
def test_json_schema_rejects_what_the_loader_rejects(mutate: Any) -> None:
    data = tomllib.loads(INTEROP)
    mutate(data)
    assert not jsonschema.Draft202012Validator(json_schema()).is_valid(data)
