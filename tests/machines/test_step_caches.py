"""The values the charger keeps between steps are never stale.

The charger keeps some configuration as plain attributes (refreshed by the store's ``on_change``
on every write) and each connector keeps its report deadline (``report_at``, refreshed by every
method that changes what it depends on). These tests pin the invalidation: a change between two
steps is seen at once, and the kept value always equals the one computed the long way round.
"""

from __future__ import annotations

import contextlib
import random

import pytest

from simulator.machines.charger import ChargerMachine, ChargerSpec
from simulator.machines.connector import ConnectorMachine, IllegalTransition
from simulator.machines.meter import parse_measurand_list
from simulator.ocpp.v16 import ChargePointErrorCode, ChargePointStatus
from tests.machines.pair import MachinePair

_S = ChargePointStatus
_E = ChargePointErrorCode

_KEPT = {
    "HeartbeatInterval": "heartbeat_interval",
    "ConnectionTimeOut": "connection_timeout",
    "MeterValueSampleInterval": "sample_interval",
}


def _assert_kept_matches_store(machine: ChargerMachine) -> None:
    for key, attribute in _KEPT.items():
        assert getattr(machine, attribute) == machine.config.get_int(key), key
    for key in ("MeterValuesSampledData", "StopTxnSampledData", "MeterValuesAlignedData"):
        assert machine.measurands(key) == parse_measurand_list(machine.config.get_str(key)), key


@pytest.mark.parametrize("key", sorted(_KEPT))
def test_change_configuration_is_seen_at_once(key: str) -> None:
    pair = MachinePair()
    _assert_kept_matches_store(pair.machine)
    call = pair.cs_call("ChangeConfiguration", {"key": key, "value": "17"})
    assert call.status == "Accepted"
    assert getattr(pair.machine, _KEPT[key]) == 17
    _assert_kept_matches_store(pair.machine)


def test_a_new_measurand_list_is_parsed_at_once() -> None:
    pair = MachinePair()
    assert pair.machine.measurands("MeterValuesSampledData") == parse_measurand_list(
        pair.machine.config.get_str("MeterValuesSampledData"))  # (now kept)
    pair.cs_call("ChangeConfiguration", {"key": "MeterValuesSampledData",
                                         "value": "Voltage,SoC"})
    assert pair.machine.measurands("MeterValuesSampledData") == parse_measurand_list(
        "Voltage,SoC")


def test_internal_writes_and_reboots_refresh_the_kept_values() -> None:
    machine = ChargerMachine(
        ChargerSpec(identity="CP-1", vendor="V", model="M", config={"HeartbeatInterval": 30}),
        rng=random.Random(1), new_id=lambda: "x", wall_epoch=0.0, now=0.0)
    assert machine.heartbeat_interval == 30
    machine.config.set_internal("HeartbeatInterval", 45)  # (what an Accepted boot does)
    assert machine.heartbeat_interval == 45
    machine.config.set_internal("MeterValuesSampledData", "Current.Import")
    assert machine.measurands("MeterValuesSampledData") == parse_measurand_list("Current.Import")
    machine.power_on(1.0)  # (the store's reboot applies pending changes)
    _assert_kept_matches_store(machine)


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
    pair.tag("TAG-1")  # authorized, no cable: waits in Preparing
    before = pair.machine.next_deadline()
    assert before is not None and before > pair.now + 20
    pair.cs_call("ChangeConfiguration", {"key": "ConnectionTimeOut", "value": "20"})
    ready_since = pair.machine.points[1].ready_since
    assert pair.machine.next_deadline() == ready_since + 20


def _long_way(machine: ConnectorMachine) -> float | None:
    # The definition report_at caches (reading the private state it is kept from).
    if not machine.online or machine._condition == machine._reported:
        return None
    return machine.since + machine.minimum_status_duration


def test_report_at_follows_every_input() -> None:
    rng = random.Random(5)
    machine = ConnectorMachine(1, now=0.0, minimum_status_duration=2)
    assert machine.report_at == 2.0
    now = 0.0
    for _ in range(5000):
        now += rng.choice([0.0, 0.5, 3.0])
        step = rng.randrange(8)
        if step == 0:
            target = rng.choice([_S.AVAILABLE, _S.PREPARING, _S.FAULTED])
            code = _E.GROUND_FAILURE if target == _S.FAULTED else rng.choice(
                [_E.NO_ERROR, _E.HIGH_TEMPERATURE])
            with contextlib.suppress(IllegalTransition):  # (some moves are illegal)
                machine.set_status(target, now, error_code=code)
        elif step == 1:
            machine.mark_offline()
        elif step == 2:
            machine.mark_online(now)
        elif step == 3:
            machine.forget_reported()
        elif step == 4:
            machine.report_lost(machine.status, machine.error_code)
        elif step == 5:
            machine.due_notification(now)
        elif step == 6:
            machine.current_notification()
        else:
            machine.set_minimum_status_duration(rng.choice([0, 1, 4]))
        assert machine.report_at == _long_way(machine)
        assert machine.next_deadline() == machine.report_at


def test_a_dropped_machine_is_freed_without_the_cyclic_gc() -> None:
    """The store holds its owner's refresh hook weakly: a machine and its store form no cycle,
    so a machine frozen by the fleet's ``gc.freeze()`` and dropped later (a charger restarted
    after a crash) is still freed, by reference counting alone."""
    import gc
    import weakref

    counter = iter(range(10**9))
    machine = ChargerMachine(ChargerSpec(identity="CP-1", vendor="V", model="M"),
                             rng=random.Random(1), new_id=lambda: str(next(counter)),
                             wall_epoch=0.0, now=0.0)
    machine.power_on(0.0)
    store = weakref.ref(machine.config)
    enabled = gc.isenabled()
    gc.disable()
    try:
        del machine
        assert store() is None
    finally:
        if enabled:
            gc.enable()
