"""The fleet supervisor: starts chargers at their group's connect rate, restarts crashed ones
with backoff, and ends the fleet gracefully.

Supervision strategy (named, as in tractor): *one-for-one, restart with backoff*. A charger that
raises is recorded as a ``crash`` event with its traceback (and kept among its control's last
crashes, ``ChargerControl.crashes``) and started again after a jittered, growing delay, with its
undelivered transaction messages (the last outbox snapshot) and its memory restored, as after a
power loss (the transactions it was running are stopped with reason PowerLoss, local transaction
ids go on); the other chargers are not touched. Cancellation is never caught.

Graceful end: :meth:`RunningFleet.stop` asks every charger to stop its transactions (reason
Local) and deliver its queue until a grace deadline; chargers still busy then are cancelled.
"""

from __future__ import annotations

import dataclasses
import gc
import traceback
from collections.abc import Mapping, Sequence
from typing import Final

import trio

from simulator import seeds
from simulator.actors.charger import ChargerActor, ChargerControl, ChargerEnv, CrashRecord
from simulator.actors.collector import TICK, run_collector, tune_gc
from simulator.actors.link import Backoff
from simulator.events import Crashed
from simulator.machines.effects import ChargerMemory, OutboxEntry

RESTART_BACKOFF: Final = Backoff(base=1.0, cap=60.0)
"""Delays before restarting a crashed charger (full jitter, doubling per consecutive crash)."""

RAMP_FREEZE_INTERVAL: Final = 1.0
"""Seconds between two ``gc.freeze()`` while the fleet ramps up."""
GC_SETTLE_TIMEOUT: Final = 60.0
"""Seconds after the ramp to wait for the whole fleet to connect before freezing again."""


@dataclasses.dataclass(frozen=True, slots=True)
class GroupPlan:
    """The chargers of one group, started at ``connect_rate`` per second in this order."""

    name: str
    connect_rate: float
    chargers: Sequence[ChargerEnv]


async def supervise_charger(env: ChargerEnv, control: ChargerControl) -> None:
    """Run ``env``'s charger, restarting it after a crash, until it ends gracefully."""
    rng: seeds.Stream | None = None  # made on the first crash
    while True:
        try:
            await ChargerActor(env, control).run()
            return
        except Exception as exc:
            control.restarts += 1
            control.connected = False
            if rng is None:
                rng = seeds.derive(env.seed, env.spec.identity, "supervisor")
            delay = RESTART_BACKOFF.delay(control.restarts, rng.uniform)
            crash = CrashRecord(t=trio.current_time(), error=_describe(exc),
                                traceback="".join(traceback.format_exception(exc)))
            control.crashes.append(crash)
            await env.publish(
                Crashed(
                    t=crash.t, charger=env.spec.identity,
                    error=crash.error,
                    traceback=crash.traceback,
                    restart_in=round(delay, 3),
                    input=control.last_input,
                    unique_id=control.last_unique_id,
                )
            )
            control.last_input = control.last_unique_id = None
            await trio.sleep(delay)


def _describe(exc: BaseException) -> str:
    """``Type: message`` of the error that crashed a charger, looking through the exception
    groups its nurseries wrapped it in."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


class RunningFleet:
    """A running fleet (see :func:`run_fleet`): controls and statistics for the runtime."""

    def __init__(self, plans: Sequence[GroupPlan]) -> None:
        self.plans = tuple(plans)
        self.controls: dict[str, ChargerControl] = {}
        self.started = 0
        self.ramp_done = trio.Event()
        self._stop = trio.Event()
        self._grace = 0.0

    @property
    def size(self) -> int:
        return sum(len(plan.chargers) for plan in self.plans)

    def connected(self) -> int:
        return sum(1 for control in self.controls.values() if control.connected)

    def disconnections(self) -> int:
        """How many times a connection of a charger has ended, so far (every charger)."""
        return sum(control.disconnections for control in self.controls.values())

    def stop(self, grace: float) -> None:
        """Begin the graceful end: chargers get ``grace`` seconds to deliver their queues."""
        self._grace = grace
        self._stop.set()


async def run_fleet(
    plans: Sequence[GroupPlan],
    *,
    gc_tuning: bool = True,
    gc_tick: float = TICK,
    outboxes: Mapping[str, Sequence[OutboxEntry]] | None = None,
    memories: Mapping[str, ChargerMemory] | None = None,
    task_status: trio.TaskStatus[RunningFleet] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the fleet until :meth:`RunningFleet.stop` (reported by ``task_status.started(fleet)``).

    Groups ramp in parallel, each at its own ``connect_rate``. With ``gc_tuning`` the garbage
    collector is tuned for a long-lived fleet (:mod:`simulator.actors.collector`), looking at
    the fleet every ``gc_tick`` seconds of the run's clock. ``outboxes`` maps charger ids to
    undelivered transaction messages to resume (``--resume``), ``memories`` to what the
    chargers kept through the kill (registers, numbering, running transactions). Returns once
    every charger has finished or the grace deadline has passed.
    """
    fleet = RunningFleet(plans)
    restored = outboxes or {}
    remembered = memories or {}
    async with trio.open_nursery() as chargers:

        async def ramp(plan: GroupPlan) -> None:
            # Each wake-up starts every charger whose slot has come: a wake-up is late by a
            # scheduler pass, so one charger per wake-up would cap the rate far below 500/s.
            start = trio.current_time()
            total, index = len(plan.chargers), 0
            while index < total:
                await trio.sleep_until(start + index / plan.connect_rate)
                due = min(total, int((trio.current_time() - start) * plan.connect_rate) + 1)
                for env in plan.chargers[index:max(due, index + 1)]:
                    identity = env.spec.identity
                    control = ChargerControl(outbox=tuple(restored.get(identity, ())),
                                             memory=remembered.get(identity))
                    fleet.controls[env.spec.identity] = control
                    chargers.start_soon(supervise_charger, env, control,
                                        name=f"charger {env.spec.identity}")
                    fleet.started += 1
                index = max(due, index + 1)
            if fleet.started == fleet.size:
                ramped.set()

        ramped = trio.Event()
        if fleet.size == 0:
            ramped.set()
        async with trio.open_nursery() as ramps:
            task_status.started(fleet)
            ramps.start_soon(_cancel_on, fleet._stop, ramps.cancel_scope)
            if gc_tuning:
                ramps.start_soon(_freeze_while_ramping)
            for plan in plans:
                ramps.start_soon(ramp, plan)
            await ramped.wait()
            ramps.cancel_scope.cancel()
        fleet.ramp_done.set()
        if gc_tuning:
            tune_gc()
            chargers.start_soon(_tune_gc_when_connected, fleet, gc_tick)
        await fleet._stop.wait()
        deadline = trio.current_time() + fleet._grace
        async with trio.open_nursery() as stoppers:
            for control in fleet.controls.values():
                stoppers.start_soon(control.shutdown, deadline)
        with trio.move_on_at(deadline + 1.0):
            for control in fleet.controls.values():
                await control.done.wait()
        chargers.cancel_scope.cancel()


async def _tune_gc_when_connected(fleet: RunningFleet, tick: float) -> None:
    """Freeze again once the fleet is connected (or after a minute): the connections, sessions
    and machines built since the ramp then leave the young generations too. Then leave the
    collector to :func:`~simulator.actors.collector.run_collector`, until cancelled."""
    # Polling once a second is cheaper than an event the chargers would set on every connect.
    for _ in range(int(GC_SETTLE_TIMEOUT)):
        if fleet.connected() >= fleet.size:
            break
        await trio.sleep(1.0)
    tune_gc()
    await run_collector(fleet.size, fleet.disconnections, fleet.connected, tick=tick)


async def _freeze_while_ramping() -> None:
    """Move what is alive into the permanent generation every second while the ramp lasts.

    Each charger started allocates thousands of objects that live for the whole run; left in
    the collected generations, every full collection traversed them all again, and at 10,000
    chargers the collector took 20 of the ramp's 28 s (connected chargers went unserved, their
    calls timed out). Frozen, they are not traversed; young garbage is still collected at the
    default thresholds until :func:`tune_gc` after the ramp. Each freeze follows a collection
    of the two young generations (they hold the last second's objects: cheap), so what a
    freeze keeps for the run is only garbage that had already reached the oldest generation."""
    while True:
        gc.collect(1)
        gc.freeze()
        await trio.sleep(RAMP_FREEZE_INTERVAL)


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
