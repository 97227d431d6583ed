"""The report tells the whole story: what was not delivered and what delivers it, why a run
went past its duration, what a resumed run took over, the central system's answers by status,
energy per group, latencies on the virtual clock labelled as such, and the JSON carrying all
of it."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from simulator.events import (
    BootResult,
    Connected,
    FrameIn,
    FrameOut,
    Note,
    TransactionAcknowledged,
    TransactionStarted,
    TransactionStopped,
)
from simulator.ledger import RunStatus, finish_run
from simulator.report import (
    Energy,
    Outcomes,
    ResumeStats,
    render_json,
    render_text,
    summarize,
)
from tests.report.helpers import T0, fleet, outbox, write_run


def authorize(t: float, charger: str, n: int, status: str) -> list[FrameOut | FrameIn]:
    """An Authorize CALL of ``charger`` and its answer with idTagInfo ``status``."""
    uid = f"{charger}-auth-{n}"
    return [
        FrameOut(t=T0 + t, charger=charger, raw="[2]", message_type=2, unique_id=uid,
                 action="Authorize"),
        FrameIn(t=T0 + t + 0.25, charger=charger, message_type=3, unique_id=uid,
                action="Authorize", latency=0.25,
                raw=json.dumps([3, uid, {"idTagInfo": {"status": status}}])),
    ]


async def test_messages_left_in_the_outbox_are_named_with_their_chargers_and_the_way_out(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lab.db"
    await write_run(path, [
        Connected(t=T0 + 1, charger="A", url="ws://cs"),
        outbox(2, "A", (1, "StartTransaction"), (2, "MeterValues"), (3, "MeterValues")),
        outbox(3, "B", (4, "StopTransaction")),
        Note(t=T0 + 40, charger="A", what="last"),  # the run went on to 40 s, 10 s past 30 s
    ])
    report = summarize(path)
    assert (report.messages_queued, report.queued_by_charger) == (4, {"A": 3, "B": 1})
    assert (report.configured_duration_s, report.overrun_s) == (30.0, pytest.approx(10.0))
    assert report.last_event_s == 40.0
    text = render_text(report)
    assert ("NOT DELIVERED: 4 transaction message(s) left in the outbox of 2 charger(s): A 3,"
            " B 1; `sim start --resume` on this ledger delivers them") in text
    assert ("ran 10.0 s past its duration of 30 s: from 30 s on it ended gracefully"
            " (transactions stopped, queued messages given a grace period to be delivered,"
            " connections closed; last event at 40.0 s); 4 message(s) were still queued when"
            " the grace period ran out") in text
    as_json = json.loads(render_json(report))
    assert as_json["queued_by_charger"] == {"A": 3, "B": 1}
    assert (as_json["configured_duration_s"], as_json["overrun_s"]) == (30.0, 10.0)


async def test_a_run_that_ended_on_time_with_nothing_queued_says_neither(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    await write_run(path, [Note(t=T0 + 29.95, charger="A", what="last")])
    report = summarize(path)
    assert (report.messages_queued, report.queued_by_charger, report.overrun_s) == (0, {}, None)
    text = render_text(report)
    assert "NOT DELIVERED" not in text and "past its duration" not in text


async def test_a_resumed_run_says_what_it_delivered_and_what_it_stopped_with_power_loss(
    tmp_path: Path,
) -> None:
    """The killed run left A three messages (seqs 1-3) and B one (seq 5), and a transaction of
    A running. The resumed run stops it with PowerLoss, delivers A's first two and B's, and ends
    with A's third still queued behind a new one: 3 of the 4 delivered. A transaction it started
    and a crash stopped with PowerLoss is its own, not one it took over."""
    path = tmp_path / "lab.db"
    killed = await write_run(path, [
        TransactionStarted(t=T0 + 1, charger="A", connector=1, id_tag="T", meter_start=100,
                           local_id=1),
        outbox(2, "A", (1, "StartTransaction"), (2, "MeterValues"), (3, "MeterValues")),
        outbox(2, "B", (5, "StopTransaction")),
    ], finish=False)
    resumed = await write_run(path, [
        TransactionStopped(t=T0 + 1, charger="A", connector=1, local_id=1, transaction_id=None,
                           meter_stop=2600, reason="PowerLoss"),
        TransactionStarted(t=T0 + 2, charger="B", connector=1, id_tag="T", meter_start=0,
                           local_id=2),
        TransactionStopped(t=T0 + 3, charger="B", connector=1, local_id=2, transaction_id=9,
                           meter_stop=500, reason="PowerLoss"),
        outbox(4, "A", (3, "MeterValues"), (4, "StopTransaction")),
        outbox(4, "B"),
    ], resumed_from=killed)
    report = summarize(path, resumed)
    assert report.resume == ResumeStats(resumed_from=killed, restored=4, delivered=3,
                                        powerloss_stops=1)
    assert report.energy == Energy(total_kwh=3.0, by_group_kwh={"north": 2.5, "south": 0.5},
                                   transactions=2)
    assert ("resumed from run 1: queued messages taken over 4, delivered 3; transactions left"
            " running there stopped with PowerLoss 1") in render_text(report)
    assert json.loads(render_json(report))["resume"] == {
        "resumed_from": killed, "restored": 4, "delivered": 3, "powerloss_stops": 1}
    earlier = summarize(path, killed)
    assert (earlier.resume, earlier.resumed_by, report.resumed_by) == (None, resumed, None)
    assert ("NOT DELIVERED: 4 transaction message(s) left in the outbox of 2 charger(s): A 3,"
            " B 1; run 2 resumed this one and took them over") in render_text(earlier)


async def test_answers_are_broken_down_by_status_and_a_rejected_fleet_does_not_look_clean(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lab.db"
    statuses = ["Accepted", "Blocked", "Invalid", "Expired", "ConcurrentTx", "Accepted"]
    events = [event for n, status in enumerate(statuses)
              for event in authorize(1 + n, "A", n, status)]
    events += [
        BootResult(t=T0 + 0.5, charger="A", status="Rejected", interval=30),
        BootResult(t=T0 + 0.5, charger="B", status="Rejected", interval=30),
        BootResult(t=T0 + 9.5, charger="B", status="Pending", interval=30),
        FrameIn(t=T0 + 9, charger="A", message_type=3, unique_id="z", action="Authorize",
                latency=0.1, raw="[3, broken"),
    ]
    for local_id, status in enumerate(["Accepted", "ConcurrentTx", "Blocked"], 1):
        events += [
            TransactionStarted(t=T0 + 10, charger="B", connector=1, id_tag="T", meter_start=0,
                               local_id=local_id),
            TransactionAcknowledged(t=T0 + 10.5, charger="B", connector=1, local_id=local_id,
                                    transaction_id=local_id, status=status),
        ]
    await write_run(path, events)
    report = summarize(path)
    assert report.outcomes == Outcomes(
        boot={"Pending": 1, "Rejected": 2},
        authorize={"(unreadable)": 1, "Accepted": 2, "Blocked": 1, "ConcurrentTx": 1,
                   "Expired": 1, "Invalid": 1},
        start_transaction={"Accepted": 1, "Blocked": 1, "ConcurrentTx": 1},
    )
    text = render_text(report)
    assert "boot: Pending 1, Rejected 2" in text
    assert "WARNING: the central system accepted no boot" in text
    assert ("idTagInfo of Authorize: (unreadable) 1, Accepted 2, Blocked 1, ConcurrentTx 1,"
            " Expired 1, Invalid 1") in text
    assert "idTagInfo of StartTransaction: Accepted 1, Blocked 1, ConcurrentTx 1" in text
    assert json.loads(render_json(report))["outcomes"]["boot"] == {"Pending": 1, "Rejected": 2}


async def test_energy_is_counted_per_group_of_the_runs_own_fleet_file(tmp_path: Path) -> None:
    """meterStop - meterStart of every transaction stopped in the run, by the group its charger
    belongs to; a charger the fleet file does not name counts apart, a transaction still
    running not at all. A run whose config cannot be read back has no groups."""
    path = tmp_path / "lab.db"
    events = []
    for charger, local_id, start, stop in (("A", 1, 0, 1234), ("A", 2, 1234, 2000),
                                           ("B", 1, 10, 5010), ("Z", 1, 0, 1000)):
        events += [
            TransactionStarted(t=T0 + local_id, charger=charger, connector=1, id_tag="T",
                               meter_start=start, local_id=local_id),
            TransactionStopped(t=T0 + 5 + local_id, charger=charger, connector=1,
                               local_id=local_id, transaction_id=local_id, meter_stop=stop,
                               reason="Local"),
        ]
    events.append(TransactionStarted(t=T0 + 9, charger="B", connector=1, id_tag="T",
                                     meter_start=5010, local_id=2))
    await write_run(path, events)
    report = summarize(path)
    assert report.energy == Energy(
        total_kwh=8.0, by_group_kwh={"north": 2.0, "south": 5.0, "(unknown)": 1.0},
        transactions=4)
    assert ("energy delivered: 8 kWh by 4 stopped transaction(s) (by group, kWh: north 2,"
            " south 5, (unknown) 1)") in render_text(report)
    await write_run(path, events, config="not a fleet file")
    bare = summarize(path)
    assert bare.energy.by_group_kwh == {"(unknown)": 8.0}
    assert (bare.time, bare.configured_duration_s) == (None, None)


async def test_latencies_under_virtual_time_are_read_on_the_virtual_clock(
    tmp_path: Path,
) -> None:
    """A virtual clock only moves by simulated delays (a latency fault, a late answer): those
    show as latencies, labelled as read on the virtual clock."""
    path = tmp_path / "lab.db"
    await write_run(path, authorize(1, "A", 1, "Accepted"), config=fleet(time="virtual"))
    report = summarize(path)
    (action,) = report.actions
    assert (report.time, action.results) == ("virtual", 1)
    assert (action.p50_ms, action.max_ms) == (250.0, 250.0)
    text = render_text(report)
    (row,) = [line for line in text.splitlines() if line.startswith("Authorize ")]
    assert row.split()[1:] == ["1", "0", "1", "0", "0", "0", "250.0", "250.0", "250.0", "250.0"]
    assert 'latencies: on the virtual clock (run.time = "virtual")' in text
    real = tmp_path / "real.db"
    await write_run(real, authorize(1, "A", 1, "Accepted"))
    assert summarize(real).actions[0].p95_ms == 250.0


async def test_json_carries_what_the_text_says_with_units_in_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    run_id = await write_run(path, [*authorize(1, "A", 1, "Accepted"),
                                    *authorize(2, "A", 2, "Accepted"),
                                    Note(t=T0 + 40, what="last")])
    finish_run(path, run_id, RunStatus.FAILED, 1,
               {"reasons": ["no charger could connect to ws://cs: refused 3"]})
    report = summarize(path)
    text, as_json = render_text(report), json.loads(render_json(report))
    assert (as_json["status"], as_json["exit_code"], as_json["reasons"]) == (
        "failed", 1, ["no charger could connect to ws://cs: refused 3"])
    assert "failed (exit code 1)" in text
    assert "  reason: no charger could connect to ws://cs: refused 3" in text
    assert {"duration_s", "configured_duration_s", "overrun_s", "loop_lagged_s",
            "loop_lag_max_ms"} <= set(as_json)
    assert not {"duration", "loop_lag_max", "loop_lagged_seconds"} & set(as_json)
    (auth,) = as_json["actions"]
    assert set(auth) >= {"p50_ms", "p95_ms", "p99_ms", "max_ms"}
    assert f"duration {as_json['duration_s']:.1f} s" in text
    (row,) = [line for line in text.splitlines() if line.startswith("Authorize ")]
    assert row.split()[-4:] == [f"{auth[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms",
                                                            "max_ms")]
    assert re.search(rf"ran {as_json['overrun_s']:.1f} s past", text)


async def test_a_ledger_of_an_older_version_still_reports(tmp_path: Path) -> None:
    """A run whose summary has the per-action queue but not the per-charger one (written before
    it existed) still counts its queue; a resumed run from it cannot tell what it delivered."""
    path = tmp_path / "lab.db"
    killed = await write_run(path, [outbox(1, "A", (1, "StopTransaction"))], finish=False)
    resumed = await write_run(path, [outbox(1, "A")], resumed_from=killed)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET summary = json_remove(summary, '$.queued_chargers_at_end')")
    earlier, later = summarize(path, killed), summarize(path, resumed)
    assert (earlier.messages_queued, earlier.queued_by_charger) == (1, {})
    assert "1 transaction message(s) left in the outbox; run 2 resumed this one" in render_text(
        earlier)
    assert later.resume == ResumeStats(resumed_from=killed, restored=None, delivered=None,
                                       powerloss_stops=0)
    assert "queued messages taken over: not recorded" in render_text(later)
