"""The control API: the run as a whole (``GET /api/run``) and its graceful end
(``POST /api/run/stop``).

``GET /api/run`` names the run (name, seed, config hash, ledger and run id), says where it is
(``running``, ``stopping`` once the graceful end began, ``finished`` once recorded), its times
(``started`` wall, ``elapsed`` and ``duration`` seconds) and the live counters: the fleet's size,
how many chargers the ramp started, how many are connected and in a transaction, and the bus's
:class:`~simulator.bus.LiveStatistics`. ``POST /api/run/stop`` begins the graceful end, as
Ctrl-C: transactions are stopped, queued messages get the run's grace period, the run is then
recorded as it ended (``completed`` when nothing failed) and ``sim start`` returns.
"""

from __future__ import annotations

from typing import Literal

import msgspec
import trio
from litestar import get, post
from litestar.di import NamedDependency

from simulator.api.clock import RunClock
from simulator.api.parts import ApiContext, ApiPart, provide
from simulator.bus import LiveStatistics
from simulator.events import STOP_RUN, CommandIssued
from simulator.simulation import Simulation

RunStatusName = Literal["running", "stopping", "finished"]


class FleetCounts(msgspec.Struct, frozen=True):
    """The fleet now: ``size`` chargers in the file, ``started`` by the ramp so far,
    ``connected`` to the CSMS, ``in_transaction`` with a transaction running."""

    size: int
    started: int
    connected: int
    in_transaction: int


class RunView(msgspec.Struct, frozen=True):
    """``GET /api/run``: the run (see the module docstring); times in seconds."""

    name: str
    seed: int
    status: RunStatusName
    started: str
    elapsed: float
    duration: float | None
    time: str
    config_sha256: str
    ledger: str
    run_id: int
    fleet: FleetCounts
    live: LiveStatistics


class Stopping(msgspec.Struct, frozen=True):
    """``POST /api/run/stop``: the graceful end has begun."""

    status: Literal["stopping"] = "stopping"


def run_status(sim: Simulation) -> RunStatusName:
    """Where the run is: ``finished`` once recorded, ``stopping`` once its end began."""
    if sim.result is not None:
        return "finished"
    return "stopping" if sim.stopping.is_set() else "running"


@get("/api/run", summary="The run: name, seed, status, times, config hash, live counters",
     tags=["run"], sync_to_thread=False)
def get_run(sim: NamedDependency[Simulation], clock: NamedDependency[RunClock]) -> RunView:
    """The run now (see the module docstring)."""
    live = sim.statistics()
    run = sim.fleet.run
    return RunView(
        name=run.name, seed=run.seed, status=run_status(sim),
        started=clock.started.isoformat(), elapsed=clock.elapsed(), duration=run.duration,
        time=run.time.value, config_sha256=sim.fleet.sha256, ledger=str(sim.ledger),
        run_id=sim.run_id,
        fleet=FleetCounts(
            size=len(sim.chargers()), started=len(sim.running_controls),
            connected=live.chargers_connected, in_transaction=live.chargers_in_transaction,
        ),
        live=live,
    )


@post("/api/run/stop", status_code=202, tags=["run"], summary="End the run gracefully, as Ctrl-C")
async def stop_run(sim: NamedDependency[Simulation]) -> Stopping:
    """Begin the graceful end (a second call changes nothing): no command or fault is carried
    out after it; the run ends once the chargers have delivered their queues or the grace period
    ran out. Recorded as a ``command`` event ``stop_run`` with source ``api`` (``sim replay``
    ends the replay at the same time)."""
    if not sim.stopping.is_set():
        await sim.bus.publish(CommandIssued(t=trio.current_time(), command=STOP_RUN,
                                            source="api"))
        if not sim.stopping.is_set():
            sim.stop()
    return Stopping()


def part(ctx: ApiContext) -> ApiPart:
    """The run's endpoints; the run's clock is a dependency (``clock``) of every part."""
    return ApiPart(handlers=[get_run, stop_run],
                   dependencies={"clock": provide(RunClock.of(ctx.sim))})


__all__ = ["FleetCounts", "RunView", "Stopping", "part", "run_status"]
