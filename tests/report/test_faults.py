"""The report pairs each injected fault with what the central system did next for its charger:
the first frame it sent, the CALLERRORs, and the time to be back (connected, boot Accepted) when
the fault took the connection down."""

from __future__ import annotations

import json
from pathlib import Path

from simulator.events import (
    BootResult,
    Connected,
    Disconnected,
    FaultInjected,
    FrameIn,
    FrameOut,
)
from simulator.ledger import RunStatus, finish_run
from simulator.report import (
    CLOCK_ORIGIN_SUMMARY_KEY,
    FaultEffect,
    render_json,
    render_text,
    summarize,
)
from tests.report.helpers import T0, write_run


async def test_each_fault_is_paired_with_the_csms_s_next_moves(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    rid = await write_run(path, [
        FaultInjected(t=T0 + 10, charger="A", fault="unknown_action", family="protocol",
                      injection="i1", deliberate=True),
        FrameOut(t=T0 + 10, charger="A", raw='[2, "u1", "Nope", {}]', message_type=2,
                 unique_id="u1", action="Nope", fault="unknown_action", injection="i1"),
        FrameIn(t=T0 + 10.5, charger="A", raw=json.dumps([4, "u1", "NotImplemented", "", {}]),
                message_type=4, unique_id="u1"),
        FrameIn(t=T0 + 11, charger="A", raw=json.dumps([4, "u9", "GenericError", "", {}]),
                message_type=4, unique_id="u9"),
        FaultInjected(t=T0 + 20, charger="B", fault="partition", family="transport",
                      injection="i2", until=T0 + 50),
        Disconnected(t=T0 + 20, charger="B", code=1006),
        Connected(t=T0 + 52, charger="B", url="ws://cs"),
        FrameOut(t=T0 + 52.1, charger="B", raw="[2]", message_type=2, unique_id="b",
                 action="BootNotification"),
        FrameIn(t=T0 + 53, charger="B", raw='[3, "b", {}]', message_type=3, unique_id="b",
                action="BootNotification", latency=0.9),
        BootResult(t=T0 + 53, charger="B", status="Accepted", interval=60),
        FaultInjected(t=T0 + 60, charger="A", fault="reset", family="transport", injection="i3"),
        Disconnected(t=T0 + 60, charger="A", code=1006),
    ], finish=False)
    finish_run(path, rid, RunStatus.COMPLETED, 0, {CLOCK_ORIGIN_SUMMARY_KEY: T0})
    report = summarize(path)
    assert report.fault_effects == (
        FaultEffect(fault="unknown_action", charger="A", connector=None, injection="i1",
                    deliberate=True, t_s=10.0, until_s=None,
                    first_reply="CALLERROR NotImplemented", first_reply_after_s=0.5, errors=2,
                    disconnected=False, recovered_after_s=None),
        FaultEffect(fault="partition", charger="B", connector=None, injection="i2",
                    deliberate=False, t_s=20.0, until_s=50.0,
                    first_reply="CALLRESULT BootNotification", first_reply_after_s=33.0,
                    errors=0, disconnected=True, recovered_after_s=3.0),
        FaultEffect(fault="reset", charger="A", connector=None, injection="i3",
                    deliberate=False, t_s=60.0, until_s=None, first_reply=None,
                    first_reply_after_s=None, errors=0, disconnected=True,
                    recovered_after_s=None),
    )
    text = render_text(report)
    assert "faults and what the central system did next (3 injected):" in text
    assert ("  partition 1: answered 1 (first frame 33.0 s median, 33.0 s at worst after),"
            " CALLERRORs 0, disconnected 1, back 1 (3.0 s median, 3.0 s at worst after the"
            " fault ended)") in text
    assert ("  10.0 s unknown_action on A: first frame CALLERROR NotImplemented after 0.5 s,"
            " CALLERRORs 2 (deliberate)") in text
    assert ("  60.0 s reset on A: no frame after it, CALLERRORs 0; disconnected, not back by the"
            " end") in text
    assert json.loads(render_json(report))["fault_effects"][1]["recovered_after_s"] == 3.0


async def test_without_a_stored_clock_origin_recovery_counts_from_the_injection(
    tmp_path: Path,
) -> None:
    path = tmp_path / "killed.db"
    await write_run(path, [
        FaultInjected(t=T0 + 20, charger="B", fault="partition", until=T0 + 50),
        Disconnected(t=T0 + 20, charger="B"),
        Connected(t=T0 + 52, charger="B", url="ws://cs"),
    ], finish=False)
    [effect] = summarize(path).fault_effects
    assert (effect.until_s, effect.recovered_after_s) == (None, 32.0)
    assert summarize(path).verdicts is None


async def test_a_protocol_fault_is_paired_with_the_answer_to_the_frame_it_broke(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lab.db"
    rid = await write_run(path, [
        FaultInjected(t=T0 + 10, charger="A", fault="unknown_action", injection="i1",
                      deliberate=True),
        FrameIn(t=T0 + 11, charger="A", raw='[3, "h", {}]', message_type=3, unique_id="h",
                action="Heartbeat", latency=0.1),  # an answer to something else
        FrameOut(t=T0 + 20, charger="A", raw='[2, "u1", "Nope", {}]', message_type=2,
                 unique_id="u1", action="Nope", fault="unknown_action", injection="i1"),
        FrameIn(t=T0 + 20.4, charger="A", raw=json.dumps([4, "u1", "NotImplemented", "", {}]),
                message_type=4, unique_id="u1"),
        # B is back when its partition ends; a crash later brings a new connection and a new
        # boot (no disconnection recorded): that boot is not the partition's recovery.
        FaultInjected(t=T0 + 20, charger="B", fault="partition", injection="i2", until=T0 + 50),
        Disconnected(t=T0 + 20, charger="B", code=1000),
        Connected(t=T0 + 50, charger="B", url="ws://cs"),
        Connected(t=T0 + 90, charger="B", url="ws://cs"),
        FrameOut(t=T0 + 90.1, charger="B", raw="[2]", message_type=2, unique_id="b",
                 action="BootNotification"),
        BootResult(t=T0 + 90.2, charger="B", status="Accepted", interval=60),
    ], finish=False)
    finish_run(path, rid, RunStatus.COMPLETED, 0, {CLOCK_ORIGIN_SUMMARY_KEY: T0})
    broken, partition = summarize(path).fault_effects
    assert (broken.first_reply, broken.first_reply_after_s) == ("CALLERROR NotImplemented", 0.4)
    assert (partition.disconnected, partition.recovered_after_s) == (True, 0.0)


async def test_errors_count_up_to_the_answer_when_the_broken_frame_went_out_later(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lab.db"
    await write_run(path, [
        FaultInjected(t=T0 + 10, charger="A", fault="unknown_action", injection="i1"),
        FaultInjected(t=T0 + 11, charger="A", fault="latency", injection="i2"),
        FrameOut(t=T0 + 20, charger="A", raw='[2, "u1", "Nope", {}]', message_type=2,
                 unique_id="u1", action="Nope", fault="unknown_action", injection="i1"),
        FrameIn(t=T0 + 20.4, charger="A", raw=json.dumps([4, "u1", "NotImplemented", "", {}]),
                message_type=4, unique_id="u1"),
    ])
    first, second = summarize(path).fault_effects
    assert (first.first_reply, first.errors) == ("CALLERROR NotImplemented", 1)
    assert (second.first_reply, second.errors) == ("CALLERROR NotImplemented", 1)
