"""Protocol faults in the charger actor, against the embedded CSMS (``simulator.csms``: its server
and core, the real WebSocket client and server over in-memory streams) on trio's autojump clock.

Each test injects faults through the charger's control as the director does, then reads the
bytes that went on the wire twice: as the charger recorded them (``frame_out``, naming the fault)
and as the CSMS received them (``csms_frame_in``), and what the CSMS answered (``csms_frame_out``
and the charger's ``frame_in``). The charger must keep running: no crash, heartbeats answered
after the fault.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import msgspec
import pytest
import trio
import trio.testing

from simulator import seeds
from simulator.actors.charger import ChargerControl, ChargerEnv, run_charger
from simulator.actors.link import Backoff
from simulator.actors.streams import memory_connector
from simulator.actors.transport import open_transport, trio_websocket_client
from simulator.chaos.catalog import Family
from simulator.chaos.injection import Injection, Scalar
from simulator.csms.core import CentralSystem
from simulator.csms.options import CsmsOptions
from simulator.csms.records import CallOutcome
from simulator.csms.server import CsmsServer
from simulator.events import (
    Crashed,
    CsmsFrameIn,
    CsmsFrameOut,
    CsmsNote,
    Disconnected,
    FrameIn,
    FrameOut,
    UnmatchedResult,
)
from simulator.machines.charger import ChargerSpec
from simulator.machines.domain import SetFault
from simulator.ocpp.v16 import (
    PLUGIN,
    ChargePointErrorCode,
    GetConfigurationRequest,
    ReserveNowRequest,
)
from tests.actors.test_charger_actor import WALL_EPOCH, Recorder

URL: Final = "ws://embedded.virtual/ocpp"
HEARTBEAT: Final = 10
FAULT_AT: Final = 12.0
"""Injections take effect here: after the boot and the first heartbeat (at 10 s)."""


class Lab:
    """One charger and the embedded CSMS, both recording into one :class:`Recorder`."""

    def __init__(self, nursery: trio.Nursery, recorder: Recorder) -> None:
        self.nursery = nursery
        self.recorder = recorder
        self.core = CentralSystem(CsmsOptions(heartbeat_interval=HEARTBEAT),
                                  wall_epoch=WALL_EPOCH,
                                  new_id=seeds.uuid_ids(seeds.derive(5, "csms")))
        self.server = CsmsServer(self.core, publish=recorder.publish)
        self.control: ChargerControl = recorder.control("CP-1")
        self.outcomes: list[CallOutcome] = []

    async def inject(self, fault: str, *, injection_id: str = "0.0", **params: Scalar) -> None:
        await self.control.inject(Injection(
            id=injection_id, fault=fault, family=Family.PROTOCOL, at=trio.current_time(),
            params={"count": 1, **params}, deliberate=True,
        ))

    async def csms_calls(self, request: msgspec.Struct, *, wait: float = 30.0) -> None:
        """The CSMS sends ``request`` to the charger; its outcome goes to ``outcomes``."""
        self.outcomes.append(await self.server.call("CP-1", request, wait=wait))

    def faulted(self, fault: str) -> list[FrameOut]:
        return [e for e in self.recorder.of(FrameOut) if e.fault == fault]

    def received(self) -> list[str]:
        return [e.raw for e in self.recorder.of(CsmsFrameIn)]

    def answers(self, unique_id: str) -> list[list[Any]]:
        """The CSMS's frames with ``unique_id`` (the answers to the charger's CALL of it)."""
        frames = [json.loads(e.raw) for e in self.recorder.of(CsmsFrameOut)]
        return [f for f in frames if f[1] == unique_id]

    def answered_heartbeats_after(self, t: float) -> int:
        return sum(1 for e in self.recorder.of(FrameIn)
                   if e.action == "Heartbeat" and e.t > t and not e.violations)


@asynccontextmanager
async def lab(profiles: tuple[str, ...] | None = None) -> AsyncIterator[Lab]:
    """The charger (implementing ``profiles``; None: all) booted against the embedded CSMS; at
    the block's end the charger shuts down (it must still be running then) and nothing may have
    crashed."""
    recorder = Recorder()
    async with trio.open_nursery() as nursery:
        the_lab = Lab(nursery, recorder)
        connect = memory_connector(the_lab.server.serve_stream)
        spec = ChargerSpec(identity="CP-1", vendor="Acme", model="AC22", connectors=1,
                           max_power_kw=22, config={"HeartbeatInterval": HEARTBEAT},
                           profiles=profiles)
        env = ChargerEnv(
            spec=spec, seed=7, url=URL,
            open_transport=functools.partial(
                lambda url, identity: open_transport(url, identity, plugin=PLUGIN,
                                                     client=trio_websocket_client,
                                                     connect_stream=connect),
                URL,
            ),
            publish=recorder.publish, persist=recorder.persist, wall_epoch=WALL_EPOCH,
            backoff=Backoff(base=1.0, cap=5.0),
        )
        nursery.start_soon(run_charger, env, the_lab.control)
        await trio.sleep(FAULT_AT)
        assert the_lab.control.connected
        yield the_lab
        assert not recorder.of(Crashed)
        assert not the_lab.control.done.is_set()
        await the_lab.control.shutdown(trio.current_time() + 5)
        await the_lab.control.done.wait()
        nursery.cancel_scope.cancel()


async def _heartbeat_fault(fault: str, **params: Scalar) -> tuple[Lab, FrameOut]:
    async with lab() as the_lab:
        await the_lab.inject(fault, action="Heartbeat", **params)
        await trio.sleep(7 * HEARTBEAT)  # past the response timeout of a CALL left unanswered
        (frame,) = the_lab.faulted(fault)
        assert frame.raw in the_lab.received()  # what the CSMS got is what the charger recorded
        assert frame.injection == "0.0"
        assert the_lab.answered_heartbeats_after(frame.t) >= 1  # the charger goes on
    return the_lab, frame


# --- the wire, fault by fault ------------------------------------------------------------------


async def test_unknown_action_is_answered_not_implemented_and_recorded_unmatched(
    autojump_clock: trio.testing.MockClock,
) -> None:
    the_lab, frame = await _heartbeat_fault("unknown_action")
    assert json.loads(frame.raw)[2:] == ["UnknownAction", {}]
    ((_, _, code, _, _),) = the_lab.answers(frame.unique_id or "")
    assert code == "NotImplemented"
    unmatched = the_lab.recorder.of(UnmatchedResult)
    assert [(u.unique_id, u.message_type) for u in unmatched] == [(frame.unique_id, 4)]


async def test_overlong_id_is_answered_type_constraint_violation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    the_lab, frame = await _heartbeat_fault("overlong_id", length=40)
    wire = json.loads(frame.raw)
    assert len(wire[1]) == 40 and frame.unique_id == wire[1]
    ((_, _, code, _, _),) = the_lab.answers(wire[1])
    assert code == "TypeConstraintViolation"
    # the charger cannot take an answer under a 40-character id: it records it as broken, and
    # its Heartbeat (under its own id) times out and is dropped
    broken = [e for e in the_lab.recorder.of(FrameIn) if e.unique_id == wire[1]]
    assert broken and broken[0].violations


async def test_malformed_json_goes_out_as_it_was_broken(
    autojump_clock: trio.testing.MockClock,
) -> None:
    the_lab, frame = await _heartbeat_fault("malformed_json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(frame.raw)
    (seen,) = [e for e in the_lab.recorder.of(CsmsFrameIn) if e.raw == frame.raw]
    assert seen.violations and seen.violations[0].startswith("not valid JSON")


async def test_duplicate_id_reaches_the_csms_as_a_reused_id(
    autojump_clock: trio.testing.MockClock,
) -> None:
    the_lab, frame = await _heartbeat_fault("duplicate_id")
    calls = [json.loads(raw) for raw in the_lab.received() if raw.startswith("[2,")]
    ids = [c[1] for c in calls]
    assert ids.count(frame.unique_id) == 2
    notes = [e.data for e in the_lab.recorder.of(CsmsNote) if e.what == "anomaly"]
    assert [d["anomaly"] for d in notes] == ["duplicate_message_id"]
    # answered under the reused id, which the session no longer waits for: recorded unmatched
    assert frame.unique_id in {u.unique_id for u in the_lab.recorder.of(UnmatchedResult)}


async def test_late_result_reaches_the_csms_its_delay_later(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with lab() as the_lab:
        await the_lab.inject("late_result", delay=7.5)
        asked = trio.current_time()
        await the_lab.csms_calls(GetConfigurationRequest(key=("HeartbeatInterval",)))
        (frame,) = the_lab.faulted("late_result")
        assert frame.t == pytest.approx(asked + 7.5, abs=0.01)
    (outcome,) = the_lab.outcomes
    assert outcome.error_code is None and outcome.latency == pytest.approx(7.5, abs=0.01)


async def test_wrong_id_result_leaves_the_csms_call_unanswered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with lab() as the_lab:
        await the_lab.inject("wrong_id_result")
        await the_lab.csms_calls(GetConfigurationRequest(), wait=10.0)
        (frame,) = the_lab.faulted("wrong_id_result")
    (outcome,) = the_lab.outcomes
    assert outcome.error_code == "Timeout" and frame.unique_id != outcome.unique_id
    assert [a.kind for a in the_lab.core.anomalies("CP-1")] == ["unsolicited_result"]


async def test_error_code_spelling_in_the_callerror_for_an_unsupported_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with lab(profiles=("Core",)) as the_lab:  # no Reservation: NotSupported
        await the_lab.inject("error_code_spelling", code="FormatViolation")
        expiry = dt.datetime.fromtimestamp(WALL_EPOCH + 3600, dt.UTC)
        await the_lab.csms_calls(ReserveNowRequest(connector_id=1, expiry_date=expiry,
                                                   id_tag="TAG-1", reservation_id=1))
        (frame,) = the_lab.faulted("error_code_spelling")
    assert json.loads(frame.raw)[2] == "FormatViolation"
    (outcome,) = the_lab.outcomes
    assert outcome.error_code == "FormatViolation"


async def test_oversize_payload_is_closed_1009_and_the_charger_reconnects(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with lab() as the_lab:
        await the_lab.inject("oversize_payload", action="Heartbeat", bytes=2 * 1024 * 1024)
        await trio.sleep(4 * HEARTBEAT)
        (frame,) = the_lab.faulted("oversize_payload")
        assert len(frame.raw) > 2 * 1024 * 1024
        assert the_lab.control.connected
    assert [d.code for d in the_lab.recorder.of(Disconnected)] == [1009]
    assert the_lab.answered_heartbeats_after(frame.t) >= 1


# --- what the embedded CSMS answers a broken CALL with ------------------------------------------


@pytest.mark.parametrize(("kind", "code"), [
    ("missing_field", "OccurenceConstraintViolation"),
    ("wrong_type", "TypeConstraintViolation"),
    ("bad_enum", "PropertyConstraintViolation"),
    ("extra_property", "FormationViolation"),
    ("overlong_string", "TypeConstraintViolation"),
])
async def test_schema_violation_is_answered_with_the_code_the_spec_names(
    autojump_clock: trio.testing.MockClock, kind: str, code: str,
) -> None:
    async with lab() as the_lab:
        await the_lab.inject("schema_violation", kind=kind, action="StatusNotification")
        await the_lab.control.request(SetFault(1, ChargePointErrorCode.GROUND_FAILURE))
        await trio.sleep(2 * HEARTBEAT)
        (frame,) = the_lab.faulted("schema_violation")
        assert frame.raw in the_lab.received()
        assert the_lab.answered_heartbeats_after(frame.t) >= 1
    ((_, _, answered, _, _),) = the_lab.answers(frame.unique_id or "")
    assert answered == code
    # the CALLERROR settled the session's own StatusNotification (same id): not unmatched
    assert not the_lab.recorder.of(UnmatchedResult)


async def test_added_frames_are_answered_or_ignored_as_the_spec_says(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with lab() as the_lab:
        await the_lab.inject("concurrent_call", injection_id="c", action="Heartbeat",
                             action_name="Authorize")
        await the_lab.inject("unsolicited_result", injection_id="u", action="Heartbeat")
        await the_lab.inject("bad_message_type", injection_id="b", action="Heartbeat")
        await trio.sleep(4 * HEARTBEAT)
        (concurrent,) = the_lab.faulted("concurrent_call")
        (unsolicited,) = the_lab.faulted("unsolicited_result")
        (bad_type,) = the_lab.faulted("bad_message_type")
    # the added Authorize is answered (a CALLRESULT), recorded unmatched by the charger
    ((answer_type, _, payload),) = the_lab.answers(concurrent.unique_id or "")
    assert answer_type == 3 and "idTagInfo" in payload
    unmatched = {u.unique_id for u in the_lab.recorder.of(UnmatchedResult)}
    assert concurrent.unique_id in unmatched
    # a result nobody asked for and a frame of type 7 are not answered (OCPP-J: ignored)
    assert the_lab.answers(unsolicited.unique_id or "") == []
    assert the_lab.answers(bad_type.unique_id or "") == []
    assert "unsolicited_result" in {a.kind for a in the_lab.core.anomalies("CP-1")}
