"""The built-in checks over small ledgers written through the real writer (events published as
the chargers publish them; fault events as the director will): each passes on a CSMS that did
right, fails with the numbers that decided it otherwise, and holds no deliberate fault against
the CSMS."""

from __future__ import annotations

import json
from pathlib import Path

from simulator.config import Expect
from simulator.events import (
    CRASH_NOTE,
    BootResult,
    Connected,
    Disconnected,
    Event,
    FaultInjected,
    FrameIn,
    FrameOut,
    Note,
    TransactionAcknowledged,
    TransactionStarted,
)
from simulator.ledger import RunStatus, finish_run
from simulator.report import CLOCK_ORIGIN_SUMMARY_KEY, Verdict
from simulator.verdicts import judge
from tests.report.helpers import T0, fleet, write_run


def expect(check: str, **params: str | int | float | bool) -> Expect:
    return Expect(check=check, params=params)


async def verdicts(path: Path, events: list[Event], *expectations: Expect,
                   config: str | None = None) -> list[Verdict]:
    """Write ``events`` as a run (its clock origin stored as the runtime stores it) and judge
    it."""
    rid = await write_run(path, events, config=config, finish=False)
    finish_run(path, rid, RunStatus.COMPLETED, 0, {CLOCK_ORIGIN_SUMMARY_KEY: T0})
    return list(judge(path, rid, expectations=expectations))


def call(t: float, charger: str, uid: str, action: str, payload: object,
         fault: str | None = None) -> FrameOut:
    return FrameOut(t=T0 + t, charger=charger, raw=json.dumps([2, uid, action, payload]),
                    message_type=2, unique_id=uid, action=action, fault=fault)


def result(t: float, charger: str, uid: str, action: str | None, payload: object,
           latency: float | None = None, violations: list[str] | None = None) -> FrameIn:
    return FrameIn(t=T0 + t, charger=charger, raw=json.dumps([3, uid, payload]), message_type=3,
                   unique_id=uid, action=action, latency=latency, violations=violations or [])


def error(t: float, charger: str, uid: str, code: str) -> FrameIn:
    return FrameIn(t=T0 + t, charger=charger, raw=json.dumps([4, uid, code, "", {}]),
                   message_type=4, unique_id=uid)


def transaction(t: float, charger: str, local_id: int, transaction_id: int | None,
                stops_answered: int = 1) -> list[Event]:
    """A transaction started at ``t``, acknowledged with ``transaction_id`` (None: never), its
    StopTransaction answered ``stops_answered`` times."""
    events: list[Event] = [TransactionStarted(t=T0 + t, charger=charger, connector=1,
                                              id_tag="TAG", meter_start=0, local_id=local_id)]
    if transaction_id is None:
        return events
    events.append(TransactionAcknowledged(t=T0 + t + 0.1, charger=charger, local_id=local_id,
                                          transaction_id=transaction_id, status="Accepted"))
    for n in range(max(1, stops_answered)):
        uid = f"{charger}-stop-{local_id}-{n}"
        events.append(call(t + 10 + n, charger, uid, "StopTransaction",
                           {"transactionId": transaction_id, "meterStop": 10,
                            "timestamp": "2026-01-01T00:00:00Z"}))
        if stops_answered:
            events.append(result(t + 10.2 + n, charger, uid, "StopTransaction", {}, 0.2))
    return events


async def test_no_lost_transactions_passes_when_each_was_stopped_once(tmp_path: Path) -> None:
    [verdict] = await verdicts(tmp_path / "a.db", [*transaction(1, "A", 1, 11),
                                                   *transaction(2, "B", 1, 12)],
                               expect("no_lost_transactions"))
    assert verdict.passed
    assert verdict.measured == "2 transaction(s): 2 stopped at the central system once"


async def test_no_lost_transactions_names_the_lost_and_the_twice_stopped(tmp_path: Path) -> None:
    [verdict] = await verdicts(tmp_path / "a.db", [
        *transaction(1, "A", 1, 11),
        *transaction(2, "A", 2, 12, stops_answered=0),
        *transaction(3, "B", 1, None),
        *transaction(4, "B", 2, 14, stops_answered=2),
    ], expect("no_lost_transactions"))
    assert not verdict.passed
    assert verdict.measured == (
        "4 transaction(s): 1 stopped at the central system once,"
        " 2 lost (A #2 (id 12) never stopped; B #1 never acknowledged),"
        " 1 stopped more than once (B #2 (id 14) stopped 2 times)")


async def test_a_deliberate_fault_is_not_held_against_the_csms(tmp_path: Path) -> None:
    [verdict] = await verdicts(tmp_path / "a.db", [
        *transaction(1, "A", 1, 11, stops_answered=2),
        FaultInjected(t=T0 + 5, charger="A", fault="duplicate_start", family="behaviour",
                      deliberate=True),
        *transaction(2, "B", 1, 12, stops_answered=0),
        call(20, "B", "bad", "StopTransaction", {"transactionId": -1}, fault="schema_violation"),
        *transaction(30, "B", 2, 13, stops_answered=0),
        FaultInjected(t=T0 + 31, charger="B", fault="latency", family="transport"),
    ], expect("no_lost_transactions"))
    assert not verdict.passed  # B #2 was only slowed down: not deliberate, still lost
    assert verdict.measured == (
        "3 transaction(s): 0 stopped at the central system once,"
        " 1 lost (B #2 (id 13) never stopped), 2 touched by deliberate faults, not held against"
        " it")


async def test_latency_compares_each_percentile_with_its_bound(tmp_path: Path) -> None:
    events: list[Event] = []
    for n in range(1, 11):  # 0.1 s .. 1.0 s
        events += [call(n, "A", f"b{n}", "BootNotification", {}),
                   result(n + n / 10, "A", f"b{n}", "BootNotification", {}, latency=n / 10)]
    passed, failed, absent = await verdicts(
        tmp_path / "a.db", events,
        expect("latency", action="BootNotification", p50="600ms", p95=1),
        expect("latency", action="BootNotification", p50="500ms", p99="2s"),
        expect("latency", action="Heartbeat", p95="1s"))
    assert passed.passed and passed.measured == (
        "p50 550 ms <= 600 ms, p95 955 ms <= 1.00 s over 10 BootNotification answer(s)")
    assert not failed.passed and failed.measured.startswith("p50 550 ms > 500 ms, p99 991 ms")
    assert not absent.passed and "no answer to a Heartbeat" in absent.measured


async def test_schema_clean_by_the_simulators_decoding_and_by_the_official_schemas(
    tmp_path: Path,
) -> None:
    events: list[Event] = [
        call(1, "A", "h1", "Heartbeat", {}),
        result(1.1, "A", "h1", "Heartbeat", {"currentTime": "2026-01-01T00:00:00Z"}),
        call(2, "A", "h2", "Heartbeat", {}),
        result(2.1, "A", "h2", "Heartbeat", {"currentTime": "yesterday"}),  # our decoding misses
    ]
    [lenient] = await verdicts(tmp_path / "a.db", events, expect("schema_clean"))
    assert lenient.passed and "validate_csms = true adds the official schemas" in lenient.measured
    official = fleet().replace('time = "real"', 'time = "real"\nvalidate_csms = true')
    [strict] = await verdicts(tmp_path / "b.db", events, expect("schema_clean"), config=official)
    assert not strict.passed
    assert strict.measured.startswith(
        "1 of 2 frame(s) from the central system broke the official 1.6 schemas and the"
        " simulator's decoding: CALLRESULT Heartbeat at 2.1 s to A: currentTime: 'yesterday'")
    [decoded] = await verdicts(tmp_path / "c.db", [
        *events[:2], result(3, "B", "x", "Heartbeat", {}, violations=["currentTime: missing"])],
        expect("schema_clean"))
    assert not decoded.passed and "to B: currentTime: missing" in decoded.measured


async def test_error_codes_wants_the_code_the_spec_names_within_the_bound(tmp_path: Path) -> None:
    events: list[Event] = [
        call(1, "A", "u1", "NoSuchAction", {}, fault="unknown_action"),
        error(1.2, "A", "u1", "NotImplemented"),
        call(2, "A", "u2", "NoSuchAction", {}, fault="unknown_action"),
        error(2.2, "A", "u2", "NotSupported"),  # the ocpp library's spelling of it
        call(3, "B", "u3", "Authorize", {"idTag": 5}, fault="schema_violation"),
        error(50, "B", "u3", "TypeConstraintViolation"),  # right code, too late
        call(4, "B", "u4", "Authorize", {}, fault="schema_violation"),  # never answered
        FrameOut(t=T0 + 5, charger="B", raw='[7, "u5", "Heartbeat", {}]', message_type=7,
                 unique_id="u5", fault="bad_message_type"),  # to be ignored: not judged
    ]
    [judged, lenient] = await verdicts(tmp_path / "a.db", events, expect("error_codes"),
                                       expect("error_codes", within="1m"))
    assert not judged.passed
    assert judged.measured == (
        "1 of 4 deliberately broken frame(s) answered with the CALLERROR the spec names within"
        " 30.00 s (1 other broken frame(s) call for no CALLERROR);"
        " unknown_action at 2.0 s on A: NotSupported, expected NotImplemented;"
        " schema_violation at 3.0 s on B: TypeConstraintViolation after 47.00 s, later than"
        " 30.00 s; schema_violation at 4.0 s on B: no answer, expected"
        " OccurenceConstraintViolation")
    assert lenient.measured.startswith("2 of 4")


async def test_max_errors_counts_what_the_csms_was_not_provoked_into(tmp_path: Path) -> None:
    events: list[Event] = [
        call(1, "A", "u1", "NoSuchAction", {}, fault="unknown_action"),
        error(1.2, "A", "u1", "NotImplemented"),  # provoked: not counted
        call(2, "A", "a1", "Authorize", {"idTag": "T"}),
        error(2.2, "A", "a1", "InternalError"),
        call(3, "B", "a2", "Authorize", {"idTag": "T"}),
        error(3.2, "B", "a2", "NotImplemented"),
    ]
    none, one, internal = await verdicts(
        tmp_path / "a.db", events, expect("max_errors"), expect("max_errors", max=2),
        expect("max_errors", code="InternalError", max=1))
    assert not none.passed and none.measured == (
        "2 CALLERROR(s) received (InternalError 1, NotImplemented 1), at most 0 allowed;"
        " 1 more answered deliberately broken frames, not counted")
    assert one.passed
    assert internal.passed and internal.measured == (
        "1 InternalError CALLERROR(s) received, at most 1 allowed")


async def test_boot_accepted_counts_every_charger_of_the_fleet(tmp_path: Path) -> None:
    events: list[Event] = [BootResult(t=T0 + 1, charger="A", status="Accepted", interval=60),
                           BootResult(t=T0 + 1, charger="B", status="Rejected", interval=60)]
    everyone, half = await verdicts(tmp_path / "a.db", events, expect("boot_accepted"),
                                    expect("boot_accepted", min=0.5))
    assert not everyone.passed and everyone.measured == (
        "1 of 2 charger(s) had a boot Accepted (50%, at least 100% needed); not accepted: B")
    assert half.passed


def outage(t: float, charger: str, lasting: float, back_after: float | None,
           boot: str | None = "Accepted") -> list[Event]:
    """A partition of ``charger`` at ``t`` for ``lasting`` seconds; back ``back_after`` seconds
    after it ended (None: never), with a boot answered ``boot`` (None: no boot sent)."""
    end = t + lasting
    events: list[Event] = [
        FaultInjected(t=T0 + t, charger=charger, fault="partition", family="transport",
                      until=T0 + end),
        Disconnected(t=T0 + t, charger=charger, code=1006),
    ]
    if back_after is not None:
        events.append(Connected(t=T0 + end + back_after, charger=charger, url="ws://cs"))
        if boot is not None:
            events += [call(end + back_after + 0.1, charger, f"boot-{t}", "BootNotification", {}),
                       BootResult(t=T0 + end + back_after + 0.3, charger=charger, status=boot,
                                  interval=60)]
    return events


async def test_reconnect_counts_from_the_faults_end_to_connected_and_accepted(
    tmp_path: Path,
) -> None:
    events = [*outage(10, "A", 20, 2.0), *outage(10, "B", 20, 4.0, boot=None),
              *outage(100, "A", 20, None), *outage(100, "B", 20, 1.0, boot="Pending"),
              FrameIn(t=T0 + 300, charger="A", raw="[3]")]  # the run goes on to 300 s
    strict, lenient, first = await verdicts(
        tmp_path / "a.db", events, expect("reconnect", within="10s"),
        expect("reconnect", within="10s", share=0.5), expect("reconnect", within="3s"))
    assert not strict.passed
    assert strict.measured == (
        "2 of 4 charger(s) a fault disconnected were back and Accepted within 10.00 s (50%, at"
        " least 100% needed; slowest 4.00 s); partition at 100.0 s on A: not back;"
        " partition at 100.0 s on B: not back")
    assert lenient.passed
    assert first.measured.startswith("1 of 4 charger(s)")  # B took 4 s


async def test_reconnect_does_not_judge_a_fault_the_run_ended_too_soon_after(
    tmp_path: Path,
) -> None:
    [verdict] = await verdicts(tmp_path / "a.db", outage(10, "A", 20, None),
                               expect("reconnect", within="1m"))
    assert verdict.passed and verdict.measured == (
        "no fault that could be judged took a charger's connection down (1 more ended too close"
        " to the run's end to judge)")


async def test_schema_clean_excuses_the_echo_of_a_frame_broken_on_purpose(tmp_path: Path) -> None:
    """OCPP-J has the CSMS answer an over-long id with that id: the CALLERROR then breaks the
    36-character rule because the charger's frame did, not the CSMS. The note a charger's crash
    leaves on a frame is the charger's failure, not the CSMS's either."""
    long_id = "x" * 64
    events: list[Event] = [
        call(1, "A", long_id, "Heartbeat", {}, fault="overlong_id"),
        FrameIn(t=T0 + 1.1, charger="A", raw=json.dumps([4, long_id, "TypeConstraintViolation",
                                                         "", {}]),
                message_type=4, unique_id=long_id, violations=["message id is 64 characters"]),
        result(2, "B", "h2", "Heartbeat", {"currentTime": "2026-01-01T00:00:00Z"},
               violations=[CRASH_NOTE]),
    ]
    [verdict] = await verdicts(tmp_path / "a.db", events, expect("schema_clean"))
    assert verdict.passed, verdict.measured
    [blamed] = await verdicts(tmp_path / "b.db", [  # the same answer to a frame sent as it was
        call(1, "A", long_id, "Heartbeat", {}), *events[1:]], expect("schema_clean"))
    assert not blamed.passed and "message id is 64 characters" in blamed.measured


async def test_a_one_shot_breach_is_excused_where_it_landed_not_where_it_was_injected(
    tmp_path: Path,
) -> None:
    """stale_transaction_id is injected at 5 s and breaks the next transaction message, at 40 s,
    so the transaction running then is the one it touched."""
    stale = FaultInjected(t=T0 + 5, charger="A", fault="stale_transaction_id",
                          family="behaviour", injection="0.0", deliberate=True)
    landed = Note(t=T0 + 40, charger="A", what="fault_applied",
                  data={"fault": "stale_transaction_id", "injection": "0.0"})
    twice = transaction(30, "A", 2, 12, stops_answered=2)
    [excused] = await verdicts(tmp_path / "a.db", [stale, *twice, landed],
                               expect("no_lost_transactions"))
    assert excused.passed, excused.measured
    [blamed] = await verdicts(tmp_path / "b.db", [stale, *twice], expect("no_lost_transactions"))
    assert not blamed.passed and "stopped 2 times" in blamed.measured


async def test_reconnect_times_a_disconnect_from_the_end_of_a_partition_that_held_it(
    tmp_path: Path,
) -> None:
    """A disconnect injected while a partition keeps the charger offline: the charger is back
    when the partition ends, which is not late for the disconnect."""
    partition = outage(10, "A", 600, 1.0)
    events = [*partition[:2],  # (events in time order: the ledger's order is the writer's)
              FaultInjected(t=T0 + 300, charger="A", fault="disconnect", family="transport"),
              Disconnected(t=T0 + 300, charger="A", code=1000),
              *partition[2:], FrameIn(t=T0 + 900, charger="A", raw="[3]")]
    [verdict] = await verdicts(tmp_path / "a.db", events,
                               expect("reconnect", within="10s", fault="disconnect"))
    assert verdict.passed, verdict.measured
    assert verdict.measured.startswith("1 of 1 charger(s) a disconnect fault disconnected")
