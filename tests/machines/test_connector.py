"""The connector status machine: the transition table, connector 0, reporting policy, triggers."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest

from simulator.machines.connector import (
    CONNECTOR_ZERO_STATUSES,
    ERROR_CODE_FAULTS,
    TRANSITIONS,
    ConnectorMachine,
    IllegalTransition,
    allowed_transitions,
    delivery_status,
    ev_side_disconnect,
    fault_status,
    is_allowed,
    is_warning,
)
from simulator.ocpp.v16 import (
    ChargePointErrorCode,
    ChargePointStatus,
    Reason,
    encode_payload,
)
from tests.oracle import ORACLE

S = ChargePointStatus
E = ChargePointErrorCode

# OCPP 1.6 core spec §4.9, transcribed independently of the module's table: from -> allowed
# "to" states.
SPEC_TABLE = {
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
ALL_PAIRS = [
    (S(a), S(b), b in SPEC_TABLE[a].split())
    for a, b in itertools.product([s.value for s in S], repeat=2)
    if a != b
]
EPOCH = 1_700_000_000.0


def machine_in(status: ChargePointStatus) -> ConnectorMachine:
    return ConnectorMachine(1, now=0.0, initial=status)


def test_table_matches_the_spec() -> None:
    assert set(TRANSITIONS) == set(S)
    for old, targets in TRANSITIONS.items():
        assert {t.value for t in targets} == set(SPEC_TABLE[old.value].split())


@pytest.mark.parametrize(("old", "new", "allowed"), ALL_PAIRS)
def test_every_transition(old: ChargePointStatus, new: ChargePointStatus, allowed: bool) -> None:
    m = machine_in(old)
    assert is_allowed(1, old, new) is allowed
    if allowed:
        assert m.set_status(new, 5.0) is True
        assert m.status == new
        assert m.since == 5.0
    else:
        with pytest.raises(IllegalTransition) as info:
            m.set_status(new, 5.0)
        assert (info.value.old, info.value.new, info.value.connector_id) == (old, new, 1)
        assert m.status == old
        assert m.since == 0.0


@pytest.mark.parametrize(("old", "new"), list(itertools.product(list(S), repeat=2)))
def test_connector_zero(old: ChargePointStatus, new: ChargePointStatus) -> None:
    if old not in CONNECTOR_ZERO_STATUSES:
        with pytest.raises(ValueError, match="connector 0"):
            ConnectorMachine(0, now=0.0, initial=old)
        return
    m = ConnectorMachine(0, now=0.0, initial=old)
    if new in CONNECTOR_ZERO_STATUSES:
        m.set_status(new, 1.0)
        assert m.status == new
    else:
        with pytest.raises(IllegalTransition):
            m.set_status(new, 1.0)
    assert allowed_transitions(0, old) <= CONNECTOR_ZERO_STATUSES


def test_negative_connector_id_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        ConnectorMachine(-1, now=0.0)


def test_same_status_is_a_no_op_but_a_new_error_code_is_a_change() -> None:
    m = ConnectorMachine(1, now=0.0)
    assert m.set_status(S.AVAILABLE, 3.0) is False
    assert m.since == 0.0
    assert m.set_status(S.AVAILABLE, 4.0, error_code=E.HIGH_TEMPERATURE) is True
    assert m.warning
    assert m.since == 4.0


def test_fault_remembers_the_pre_fault_status() -> None:
    m = machine_in(S.CHARGING)
    m.set_status(S.FAULTED, 1.0, error_code=E.GROUND_FAILURE, vendor_error_code="GF-7")
    assert m.pre_fault_status == S.CHARGING
    assert not m.warning
    assert m.vendor_error_code == "GF-7"
    m.set_status(S.FAULTED, 2.0, error_code=E.OVER_CURRENT_FAILURE)
    assert m.pre_fault_status == S.CHARGING
    m.set_status(S.CHARGING, 3.0)
    assert m.pre_fault_status is None


# --- reporting -------------------------------------------------------------------------------


def test_initial_status_is_reported_once() -> None:
    m = ConnectorMachine(1, now=10.0)
    report = m.due_notification(10.0)
    assert report is not None
    assert (report.status, report.error_code, report.since) == (S.AVAILABLE, E.NO_ERROR, 10.0)
    assert m.due_notification(11.0) is None
    assert m.next_deadline() is None


def test_minimum_status_duration_skips_transient_states() -> None:
    m = ConnectorMachine(1, now=0.0, minimum_status_duration=5)
    assert m.due_notification(4.9) is None
    assert m.next_deadline() == 5.0
    assert m.due_notification(5.0) is not None
    m.set_status(S.PREPARING, 10.0)
    m.set_status(S.CHARGING, 12.0)  # Preparing held 2 s < 5 s: never reported
    assert m.next_deadline() == 17.0
    assert m.due_notification(16.0) is None
    report = m.due_notification(17.0)
    assert report is not None and report.status == S.CHARGING and report.since == 12.0


def test_a_status_that_returns_within_the_minimum_duration_is_not_reported() -> None:
    m = ConnectorMachine(1, now=0.0, minimum_status_duration=5)
    m.due_notification(5.0)
    m.set_status(S.PREPARING, 10.0)
    m.set_status(S.AVAILABLE, 11.0)
    assert m.next_deadline() is None
    assert m.due_notification(100.0) is None


def test_changing_the_minimum_duration_applies_to_the_pending_status() -> None:
    m = ConnectorMachine(1, now=0.0, minimum_status_duration=60)
    m.set_minimum_status_duration(-3)
    assert m.minimum_status_duration == 0
    assert m.due_notification(0.0) is not None


def test_offline_changes_report_only_the_current_status_after_reconnect() -> None:
    m = ConnectorMachine(1, now=0.0)
    m.due_notification(0.0)
    m.mark_offline()
    for t, status in [(1.0, S.PREPARING), (2.0, S.CHARGING), (3.0, S.SUSPENDED_EV)]:
        m.set_status(status, t)
        assert m.due_notification(t) is None
        assert m.next_deadline() is None
    m.mark_online(10.0)
    assert m.online
    report = m.due_notification(10.0)
    assert report is not None and report.status == S.SUSPENDED_EV and report.since == 3.0
    assert m.due_notification(10.0) is None


def test_offline_round_trip_to_the_reported_status_sends_nothing() -> None:
    m = machine_in(S.CHARGING)
    m.due_notification(0.0)
    m.mark_offline()
    m.set_status(S.SUSPENDED_EVSE, 1.0)
    m.set_status(S.CHARGING, 2.0)
    m.mark_online(3.0)
    assert m.due_notification(3.0) is None


def test_forget_reported_and_current_notification() -> None:
    m = ConnectorMachine(2, now=0.0, minimum_status_duration=30)
    report = m.current_notification()  # TriggerMessage: now, regardless of the duration
    assert report.connector_id == 2 and report.status == S.AVAILABLE
    assert m.due_notification(100.0) is None
    m.forget_reported()
    assert m.due_notification(100.0) == report


def test_report_timestamp_is_when_the_status_took_effect_and_schema_valid() -> None:
    m = machine_in(S.CHARGING)
    m.set_status(S.SUSPENDED_EVSE, 42.5, error_code=E.HIGH_TEMPERATURE, info="derated")
    report = m.due_notification(50.0)
    assert report is not None
    request = report.to_request(EPOCH)
    assert request.timestamp == dt.datetime.fromtimestamp(EPOCH + 42.5, tz=dt.UTC)
    assert request.status == S.SUSPENDED_EVSE
    assert request.error_code == E.HIGH_TEMPERATURE
    assert request.info == "derated"
    assert ORACLE.errors("StatusNotification", "request", encode_payload(request)) == []


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("code", list(E))
def test_every_status_and_code_is_schema_valid(
    status: ChargePointStatus, code: ChargePointErrorCode
) -> None:
    m = ConnectorMachine(0 if status in CONNECTOR_ZERO_STATUSES else 1, now=0.0, initial=status)
    m.set_status(status, 1.0, error_code=code, vendor_id="acme", vendor_error_code="x1")
    payload = encode_payload(m.current_notification().to_request(EPOCH))
    assert ORACLE.errors("StatusNotification", "request", payload) == []
    assert is_warning(status, code) is (code != E.NO_ERROR and status != S.FAULTED)


# --- triggers --------------------------------------------------------------------------------


def test_preparing_deadline() -> None:
    m = ConnectorMachine(1, now=0.0)
    assert m.preparing_deadline(120) is None
    m.set_status(S.PREPARING, 7.0)
    assert m.preparing_deadline(120) == 127.0
    assert m.preparing_deadline(0) is None


@pytest.mark.parametrize(
    ("status", "in_tx", "stop_on_disconnect", "unlock", "expected"),
    [
        (S.CHARGING, True, True, True, (S.FINISHING, Reason.EV_DISCONNECTED, True)),
        (S.CHARGING, True, True, False, (S.FINISHING, Reason.EV_DISCONNECTED, False)),
        (S.CHARGING, True, False, False, (S.SUSPENDED_EV, None, False)),
        (S.SUSPENDED_EVSE, True, False, True, (S.SUSPENDED_EV, None, True)),
        (S.PREPARING, False, True, True, (S.AVAILABLE, None, True)),
        (S.FINISHING, False, False, True, (S.AVAILABLE, None, True)),
        (S.UNAVAILABLE, False, True, True, (S.UNAVAILABLE, None, True)),
        (S.FAULTED, False, True, False, (S.FAULTED, None, False)),
    ],
)
def test_ev_side_disconnect(
    status: ChargePointStatus,
    in_tx: bool,
    stop_on_disconnect: bool,
    unlock: bool,
    expected: tuple[ChargePointStatus, Reason | None, bool],
) -> None:
    outcome = ev_side_disconnect(
        status,
        in_transaction=in_tx,
        stop_transaction_on_ev_side_disconnect=stop_on_disconnect,
        unlock_connector_on_ev_side_disconnect=unlock,
    )
    assert (outcome.status, outcome.stop_reason, outcome.unlock) == expected
    assert is_allowed(1, status, outcome.status)


@pytest.mark.parametrize(
    ("ev", "evse", "expected"),
    [
        (False, False, S.CHARGING),
        (True, False, S.SUSPENDED_EV),
        (False, True, S.SUSPENDED_EVSE),
        (True, True, S.SUSPENDED_EVSE),
    ],
)
def test_delivery_status(ev: bool, evse: bool, expected: ChargePointStatus) -> None:
    assert delivery_status(ev_suspended=ev, evse_suspended=evse) == expected


def test_every_error_code_has_a_severity() -> None:
    assert set(ERROR_CODE_FAULTS) == set(E) - {E.NO_ERROR}


@pytest.mark.parametrize("code", list(E))
def test_fault_status(code: ChargePointErrorCode) -> None:
    result = fault_status(S.CHARGING, code)
    if ERROR_CODE_FAULTS.get(code, False):
        assert result == S.FAULTED
    else:
        assert result == S.CHARGING
        assert is_warning(result, code) is (code != E.NO_ERROR)


def test_shows_is_true_exactly_when_set_status_would_change_nothing() -> None:
    rng = random.Random(11)
    infos = [None, "hot", "cold"]
    vendors = [None, "V1"]
    for _ in range(2_000):
        machine = ConnectorMachine(1, now=0.0)
        machine.set_status(rng.choice([S.AVAILABLE, S.PREPARING]), 1.0,
                           error_code=rng.choice([E.NO_ERROR, E.HIGH_TEMPERATURE]),
                           info=rng.choice(infos), vendor_error_code=rng.choice(vendors))
        status = rng.choice([machine.status, S.PREPARING, S.AVAILABLE])
        code = rng.choice([machine.error_code, E.NO_ERROR, E.HIGH_TEMPERATURE])
        info, vendor = rng.choice(infos), rng.choice(vendors)
        shows = machine.shows(status, code, info, vendor)
        changed = machine.set_status(status, 2.0, error_code=code, info=info,
                                     vendor_error_code=vendor)
        assert shows is not changed


def test_the_report_deadline_follows_the_link_and_the_duration() -> None:
    m = ConnectorMachine(1, now=0.0, minimum_status_duration=2)
    assert m.next_deadline() == 2.0
    m.mark_offline()
    assert m.next_deadline() is None
    m.mark_online(1.0)
    assert m.next_deadline() == 2.0
    m.set_minimum_status_duration(4)
    assert m.next_deadline() == 4.0
    assert m.due_notification(4.0) is not None
    assert m.next_deadline() is None
    m.forget_reported()
    assert m.next_deadline() == 4.0
