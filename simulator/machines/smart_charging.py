"""Smart charging's composite schedule: a pure function of the installed charging profiles.

Rules (OCPP 1.6 core spec §3.13 Smart Charging, §5.7 GetCompositeSchedule):

- **Stacking.** Per purpose, the profile in force at an instant is the one with the highest
  ``stackLevel`` among those that are *valid* then (``validFrom`` <= t < ``validTo``, either bound
  open when absent) and whose schedule *runs* then (t is past its first period's start and, with
  a ``duration``, before its end). A TxDefaultProfile installed on the connector wins over one on
  connector 0 at the same stack level.
- **Purposes.** A TxProfile in force overrides the TxDefaultProfile; the ChargePointMaxProfile
  caps the result; so does the hardware's ``ceiling`` when one is given. Where nothing limits,
  the composite has no limit (``None``).
- **Kinds.** Absolute: the schedule starts at ``startSchedule`` (absent: as Relative). Recurring:
  it starts again every day (Daily) or week (Weekly) counted from ``startSchedule``, a period
  running past the next start is cut there. Relative: it starts with the transaction, or, without
  one, at the composite's start (``now``).
- **Units.** A limit in A is per phase, on ``numberPhases`` phases (default 3, at most the supply's
  ``phases``); in W it is the total. Limits are compared in the composite's unit: W = A x
  ``voltage_v`` x phases.
- **minChargingRate.** A limit under the minChargingRate of the Tx/TxDefault profile in force is
  no use to the EV: the composite offers 0 then.
- The composite's periods are merged where consecutive ones are equal.

The wire :class:`~simulator.ocpp.v16.ChargingProfile` becomes a :class:`StackedProfile` (times in
Unix seconds) with :meth:`StackedProfile.from_wire`; :func:`composite_schedule` computes one
connector's composite, :func:`charge_point_schedule` connector 0's (the charge point's total).
Pure: no I/O, no clock.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import enum
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Final

from simulator.ocpp.v16 import (
    ChargingProfile,
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
    RecurrencyKind,
)

Purpose = ChargingProfilePurposeType
Kind = ChargingProfileKindType
Unit = ChargingRateUnitType

DEFAULT_PHASES: Final = 3
"""``numberPhases`` when a period leaves it out (OCPP 1.6 §7.13)."""

RECURRENCE: Final[Mapping[RecurrencyKind, float]] = MappingProxyType(
    {RecurrencyKind.DAILY: 86_400.0, RecurrencyKind.WEEKLY: 604_800.0})
"""Seconds after which a Recurring schedule starts again."""

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def unix_seconds(when: dt.datetime) -> float:
    """Unix seconds of ``when`` (a naive datetime counts as UTC; any year works)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - _EPOCH).total_seconds()


@dataclasses.dataclass(frozen=True, slots=True)
class Period:
    """One schedule period: from ``start`` seconds after the schedule's start, ``limit`` in the
    schedule's unit, on ``phases`` phases (None: the default)."""

    start: float
    limit: float
    phases: int | None = None


def _period_start(period: Period) -> float:
    return period.start


@dataclasses.dataclass(frozen=True, slots=True)
class StackedProfile:
    """An installed charging profile, as the composite reads it (times in Unix seconds).

    ``connector_id`` is where it is installed (0: the charge point). ``periods`` are in ascending
    ``start`` order.
    """

    profile_id: int
    connector_id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    unit: Unit
    periods: tuple[Period, ...]
    duration: float | None = None
    start_schedule: float | None = None
    recurrency: RecurrencyKind | None = None
    valid_from: float | None = None
    valid_to: float | None = None
    min_rate: float | None = None

    @classmethod
    def from_wire(cls, profile: ChargingProfile, connector_id: int) -> StackedProfile:
        """The profile of a SetChargingProfile (or RemoteStartTransaction) installed on
        ``connector_id``. Its checks are the caller's (:mod:`.charging_profiles`)."""
        schedule = profile.charging_schedule
        return cls(
            profile_id=profile.charging_profile_id,
            connector_id=connector_id,
            stack_level=profile.stack_level,
            purpose=profile.charging_profile_purpose,
            kind=profile.charging_profile_kind,
            unit=schedule.charging_rate_unit,
            periods=tuple(Period(float(p.start_period), p.limit, p.number_phases)
                          for p in schedule.charging_schedule_period),
            duration=None if schedule.duration is None else float(schedule.duration),
            start_schedule=None if schedule.start_schedule is None
            else unix_seconds(schedule.start_schedule),
            recurrency=profile.recurrency_kind,
            valid_from=None if profile.valid_from is None else unix_seconds(profile.valid_from),
            valid_to=None if profile.valid_to is None else unix_seconds(profile.valid_to),
            min_rate=schedule.min_charging_rate,
        )

    def valid(self, t: float) -> bool:
        """Whether ``t`` lies within ``validFrom`` .. ``validTo``."""
        return (self.valid_from is None or self.valid_from <= t) and (
            self.valid_to is None or t < self.valid_to)

    def recurs_every(self) -> float | None:
        """Seconds between the starts of a Recurring schedule, or None for another kind."""
        if self.kind != Kind.RECURRING or self.recurrency is None:
            return None
        return RECURRENCE[self.recurrency]

    def schedule_start(self, t: float, anchor: float) -> float | None:
        """When the schedule that runs at ``t`` started (``anchor``: the transaction's start,
        or the composite's without one), or None for a Recurring one lacking its start or
        recurrency kind (never in force)."""
        if self.kind == Kind.RECURRING:
            every = self.recurs_every()
            if self.start_schedule is None or every is None:
                return None
            return self.start_schedule + math.floor((t - self.start_schedule) / every) * every
        if self.kind == Kind.ABSOLUTE and self.start_schedule is not None:
            return self.start_schedule
        return anchor

    def end(self) -> float | None:
        """How long one run of the schedule lasts (s), or None: indefinitely."""
        every = self.recurs_every()
        if every is None:
            return self.duration
        return every if self.duration is None else min(every, self.duration)

    def period_at(self, t: float, anchor: float) -> Period | None:
        """The period in force at ``t``, or None when the profile is not in force then."""
        if not self.periods or not self.valid(t):
            return None
        start = self.schedule_start(t, anchor)
        if start is None:
            return None
        offset = t - start
        end = self.end()
        if offset < 0 or (end is not None and offset >= end):
            return None
        index = bisect.bisect_right(self.periods, offset, key=_period_start) - 1
        return self.periods[index] if index >= 0 else None

    def boundaries(self, begin: float, finish: float, anchor: float) -> Iterable[float]:
        """The instants in ``[begin, finish)`` at which this profile's limit may change."""
        marks = [self.valid_from, self.valid_to]
        end, every = self.end(), self.recurs_every()
        run = self.schedule_start(begin, anchor)
        while run is not None and run < finish:
            marks.extend(run + p.start for p in self.periods)
            if end is not None:
                marks.append(run + end)
            run = None if every is None else run + every
        return (m for m in marks if m is not None and begin <= m < finish)


@dataclasses.dataclass(frozen=True, slots=True)
class Supply:
    """How a connector is fed: line-to-neutral ``voltage_v`` and ``phases`` (1-3)."""

    voltage_v: float = 230.0
    phases: int = 3

    def phases_of(self, period: Period) -> int:
        """The phases a period's limit applies to: its own (or the default), at most ours."""
        wanted = period.phases if period.phases is not None else DEFAULT_PHASES
        return max(1, min(wanted, self.phases))

    def convert(self, value: float, unit: Unit, phases: int, to: Unit) -> float:
        """``value`` in ``unit`` on ``phases`` phases, expressed in ``to``."""
        if unit == to:
            return value
        if unit == Unit.AMPS:
            return value * self.voltage_v * phases
        return value / (self.voltage_v * phases)


@dataclasses.dataclass(frozen=True, slots=True)
class Limit:
    """A limit in the composite's unit and the phases it applies to (None: no limit)."""

    value: float | None
    phases: int


_NO_LIMIT: Final = Limit(None, DEFAULT_PHASES)


@dataclasses.dataclass(frozen=True, slots=True)
class CompositePeriod:
    """One period of a composite schedule: from ``start`` s after the composite's start."""

    start: float
    limit: float | None
    phases: int


@dataclasses.dataclass(frozen=True, slots=True)
class Composite:
    """A composite schedule: starting at ``start`` (Unix seconds), lasting ``duration`` s, in
    ``unit``, its periods in ascending order (the first at 0)."""

    start: float
    duration: float
    unit: Unit
    periods: tuple[CompositePeriod, ...]

    def limit_at(self, t: float) -> float | None:
        """The composite's limit at ``t`` (Unix seconds, within the schedule)."""
        index = bisect.bisect_right([p.start for p in self.periods], t - self.start) - 1
        return self.periods[max(index, 0)].limit

    def next_change(self) -> float | None:
        """When the second period begins (Unix seconds), or None for a single period."""
        return self.start + self.periods[1].start if len(self.periods) > 1 else None


class _Rank(enum.IntEnum):
    """Ties at one stack level: a profile on the connector beats one on connector 0."""

    GENERAL = 0
    SPECIFIC = 1


def _in_force(
    ranked: Sequence[StackedProfile], t: float, anchor: float
) -> tuple[StackedProfile, Period] | None:
    """The first of ``ranked`` (highest priority first) in force at ``t``, with its period."""
    for profile in ranked:
        period = profile.period_at(t, anchor)
        if period is not None:
            return profile, period
    return None


def _ranked(profiles: Iterable[StackedProfile], connector_id: int) -> list[StackedProfile]:
    def rank(p: StackedProfile) -> tuple[int, _Rank]:
        return p.stack_level, _Rank.SPECIFIC if p.connector_id == connector_id else _Rank.GENERAL

    return sorted(profiles, key=rank, reverse=True)


@dataclasses.dataclass(frozen=True, slots=True)
class _Connector:
    """What a connector's composite needs: its stacks (highest priority first), the anchor of
    its Relative schedules, its supply and its hardware ceiling (W)."""

    tx: list[StackedProfile]
    tx_default: list[StackedProfile]
    supply: Supply
    anchor: float
    ceiling_w: float | None

    def limit(self, t: float, unit: Unit, cap: Limit) -> Limit:
        """The connector's limit at ``t`` under the ChargePointMaxProfile's ``cap``."""
        supply = self.supply
        best = cap
        if self.ceiling_w is not None:
            best = _lower(best, Limit(
                supply.convert(self.ceiling_w, Unit.WATTS, supply.phases, unit), supply.phases))
        found = _in_force(self.tx, t, self.anchor) or _in_force(self.tx_default, t, self.anchor)
        if found is None:
            return best
        profile, period = found
        phases = supply.phases_of(period)
        best = _lower(Limit(supply.convert(period.limit, profile.unit, phases, unit), phases),
                      best)
        if profile.min_rate is not None and best.value is not None and best.value > 0 and \
                best.value < supply.convert(profile.min_rate, profile.unit, phases, unit):
            return Limit(0.0, best.phases)
        return best

    def boundaries(self, begin: float, finish: float) -> Iterable[float]:
        """The instants in ``[begin, finish)`` at which the connector's limit may change."""
        for profile in (*self.tx, *self.tx_default):
            yield from profile.boundaries(begin, finish, self.anchor)


def _lower(limit: Limit, other: Limit) -> Limit:
    """The lower of two limits (``limit`` on a tie; no limit is the highest)."""
    if other.value is None or (limit.value is not None and limit.value <= other.value):
        return limit
    return other


def _charge_point_max(
    profiles: Sequence[StackedProfile], t: float, anchor: float, supply: Supply, unit: Unit,
    share: int,
) -> Limit:
    """The ChargePointMaxProfile's limit at ``t`` (``profiles`` ranked), ``share``d."""
    found = _in_force(profiles, t, anchor)
    if found is None:
        return Limit(None, supply.phases)
    profile, period = found
    phases = supply.phases_of(period)
    return Limit(supply.convert(period.limit, profile.unit, phases, unit) / share, phases)


def _merge(
    start: float, instants: Iterable[float], limit_at: Callable[[float], Limit]
) -> tuple[CompositePeriod, ...]:
    """The periods of ``limit_at`` from ``start``, evaluated at each of ``instants`` (the
    instants at which it may change), consecutive equal ones merged."""
    periods: list[CompositePeriod] = []
    for t in sorted({start, *instants}):
        limit = limit_at(t)
        if periods and periods[-1].limit == limit.value and periods[-1].phases == limit.phases:
            continue
        periods.append(CompositePeriod(t - start, limit.value, limit.phases))
    return tuple(periods)


def _split(
    profiles: Iterable[StackedProfile], connector_id: int
) -> tuple[list[StackedProfile], list[StackedProfile], list[StackedProfile]]:
    """The ChargePointMax, TxDefault and Tx stacks that apply to ``connector_id``."""
    cp_max, tx_default, tx = [], [], []
    for p in profiles:
        if p.purpose == Purpose.CHARGE_POINT_MAX_PROFILE and p.connector_id == 0:
            cp_max.append(p)
        elif p.purpose == Purpose.TX_DEFAULT_PROFILE and p.connector_id in (0, connector_id):
            tx_default.append(p)
        elif p.purpose == Purpose.TX_PROFILE and p.connector_id == connector_id:
            tx.append(p)
    return (_ranked(cp_max, 0), _ranked(tx_default, connector_id),
            _ranked(tx, connector_id))


def composite_schedule(
    profiles: Iterable[StackedProfile],
    *,
    connector_id: int,
    start: float,
    duration: float,
    unit: Unit,
    transaction_start: float | None = None,
    supply: Supply = Supply(),
    ceiling_w: float | None = None,
    share: int = 1,
) -> Composite:
    """The composite schedule of connector ``connector_id`` (> 0) from ``start`` (Unix seconds on
    the charger's clock) for ``duration`` s, in ``unit`` (see the module docstring).

    ``profiles`` are the installed ones (any connector; the TxProfiles only those of the
    connector's running transaction); ``transaction_start`` anchors Relative schedules (None: they
    start at ``start``); ``ceiling_w`` is the connector's rating; ``share`` divides the
    ChargePointMaxProfile among that many connectors.
    """
    cp_max, tx_default, tx = _split(profiles, connector_id)
    anchor = start if transaction_start is None else transaction_start
    connector = _Connector(tx, tx_default, supply, anchor, ceiling_w)
    finish = start + max(duration, 0.0)

    def limit_at(t: float) -> Limit:
        return connector.limit(
            t, unit, _charge_point_max(cp_max, t, anchor, supply, unit, max(share, 1)))

    instants = [*connector.boundaries(start, finish),
                *(m for p in cp_max for m in p.boundaries(start, finish, anchor))]
    return Composite(start, max(duration, 0.0), unit,
                     _merge(start, instants, limit_at))


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectorLoad:
    """One connector as connector 0's composite sees it: its transaction's start (None: none
    runs), its supply and its rating (W)."""

    connector_id: int
    transaction_start: float | None
    supply: Supply
    ceiling_w: float | None


def charge_point_schedule(
    profiles: Iterable[StackedProfile],
    connectors: Sequence[ConnectorLoad],
    *,
    start: float,
    duration: float,
    unit: Unit,
    supply: Supply = Supply(),
) -> Composite:
    """Connector 0's composite: the sum of the connectors' limits, capped by the
    ChargePointMaxProfile. A connector without any limit makes the sum unlimited."""
    installed = list(profiles)
    cp_max = _split(installed, 0)[0]
    finish = start + max(duration, 0.0)
    parts = []
    for load in connectors:
        _, tx_default, tx = _split(installed, load.connector_id)
        anchor = start if load.transaction_start is None else load.transaction_start
        parts.append(_Connector(tx, tx_default, load.supply, anchor, load.ceiling_w))

    def limit_at(t: float) -> Limit:
        values = [part.limit(t, unit, _NO_LIMIT).value for part in parts]
        total = None if not values or None in values else math.fsum(
            v for v in values if v is not None)
        return _lower(Limit(total, supply.phases),
                      _charge_point_max(cp_max, t, start, supply, unit, 1))

    instants = [*(m for part in parts for m in part.boundaries(start, finish)),
                *(m for p in cp_max for m in p.boundaries(start, finish, start))]
    return Composite(start, max(duration, 0.0), unit,
                     _merge(start, instants, limit_at))
