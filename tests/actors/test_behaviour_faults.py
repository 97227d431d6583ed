"""Behaviour faults handed to a running charger actor through its control's inbox, on trio's
autojump clock, against the embedded CSMS's core over memory transports: the frames on the wire."""

from __future__ import annotations

import json
from typing import Any

import trio
import trio.testing

from simulator.chaos.catalog import Family
from simulator.chaos.injection import Injection
from simulator.events import Connected, Disconnected, FrameOut, FrameUnsent, Note
from tests.actors.test_charger_actor import FakeCsms, Recorder, make_env, start_charging
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
