"""The run's clock as the API shows it: ``t`` fields are seconds since the run started (on the
run's own clock, virtual or real), ``wall`` fields ISO 8601 UTC.

Events carry trio's monotonic ``t``; :class:`RunClock` turns it into the contract's run time.
Its origin is the instant the API was built, just after the fleet started: the
:class:`~simulator.simulation.Simulation` handle does not name the run's own start, so a ``t``
here may run ahead of the ledger's by the time the CSMS and the ledger writer took to start
(none under virtual time, where nothing that starts them waits on the clock).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import trio

from simulator.config import TimeMode
from simulator.simulation import Simulation


@dataclasses.dataclass(frozen=True, slots=True)
class RunClock:
    """``origin``: trio's time at the run's start; ``started``: the wall clock then (UTC)."""

    origin: float
    started: dt.datetime

    @classmethod
    def now(cls, sim: Simulation) -> RunClock:
        """The clock of ``sim`` as of now (call when the API is built). Under virtual time the
        wall clock starts at ``[run] epoch``, as the ledger's does."""
        epoch = sim.fleet.run.epoch
        if sim.fleet.run.time == TimeMode.VIRTUAL and epoch is not None:
            started = epoch.astimezone(dt.UTC)
        else:
            started = dt.datetime.now(dt.UTC)  # (the API is an edge: it reads the machine's clock)
        return cls(origin=trio.current_time(), started=started)

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
