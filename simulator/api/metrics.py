"""The control API: metrics (to be written)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.events import Event

if TYPE_CHECKING:
    from simulator.api.parts import ApiContext, ApiPart


class FleetMetrics:
    """The fleet's Prometheus metrics, fed by the bus (an observer) from before the start."""

    def observe(self, event: Event) -> None:
        """Count ``event`` (called inside ``bus.publish``: cheap, never raises)."""


def part(ctx: ApiContext) -> ApiPart:
    """This part's handlers, dependencies and tasks."""
    from simulator.api.parts import ApiPart

    return ApiPart()
