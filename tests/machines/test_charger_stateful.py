"""Random sequences of driver, link, central-system and clock events against the charger machine.

A hypothesis ``RuleBasedStateMachine`` drives a two-connector charger (tests/machines/pair.py)
with plug, unplug, tag, local stop, disconnect, reconnect, CS commands, scripted CS failures and
clock advances. The pair itself asserts, on every frame, the schema, one CALL outstanding, no
reused message id, nothing before the boot is answered and legal status changes only; the
invariants here add the energy registers and the transaction messages' fate. At teardown the CS
turns friendly, the link comes up, and everything queued must come through.
"""

from __future__ import annotations

import collections
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from simulator.events import MessageDropped, StatusChanged
from simulator.machines.meter import EvSpec
from simulator.ocpp.v16 import ChargePointErrorCode
from tests.machines.pair import (
    DEFER,
    EPOCH,
    TRANSACTION_ACTIONS,
    WITHHOLD,
    CallErrorAnswer,
    FakeCentralSystem,
    MachinePair,
    iso,
)

# OCPP 1.6 core spec §4.9: from → allowed "to" statuses (connectors > 0); connector 0 moves
# freely among its three statuses.
SPEC_ROWS = {
    "Available": "Preparing Charging SuspendedEV SuspendedEVSE Reserved Unavailable Faulted",
    "Preparing": "Available Charging SuspendedEV SuspendedEVSE Finishing Faulted",
    "Charging": "Available SuspendedEV SuspendedEVSE Finishing Unavailable Faulted",
    "SuspendedEV": "Available Charging SuspendedEVSE Finishing Unavailable Faulted",
    "SuspendedEVSE": "Available Charging SuspendedEV Finishing Unavailable Faulted",
    "Finishing": "Available Preparing Unavailable Faulted",
    "Reserved": "Available Preparing Unavailable Faulted",
    "Unavailable": "Available Preparing Charging SuspendedEV SuspendedEVSE Faulted",
    "Faulted": "Available Preparing Charging SuspendedEV SuspendedEVSE Finishing Reserved "
    "Unavailable",
}
SPEC_ZERO = ("Available", "Unavailable", "Faulted")
CONNECTORS = (1, 2)
TAGS = ("TAG-1", "TAG-2", "BLOCKED")
EVS = (
    EvSpec(),
    EvSpec(battery_kwh=20, initial_soc=85, target_soc=90, max_power_kw=7.4, phases=1),
    EvSpec(battery_kwh=80, initial_soc=5, max_power_kw=50),
)
CONFIG: dict[str, str | int | bool | float] = {
    "MeterValueSampleInterval": 30,
    "ClockAlignedDataInterval": 300,
    "TransactionMessageAttempts": 3,
    "TransactionMessageRetryInterval": 10,
    "StopTxnSampledData": "Energy.Active.Import.Register",
    "ConnectionTimeOut": 60,
    "ReserveConnectorZeroSupported": True,
}

CS_COMMANDS = st.one_of(
    st.tuples(st.just("ChangeAvailability"),
              st.fixed_dictionaries({"connectorId": st.integers(0, 3),
                                     "type": st.sampled_from(["Operative", "Inoperative"])})),
    st.tuples(st.just("RemoteStartTransaction"),
              st.fixed_dictionaries({"idTag": st.sampled_from(TAGS)},
                                    optional={"connectorId": st.integers(1, 2)})),
    st.tuples(st.just("RemoteStopTransaction"),
              st.fixed_dictionaries({"transactionId": st.integers(1000, 1010)})),
    st.tuples(st.just("Reset"), st.fixed_dictionaries({"type": st.sampled_from(["Soft",
                                                                                 "Hard"])})),
    st.tuples(st.just("UnlockConnector"), st.fixed_dictionaries({"connectorId": st.integers(1,
                                                                                            3)})),
    st.tuples(st.just("TriggerMessage"),
              st.fixed_dictionaries(
                  {"requestedMessage": st.sampled_from(
                      ["BootNotification", "Heartbeat", "StatusNotification", "MeterValues",
                       "DiagnosticsStatusNotification", "FirmwareStatusNotification"])},
                  optional={"connectorId": st.integers(0, 2)})),
    st.tuples(st.just("ChangeConfiguration"),
              st.sampled_from([{"key": "MeterValueSampleInterval", "value": "20"},
                               {"key": "StopTransactionOnEVSideDisconnect", "value": "false"},
                               {"key": "StopTransactionOnInvalidId", "value": "false"},
                               {"key": "MaxEnergyOnInvalidId", "value": "300"},
                               {"key": "AuthorizeRemoteTxRequests", "value": "false"},
                               {"key": "MinimumStatusDuration", "value": "5"},
                               {"key": "AllowOfflineTxForUnknownId", "value": "true"},
                               {"key": "HeartbeatInterval", "value": "45"}])),
    st.tuples(st.just("ClearCache"), st.just({})),
    st.tuples(st.just("ReserveNow"),
              st.fixed_dictionaries({"connectorId": st.integers(0, 3),
                                     "expiryDate": st.sampled_from(
                                         [iso(EPOCH + s) for s in (30, 200, 3600)]),
                                     "idTag": st.sampled_from(TAGS),
                                     "reservationId": st.integers(1, 3)},
                                    optional={"parentIdTag": st.just("TAG-1")})),
    st.tuples(st.just("CancelReservation"),
              st.fixed_dictionaries({"reservationId": st.integers(1, 3)})),
    st.tuples(st.just("SendLocalList"),
              st.fixed_dictionaries({"listVersion": st.integers(1, 3),
                                     "updateType": st.sampled_from(["Full", "Differential"])},
                                    optional={"localAuthorizationList": st.lists(
                                        st.fixed_dictionaries(
                                            {"idTag": st.sampled_from(TAGS)},
                                            optional={"idTagInfo": st.fixed_dictionaries(
                                                {"status": st.sampled_from(
                                                    ["Accepted", "Blocked"])})}),
                                        max_size=3, unique_by=lambda e: e["idTag"])})),
    st.tuples(st.just("GetConfiguration"), st.just({})),
)

ORDINARY_ACTIONS = frozenset({"BootNotification", "Authorize", "StatusNotification", "Heartbeat"})
FAILURES = st.sampled_from([CallErrorAnswer("InternalError"), CallErrorAnswer("FormatViolation"),
                            WITHHOLD])


HARDWARE_CODES = [ChargePointErrorCode.NO_ERROR, ChargePointErrorCode.HIGH_TEMPERATURE,
                  ChargePointErrorCode.GROUND_FAILURE]  # clear, a warning, a fault


class ChargerUnderChaos(RuleBasedStateMachine):
    """The charger against a CS and a link that misbehave at random."""

    def __init__(self) -> None:
        super().__init__()
        self.cs = FakeCentralSystem(boot_interval=120)
        self.cs.id_tags["BLOCKED"] = "Blocked"
        self.pair = MachinePair(connectors=len(CONNECTORS), cs=self.cs, config=CONFIG,
                                reboot_delay=5.0)
        self.energy = list(self.pair.machine.statistics().energy_wh)

    # --- the driver and the car -----------------------------------------------------------------

    @rule(cid=st.sampled_from(CONNECTORS), ev=st.sampled_from(EVS))
    def plug(self, cid: int, ev: EvSpec) -> None:
        if not self.pair.machine.connectors()[cid].plugged:
            self.pair.plug(cid, ev)

    @rule(cid=st.sampled_from(CONNECTORS))
    def unplug(self, cid: int) -> None:
        self.pair.unplug(cid)

    @rule(cid=st.sampled_from(CONNECTORS), tag=st.sampled_from(TAGS))
    def tag(self, cid: int, tag: str) -> None:
        self.pair.tag(tag, cid)

    @rule(cid=st.sampled_from(CONNECTORS))
    def stop_local(self, cid: int) -> None:
        self.pair.stop_local(cid)

    @rule(cid=st.sampled_from([0, *CONNECTORS]), code=st.sampled_from(HARDWARE_CODES))
    def hardware(self, cid: int, code: ChargePointErrorCode) -> None:
        self.pair.machine.hardware_error(cid, code, self.pair.now)
        self.pair.drain()

    @rule(hard=st.booleans())
    def reboot(self, hard: bool) -> None:
        self.pair.machine.reboot(self.pair.now, hard=hard)
        self.pair.drain()

    # --- the link and the clock -----------------------------------------------------------------

    @rule()
    def disconnect(self) -> None:
        self.pair.auto_reconnect = False
        self.pair.disconnect()

    @rule()
    def reconnect(self) -> None:
        self.pair.auto_reconnect = True
        if not self.pair.online and self.pair.power_on_at is None:
            self.pair.connect()

    @rule(seconds=st.sampled_from([0.5, 3, 10, 31, 65, 301]))
    def advance(self, seconds: float) -> None:
        self.pair.advance(seconds)

    # --- the central system ---------------------------------------------------------------------

    @precondition(lambda self: self.pair.online)
    @rule(command=CS_COMMANDS)
    def cs_command(self, command: tuple[str, dict[str, Any]]) -> None:
        action, payload = command
        call = self.pair.cs_call(action, payload)
        machine = self.pair.machine
        stats = machine.statistics()
        if stats.boot.value != "rejected" and stats.powered:
            assert call.result is not None or call.error is not None, f"{action} unanswered"

    @rule(action=st.sampled_from(sorted(TRANSACTION_ACTIONS | ORDINARY_ACTIONS)),
          failure=FAILURES)
    def cs_fails_next(self, action: str, failure: Any) -> None:
        self.cs.answer(action, failure)

    @rule(action=st.sampled_from(sorted(TRANSACTION_ACTIONS)))
    def cs_answers_next_late(self, action: str) -> None:
        self.cs.answer(action, DEFER)

    @precondition(lambda self: self.pair.cs.deferred)
    @rule()
    def cs_sends_late_answers(self) -> None:
        self.pair.release()

    @rule(status=st.sampled_from(["Pending", "Rejected"]), interval=st.sampled_from([0, 20]))
    def cs_refuses_next_boot(self, status: str, interval: int) -> None:
        self.cs.answer("BootNotification", lambda _: {
            "status": status, "currentTime": iso(EPOCH + self.pair.now), "interval": interval})

    # --- invariants -----------------------------------------------------------------------------

    @invariant()
    def registers_never_decrease(self) -> None:
        energy = list(self.pair.machine.statistics().energy_wh)
        assert all(new >= old for old, new in zip(self.energy, energy, strict=True)), \
            f"register went down: {self.energy} -> {energy}"
        self.energy = energy

    @invariant()
    def statuses_follow_the_table(self) -> None:
        # The pair checks each StatusChanged with the machine's table; check it here against
        # the spec's rows, transcribed independently (core spec §4.9).
        for event in self.pair.events_of(StatusChanged):
            if event.old == event.new:
                assert event.error_code is not None  # only the error code changed
                continue
            allowed = SPEC_ZERO if event.connector == 0 else SPEC_ROWS[event.old].split()
            assert event.new in allowed and event.new != event.old, event
        dropped = self._dropped  # keep what the other invariant needs; forget the rest
        self.pair.events.clear()
        self.pair.events.extend(dropped)

    @property
    def _dropped(self) -> list[MessageDropped]:
        return [e for e in self.pair.events if isinstance(e, MessageDropped)]

    @invariant()
    def at_most_one_call_outstanding(self) -> None:
        # The pair asserts it on every CALL; here the machine's view must agree with the CS's.
        stats = self.pair.machine.statistics()
        live = self.pair.outstanding()
        assert len(live) <= 1, live
        assert stats.call_pending == bool(live), (stats, live)
        assert not (stats.call_pending and not stats.online)

    @invariant()
    def transaction_messages_are_not_lost_or_duplicated(self) -> None:
        assert all(n <= 1 for n in self.pair.delivered.values()), "a message delivered twice"
        dropped = collections.Counter(e.action for e in self._dropped)
        vanished = collections.Counter(e.action for e in self.pair.vanished)
        for action, count in vanished.items():
            assert count <= dropped[action], f"{action} left the outbox unsent, unrecorded"
        # (payloads cannot tell messages apart: two sessions at one instant look the same, so
        # the outbox sequence numbers the pair tracks are the identity)
        tx_ids = [r.payload.get("transactionId") for r in self.cs.received]
        assert -1 not in tx_ids and 0 not in tx_ids

    def teardown(self) -> None:
        pair = self.pair
        self.cs.script.clear()
        pair.auto_reconnect = True
        pair.advance(10)  # a pending reboot completes
        if not pair.online:
            pair.connect()
        pair.machine.shutdown(pair.now)
        pair.drain()
        pair.advance(3600)
        stats = pair.machine.statistics()
        assert stats.drained, stats
        assert stats.in_transaction == 0
        self.transaction_messages_are_not_lost_or_duplicated()
        seen = set(pair.seen_seqs)
        gone = {e.seq for e in pair.vanished}
        assert seen == set(pair.delivered) | gone, "a transaction message was lost"
        # the CS's view converges: the last status it got per connector is the current one
        # (unless the CS refused the last one: a refused status is dropped, not resent)
        last = {r.payload["connectorId"]: r for r in pair.cs.of("StatusNotification")}
        for cid, report in last.items():
            if report.answer == "result":
                assert report.payload["status"] == pair.status(cid), (report, pair.status(cid))
        assert set(last) == {view.connector_id for view in pair.machine.connectors()}
        starts = {pair.cs.transaction_id_of(r): r.payload for r in pair.cs.of("StartTransaction")
                  if r.answer == "result"}
        for stop in pair.cs.of("StopTransaction"):
            start = starts.get(stop.payload["transactionId"])
            if start is not None:
                assert stop.payload["meterStop"] >= start["meterStart"]


ChargerUnderChaos.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
TestChargerUnderChaos = ChargerUnderChaos.TestCase
