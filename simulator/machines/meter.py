"""The meter model of one connector: energy registers, power physics and MeterValues sampling.

A :class:`Meter` integrates the power delivered to the plugged-in EV between :meth:`Meter.advance`
calls. Power is the least of the charger's rating (``max_power_kw`` over its phases and voltage), a
charging limit set by smart charging (W or A), and the EV's acceptance curve (:class:`EvSpec`: full
power below 80 % state of charge, tapering linearly to zero at 100 %); it drops to zero when the EV
reaches its target (the SuspendedEV signal). Integration is analytic, so the result depends only
on the inputs and not on how often ``advance`` is called. Registers only ever grow and are never
reset per session. Measurement noise (±1 % on power, voltage, current) comes from the injected
random stream (:class:`simulator.seeds.Rng`) and touches only instantaneous readings, never the
registers.

Sampling turns a reading into ``SampledValue`` lists for any measurand list in the syntax of
``MeterValuesSampledData`` (a comma list, phase suffix allowed: ``Voltage.L1``); the helpers at the
bottom compute the next periodic and clock-aligned sampling instants. Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from types import MappingProxyType
from typing import Final

import msgspec

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
from simulator.seeds import Rng

_M = Measurand
_P = Phase
_U = UnitOfMeasure

#: State of charge (%) above which the EV's acceptance tapers linearly to zero at 100 %.
TAPER_START_SOC: Final = 80.0
#: Relative measurement noise (uniform ±) on instantaneous power, voltage and current.
DEFAULT_NOISE: Final = 0.01
#: Power factor of the simulated load.
POWER_FACTOR: Final = 0.99
#: Ambient (idle) temperature of the charger body, °C, and its rise at full power.
AMBIENT_CELSIUS: Final = 25.0
FULL_LOAD_TEMPERATURE_RISE: Final = 20.0
#: Cooling fan speed when idle and at full power (rev/min).
IDLE_RPM: Final = 0.0
FULL_LOAD_RPM: Final = 3000.0

_TAN_PHI: Final = math.tan(math.acos(POWER_FACTOR))
"""Reactive over active power at :data:`POWER_FACTOR`."""

#: Every measurand the meter can report (all of OCPP 1.6).
SUPPORTED_MEASURANDS: Final[frozenset[Measurand]] = frozenset(Measurand)

_LINES: Final = frozenset({_P.L1, _P.L2, _P.L3})

#: The unit each measurand is reported in; None means the unit field is omitted (no unit fits).
MEASURAND_UNITS: Final[Mapping[Measurand, UnitOfMeasure | None]] = MappingProxyType(
    {
        _M.ENERGY_ACTIVE_IMPORT_REGISTER: _U.WH,
        _M.ENERGY_ACTIVE_EXPORT_REGISTER: _U.WH,
        _M.ENERGY_ACTIVE_IMPORT_INTERVAL: _U.WH,
        _M.ENERGY_ACTIVE_EXPORT_INTERVAL: _U.WH,
        _M.ENERGY_REACTIVE_IMPORT_REGISTER: _U.VARH,
        _M.ENERGY_REACTIVE_EXPORT_REGISTER: _U.VARH,
        _M.ENERGY_REACTIVE_IMPORT_INTERVAL: _U.VARH,
        _M.ENERGY_REACTIVE_EXPORT_INTERVAL: _U.VARH,
        _M.POWER_ACTIVE_IMPORT: _U.W,
        _M.POWER_ACTIVE_EXPORT: _U.W,
        _M.POWER_REACTIVE_IMPORT: _U.VAR,
        _M.POWER_REACTIVE_EXPORT: _U.VAR,
        _M.POWER_OFFERED: _U.W,
        _M.POWER_FACTOR: None,
        _M.CURRENT_IMPORT: _U.A,
        _M.CURRENT_EXPORT: _U.A,
        _M.CURRENT_OFFERED: _U.A,
        _M.VOLTAGE: _U.V,
        _M.FREQUENCY: None,
        _M.TEMPERATURE: _U.CELSIUS,
        _M.SOC: _U.PERCENT,
        _M.RPM: None,
    }
)

#: Where each measurand is measured.
MEASURAND_LOCATIONS: Final[Mapping[Measurand, Location]] = MappingProxyType(
    {
        m: (
            Location.EV
            if m == _M.SOC
            else Location.BODY
            if m in (_M.TEMPERATURE, _M.RPM)
            else Location.OUTLET
        )
        for m in Measurand
    }
)

_PER_LINE_MEASURANDS: Final = frozenset(
    {
        _M.ENERGY_ACTIVE_IMPORT_REGISTER,
        _M.ENERGY_ACTIVE_EXPORT_REGISTER,
        _M.ENERGY_ACTIVE_IMPORT_INTERVAL,
        _M.ENERGY_ACTIVE_EXPORT_INTERVAL,
        _M.ENERGY_REACTIVE_IMPORT_REGISTER,
        _M.ENERGY_REACTIVE_EXPORT_REGISTER,
        _M.ENERGY_REACTIVE_IMPORT_INTERVAL,
        _M.ENERGY_REACTIVE_EXPORT_INTERVAL,
        _M.POWER_ACTIVE_IMPORT,
        _M.POWER_ACTIVE_EXPORT,
        _M.POWER_REACTIVE_IMPORT,
        _M.POWER_REACTIVE_EXPORT,
        _M.POWER_FACTOR,
    }
)

#: The phase suffixes each measurand accepts: line phases for energy and power, lines and neutral
#: for currents, every phase (line-neutral and line-line) for voltage, none for the rest.
MEASURAND_PHASES: Final[Mapping[Measurand, frozenset[Phase]]] = MappingProxyType(
    {
        m: (
            _LINES
            if m in _PER_LINE_MEASURANDS
            else _LINES | {_P.N}
            if m in (_M.CURRENT_IMPORT, _M.CURRENT_EXPORT, _M.CURRENT_OFFERED)
            else frozenset(Phase)
            if m == _M.VOLTAGE
            else frozenset()
        )
        for m in Measurand
    }
)


class UnsupportedMeasurand(ValueError):
    """A measurand list entry the meter cannot report (unknown name or phase not applicable)."""

    def __init__(self, entry: str) -> None:
        super().__init__(f"unsupported measurand {entry!r}")
        self.entry = entry


class MeasurandSpec(msgspec.Struct, frozen=True):
    """One entry of a measurand list: a measurand, optionally for one phase only."""

    measurand: Measurand
    phase: Phase | None = None

    def __str__(self) -> str:
        return self.measurand.value if self.phase is None else f"{self.measurand}.{self.phase}"


def parse_measurand(entry: str) -> MeasurandSpec:
    """Parse one entry (``Energy.Active.Import.Register``, ``Voltage.L1-N``); raises
    :class:`UnsupportedMeasurand` for unknown names and phases the measurand does not accept."""
    text = entry.strip()
    try:
        return MeasurandSpec(Measurand(text))
    except ValueError:
        pass
    name, _, suffix = text.rpartition(".")
    try:
        measurand, phase = Measurand(name), Phase(suffix)
    except ValueError:
        raise UnsupportedMeasurand(text) from None
    if phase not in MEASURAND_PHASES[measurand]:
        raise UnsupportedMeasurand(text)
    return MeasurandSpec(measurand, phase)


def parse_measurand_list(text: str) -> tuple[MeasurandSpec, ...]:
    """Parse a comma list as in ``MeterValuesSampledData`` (spaces around entries are ignored,
    empty entries skipped, ``""`` is the empty list); raises :class:`UnsupportedMeasurand` on the
    first entry that is not supported, so a caller can refuse the whole value."""
    return tuple(parse_measurand(part) for part in text.split(",") if part.strip())


def format_measurand_list(specs: Iterable[MeasurandSpec]) -> str:
    """The canonical comma list for ``specs`` (inverse of :func:`parse_measurand_list`)."""
    return ",".join(str(s) for s in specs)


class EvSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The EV plugged into a connector.

    ``initial_soc`` and ``target_soc`` are percent (0-100); the EV stops taking energy at
    ``target_soc`` or after ``energy_wanted_kwh``, whichever comes first. ``max_power_kw`` is its
    on-board charger's limit over ``phases`` phases (1-3).
    """

    battery_kwh: float = 60.0
    initial_soc: float = 20.0
    target_soc: float = 100.0
    max_power_kw: float = 11.0
    energy_wanted_kwh: float | None = None
    phases: int = 3

    def __post_init__(self) -> None:
        if self.battery_kwh <= 0:
            raise ValueError(f"battery_kwh must be > 0, got {self.battery_kwh}")
        if not 0 <= self.initial_soc <= 100 or not 0 <= self.target_soc <= 100:
            raise ValueError("initial_soc and target_soc must be within 0..100 %")
        if self.max_power_kw < 0:
            raise ValueError(f"max_power_kw must be >= 0, got {self.max_power_kw}")
        if self.energy_wanted_kwh is not None and self.energy_wanted_kwh < 0:
            raise ValueError(f"energy_wanted_kwh must be >= 0, got {self.energy_wanted_kwh}")
        if self.phases not in (1, 2, 3):
            raise ValueError(f"phases must be 1, 2 or 3, got {self.phases}")

    @property
    def full_soc(self) -> float:
        """The state of charge (%) at which the EV stops taking energy."""
        full = self.target_soc
        if self.energy_wanted_kwh is not None:
            full = min(full, self.initial_soc + 100.0 * self.energy_wanted_kwh / self.battery_kwh)
        return max(full, self.initial_soc)


class LimitUnit(StrEnum):
    """Unit of a charging limit; values match the OCPP ``chargingRateUnit`` (``W``, ``A``)."""

    W = "W"
    A = "A"


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


class Meter:
    """The meter and power electronics of one connector.

    ``max_power_kw`` is the connector's rating over ``phases`` x ``voltage_v`` (line to neutral);
    ``register_wh`` restores the import register (after a reboot). ``rng`` feeds the noise and must
    be owned by this meter (draws per reading are fixed, so equal inputs give equal readings).
    Every input takes ``now`` and first integrates up to it; ``now`` must not go backwards.
    """

    def __init__(
        self,
        connector_id: int,
        *,
        max_power_kw: float,
        rng: Rng,
        now: float,
        phases: int = 3,
        voltage_v: float = 230.0,
        frequency_hz: float = 50.0,
        register_wh: float = 0.0,
        noise: float = DEFAULT_NOISE,
    ) -> None:
        if max_power_kw < 0 or phases not in (1, 2, 3) or voltage_v <= 0 or register_wh < 0:
            raise ValueError(
                "meter needs max_power_kw >= 0, 1-3 phases, voltage > 0, register >= 0"
            )
        self.connector_id = connector_id
        self.max_power_w = max_power_kw * 1000.0
        self.phases = phases
        self.voltage_v = voltage_v
        self.frequency_hz = frequency_hz
        self._rng = rng
        self._noise = noise
        self._t = now
        share = register_wh / phases
        self._active = [share if i < phases else 0.0 for i in range(3)]
        self._reactive = [0.0, 0.0, 0.0]
        self._ev: EvSpec | None = None
        self._full_soc = math.inf
        """``_ev.full_soc`` (a computed property), kept while ``_ev`` is plugged in: set by
        :meth:`plug_in`, the only place ``_ev`` is set (inf without an EV, never read then)."""
        self._soc = 0.0
        self._delivering = False
        self._limit_w: float | None = None
        self._marks: dict[str, MeterReading] = {}

    # --- state -------------------------------------------------------------------------------

    @property
    def register_wh(self) -> float:
        """Energy.Active.Import.Register in Wh (exact, as of the last input)."""
        return sum(self._active)

    def meter_value_wh(self) -> int:
        """The register as whole Wh, for meterStart / meterStop (rounded down: never ahead)."""
        return math.floor(self.register_wh)

    @property
    def ev(self) -> EvSpec | None:
        """The plugged-in EV, or None."""
        return self._ev

    @property
    def soc(self) -> float | None:
        """The EV's state of charge (%), or None without an EV."""
        return None if self._ev is None else self._soc

    @property
    def delivering(self) -> bool:
        """Whether the contactor is closed (a transaction runs and the EVSE offers energy)."""
        return self._delivering

    @property
    def ev_full(self) -> bool:
        """True when an EV is plugged in and takes no more energy (the SuspendedEV signal)."""
        return self._ev is not None and self._soc >= self._full_soc

    def loaded_phases(self) -> int:
        """Phases that carry current: the EV's and the supply's common phases."""
        return self.phases if self._ev is None else min(self.phases, self._ev.phases)

    def offered_w(self) -> float:
        """What the EVSE offers now (W): its rating over the loaded phases, capped by the limit."""
        return self._offer_w(self.loaded_phases())

    def _offer_w(self, loaded: int) -> float:
        """:meth:`offered_w`, given :meth:`loaded_phases`."""
        rating = self.max_power_w * loaded / self.phases
        return rating if self._limit_w is None else min(rating, self._limit_w)

    def power_w(self) -> float:
        """The exact active power flowing now (W, no noise)."""
        if self._ev is None or not self._delivering:
            return 0.0
        return min(self.offered_w(), self._accept_w(self._soc))

    def _accept_w(self, soc: float) -> float:
        """The EV's acceptance curve: its full power below the taper point, then falling
        linearly to 0 at 100 %, and 0 once it reached its target."""
        ev = self._ev
        if ev is None or soc >= self._full_soc:
            return 0.0
        e_w = ev.max_power_kw * 1000.0
        if soc <= TAPER_START_SOC:
            return e_w
        return e_w * (100.0 - soc) / (100.0 - TAPER_START_SOC)

    # --- inputs ------------------------------------------------------------------------------

    def plug_in(self, ev: EvSpec, now: float) -> None:
        """An EV is connected; its state of charge starts at ``ev.initial_soc``."""
        self.advance(now)
        self._ev = ev
        self._full_soc = ev.full_soc
        self._soc = ev.initial_soc

    def unplug(self, now: float) -> None:
        """The EV is gone; no energy flows until the next :meth:`plug_in`."""
        self.advance(now)
        self._ev = None

    def set_delivering(self, delivering: bool, now: float) -> None:
        """Close (True) or open the contactor: energy flows only while delivering."""
        self.advance(now)
        self._delivering = delivering

    def set_limit(self, limit: float | None, unit: LimitUnit | str, now: float) -> None:
        """Cap the power (smart charging). ``unit`` ``W``: total watts; ``A``: amps per loaded
        phase (converted with the nominal voltage). ``None`` removes the cap; 0 stops the flow."""
        self.advance(now)
        if limit is None:
            self._limit_w = None
            return
        if limit < 0:
            raise ValueError(f"a charging limit cannot be negative, got {limit}")
        if LimitUnit(unit) == LimitUnit.A:
            self._limit_w = limit * self.voltage_v * self.loaded_phases()
        else:
            self._limit_w = float(limit)

    def advance(self, now: float) -> None:
        """Integrate the energy delivered from the last input up to ``now`` (analytic: the
        acceptance curve is followed exactly, the target state of charge is never overshot)."""
        if now < self._t:
            raise ValueError(f"meter time went backwards: {now} < {self._t}")
        duration, self._t = now - self._t, now
        ev = self._ev
        if ev is None or not self._delivering or duration == 0:
            return
        start_soc = self._soc
        loaded = self.loaded_phases()
        self._soc = _integrate_soc(ev, self._full_soc, self._soc, self._offer_w(loaded), duration)
        energy_wh = (self._soc - start_soc) / 100.0 * ev.battery_kwh * 1000.0
        if energy_wh <= 0:
            return
        reactive_varh = energy_wh * _TAN_PHI
        for i in range(loaded):
            self._active[i] += energy_wh / loaded
            self._reactive[i] += reactive_varh / loaded

    # --- readings ----------------------------------------------------------------------------

    def reading(self, now: float) -> MeterReading:
        """Integrate up to ``now`` and read every quantity (draws 5 noise values from ``rng``)."""
        self.advance(now)
        noise, uniform = self._noise, self._rng.uniform
        # The five draws, always in this order (written out: cheaper than a comprehension).
        jitter_power = 1.0 + uniform(-noise, noise)
        jitter_l1 = 1.0 + uniform(-noise, noise)
        jitter_l2 = 1.0 + uniform(-noise, noise)
        jitter_l3 = 1.0 + uniform(-noise, noise)
        jitter_frequency = 1.0 + uniform(-noise, noise)
        loaded, phases, volts = self.loaded_phases(), self.phases, self.voltage_v
        offered = self._offer_w(loaded)
        # power_w(), without computing the offer twice
        ev = self._ev
        exact = 0.0 if ev is None or not self._delivering else min(
            offered, self._accept_w(self._soc))
        # Per phase (L1, L2, L3), written out: phases beyond the loaded (or supplied) ones read 0.
        share = exact * jitter_power / loaded
        power_w = (share, share if loaded > 1 else 0.0, share if loaded > 2 else 0.0)
        voltage_v = (volts * jitter_l1, volts * jitter_l2 if phases > 1 else 0.0,
                     volts * jitter_l3 if phases > 2 else 0.0)
        current_a = (
            power_w[0] / (voltage_v[0] * POWER_FACTOR) if power_w[0] > 0 else 0.0,
            power_w[1] / (voltage_v[1] * POWER_FACTOR) if power_w[1] > 0 else 0.0,
            power_w[2] / (voltage_v[2] * POWER_FACTOR) if power_w[2] > 0 else 0.0,
        )
        load = 0.0 if self.max_power_w == 0 else min(1.0, exact / self.max_power_w)
        active, reactive = self._active, self._reactive
        return MeterReading(
            t=now,
            active_import_wh=(active[0], active[1], active[2]),
            reactive_import_varh=(reactive[0], reactive[1], reactive[2]),
            power_w=power_w,
            voltage_v=voltage_v,
            current_a=current_a,
            offered_w=offered,
            offered_a=offered / (volts * loaded),
            loaded_phases=loaded,
            frequency_hz=self.frequency_hz * (1.0 + (jitter_frequency - 1.0) / 100.0),
            power_factor=POWER_FACTOR,
            temperature_c=AMBIENT_CELSIUS + FULL_LOAD_TEMPERATURE_RISE * load,
            rpm=IDLE_RPM + (FULL_LOAD_RPM - IDLE_RPM) * load,
            soc=None if ev is None else self._soc,  # (self.soc)
        )

    def mark(self, stream: str, now: float) -> MeterReading:
        """Start a new ``.Interval`` period for ``stream`` at ``now`` (e.g. ``"periodic"`` at the
        transaction start) and return the reading taken."""
        reading = self.reading(now)
        self._marks[stream] = reading
        return reading

    def sample(
        self,
        specs: Sequence[MeasurandSpec],
        now: float,
        *,
        context: ReadingContext,
        stream: str | None = None,
    ) -> list[SampledValue]:
        """Read the meter and build the sampled values for ``specs``.

        ``.Interval`` measurands cover the time since the last sample (or :meth:`mark`) of the
        same ``stream``; without a stream, or before its first mark, they cover everything since
        the register was zero. The stream is re-marked at ``now``.
        """
        reading = self.reading(now)
        previous = None if stream is None else self._marks.get(stream)
        if stream is not None:
            self._marks[stream] = reading
        return sampled_values(reading, specs, context=context, previous=previous)


def _integrate_soc(ev: EvSpec, full: float, soc: float, cap_w: float, duration: float) -> float:
    """The state of charge after charging for ``duration`` s from ``soc`` under an EVSE cap
    (``full`` is ``ev.full_soc``).

    Below the taper point (where the EV's curve falls under the cap) power is constant; above it
    power is ``E·(100 - soc)/20`` and the state of charge approaches 100 % exponentially.
    """
    e_w = ev.max_power_kw * 1000.0
    cap_wh = ev.battery_kwh * 1000.0
    taper_span = 100.0 - TAPER_START_SOC
    if cap_w <= 0 or e_w <= 0 or soc >= full:
        return soc
    # Above knee the EV's curve is below the cap (constant power below it).
    knee = max(TAPER_START_SOC, 100.0 - taper_span * min(1.0, cap_w / e_w))
    remaining = duration
    if soc < knee:
        power = min(cap_w, e_w)
        rate = power / cap_wh * 100.0 / 3600.0  # % per second
        if rate <= 0.0:  # a cap so small the rate underflows: nothing flows
            return soc
        goal = min(knee, full)
        needed = (goal - soc) / rate
        if remaining < needed:
            return soc + rate * remaining
        soc, remaining = goal, remaining - needed
        if soc >= full:
            return full
    k = e_w / taper_span / cap_wh * 100.0 / 3600.0  # d(soc)/dt = k·(100 - soc)
    new_soc = 100.0 - (100.0 - soc) * math.exp(-k * remaining)
    return min(new_soc, full)


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
