"""One charger's story (``sim report --charger``) and the CSV export (``--csv``), through the
functions and the command line, including their one-line errors."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.events import (
    BootResult,
    ConnectFailed,
    CsmsFrameIn,
    StatusChanged,
    TransactionAcknowledged,
    TransactionStarted,
    TransactionStopped,
)
from simulator.report import (
    ChargerTransaction,
    ConnectionStats,
    ConnectorStatus,
    ReportError,
    render_charger_text,
    render_json,
    summarize_charger,
    write_csv,
)
from tests.report.helpers import T0, outbox, write_run
from tests.test_report import fleet_events

ROOT = Path(__file__).resolve().parents[2]


def sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, check=False)


def assert_one_clear_line(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sim: "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    for needle in needles:
        assert needle in lines[0]


async def story_ledger(path: Path) -> None:
    """The report tests' fleet events (chargers A and B) plus A's boots, statuses, one
    transaction stopped and one left queued, and a failed connect."""
    await write_run(path, [
        *fleet_events(),
        ConnectFailed(t=T0 + 0.05, charger="A", url="ws://cs", error="refused", attempt=1,
                      retry_in=1.0),
        BootResult(t=T0 + 0.5, charger="A", status="Pending", interval=5),
        BootResult(t=T0 + 5.5, charger="A", status="Accepted", interval=60),
        StatusChanged(t=T0 + 1, charger="A", connector=0, old="Unavailable", new="Available"),
        StatusChanged(t=T0 + 1, charger="A", connector=1, old="Available", new="Charging"),
        StatusChanged(t=T0 + 20, charger="A", connector=2, old="Available", new="Faulted",
                      error_code="GroundFailure"),
        StatusChanged(t=T0 + 30, charger="A", connector=1, old="Charging", new="Finishing"),
        TransactionStarted(t=T0 + 21, charger="A", connector=2, id_tag="T2", meter_start=500,
                           local_id=2),
        TransactionAcknowledged(t=T0 + 21.5, charger="A", connector=2, local_id=2,
                                transaction_id=2**63, status="Accepted"),
        TransactionStopped(t=T0 + 25, charger="A", connector=2, local_id=2,
                           transaction_id=2**63, meter_stop=2000, reason="Other"),
        outbox(26, "A", (7, "StopTransaction")),
    ])


async def test_one_chargers_connections_transactions_errors_and_connectors(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lab.db"
    await story_ledger(path)
    a = summarize_charger(path, "A")
    assert (a.charger, a.group, a.run_id) == ("A", "north", 1)
    assert a.connections == ConnectionStats(connects=2, reconnects=1, disconnects=1,
                                            connect_failures=1, chargers=1)
    assert a.connect_errors == {"refused": 1}
    assert a.boot == {"Accepted": 1, "Pending": 1}
    assert a.transactions == (
        ChargerTransaction(local_id=1, connector=1, id_tag="T1", transaction_id=11,
                           ack_status="Accepted", t_start_s=7.0, t_stop_s=None,
                           stop_reason=None, energy_kwh=None),
        ChargerTransaction(local_id=2, connector=2, id_tag="T2", transaction_id=str(2**63),
                           ack_status="Accepted", t_start_s=21.0, t_stop_s=25.0,
                           stop_reason="Other", energy_kwh=1.5),
    )
    assert a.energy_kwh == 1.5
    assert a.call_errors_received == {"FormationViolation": 1, "NotImplemented": 2,
                                      "(unreadable)": 1}
    assert a.call_errors_sent == {}
    assert (a.timeouts, a.crashes, a.messages_dropped, a.messages_queued) == (
        0, {"RuntimeError: boom": 1}, 1, 1)
    assert a.connectors == (
        ConnectorStatus(connector=0, status="Available", error_code="NoError", t_s=1.0),
        ConnectorStatus(connector=1, status="Finishing", error_code="NoError", t_s=30.0),
        ConnectorStatus(connector=2, status="Faulted", error_code="GroundFailure", t_s=20.0),
    )
    text = render_charger_text(a)
    for line in (
        "Charger A in run 1 of ",
        "connections: connects 2, reconnects 1, disconnects 1, failed attempts 1 (refused 1)",
        "boot: Accepted 1, Pending 1",
        "CALLERRORs received: FormationViolation 1, NotImplemented 2, (unreadable) 1",
        "timeouts 0   crashes 1 (RuntimeError: boom 1)   messages dropped 1   still queued 1",
        "transactions: 2, energy delivered 1.5 kWh",
        "  #1 connector 1 tag T1 id 11 Accepted: started at 7.0 s, running, -",
        f"  #2 connector 2 tag T2 id {2**63} Accepted: started at 21.0 s, stopped at 25.0 s"
        " (Other), 1.5 kWh",
        "  2: Faulted (GroundFailure) at 20.0 s",
    ):
        assert line in text, line
    as_json = json.loads(render_json(a))
    assert as_json["connectors"][2] == {"connector": 2, "status": "Faulted",
                                        "error_code": "GroundFailure", "t_s": 20.0}
    assert as_json["transactions"][1]["energy_kwh"] == 1.5
    b = summarize_charger(path, "B")
    assert (b.call_errors_sent, b.timeouts, b.messages_queued, b.transactions[0].stop_reason) == (
        {"NotSupported": 1}, 1, 0, "DeAuthorized")


async def test_a_charger_only_the_fleet_file_names_and_an_unknown_one(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    await write_run(path, [CsmsFrameIn(t=T0 + 1, charger="C", raw="[2]", action="Heartbeat")])
    quiet = summarize_charger(path, "B")  # in the fleet file, never heard of in the run
    assert (quiet.connections.connects, quiet.transactions, quiet.connectors) == (0, (), ())
    with pytest.raises(ReportError, match=re.escape("lab.db: run 1 has no charger 'Q'")):
        summarize_charger(path, "Q")
    with pytest.raises(ReportError, match=re.escape("no charger 'AA' (did you mean 'A'?)")):
        summarize_charger(path, "AA")


async def test_csv_export_writes_frames_transactions_and_events_with_headers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lab.db"
    await story_ledger(path)
    await write_run(path, fleet_events()[:3])  # a later run: not exported unless asked
    written = write_csv(path, tmp_path / "out" / "deep", run_id=1)
    with sqlite3.connect(path) as conn:
        expected = {name: conn.execute(f"SELECT count(*) FROM {name} WHERE run_id = 1"
                                       ).fetchone()[0]
                    for name in ("frames", "transactions", "events")}
        columns = {name: [c[1] for c in conn.execute(f"PRAGMA table_info({name})")]
                   for name in ("frames", "transactions", "events")}
    assert {file.name: rows for file, rows in written.items()} == {
        f"{name}.csv": n for name, n in expected.items()}
    for file in written:
        with file.open(newline="", encoding="utf-8") as handle:
            table = list(csv.reader(handle))
        assert table[0] == columns[file.stem]
        assert len(table) - 1 == expected[file.stem]
        assert {row[0] for row in table[1:]} == {"1"}  # run_id, first column everywhere
    with (tmp_path / "out" / "deep" / "events.csv").open(newline="", encoding="utf-8") as f:
        events = list(csv.DictReader(f))
    assert [int(e["seq"]) for e in events] == list(range(1, len(events) + 1))
    assert all(isinstance(json.loads(e["data"]), dict) for e in events)
    with (tmp_path / "out" / "deep" / "transactions.csv").open(newline="") as f:
        ids = {row["transaction_id"] for row in csv.DictReader(f)}
    assert str(2**63) in ids  # exactly, as the transactions view gives it

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ReportError, match=r"a-file.*cannot write the CSV files") as info:
        write_csv(path, blocker / "sub")
    assert "\n" not in str(info.value)


async def test_report_flags_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    await story_ledger(path)
    one = sim("report", str(path), "--charger", "A")
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("Charger A in run 1") and "1.5 kWh" in one.stdout
    as_json = json.loads(sim("report", str(path), "--charger", "A", "--json").stdout)
    assert as_json["charger"] == "A" and as_json["energy_kwh"] == 1.5
    assert_one_clear_line(sim("report", str(path), "--charger", "NOPE"),
                          "run 1 has no charger 'NOPE'")
    exported = sim("report", str(path), "--csv", str(tmp_path / "csv"), "--json")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["run_id"] == 1  # stdout stays JSON; files on stderr
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == [
        "events.csv", "frames.csv", "transactions.csv"]
    assert "frames.csv" in exported.stderr
    (tmp_path / "taken").write_text("")
    assert_one_clear_line(sim("report", str(path), "--csv", str(tmp_path / "taken")),
                          "taken", "cannot write the CSV files")
