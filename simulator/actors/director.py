"""The director: runs a fleet's scripted steps and its chaos schedule, in time order.

The decisions are made elsewhere, before the run or lazily as it goes: which fault hits which
charger when is :class:`~simulator.chaos.plan.ChaosPlan`'s (pure, seeded), what a ``[[step]]``
does is the command facade's (``simulator.simulation.Simulation.run_step``, handed in as a
callable: this layer cannot know the facade). The director only waits for each moment on the
run's clock (``trio.sleep_until``, so a virtual clock jumps to it) and carries it out: a step
is awaited; a hit is recorded as a ``fault`` event (:class:`~simulator.events.FaultInjected`)
and then handed to the charger's inbox (:meth:`ChargerControl.inject`). A charger that the ramp
has not started yet, or that has finished, is not waited for: its fault is recorded with a
``skipped`` reason and goes nowhere. At one instant steps come before faults, each in the order
of the fleet file. (A fault at the very instant the ramp starts its charger finds it started or
not as trio happens to order the two tasks: the decision is the same, its ``skipped`` may not be.)
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Final

import trio

from simulator.actors.charger import ChargerControl
from simulator.chaos.plan import Hit
from simulator.events import Event, FaultInjected

NOT_STARTED: Final = "not started: the charger is still waiting for its turn in the ramp"
"""The ``skipped`` reason of a fault for a charger the ramp has not started."""
FINISHED: Final = "finished: the charger has ended its run"
"""The ``skipped`` reason of a fault for a charger that has finished."""


@dataclasses.dataclass(frozen=True, slots=True)
class ScriptedStep:
    """A ``[[step]]``: ``run()`` carries it out at ``at`` (the run's clock, seconds)."""

    at: float
    run: Callable[[], Awaitable[object]]


def skip_reason(charger: str, controls: Mapping[str, ChargerControl]) -> str | None:
    """Why ``charger`` cannot be given a fault or a command now (``None``: it can)."""
    control = controls.get(charger)
    if control is None:
        return NOT_STARTED
    if control.done.is_set():
        return FINISHED
    return None


async def deliver(
    hit: Hit,
    controls: Mapping[str, ChargerControl],
    publish: Callable[[Event], Awaitable[None]],
    *,
    source: str = "chaos",
) -> bool:
    """Record ``hit`` as a ``fault`` event (``source``: who asked), then hand its injection to
    the charger's inbox (waiting while it is full). A charger that is not running gets nothing
    and its event says why (``skipped``). Returns whether the charger got it."""
    injection = hit.injection
    skipped = skip_reason(hit.charger, controls)
    await publish(FaultInjected(
        t=trio.current_time(), charger=hit.charger, connector=injection.connector,
        fault=injection.fault, params=dict(injection.params), family=injection.family.value,
        injection=injection.id, until=injection.until, deliberate=injection.deliberate,
        seed_path=list(injection.seed_path), source=source, skipped=skipped,
    ))
    if skipped is not None:
        return False
    await controls[hit.charger].inject(injection)
    return True


def _timeline(steps: Sequence[ScriptedStep],
              hits: Iterable[Hit]) -> Iterator[tuple[float, ScriptedStep | Hit]]:
    """Steps and hits merged in time order, steps first at one instant (both already sorted:
    the steps by the caller, the hits by the plan)."""
    timed_steps: Iterator[tuple[float, int, ScriptedStep | Hit]] = (
        (step.at, 0, step) for step in sorted(steps, key=lambda s: s.at))
    timed_hits: Iterator[tuple[float, int, ScriptedStep | Hit]] = (
        (hit.injection.at, 1, hit) for hit in hits)
    merged = heapq.merge(timed_steps, timed_hits, key=lambda item: (item[0], item[1]))
    return ((at, item) for at, _, item in merged)


async def run_director(
    hits: Iterable[Hit],
    steps: Sequence[ScriptedStep],
    controls: Mapping[str, ChargerControl],
    publish: Callable[[Event], Awaitable[None]],
    *,
    stop: trio.Event | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Carry out ``steps`` and ``hits`` at their times (see the module docstring), until both
    are done or ``stop`` is set (the run's graceful end begins: no fault or step after it).

    ``hits`` must come in time order and may be endless (a rule with ``every``): it is read
    lazily, one item ahead. ``controls`` are the running fleet's (filled as the ramp starts
    chargers). A step that raises ends the director with that error. Cancellation is never
    caught.
    """
    async with trio.open_nursery() as nursery:
        if stop is not None:
            nursery.start_soon(_cancel_on, stop, nursery.cancel_scope, name="director stop")
        task_status.started()
        for at, item in _timeline(steps, hits):
            await trio.sleep_until(at)
            if isinstance(item, ScriptedStep):
                await item.run()
            else:
                await deliver(item, controls, publish)
        nursery.cancel_scope.cancel()


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


__all__ = ["FINISHED", "NOT_STARTED", "ScriptedStep", "deliver", "run_director", "skip_reason"]

