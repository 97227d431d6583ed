"""The charging profiles a charge point has installed, and the limits they set.

Rules (OCPP 1.6 core spec §3.13, §5.5 ClearChargingProfile, §5.16 SetChargingProfile, §9.4 the
Smart Charging configuration keys):

- A profile is refused (SetChargingProfile Rejected, with the reason noted) when its
  ``stackLevel`` is negative or above ``ChargeProfileMaxStackLevel``, it has more periods than
  ``ChargingScheduleMaxPeriods``, its unit is not in ``ChargingScheduleAllowedChargingRateUnit``
  (``Current`` allows A, ``Power`` W), installing it would make more than
  ``MaxChargingProfilesInstalled``, or it is malformed: periods not starting at 0 s and
  ascending, a negative limit, minChargingRate or duration, numberPhases outside 1-3, a time
  beyond :data:`MAX_SECONDS`, a Recurring profile without recurrencyKind or startSchedule.
- Installing replaces the profile with the same ``chargingProfileId`` (wherever it is), and the
  one with the same ``stackLevel`` and purpose on the same connector.
- A TxProfile belongs to one transaction (by the charger's local transaction id) and is gone
  when the transaction ends. One that came with a RemoteStartTransaction waits for the
  transaction it starts; it is dropped if none starts (the tag refused, the cable never came).
  Both happen lazily, in :meth:`ChargingProfiles.sync`, which every reader calls first.
- Profiles stay installed through a reboot of the charger (not through a new charger).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from simulator.machines.configuration import ConfigurationStore
from simulator.machines.meter import Meter
from simulator.machines.parts import Point
from simulator.machines.smart_charging import (
    Composite,
    ConnectorLoad,
    StackedProfile,
    Supply,
    charge_point_schedule,
    composite_schedule,
)
from simulator.ocpp.v16 import (
    ChargingProfile,
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
)

MAX_SECONDS: Final = 2**31 - 1
"""The longest duration or startPeriod a profile may have (s): an int32, as OCPP integers are."""

UNIT_KEYS: Final[Mapping[str, ChargingRateUnitType]] = MappingProxyType(
    {"Current": ChargingRateUnitType.AMPS, "Power": ChargingRateUnitType.WATTS})
"""``ChargingScheduleAllowedChargingRateUnit`` entries and the unit each allows."""


@dataclasses.dataclass(slots=True)
class Installed:
    """One installed profile; a TxProfile's transaction (``local_tx``), or None while it waits
    for the transaction a RemoteStartTransaction starts (``awaiting``)."""

    profile: StackedProfile
    local_tx: int | None = None
    awaiting: bool = False


def allowed_units(config: ConfigurationStore) -> tuple[ChargingRateUnitType, ...]:
    """The units ``ChargingScheduleAllowedChargingRateUnit`` allows, in its order."""
    units = config.get_csl("ChargingScheduleAllowedChargingRateUnit")
    return tuple(UNIT_KEYS[u] for u in units if u in UNIT_KEYS)


def schedule_problem(profile: ChargingProfile, config: ConfigurationStore) -> str | None:
    """Why the charger cannot take ``profile`` by its own measure (the module docstring's
    list, but the count of installed profiles), or None."""
    level = profile.stack_level
    top = config.get_int("ChargeProfileMaxStackLevel")
    if not 0 <= level <= top:
        return f"stackLevel {level} outside 0..{top} (ChargeProfileMaxStackLevel)"
    schedule = profile.charging_schedule
    periods = schedule.charging_schedule_period
    most = config.get_int("ChargingScheduleMaxPeriods")
    if len(periods) > most:
        return f"{len(periods)} periods, more than {most} (ChargingScheduleMaxPeriods)"
    if schedule.charging_rate_unit not in allowed_units(config):
        return (f"unit {schedule.charging_rate_unit.value} not allowed "
                "(ChargingScheduleAllowedChargingRateUnit)")
    starts = [p.start_period for p in periods]
    if not starts or starts[0] != 0 or starts[-1] > MAX_SECONDS \
            or any(b <= a for a, b in itertools.pairwise(starts)):
        return "periods must start at 0 s and ascend"
    if any(p.limit < 0 for p in periods) or (schedule.min_charging_rate or 0) < 0:
        return "a limit or minChargingRate is negative"
    if any(p.number_phases is not None and not 1 <= p.number_phases <= 3 for p in periods):
        return "numberPhases must be 1, 2 or 3"
    if schedule.duration is not None and not 0 <= schedule.duration <= MAX_SECONDS:
        return f"duration outside 0..{MAX_SECONDS} s"
    if profile.charging_profile_kind == ChargingProfileKindType.RECURRING and (
            profile.recurrency_kind is None or schedule.start_schedule is None):
        return "a Recurring profile needs recurrencyKind and startSchedule"
    return None


class ChargingProfiles:
    """The installed charging profiles of one charge point (see the module docstring)."""

    def __init__(self) -> None:
        self._installed: list[Installed] = []
        self.version = 0
        """Grows with every change (readers cache what they computed from the profiles)."""

    def __len__(self) -> int:
        return len(self._installed)

    # --- changes ------------------------------------------------------------------------------

    def install(
        self,
        profile: ChargingProfile,
        connector_id: int,
        config: ConfigurationStore,
        *,
        local_tx: int | None = None,
        awaiting: bool = False,
    ) -> str | None:
        """Install ``profile`` on ``connector_id`` (a TxProfile for transaction ``local_tx``, or
        ``awaiting`` the one a RemoteStart starts), replacing what it replaces. Returns why it
        was refused (nothing changed then), or None."""
        problem = schedule_problem(profile, config)
        if problem is not None:
            return problem
        stacked = StackedProfile.from_wire(profile, connector_id)
        kept = [i for i in self._installed if not _replaced_by(i.profile, stacked)]
        most = config.get_int("MaxChargingProfilesInstalled")
        if len(kept) + 1 > most:
            return f"more than {most} profiles (MaxChargingProfilesInstalled)"
        self._installed = [*kept, Installed(stacked, local_tx, awaiting)]
        self.version += 1
        return None

    def install_for_remote_start(
        self, profile: ChargingProfile, connector_id: int, config: ConfigurationStore
    ) -> str | None:
        """Install a RemoteStartTransaction's profile (a TxProfile without transactionId) for
        the transaction it starts on ``connector_id``. Returns why it was refused, or None."""
        if profile.charging_profile_purpose != ChargingProfilePurposeType.TX_PROFILE \
                or profile.transaction_id is not None:
            return "a RemoteStart's profile must be a TxProfile without a transactionId"
        return self.install(profile, connector_id, config, awaiting=True)

    def clear(
        self,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: ChargingProfilePurposeType | None = None,
        stack_level: int | None = None,
    ) -> int:
        """ClearChargingProfile: remove the profile ``profile_id`` when given, else every profile
        matching the criteria given (all when none is). Returns how many went."""
        def matches(p: StackedProfile) -> bool:
            if profile_id is not None:
                return p.profile_id == profile_id
            return (connector_id is None or p.connector_id == connector_id) and (
                purpose is None or p.purpose == purpose) and (
                stack_level is None or p.stack_level == stack_level)

        kept = [i for i in self._installed if not matches(i.profile)]
        removed = len(self._installed) - len(kept)
        if removed:
            self._installed = kept
            self.version += 1
        return removed

    def sync(self, points: Mapping[int, Point]) -> list[StackedProfile]:
        """Bind the RemoteStart TxProfiles to the transactions that started, and drop the
        TxProfiles whose transaction ended (or never started). Returns the dropped ones."""
        if not self._installed:
            return []
        running = {p.transaction.local_id for p in points.values() if p.transaction is not None}
        dropped: list[StackedProfile] = []
        kept: list[Installed] = []
        for item in self._installed:
            cid = item.profile.connector_id
            if item.awaiting:
                point = points.get(cid)
                if point is not None and point.transaction is not None:
                    item.local_tx, item.awaiting = point.transaction.local_id, False
                    self.version += 1
                elif point is None or (point.authorizing is None and point.ready_tag is None):
                    dropped.append(item.profile)
                    continue
            elif item.local_tx is not None and item.local_tx not in running:
                dropped.append(item.profile)
                continue
            kept.append(item)
        if dropped:
            self._installed = kept
            self.version += 1
        return dropped

    # --- readers ------------------------------------------------------------------------------

    def applying_to(self, connector_id: int, local_tx: int | None) -> list[StackedProfile]:
        """The profiles that bear on ``connector_id`` now: ChargePointMax, the TxDefault ones of
        the connector and of connector 0, and the TxProfiles of transaction ``local_tx``."""
        return [i.profile for i in self._installed
                if (i.local_tx is None and not i.awaiting
                    and i.profile.connector_id in (0, connector_id))
                or (i.local_tx is not None and i.local_tx == local_tx)]

    def composite(
        self,
        connector_id: int,
        *,
        start: float,
        duration: float,
        unit: ChargingRateUnitType,
        points: Mapping[int, Point],
        meters: Mapping[int, Meter],
        wall_offset: float,
        rated: bool = True,
        share: int = 1,
    ) -> Composite:
        """The composite schedule of ``connector_id`` (0: the charge point's total) from
        ``start`` (Unix seconds on the charger's clock) for ``duration`` s, in ``unit``; its
        running transaction anchors Relative schedules; ``rated``: the connectors' ratings
        cap it too (without, a period where no profile is in force has no limit)."""
        def load(cid: int) -> ConnectorLoad:
            tx = points[cid].transaction
            meter = meters[cid]
            return ConnectorLoad(
                cid, None if tx is None else wall_offset + tx.started_at,
                Supply(meter.voltage_v, meter.loaded_phases()),
                meter.max_power_w * meter.loaded_phases() / meter.phases if rated else None)

        if connector_id == 0:
            loads = [load(cid) for cid in sorted(points)]
            # (after a sync, every TxProfile bound to a transaction is one of a running one)
            profiles = [i.profile for i in self._installed if not i.awaiting]
            phases = max((m.phases for m in meters.values()), default=3)
            voltage = next(iter(meters.values())).voltage_v if meters else 230.0
            return charge_point_schedule(profiles, loads, start=start, duration=duration,
                                         unit=unit, supply=Supply(voltage, phases))
        here = load(connector_id)
        tx = points[connector_id].transaction
        return composite_schedule(
            self.applying_to(connector_id, None if tx is None else tx.local_id),
            connector_id=connector_id, start=start, duration=duration, unit=unit,
            transaction_start=here.transaction_start, supply=here.supply,
            ceiling_w=here.ceiling_w, share=share,
        )


def _replaced_by(old: StackedProfile, new: StackedProfile) -> bool:
    """Whether installing ``new`` removes ``old``: the same id, or the same stack level and
    purpose on the same connector."""
    return old.profile_id == new.profile_id or (
        old.connector_id == new.connector_id and old.purpose == new.purpose
        and old.stack_level == new.stack_level)
