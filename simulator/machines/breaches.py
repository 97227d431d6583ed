"""Deliberate breaches: how a behaviour fault distorts what the charger writes in its frames.

The chaos catalog's clock and meter faults (``clock_skew``, ``meter_regress``, ``meter_spike``)
break an invariant of the specification on purpose, so that the central system's reaction can be
judged. They change *only what the charger writes*, never its own state: the machine keeps its
true clock (clock-aligned sampling, authorization cache expiry) and its true energy registers
(``ChargerMemory``, ``ConnectorView``, energy caps). :class:`Breaches`, held by the
:class:`~simulator.machines.context.ChargerContext`, is consulted where frames are built:

- **Timestamps** (:meth:`Breaches.stamp`): StartTransaction, StopTransaction, every MeterValue
  and StatusNotification built while a skew lasts. ``offset`` adds ``seconds`` to the charger's
  (synced) clock; ``future`` adds ten calendar years; ``1970`` is a clock reset to the Unix epoch
  when the fault began, counting from there; ``no_zone`` writes the true time without a zone
  designator (a naive date-time: ``2026-01-01T00:00:00``). A CS's ``currentTime`` does not
  cure the skew: the fault models a clock the charger cannot keep. A message keeps the time it
  was built with, so one queued during the skew is delivered skewed after it ended.
- **Energy registers** (:meth:`Breaches.register_delta`): ``Energy.Active.Import.Register``
  sampled values, ``meterStart`` and ``meterStop`` are moved by ``wh`` (down for a regress, up
  for a spike, never below 0). With an end time the distortion covers every reading taken until
  then; without one it is a glitch of one frame, the next message that carries the register
  (StopTransaction's ``transactionData``, collected in advance, is not counted as that frame).
  After the fault the frames carry the true register again, so the central system sees the
  register fall (regress) or jump and fall back (spike), and then rise as it always did.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Sequence
from typing import Final

import msgspec

from simulator.ocpp.v16 import Measurand, SampledValue

UNIX_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
"""Where a ``1970`` clock starts counting."""

FUTURE_YEARS: Final = 10
"""How far ahead a ``future`` clock is, in calendar years."""

_REGISTER: Final = Measurand.ENERGY_ACTIVE_IMPORT_REGISTER


class SkewMode(enum.StrEnum):
    """How a ``clock_skew`` fault distorts timestamps (the fault's ``mode``)."""

    OFFSET = "offset"
    EPOCH = "1970"
    NO_ZONE = "no_zone"
    FUTURE = "future"


@dataclasses.dataclass(frozen=True, slots=True)
class ClockSkew:
    """A skewed clock from ``since`` (monotonic s) to ``until`` (None: until the run ends);
    ``seconds`` is the offset of mode ``offset``. ``injection`` names the fault's injection."""

    mode: SkewMode
    since: float
    until: float | None
    seconds: float = 0.0
    injection: str = ""

    def active(self, now: float) -> bool:
        """Whether a frame built at ``now`` is skewed."""
        return now >= self.since and (self.until is None or now < self.until)

    def apply(self, wall: dt.datetime, at: float) -> dt.datetime:
        """The timestamp written for the true (aware, UTC) ``wall`` time of the instant ``at``."""
        match self.mode:
            case SkewMode.OFFSET:
                return wall + dt.timedelta(seconds=self.seconds)
            case SkewMode.FUTURE:
                return _years_later(wall, FUTURE_YEARS)
            case SkewMode.EPOCH:
                return UNIX_EPOCH + dt.timedelta(seconds=round(max(0.0, at - self.since), 3))
            case SkewMode.NO_ZONE:
                return wall.replace(tzinfo=None)


def _years_later(wall: dt.datetime, years: int) -> dt.datetime:
    """``wall`` moved ``years`` calendar years on (29 February becomes 28 February)."""
    try:
        return wall.replace(year=wall.year + years)
    except ValueError:
        return wall.replace(year=wall.year + years, day=28)


@dataclasses.dataclass(slots=True)
class RegisterShift:
    """Energy registers of ``connector`` (None: every connector) written ``wh`` off (negative:
    a regress) from ``since`` until ``until``; without ``until``, for one frame only."""

    connector: int | None
    wh: float
    since: float
    until: float | None
    injection: str = ""
    fault: str = ""

    def covers(self, connector_id: int, now: float) -> bool:
        """Whether a reading of ``connector_id`` taken at ``now`` is shifted."""
        return (self.connector is None or self.connector == connector_id) and now >= self.since \
            and (self.until is None or now < self.until)


class Breaches:
    """The distortions in force (see the module docstring). The charger's fault handling
    (:mod:`simulator.machines.faults`) adds and ends them; the parts that build frames ask."""

    def __init__(self) -> None:
        self.skew: ClockSkew | None = None
        """The clock skew in force, if any (a new one replaces it)."""
        self.shifts: list[RegisterShift] = []
        """Register distortions, oldest first."""

    def stamp(self, wall: dt.datetime, at: float, now: float) -> dt.datetime:
        """The timestamp a frame built at ``now`` carries for the instant ``at`` whose true wall
        time is ``wall``."""
        skew = self.skew
        if skew is None or not skew.active(now):
            return wall
        return skew.apply(wall, at)

    def register_delta(
        self, connector_id: int, now: float, *, frame: bool
    ) -> tuple[float, list[RegisterShift]]:
        """Wh to add to ``connector_id``'s register as written at ``now``, and the one-frame
        shifts this used up (only when the reading goes into a ``frame`` of its own: a
        MeterValues, meterStart or meterStop, not transactionData collected in advance)."""
        delta = 0.0
        used: list[RegisterShift] = []
        for shift in self.shifts:
            if not shift.covers(connector_id, now):
                continue
            if shift.until is None:
                if not frame:
                    continue
                used.append(shift)
            delta += shift.wh
        for shift in used:
            self.shifts.remove(shift)
        return delta, used

    def end(self, now: float) -> list[str]:
        """Forget the distortions over by ``now``; return their injections."""
        ended: list[str] = []
        if self.skew is not None and self.skew.until is not None and now >= self.skew.until:
            ended.append(self.skew.injection)
            self.skew = None
        for shift in list(self.shifts):
            if shift.until is not None and now >= shift.until:
                ended.append(shift.injection)
                self.shifts.remove(shift)
        return ended

    def next_end(self) -> float | None:
        """The earliest end of a distortion in force, or None."""
        ends = [s.until for s in self.shifts if s.until is not None]
        if self.skew is not None and self.skew.until is not None:
            ends.append(self.skew.until)
        return min(ends, default=None)


def shifted_register(value_wh: int, delta_wh: float) -> int:
    """A whole-Wh register (meterStart, meterStop) as written with ``delta_wh`` added (>= 0)."""
    return max(0, int(value_wh + delta_wh)) if delta_wh else value_wh


def shift_sampled(values: Sequence[SampledValue], delta_wh: float) -> tuple[SampledValue, ...]:
    """``values`` with every ``Energy.Active.Import.Register`` value moved by ``delta_wh`` (a
    per-phase register by its share: the delta over the phases the reading lists), never
    below 0, written with the same number of decimals."""
    registers = [v for v in values if v.measurand == _REGISTER or v.measurand is None]
    phased = sum(1 for v in registers if v.phase is not None)
    if not delta_wh or not registers:
        return tuple(values)
    out: list[SampledValue] = []
    for value in values:
        if value.measurand not in (_REGISTER, None):
            out.append(value)
            continue
        share = delta_wh / phased if value.phase is not None else delta_wh
        decimals = len(value.value.partition(".")[2])
        shifted = max(0.0, float(value.value) + share)
        out.append(msgspec.structs.replace(value, value=f"{shifted:.{decimals}f}"))
    return tuple(out)


def carries_register(values: Sequence[SampledValue]) -> bool:
    """Whether a reading lists the energy import register (so it can carry a shift)."""
    return any(v.measurand in (_REGISTER, None) for v in values)
