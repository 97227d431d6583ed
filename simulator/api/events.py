"""The control API: events (to be written)."""

from __future__ import annotations

from simulator.api.parts import ApiPart
from simulator.config import Api
from simulator.simulation import Simulation


def part(sim: Simulation, api: Api) -> ApiPart:
    """This part's handlers, dependencies and tasks."""
    return ApiPart()
