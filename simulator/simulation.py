"""The handle on a running simulation: its bus, live statistics, actor tree and command facade.

:func:`simulator.runtime.open_simulation` yields a :class:`Simulation`. Everything that acts on a
running fleet from outside (scripted ``[[step]]`` tables, the chaos director, a control API, a
test) goes through it: a command names a target (one charger id, several, or a
:class:`~simulator.config.Target` with ids and/or a group) and becomes one domain request in each
target charger's inbox, where the charger's own main loop applies it like any other input. Each
command is recorded in the ledger as a ``command`` event before it is handed over.

A command to a charger the ramp has not started yet, or an unknown id or group, raises
:class:`CommandError` (one line, nothing handed over). A scripted step (:meth:`Simulation.run_step`)
never raises for that: what a charger that is not running would have got is recorded with a
``skipped`` reason instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import msgspec
import trio

from simulator.actors.charger import ChargerControl
from simulator.actors.director import deliver, skip_reason
from simulator.actors.fleet import RunningFleet
from simulator.actors.tree import TaskNode, TreeBuilder
from simulator.bus import Counters, EventBus, LiveStatistics
from simulator.chaos import Family, Hit, Injection
from simulator.chaos.plan import pick, pool
from simulator.config import Fleet, Step, StepAction, Target
from simulator.events import CommandIssued
from simulator.machines.charger import ChargerStatistics
from simulator.machines.domain import (
    ClearFault,
    DomainRequest,
    PlugIn,
    PresentTag,
    RebootCharger,
    SetFault,
    StopCharging,
    Unplug,
)
from simulator.machines.meter import EvSpec
from simulator.ocpp.v16 import ChargePointErrorCode, Reason
from simulator.seeds import derive

TargetLike = str | Sequence[str] | Target
"""One charger id, several, or a ``Target`` (ids, group or tag; a ``fraction`` below 1 picks
that share of them with the run's seed)."""


class CommandError(Exception):
    """A command that cannot be carried out (unknown charger or group, charger not started)."""


class RunResult(msgspec.Struct, frozen=True):
    """What a run ended as: the ledger file and run id, its status and exit code, and why."""

    ledger: Path
    run_id: int
    status: str
    exit_code: int
    reasons: tuple[str, ...]


class Simulation:
    """A running simulation (see the module docstring). Made by ``open_simulation`` only.

    Attributes:
        fleet: the resolved fleet file.
        bus: the event bus (subscribe a lossy viewer to watch events).
        url: the CSMS the chargers connect to (the embedded one's real address).
        ledger, run_id: where the run is recorded.
        t0, wall0: when the run started, on the run's clock (``trio.current_time()``: the
            times of events and of ``[[step]]`` tables count from it) and as a UTC datetime
            (under virtual time, ``[run] epoch``).
        result: set when the ``open_simulation`` block has been left and the run recorded.
        interrupted: set by whoever ends the run early (Ctrl-C); the run is then marked
            ``interrupted``.
        stopping: set when the graceful end begins (:meth:`stop`): the director stops then.
    """

    def __init__(
        self, *, fleet: Fleet, bus: EventBus, counters: Counters, running: RunningFleet,
        url: str, ledger: Path, run_id: int, grace: float, root: trio.lowlevel.Task,
        fleet_scope: trio.CancelScope, finished: trio.Event, t0: float, wall0: datetime,
    ) -> None:
        self.fleet = fleet
        self.t0 = t0
        self.wall0 = wall0
        self.bus = bus
        self.url = url
        self.ledger = ledger
        self.run_id = run_id
        self.result: RunResult | None = None
        self.interrupted = False
        self.stopping = trio.Event()
        self._counters = counters
        self._running = running
        self._grace = grace
        self._root = root
        self._fleet_scope = fleet_scope
        self._finished = finished
        self._picks = 0
        self._groups = {plan.name: tuple(env.spec.identity for env in plan.chargers)
                        for plan in running.plans}
        self._every = tuple(identity for ids in self._groups.values() for identity in ids)
        self._known = frozenset(self._every)
        self._connectors = {env.spec.identity: env.spec.connectors
                            for plan in running.plans for env in plan.chargers}
        self._tags = {group.name: group.tags for group in fleet.groups}

    # --- what is running ---------------------------------------------------------------------

    @property
    def running_controls(self) -> Mapping[str, ChargerControl]:
        """The started chargers' controls by id (filled as the ramp starts them; read only)."""
        return self._running.controls

    def statistics(self) -> LiveStatistics:
        """The live counters now (connected chargers, frames, transactions, errors...)."""
        return self._counters.snapshot(trio.current_time())

    def charger_statistics(self, identity: str) -> ChargerStatistics | None:
        """One charger's machine statistics (None while it is not running)."""
        return self._control(identity).statistics()

    def chargers(self, target: TargetLike | None = None) -> tuple[str, ...]:
        """The ids ``target`` names (default: the whole fleet), in fleet order."""
        groups, every = self._groups, self._every
        if target is None:
            return every
        if isinstance(target, str):
            target = (target,)
        if not isinstance(target, Target):
            target = Target(ids=tuple(target))
        if target.group is not None and target.group not in groups:
            raise CommandError(f"no group {target.group!r} in this fleet "
                               f"(groups: {', '.join(groups) or 'none'})")
        if target.tag is not None:
            tagged = [name for name, tags in self._tags.items() if target.tag in tags]
            if not tagged:
                raise CommandError(f"no group has the tag {target.tag!r} in this fleet")
            chosen_pool = tuple(i for name in tagged for i in groups.get(name, ()))
        else:
            chosen_pool = groups[target.group] if target.group is not None else every
        unknown = [identity for identity in target.ids if identity not in self._known]
        if unknown:
            raise CommandError(f"no charger {unknown[0]!r} in this fleet")
        wanted = frozenset(target.ids)
        chosen = [i for i in chosen_pool if i in wanted] if wanted else list(chosen_pool)
        if target.fraction < 1.0:
            self._picks += 1
            rng = derive(self.fleet.run.seed, "facade", "pick", self._picks)
            keep = math.ceil(target.fraction * len(chosen)) if chosen else 0
            picked = set(sorted(chosen, key=lambda _: rng.random())[:keep])
            chosen = [i for i in chosen if i in picked]
        return tuple(chosen)

    def tree(self, charger: str | None = None) -> TaskNode:
        """The live actor tree under the simulation: every nursery's tasks, by name, with the
        charger each serves and what it waits on (see :class:`TaskNode`). ``charger`` keeps only
        the tasks that serve that charger and the tasks above them (the other chargers'
        branches are not walked).

        Built from trio's public introspection (``Task.child_nurseries``,
        ``Nursery.child_tasks``, ``Task.iter_await_frames``) in one synchronous pass: a
        consistent snapshot that holds the event loop while it is built (some 20 ms per
        thousand tasks; a 10,000-charger fleet has some 60,000: see :meth:`tree_stepwise`)."""
        builder = TreeBuilder(self._running.controls, trio.lowlevel.current_task(), charger,
                               self.t0)
        root = builder.node(self._root, None)
        return root if root is not None else TaskNode(name=self._root.name)

    async def tree_stepwise(self, charger: str | None = None) -> TaskNode:
        """:meth:`tree`, built in steps of :data:`TREE_STEP` tasks with a checkpoint between
        them, so that the fleet runs on while a large tree is built (the control API's way).
        Not one snapshot: a task may start or end between two steps (an ended task shows no
        children and waits on nothing). Cancelled at a checkpoint, it builds nothing more."""
        builder = TreeBuilder(self._running.controls, trio.lowlevel.current_task(), charger,
                               self.t0)
        root = await builder.node_stepwise(self._root, None)
        return root if root is not None else TaskNode(name=self._root.name)

    # --- ending ------------------------------------------------------------------------------

    def stop(self, grace: float | None = None) -> None:
        """Begin the graceful end: transactions are stopped (reason Local) and queued messages
        get ``grace`` seconds (default: the run's) to be delivered; no step or fault is carried
        out after this."""
        self.stopping.set()
        self._running.stop(self._grace if grace is None else grace)

    def end_grace(self) -> None:
        """End the graceful end at once: every charger still delivering is cancelled."""
        self._fleet_scope.cancel()

    async def wait_finished(self) -> None:
        """Wait until every charger has finished (after :meth:`stop`, or a fleet that ended)."""
        await self._finished.wait()

    # --- the command facade ------------------------------------------------------------------

    async def plug(self, target: TargetLike, connector: int = 1, *,
                   ev: EvSpec | None = None, source: str | None = None) -> tuple[str, ...]:
        """An EV (``ev``, default a 60 kWh car at 20 %) is plugged into ``connector``.
        (``source``, here and in every command: who gave it, e.g. ``api``; see
        :meth:`command`.)"""
        car = ev if ev is not None else EvSpec()
        return await self.command("plug", target, lambda _: PlugIn(connector, ev=car),
                                  connector=connector, source=source)

    async def unplug(self, target: TargetLike, connector: int = 1, *,
                     source: str | None = None) -> tuple[str, ...]:
        """The EV on ``connector`` is unplugged."""
        return await self.command("unplug", target, lambda _: Unplug(connector),
                                  connector=connector, source=source)

    async def present_tag(self, target: TargetLike, connector: int, id_tag: str, *,
                          source: str | None = None) -> tuple[str, ...]:
        """``id_tag`` is presented at ``connector`` (starts, or stops a running transaction)."""
        return await self.command("present_tag", target,
                                  lambda _: PresentTag(connector, id_tag),
                                  connector=connector, source=source, id_tag=id_tag)

    async def stop_transaction(self, target: TargetLike, connector: int, *,
                               reason: Reason = Reason.LOCAL,
                               source: str | None = None) -> tuple[str, ...]:
        """The transaction on ``connector`` is stopped locally with ``reason``."""
        return await self.command("stop", target,
                                  lambda _: StopCharging(connector, reason=reason),
                                  connector=connector, source=source, reason=str(reason))

    async def reboot(self, target: TargetLike, *, hard: bool = False,
                     source: str | None = None) -> tuple[str, ...]:
        """The charger is power-cycled (``hard``: without stopping transactions first)."""
        return await self.command("reboot", target, lambda _: RebootCharger(hard=hard),
                                  source=source, hard=hard)

    async def set_fault(
        self, target: TargetLike, connector: int,
        error_code: ChargePointErrorCode | str = ChargePointErrorCode.OTHER_ERROR, *,
        info: str | None = None, source: str | None = None,
    ) -> tuple[str, ...]:
        """``connector``'s hardware reports ``error_code`` (a StatusNotification error code, as
        the enum or its name: a fault makes the connector Faulted). An unknown code raises
        :class:`CommandError`."""
        try:
            code = ChargePointErrorCode(error_code)
        except ValueError:
            known = ", ".join(member.value for member in ChargePointErrorCode)
            raise CommandError(f"no error code {error_code!r}; use one of {known}") from None
        extra = {} if info is None else {"info": info}
        return await self.command("fault", target,
                                  lambda _: SetFault(connector, code, info),
                                  connector=connector, source=source, error_code=code.value,
                                  **extra)

    async def clear_fault(self, target: TargetLike, connector: int, *,
                          source: str | None = None) -> tuple[str, ...]:
        """``connector``'s hardware error is gone."""
        return await self.command("clear_fault", target, lambda _: ClearFault(connector),
                                  connector=connector, source=source)

    async def command(
        self, name: str, target: TargetLike, make: Callable[[str], DomainRequest], *,
        connector: int | None = None, source: str | None = None, **params: object,
    ) -> tuple[str, ...]:
        """Hand ``make(identity)`` to every charger ``target`` names, recording each as a
        ``command`` event first (``source``: who gave it when not the run's script or a test,
        e.g. ``api``); returns the ids it went to. Waits while an inbox is full."""
        ids = self.chargers(target)
        controls = [self._control(identity) for identity in ids]
        for identity, control in zip(ids, controls, strict=True):
            await self.bus.publish(CommandIssued(
                t=trio.current_time(), charger=identity, connector=connector, command=name,
                params=params, source=source,
            ))
            await control.request(make(identity))
        return ids

    async def run_step(self, step: Step, index: int) -> tuple[str, ...]:
        """Carry out ``[[step]]`` number ``index`` now, on the chargers its target picks (a
        ``fraction`` by each charger's own draw, ``derive(seed, "step", index, charger,
        "target")``); a connector action without a connector acts on every connector. A
        charger that is not running is recorded with a ``skipped`` reason (a ``command``
        event, or a ``fault`` event for ``disconnect``), never raises. Returns the ids that
        got it."""
        chosen = pick(step.target.fraction, pool(step.target, self.fleet.groups),
                      self.fleet.run.seed, "step", index)
        ready: list[str] = []
        for identity in chosen:
            if step.do is StepAction.DISCONNECT:
                injection = Injection(id=f"step{index}", fault="disconnect",
                                      family=Family.TRANSPORT, at=trio.current_time(),
                                      params=step.params, seed_path=("step", index))
                if await deliver(Hit(identity, injection), self.running_controls,
                                 self.bus.publish, source="step"):
                    ready.append(identity)
                continue
            skipped = skip_reason(identity, self.running_controls)
            if skipped is not None:
                await self.bus.publish(CommandIssued(
                    t=trio.current_time(), charger=identity, connector=step.target.connector,
                    command=step.do.value, params=dict(step.params), skipped=skipped))
                continue
            ready.append(identity)
            await self._step_on(step, identity)
        return tuple(ready)

    async def _step_on(self, step: Step, identity: str) -> None:
        """``step``'s command to one running charger, through the facade's methods."""
        params = step.params
        connectors = ((step.target.connector,) if step.target.connector is not None
                      else range(1, self._connectors[identity] + 1))
        for connector in connectors:
            match step.do:
                case StepAction.PLUG:
                    await self.plug(identity, connector)
                case StepAction.UNPLUG:
                    await self.unplug(identity, connector)
                case StepAction.PRESENT_TAG:
                    await self.present_tag(identity, connector, str(params["id_tag"]))
                case StepAction.STOP:
                    await self.stop_transaction(identity, connector,
                                                reason=Reason(str(params["reason"])))
                case StepAction.FAULT:
                    info = params.get("info")
                    await self.set_fault(identity, connector, str(params["error_code"]),
                                         info=None if info is None else str(info))
                case StepAction.CLEAR_FAULT:
                    await self.clear_fault(identity, connector)
                case StepAction.REBOOT:
                    await self.reboot(identity, hard=bool(params["hard"]))
                    return  # the charger, once

    def _control(self, identity: str) -> ChargerControl:
        control = self._running.controls.get(identity)
        if control is None:
            if identity in self._known:
                raise CommandError(f"charger {identity!r} has not been started yet "
                                   "(it is still waiting for its turn in the ramp)")
            raise CommandError(f"no charger {identity!r} in this fleet")
        return control


__all__ = ["CommandError", "RunResult", "Simulation", "TargetLike", "TaskNode"]
