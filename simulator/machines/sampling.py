"""Sampling: a meter's reading as OCPP ``SampledValue`` lists, and when samples are due.

:func:`sampled_values` / :func:`meter_value` turn a :class:`MeterReading` into the values of a
measurand list (units, locations and phases as :mod:`.measurands` says; registers as interval
deltas from the previous reading of the same stream where the measurand asks for it);
:func:`next_periodic_sample` and :func:`next_clock_aligned` compute the next sampling instants.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

import msgspec

from simulator.machines.measurands import MEASURAND_LOCATIONS, MEASURAND_UNITS, MeasurandSpec
from simulator.ocpp.v16 import (
    Location,
    Measurand,
    MeterValue,
    Phase,
    ReadingContext,
    SampledValue,
    UnitOfMeasure,
    ValueFormat,
)

_M = Measurand
_P = Phase
_U = UnitOfMeasure

class MeterReading(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a meter shows at one instant ``t``. Per-phase tuples are (L1, L2, L3).

    Registers are exact (Wh, varh); power (W), voltage (V, line to neutral), current (A) and
    frequency (Hz) carry measurement noise. ``soc`` is None without an EV.
    """

    t: float
    active_import_wh: tuple[float, float, float]
    reactive_import_varh: tuple[float, float, float]
    power_w: tuple[float, float, float]
    voltage_v: tuple[float, float, float]
    current_a: tuple[float, float, float]
    offered_w: float
    offered_a: float
    loaded_phases: int
    frequency_hz: float
    power_factor: float
    temperature_c: float
    rpm: float
    soc: float | None


# --- building sampled values ---------------------------------------------------------------------


_LINE_INDEX: Final[Mapping[Phase, int]] = MappingProxyType(
    {_P.L1: 0, _P.L2: 1, _P.L3: 2, _P.L1_N: 0, _P.L2_N: 1, _P.L3_N: 2}
)
_LINE_TO_LINE: Final[Mapping[Phase, tuple[int, int]]] = MappingProxyType(
    {_P.L1_L2: (0, 1), _P.L2_L3: (1, 2), _P.L3_L1: (2, 0)}
)

_DECIMALS: Final[Mapping[UnitOfMeasure | None, int]] = MappingProxyType(
    {_U.WH: 1, _U.VARH: 1, _U.W: 1, _U.VAR: 1, _U.A: 2, _U.V: 1, _U.CELSIUS: 1, _U.PERCENT: 1}
)


def _decimals(measurand: Measurand) -> int:
    """Decimal places a measurand's value is written with."""
    if measurand == _M.RPM:
        return 0
    return _DECIMALS.get(MEASURAND_UNITS[measurand], 3 if measurand == _M.POWER_FACTOR else 2)


_FORMATS: Final[Mapping[Measurand, tuple[str, Location, UnitOfMeasure | None]]] = (
    MappingProxyType({m: (f".{_decimals(m)}f", MEASURAND_LOCATIONS[m], MEASURAND_UNITS[m])
                      for m in Measurand})
)
"""Per measurand, as :func:`sampled_values` writes it: the value's format spec, the location and
the unit (looked up once here rather than for every sampled value)."""


def _formatted(value: float, spec: str) -> str:
    """``value`` formatted with ``spec`` (fixed decimals), a negative zero written as zero."""
    text = format(value, spec)
    return text[1:] if text[0] == "-" and float(text) == 0 else text


def _phase_sum(values: tuple[float, float, float], phase: Phase | None) -> float:
    return sum(values) if phase is None else values[_LINE_INDEX[phase]]


def _neutral_current(currents: tuple[float, float, float]) -> float:
    """Magnitude of the phasor sum of the line currents (balanced three-phase → 0)."""
    re = currents[0] - 0.5 * currents[1] - 0.5 * currents[2]
    im = math.sqrt(3) / 2 * (currents[1] - currents[2])
    return math.hypot(re, im)


def _current(values: tuple[float, float, float], phase: Phase | None) -> float:
    if phase is None:
        return max(values)
    if phase == _P.N:
        return _neutral_current(values)
    return values[_LINE_INDEX[phase]]


def _voltage(r: MeterReading, phase: Phase | None) -> float:
    if phase is None:
        live = [v for v in r.voltage_v if v > 0]
        return sum(live) / len(live) if live else 0.0
    if phase == _P.N:
        return 0.0
    if phase in _LINE_TO_LINE:
        a, b = _LINE_TO_LINE[phase]
        va, vb = r.voltage_v[a], r.voltage_v[b]
        # |Va - Vb| for phasors 120° apart
        return math.sqrt(va * va + vb * vb + va * vb)
    return r.voltage_v[_LINE_INDEX[phase]]


def _offered_current(r: MeterReading, phase: Phase | None) -> float:
    if phase is None:
        return r.offered_a
    if phase == _P.N:
        return 0.0
    return r.offered_a if _LINE_INDEX[phase] < r.loaded_phases else 0.0


def measured_value(
    reading: MeterReading, spec: MeasurandSpec, previous: MeterReading | None = None
) -> float | None:
    """The value of one measurand in its unit (:data:`MEASURAND_UNITS`), or None if it has none
    now (SoC without an EV). ``.Interval`` energies are the growth since ``previous`` (since zero
    without one); export measurands are 0 (the simulated charger does not discharge)."""
    m, ph, r = spec.measurand, spec.phase, reading
    zero = (0.0, 0.0, 0.0)
    if m == _M.ENERGY_ACTIVE_IMPORT_REGISTER:
        return _phase_sum(r.active_import_wh, ph)
    if m == _M.ENERGY_REACTIVE_IMPORT_REGISTER:
        return _phase_sum(r.reactive_import_varh, ph)
    if m == _M.ENERGY_ACTIVE_IMPORT_INTERVAL:
        base = previous.active_import_wh if previous is not None else zero
        return _phase_sum(r.active_import_wh, ph) - _phase_sum(base, ph)
    if m == _M.ENERGY_REACTIVE_IMPORT_INTERVAL:
        base = previous.reactive_import_varh if previous is not None else zero
        return _phase_sum(r.reactive_import_varh, ph) - _phase_sum(base, ph)
    if m == _M.POWER_ACTIVE_IMPORT:
        return _phase_sum(r.power_w, ph)
    if m == _M.POWER_REACTIVE_IMPORT:
        return _phase_sum(r.power_w, ph) * math.tan(math.acos(r.power_factor))
    if m == _M.POWER_OFFERED:
        return r.offered_w
    if m == _M.POWER_FACTOR:
        return r.power_factor
    if m == _M.CURRENT_IMPORT:
        return _current(r.current_a, ph)
    if m == _M.CURRENT_OFFERED:
        return _offered_current(r, ph)
    if m == _M.VOLTAGE:
        return _voltage(r, ph)
    if m == _M.FREQUENCY:
        return r.frequency_hz
    if m == _M.TEMPERATURE:
        return r.temperature_c
    if m == _M.SOC:
        return r.soc
    if m == _M.RPM:
        return r.rpm
    # Energy.*.Export.*, Power.*.Export, Current.Export: nothing flows back to the grid.
    return 0.0


def sampled_values(
    reading: MeterReading,
    specs: Sequence[MeasurandSpec],
    *,
    context: ReadingContext,
    previous: MeterReading | None = None,
) -> list[SampledValue]:
    """One ``SampledValue`` per spec (skipping measurands without a value now), each with its
    context, format Raw, measurand, phase (when asked), location and unit (omitted where none
    fits: Frequency, Power.Factor, RPM). ``value`` is a decimal string."""
    values: list[SampledValue] = []
    for spec in specs:
        value = measured_value(reading, spec, previous)
        if value is None:
            continue
        measurand = spec.measurand
        number_format, location, unit = _FORMATS[measurand]
        values.append(
            SampledValue(
                value=_formatted(value, number_format),
                context=context,
                format=ValueFormat.RAW,
                measurand=measurand,
                phase=spec.phase,
                location=location,
                unit=unit,
            )
        )
    return values


def meter_value(
    reading: MeterReading,
    specs: Sequence[MeasurandSpec],
    *,
    context: ReadingContext,
    wall_offset: float,
    previous: MeterReading | None = None,
) -> MeterValue:
    """A ``MeterValue`` timestamped at the reading's wall time (``wall_offset + reading.t``)."""
    return MeterValue(
        timestamp=dt.datetime.fromtimestamp(wall_offset + reading.t, tz=dt.UTC),
        sampled_value=tuple(sampled_values(reading, specs, context=context, previous=previous)),
    )


# --- sampling schedule ---------------------------------------------------------------------------

_DAY: Final = 86400.0


def next_clock_aligned(now: float, *, wall_offset: float, interval: float) -> float | None:
    """The first monotonic instant strictly after ``now`` that falls on the clock-aligned grid of
    ``ClockAlignedDataInterval`` (``interval`` s counted from midnight UTC of the wall clock, which
    is ``wall_offset + now``; the grid restarts at every midnight). None if ``interval`` <= 0."""
    if interval <= 0:
        return None
    wall = wall_offset + now
    midnight = math.floor(wall / _DAY) * _DAY
    step = math.floor((wall - midnight) / interval) + 1
    while True:  # float rounding can land a grid point on ``now``: strictly after it
        aligned = min(midnight + step * interval, midnight + _DAY)
        if aligned - wall_offset > now:
            return aligned - wall_offset
        if aligned >= midnight + _DAY:
            midnight, step = midnight + _DAY, 1
        else:
            step += 1


def next_periodic_sample(now: float, *, start: float, interval: float) -> float | None:
    """The first instant strictly after ``now`` on the ``MeterValueSampleInterval`` grid that
    starts at the transaction start ``start``. None if ``interval`` <= 0."""
    if interval <= 0:
        return None
    if now < start:
        return start + interval
    step = math.floor((now - start) / interval) + 1
    while start + step * interval <= now:  # float rounding can land a grid point on ``now``
        step += 1
    return start + step * interval
