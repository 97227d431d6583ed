"""Request and response payloads of the OCPP 1.6 Smart Charging profile.

One Struct per schema file (``<Action>.json`` → ``<Action>Request``, ``<Action>Response.json`` →
``<Action>Response``); fields, required-ness and constraints are the official schema's.
"""

from __future__ import annotations

from datetime import datetime

from simulator.ocpp.v16.base import Payload as _Payload
from simulator.ocpp.v16.base import utc_field
from simulator.ocpp.v16.datatypes import ChargingProfile, ChargingSchedule
from simulator.ocpp.v16.enums import (
    ChargingProfilePurposeType,
    ChargingProfileStatus,
    ChargingRateUnitType,
    ClearChargingProfileStatus,
    GetCompositeScheduleStatus,
)


class SetChargingProfileRequest(_Payload, frozen=True):
    """``SetChargingProfile`` request (the CALL payload), CS → CP."""

    connector_id: int
    cs_charging_profiles: ChargingProfile


class SetChargingProfileResponse(_Payload, frozen=True):
    """``SetChargingProfile`` response (the CALLRESULT payload)."""

    status: ChargingProfileStatus


class ClearChargingProfileRequest(_Payload, frozen=True):
    """``ClearChargingProfile`` request (the CALL payload), CS → CP."""

    id: int | None = None
    connector_id: int | None = None
    charging_profile_purpose: ChargingProfilePurposeType | None = None
    stack_level: int | None = None


class ClearChargingProfileResponse(_Payload, frozen=True):
    """``ClearChargingProfile`` response (the CALLRESULT payload)."""

    status: ClearChargingProfileStatus


class GetCompositeScheduleRequest(_Payload, frozen=True):
    """``GetCompositeSchedule`` request (the CALL payload), CS → CP."""

    connector_id: int
    duration: int
    charging_rate_unit: ChargingRateUnitType | None = None


class GetCompositeScheduleResponse(_Payload, frozen=True):
    """``GetCompositeSchedule`` response (the CALLRESULT payload)."""

    status: GetCompositeScheduleStatus
    connector_id: int | None = None
    schedule_start: datetime | None = None
    charging_schedule: ChargingSchedule | None = None

    def __post_init__(self) -> None:
        utc_field(self, "schedule_start")
