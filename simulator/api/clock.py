"""The run's clock as the API shows it: ``t`` fields are seconds since the run started (on the
run's own clock, virtual or real), ``wall`` fields ISO 8601 UTC.

Events carry trio's monotonic ``t``; :class:`RunClock` turns it into the contract's run time,
counted from the run's own start (``Simulation.t0``, ``Simulation.wall0``): the ledger's ``t``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import trio

from simulator.simulation import Simulation


@dataclasses.dataclass(frozen=True, slots=True)
class RunClock:
    """``origin``: trio's time at the run's start; ``started``: the wall clock then (UTC)."""

    origin: float
    started: dt.datetime

    @classmethod
    def of(cls, sim: Simulation) -> RunClock:
        """The clock of ``sim``: its start on the run's clock and in UTC (under virtual time
        ``[run] epoch``, as the ledger's)."""
        return cls(origin=sim.t0, started=sim.wall0.astimezone(dt.UTC))

    def since(self, t: float) -> float:
        """Seconds since the run started at trio time ``t`` (rounded to the microsecond)."""
        return round(t - self.origin, 6)

    def elapsed(self) -> float:
        """Seconds since the run started, now."""
        return self.since(trio.current_time())

    def wall(self, t: float) -> str:
        """Trio time ``t`` as an ISO 8601 UTC timestamp."""
        return (self.started + dt.timedelta(seconds=t - self.origin)).isoformat()


__all__ = ["RunClock"]
