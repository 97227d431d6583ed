"""A charger whose machine crashes, restarted by its supervisor as after a power loss.

The crash comes from a real input: a protocol plugin (the machine's public seam for the version
it speaks) that decodes one marked GetConfiguration into a request the charger cannot handle, as
a codec bug would. On trio's autojump clock over memory transports, against the CSMS core.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import msgspec
import trio
import trio.testing

from simulator.actors.fleet import supervise_charger
from simulator.events import (
    Crashed,
    FrameIn,
    TransactionAcknowledged,
    TransactionStarted,
    TransactionStopped,
)
from simulator.machines.domain import PlugIn, PresentTag
from simulator.machines.meter import EvSpec
from simulator.ocpp.v16 import PLUGIN, GetConfigurationRequest

from .test_charger_actor import FakeCsms, Recorder, make_env

BOOM = "boom-1"
"""The message id of the CS call the charger fails on."""


def _decode_request(action: str, raw: bytes | msgspec.Raw) -> msgspec.Struct:
    if action == "GetConfiguration" and b"crash-me" in bytes(raw):
        return GetConfigurationRequest(key=12345)  # type: ignore[arg-type]  # a codec bug
    if action == "GetConfiguration" and b"crash-early" in bytes(raw):
        raise RuntimeError("the codec itself fails")
    return PLUGIN.decode_request(action, raw)


BUGGY = dataclasses.replace(PLUGIN, decode_request=_decode_request)


async def _charge_then_crash(recorder: Recorder, csms: FakeCsms) -> Any:
    """Run CP-1 under its supervisor: a transaction for 30 s, then the crashing call; after the
    restart, a new transaction; then a graceful end. Returns the control."""
    env = dataclasses.replace(make_env(csms, recorder), plugin=BUGGY)
    control = recorder.control()
    ev = EvSpec(battery_kwh=60, initial_soc=20, max_power_kw=11, energy_wanted_kwh=30)
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            csms.nursery = nursery
            nursery.start_soon(supervise_charger, env, control)
            await trio.sleep(2)
            await control.request(PlugIn(1, ev=ev))
            await control.request(PresentTag(1, "TAG-1"))
            await trio.sleep(30)
            await csms.live["CP-1"].send(json.dumps(
                [2, BOOM, "GetConfiguration", {"key": ["crash-me"]}]))
            await trio.sleep(120)  # the restart (after its backoff) and its boot
            assert control.restarts == 1 and control.connected
            await control.request(PlugIn(2, ev=ev))
            await control.request(PresentTag(2, "TAG-2"))
            await trio.sleep(30)
            await control.shutdown(trio.current_time() + 10)
            await control.done.wait()
            nursery.cancel_scope.cancel()
    return control


async def test_the_frame_a_charger_fails_on_is_recorded_before_its_crash(
    autojump_clock: trio.testing.MockClock,
) -> None:
    csms, recorder = FakeCsms(), Recorder()
    await _charge_then_crash(recorder, csms)
    [crash] = recorder.of(Crashed)
    assert crash.unique_id == BOOM
    assert crash.input is not None and "crash-me" in crash.input
    assert "TypeError" in crash.error
    frame = [e for e in recorder.of(FrameIn) if e.unique_id == BOOM]
    assert len(frame) == 1 and frame[0].action == "GetConfiguration"
    assert recorder.events.index(frame[0]) < recorder.events.index(crash)


async def test_a_crash_stops_the_running_transaction_with_power_loss_and_ids_go_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    csms, recorder = FakeCsms(), Recorder()
    await _charge_then_crash(recorder, csms)

    started = recorder.of(TransactionStarted)
    assert [s.local_id for s in started] == [1, 2]  # the restart does not reuse local id 1
    acked = {a.local_id: a.transaction_id for a in recorder.of(TransactionAcknowledged)}
    stopped = {s.local_id: s for s in recorder.of(TransactionStopped)}
    assert stopped[1].reason == "PowerLoss" and stopped[1].transaction_id == acked[1]
    assert stopped[2].reason == "Local"  # the graceful end
    # the CS saw both transactions start and stop, each once, the first with PowerLoss
    stops = {c["transactionId"]: c for c in csms.calls("CP-1", "StopTransaction")}
    assert set(stops) == {acked[1], acked[2]}
    assert stops[acked[1]]["reason"] == "PowerLoss"
    assert stops[acked[1]]["meterStop"] == stopped[1].meter_stop > 0
    assert len(csms.calls("CP-1", "StartTransaction")) == 2
    records = csms.core.transactions("CP-1")
    assert len(records) == 2 and all(r.stopped_at is not None for r in records)
    # connector 2 has a register of its own, at 0 still
    second_start = csms.calls("CP-1", "StartTransaction")[1]
    assert second_start["connectorId"] == 2 and second_start["meterStart"] == 0
    # message ids of the two lives never collide
    ids = [f[1] for who, f in csms.received if f[0] == 2]
    assert len(ids) == len(set(ids))


async def test_a_frame_the_charger_fails_on_before_decoding_it_is_recorded_all_the_same(
    autojump_clock: trio.testing.MockClock,
) -> None:
    csms, recorder = FakeCsms(), Recorder()
    env = dataclasses.replace(make_env(csms, recorder), plugin=BUGGY)
    control = recorder.control()
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            csms.nursery = nursery
            nursery.start_soon(supervise_charger, env, control)
            await trio.sleep(5)
            await csms.live["CP-1"].send(json.dumps(
                [2, "early-1", "GetConfiguration", {"key": ["crash-early"]}]))
            await trio.sleep(5)
            nursery.cancel_scope.cancel()
    [crash] = recorder.of(Crashed)
    assert crash.unique_id == "early-1" and "the codec itself fails" in crash.error
    [frame] = [e for e in recorder.of(FrameIn) if e.unique_id == "early-1"]
    assert frame.violations == ["the charger failed on this frame"] and "crash-early" in frame.raw
    assert recorder.events.index(frame) < recorder.events.index(crash)
