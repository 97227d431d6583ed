"""The scenario library (``scenarios/``): every chaos scenario is a documented, valid fleet file
that covers what it claims, and passes against the embedded reference CSMS.

A chaos scenario is every shipped fleet file but the two plain fleets (``fleet``, ``interop``).
Each opens with a comment saying what it tests (``Tests:``), which CSMS weakness it is meant to
find (``Weakness:``) and how to run it, alone and against another CSMS; it runs in seconds (a
fixed seed, tens of chargers, real time under a minute or virtual time) against the embedded
CSMS. The run of every scenario happens in virtual time, whatever the file says, so the whole
library takes seconds.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from simulator.chaos import CATALOG, Family
from simulator.config import TimeMode, load_fleet, scenario_names
from simulator.config.library import scenario_path
from simulator.durations import parse_duration
from simulator.runtime import run_clock, run_simulation

ROOT: Final = Path(__file__).resolve().parents[1]
PLAIN_FLEETS: Final = frozenset({"fleet", "interop"})
"""Shipped fleets without faults (the default fleet and the interop fleet)."""
CHAOS_SCENARIOS: Final = tuple(name for name in scenario_names() if name not in PLAIN_FLEETS)
THEMES: Final = {
    "boot storm": "boot-storm",
    "blackout with a synchronized reconnect storm": "blackout",
    "offline transactions replayed after a long partition": "offline-replay",
    "flapping connectivity": "flapping",
    "protocol fuzz (every protocol fault)": "protocol-fuzz",
    "clock skew": "clock-skew",
    "meter anomalies": "meter-anomalies",
    "duplicate and stale transaction ids": "transaction-ids",
    "slow network (latency, bandwidth, fragment)": "slow-network",
    "half-open links": "half-open",
    "identity clash": "identity-clash",
    "a firmware roll-out wave with failures": "firmware-wave",
    "a simulated day of a 100-charger fleet with faults": "day",
}
"""What the library must hold → the scenario that does it."""
MAX_CHARGERS: Final = 50
DAY: Final = "day"
"""The one scenario that is big on purpose: 100 chargers for a simulated day (virtual time)."""
MAX_REAL_SECONDS: Final = 60.0
HEADER_NEEDS: Final = (
    re.compile(r"^# Tests: \S", re.MULTILINE),
    re.compile(r"^# Weakness: \S", re.MULTILINE),
    re.compile(r"^# (Takes \d+ s|\d+ simulated minutes)", re.MULTILINE),
)
SCHEMA_KINDS: Final = frozenset(
    {"missing_field", "wrong_type", "bad_enum", "extra_property", "overlong_string"}
)
def _path(name: str) -> Path:
    path = scenario_path(name)
    assert path is not None
    return path


def _header(name: str) -> str:
    """The comment lines a scenario file opens with."""
    lines = []
    for line in _path(name).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)


def _document(name: str) -> dict[str, Any]:
    return tomllib.loads(_path(name).read_text(encoding="utf-8"))


def test_the_library_has_a_scenario_for_each_theme_of_the_chaos_engine() -> None:
    assert len(CHAOS_SCENARIOS) >= 12
    assert {theme: name for theme, name in THEMES.items() if name not in CHAOS_SCENARIOS} == {}


@pytest.mark.parametrize("name", CHAOS_SCENARIOS)
def test_each_scenario_says_what_it_tests_which_weakness_it_finds_and_how_to_run_it(
    name: str,
) -> None:
    header = _header(name)
    assert [p.pattern for p in HEADER_NEEDS if not p.search(header)] == []
    assert re.search(rf"^#\s+sim start --toml {re.escape(name)}\s+#", header, re.MULTILINE)
    against = re.search(rf"^#\s+(\S+ )?sim start --toml {re.escape(name)} --csms ws://\S+",
                        header, re.MULTILINE)
    assert against is not None
    if _document(name)["run"].get("time") == "virtual":  # a remote CSMS lives in real time
        assert against.group(1) == "SIM_RUN__TIME=real "


@pytest.mark.parametrize("name", CHAOS_SCENARIOS)
def test_each_scenario_is_reproducible_small_and_short(name: str) -> None:
    document = _document(name)
    run = document["run"]
    assert run["name"] == name
    assert isinstance(run.get("seed"), int)
    assert document["csms"]["url"] == "embedded"
    chargers = sum(group.get("count", 1) for group in document["group"])
    if name == DAY:
        assert (chargers, run["duration"], run["time"]) == (100, "24h", "virtual")
    else:
        assert chargers <= MAX_CHARGERS
    assert document.get("chaos") and len(document.get("expect", [])) >= 3
    if run.get("time", "real") == "real":
        assert parse_duration(run["duration"]) < MAX_REAL_SECONDS


def test_protocol_fuzz_uses_every_protocol_fault_and_every_schema_violation() -> None:
    chaos = _document("protocol-fuzz")["chaos"]
    assert CATALOG[Family.PROTOCOL] <= {table["fault"] for table in chaos}
    kinds = {table["params"]["kind"] for table in chaos if table["fault"] == "schema_violation"}
    assert kinds == SCHEMA_KINDS


def test_slow_network_uses_latency_bandwidth_and_fragment() -> None:
    faults = {table["fault"] for table in _document("slow-network")["chaos"]}
    assert {"latency", "bandwidth", "fragment"} <= faults


@pytest.mark.parametrize("name", CHAOS_SCENARIOS)
def test_each_scenario_loads(name: str) -> None:
    fleet = load_fleet(_path(name), env={})
    assert fleet.run.name == name
    assert len(fleet.chaos) == len(_document(name)["chaos"])
    if fleet.run.time is TimeMode.VIRTUAL:
        assert fleet.csms.is_embedded


def test_sim_check_accepts_the_whole_library() -> None:
    paths = [str(_path(name)) for name in CHAOS_SCENARIOS]
    done = subprocess.run([sys.executable, "-m", "simulator", "check", *paths], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def _chaos_tables_injected(ledger: Path, run_id: int) -> set[int]:
    """The indexes of the ``[[chaos]]`` tables that injected at least one fault in the run."""
    with sqlite3.connect(ledger) as db:
        rows = db.execute(
            "SELECT DISTINCT json_extract(data, '$.seed_path[1]') FROM events"
            " WHERE run_id = ? AND kind = 'fault'"
            " AND json_extract(data, '$.seed_path[0]') = 'chaos'", (run_id,))
        return {int(index) for (index,) in rows}


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name == DAY
                                  else name for name in CHAOS_SCENARIOS])
def test_each_scenario_passes_against_the_embedded_csms_in_virtual_time(
    name: str, tmp_path: Path,
) -> None:
    from simulator.verdicts import judge

    fleet = load_fleet(_path(name), env={}, overrides={
        "run.time": "virtual", "run.ledger": str(tmp_path / f"{name}.db")})
    result = trio.run(lambda: run_simulation(fleet, live=False), clock=run_clock(fleet))
    verdicts = judge(result.ledger, result.run_id, fleet=fleet)
    assert len(verdicts) == len(fleet.expect)
    assert [f"#{v.number} {v.check}: {v.measured}" for v in verdicts if not v.passed] == []
    assert result.exit_code == 0, result.reasons
    assert _chaos_tables_injected(result.ledger, result.run_id) == set(range(len(fleet.chaos)))
