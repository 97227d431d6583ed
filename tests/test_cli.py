"""The ``sim`` command line as a user runs it: a subprocess, exit codes, one clear line on bad
input and never a traceback. Runs are short and go to the embedded CSMS on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import simulator
from simulator.report import summarize

ROOT = Path(__file__).resolve().parents[1]

SMALL_FLEET = """
[run]
name = "cli"
seed = 3
duration = "3s"
ledger = "{ledger}"

[[group]]
name = "ac"
count = 2
id = "CLI-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 2

[group.config]
MeterValueSampleInterval = 1

[group.sessions]
arrivals_per_hour = 3600
duration = "1s..2s"
energy_kwh = "0.1..0.2"
id_tags = ["TAG-1"]
"""


def sim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args], capture_output=True, text=True,
        timeout=timeout, cwd=ROOT, check=False,
    )


def assert_one_clear_line(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture
def small_fleet(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(SMALL_FLEET.format(ledger=tmp_path / "cli.db"))
    return path


def test_version_and_help() -> None:
    version = sim("--version")
    assert version.returncode == 0 and version.stdout.strip()
    helped = sim("--help")
    assert helped.returncode == 0
    for command in ("start", "csms", "report", "check", "schema"):
        assert command in helped.stdout


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[run\nname = 1", ["line 1", "TOML"]),
        ('[run]\nname = "x"\nbogus = 1\n', ["run.bogus", "unknown key"]),
        ('[[group]]\nname = "a"\ncount = "x"\nid = "A-{n}"\nvendor = "v"\nmodel = "m"\n',
         ["group[0].count", "integer"]),
        ('[[group]]\nname = "a"\ncount = -1\nid = "A-{n}"\nvendor = "v"\nmodel = "m"\n',
         ["group[0].count", ">= 1"]),
        ('[csms]\nurl = "http://example.org"\n[[group]]\nname = "a"\nid = "A-{n}"\n'
         'vendor = "v"\nmodel = "m"\n', ["csms.url"]),
        ('[csms]\ntransport = "carrier-pigeon"\n[[group]]\nname = "a"\nid = "A-{n}"\n'
         'vendor = "v"\nmodel = "m"\n', ["csms.transport", "trio-websocket", "websockets"]),
        ('[csms]\nurl = "wss://127.0.0.1:9/ocpp"\nca_file = "/nonexistent/ca.pem"\n[[group]]\n'
         'name = "a"\nid = "A-{n}"\nvendor = "v"\nmodel = "m"\n', ["ca_file"]),
    ],
    ids=["broken-toml", "unknown-key", "wrong-type", "negative-count", "bad-url",
         "bad-transport", "missing-ca-file"],
)
def test_bad_fleet_files_get_one_line_and_exit_2(
    tmp_path: Path, text: str, needles: list[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert_one_clear_line(sim("check", str(path)), str(path), *needles)
    assert_one_clear_line(sim("start", "--toml", str(path)), str(path), *needles)


def test_missing_file_and_bad_flags_exit_2(tmp_path: Path, small_fleet: Path) -> None:
    assert_one_clear_line(sim("start", "--toml", str(tmp_path / "nope.toml")), "nope.toml")
    assert_one_clear_line(sim("start", "--toml", str(small_fleet), "--duration", "soon"),
                          "duration")
    bad_seed = sim("start", "--toml", str(small_fleet), "--seed", "abc")
    assert bad_seed.returncode == 2 and "Traceback" not in bad_seed.stderr
    assert_one_clear_line(sim("report", str(tmp_path / "missing.db")), "missing.db")
    not_a_ledger = tmp_path / "junk.db"
    not_a_ledger.write_text("this is not sqlite")
    assert_one_clear_line(sim("report", str(not_a_ledger)), "junk.db")


def test_schema_is_json_and_check_prints_the_resolved_fleet(small_fleet: Path) -> None:
    schema = sim("schema")
    assert schema.returncode == 0
    document = json.loads(schema.stdout)
    assert "run" in json.dumps(document) and "group" in json.dumps(document)
    checked = sim("check", str(small_fleet))
    assert checked.returncode == 0 and "CLI-1" in checked.stdout


def test_start_runs_records_and_reports(tmp_path: Path, small_fleet: Path) -> None:
    done = sim("start", "--toml", str(small_fleet), "--json", "--seed", "5")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout)
    ledger = tmp_path / "cli.db"
    with sqlite3.connect(ledger) as db:
        (seed, status) = db.execute("SELECT seed, status FROM runs").fetchone()
    assert seed == 5 and status == "completed"
    assert json.dumps(summary)  # a machine-readable summary
    text = sim("report", str(ledger))
    assert text.returncode == 0 and "BootNotification" in text.stdout
    as_json = sim("report", str(ledger), "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout)


def test_sigterm_ends_the_run_gracefully_as_interrupted(tmp_path: Path,
                                                         small_fleet: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "start", "--toml", str(small_fleet),
         "--duration", "60s", "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    ledger = tmp_path / "cli.db"
    deadline = time.monotonic() + 20
    connected = 0
    while time.monotonic() < deadline and connected < 2:
        time.sleep(0.3)
        try:
            with sqlite3.connect(ledger) as db:
                connected = db.execute(
                    "SELECT COUNT(*) FROM events WHERE kind = 'connected'").fetchone()[0]
        except sqlite3.Error:
            continue
    assert connected == 2
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    with sqlite3.connect(ledger) as db:
        (status,) = db.execute("SELECT status FROM runs").fetchone()
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert status == "interrupted"


def test_virtual_time_runs_ten_simulated_minutes_in_seconds(tmp_path: Path) -> None:
    path = tmp_path / "virtual.toml"
    path.write_text(
        SMALL_FLEET.format(ledger=tmp_path / "virtual.db")
        .replace('duration = "3s"', 'duration = "10m"\ntime = "virtual"')
        .replace("arrivals_per_hour = 3600", "arrivals_per_hour = 60")
        .replace('duration = "1s..2s"', 'duration = "2m..4m"')
    )
    started = time.monotonic()
    done = sim("start", "--toml", str(path), "--quiet", timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert elapsed < 90
    with sqlite3.connect(tmp_path / "virtual.db") as db:
        (last,) = db.execute("SELECT MAX(t) FROM events").fetchone()
        (heartbeats,) = db.execute(
            "SELECT COUNT(*) FROM events WHERE kind = 'frame_out' AND data LIKE '%Heartbeat%'"
        ).fetchone()
        (started_tx,) = db.execute(
            "SELECT COUNT(*) FROM events WHERE kind = 'tx_started'").fetchone()
        (timeouts,) = db.execute(
            "SELECT COUNT(*) FROM events WHERE kind = 'call_timeout'").fetchone()
    assert last >= 590.0  # events all along the ten simulated minutes
    assert summarize(tmp_path / "virtual.db").duration_s >= 600.0  # and the run lasted them
    assert started_tx >= 2 and timeouts == 0
    assert heartbeats >= 2  # the CSMS's heartbeat interval, in simulated time


def test_virtual_time_refuses_a_real_csms(tmp_path: Path) -> None:
    path = tmp_path / "virtual.toml"
    path.write_text(SMALL_FLEET.format(ledger=tmp_path / "v.db").replace(
        'duration = "3s"', 'duration = "3s"\ntime = "virtual"\n\n[csms]\nurl = "ws://127.0.0.1:9/ocpp"'
    ).replace('[run]', '[run]', 1))
    assert_one_clear_line(sim("start", "--toml", str(path)), "virtual", "embedded")


def test_standalone_csms_serves_a_fleet(tmp_path: Path, small_fleet: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "simulator", "csms", "--host", "127.0.0.1", "--port", "0",
         "--heartbeat-interval", "1", "--ledger", str(tmp_path / "csms.db")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()  # "sim csms: listening on ws://127.0.0.1:PORT/ocpp/..."
        url = line.split("listening on ", 1)[1].split("/<", 1)[0]
        assert url.startswith("ws://127.0.0.1:")
        done = sim("start", "--toml", str(small_fleet), "--csms", url, "--json")
        assert done.returncode == 0, done.stderr
        with sqlite3.connect(tmp_path / "cli.db") as db:
            (boots,) = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'boot'").fetchone()
            (heartbeats,) = db.execute(
                "SELECT COUNT(*) FROM events WHERE kind = 'frame_out' "
                "AND data LIKE '%\"Heartbeat\"%'").fetchone()
        assert boots == 2 and heartbeats >= 2  # the standalone CSMS's interval (1 s) applies
    finally:
        server.send_signal(signal.SIGINT)
        try:
            out, err = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            out, err = server.communicate()
    assert server.returncode == 130, err  # Ctrl-C, like `sim start`
    assert "Traceback" not in out + err
    # a line per connection, boot and disconnection, no frames without --verbose
    for charger in ("CLI-1", "CLI-2"):
        mine = [line.split(f"  {charger}  ", 1)[1] for line in out.splitlines()
                if f"  {charger}  " in line]
        assert mine[0].startswith("connected (session ")
        assert mine[1] == "boot: Acme AC22: Accepted (heartbeat interval 1 s)"
        assert mine[-1].startswith("disconnected (session ")
        assert not [line for line in mine if line.startswith(("<-", "->"))]
    # its side, in the ledger format: the frames the fleet sent, as the CSMS received them
    with sqlite3.connect(tmp_path / "csms.db") as db:
        run = db.execute("SELECT name, status, exit_code, version FROM runs").fetchall()
        received = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'csms_frame_in'"
                              ).fetchone()[0]
        notes = {row[0] for row in db.execute(
            "SELECT json_extract(data, '$.what') FROM events WHERE kind = 'csms_note'")}
    with sqlite3.connect(tmp_path / "cli.db") as db:
        sent = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'frame_out'").fetchone()[0]
    assert run == [("csms", "interrupted", 130, simulator.__version__)]
    assert received == sent > 0
    assert {"connected", "disconnected"} <= notes
    assert sorted(p.name for p in tmp_path.glob("csms.db*")) == ["csms.db"]


def test_standalone_csms_on_a_port_in_use_or_a_bad_ledger_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_clear_line(sim("csms", "--port", str(port)),
                              f"cannot listen on 127.0.0.1:{port}")
    not_a_ledger = tmp_path / "notes.txt"
    not_a_ledger.write_text("not SQLite " * 100)
    assert_one_clear_line(sim("csms", "--port", "0", "--ledger", str(not_a_ledger)),
                          str(not_a_ledger), "check the ledger path")


def test_standalone_csms_verbose_prints_every_frame(tmp_path: Path, small_fleet: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "simulator", "csms", "--port", "0", "--verbose",
         "--boot-status", "Rejected"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stderr is not None
        url = server.stderr.readline().split("listening on ", 1)[1].split("/<", 1)[0]
        done = sim("start", "--toml", str(small_fleet), "--csms", url, "--duration", "1s",
                   "--quiet")
        assert done.returncode == 1, done.stderr  # no boot accepted: not a clean run
        assert "accepted no charger's boot (Rejected" in done.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            out, err = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            out, err = server.communicate()
    assert server.returncode == 130, err
    with sqlite3.connect(tmp_path / "cli.db") as db:
        sent = [row[0] for row in db.execute(
            "SELECT json_extract(data, '$.raw') FROM events WHERE kind = 'frame_out'")]
        received = [row[0] for row in db.execute(
            "SELECT json_extract(data, '$.raw') FROM events WHERE kind = 'frame_in'")]
    frames_in = [line.split("  <- ", 1)[1] for line in out.splitlines() if "  <- " in line]
    frames_out = [line.split("  -> ", 1)[1] for line in out.splitlines() if "  -> " in line]
    assert sorted(frames_in) == sorted(sent) and sent  # every frame, as sent
    assert sorted(frames_out) == sorted(received)
    assert sum("boot: Acme AC22: Rejected" in line for line in out.splitlines()) >= 2


def test_a_fresh_run_warns_about_messages_an_earlier_run_left_queued(
    tmp_path: Path, small_fleet: Path
) -> None:
    from datetime import UTC, datetime

    from simulator.ledger import Ledger
    from simulator.machines.effects import OutboxEntry

    ledger = Ledger.open(tmp_path / "cli.db")
    ledger.start_run(name="old", seed=1, config_text="", config_sha256="", version="0",
                     t0=0.0, wall0=datetime.now(UTC))
    ledger.save_outbox("CLI-9", [OutboxEntry(seq=1, action="StopTransaction",
                                             payload='{"meterStop":1}', local_tx=1,
                                             transaction_id=7)])
    ledger.close()
    done = sim("start", "--toml", str(small_fleet), "--quiet", "--duration", "1s")
    assert done.returncode == 0, done.stderr
    assert "holds 1 undelivered transaction message(s)" in done.stderr
    assert "discards them (--resume delivers them)" in done.stderr
    ledger = Ledger.open(tmp_path / "cli.db")
    try:  # discarded: a later --resume will not send another run's StopTransaction
        assert ledger.load_outbox() == {}
    finally:
        ledger.close()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["check"], ["FILE"]),
        (["report"], ["LEDGER"]),
        (["start", "--duration", "-5s"], ["--duration", "'-5s'", "--duration=-5s"]),
        (["start", "--duration=-5s"], ["run.duration", '"-5s"']),
        (["start", "--seed", "abc"], ["--seed", "abc"]),
        (["start", "--bogus"], ["--bogus"]),
        (["launch"], ["launch", "start"]),
        (["csms", "--port", "http"], ["--port", "http"]),
    ],
    ids=["check-no-file", "report-no-ledger", "negative-duration", "negative-duration-eq",
         "bad-seed", "unknown-flag", "unknown-command", "bad-port"],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], needles: list[str]) -> None:
    done = sim(*args)
    assert_one_clear_line(done, *needles)
    assert done.stderr.startswith("sim: ") and "╭" not in done.stderr  # no framed boxes


def test_check_applies_the_rules_of_start_to_every_file(tmp_path: Path, small_fleet: Path) -> None:
    virtual = tmp_path / "virtual.toml"  # checks out as a file, cannot run
    virtual.write_text(small_fleet.read_text().replace("[run]\n", '[run]\ntime = "virtual"\n', 1)
                       + '\n[csms]\nurl = "ws://127.0.0.1:9/ocpp"\n')
    for command in (["check", str(virtual)], ["start", "--toml", str(virtual)]):
        assert_one_clear_line(sim(*command), "virtual", "embedded")
    both = sim("check", str(small_fleet), str(virtual))
    assert both.returncode == 2 and "CLI-1" in both.stdout  # the good one is still shown
    assert "virtual" in both.stderr
    steps = tmp_path / "steps.toml"
    steps.write_text(small_fleet.read_text() + '\n[[step]]\nat = "1s"\ndo = "plug"\n'
                     'target = { ids = ["CLI-1"], connector = 1 }\n')
    checked = sim("check", str(steps))
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""  # steps run: nothing to warn about
    assert "1 step(s)" in checked.stdout


def test_resume_is_honest_about_what_there_is_to_resume(
    tmp_path: Path, small_fleet: Path
) -> None:
    missing = sim("start", "--toml", str(small_fleet), "--ledger", str(tmp_path / "none.db"),
                  "--resume", "--quiet")
    assert_one_clear_line(missing, "--resume", "none.db", "no such ledger")
    assert not (tmp_path / "none.db").exists()
    first = sim("start", "--toml", str(small_fleet), "--quiet", "--duration", "1s")
    assert first.returncode == 0, first.stderr  # ends gracefully: nothing left behind
    again = sim("start", "--toml", str(small_fleet), "--resume", "--quiet")
    assert again.returncode == 0, again.stderr
    assert "nothing to resume" in again.stderr and again.stdout == ""
    with sqlite3.connect(tmp_path / "cli.db") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)  # nothing was run


def test_start_list_shows_every_shipped_scenario_with_what_it_tests() -> None:
    from simulator.config import scenario_names

    listed = sim("start", "--list")
    assert listed.returncode == 0 and listed.stderr == ""
    lines = dict(line.split(None, 1) for line in listed.stdout.splitlines()
                 if line.strip() and not line.startswith("run one"))
    assert set(lines) == set(scenario_names()) and len(lines) >= 13
    assert lines["blackout"].startswith("Blackout: a district loses power")
    assert "sim start --toml NAME" in listed.stdout
