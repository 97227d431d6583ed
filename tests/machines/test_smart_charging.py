"""SmartCharging on the charger machine: SetChargingProfile, ClearChargingProfile,
GetCompositeSchedule, RemoteStartTransaction's TxProfile, and the limits in MeterValues.

Every frame goes through tests/machines/pair.py, which validates it against the official
OCPP 1.6 schemas (tests/oracle.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from simulator.events import Note
from simulator.machines.meter import EvSpec
from tests.machines.pair import EPOCH, FakeCentralSystem, MachinePair, Received, iso

TAG = "TAG-1"
POWER = "Power.Active.Import"
REGISTER = "Energy.Active.Import.Register"
SAMPLED = {"MeterValuesSampledData": f"{REGISTER},{POWER}", "MeterValueSampleInterval": 60}
VOLTS_3PH = 230.0 * 3
"""W per A on three phases at the default voltage."""


def profile(
    profile_id: int = 1,
    *,
    level: int = 0,
    purpose: str = "TxDefaultProfile",
    kind: str = "Relative",
    unit: str = "A",
    periods: tuple[tuple[int, float], ...] = ((0, 16.0),),
    schedule: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A csChargingProfiles payload."""
    return {
        "chargingProfileId": profile_id, "stackLevel": level,
        "chargingProfilePurpose": purpose, "chargingProfileKind": kind,
        "chargingSchedule": {
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": [{"startPeriod": s, "limit": lim} for s, lim in periods],
            **(schedule or {}),
        },
        **extra,
    }


def set_profile(pair: MachinePair, connector_id: int, body: dict[str, Any]) -> str | None:
    return pair.cs_call("SetChargingProfile",
                        {"connectorId": connector_id, "csChargingProfiles": body}).status


def composite(pair: MachinePair, connector_id: int = 1, duration: int = 3600,
              unit: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"connectorId": connector_id, "duration": duration}
    if unit is not None:
        payload["chargingRateUnit"] = unit
    result = pair.cs_call("GetCompositeSchedule", payload).result
    assert result is not None
    return result


def periods(result: dict[str, Any]) -> list[tuple[int, float]]:
    return [(p["startPeriod"], p["limit"])
            for p in result["chargingSchedule"]["chargingSchedulePeriod"]]


def start_charging(pair: MachinePair, connector_id: int = 1, tag: str = TAG,
                   ev: EvSpec | None = None) -> None:
    pair.plug(connector_id, ev)
    pair.tag(tag, connector_id)


def transaction_id(pair: MachinePair, index: int = 0) -> int:
    return pair.cs.transaction_id_of(pair.cs.of("StartTransaction")[index])


def sample(received: Received, measurand: str) -> float:
    for value in received.payload["meterValue"]:
        for sampled in value["sampledValue"]:
            if sampled.get("measurand", REGISTER) == measurand and "phase" not in sampled:
                return float(sampled["value"])
    raise AssertionError(f"no {measurand} in {received.payload}")


def meter_values(pair: MachinePair, connector_id: int = 1) -> list[Received]:
    return [r for r in pair.cs.of("MeterValues") if r.payload["connectorId"] == connector_id
            and r.payload["meterValue"][0]["sampledValue"][0].get("context")
            != "Sample.Clock"]


# --- SetChargingProfile -------------------------------------------------------------------------

SET_CASES = [
    # (connector, profile, config, with a transaction, expected)
    (0, profile(), {}, False, "Accepted"),
    (1, profile(), {}, False, "Accepted"),
    (0, profile(purpose="ChargePointMaxProfile"), {}, False, "Accepted"),
    (1, profile(purpose="ChargePointMaxProfile"), {}, False, "Rejected"),  # connector 0 only
    (0, profile(purpose="TxProfile"), {}, True, "Rejected"),  # connectors > 0 only
    (1, profile(purpose="TxProfile"), {}, False, "Rejected"),  # no transaction
    (1, profile(purpose="TxProfile"), {}, True, "Accepted"),
    (1, profile(purpose="TxProfile", transactionId=1001), {}, True, "Accepted"),
    (1, profile(purpose="TxProfile", transactionId=999), {}, True, "Rejected"),  # not this one
    (3, profile(), {}, False, "Rejected"),  # no such connector
    (0, profile(level=10), {}, False, "Accepted"),
    (0, profile(level=11), {}, False, "Rejected"),  # ChargeProfileMaxStackLevel 10
    (0, profile(level=11), {"ChargeProfileMaxStackLevel": 20}, False, "Accepted"),
    (0, profile(level=-1), {}, False, "Rejected"),
    (0, profile(periods=((0, 16), (60, 8), (120, 4))), {"ChargingScheduleMaxPeriods": 2}, False,
     "Rejected"),
    (0, profile(periods=((0, 16), (60, 8))), {"ChargingScheduleMaxPeriods": 2}, False,
     "Accepted"),
    (0, profile(unit="W"), {"ChargingScheduleAllowedChargingRateUnit": "Current"}, False,
     "Rejected"),
    (0, profile(unit="A"), {"ChargingScheduleAllowedChargingRateUnit": "Power"}, False,
     "Rejected"),
    (0, profile(unit="W", periods=((0, 7000.0),)), {}, False, "Accepted"),
    (0, profile(periods=((0, 16), (0, 8))), {}, False, "Rejected"),  # not ascending
    (0, profile(periods=((10, 16),)), {}, False, "Rejected"),  # not starting at 0
    (0, profile(periods=((0, -1),)), {}, False, "Rejected"),
    (0, profile(kind="Recurring", recurrencyKind="Daily"), {}, False, "Rejected"),  # no start
    (0, profile(kind="Recurring", schedule={"startSchedule": iso(EPOCH)}), {}, False,
     "Rejected"),  # no recurrencyKind
    (0, profile(kind="Recurring", recurrencyKind="Weekly",
                schedule={"startSchedule": iso(EPOCH)}), {}, False, "Accepted"),
    (0, profile(kind="Absolute", schedule={"startSchedule": iso(EPOCH + 60), "duration": 600},
                validFrom=iso(EPOCH), validTo=iso(EPOCH + 7200)), {}, False, "Accepted"),
    (0, profile(schedule={"duration": -5}), {}, False, "Rejected"),
    (0, {**profile(), "chargingSchedule": {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16, "numberPhases": 4}]}},
     {}, False, "Rejected"),
]


@pytest.mark.parametrize(("connector_id", "body", "config", "in_tx", "expected"), SET_CASES)
def test_set_charging_profile(connector_id: int, body: dict[str, Any],
                              config: dict[str, Any], in_tx: bool, expected: str) -> None:
    pair = MachinePair(connectors=2, config=config)
    if in_tx:
        start_charging(pair)
        assert transaction_id(pair) == 1001
    assert set_profile(pair, connector_id, body) == expected
    [note] = [e for e in pair.events_of(Note) if e.what == "charging_profile_set"]
    assert note.data["status"] == expected
    assert (note.data["reason"] is None) == (expected == "Accepted")


def test_max_charging_profiles_installed_counts_what_stays() -> None:
    pair = MachinePair(config={"MaxChargingProfilesInstalled": 2})
    assert set_profile(pair, 0, profile(1, level=0)) == "Accepted"
    assert set_profile(pair, 0, profile(2, level=1)) == "Accepted"
    assert set_profile(pair, 0, profile(3, level=2)) == "Rejected"  # a third one
    assert set_profile(pair, 0, profile(2, level=2)) == "Accepted"  # replaces id 2
    assert set_profile(pair, 0, profile(4, level=0)) == "Accepted"  # replaces level 0 (id 1)
    assert pair.cs_call("ClearChargingProfile", {"id": 1}).status == "Unknown"
    assert pair.cs_call("ClearChargingProfile", {"id": 4}).status == "Accepted"


def test_same_id_and_same_stack_level_replace() -> None:
    pair = MachinePair()
    set_profile(pair, 0, profile(1, periods=((0, 16),)))
    set_profile(pair, 0, profile(1, periods=((0, 10),)))  # same id
    assert periods(composite(pair)) == [(0, 10.0)]
    set_profile(pair, 0, profile(2, periods=((0, 6),)))  # same stack level and purpose
    assert periods(composite(pair)) == [(0, 6.0)]
    set_profile(pair, 1, profile(3, periods=((0, 8),)))  # the same on connector 1: beside it
    assert periods(composite(pair)) == [(0, 8.0)]
    assert pair.cs_call("ClearChargingProfile", {"id": 1}).status == "Unknown"
    assert pair.cs_call("ClearChargingProfile", {"id": 2}).status == "Accepted"


def test_the_read_only_keys_stay_read_only() -> None:
    pair = MachinePair()
    keys = ("ChargeProfileMaxStackLevel", "ChargingScheduleMaxPeriods",
            "MaxChargingProfilesInstalled", "ChargingScheduleAllowedChargingRateUnit")
    for key in keys:
        assert pair.cs_call("ChangeConfiguration", {"key": key, "value": "1"}).status \
            == "Rejected"
    result = pair.cs_call("GetConfiguration", {"key": list(keys)}).result
    assert result is not None
    assert {k["key"]: (k["readonly"], k["value"]) for k in result["configurationKey"]} == {
        "ChargeProfileMaxStackLevel": (True, "10"), "ChargingScheduleMaxPeriods": (True, "24"),
        "MaxChargingProfilesInstalled": (True, "10"),
        "ChargingScheduleAllowedChargingRateUnit": (True, "Current,Power")}


# --- ClearChargingProfile -----------------------------------------------------------------------

CLEAR_CASES = [
    # (criteria, expected status, ids left)
    ({}, "Accepted", []),
    ({"id": 2}, "Accepted", [1, 3, 4]),
    ({"id": 9}, "Unknown", [1, 2, 3, 4]),
    ({"id": 2, "connectorId": 1}, "Accepted", [1, 3, 4]),  # the id alone decides
    ({"connectorId": 0}, "Accepted", [3, 4]),
    ({"connectorId": 1}, "Accepted", [1, 2]),
    ({"connectorId": 2}, "Unknown", [1, 2, 3, 4]),
    ({"chargingProfilePurpose": "ChargePointMaxProfile"}, "Accepted", [1, 3, 4]),
    ({"chargingProfilePurpose": "TxProfile"}, "Accepted", [1, 2, 3]),
    ({"stackLevel": 1}, "Accepted", [1, 2, 4]),
    ({"connectorId": 0, "stackLevel": 1}, "Unknown", [1, 2, 3, 4]),
    ({"chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 0}, "Accepted", [2, 3, 4]),
]


@pytest.mark.parametrize(("criteria", "expected", "left"), CLEAR_CASES)
def test_clear_charging_profile(criteria: dict[str, Any], expected: str,
                                left: list[int]) -> None:
    pair = MachinePair(connectors=2)
    start_charging(pair)
    assert set_profile(pair, 0, profile(1, level=0)) == "Accepted"
    assert set_profile(pair, 0, profile(2, purpose="ChargePointMaxProfile")) == "Accepted"
    assert set_profile(pair, 1, profile(3, level=1)) == "Accepted"
    assert set_profile(pair, 1, profile(4, level=2, purpose="TxProfile")) == "Accepted"
    assert pair.cs_call("ClearChargingProfile", criteria).status == expected
    still = [i for i in (1, 2, 3, 4)
             if pair.cs_call("ClearChargingProfile", {"id": i}).status == "Accepted"]
    assert still == left


# --- GetCompositeSchedule -----------------------------------------------------------------------

RATED_A = 31.8  # 22 kW over 3 x 230 V, rounded down to 0.1 A


COMPOSITE_CASES = [
    # (installed [(connector, profile)], request connector, unit, expected periods)
    ([], 1, "A", [(0, RATED_A)]),
    ([], 1, "W", [(0, 22000.0)]),
    ([], 0, "W", [(0, 44000.0)]),  # the charge point's total: two connectors
    ([(0, profile(periods=((0, 16),)))], 1, "A", [(0, 16.0)]),
    ([(0, profile(periods=((0, 16),)))], 1, "W", [(0, 16 * VOLTS_3PH)]),
    ([(0, profile(periods=((0, 16),)))], 0, "A", [(0, 32.0)]),
    ([(0, profile(periods=((0, 16),))), (0, profile(2, purpose="ChargePointMaxProfile",
                                                   periods=((0, 20),)))], 0, "A", [(0, 20.0)]),
    ([(0, profile(periods=((0, 16),))), (0, profile(2, purpose="ChargePointMaxProfile",
                                                   periods=((0, 10),)))], 1, "A", [(0, 10.0)]),
    ([(0, profile(periods=((0, 16),))), (1, profile(2, periods=((0, 8),)))], 1, "A",
     [(0, 8.0)]),  # the connector's own TxDefaultProfile wins at the same level
    ([(0, profile(periods=((0, 16),))), (1, profile(2, periods=((0, 8),)))], 2, "A",
     [(0, 16.0)]),
    ([(0, profile(level=1, periods=((0, 16),))), (1, profile(2, periods=((0, 8),)))], 1, "A",
     [(0, 16.0)]),  # a higher stack level wins
    ([(0, profile(periods=((0, 16), (600, 8), (1200, 16))))], 1, "A",
     [(0, 16.0), (600, 8.0), (1200, 16.0)]),
    ([(0, profile(periods=((0, 16),), schedule={"duration": 900}))], 1, "A",
     [(0, 16.0), (900, RATED_A)]),
    ([(0, profile(kind="Absolute", periods=((0, 6),),
                  schedule={"startSchedule": iso(EPOCH + 300), "duration": 600}))], 1, "A",
     [(0, RATED_A), (300, 6.0), (900, RATED_A)]),
    ([(0, profile(periods=((0, 6),), validFrom=iso(EPOCH + 1000)))], 1, "A",
     [(0, RATED_A), (1000, 6.0)]),
    ([(0, profile(periods=((0, 6),), validTo=iso(EPOCH + 1000)))], 1, "A",
     [(0, 6.0), (1000, RATED_A)]),
    ([(0, profile(kind="Recurring", recurrencyKind="Daily", periods=((0, 6), (1800, 12)),
                  schedule={"startSchedule": iso(EPOCH - 86_400 + 600)}))], 1, "A",
     [(0, 12.0), (600, 6.0), (2400, 12.0)]),  # yesterday's run, then today's
    ([(0, profile(unit="W", periods=((0, 4140.0),)))], 1, "A", [(0, 6.0)]),
    ([(0, {**profile(), "chargingSchedule": {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16, "numberPhases": 1}]}})],
     1, "W", [(0, 16 * 230.0)]),
    ([(0, profile(periods=((0, 6),), schedule={"minChargingRate": 8}))], 1, "A", [(0, 0.0)]),
]


@pytest.mark.parametrize(("installed", "connector_id", "unit", "expected"), COMPOSITE_CASES)
def test_get_composite_schedule(installed: list[tuple[int, dict[str, Any]]], connector_id: int,
                                unit: str, expected: list[tuple[int, float]]) -> None:
    pair = MachinePair(connectors=2)
    for cid, body in installed:
        assert set_profile(pair, cid, body) == "Accepted"
    result = composite(pair, connector_id, unit=unit)
    assert result["status"] == "Accepted" and result["connectorId"] == connector_id
    assert result["scheduleStart"] == iso(EPOCH + pair.now)
    assert result["chargingSchedule"]["chargingRateUnit"] == unit
    assert result["chargingSchedule"]["duration"] == 3600
    assert periods(result) == expected


def test_composite_rejects_an_unknown_connector_and_bounds_the_duration() -> None:
    pair = MachinePair()
    assert composite(pair, 2)["status"] == "Rejected"
    assert composite(pair, 1, duration=-1)["status"] == "Rejected"
    assert composite(pair, 1, duration=10**12)["chargingSchedule"]["duration"] == 31 * 86_400


def test_composite_unit_defaults_to_the_first_allowed() -> None:
    pair = MachinePair(config={"ChargingScheduleAllowedChargingRateUnit": "Power"})
    assert composite(pair)["chargingSchedule"]["chargingRateUnit"] == "W"
    assert composite(MachinePair())["chargingSchedule"]["chargingRateUnit"] == "A"


def test_relative_profiles_start_with_the_transaction() -> None:
    pair = MachinePair(connectors=2)
    set_profile(pair, 0, profile(periods=((0, 16), (600, 8))))
    pair.advance(100)
    start_charging(pair)
    pair.advance(300)  # 300 s into the transaction
    assert periods(composite(pair, 1)) == [(0, 16.0), (300, 8.0)]
    assert periods(composite(pair, 2)) == [(0, 16.0), (600, 8.0)]  # none there: from now


# --- TxProfiles and RemoteStartTransaction ------------------------------------------------------


def test_a_tx_profile_overrides_and_ends_with_its_transaction() -> None:
    pair = MachinePair()
    set_profile(pair, 0, profile(periods=((0, 16),)))
    start_charging(pair)
    assert set_profile(pair, 1, profile(7, purpose="TxProfile", periods=((0, 20),))) \
        == "Accepted"
    assert periods(composite(pair)) == [(0, 20.0)]  # overrides the lower TxDefaultProfile
    pair.stop_local()
    assert periods(composite(pair)) == [(0, 16.0)]
    assert pair.cs_call("ClearChargingProfile", {"id": 7}).status == "Unknown"
    [ended] = [e for e in pair.events_of(Note) if e.what == "charging_profile_ended"]
    assert ended.data["charging_profile_id"] == 7


def test_remote_start_applies_its_tx_profile_to_the_transaction() -> None:
    pair = MachinePair(config=SAMPLED)
    pair.plug()
    tx_profile = profile(5, purpose="TxProfile", periods=((0, 10),))
    call = pair.cs_call("RemoteStartTransaction",
                        {"connectorId": 1, "idTag": TAG, "chargingProfile": tx_profile})
    assert call.status == "Accepted"
    assert pair.machine.statistics().in_transaction == 1
    assert periods(composite(pair)) == [(0, 10.0)]
    pair.advance(60)
    assert sample(meter_values(pair)[-1], POWER) == pytest.approx(10 * VOLTS_3PH, rel=0.02)
    pair.stop_local()
    assert pair.cs_call("ClearChargingProfile", {"id": 5}).status == "Unknown"


def test_remote_start_profile_waits_for_the_cable_and_goes_if_none_comes() -> None:
    pair = MachinePair(config={"ConnectionTimeOut": 30})
    tx_profile = profile(5, purpose="TxProfile", periods=((0, 10),))
    assert pair.cs_call("RemoteStartTransaction", {"connectorId": 1, "idTag": TAG,
                                                   "chargingProfile": tx_profile}).status \
        == "Accepted"
    assert periods(composite(pair)) == [(0, RATED_A)]  # not before its transaction
    pair.advance(60)  # the cable never came
    assert pair.cs_call("ClearChargingProfile", {"id": 5}).status == "Unknown"


@pytest.mark.parametrize("body", [
    profile(5, purpose="TxDefaultProfile"),
    profile(5, purpose="TxProfile", transactionId=1),
    profile(5, purpose="TxProfile", level=99),
])
def test_remote_start_with_an_unusable_profile_is_rejected(body: dict[str, Any]) -> None:
    pair = MachinePair()
    pair.plug()
    assert pair.cs_call("RemoteStartTransaction", {"connectorId": 1, "idTag": TAG,
                                                   "chargingProfile": body}).status \
        == "Rejected"
    assert pair.machine.statistics().in_transaction == 0


# --- limits in MeterValues ----------------------------------------------------------------------


def test_a_limit_caps_power_and_energy_in_meter_values() -> None:
    pair = MachinePair(config=SAMPLED)
    start_charging(pair)  # an 11 kW EV
    pair.advance(60)
    assert sample(meter_values(pair)[-1], POWER) == pytest.approx(11_000, rel=0.02)
    assert set_profile(pair, 1, profile(purpose="TxProfile", periods=((0, 8),))) == "Accepted"
    before = sample(meter_values(pair)[-1], REGISTER)
    pair.advance(60)
    last = meter_values(pair)[-1]
    assert sample(last, POWER) == pytest.approx(8 * VOLTS_3PH, rel=0.02)
    assert sample(last, REGISTER) - before == pytest.approx(8 * VOLTS_3PH / 60, abs=1.5)


def test_the_limit_changes_at_the_period_boundary() -> None:
    pair = MachinePair(config=SAMPLED)
    start_charging(pair)
    set_profile(pair, 0, profile(periods=((0, 16), (90, 6))))  # from now: 6 A after 90 s
    pair.advance(60)
    first = sample(meter_values(pair)[-1], REGISTER)
    pair.advance(60)
    second = meter_values(pair)[-1]
    assert sample(second, POWER) == pytest.approx(6 * VOLTS_3PH, rel=0.02)
    expected_wh = (11_000 * 30 + 6 * VOLTS_3PH * 30) / 3600  # 30 s each side of t = 90
    assert sample(second, REGISTER) - first == pytest.approx(expected_wh, abs=1.5)
    limits = [e for e in pair.events_of(Note) if e.what == "charging_limit"]
    assert [(e.t, e.data["limit_w"]) for e in limits] == [(0.0, 16 * VOLTS_3PH),
                                                        (90.0, 6 * VOLTS_3PH)]


def test_an_absolute_schedule_follows_the_clock_the_central_system_set() -> None:
    pair = MachinePair(cs=FakeCentralSystem(clock_offset=3600.0))  # the CS is an hour ahead
    start_charging(pair)
    begins = EPOCH + 3600 + 120  # on the CS's clock: 120 s from now
    set_profile(pair, 0, profile(kind="Absolute", periods=((0, 6),),
                                 schedule={"startSchedule": iso(begins), "duration": 60}))
    pair.advance(300)
    limits = [e for e in pair.events_of(Note) if e.what == "charging_limit"]
    assert [(e.t, e.data["limit_w"]) for e in limits] == [(120.0, 6 * VOLTS_3PH), (180.0, None)]


def test_a_clock_set_back_replans_the_boundaries() -> None:
    pair = MachinePair(cs=FakeCentralSystem(clock_offset=3600.0))
    start_charging(pair)
    set_profile(pair, 0, profile(kind="Absolute", periods=((0, 6),),
                                 schedule={"startSchedule": iso(EPOCH + 3600 + 120)}))
    pair.advance(300)
    pair.cs.clock_offset = 0.0  # the Heartbeat's answer sets the clock an hour back
    pair.cs_call("TriggerMessage", {"requestedMessage": "Heartbeat"})
    pair.advance(3600)
    limits = [e for e in pair.events_of(Note) if e.what == "charging_limit"]
    assert [(e.t, e.data["limit_w"]) for e in limits] == [(120.0, 6 * VOLTS_3PH),
                                                        (300.0, None),
                                                        (3720.0, 6 * VOLTS_3PH)]


def test_a_limit_of_zero_suspends_the_evse() -> None:
    pair = MachinePair(config=SAMPLED)
    start_charging(pair)
    assert pair.status() == "Charging"
    set_profile(pair, 1, profile(purpose="TxProfile", periods=((0, 0),)))
    assert pair.status() == "SuspendedEVSE"
    pair.advance(60)
    assert sample(meter_values(pair)[-1], POWER) == 0.0
    assert pair.cs_call("ClearChargingProfile", {}).status == "Accepted"
    assert pair.status() == "Charging"
    assert pair.notified()[-2:] == ["SuspendedEVSE", "Charging"]


def test_a_transaction_starting_under_a_zero_limit_is_suspended_at_once() -> None:
    pair = MachinePair()
    set_profile(pair, 0, profile(periods=((0, 0),)))
    start_charging(pair)
    assert pair.status() == "SuspendedEVSE"
    assert "Charging" not in pair.statuses()


def test_the_charge_point_maximum_is_shared_by_the_running_transactions() -> None:
    pair = MachinePair(connectors=2, config=SAMPLED)
    set_profile(pair, 0, profile(purpose="ChargePointMaxProfile", periods=((0, 16),)))
    start_charging(pair, 1)
    pair.advance(30)
    start_charging(pair, 2, tag="TAG-2")
    pair.advance(60)
    one, two = meter_values(pair, 1)[-1], meter_values(pair, 2)[-1]
    assert sample(one, POWER) + sample(two, POWER) == pytest.approx(16 * VOLTS_3PH, rel=0.02)


def test_the_limit_follows_the_ev_phases() -> None:
    pair = MachinePair(config=SAMPLED)
    start_charging(pair, ev=EvSpec(phases=1, max_power_kw=7.4))
    set_profile(pair, 0, profile(periods=((0, 10),)))
    pair.advance(60)
    assert sample(meter_values(pair)[-1], POWER) == pytest.approx(10 * 230.0, rel=0.02)


# --- the profile present or not -----------------------------------------------------------------


def test_supported_feature_profiles_lists_smart_charging() -> None:
    result = MachinePair().cs_call("GetConfiguration",
                                   {"key": ["SupportedFeatureProfiles"]}).result
    assert result is not None
    assert "SmartCharging" in result["configurationKey"][0]["value"].split(",")


def test_without_the_profile_its_actions_are_not_supported() -> None:
    pair = MachinePair(profiles=("Core",))
    call = pair.cs_call("SetChargingProfile", {"connectorId": 0, "csChargingProfiles": profile()})
    assert call.error == "NotSupported"
    pair.plug()
    tx_profile = profile(5, purpose="TxProfile", periods=((0, 10),))
    assert pair.cs_call("RemoteStartTransaction", {"connectorId": 1, "idTag": TAG,
                                                   "chargingProfile": tx_profile}).status \
        == "Accepted"
    assert any(e.what == "charging_profile_ignored" for e in pair.events_of(Note))


def test_profiles_survive_a_reboot() -> None:
    pair = MachinePair()
    set_profile(pair, 0, profile(periods=((0, 12),)))
    pair.cs_call("Reset", {"type": "Soft"})
    pair.advance(30)
    assert pair.machine.statistics().boot == "accepted"
    assert periods(composite(pair)) == [(0, 12.0)]
