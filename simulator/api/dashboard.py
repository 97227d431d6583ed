"""The control API: dashboard (to be written)."""

from __future__ import annotations

from simulator.api.parts import ApiContext, ApiPart


def part(ctx: ApiContext) -> ApiPart:
    """This part's handlers, dependencies and tasks."""
    return ApiPart()
