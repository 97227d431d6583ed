"""Behaviour faults handed to a running charger actor through its control's inbox, on trio's
autojump clock, against the embedded CSMS's core over memory transports: the frames on the wire."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
import trio
import trio.testing

from simulator.actors.charger import ChargerControl, run_charger
from simulator.chaos.catalog import Family
from simulator.chaos.injection import Injection
from simulator.events import Connected, Disconnected, FrameOut, FrameUnsent, Note
from simulator.machines.domain import PlugIn, PresentTag, StopCharging, Unplug
from simulator.machines.meter import EvSpec
from simulator.ocpp.v16 import GetConfigurationRequest, RemoteStartTransactionRequest
from tests.actors.test_charger_actor import (
    WALL_EPOCH,
    FakeCsms,
    Recorder,
    make_env,
    start_charging,
)
from tests.machines.pair import parse_time
from tests.oracle import ORACLE


def calls_out(recorder: Recorder) -> list[tuple[float, str, dict[str, Any]]]:
    """The CALLs the charger sent: (time, action, payload)."""
    return [(e.t, e.action, json.loads(e.raw)[3]) for e in recorder.of(FrameOut)
            if e.message_type == 2]


async def test_power_loss_and_connector_fault_reach_the_wire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    csms, recorder = FakeCsms(), Recorder()
    env = make_env(csms, recorder)
    control = recorder.control()
    async with trio.open_nursery() as nursery:
        await start_charging(nursery, csms, env, control, energy_wanted_kwh=10)  # at 2 s
        await trio.sleep(12.5)  # between two samples (every 5 s)
        cut = trio.current_time()
        await control.inject(Injection(id="0.0", fault="power_loss", family=Family.BEHAVIOUR,
                                       at=cut, params={"outage": 20.0}))
        await trio.sleep(19)
        assert not control.connected  # dark for the whole outage
        await trio.sleep(11)
        assert control.connected
        faulted = trio.current_time()
        await control.inject(Injection(
            id="1.0", fault="connector_fault", family=Family.BEHAVIOUR, at=faulted,
            until=faulted + 15, connector=2,
            params={"error_code": "GroundFailure", "info": "chaos"},
        ))
        await trio.sleep(30)
        await control.shutdown(trio.current_time() + 5)
        await control.done.wait()
        nursery.cancel_scope.cancel()

    sent = calls_out(recorder)
    for _, action, payload in sent:
        assert ORACLE.errors(action, "request", payload) == []
    unsent = {e.unique_id for e in recorder.of(FrameUnsent)}
    assert [json.loads(e.raw) for e in recorder.of(FrameOut) if e.unique_id not in unsent] == \
        [f for _, f in csms.received]

    # power_loss: the link drops at the cut and is back once the power is, after the outage
    [down] = recorder.of(Disconnected)
    assert down.t == cut
    assert [c.t for c in recorder.of(Connected)][1] == cut + 20
    boots = [i for i, (_, action, _) in enumerate(sent) if action == "BootNotification"]
    assert sent[boots[1]][0] == cut + 20
    [stop] = [p for _, action, p in sent if action == "StopTransaction"]
    [tx] = csms.core.transactions("CP-1")
    assert stop["reason"] == "PowerLoss" and stop["transactionId"] == tx.transaction_id
    after_boot = [action for _, action, _ in sent[boots[1]:]]
    assert after_boot.index("StopTransaction") < after_boot.index("Heartbeat")  # replayed
    assert not [t for t, action, _ in sent if cut < t < cut + 20]  # nothing while dark

    # connector_fault: Faulted with its code at once, cleared at its end
    reports = [(t, p["status"], p["errorCode"], p.get("info")) for t, action, p in sent
               if action == "StatusNotification" and p["connectorId"] == 2 and t >= faulted]
    assert reports == [(faulted, "Faulted", "GroundFailure", "chaos"),
                       (faulted + 15, "Available", "NoError", None)]
    assert [n.t for n in recorder.of(Note) if n.what == "fault_ended"] == [faulted + 15]


# --- every behaviour fault, on the wire ---------------------------------------------------------

Act = Callable[[FakeCsms, ChargerControl], Awaitable[None]]


@dataclasses.dataclass
class Run:
    """What one charger did around one fault: the CALLs it sent, when the fault came."""

    recorder: Recorder
    csms: FakeCsms
    at: float

    def calls(self, action: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, p) for t, a, p in calls_out(self.recorder) if a == action]

    def answer_to(self, unique_id: str) -> tuple[float, Any]:
        [answer] = [(e.t, json.loads(e.raw)) for e in self.recorder.of(FrameOut)
                    if e.unique_id == unique_id and e.message_type != 2]
        return answer


async def run_fault(
    fault: str, *, lasting: float | None = None, connector: int | None = None,
    first: bool = False, act: Act | None = None, after: float = 40.0, **params: Any,
) -> Run:
    """A charger charging on connector 1 from 2 s gets ``fault`` at 14.5 s (between two samples;
    ``first``: at 1 s, before it charges), then ``act`` runs; the run ends ``after`` s later."""
    csms, recorder = FakeCsms(), Recorder()
    env = make_env(csms, recorder)
    control = recorder.control()
    injection_at = 0.0

    async def inject() -> None:
        nonlocal injection_at
        injection_at = trio.current_time()
        await control.inject(Injection(
            id="0.0", fault=fault, family=Family.BEHAVIOUR, at=injection_at,
            until=None if lasting is None else injection_at + lasting, connector=connector,
            params=params))

    async with trio.open_nursery() as nursery:
        if first:
            csms.nursery = nursery
            nursery.start_soon(run_charger, env, control)
            await trio.sleep(1)
            await inject()
            await trio.sleep(1)
            await control.request(PlugIn(1, ev=EvSpec(energy_wanted_kwh=10)))
            await control.request(PresentTag(1, "TAG-1"))
        else:
            await start_charging(nursery, csms, env, control, energy_wanted_kwh=10)
            await trio.sleep(12.5)
            await inject()
        if act is not None:
            await act(csms, control)
        await trio.sleep(after)
        await control.shutdown(trio.current_time() + 5)
        await control.done.wait()
        nursery.cancel_scope.cancel()
    for _, action, payload in calls_out(recorder):
        assert ORACLE.errors(action, "request", payload) == [], payload
    return Run(recorder, csms, injection_at)


def register_of(payload: dict[str, Any]) -> float:
    return float(payload["meterValue"][0]["sampledValue"][0]["value"])


async def cs_call(csms: FakeCsms, request: msgspec.Struct) -> str:
    """The CSMS sends ``request`` to CP-1; returns its message id."""
    frame = csms.core.call("CP-1", request, trio.current_time())
    await csms.live["CP-1"].send(frame.decode())
    return str(json.loads(frame)[1])


async def test_clock_skew_on_the_wire(autojump_clock: trio.testing.MockClock) -> None:
    run = await run_fault("clock_skew", lasting=10, mode="offset", seconds=3600.0)
    skews = [parse_time(p["meterValue"][0]["timestamp"]) - WALL_EPOCH - t
             for t, p in run.calls("MeterValues") if t > run.at]
    assert skews[:2] == [3600, 3600] and set(skews[2:]) == {0}


async def test_meter_regress_and_spike_on_the_wire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One sample (5 s at 11 kW) adds about 15 Wh: the frame hit is off by the fault's wh, the
    next one true again."""
    regress = await run_fault("meter_regress", wh=20.0)
    spike = await run_fault("meter_spike", connector=1, wh=1e6)
    for run, jump in ((regress, -20.0), (spike, 1e6)):
        before = [register_of(p) for t, p in run.calls("MeterValues") if t < run.at]
        hit, after, *_ = [register_of(p) for t, p in run.calls("MeterValues") if t > run.at]
        step = (after - before[-1]) / 2
        assert 10 < step < 20
        assert hit == pytest.approx(before[-1] + step + jump, abs=0.2)


async def test_duplicate_start_on_the_wire(autojump_clock: trio.testing.MockClock) -> None:
    async def drop(csms: FakeCsms, control: ChargerControl) -> None:
        await trio.sleep(5)
        await csms.drop("CP-1")

    run = await run_fault("duplicate_start", first=True, act=drop)
    first, again = run.calls("StartTransaction")
    assert first[1] == again[1] and again[0] > first[0]
    assert len(run.csms.core.transactions("CP-1")) == 1  # the CSMS saw through it
    [answered] = [n for n in run.recorder.of(Note) if n.what == "duplicate_start_answered"]
    assert answered.data["transaction_id"] == run.csms.core.transactions("CP-1")[0].transaction_id


async def test_stale_and_missing_transaction_ids_on_the_wire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def second_session(csms: FakeCsms, control: ChargerControl) -> None:
        await control.request(StopCharging(1))
        await control.request(Unplug(1))
        await trio.sleep(3)
        await control.request(PlugIn(1, ev=EvSpec(energy_wanted_kwh=10)))
        await control.request(PresentTag(1, "TAG-1"))

    stale = await run_fault("stale_transaction_id", act=second_session)
    first, second = (t.transaction_id for t in stale.csms.core.transactions("CP-1"))
    ids = [p["transactionId"] for t, p in stale.calls("MeterValues") if t > stale.at]
    assert ids[0] == first and set(ids[1:]) == {second}

    missing = await run_fault("missing_transaction_id", value=-1)
    ids = [p["transactionId"] for t, p in missing.calls("MeterValues") if t > missing.at]
    [tx] = missing.csms.core.transactions("CP-1")
    assert ids[0] == -1 and set(ids[1:]) == {tx.transaction_id}


async def test_boot_loop_and_firmware_failure_on_the_wire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    loop = await run_fault("boot_loop", count=2, interval=5.0)
    boots = [t for t, _ in loop.calls("BootNotification")]
    assert boots[1:] == [loop.at + 5, loop.at + 15]  # down 5 s, up 5 s, down 5 s
    [stop] = [p for _, p in loop.calls("StopTransaction")]
    assert stop["reason"] == "Reboot"

    firmware = await run_fault("firmware_failure", stage="download")
    assert [(t - firmware.at, p["status"]) for t, p in
            firmware.calls("FirmwareStatusNotification")] == [(0, "Downloading"),
                                                               (30, "DownloadFailed")]


async def test_slow_responses_and_reject_commands_on_the_wire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    asked: list[tuple[float, str]] = []

    async def ask(csms: FakeCsms, control: ChargerControl) -> None:
        asked.append((trio.current_time(), await cs_call(
            csms, GetConfigurationRequest(key=("HeartbeatInterval",)))))

    slow = await run_fault("slow_responses", lasting=20, delay=7.0, act=ask)
    [(sent, unique_id)] = asked
    answered_at, answer = slow.answer_to(unique_id)
    assert answered_at == sent + 7 and answer[0] == 3

    asked.clear()

    async def remote_start(csms: FakeCsms, control: ChargerControl) -> None:
        asked.append((trio.current_time(), await cs_call(
            csms, RemoteStartTransactionRequest(id_tag="TAG-2", connector_id=2))))

    rejecting = await run_fault("reject_commands", mode="rejected", act=remote_start)
    [(sent, unique_id)] = asked
    answered_at, answer = rejecting.answer_to(unique_id)
    assert answered_at == sent and answer[2] == {"status": "Rejected"}
    assert [p["connectorId"] for _, p in rejecting.calls("StartTransaction")] == [1]
