"""A behaviour fault ended before its ``until`` (the control API's ``DELETE /api/chaos/{id}``,
:meth:`ChargerMachine.end_fault`): it ends then exactly as it would have at its ``until``, with
its ``fault_ended`` note; another injection, or one the charger does not have, is untouched."""

from __future__ import annotations

from typing import Any

import pytest

from tests.machines.pair import MachinePair
from tests.machines.test_faults import ENDING, charging, inject, notes


@pytest.mark.parametrize(("fault", "params"), ENDING, ids=[f for f, _ in ENDING])
def test_a_fault_ended_early_ends_then_as_at_its_end(fault: str, params: dict[str, Any]
                                                     ) -> None:
    pair = MachinePair()
    pair.advance(10)
    injection = inject(pair, fault, lasting=40, connector=1, **params)
    pair.advance(5)
    assert not pair.machine.end_fault("someone-else", pair.now)
    assert pair.machine.end_fault(injection.id, pair.now)
    pair.drain()
    [ended] = notes(pair, "fault_ended")
    assert (ended.t, ended.data["injection"]) == (15, injection.id)
    assert pair.machine.next_deadline() == pair.sent[-1][0] + 300  # the heartbeat only
    assert not pair.machine.end_fault(injection.id, pair.now)  # over already


def test_a_connector_fault_ended_early_clears_the_connector_now() -> None:
    pair = charging()
    pair.advance(30)
    injection = inject(pair, "connector_fault", lasting=600, connector=1,
                       error_code="GroundFailure")
    assert pair.cs.of("StatusNotification")[-1].payload["status"] == "Faulted"
    pair.advance(10)
    assert pair.machine.end_fault(injection.id, pair.now)
    pair.drain()
    report = pair.cs.of("StatusNotification")[-1]
    assert (report.t, report.payload["errorCode"]) == (40, "NoError")


def test_slow_responses_ended_early_answers_new_calls_at_once() -> None:
    pair = MachinePair()
    injection = inject(pair, "slow_responses", lasting=300, delay=20.0)
    held = pair.cs_call("ClearCache")
    pair.advance(5)
    assert pair.machine.end_fault(injection.id, pair.now)
    pair.drain()
    quick = pair.cs_call("ClearCache")
    assert quick.answered_at == 5
    pair.advance(15)
    assert held.answered_at == 20  # a call held before the end keeps its time
