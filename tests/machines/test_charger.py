"""The charger machine against a scripted central system (tests/machines/pair.py).

Every frame the charger sends in these tests is checked against the official OCPP 1.6 schemas
by the pair, which also asserts the rules it can see by itself (one CALL outstanding, nothing
sent offline or before the boot is answered, no message id reused, legal status changes only).
"""

from __future__ import annotations

import gc
import itertools
import math
import random
import weakref
from typing import Any

import pytest

from simulator.events import FrameIn, MessageDropped, Note, UnmatchedResult
from simulator.machines.charger import BootState, ChargerMachine, ChargerSpec
from simulator.machines.configuration import KEYS, Access, KeyType
from simulator.machines.meter import EvSpec
from simulator.machines.parts import earliest
from simulator.ocpp.v16 import ChargePointErrorCode
from tests.machines.pair import (
    DEFER,
    EPOCH,
    WITHHOLD,
    CallErrorAnswer,
    FakeCentralSystem,
    MachinePair,
    Received,
    iso,
    parse_time,
)

TAG = "TAG-1"
REGISTER = "Energy.Active.Import.Register"


def start_charging(pair: MachinePair, connector_id: int = 1, tag: str = TAG) -> None:
    pair.plug(connector_id)
    pair.tag(tag, connector_id)


def tx_messages(pair: MachinePair) -> list[Received]:
    return pair.cs.of("StartTransaction", "MeterValues", "StopTransaction")


def register(received: Received) -> float:
    """The Energy.Active.Import.Register value of a MeterValues request."""
    for value in received.payload["meterValue"]:
        for sample in value["sampledValue"]:
            if sample.get("measurand", "Energy.Active.Import.Register") == \
                    "Energy.Active.Import.Register" and "phase" not in sample:
                return float(sample["value"])
    raise AssertionError(f"no register in {received.payload}")


def stamp(received: Received) -> float:
    """The wall time (Unix s) a transaction message carries."""
    payload = received.payload
    if received.action == "MeterValues":
        return parse_time(payload["meterValue"][0]["timestamp"])
    return parse_time(payload["timestamp"])


# --- boot ---------------------------------------------------------------------------------------


def test_boot_comes_first_then_every_connector_reports() -> None:
    pair = MachinePair(connectors=2)
    assert pair.cs.actions()[0] == "BootNotification"
    boot = pair.cs.received[0].payload
    assert boot["chargePointVendor"] == "Acme" and boot["chargePointModel"] == "AC22"
    assert sorted(r.payload["connectorId"] for r in pair.cs.of("StatusNotification")) == [0, 1, 2]
    assert pair.machine.statistics().boot == BootState.ACCEPTED


def test_nothing_before_connecting_and_the_boot_waits_for_the_link() -> None:
    pair = MachinePair(connect=False)
    pair.power_on()
    start_charging(pair)
    pair.advance(100)
    assert pair.sent == []
    pair.connect()
    assert pair.cs.actions()[0] == "BootNotification"


def test_full_session_lifecycle() -> None:
    pair = MachinePair(config={"MeterValueSampleInterval": 60, "ClockAlignedDataInterval": 0})
    pair.plug()
    pair.advance(5)
    pair.tag(TAG)
    pair.advance(185)
    pair.tag(TAG)  # the same tag stops it, without another Authorize
    pair.advance(2)
    pair.unplug()
    pair.advance(2)
    actions = [a for a in pair.cs.actions() if a != "StatusNotification"]
    assert actions == ["BootNotification", "SecurityEventNotification", "Authorize",
                       "StartTransaction", "MeterValues", "MeterValues", "MeterValues",
                       "StopTransaction"]
    assert pair.statuses(1) == ["Preparing", "Charging", "Finishing", "Available"]
    assert pair.notified(1) == ["Available", "Preparing", "Charging", "Finishing", "Available"]
    start, *samples, stop = tx_messages(pair)
    tx_id = pair.cs.transaction_id_of(start)
    assert start.payload["meterStart"] == 0
    assert start.payload["timestamp"] == iso(EPOCH + 5)
    assert [s.payload["transactionId"] for s in samples] == [tx_id] * 3
    assert [stamp(s) - EPOCH for s in samples] == [65, 125, 185]
    readings = [register(s) for s in samples]
    assert readings == sorted(readings) and readings[0] > 0
    assert stop.payload["transactionId"] == tx_id
    assert stop.payload["idTag"] == TAG
    assert stop.payload.get("reason", "Local") == "Local"
    assert stop.payload["meterStop"] >= readings[-1] - 1
    assert stop.payload["meterStop"] == int(pair.machine.statistics().energy_wh[0])
    assert pair.machine.statistics().drained


def test_meter_start_of_the_next_transaction_is_the_last_meter_stop() -> None:
    pair = MachinePair()
    for _ in range(2):
        start_charging(pair)
        pair.advance(600)
        pair.stop_local()
        pair.unplug()
    starts, stops = pair.cs.of("StartTransaction"), pair.cs.of("StopTransaction")
    assert starts[1].payload["meterStart"] == stops[0].payload["meterStop"] > 0
    assert stops[1].payload["meterStop"] > starts[1].payload["meterStart"]


# --- offline ------------------------------------------------------------------------------------


def test_offline_during_a_transaction_delivers_everything_in_order_with_old_timestamps() -> None:
    pair = MachinePair(config={"MeterValueSampleInterval": 60, "ClockAlignedDataInterval": 0})
    start_charging(pair)
    pair.advance(30)
    pair.disconnect()
    pair.advance(200)  # samples at 60, 120, 180 go into the outbox
    pair.stop_local()
    pair.unplug()
    assert pair.machine.statistics().outbox == 4
    pair.advance(100)
    before = len(pair.cs.received)
    pair.connect()
    pair.advance(1)
    after = pair.cs.received[before:]
    after = [r for r in after if r.action != "Heartbeat"]
    assert [r.action for r in after if r.action != "StatusNotification"] == [
        "MeterValues", "MeterValues", "MeterValues", "StopTransaction"]
    tx_id = pair.cs.transaction_id_of(pair.cs.of("StartTransaction")[0])
    assert [r.payload["transactionId"] for r in after if r.action != "StatusNotification"] == \
        [tx_id] * 4
    assert [stamp(r) - EPOCH for r in tx_messages(pair)] == [0, 60, 120, 180, 230]
    # the history (Finishing) is not replayed: only the current status goes out
    assert [r.payload["status"] for r in after if r.action == "StatusNotification"] == \
        ["Available"]
    assert pair.machine.statistics().drained


def test_a_transaction_started_offline_is_delivered_on_reconnect() -> None:
    pair = MachinePair(config={"AllowOfflineTxForUnknownId": True,
                               "MeterValueSampleInterval": 60, "ClockAlignedDataInterval": 0})
    pair.disconnect()
    start_charging(pair, tag="NEW-TAG")
    pair.advance(130)
    pair.stop_local()
    pair.connect()
    pair.advance(1)
    messages = tx_messages(pair)
    assert [r.action for r in messages] == ["StartTransaction", "MeterValues", "MeterValues",
                                            "StopTransaction"]
    tx_id = pair.cs.transaction_id_of(messages[0])
    assert all(r.payload["transactionId"] == tx_id for r in messages[1:])
    assert [stamp(r) - EPOCH for r in messages] == [0, 60, 120, 130]


def test_a_disconnect_is_not_a_failure() -> None:
    cs = FakeCentralSystem()
    cs.answer("StartTransaction", WITHHOLD)
    pair = MachinePair(cs=cs, config={"TransactionMessageAttempts": 1})
    start_charging(pair)
    pair.disconnect()  # the Start in flight stays queued: no attempt was used up
    pair.connect()
    starts = pair.cs.of("StartTransaction")
    assert len(starts) == 2 and starts[0].unique_id != starts[1].unique_id
    assert starts[0].payload == starts[1].payload
    assert not [d for d in pair.dropped() if d.action == "StartTransaction"]


# --- retries ------------------------------------------------------------------------------------

RETRY_CASES = [
    # attempts, retry interval, failure, expected send times after the first (t=0)
    (3, 60, CallErrorAnswer("InternalError"), [60.0, 180.0]),
    (2, 10, CallErrorAnswer("GenericError"), [10.0]),
    (1, 60, CallErrorAnswer("InternalError"), []),
    (3, 60, WITHHOLD, [30.0 + 60.0, 30.0 + 60.0 + 30.0 + 120.0]),
]


@pytest.mark.parametrize(("attempts", "interval", "failure", "resends"), RETRY_CASES)
def test_retries_exhaust_transaction_message_attempts(
    attempts: int, interval: int, failure: Any, resends: list[float]
) -> None:
    cs = FakeCentralSystem()
    cs.answer("StopTransaction", *[failure] * attempts)
    pair = MachinePair(cs=cs, config={"TransactionMessageAttempts": attempts,
                                      "TransactionMessageRetryInterval": interval,
                                      "MeterValueSampleInterval": 0,
                                      "ClockAlignedDataInterval": 0})
    start_charging(pair)
    pair.stop_local()
    first = pair.now
    pair.advance(1000)
    stops = pair.cs.of("StopTransaction")
    assert [s.t - first for s in stops] == [0.0, *resends]
    assert len({s.unique_id for s in stops}) == len(stops)  # a new id for each retry
    assert all(s.payload == stops[0].payload for s in stops)
    dropped = [d for d in pair.dropped() if d.action == "StopTransaction"]
    assert len(dropped) == 1 and dropped[0].attempts == attempts
    assert pair.machine.statistics().outbox == 0


def test_after_a_drop_the_queue_goes_on() -> None:
    cs = FakeCentralSystem()
    cs.answer("MeterValues", CallErrorAnswer(), CallErrorAnswer())
    pair = MachinePair(cs=cs, config={"TransactionMessageAttempts": 2,
                                      "TransactionMessageRetryInterval": 5,
                                      "MeterValueSampleInterval": 60,
                                      "ClockAlignedDataInterval": 0})
    start_charging(pair)
    pair.advance(130)
    values = pair.cs.of("MeterValues")
    assert [v.t for v in values] == [60.0, 65.0, 120.0]
    assert [v.answer for v in values] == ["error", "error", "result"]


def test_ordinary_messages_are_dropped_after_one_failure() -> None:
    cs = FakeCentralSystem(boot_interval=100)
    cs.answer("Heartbeat", CallErrorAnswer())
    pair = MachinePair(cs=cs)
    pair.advance(250)
    beats = pair.cs.of("Heartbeat")
    assert [b.t for b in beats] == [100.0, 200.0]
    assert [d.action for d in pair.dropped()] == ["Heartbeat"]


# --- late StartTransaction result ---------------------------------------------------------------


def test_a_late_start_result_fills_in_the_transaction_id() -> None:
    cs = FakeCentralSystem()
    cs.answer("StartTransaction", DEFER)
    pair = MachinePair(cs=cs, config={"MeterValueSampleInterval": 5,
                                      "ClockAlignedDataInterval": 0})
    start_charging(pair)
    pair.advance(12)  # two samples queue behind the unanswered Start
    pair.stop_local()
    assert [r.action for r in tx_messages(pair)] == ["StartTransaction"]
    assert pair.release("StartTransaction") == 1
    pair.advance(1)
    start, *rest = tx_messages(pair)
    tx_id = pair.cs.transaction_id_of(start)
    assert [r.action for r in rest] == ["MeterValues", "MeterValues", "StopTransaction"]
    assert [r.payload["transactionId"] for r in rest] == [tx_id] * 3


def test_a_start_result_after_a_disconnect_is_resent_and_never_faked() -> None:
    cs = FakeCentralSystem()
    cs.answer("StartTransaction", WITHHOLD)
    pair = MachinePair(cs=cs, config={"MeterValueSampleInterval": 5,
                                      "ClockAlignedDataInterval": 0})
    start_charging(pair)
    pair.disconnect()
    pair.advance(12)
    pair.stop_local()
    pair.connect()
    pair.advance(1)
    messages = tx_messages(pair)
    assert [r.action for r in messages] == ["StartTransaction", "StartTransaction",
                                            "MeterValues", "MeterValues", "StopTransaction"]
    tx_id = pair.cs.transaction_id_of(messages[1])
    assert [r.payload["transactionId"] for r in messages[2:]] == [tx_id] * 3
    sent_ids = [r.payload.get("transactionId") for r in pair.cs.received]
    assert -1 not in sent_ids and 0 not in sent_ids


def test_messages_of_a_start_that_was_given_up_are_dropped_not_faked() -> None:
    cs = FakeCentralSystem()
    cs.answer("StartTransaction", CallErrorAnswer(), CallErrorAnswer())
    pair = MachinePair(cs=cs, config={"TransactionMessageAttempts": 2,
                                      "TransactionMessageRetryInterval": 100,
                                      "MeterValueSampleInterval": 30,
                                      "ClockAlignedDataInterval": 0})
    start_charging(pair)
    pair.advance(70)
    pair.stop_local()
    pair.advance(200)
    assert [r.action for r in tx_messages(pair)] == ["StartTransaction", "StartTransaction"]
    assert sorted(d.action for d in pair.dropped()) == [
        "MeterValues", "MeterValues", "StartTransaction", "StopTransaction"]
    assert pair.machine.statistics().drained


def test_an_unmatched_result_is_recorded_and_harmless() -> None:
    pair = MachinePair()
    pair.receive('[3, "nobody-asked", {}]')
    pair.receive('[4, "nor-this", "GenericError", "", {}]')
    assert len(pair.events_of(UnmatchedResult)) == 2
    start_charging(pair)
    assert pair.machine.statistics().in_transaction == 1


# --- Pending and Rejected boots -----------------------------------------------------------------


def test_pending_boot_answers_calls_sends_only_triggered_messages_and_reboots_after_interval(
) -> None:
    cs = FakeCentralSystem()
    cs.answer("BootNotification", {"status": "Pending", "currentTime": iso(EPOCH),
                                   "interval": 60})
    pair = MachinePair(cs=cs)
    assert pair.machine.statistics().boot == BootState.PENDING
    start_charging(pair)
    config = pair.cs_call("GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert config.result is not None and config.result["configurationKey"][0]["key"] == \
        "HeartbeatInterval"
    trigger = pair.cs_call("TriggerMessage", {"requestedMessage": "StatusNotification",
                                              "connectorId": 1})
    assert trigger.status == "Accepted"
    pair.advance(59)
    assert pair.cs.actions() == ["BootNotification", "StatusNotification"]
    assert pair.cs.received[1].t == trigger.answered_at
    pair.advance(1)
    assert pair.cs.actions()[2] == "BootNotification" and pair.cs.received[2].t == 60.0
    pair.advance(1)
    assert "Authorize" not in pair.cs.actions()  # the tag came while Pending: decided offline
    assert {"StatusNotification", "Heartbeat"} & set(pair.cs.actions()[3:])
    assert pair.machine.statistics().boot == BootState.ACCEPTED


def test_rejected_boot_is_silent_for_the_interval() -> None:
    cs = FakeCentralSystem()
    cs.answer("BootNotification", {"status": "Rejected", "currentTime": iso(EPOCH),
                                   "interval": 120})
    pair = MachinePair(cs=cs)
    call = pair.cs_call("GetConfiguration", {})
    assert call.result is None and call.error is None  # not even answered
    for action, payload in (("Reset", {}), ("ReserveNow", {  # broken; valid
            "connectorId": 1, "expiryDate": iso(EPOCH + 600), "idTag": "T", "reservationId": 1})):
        call = pair.cs_call(action, payload)
        assert call.result is None and call.error is None  # no CALLERROR either
    assert len(pair.events_of(FrameIn)) >= 3  # all recorded
    start_charging(pair)
    pair.advance(119.9)
    assert pair.cs.actions() == ["BootNotification"]
    pair.advance(0.1)
    assert pair.cs.actions()[:2] == ["BootNotification", "BootNotification"]
    assert pair.cs.received[1].t == 120.0
    assert pair.machine.statistics().boot == BootState.ACCEPTED


def rejected_zero_retry(seed: int) -> float:
    cs = FakeCentralSystem()
    cs.answer("BootNotification", {"status": "Rejected", "currentTime": iso(EPOCH),
                                   "interval": 0})
    pair = MachinePair(cs=cs, seed=seed, boot_retry=60.0)
    pair.advance(200)
    boots = pair.cs.of("BootNotification")
    assert len(boots) == 2
    return boots[1].t


def test_rejected_boot_with_interval_zero_is_spread() -> None:
    waits = [rejected_zero_retry(seed) for seed in range(8)]
    assert all(30.0 <= w <= 90.0 for w in waits)
    assert len(set(waits)) == len(waits)  # no two chargers retry in lockstep
    assert rejected_zero_retry(3) == waits[3]  # ... and the choice is seeded


def test_a_failed_boot_is_retried_after_boot_retry() -> None:
    cs = FakeCentralSystem()
    cs.answer("BootNotification", CallErrorAnswer(), WITHHOLD)
    pair = MachinePair(cs=cs, boot_retry=60.0, call_timeout=30.0)
    pair.advance(200)
    assert [b.t for b in pair.cs.of("BootNotification")] == [0.0, 60.0, 150.0]


def test_clock_sync_from_current_time() -> None:
    cs = FakeCentralSystem(clock_offset=3600.0)
    pair = MachinePair(cs=cs)
    pair.advance(10)
    start_charging(pair)
    start = pair.cs.of("StartTransaction")[0]
    assert start.payload["timestamp"] == iso(EPOCH + 3600 + 10)


def test_heartbeat_clock_sync() -> None:
    cs = FakeCentralSystem(boot_interval=50)
    pair = MachinePair(cs=cs)
    cs.clock_offset = -120.0
    pair.advance(50)  # the heartbeat's currentTime sets the clock too
    pair.advance(5)
    start_charging(pair)
    assert pair.cs.of("StartTransaction")[0].payload["timestamp"] == iso(EPOCH - 120 + 55)


def test_a_reconnect_does_not_reboot_but_a_reset_does() -> None:
    pair = MachinePair()
    pair.disconnect()
    pair.advance(10)
    pair.connect()
    pair.advance(1)
    assert pair.cs.actions().count("BootNotification") == 1
    reset = pair.cs_call("Reset", {"type": "Soft"})
    assert reset.status == "Accepted"
    pair.advance(30)
    assert pair.reboots and pair.cs.actions().count("BootNotification") == 2


# --- heartbeat ----------------------------------------------------------------------------------


def test_heartbeat_on_its_deadline() -> None:
    cs = FakeCentralSystem(boot_interval=100)
    pair = MachinePair(cs=cs)
    pair.advance(350)
    assert [b.t for b in pair.cs.of("Heartbeat")] == [100.0, 200.0, 300.0]
    change = pair.cs_call("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "40"})
    assert change.status == "Accepted"
    pair.advance(100)
    assert [b.t for b in pair.cs.of("Heartbeat")][3:] == [390.0, 430.0]


@pytest.mark.parametrize(
    ("times", "expected"),
    [((), None), ((None, None), None), ((3.0, None, 1.5, 2.0), 1.5), ((0.0, 5.0), 0.0),
     ((math.inf, None), None), ((math.inf, 7.0, math.inf), 7.0)],
)
def test_earliest_deadline_of_the_parts(
    times: tuple[float | None, ...], expected: float | None
) -> None:
    assert earliest(*times) == expected


def test_a_tick_runs_what_fell_due_and_nothing_before_the_deadline() -> None:
    # The actor ticks after every input and when next_deadline() comes: a tick before the
    # deadline finds nothing due, and the one at the deadline runs it.
    cs = FakeCentralSystem(boot_interval=100)
    pair = MachinePair(cs=cs)
    pair.advance(10)
    deadline = pair.machine.next_deadline()
    assert deadline == pytest.approx(100.0)
    pair.run_until(deadline - 0.5)
    assert pair.cs.of("Heartbeat") == []
    assert pair.machine.next_deadline() == deadline
    pair.run_until(deadline)
    assert [b.t for b in pair.cs.of("Heartbeat")] == [deadline]


def test_other_traffic_postpones_the_heartbeat() -> None:
    cs = FakeCentralSystem(boot_interval=100)
    pair = MachinePair(cs=cs, config={"MeterValueSampleInterval": 60,
                                      "ClockAlignedDataInterval": 0})
    start_charging(pair)
    pair.advance(400)
    assert pair.cs.of("Heartbeat") == []  # MeterValues every 60 s prove liveness
    pair.stop_local()
    pair.advance(150)
    assert [b.t for b in pair.cs.of("Heartbeat")] == [pair.now - 50]


def test_no_notes_about_trouble_in_a_quiet_run() -> None:
    pair = MachinePair()
    start_charging(pair)
    pair.advance(3600)
    pair.stop_local()
    pair.advance(10)
    assert not pair.events_of(MessageDropped)
    assert all(n.what not in ("call_ignored", "start_transaction_given_up")
               for n in pair.events_of(Note))


def test_a_full_ev_is_suspended_ev() -> None:
    pair = MachinePair()
    pair.plug(1, EvSpec(battery_kwh=10, initial_soc=70, target_soc=80, max_power_kw=11))
    pair.tag(TAG)
    pair.advance(3600)
    assert pair.status() == "SuspendedEV"
    assert pair.machine.statistics().energy_wh[0] <= 1000.0 + 1e-6


def test_a_full_ev_is_suspended_ev_with_sampling_off_and_heartbeats_flowing() -> None:
    """No meter samples to notice it: the EV filling up is still seen (the charge cap's deadline)
    while heartbeat answers keep coming in every 10 s."""
    pair = MachinePair(config={"MeterValueSampleInterval": 0, "HeartbeatInterval": 10})
    pair.plug(1, EvSpec(battery_kwh=10, initial_soc=70, target_soc=80, max_power_kw=11))
    pair.tag(TAG)
    pair.advance(3600)
    assert pair.status() == "SuspendedEV"


# --- CS-initiated operations --------------------------------------------------------------------

AVAILABILITY_CASES = [
    # connector, type, running transaction on connector 1, expected status, statuses after
    (1, "Inoperative", False, "Accepted", ["Unavailable", "Available"]),
    (0, "Inoperative", False, "Accepted", ["Unavailable", "Unavailable"]),
    (1, "Operative", False, "Accepted", ["Available", "Available"]),
    (1, "Inoperative", True, "Scheduled", ["Charging", "Available"]),
    (0, "Inoperative", True, "Scheduled", ["Charging", "Unavailable"]),
    (2, "Inoperative", True, "Accepted", ["Charging", "Unavailable"]),
    (3, "Inoperative", False, "Rejected", ["Available", "Available"]),
]


@pytest.mark.parametrize(("cid", "kind", "busy", "status", "after"), AVAILABILITY_CASES)
def test_change_availability(cid: int, kind: str, busy: bool, status: str,
                             after: list[str]) -> None:
    pair = MachinePair(connectors=2)
    if busy:
        start_charging(pair)
    call = pair.cs_call("ChangeAvailability", {"connectorId": cid, "type": kind})
    assert call.status == status
    assert [pair.status(1), pair.status(2)] == after


def test_scheduled_unavailability_applies_when_the_transaction_ends() -> None:
    pair = MachinePair()
    start_charging(pair)
    assert pair.cs_call("ChangeAvailability", {"connectorId": 1,
                                               "type": "Inoperative"}).status == "Scheduled"
    pair.advance(60)
    pair.stop_local()
    pair.advance(1)
    assert pair.status() == "Unavailable"
    pair.tag("OTHER")  # an Unavailable connector starts nothing
    pair.advance(1)
    assert pair.machine.statistics().in_transaction == 0
    assert pair.cs_call("ChangeAvailability", {"connectorId": 1,
                                               "type": "Operative"}).status == "Accepted"
    assert pair.status() == "Finishing"  # the EV is still plugged in


def test_unavailability_survives_a_reboot() -> None:
    pair = MachinePair(connectors=2)
    pair.cs_call("ChangeAvailability", {"connectorId": 2, "type": "Inoperative"})
    pair.cs_call("Reset", {"type": "Hard"})
    pair.advance(60)
    assert len(pair.reboots) == 1 and pair.online
    after_boot = [r for r in pair.cs.received if r.t > pair.reboots[0]]
    assert after_boot[0].action == "BootNotification"
    statuses = {r.payload["connectorId"]: r.payload["status"] for r in after_boot
                if r.action == "StatusNotification"}
    assert statuses == {0: "Available", 1: "Available", 2: "Unavailable"}


CONFIGURATION_CASES = [
    ("MeterValueSampleInterval", "30", "Accepted"),
    ("NumberOfConnectors", "4", "Rejected"),  # read-only
    ("NoSuchKey", "1", "NotSupported"),
    ("HeartbeatInterval", "soon", "Rejected"),
    ("MeterValuesSampledData", "Energy.Active.Import.Register,Bogus", "Rejected"),
    ("AuthorizationKey", "0123456789abcdef", "Accepted"),
]


@pytest.mark.parametrize(("key", "value", "status"), CONFIGURATION_CASES)
def test_change_configuration(key: str, value: str, status: str) -> None:
    pair = MachinePair()
    assert pair.cs_call("ChangeConfiguration", {"key": key, "value": value}).status == status


HUGE = "9" * 500


@pytest.mark.parametrize("value", [HUGE, "99999999999999999999", str(2**31)])
@pytest.mark.parametrize("key", sorted(
    spec.name for spec in KEYS.values()
    if spec.type == KeyType.INT and spec.access == Access.RW and spec.name != "SecurityProfile"
))
def test_an_integer_out_of_range_is_rejected_and_the_charger_goes_on(
    key: str, value: str,
) -> None:
    """A central system may set any integer key to anything: a value outside the key's range is
    answered Rejected and changes nothing, with a transaction running, and the charger keeps
    its deadlines (a 500-digit HeartbeatInterval once crashed it with an OverflowError)."""
    pair = MachinePair()
    start_charging(pair)
    before = pair.cs_call("GetConfiguration", {"key": [key]}).result
    assert pair.cs_call("ChangeConfiguration", {"key": key, "value": value}).status == "Rejected"
    assert pair.cs_call("GetConfiguration", {"key": [key]}).result == before
    sampled = len(pair.cs.of("MeterValues"))
    pair.advance(400)  # every deadline the key feeds comes and goes
    assert pair.machine.next_deadline() is not None
    assert len(pair.cs.of("MeterValues")) >= sampled + 6  # sampling every 60 s went on


def test_every_integer_key_has_a_range() -> None:
    unbounded = [spec.name for spec in KEYS.values() if spec.type == KeyType.INT
                 and (spec.minimum is None or spec.maximum is None)]
    assert unbounded == []


def test_get_configuration_and_write_only_keys() -> None:
    pair = MachinePair()
    pair.cs_call("ChangeConfiguration", {"key": "AuthorizationKey", "value": "0123456789abcdef"})
    every = pair.cs_call("GetConfiguration", {}).result
    assert every is not None
    keys = {k["key"]: k for k in every["configurationKey"]}
    assert "HeartbeatInterval" in keys and keys["NumberOfConnectors"]["readonly"] is True
    assert "0123456789abcdef" not in str(every)
    some = pair.cs_call("GetConfiguration", {"key": ["HeartbeatInterval", "Nope"]}).result
    assert some is not None
    assert [k["key"] for k in some["configurationKey"]] == ["HeartbeatInterval"]
    assert some["unknownKey"] == ["Nope"]
    # FrameIn events carry the raw frame (a session concern, reported); every other event
    # redacts the key.
    assert not [e for e in pair.events
                if "0123456789abcdef" in str(e) and not isinstance(e, FrameIn)]


def test_change_configuration_takes_effect() -> None:
    pair = MachinePair(config={"MeterValueSampleInterval": 60, "ClockAlignedDataInterval": 0})
    start_charging(pair)
    pair.advance(61)
    pair.cs_call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "10"})
    pair.cs_call("ChangeConfiguration", {"key": "MeterValuesSampledData",
                                         "value": f"{REGISTER},Power.Active.Import"})
    pair.advance(20)
    values = pair.cs.of("MeterValues")
    assert [v.t for v in values] == [60.0, 70.0, 80.0]
    measurands = {s.get("measurand") for s in values[-1].payload["meterValue"][0]["sampledValue"]}
    assert measurands == {"Energy.Active.Import.Register", "Power.Active.Import"}


def test_clear_cache() -> None:
    pair = MachinePair(config={"LocalPreAuthorize": True})
    start_charging(pair)
    pair.stop_local()
    pair.tag(TAG)  # cached: no Authorize with LocalPreAuthorize
    assert pair.cs.actions().count("Authorize") == 1
    pair.stop_local()
    assert pair.cs_call("ClearCache").status == "Accepted"
    pair.tag(TAG)
    assert pair.cs.actions().count("Authorize") == 2


@pytest.mark.parametrize(("vendor", "status"), [("Acme", "Accepted"),
                                                ("Other", "UnknownVendorId")])
def test_data_transfer(vendor: str, status: str) -> None:
    pair = MachinePair(data_transfer_vendors=("Acme",))
    call = pair.cs_call("DataTransfer", {"vendorId": vendor, "messageId": "x", "data": "y"})
    assert call.status == status


@pytest.mark.parametrize(("authorize_remote", "answer", "started"), [
    (True, "Accepted", True),
    (True, "Blocked", False),
    (False, "Blocked", True),  # not asked: the CS already vouched for it
])
def test_remote_start_honours_authorize_remote_tx_requests(
    authorize_remote: bool, answer: str, started: bool
) -> None:
    cs = FakeCentralSystem()
    cs.id_tags["REMOTE"] = answer
    pair = MachinePair(cs=cs, config={"AuthorizeRemoteTxRequests": authorize_remote})
    pair.plug()
    call = pair.cs_call("RemoteStartTransaction", {"idTag": "REMOTE", "connectorId": 1})
    assert call.status == "Accepted"
    assert ("Authorize" in pair.cs.actions()) == authorize_remote
    assert pair.machine.statistics().transactions_started == started
    result_at = pair.sent.index(next((t, s) for t, s in pair.sent if s.unique_id == call.unique_id))
    first_caused = next(i for i, (_, s) in enumerate(pair.sent)
                        if s.action in ("Authorize", "StartTransaction"))
    assert result_at < first_caused  # answer first, then act


def test_remote_start_without_a_cable_waits_in_preparing() -> None:
    pair = MachinePair(config={"AuthorizeRemoteTxRequests": False, "ConnectionTimeOut": 60})
    pair.cs_call("RemoteStartTransaction", {"idTag": "REMOTE"})
    assert pair.status() == "Preparing"
    pair.advance(30)
    pair.plug()
    assert pair.status() == "Charging"
    assert pair.cs.of("StartTransaction")[0].payload["idTag"] == "REMOTE"


def test_remote_start_rejections() -> None:
    pair = MachinePair()
    start_charging(pair)
    assert pair.cs_call("RemoteStartTransaction",
                        {"idTag": "X", "connectorId": 1}).status == "Rejected"
    assert pair.cs_call("RemoteStartTransaction",
                        {"idTag": "X", "connectorId": 9}).status == "Rejected"


def test_remote_stop() -> None:
    pair = MachinePair()
    start_charging(pair)
    tx_id = pair.cs.transaction_id_of(pair.cs.of("StartTransaction")[0])
    assert pair.cs_call("RemoteStopTransaction", {"transactionId": tx_id + 1}).status == \
        "Rejected"
    call = pair.cs_call("RemoteStopTransaction", {"transactionId": tx_id})
    assert call.status == "Accepted"
    stop = pair.cs.of("StopTransaction")[0]
    assert stop.payload["reason"] == "Remote" and stop.payload["transactionId"] == tx_id
    assert pair.status() == "Finishing"


@pytest.mark.parametrize(("kind", "reason"), [("Soft", "SoftReset"), ("Hard", "HardReset")])
def test_reset_stops_transactions_with_the_right_reason_and_reboots(kind: str,
                                                                    reason: str) -> None:
    pair = MachinePair(connectors=2)
    start_charging(pair, 1)
    start_charging(pair, 2, tag="TAG-2")
    pair.advance(60)
    call = pair.cs_call("Reset", {"type": kind})
    assert call.status == "Accepted"
    pair.advance(60)
    stops = pair.cs.of("StopTransaction")
    assert [s.payload["reason"] for s in stops] == [reason, reason]
    assert len(pair.reboots) == 1
    if kind == "Soft":  # the Stops go out before going down
        assert all(s.t <= pair.reboots[0] for s in stops)
    else:  # down at once; the Stops follow the reboot's BootNotification
        assert all(s.t > pair.reboots[0] for s in stops)
    after = [r.action for r in pair.cs.received if r.t > pair.reboots[0]]
    assert after[0] == "BootNotification"
    assert pair.machine.statistics().in_transaction == 0
    assert pair.machine.statistics().energy_wh[0] > 0  # the register survives


def test_a_hard_reset_keeps_its_stop_queued_across_the_reboot() -> None:
    pair = MachinePair()
    start_charging(pair)
    pair.advance(30)
    pair.cs_call("Reset", {"type": "Hard"})
    assert [e.action for e in pair.machine.export_outbox()] == \
        ["StopTransaction", "SecurityEventNotification"]  # (the ResetOrReboot event)
    assert pair.cs.of("StopTransaction") == []
    pair.advance(60)
    stops = pair.cs.of("StopTransaction")
    assert len(stops) == 1 and stops[0].t > pair.reboots[0]
    assert parse_time(stops[0].payload["timestamp"]) == EPOCH + 30
    assert pair.machine.statistics().drained


@pytest.mark.parametrize(("cid", "busy", "status", "stop_reason"), [
    (1, True, "Unlocked", "UnlockCommand"),
    (1, False, "Unlocked", None),
    (7, False, "UnlockFailed", None),
])
def test_unlock_connector(cid: int, busy: bool, status: str, stop_reason: str | None) -> None:
    pair = MachinePair()
    if busy:
        start_charging(pair)
    assert pair.cs_call("UnlockConnector", {"connectorId": cid}).status == status
    reasons = [s.payload["reason"] for s in pair.cs.of("StopTransaction")]
    assert reasons == ([stop_reason] if stop_reason else [])


TRIGGER_CASES = [
    ({"requestedMessage": "BootNotification"}, "Accepted", ["BootNotification"]),
    ({"requestedMessage": "Heartbeat"}, "Accepted", ["Heartbeat"]),
    ({"requestedMessage": "StatusNotification"}, "Accepted", ["StatusNotification"] * 3),
    ({"requestedMessage": "StatusNotification", "connectorId": 2}, "Accepted",
     ["StatusNotification"]),
    ({"requestedMessage": "StatusNotification", "connectorId": 5}, "Rejected", []),
    ({"requestedMessage": "MeterValues", "connectorId": 1}, "Accepted", ["MeterValues"]),
    ({"requestedMessage": "MeterValues"}, "Accepted", ["MeterValues"] * 2),
    ({"requestedMessage": "DiagnosticsStatusNotification"}, "Accepted",
     ["DiagnosticsStatusNotification"]),
    ({"requestedMessage": "FirmwareStatusNotification"}, "Accepted",
     ["FirmwareStatusNotification"]),
]


@pytest.mark.parametrize(("payload", "status", "messages"), TRIGGER_CASES)
def test_trigger_message_answers_first_then_sends(payload: dict[str, Any], status: str,
                                                  messages: list[str]) -> None:
    pair = MachinePair(connectors=2)
    start_charging(pair)
    before = len(pair.sent)
    call = pair.cs_call("TriggerMessage", payload)
    assert call.status == status
    after = pair.sent[before:]
    assert after[0][1].unique_id == call.unique_id
    assert [s.action for _, s in after[1:] if s.message_type == 2] == messages
    if payload["requestedMessage"] == "MeterValues":
        sent = pair.cs.of("MeterValues")[-1].payload
        assert sent["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
        if sent["connectorId"] == 1:
            assert sent["transactionId"] == pair.cs.transaction_id_of(
                pair.cs.of("StartTransaction")[0])


def test_unknown_and_unsupported_cs_calls() -> None:
    pair = MachinePair(profiles=("Core",))  # a charger without the Reservation profile
    assert pair.cs_call("Frobnicate", {}).error == "NotImplemented"
    assert pair.cs_call("ReserveNow", {"connectorId": 1, "expiryDate": iso(EPOCH + 60),
                                       "idTag": "X", "reservationId": 1}).error == "NotSupported"
    assert pair.cs_call("Reset", {"type": "Sideways"}).error == "PropertyConstraintViolation"
    assert pair.cs_call("Reset", {}).error == "OccurenceConstraintViolation"


# --- invalid ids, stop data, concurrency ----------------------------------------------------------


def test_stop_transaction_on_invalid_id() -> None:
    cs = FakeCentralSystem()
    pair = MachinePair(cs=cs, config={"StopTransactionOnInvalidId": True})
    cs.answer("Authorize", {"idTagInfo": {"status": "Accepted"}})
    cs.id_tags["BAD"] = "Invalid"  # the StartTransaction result says Invalid
    start_charging(pair, tag="BAD")
    stop = pair.cs.of("StopTransaction")[0]
    assert stop.payload["reason"] == "DeAuthorized"
    assert stop.payload["transactionId"] == pair.cs.transaction_id_of(
        pair.cs.of("StartTransaction")[0])
    assert pair.status() == "Finishing"


@pytest.mark.parametrize("max_energy", [0, 500])
def test_max_energy_on_invalid_id(max_energy: int) -> None:
    cs = FakeCentralSystem()
    pair = MachinePair(cs=cs, config={"StopTransactionOnInvalidId": False,
                                      "MaxEnergyOnInvalidId": max_energy})
    cs.answer("Authorize", {"idTagInfo": {"status": "Accepted"}})
    cs.id_tags["BAD"] = "Blocked"
    start_charging(pair, tag="BAD")
    pair.advance(3600)
    assert pair.cs.of("StopTransaction") == []
    assert pair.status() == "SuspendedEVSE"
    energy = pair.machine.statistics().energy_wh[0]
    assert max_energy - 1 <= energy <= max_energy + 1
    pair.stop_local()
    assert pair.cs.of("StopTransaction")[0].payload["meterStop"] == int(energy)


def test_stop_txn_sampled_data_becomes_transaction_data() -> None:
    pair = MachinePair(config={"MeterValueSampleInterval": 60, "ClockAlignedDataInterval": 0,
                               "StopTxnSampledData": "Energy.Active.Import.Register,Voltage"})
    start_charging(pair)
    pair.advance(150)
    pair.stop_local()
    data = pair.cs.of("StopTransaction")[0].payload["transactionData"]
    contexts = [v["sampledValue"][0]["context"] for v in data]
    assert contexts == ["Transaction.Begin", "Sample.Periodic", "Sample.Periodic",
                        "Transaction.End"]
    assert [parse_time(v["timestamp"]) - EPOCH for v in data] == [0, 60, 120, 150]
    assert all({s.get("measurand") for s in v["sampledValue"]} ==
               {"Energy.Active.Import.Register", "Voltage"} for v in data)


def test_without_stop_txn_data_there_is_no_transaction_data() -> None:
    pair = MachinePair()
    start_charging(pair)
    pair.advance(150)
    pair.stop_local()
    assert "transactionData" not in pair.cs.of("StopTransaction")[0].payload


def test_concurrent_transactions_on_two_connectors() -> None:
    pair = MachinePair(connectors=2, config={"MeterValueSampleInterval": 60,
                                             "ClockAlignedDataInterval": 0})
    start_charging(pair, 1, "TAG-1")
    pair.advance(30)
    start_charging(pair, 2, "TAG-2")
    pair.advance(100)
    pair.tag("TAG-1", 1)
    pair.advance(30)
    pair.tag("TAG-2", 2)
    starts = pair.cs.of("StartTransaction")
    ids = {s.payload["connectorId"]: pair.cs.transaction_id_of(s) for s in starts}
    assert len(set(ids.values())) == 2
    for r in pair.cs.of("MeterValues", "StopTransaction"):
        connector = r.payload.get("connectorId")
        if connector is None:  # a StopTransaction: find it by id
            assert r.payload["transactionId"] in ids.values()
        else:
            assert r.payload["transactionId"] == ids[connector]
    assert [s.payload["transactionId"] for s in pair.cs.of("StopTransaction")] == \
        [ids[1], ids[2]]
    assert pair.machine.statistics().energy_wh[0] > 0 and \
        pair.machine.statistics().energy_wh[1] > 0


# --- connector rules ----------------------------------------------------------------------------


def test_connection_timeout_falls_back_to_available() -> None:
    pair = MachinePair(config={"ConnectionTimeOut": 45})
    pair.tag(TAG)
    assert pair.status() == "Preparing"
    pair.advance(44.9)
    assert pair.status() == "Preparing"
    pair.advance(0.1)
    assert pair.status() == "Available"
    pair.plug()
    assert pair.machine.statistics().in_transaction == 0  # the authorization expired
    assert pair.status() == "Preparing"


def test_connection_timeout_is_met_by_a_cable_in_time() -> None:
    pair = MachinePair(config={"ConnectionTimeOut": 45})
    pair.tag(TAG)
    pair.advance(40)
    pair.plug()
    pair.advance(100)
    assert pair.status() == "Charging"


EV_SIDE_CASES = [
    # StopTransactionOnEVSideDisconnect, UnlockConnectorOnEVSideDisconnect, statuses after
    # unplug, stop reason
    (True, True, ["Preparing", "Charging", "Finishing", "Available"], "EVDisconnected"),
    (True, False, ["Preparing", "Charging", "Finishing"], "EVDisconnected"),
    (False, True, ["Preparing", "Charging", "SuspendedEV"], None),
]


@pytest.mark.parametrize(("stop_on_disconnect", "unlock", "statuses", "reason"), EV_SIDE_CASES)
def test_ev_side_disconnect(stop_on_disconnect: bool, unlock: bool, statuses: list[str],
                            reason: str | None) -> None:
    pair = MachinePair(config={"StopTransactionOnEVSideDisconnect": stop_on_disconnect,
                               "UnlockConnectorOnEVSideDisconnect": unlock})
    start_charging(pair)
    pair.advance(60)
    pair.unplug()
    pair.advance(60)
    assert pair.statuses() == statuses
    stops = pair.cs.of("StopTransaction")
    assert [s.payload["reason"] for s in stops] == ([reason] if reason else [])
    if reason is None:
        register = pair.machine.statistics().energy_wh[0]
        pair.advance(600)  # no EV, no energy
        assert pair.machine.statistics().energy_wh[0] == register
        pair.plug()  # the EV comes back: the same transaction charges on
        pair.advance(60)
        assert pair.status() == "Charging" and pair.machine.statistics().in_transaction == 1
        assert pair.machine.statistics().energy_wh[0] > register
    if not unlock:  # the cable stays locked until it is unlocked
        pair.tag("OTHER")
        pair.advance(200)
        assert pair.status() == "Finishing" and len(stops) == 1
        assert pair.cs_call("UnlockConnector", {"connectorId": 1}).status == "Unlocked"
        assert pair.status() == "Available"


def test_minimum_status_duration_skips_transient_statuses() -> None:
    pair = MachinePair(config={"MinimumStatusDuration": 10, "ConnectionTimeOut": 5})
    pair.advance(20)
    pair.tag(TAG)  # Preparing for 5 s only: never reported
    pair.advance(30)
    assert pair.statuses() == ["Preparing", "Available"]
    assert pair.notified(1) == ["Available"]
    pair.plug()
    pair.advance(9)
    assert pair.notified(1) == ["Available"]
    pair.advance(1)
    assert pair.notified(1) == ["Available", "Preparing"]
    assert parse_time(pair.cs.of("StatusNotification")[-1].payload["timestamp"]) == EPOCH + 50


def test_after_a_reconnect_only_the_current_status_is_sent() -> None:
    pair = MachinePair(connectors=2)
    pair.disconnect()
    start_charging(pair)
    pair.advance(10)
    pair.stop_local()
    pair.unplug()
    pair.plug(2)
    before = len(pair.cs.received)
    pair.connect()
    pair.advance(1)
    sent = [(r.payload["connectorId"], r.payload["status"])
            for r in pair.cs.received[before:] if r.action == "StatusNotification"]
    assert sent == [(2, "Preparing")]  # connector 1 is Available again: nothing to say


# --- authorization at the charger level ---------------------------------------------------------

AUTH_CASES = [
    # online, cached status, LocalPreAuthorize, LocalAuthorizeOffline,
    # AllowOfflineTxForUnknownId, Authorize sent, transaction started
    (True, None, False, True, False, True, True),
    (True, "Accepted", True, True, False, False, True),
    (True, "Accepted", False, True, False, True, True),
    (False, "Accepted", False, True, False, False, True),
    (False, "Accepted", False, False, False, False, False),
    (False, "Accepted", False, False, True, False, True),
    (False, None, False, True, False, False, False),
    (False, None, False, True, True, False, True),
    (False, "Blocked", False, True, True, False, False),
]


@pytest.mark.parametrize(
    ("online", "cached", "pre_authorize", "authorize_offline", "allow_unknown", "asks", "starts"),
    AUTH_CASES,
)
def test_local_authorization_rules(online: bool, cached: str | None, pre_authorize: bool,
                                   authorize_offline: bool, allow_unknown: bool, asks: bool,
                                   starts: bool) -> None:
    cs = FakeCentralSystem()
    pair = MachinePair(cs=cs, config={"LocalPreAuthorize": pre_authorize,
                                      "LocalAuthorizeOffline": authorize_offline,
                                      "AllowOfflineTxForUnknownId": allow_unknown})
    if cached is not None:  # learn the tag from an Authorize answer
        cs.id_tags[TAG] = cached
        pair.tag(TAG)
        pair.advance(200)  # (an Accepted tag waits for a cable, then times out)
    authorizes = pair.cs.actions().count("Authorize")
    if not online:
        pair.disconnect()
    start_charging(pair)
    assert pair.cs.actions().count("Authorize") - authorizes == int(asks)
    assert pair.machine.statistics().transactions_started == int(starts)


def test_authorize_timeout_decides_as_offline() -> None:
    cs = FakeCentralSystem()
    cs.answer("Authorize", WITHHOLD)
    pair = MachinePair(cs=cs, config={"AllowOfflineTxForUnknownId": True})
    start_charging(pair)
    assert pair.machine.statistics().in_transaction == 0
    pair.advance(30)
    assert pair.machine.statistics().in_transaction == 1


def test_no_authorize_for_the_stop_and_a_foreign_tag_does_not_stop() -> None:
    pair = MachinePair()
    start_charging(pair)
    pair.tag("STRANGER")
    assert pair.machine.statistics().in_transaction == 1
    pair.tag(TAG.lower())  # idTags compare case-insensitively
    assert pair.machine.statistics().in_transaction == 0
    assert pair.cs.actions().count("Authorize") == 1


# --- clock-aligned meter values -----------------------------------------------------------------


def test_clock_aligned_meter_values() -> None:
    pair = MachinePair(connectors=2, config={"ClockAlignedDataInterval": 900,
                                             "MeterValueSampleInterval": 0,
                                             "MeterValuesAlignedData": REGISTER,
                                             "StopTxnAlignedData": REGISTER})
    pair.advance(100)
    start_charging(pair, 1)
    pair.advance(1750)
    pair.stop_local()
    values = pair.cs.of("MeterValues")
    assert sorted((v.t, v.payload["connectorId"]) for v in values) == [
        (900.0, 1), (900.0, 2), (1800.0, 1), (1800.0, 2)]
    for v in values:
        sample = v.payload["meterValue"][0]
        assert sample["sampledValue"][0]["context"] == "Sample.Clock"
        assert parse_time(sample["timestamp"]) - EPOCH == v.t
        # only the transaction's connector carries a transactionId, never 0
        assert ("transactionId" in v.payload) == (v.payload["connectorId"] == 1)
    data = pair.cs.of("StopTransaction")[0].payload["transactionData"]
    assert [d["sampledValue"][0]["context"] for d in data] == ["Sample.Clock", "Sample.Clock"]


def test_clock_aligned_grid_follows_the_synced_clock() -> None:
    cs = FakeCentralSystem(clock_offset=-300.0)  # the CS says it is 23:55
    pair = MachinePair(cs=cs, config={"ClockAlignedDataInterval": 600})
    pair.advance(1000)
    assert [v.t for v in pair.cs.of("MeterValues")] == [300.0, 900.0]


# --- the outbox across a restart of the simulator -----------------------------------------------


def test_a_restored_outbox_goes_out_after_the_boot_with_ids_filled_in() -> None:
    first = MachinePair(config={"MeterValueSampleInterval": 60, "ClockAlignedDataInterval": 0,
                                "AllowOfflineTxForUnknownId": True})
    first.disconnect()
    start_charging(first)
    first.advance(130)
    first.stop_local()
    outbox = first.machine.export_outbox()
    assert [e.action for e in outbox] == ["StartTransaction", "MeterValues", "MeterValues",
                                          "StopTransaction"]
    assert all("transactionId" not in e.payload for e in outbox)  # never a placeholder
    second = MachinePair(outbox=outbox)
    messages = tx_messages(second)
    assert second.cs.actions()[0] == "BootNotification"
    assert [r.action for r in messages] == [e.action for e in outbox]
    tx_id = second.cs.transaction_id_of(messages[0])
    assert [r.payload["transactionId"] for r in messages[1:]] == [tx_id] * 3
    assert [stamp(r) - EPOCH for r in messages] == [0, 60, 120, 130]


def test_a_pending_charger_keeps_its_outbox() -> None:
    cs = FakeCentralSystem()
    first = MachinePair(connect=False, config={"AllowOfflineTxForUnknownId": True})
    first.power_on()
    start_charging(first)
    first.stop_local()
    cs.answer("BootNotification", {"status": "Pending", "currentTime": iso(EPOCH),
                                   "interval": 30})
    second = MachinePair(cs=cs, outbox=first.machine.export_outbox())
    second.advance(29)
    assert second.cs.actions() == ["BootNotification"]
    second.advance(2)
    assert [r.action for r in tx_messages(second)] == ["StartTransaction", "StopTransaction"]


def test_a_status_lost_with_the_link_is_sent_after_the_reconnect() -> None:
    cs = FakeCentralSystem()
    cs.answer("Authorize", WITHHOLD)
    pair = MachinePair(cs=cs)
    pair.tag(TAG)  # Authorize in flight...
    pair.plug()  # ... the Preparing status waits behind it ...
    assert pair.machine.statistics().queued_calls == ("StatusNotification",)
    pair.disconnect()  # ... and is lost with the link
    pair.advance(5)
    pair.connect()
    pair.advance(1)
    assert pair.notified(1) == ["Available", "Preparing"]


def test_a_status_the_cs_refuses_is_not_resent() -> None:
    cs = FakeCentralSystem()
    pair = MachinePair(cs=cs)
    cs.answer("StatusNotification", CallErrorAnswer())
    pair.plug()
    pair.advance(100)
    assert pair.notified(1) == ["Available", "Preparing"]
    assert [d.action for d in pair.dropped()] == ["StatusNotification"]


def test_a_triggered_boot_answered_pending_holds_the_outbox_until_accepted() -> None:
    cs = FakeCentralSystem()
    pair = MachinePair(cs=cs, config={"MeterValueSampleInterval": 10,
                                      "ClockAlignedDataInterval": 0})
    start_charging(pair)
    cs.answer("BootNotification", {"status": "Pending", "currentTime": iso(EPOCH + pair.now),
                                   "interval": 60})
    assert pair.cs_call("TriggerMessage", {"requestedMessage": "BootNotification"}).status == \
        "Accepted"
    assert pair.machine.statistics().boot == BootState.PENDING
    pair.advance(59)
    assert pair.cs.of("MeterValues") == []
    assert pair.machine.statistics().outbox == 5  # sampled every 10 s, held back
    pair.advance(1)  # the boot is repeated, Accepted: the queue flows, in order
    values = pair.cs.of("MeterValues")
    assert [stamp(v) - EPOCH for v in values] == [10, 20, 30, 40, 50, 60]


def test_nothing_falls_due_while_the_charger_is_down() -> None:
    cs = FakeCentralSystem()
    cs.answer("BootNotification", {"status": "Pending", "currentTime": iso(EPOCH),
                                   "interval": 5})
    pair = MachinePair(cs=cs, reboot_delay=30.0)
    pair.advance(4)
    pair.cs_call("Reset", {"type": "Hard"})  # down until t=34; the boot retry was due at 5
    assert pair.power_on_at == 34.0 and not pair.machine.statistics().powered
    pair.advance(6)
    deadline = pair.machine.next_deadline()
    assert deadline is None or deadline > pair.now  # no busy loop until power_on
    pair.advance(25)
    assert pair.machine.statistics().boot == BootState.ACCEPTED


@pytest.mark.parametrize(("requested", "status"), [("Heartbeat", "Rejected"),
                                                   ("StatusNotification", "Rejected"),
                                                   ("BootNotification", "Accepted")])
def test_before_the_boot_is_answered_only_a_boot_can_be_triggered(requested: str,
                                                                 status: str) -> None:
    cs = FakeCentralSystem()
    cs.answer("BootNotification", WITHHOLD)
    pair = MachinePair(cs=cs)
    call = pair.cs_call("TriggerMessage", {"requestedMessage": requested})
    assert call.status == status
    assert set(pair.cs.actions()) == {"BootNotification"}


def test_a_later_clock_sync_replans_the_clock_aligned_grid() -> None:
    cs = FakeCentralSystem(boot_interval=100)
    pair = MachinePair(cs=cs, config={"ClockAlignedDataInterval": 300})
    cs.clock_offset = 0.25  # the Heartbeat at 100 moves the clock a quarter second ahead
    pair.advance(700)
    values = pair.cs.of("MeterValues")
    assert [parse_time(v.payload["meterValue"][0]["timestamp"]) - EPOCH for v in values] == \
        [300.0, 600.0]  # on the grid of the new clock, and each instant sampled once
    assert [v.t for v in values] == [299.75, 599.75]


def test_shutdown_forgets_waiting_tags() -> None:
    cs = FakeCentralSystem()
    cs.answer("Authorize", DEFER)
    pair = MachinePair(cs=cs, connectors=2)
    start_charging(pair, 1)  # Authorize unanswered
    pair.tag("TAG-2", 2)  # waits for a cable (after the first Authorize is answered)
    assert pair.machine.shutdown(pair.now) == 0
    pair.drain()
    pair.release()
    pair.plug(2)
    pair.advance(60)
    assert pair.cs.of("StartTransaction") == []
    assert pair.machine.statistics().in_transaction == 0


def test_a_triggered_boot_without_answer_releases_the_outbox() -> None:
    cs = FakeCentralSystem()
    pair = MachinePair(cs=cs, config={"MeterValueSampleInterval": 10,
                                      "ClockAlignedDataInterval": 0})
    start_charging(pair)
    cs.answer("BootNotification", WITHHOLD)
    pair.cs_call("TriggerMessage", {"requestedMessage": "BootNotification"})
    pair.advance(29)
    assert pair.cs.of("MeterValues") == []  # held while the boot is in flight
    pair.advance(1)  # the boot timed out: still Accepted, the queue moves on
    assert [stamp(v) - EPOCH for v in pair.cs.of("MeterValues")] == [10, 20, 30]
    assert pair.machine.statistics().boot == BootState.ACCEPTED


# --- hardware errors ------------------------------------------------------------------------------


def test_a_warning_is_reported_with_the_current_status_and_charging_goes_on() -> None:
    pair = MachinePair(config={"MeterValueSampleInterval": 0, "ClockAlignedDataInterval": 0})
    start_charging(pair)
    pair.advance(10)
    pair.machine.hardware_error(1, ChargePointErrorCode.HIGH_TEMPERATURE, pair.now,
                                info="cable 71 C")
    pair.drain()
    pair.advance(5)
    last = pair.cs.of("StatusNotification")[-1].payload
    assert (last["status"], last["errorCode"], last["info"]) == \
        ("Charging", "HighTemperature", "cable 71 C")
    assert pair.machine.statistics().in_transaction == 1
    pair.machine.hardware_error(1, ChargePointErrorCode.NO_ERROR, pair.now)
    pair.drain()
    pair.advance(1)
    last = pair.cs.of("StatusNotification")[-1].payload
    assert (last["status"], last["errorCode"]) == ("Charging", "NoError")


def test_a_fault_stops_the_transaction_and_blocks_new_ones_until_cleared() -> None:
    pair = MachinePair(config={"MeterValueSampleInterval": 0, "ClockAlignedDataInterval": 0})
    start_charging(pair)
    pair.advance(30)
    pair.machine.hardware_error(1, ChargePointErrorCode.GROUND_FAILURE, pair.now,
                                vendor_error_code="GF-3")
    pair.drain()
    pair.advance(5)
    (stop,) = pair.cs.of("StopTransaction")
    assert stop.payload["reason"] == "Other"
    last = pair.cs.of("StatusNotification")[-1].payload
    assert (last["status"], last["errorCode"], last["vendorErrorCode"]) == \
        ("Faulted", "GroundFailure", "GF-3")
    refused = pair.cs_call("RemoteStartTransaction", {"idTag": "REMOTE", "connectorId": 1})
    assert refused.status == "Rejected"
    pair.tag(TAG)
    pair.advance(5)
    assert len(pair.cs.of("StartTransaction")) == 1  # no new transaction while faulted
    pair.machine.hardware_error(1, ChargePointErrorCode.NO_ERROR, pair.now)
    pair.drain()
    pair.advance(1)
    assert pair.cs.of("StatusNotification")[-1].payload["status"] == "Finishing"  # EV still in
    assert pair.status(1) != "Faulted"


def test_a_fault_of_the_charge_point_stops_every_transaction() -> None:
    pair = MachinePair(connectors=2,
                       config={"MeterValueSampleInterval": 0, "ClockAlignedDataInterval": 0})
    start_charging(pair, 1)
    start_charging(pair, 2, "TAG-2")
    pair.advance(10)
    pair.machine.hardware_error(0, ChargePointErrorCode.INTERNAL_ERROR, pair.now)
    pair.drain()
    pair.advance(5)
    assert sorted(s.payload["reason"] for s in pair.cs.of("StopTransaction")) == ["Other"] * 2
    assert pair.status(0) == "Faulted"
    assert pair.status(1) == "Unavailable" and pair.status(2) == "Unavailable"
    pair.machine.hardware_error(0, ChargePointErrorCode.NO_ERROR, pair.now)
    pair.drain()
    pair.advance(5)
    assert pair.status(0) == "Available"
    assert pair.status(1) == "Finishing" and pair.status(2) == "Finishing"


# --- a configuration change is seen by the next step --------------------------------------------


def test_a_heartbeat_interval_change_moves_the_deadline_between_steps() -> None:
    pair = MachinePair(config={"HeartbeatInterval": 300})
    pair.advance(1.0)
    before = pair.machine.next_deadline()
    assert before is not None
    pair.cs_call("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "5"})
    deadline = pair.machine.next_deadline()
    assert deadline is not None and deadline < before
    assert deadline == pytest.approx(pair.now + 5)


def test_a_connection_timeout_change_is_seen_by_the_next_deadline() -> None:
    pair = MachinePair(config={"ConnectionTimeOut": 0})  # (heartbeats every 300 s)
    pair.tag(TAG)  # authorized, no cable: waits in Preparing
    ready_since = pair.now
    before = pair.machine.next_deadline()
    assert before is not None and before > pair.now + 20
    pair.cs_call("ChangeConfiguration", {"key": "ConnectionTimeOut", "value": "20"})
    assert pair.machine.next_deadline() == ready_since + 20


def test_a_new_measurand_list_is_sampled_from_the_next_sample_on() -> None:
    pair = MachinePair(config={"MeterValueSampleInterval": 60, "ClockAlignedDataInterval": 0})
    start_charging(pair)
    pair.cs_call("ChangeConfiguration", {"key": "MeterValuesSampledData",
                                         "value": "Voltage,SoC"})
    pair.advance(61)
    [sample] = pair.cs.of("MeterValues")
    measurands = {s.get("measurand") for v in sample.payload["meterValue"]
                  for s in v["sampledValue"]}
    assert measurands == {"Voltage", "SoC"}


def test_a_dropped_machine_is_freed_without_the_cyclic_gc() -> None:
    """The parts of a machine form no reference cycle, so a machine frozen by the fleet's
    ``gc.freeze()`` and dropped later (a charger restarted after a crash) is still freed, by
    reference counting alone."""
    counter = itertools.count()
    machine = ChargerMachine(ChargerSpec(identity="CP-1", vendor="V", model="M"),
                             rng=random.Random(1), new_id=lambda: str(next(counter)),
                             wall_epoch=0.0, now=0.0)
    machine.power_on(0.0)
    machine.connected(0.0)
    machine.plug_in(1, 0.0, ev=EvSpec())
    ref = weakref.ref(machine)
    enabled = gc.isenabled()
    gc.disable()
    try:
        del machine
        assert ref() is None
    finally:
        if enabled:
            gc.enable()


# --- the local reboot command and the connector views ---------------------------------------------


@pytest.mark.parametrize(("hard", "reason"), [(False, "Reboot"), (True, "PowerLoss")])
def test_a_local_reboot_stops_transactions_and_reboots(hard: bool, reason: str) -> None:
    pair = MachinePair(connectors=2)
    start_charging(pair, 1)
    start_charging(pair, 2, tag="TAG-2")
    pair.advance(60)
    pair.machine.reboot(pair.now, hard=hard)
    pair.drain()
    if hard:  # down at once: the Stops wait in the outbox
        assert [e.action for e in pair.machine.export_outbox()] == ["StopTransaction"] * 2
        assert pair.cs.of("StopTransaction") == []
    pair.advance(60)
    stops = pair.cs.of("StopTransaction")
    assert [s.payload["reason"] for s in stops] == [reason, reason]
    assert len(pair.reboots) == 1
    if hard:
        assert all(s.t > pair.reboots[0] for s in stops)
    else:
        assert all(s.t <= pair.reboots[0] for s in stops)
    after = [r.action for r in pair.cs.received if r.t > pair.reboots[0]]
    assert after[0] == "BootNotification"
    assert pair.machine.statistics().in_transaction == 0
    assert pair.machine.statistics().drained


def test_a_soft_local_reboot_waits_at_most_the_call_timeout_for_its_stops() -> None:
    cs = FakeCentralSystem()
    pair = MachinePair(cs=cs)
    start_charging(pair)
    pair.advance(10)
    cs.answer("StopTransaction", WITHHOLD)
    pair.machine.reboot(pair.now)
    pair.drain()
    rebooting = pair.now
    pair.advance(pair.spec.call_timeout + 10)
    assert len(pair.reboots) == 1
    assert pair.reboots[0] == pytest.approx(rebooting + pair.spec.call_timeout)


def test_a_reboot_while_down_is_ignored() -> None:
    pair = MachinePair()
    pair.machine.reboot(pair.now, hard=True)
    pair.drain()
    assert not pair.machine.statistics().powered
    pair.machine.reboot(pair.now, hard=True)
    pair.drain()
    assert len(pair.reboots) == 1


def test_connector_views_show_status_transaction_and_energy() -> None:
    pair = MachinePair(connectors=2)
    start_charging(pair, 2)
    pair.advance(600)
    views = pair.machine.connectors()
    assert [v.connector_id for v in views] == [0, 1, 2]
    assert views[0].status == "Available" and not views[0].in_transaction
    assert views[1].status == "Available" and views[1].transaction_id is None
    assert not views[1].plugged
    start = pair.cs.of("StartTransaction")[0]
    assert views[2].status == "Charging" and views[2].plugged
    assert views[2].in_transaction
    assert views[2].transaction_id == pair.cs.transaction_id_of(start)
    assert views[2].energy_wh == pair.machine.statistics().energy_wh[1] > 0
