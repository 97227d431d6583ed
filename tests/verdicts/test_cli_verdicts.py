"""Verdicts from the command line: ``sim start`` prints them and exits 1 when one fails,
``--junit`` writes them for CI, ``sim check`` refuses an expectation no check takes, ``sim
report`` shows them again, ``sim replay`` runs the same fleet and seed again (and says which
secret it needs), ``sim diff`` puts two runs side by side. Runs are virtual-time fleets."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from simulator.events import BootResult
from simulator.ledger import RunStatus, finish_run
from simulator.report import VERDICTS_SUMMARY_KEY, render_diff, summarize
from simulator.report.diff import differs
from tests.report.helpers import T0, fleet, write_run
from tests.test_cli import ROOT, assert_one_clear_line, sim
from tests.verdicts.test_user_checks import install

FLEET = """
[run]
name = "judged"
seed = 5
duration = "5m"
time = "virtual"
ledger = "{ledger}"

[[group]]
name = "ac"
count = 2
id = "J-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 2

[group.sessions]
arrivals_per_hour = 40
duration = "1m..2m"
energy_kwh = "1..2"
id_tags = ["TAG-1"]

[[expect]]
check = "boot_accepted"

[[expect]]
check = "no_lost_transactions"
"""


def fleet_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "judged.toml"
    path.write_text(FLEET.format(ledger=tmp_path / "judged.db") + extra)
    return path


def with_env(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, check=False,
                          env={**os.environ, **env})


def stored_config(ledger: Path) -> str:
    with sqlite3.connect(ledger) as db:
        (config,) = db.execute("SELECT config FROM runs").fetchone()
    return str(config)


def frames_by_charger(ledger: Path) -> dict[str, list[str]]:
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT charger, json_extract(data, '$.action') FROM events"
                          " WHERE kind = 'frame_out' ORDER BY seq").fetchall()
    found: dict[str, list[str]] = {}
    for charger, action in rows:
        found.setdefault(charger, []).append(action)
    return found


def test_start_prints_the_verdicts_writes_junit_and_fails_on_one(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install(site, "lab_checks", {"few_heartbeats": "few_heartbeats"})
    path = fleet_file(tmp_path, '\n[[expect]]\ncheck = "latency"\naction = "DataTransfer"\n'
                                'p95 = "1s"\n\n[[expect]]\ncheck = "few_heartbeats"\nmost = 1000\n')
    junit = tmp_path / "out" / "verdicts.xml"
    done = with_env("start", "--toml", str(path), "--quiet", "--junit", str(junit),
                    env={"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])})
    assert done.returncode == 1, done.stderr
    assert "verdicts: 3 of 4 passed" in done.stdout
    assert "  #1 PASS  boot_accepted: 2 of 2 charger(s) had a boot Accepted" in done.stdout
    assert ('  #3 FAIL  latency action="DataTransfer" p95="1s": no answer to a DataTransfer was'
            " received: nothing to measure") in done.stdout
    assert "  #4 PASS  few_heartbeats most=1000: " in done.stdout
    assert "sim: run failed: 1 of 4 expectation(s) failed: #3 latency" in done.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("4", "1")
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [
        "#1 boot_accepted", "#2 no_lost_transactions", '#3 latency action="DataTransfer"'
        ' p95="1s"', "#4 few_heartbeats most=1000"]
    assert [case.find("failure") is not None for case in cases] == [False, False, True, False]
    report = sim("report", str(tmp_path / "judged.db"))
    assert report.returncode == 0 and "  #3 FAIL  latency" in report.stdout
    stored = summarize(tmp_path / "judged.db")
    assert (stored.status, stored.exit_code) == ("failed", 1)


def test_check_and_start_refuse_an_expectation_no_check_takes(tmp_path: Path) -> None:
    path = fleet_file(tmp_path, '\n[[expect]]\ncheck = "latency"\naction = "Heartbeat"\n'
                                'p96 = "2s"\n')
    for command in (["check", str(path)], ["start", "--toml", str(path)]):
        assert_one_clear_line(sim(*command), f"{path}: expect[2].p96: check 'latency' does not"
                                             " take 'p96'; did you mean")
    assert not (tmp_path / "judged.db").exists()  # refused before anything ran
    unknown = fleet_file(tmp_path, '\n[[expect]]\ncheck = "nothing_lost"\n')
    assert_one_clear_line(sim("check", str(unknown)), "expect[2].check: unknown check"
                                                      " 'nothing_lost'; expected one of")


def test_replay_runs_the_same_fleet_and_seed_again_and_diff_finds_them_alike(
    tmp_path: Path,
) -> None:
    first = sim("start", "--toml", str(fleet_file(tmp_path)), "--quiet")
    assert first.returncode == 0, first.stderr
    original = tmp_path / "judged.db"
    again = sim("replay", str(original), "--quiet")
    assert again.returncode == 0, again.stderr
    replayed = tmp_path / "judged-replay.db"
    assert f"replaying run 1 of {original} (seed 5) into {replayed}" in again.stderr
    a, b = summarize(original), summarize(replayed)
    assert (b.seed, b.verdicts) == (a.seed, a.verdicts) and a.verdicts
    assert stored_config(replayed) == stored_config(original).replace(
        str(original), str(replayed))  # the same fleet file, but for where its ledger goes
    assert frames_by_charger(replayed) == frames_by_charger(original)
    assert sum(len(sent) for sent in frames_by_charger(original).values()) > 20
    compared = sim("diff", str(original), str(replayed))
    assert compared.returncode == 0, compared.stderr
    assert "verdicts:" in compared.stdout and not differs(compared.stdout)
    other = sim("replay", str(original), "--ledger", str(tmp_path / "other.db"), "--csms",
                "ws://127.0.0.1:9/ocpp")
    assert_one_clear_line(other, "virtual", "embedded")  # the stored file, the new URL


async def test_replay_says_which_secret_the_ledger_did_not_keep(tmp_path: Path) -> None:
    literal = tmp_path / "literal.db"
    await write_run(literal, [], config=fleet().replace('"${STORY_PASSWORD}"', '"<redacted>"'))
    assert_one_clear_line(sim("replay", str(literal)), "run 1 had a secret the ledger does not"
                                                       " keep", "SIM_CSMS__PASSWORD")
    referenced = tmp_path / "referenced.db"
    await write_run(referenced, [])
    assert_one_clear_line(sim("replay", str(referenced)), "csms.password", "STORY_PASSWORD",
                          "is not set")
    assert_one_clear_line(sim("replay", str(tmp_path / "none.db")), "none.db", "no such ledger")


async def test_diff_marks_the_verdicts_and_counts_that_changed(tmp_path: Path) -> None:
    verdict = {"number": 1, "check": "boot_accepted", "params": {}, "passed": True,
               "measured": "2 of 2"}
    paths = []
    for name, passed in (("a", True), ("b", False)):
        path = tmp_path / f"{name}.db"
        rid = await write_run(path, [], finish=False)
        finish_run(path, rid, RunStatus.COMPLETED, 0,
                   {VERDICTS_SUMMARY_KEY: [{**verdict, "passed": passed}]})
        paths.append(path)
    page = render_diff(summarize(paths[0]), summarize(paths[1]))
    assert "* #1 boot_accepted  PASS 2 of 2  FAIL 2 of 2" in page
    assert "  timeouts" in page and not any(
        line.startswith("* timeouts") for line in page.splitlines())
    same = render_diff(summarize(paths[0]), summarize(paths[0]))
    assert not differs(same)


async def test_report_judges_a_run_that_ended_without_its_verdicts(tmp_path: Path) -> None:
    killed = tmp_path / "killed.db"
    config = fleet() + '\n[[expect]]\ncheck = "boot_accepted"\nmin = 0.5\n'
    await write_run(killed, [BootResult(t=T0 + 1, charger="A", status="Accepted", interval=60)],
                    config=config, finish=False)
    assert summarize(killed).verdicts is None  # nothing stored: the process never got there
    report = sim("report", str(killed))
    assert report.returncode == 0, report.stderr
    assert ("  #1 PASS  boot_accepted min=0.5: 1 of 2 charger(s) had a boot Accepted (50%, at"
            " least 50% needed); not accepted: B") in report.stdout
