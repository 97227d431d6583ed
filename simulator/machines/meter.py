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

:meth:`Meter.sample` turns a reading into ``SampledValue`` lists for a measurand list
(:mod:`.measurands`, :mod:`.sampling`). Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum
from typing import Final

import msgspec

from simulator.machines.measurands import MeasurandSpec
from simulator.machines.sampling import MeterReading, sampled_values
from simulator.ocpp.v16 import (
    Measurand,
    Phase,
    ReadingContext,
    SampledValue,
    UnitOfMeasure,
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

    @property
    def limit_w(self) -> float | None:
        """The charging limit in force (W; None: no limit), as :meth:`set_limit` set it."""
        return self._limit_w

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
