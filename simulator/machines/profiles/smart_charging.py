"""The SmartCharging profile: SetChargingProfile, ClearChargingProfile, GetCompositeSchedule.

Rules (OCPP 1.6 core spec §3.13, §5.5, §5.7, §5.16; the store's own checks are in
:mod:`simulator.machines.charging_profiles`):

- SetChargingProfile: Rejected for a connector that does not exist, a ChargePointMaxProfile
  anywhere but connector 0, a TxProfile on connector 0, a TxProfile without a running
  transaction on its connector or whose ``transactionId`` is not that transaction's, and a
  profile the store refuses; else Accepted (replacing the profile with the same id, or with the
  same stack level and purpose on the same connector). The new limits cap the power at once
  (:mod:`simulator.machines.metering`).
- ClearChargingProfile: by ``id`` alone when given, else by every criterion given
  (``connectorId`` 0 means the profiles installed on connector 0); Accepted when something was
  cleared, Unknown when nothing matched.
- GetCompositeSchedule: Rejected for a connector that does not exist or a negative duration;
  else Accepted with the composite from now (``scheduleStart``) for ``duration`` s (at most
  :data:`MAX_COMPOSITE_DURATION`), in ``chargingRateUnit`` (absent: the first unit
  ``ChargingScheduleAllowedChargingRateUnit`` allows). The connectors' ratings cap it, so a
  connector without any profile reports what its hardware can deliver; connector 0 reports the
  charge point's total. Limits are rounded down to 0.1 and period starts to whole seconds.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

from simulator.machines.charging_profiles import allowed_units
from simulator.machines.profiles import Answer, ProfileHandler
from simulator.machines.smart_charging import Composite
from simulator.ocpp.v16 import (
    ChargingProfilePurposeType,
    ChargingProfileStatus,
    ChargingRateUnitType,
    ChargingSchedule,
    ChargingSchedulePeriod,
    ClearChargingProfileRequest,
    ClearChargingProfileResponse,
    ClearChargingProfileStatus,
    GetCompositeScheduleRequest,
    GetCompositeScheduleResponse,
    GetCompositeScheduleStatus,
    Profile,
    SetChargingProfileRequest,
    SetChargingProfileResponse,
)

MAX_COMPOSITE_DURATION: Final = 31 * 86_400
"""The longest composite schedule GetCompositeSchedule reports (s); a longer request gets this
much (its ``duration`` says so)."""

_Purpose = ChargingProfilePurposeType

_WIRE_MAX: Final = 1e15
"""The largest limit a composite reports (the connectors' ratings keep it far below; this only
keeps an absurd profile from writing an infinity)."""


class SmartChargingHandler(ProfileHandler):
    """The SmartCharging profile's CS→CP operations (see the module docstring)."""

    profile = Profile.SMART_CHARGING

    def answer(self, request: msgspec.Struct, now: float) -> Answer | None:
        """The response to one SmartCharging request (nothing to do after it is sent)."""
        for gone in self.ctx.charging_profiles.sync(self.ctx.points):
            self.ctx.note(now, "charging_profile_ended", gone.connector_id,
                          charging_profile_id=gone.profile_id)
        match request:
            case SetChargingProfileRequest():
                return self._set(request, now), None
            case ClearChargingProfileRequest():
                return self._clear(request, now), None
            case GetCompositeScheduleRequest():
                return self._composite(request, now), None
        return None

    # --- SetChargingProfile -------------------------------------------------------------------

    def _set(self, request: SetChargingProfileRequest, now: float) -> SetChargingProfileResponse:
        ctx = self.ctx
        cid, profile = request.connector_id, request.cs_charging_profiles
        purpose = profile.charging_profile_purpose
        local_tx: int | None = None
        problem: str | None = None
        if cid not in ctx.connectors:
            problem = f"no connector {cid}"
        elif purpose == _Purpose.CHARGE_POINT_MAX_PROFILE and cid != 0:
            problem = "a ChargePointMaxProfile goes on connector 0 only"
        elif purpose == _Purpose.TX_PROFILE:
            problem, local_tx = self._transaction_of(cid, profile.transaction_id)
        if problem is None:
            problem = ctx.charging_profiles.install(profile, cid, ctx.config, local_tx=local_tx)
        status = ChargingProfileStatus.ACCEPTED if problem is None \
            else ChargingProfileStatus.REJECTED
        ctx.note(now, "charging_profile_set", cid if cid in ctx.connectors else None,
                 charging_profile_id=profile.charging_profile_id, purpose=purpose.value,
                 stack_level=profile.stack_level, status=status.value, reason=problem)
        return SetChargingProfileResponse(status=status)

    def _transaction_of(
        self, connector_id: int, transaction_id: int | None
    ) -> tuple[str | None, int | None]:
        """A TxProfile's transaction: (why there is none, its local id)."""
        if connector_id == 0:
            return "a TxProfile goes on a connector > 0", None
        tx = self.ctx.points[connector_id].transaction
        if tx is None:
            return f"no transaction on connector {connector_id}", None
        known = tx.transaction_id if tx.transaction_id is not None \
            else self.ctx.session.transaction_id(tx.local_id)
        if transaction_id is not None and transaction_id != known:
            return f"transaction {transaction_id} is not the one on connector {connector_id}", \
                None
        return None, tx.local_id

    # --- ClearChargingProfile -----------------------------------------------------------------

    def _clear(
        self, request: ClearChargingProfileRequest, now: float
    ) -> ClearChargingProfileResponse:
        removed = self.ctx.charging_profiles.clear(
            profile_id=request.id, connector_id=request.connector_id,
            purpose=request.charging_profile_purpose, stack_level=request.stack_level,
        )
        self.ctx.note(now, "charging_profile_cleared", removed=removed)
        return ClearChargingProfileResponse(
            status=ClearChargingProfileStatus.ACCEPTED if removed
            else ClearChargingProfileStatus.UNKNOWN)

    # --- GetCompositeSchedule -----------------------------------------------------------------

    def _composite(
        self, request: GetCompositeScheduleRequest, now: float
    ) -> GetCompositeScheduleResponse:
        ctx = self.ctx
        cid = request.connector_id
        if cid not in ctx.connectors or request.duration < 0:
            return GetCompositeScheduleResponse(status=GetCompositeScheduleStatus.REJECTED)
        unit = request.charging_rate_unit or next(iter(allowed_units(ctx.config)),
                                                  ChargingRateUnitType.AMPS)
        duration = min(request.duration, MAX_COMPOSITE_DURATION)
        start = ctx.wall(now)
        composite = ctx.charging_profiles.composite(
            cid, start=start.timestamp(), duration=duration, unit=unit, points=ctx.points,
            meters=ctx.meters, wall_offset=ctx.wall_offset,
        )
        return GetCompositeScheduleResponse(
            status=GetCompositeScheduleStatus.ACCEPTED,
            connector_id=cid,
            schedule_start=ctx.stamp(now),
            charging_schedule=wire_schedule(composite, duration),
        )


def _tenth_below(value: float) -> float:
    """``value`` rounded down to a multiple of 0.1 (what the schema's ``multipleOf`` takes),
    and at most :data:`_WIRE_MAX`."""
    return math.floor(min(value, _WIRE_MAX) * 10 + 1e-6) / 10


def wire_schedule(composite: Composite, duration: int) -> ChargingSchedule:
    """``composite`` as GetCompositeSchedule's chargingSchedule, relative to the response's
    ``scheduleStart`` (so without a startSchedule of its own): whole-second starts (a period
    squeezed out by the rounding gives way to the next), limits rounded down to 0.1 (no limit
    reads 0: it does not occur with the ratings in), equal neighbours merged."""
    periods: list[ChargingSchedulePeriod] = []
    for period in composite.periods:
        start = round(period.start)
        limit = _tenth_below(period.limit) if period.limit is not None else 0.0
        wire = ChargingSchedulePeriod(start_period=start, limit=limit,
                                      number_phases=period.phases)
        if periods and periods[-1].start_period == start:
            periods.pop()
        if periods and (periods[-1].limit, periods[-1].number_phases) == (limit, period.phases):
            continue
        periods.append(wire)
    return ChargingSchedule(
        charging_rate_unit=composite.unit,
        charging_schedule_period=tuple(periods),
        duration=duration,
    )
