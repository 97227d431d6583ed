"""Measurand lists: which measurands a meter reports, in which unit, location and phases.

The tables say, for every OCPP 1.6 measurand, the unit it is reported in, where it is measured
and which phases it may name; :func:`parse_measurand_list` reads the syntax of
``MeterValuesSampledData`` and its kin (a comma list, phase suffix allowed: ``Voltage.L1``) and
refuses entries the meter cannot report (:class:`UnsupportedMeasurand`). Pure data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

import msgspec

from simulator.ocpp.v16 import Location, Measurand, Phase, UnitOfMeasure

_M = Measurand
_P = Phase
_U = UnitOfMeasure

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
