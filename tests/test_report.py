"""The report: percentiles, per-action counts and latencies, CALLERRORs by code, transactions,
connections, runs that never ended, and clear errors for files that are not ledgers. Ledgers are
built with the real writer actor."""

from __future__ import annotations

import json
import random
import re
import sqlite3
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
import trio

from simulator.events import (
    CallTimedOut,
    Connected,
    ConnectFailed,
    Crashed,
    CsmsFrameIn,
    Disconnected,
    Event,
    FaultInjected,
    FrameIn,
    FrameOut,
    LoopLagged,
    MessageDropped,
    Note,
    TransactionAcknowledged,
    TransactionStarted,
    TransactionStopped,
    UnmatchedResult,
)
from simulator.ledger import Ledger, RunStatus, SaveOutbox, finish_run
from simulator.ledger.writer import RunSpec, run_ledger_writer
from simulator.machines.effects import OutboxEntry
from simulator.report import (
    MAX_SHOWN,
    UNKNOWN_ACTION,
    UNKNOWN_ERROR_CODE,
    ActionStats,
    ConnectionStats,
    Report,
    ReportError,
    TransactionStats,
    percentile,
    render_json,
    render_text,
    summarize,
)

T0 = 500.0
WALL0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


async def write_run(
    path: Path, events: Sequence[Event], *, name: str = "lab", seed: int = 42, finish: bool = True
) -> int:
    """Write ``events`` as one run through :func:`run_ledger_writer`; returns the run id."""
    run = RunSpec(name=name, seed=seed, config_text="[run]\n", config_sha256="cd" * 32,
                  version="9.9.9", t0=T0, wall0=WALL0)
    send, receive = trio.open_memory_channel[Event](len(events) + 1)
    for event in events:
        send.send_nowait(event)
    send.close()
    with trio.fail_after(10):
        stats = await run_ledger_writer(path, receive, run=run, batch_size=7, finish=finish)
    return stats.run_id


def call_error(code: str) -> str:
    return json.dumps([4, "x", code, "why", {}])


BOOT_LATENCIES = [0.1 * n for n in range(1, 11)]  # 0.1 .. 1.0


def fleet_events() -> list[Event]:
    t = T0
    events: list[Event] = [
        Connected(t=t + 0.1, charger="A", url="ws://cs"),
        Connected(t=t + 0.2, charger="B", url="ws://cs"),
        ConnectFailed(t=t + 0.3, charger="C", url="ws://cs", error="refused", attempt=1,
                      retry_in=1.0),
    ]
    for n, latency in enumerate(BOOT_LATENCIES):
        events += [
            FrameOut(t=t + 1, charger="A", raw="[2]", message_type=2, unique_id=f"b{n}",
                     action="BootNotification"),
            FrameIn(t=t + 1 + latency, charger="A", raw="[3]", message_type=3, unique_id=f"b{n}",
                    action="BootNotification", latency=latency),
        ]
    events += [
        FrameOut(t=t + 2, charger="B", raw="[2]", message_type=2, unique_id="h1",
                 action="Heartbeat"),
        FrameIn(t=t + 2.05, charger="B", raw="[3]", message_type=3, unique_id="h1",
                action="Heartbeat", latency=0.05),
        FrameOut(t=t + 3, charger="B", raw="[2]", message_type=2, unique_id="h2",
                 action="Heartbeat"),
        CallTimedOut(t=t + 33, charger="B", unique_id="h2", action="Heartbeat", timeout=30),
        # CALLERRORs received, in answer to our CALLs
        FrameOut(t=t + 4, charger="A", raw="[2]", message_type=2, unique_id="a1",
                 action="Authorize"),
        FrameIn(t=t + 4.3, charger="A", raw=call_error("NotImplemented"), message_type=4,
                unique_id="a1", action="Authorize", latency=0.3),
        FrameOut(t=t + 5, charger="A", raw="[2]", message_type=2, unique_id="s1",
                 action="StatusNotification"),
        FrameIn(t=t + 5.2, charger="A", raw=call_error("FormationViolation"), message_type=4,
                unique_id="s1", action="StatusNotification", latency=0.2,
                violations=["FormationViolation: bad"]),
        FrameIn(t=t + 5.5, charger="A", raw=call_error("NotImplemented"), message_type=4,
                unique_id="zz"),
        UnmatchedResult(t=t + 5.5, charger="A", unique_id="zz", message_type=4),
        FrameIn(t=t + 5.6, charger="A", raw="[4, broken", message_type=4,
                violations=["not JSON"]),
        # a CALL from the CS, answered with a CALLERROR; one answered with a result
        FrameIn(t=t + 6, charger="B", raw="[2]", message_type=2, unique_id="r1", action="Reset"),
        FrameOut(t=t + 6, charger="B", raw=call_error("NotSupported"), message_type=4,
                 unique_id="r1", action="Reset"),
        FrameIn(t=t + 6.5, charger="B", raw="[2]", message_type=2, unique_id="r2",
                action="Reset"),
        FrameOut(t=t + 6.5, charger="B", raw="[3]", message_type=3, unique_id="r2",
                 action="Reset"),
        # transactions
        TransactionStarted(t=t + 7, charger="A", connector=1, id_tag="T1", meter_start=0,
                           local_id=1),
        TransactionStarted(t=t + 7, charger="B", connector=1, id_tag="T9", meter_start=0,
                           local_id=1),
        TransactionAcknowledged(t=t + 7.1, charger="A", connector=1, local_id=1,
                                transaction_id=11, status="Accepted"),
        TransactionAcknowledged(t=t + 7.1, charger="B", connector=1, local_id=1,
                                transaction_id=12, status="Blocked"),
        TransactionStopped(t=t + 8, charger="B", connector=1, local_id=1, transaction_id=12,
                           meter_stop=10, reason="DeAuthorized"),
        # supervision, chaos and the central system's side
        FaultInjected(t=t + 9, charger="A", fault="disconnect"),
        FaultInjected(t=t + 9, charger="B", fault="disconnect"),
        FaultInjected(t=t + 9, charger="B", fault="latency", params={"ms": 5}),
        Disconnected(t=t + 9, charger="A", code=1000),
        Connected(t=t + 10, charger="A", url="ws://cs"),
        Disconnected(t=t + 11, charger="B", code=1006),
        Connected(t=t + 12, charger="B", url="ws://cs"),
        Connected(t=t + 13, charger="B", url="ws://cs"),
        Crashed(t=t + 14, charger="A", error="RuntimeError: boom", traceback="...",
                restart_in=1.0),
        MessageDropped(t=t + 15, charger="A", action="Heartbeat", attempts=1, reason="offline"),
        CsmsFrameIn(t=t + 16, charger="A", raw="[2]", action="Heartbeat", violations=["x"]),
        CsmsFrameIn(t=t + 16, charger="A", raw="[2]", action="Heartbeat"),
        Note(t=t + 40, charger="A", what="last"),
    ]
    return events


# --- percentiles --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "percent", "expected"),
    [
        ([1.0], 50, 1.0),
        ([1.0], 99, 1.0),
        ([1.0, 2.0], 50, 1.5),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 95, 3.85),
        (BOOT_LATENCIES, 95, 0.955),
        (BOOT_LATENCIES, 99, 0.991),
    ],
)
def test_percentile_interpolates_between_closest_ranks(
    values: list[float], percent: float, expected: float
) -> None:
    assert percentile(values, percent) == pytest.approx(expected)


def test_percentile_agrees_with_the_standard_library() -> None:
    rng = random.Random(2024)
    for size in (2, 3, 10, 101, 1000):
        values = sorted(rng.expovariate(10) for _ in range(size))
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        for p in (1, 50, 95, 99):
            assert percentile(values, p) == pytest.approx(cuts[p - 1])


@pytest.mark.parametrize(("values", "percent"), [([], 50), ([1.0], -1), ([1.0], 100.5)])
def test_percentile_rejects_bad_input(values: list[float], percent: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, percent)


# --- summarize ----------------------------------------------------------------------------------


async def test_summarize_a_completed_run(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    events = fleet_events()
    run_id = await write_run(path, events)
    finish_run(path, run_id, RunStatus.FAILED, 1, {"reasons": ["1 charger crash(es)"]})
    report = summarize(path)

    assert (report.run_id, report.name, report.seed, report.config_sha256, report.version) == (
        run_id, "lab", 42, "cd" * 32, "9.9.9",
    )
    assert (report.status, report.exit_code, report.resumed_from) == ("failed", 1, None)
    assert report.started_at == "2026-03-04T05:06:07.000000Z"
    # the writer ended the run at its own clock; the report measures from start to that end
    assert report.ended_at is not None
    assert report.duration_s == pytest.approx(
        (datetime.fromisoformat(report.ended_at) - WALL0).total_seconds()
    )
    assert report.events == len(events)
    assert (report.frames_in, report.frames_out, report.frames_in_with_violations) == (17, 16, 2)

    by_action = {a.action: a for a in report.actions}
    assert list(by_action) == [
        "Authorize", "BootNotification", "Heartbeat", "Reset", "StatusNotification",
        UNKNOWN_ACTION,
    ]
    assert list(report.call_errors_received)[-1] == UNKNOWN_ERROR_CODE
    boot = by_action["BootNotification"]
    assert (boot.calls_sent, boot.calls_received, boot.results) == (10, 0, 10)
    assert boot.p50_ms == pytest.approx(550.0)
    assert boot.p95_ms == pytest.approx(955.0)
    assert boot.p99_ms == pytest.approx(991.0)
    assert boot.max_ms == pytest.approx(1000.0)
    assert by_action["Heartbeat"] == ActionStats(
        action="Heartbeat", calls_sent=2, results=1, timeouts=1, p50_ms=50.0, p95_ms=50.0,
        p99_ms=50.0, max_ms=50.0,
    )
    assert by_action["Authorize"] == ActionStats(
        action="Authorize", calls_sent=1, results=1, errors_received=1, p50_ms=300.0,
        p95_ms=300.0, p99_ms=300.0, max_ms=300.0,
    )
    assert by_action["Reset"] == ActionStats(action="Reset", calls_received=2, errors_sent=1)
    assert by_action[UNKNOWN_ACTION] == ActionStats(action=UNKNOWN_ACTION, errors_received=2)

    assert report.call_errors_received == {
        "FormationViolation": 1, "NotImplemented": 2, UNKNOWN_ERROR_CODE: 1,
    }
    assert report.call_errors_sent == {"NotSupported": 1}
    assert (report.timeouts, report.unmatched_results, report.messages_dropped) == (1, 1, 1)
    assert report.transactions == TransactionStats(
        started=2, acknowledged=2, accepted=1, stopped=1, open=1
    )
    assert report.connections == ConnectionStats(
        connects=5, reconnects=3, disconnects=2, connect_failures=1, chargers=2
    )
    assert report.crashes == 1
    assert report.faults == {"disconnect": 2, "latency": 1}
    assert report.csms_violations == 1


async def test_summarize_picks_the_latest_run_unless_told(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    first = await write_run(path, fleet_events(), name="first", seed=1)
    second = await write_run(
        path,
        [FrameOut(t=T0 + 1, charger="A", raw="[2]", message_type=2, action="Heartbeat")],
        name="second", seed=2,
    )
    latest = summarize(path)
    assert (latest.run_id, latest.name, latest.seed, latest.events) == (second, "second", 2, 1)
    assert latest.actions == (ActionStats(action="Heartbeat", calls_sent=1),)
    assert latest.call_errors_received == {} and latest.connections.connects == 0
    earlier = summarize(path, first)
    assert (earlier.run_id, earlier.name, earlier.crashes) == (first, "first", 1)


async def test_summarize_a_run_that_never_ended(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    await write_run(path, fleet_events(), finish=False)  # as after kill -9: still "running"
    report = summarize(path)
    assert (report.status, report.ended_at, report.exit_code) == ("running", None, None)
    assert report.duration_s == pytest.approx(40.0)  # up to the last event
    assert report.transactions.open == 1
    text = render_text(report)
    assert "still going, or its process was killed" in text


async def test_summarize_while_a_writer_is_active(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    ledger = Ledger.open(path)
    try:
        ledger.start_run(name="live", seed=3, config_text="", config_sha256="ee" * 32,
                         version="1", t0=T0, wall0=WALL0)
        ledger.write_events(fleet_events()[:5])
        report = summarize(path)
    finally:
        ledger.close()
    assert (report.name, report.status, report.events) == ("live", "running", 5)


def outbox(t: float, charger: str, *actions: str) -> SaveOutbox:
    """``charger``'s outbox holding one message per action, as the charger stores it."""
    return SaveOutbox(t=T0 + t, charger=charger, entries=tuple(
        OutboxEntry(seq=seq, action=action, payload="{}", local_tx=1)
        for seq, action in enumerate(actions, 1)))


async def test_what_a_run_left_queued_is_counted_whatever_later_runs_do(tmp_path: Path) -> None:
    """Transaction messages still in the outbox at the end are neither dropped nor delivered:
    the report counts them per action. A later run empties the outbox, yet the earlier run's
    report still says what it left; a run whose process was killed shows what is queued now;
    a run for which nothing was recorded says so."""
    path = tmp_path / "lab.db"
    first = await write_run(path, [
        *fleet_events(),
        outbox(1, "A", "StartTransaction", "MeterValues"),
        outbox(2, "A", "StartTransaction", "MeterValues", "MeterValues"),  # replaces A's
        outbox(3, "B", "StopTransaction"),
    ])
    left = {"MeterValues": 2, "StartTransaction": 1, "StopTransaction": 1}
    report = summarize(path)
    assert (report.messages_queued, report.queued_by_action) == (4, left)
    assert ("messages dropped 1   still queued 4 (MeterValues 2, StartTransaction 1,"
            " StopTransaction 1)") in render_text(report)
    assert json.loads(render_json(report))["queued_by_action"] == left

    killed = await write_run(path, [outbox(1, "A", "StopTransaction")], finish=False)
    assert summarize(path, first).queued_by_action == left
    now = summarize(path, killed)
    assert (now.status, now.messages_queued, now.queued_by_action) == (
        "running", 1, {"StopTransaction": 1})
    await write_run(path, [])
    assert summarize(path, killed).queued_by_action == {"StopTransaction": 1}
    assert "still queued 0" in render_text(summarize(path))

    with sqlite3.connect(path) as conn:  # as a run ended by a version that did not record it
        conn.execute("UPDATE runs SET summary = NULL WHERE id = ?", (first,))
    unknown = summarize(path, first)
    assert (unknown.messages_queued, unknown.queued_by_action) == (None, {})
    assert "still queued (not recorded)" in render_text(unknown)


def test_report_errors_are_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(ReportError, match=re.escape("missing.db: no such ledger file")):
        summarize(missing)

    text = tmp_path / "notes.txt"
    text.write_text("not a database at all\n" * 200)
    expected = re.escape("notes.txt: not a readable simulator ledger")
    with pytest.raises(ReportError, match=expected) as info:
        summarize(text)
    assert "\n" not in str(info.value)

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE things (x)")
    conn.close()
    with pytest.raises(ReportError, match=re.escape("other.db: not a simulator ledger")):
        summarize(other)

    empty = tmp_path / "empty.db"
    Ledger.open(empty).close()
    with pytest.raises(ReportError, match=re.escape("empty.db: the ledger has no runs")):
        summarize(empty)
    assert isinstance(ReportError("x"), ValueError)  # what the CLI catches for exit code 2


async def test_unknown_run_id(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    await write_run(path, [])
    with pytest.raises(ReportError, match=re.escape("lab.db: the ledger has no run with id 7")):
        summarize(path, 7)


# --- rendering ----------------------------------------------------------------------------------


async def test_render_json_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    await write_run(path, fleet_events())
    report = summarize(path)
    decoded = json.loads(render_json(report))
    assert set(decoded) == set(Report.__struct_fields__)
    assert decoded["actions"][0]["action"] == "Authorize"
    assert decoded["call_errors_received"]["NotImplemented"] == 2
    assert msgspec.json.decode(render_json(report), type=Report) == report


async def test_render_text_shows_the_table_and_the_totals(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    await write_run(path, fleet_events())
    text = render_text(summarize(path))
    lines = text.splitlines()
    assert lines[0].startswith("Run 1 'lab' in ") and lines[0].endswith("completed (exit code -)")
    assert f"config sha256 {'cd' * 32}" in text and "seed 42" in text
    (boot,) = [line for line in lines if line.startswith("BootNotification")]
    # sent recv results err-in err-out timeouts p50 p95 p99 max (ms)
    assert boot.split()[1:] == ["10", "0", "10", "0", "0", "0", "550.0", "955.0", "991.0",
                                "1000.0"]
    (reset,) = [line for line in lines if line.startswith("Reset")]
    assert reset.split()[1:] == ["0", "2", "0", "0", "1", "0", "-", "-", "-", "-"]
    assert "CALLERRORs received: FormationViolation 1, NotImplemented 2, (unreadable) 1" in text
    assert "CALLERRORs sent:     NotSupported 1" in text
    assert "transactions: started 2, acknowledged 2 (1 accepted), stopped 1, open 1" in text
    assert "reconnects 3" in text and "crashes 1" in text
    assert "faults injected: disconnect 2, latency 1" in text
    header = next(line for line in lines if line.startswith("action"))
    assert len({len(line) for line in (header, boot)}) == 1  # the columns line up


async def test_names_from_outside_are_shown_short_and_printable(tmp_path: Path) -> None:
    """A central system's 1,000-character action name or error code, or one with control
    characters, takes one short cell of the text report (the JSON keeps it whole)."""
    path = tmp_path / "lab.db"
    action, code = "Z" * 1000, "Bad\nCode" + "x" * 200
    await write_run(path, [
        FrameIn(t=T0 + 1, charger="A", raw="[2]", message_type=2, unique_id="q1", action=action),
        FrameOut(t=T0 + 1, charger="A", raw=call_error(code), message_type=4, unique_id="q1",
                 action=action),
        FrameOut(t=T0 + 2, charger="A", raw="[2]", message_type=2, unique_id="h1",
                 action="Heartbeat"),
        FrameIn(t=T0 + 2.1, charger="A", raw=call_error(code), message_type=4, unique_id="h1",
                action="Heartbeat", latency=0.1),
    ])
    report = summarize(path)
    text = render_text(report)
    assert max(len(line) for line in text.splitlines()) < 160
    assert ("Z" * (MAX_SHOWN - 1) + "…") in text and "Z" * MAX_SHOWN not in text
    assert "Bad\\nCode" in text and "Bad\nCode" not in text
    assert any(a.action == action for a in report.actions)


async def test_render_text_of_an_empty_run(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    await write_run(path, [])
    text = render_text(summarize(path))
    assert "no frames recorded" in text
    assert "CALLERRORs received: none" in text


async def test_seconds_in_which_the_simulator_lagged_are_counted_and_flagged(
    tmp_path: Path,
) -> None:
    """A run whose own event loop ran late says for how long and how late: its latencies then
    include the simulator's delay. A stall longer than a second counts whole. A run with the
    probe and no such second says the loop was on time; one without a probe says so too."""
    unprobed, quiet, busy = tmp_path / "unprobed.db", tmp_path / "quiet.db", tmp_path / "busy.db"
    await write_run(unprobed, fleet_events())
    await write_run(quiet, fleet_events())
    with sqlite3.connect(quiet) as conn:  # as run_simulation stores it when its probe ran
        conn.execute("UPDATE runs SET summary = ?", (json.dumps({"loop_lag_probe": True}),))
    lagged = [LoopLagged(t=T0 + 1, max=0.031, mean=0.01, samples=10, probe_interval=0.1),
              LoopLagged(t=T0 + 6, max=4.2125, mean=4.2125, samples=1, probe_interval=0.1,
                         period=4.5),  # one stall of 4.2 s: all of it counts
              LoopLagged(t=T0 + 7, max=0.05, mean=0.02, samples=10, probe_interval=0.1)]
    await write_run(busy, [*fleet_events(), *lagged])
    none = summarize(unprobed)
    assert (none.loop_lag_measured, none.loop_lagged_s, none.loop_lag_max_ms) == (
        False, 0.0, None)
    assert "simulator event loop: not measured" in render_text(none)
    calm = summarize(quiet)
    assert (calm.loop_lag_measured, calm.loop_lagged_s, calm.loop_lag_max_ms) == (
        True, 0.0, None)
    assert "simulator event loop: on time" in render_text(calm)
    report = summarize(busy)
    assert (report.loop_lag_measured, report.loop_lagged_s, report.loop_lag_max_ms) == (
        True, 6.5, 4212.5)
    assert ("simulator event loop: late in 6.5 s of the run, by up to 4212.5 ms: latencies then"
            " include the simulator's own delay") in render_text(report)
    assert json.loads(render_json(report))["loop_lag_max_ms"] == 4212.5
