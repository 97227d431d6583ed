"""``sim start --json`` prints the report ``sim report --json`` gives for the same run, and a
fleet whose every boot the central system rejects does not read as a clean run (virtual time:
two simulated minutes in about a second)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.report.test_charger_and_export import sim

FLEET = """
[run]
name = "rejected"
seed = 5
duration = "2m"
time = "virtual"
ledger = "{ledger}"

[csms.embedded]
boot_status = "Rejected"
heartbeat_interval = 30

[[group]]
name = "depot"
count = 3
id = "RJ-{{n}}"
vendor = "Acme"
model = "AC22"
"""


def test_start_json_is_the_report_and_a_rejected_fleet_says_so(tmp_path: Path) -> None:
    ledger = tmp_path / "rejected.db"
    toml = tmp_path / "rejected.toml"
    toml.write_text(FLEET.format(ledger=ledger))
    started = sim("start", "--toml", str(toml), "--json", "--quiet")
    assert started.returncode == 1, started.stderr  # every boot rejected: a failed run
    printed = json.loads(started.stdout)
    reported = sim("report", str(ledger), "--json")
    assert reported.returncode == 0, reported.stderr
    assert printed == json.loads(reported.stdout)
    assert printed["exit_code"] == started.returncode
    assert any("accepted no charger's boot" in reason for reason in printed["reasons"])
    assert printed["time"] == "virtual"
    assert set(printed["outcomes"]["boot"]) == {"Rejected"}
    assert printed["outcomes"]["boot"]["Rejected"] >= 3
    # on the virtual clock, with no delay simulated, every answer came at once
    assert all(a["p95_ms"] == 0.0 for a in printed["actions"] if a["results"])
    text = sim("report", str(ledger)).stdout
    assert f"boot: Rejected {printed['outcomes']['boot']['Rejected']}" in text
    assert "WARNING: the central system accepted no boot" in text
    assert 'latencies: on the virtual clock (run.time = "virtual")' in text
