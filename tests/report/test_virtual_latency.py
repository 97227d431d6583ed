"""Under virtual time the report reads latencies on the virtual clock, so the delays a fault
simulates show there: a latency fault of 500 ms each way makes every answer 1 s late, and a
late_result makes the CSMS wait for its answer."""

from __future__ import annotations

from pathlib import Path

import trio

from simulator.config import parse_fleet
from simulator.report import render_text, summarize
from simulator.runtime import run_clock, run_simulation

FLEET = """
[run]
name = "slow"
seed = 2
time = "virtual"
duration = "3m"
ledger = "{ledger}"

[csms.embedded]
heartbeat_interval = "20s"

[[group]]
name = "g"
count = 2
id = "S-{{n}}"
vendor = "Acme"
model = "AC22"

[[chaos]]
fault = "latency"
at = "1m"
params = {{ ms = 500 }}
"""


def test_a_latency_fault_shows_as_virtual_latency_in_the_report(tmp_path: Path) -> None:
    ledger = tmp_path / "slow.db"
    fleet = parse_fleet(FLEET.format(ledger=ledger))
    result = trio.run(lambda: run_simulation(fleet, live=False), clock=run_clock(fleet))
    assert result.exit_code == 0, result.reasons
    report = summarize(ledger)
    heartbeat = next(a for a in report.actions if a.action == "Heartbeat")
    # before the fault (the first minute) answers come at once; after it, 1 s later
    assert heartbeat.p50_ms is not None and heartbeat.max_ms == 1000.0
    assert heartbeat.results >= 12
    text = render_text(report)
    assert "1000.0" in next(line for line in text.splitlines() if line.startswith("Heartbeat"))
