"""What each part of the control API brings: its route handlers, the objects they are given,
and the tasks that run beside the server.

Every endpoint module (``run``, ``chargers``, ``chaos``, ``events``, ``tree``, ``metrics``,
``dashboard``) has ``part(ctx: ApiContext) -> ApiPart``; :func:`simulator.api.server.build_app`
joins them. A part keeps its own state (a metrics registry, the faults injected through the API) in
the objects it hands its handlers as Litestar dependencies, so no part reaches into another's.
Handlers are ``async`` (or marked ``sync_to_thread=False``): the API runs in the fleet's event
loop, never in a thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from litestar.di import Provide
from litestar.types import ControllerRouterHandler

from simulator.api.metrics import FleetMetrics
from simulator.config import Api
from simulator.simulation import Simulation


@dataclasses.dataclass(frozen=True, slots=True)
class ApiContext:
    """What every part is built from: the running simulation, the ``[api]`` settings and the
    fleet's metrics (observing the bus since before the fleet started)."""

    sim: Simulation
    api: Api
    metrics: FleetMetrics


@dataclasses.dataclass(frozen=True, slots=True)
class ApiPart:
    """One part of the API: ``handlers`` (Litestar route handlers), ``dependencies`` (name ->
    :class:`Provide`, see :func:`provide`) and ``tasks`` (run beside the server for as long as
    it serves, each called with no argument; cancelled when it stops)."""

    handlers: Sequence[ControllerRouterHandler] = ()
    dependencies: Mapping[str, Provide] = dataclasses.field(default_factory=dict)
    tasks: Sequence[Callable[[], Awaitable[None]]] = ()


def provide(value: Any) -> Provide:
    """A dependency that is always ``value`` (no thread, computed once)."""

    def given() -> Any:
        return value

    return Provide(given, use_cache=True, sync_to_thread=False)


__all__ = ["ApiContext", "ApiPart", "provide"]
