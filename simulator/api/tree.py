"""The control API: ``GET /api/tree``, the live actor tree (the structured-concurrency view).

The tree is :meth:`Simulation.tree`: every task under the simulation's root, nested by the
nurseries they run in, each with its ``name``, ``kind`` (``"task"``), the ``charger`` it serves
(from the task names: ``charger ID`` is a charger's supervisor, ``link ID``, ``connector ID/N``,
``transfer ID ...`` its actor's tasks; unnamed subtasks serve their parent's charger), what it
``waits_on`` (``function (file:line)`` of the innermost frame of its await stack outside trio,
``-> trio <call>`` it waits in) and, on a supervisor, ``supervisor``: ``{charger, restarts,
crashes: [{t, error, traceback}]}`` (its last five crashes, ``t`` in seconds since the run
started).
Built from trio's public introspection only. ``?charger=ID`` keeps the tasks that serve that
charger and those above them (a small answer on a large fleet).

The tree holds no secret: task names, source locations and the tracebacks of crashes (which, as
in the ``crash`` event, show code and error messages, never configuration values).
"""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.params import Parameter

from simulator.actors.tree import TaskNode
from simulator.api.parts import ApiContext, ApiPart
from simulator.simulation import Simulation


@get("/api/tree", summary="The live actor tree")
async def tree(
    sim: NamedDependency[Simulation],
    charger: Annotated[str | None, Parameter(
        description="Only the tasks serving this charger, and the tasks above them")] = None,
) -> TaskNode:
    """Every nursery's tasks under the simulation, with the charger each serves, what it waits
    on, and each charger supervisor's restarts and last crashes."""
    if charger is not None:
        sim.chargers(charger)  # (an unknown id: CommandError, a 404 problem document)
    return await sim.tree_stepwise(charger)


def part(ctx: ApiContext) -> ApiPart:
    """This part's handlers: ``GET /api/tree``."""
    return ApiPart(handlers=[tree])
