"""The control API: faults injected while the fleet runs (``/api/chaos``).

- ``GET /api/chaos/catalog``: every fault of the catalog, for the dashboard's fault form
  (:mod:`simulator.api.fault_catalog`).
- ``POST /api/chaos``: a ``[[chaos]]`` table as JSON, checked by the fleet file's own type
  (:class:`~simulator.config.tables.ChaosTable`) and resolver
  (:func:`~simulator.config.resolve.resolve_chaos`), so the API takes exactly what a fleet file
  takes; its ``at`` counts from now. It is planned like a fleet rule (a
  :class:`~simulator.chaos.plan.ChaosPlan` of its own, started now, ending with the run) and
  each hit is delivered at its time as the director does (``fault`` events with source
  ``api``), until the run's graceful end begins. Fault ids are ``api1``, ``api2``... in the
  order they were posted (skipping any number a replay has given again by then); each
  injection's id starts with its fault's (``api3.0`` is the first firing of ``api3``,
  ``api3.0.2`` the third charger of a ``wave``).
- ``GET /api/chaos``: the faults active (an injection delivered and still in force), scheduled
  (a hit still to come) and ended (the last 100), both the API's and the fleet file's
  ``[[chaos]]`` rules (id ``chaos<i>``, source ``chaos``). A fleet rule's rows are worked out
  from its plan, which is pure and seeded: the same decisions the director made or will make,
  so a rule that fired before the API started is shown too.
- ``DELETE /api/chaos/{id}``: ends an API fault now: its hits still to come are cancelled and
  each injection still in force is ended on its charger where the charger can cut that fault
  short (:data:`simulator.api.ending.EARLY`; others last until their ``until``). Recorded as
  :class:`~simulator.events.FaultEnded` events with source ``api`` (one for the fault, one per
  charger whose injection was in force). A fleet file's rule cannot be ended (409).

Times in rows are seconds since the run started (``Simulation.t0``, as in the ledger).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Final

import msgspec
import trio
from litestar import delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from simulator.actors.director import deliver
from simulator.api.ending import ONCE, end_injection, ends_early, in_force
from simulator.api.fault_catalog import CATALOG_ROWS, CatalogRow
from simulator.api.parts import ApiContext, ApiPart, provide
from simulator.api.problems import problem
from simulator.chaos import ChaosPlan, Hit
from simulator.chaos.catalog import family_of
from simulator.chaos.plan import pick, pool
from simulator.config import Chaos
from simulator.config.errors import Invalid, field_name
from simulator.config.resolve import resolve_chaos
from simulator.config.tables import ChaosTable
from simulator.events import Event, FaultEnded, FaultInjected
from simulator.seeds import derive
from simulator.simulation import Simulation

ENDED_KEPT: Final = 100
"""How many ended faults ``GET /api/chaos`` lists (the latest)."""
POSTS_WAITING: Final = 16
"""Posted faults waiting for the board's task to start delivering them."""
LOOKED_BACK: Final = 5
"""Firings of a fleet rule looked back through for its latest hits (one, unless a
``probability`` below 1 left some firings without any): a rule whose firings last longer than
this many periods and hit nobody this often may read as ended while an old hit still acts.
Each firing looked at costs a draw per targeted charger, once."""


class FaultRow(msgspec.Struct, frozen=True, kw_only=True, rename={"for_": "for"}):
    """One fault as the API shows it (times: seconds since the run started)."""

    id: str
    fault: str
    family: str
    target: dict[str, Any]
    chargers: list[str]
    at: float
    every: float | None
    for_: float | None
    until: float | None
    params: dict[str, Any]
    state: str
    source: str


class FaultList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/chaos``: the faults by state."""

    active: list[FaultRow]
    scheduled: list[FaultRow]
    ended: list[FaultRow]


@dataclasses.dataclass(slots=True)
class Tracked:
    """A fault the board follows: rule ``index`` of ``plan`` (``rule`` as resolved), under
    ``id``. For the API's: the hits delivered (those of its latest firing, and the earlier
    ones still in force), when it was ended, the scope of the task delivering its hits."""

    id: str
    source: str
    rule: Chaos
    plan: ChaosPlan
    index: int
    chargers: tuple[str, ...]
    delivered: list[Hit] = dataclasses.field(default_factory=list)
    ended_at: float | None = None
    scope: trio.CancelScope = dataclasses.field(default_factory=trio.CancelScope)
    done: bool = False
    seen: int = 0
    """How many of an API fault's firings its task has delivered a hit of."""
    examined: int = -1
    """A fleet rule's firings up to this one have been worked out (:meth:`ChaosBoard.rows`)."""
    recent: list[list[Hit]] = dataclasses.field(default_factory=list)
    """A fleet rule's last two firings that hit any charger, oldest first."""
    waiting: float | None = None
    """When the hit an API fault's task waits for (or is delivering) is due: every firing
    before it has been carried out (None: the task has not started)."""


class ChaosBoard:
    """The faults of the run (see the module docstring): the fleet file's rules from the
    start, the API's as they are posted. :meth:`run` is the part's task: the API's faults are
    delivered in its nursery."""

    def __init__(self, sim: Simulation, origin: float) -> None:
        self.sim = sim
        self.origin = origin
        self.stopped_at: float | None = None
        # (bounded; blocks: a request waits while the task starts the faults posted before it)
        self._post, self._posted_faults = trio.open_memory_channel[Tracked](POSTS_WAITING)
        self._posted = 0
        fleet = sim.fleet
        plan = ChaosPlan(fleet.chaos, fleet.groups, fleet.run.seed, start=origin,
                         end=fleet.run.duration)
        self.faults: dict[str, Tracked] = {
            f"chaos{index}": Tracked(
                id=f"chaos{index}", source="chaos", rule=rule, plan=plan, index=index,
                chargers=pick(rule.target.fraction, pool(rule.target, fleet.groups),
                              fleet.run.seed, "chaos", index))
            for index, rule in enumerate(fleet.chaos)
        }

    def observe(self, event: Event) -> None:
        """A bus observer: an API fault delivered by someone else (``sim replay`` applying a
        run's again) takes its number, so the ones posted here never reuse an id."""
        if type(event) is FaultInjected and event.source == "api" and event.injection:
            number = event.injection.split(".")[0].removeprefix("api")
            if number.isdigit():
                self._posted = max(self._posted, int(number))

    async def run(self) -> None:
        """Deliver the API's faults, each in a task of this one's nursery, until cancelled;
        note when the graceful end begins (no hit after it)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_stop, name="api faults stop")
            async for tracked in self._posted_faults:
                nursery.start_soon(self._deliver, tracked, name=f"api fault {tracked.id}")

    async def _watch_stop(self) -> None:
        await self.sim.stopping.wait()
        self.stopped_at = trio.current_time()
        for tracked in self.faults.values():
            tracked.scope.cancel()

    # --- posting and ending ------------------------------------------------------------------

    async def post(self, table: ChaosTable) -> Tracked:
        """Plan ``table`` from now and start delivering it; raises a 400 problem naming the
        field the fleet file's resolver refuses, a 409 once the run is ending."""
        sim = self.sim
        if sim.stopping.is_set():
            raise problem(409, "the run is ending: no fault can be injected any more")
        try:
            rule = resolve_chaos(table, 0, sim.fleet.groups)
        except Invalid as error:
            field = field_name(error.path[2:]) or "body"
            raise problem(400, f"{field}: {error.message}", field=field,
                          errors=[{"key": field, "message": error.message}]) from None
        self._posted += 1
        number = self._posted
        now = trio.current_time()
        duration = sim.fleet.run.duration
        seed = derive(sim.fleet.run.seed, "api", number).getrandbits(63)
        plan = ChaosPlan([rule], sim.fleet.groups, seed, start=now,
                         end=None if duration is None else self.origin + duration - now)
        tracked = Tracked(id=f"api{number}", source="api", rule=rule, plan=plan, index=0,
                          chargers=pick(rule.target.fraction,
                                        pool(rule.target, sim.fleet.groups), seed, "chaos", 0))
        await self._post.send(tracked)  # (to run(), which delivers it)
        self.faults[tracked.id] = tracked
        return tracked

    async def _deliver(self, tracked: Tracked) -> None:
        number = tracked.id.removeprefix("api")
        with tracked.scope:
            for hit in tracked.plan:
                tracked.waiting = hit.injection.at
                await trio.sleep_until(hit.injection.at)
                if self.sim.stopping.is_set():
                    break
                injection = msgspec.structs.replace(
                    hit.injection, id=tracked.id + hit.injection.id[1:],
                    seed_path=("api", int(number), *hit.injection.seed_path[2:]))
                mine = Hit(hit.charger, injection)
                firing = int(injection.id.split(".")[1])
                if firing >= tracked.seen:  # a new firing: forget the hits over by now
                    tracked.delivered = [h for h in tracked.delivered
                                         if in_force(h.injection, injection.at)]
                    tracked.seen = firing + 1
                tracked.delivered.append(mine)
                await deliver(mine, self.sim.running_controls, self.sim.bus.publish,
                              source="api")
        tracked.done = True

    async def end(self, tracked: Tracked) -> None:
        """End the API fault ``tracked`` now (see the module docstring); a fault already
        ended is left as it is."""
        if tracked.source != "api":
            raise problem(409, f"{tracked.id} is a [[chaos]] table of the fleet file: only a "
                               "fault injected through the API can be ended")
        if tracked.ended_at is not None:
            return
        now = trio.current_time()
        pending = not tracked.done and self._next(tracked, now) is not None
        tracked.scope.cancel()
        tracked.ended_at = now
        publish = self.sim.bus.publish
        await publish(FaultEnded(t=now, fault=tracked.rule.fault, injection=tracked.id,
                                 source="api", cancelled=pending))
        for hit in tracked.delivered:
            if in_force(hit.injection, now):
                await end_injection(hit, self.sim.running_controls, publish, source="api")

    # --- rows --------------------------------------------------------------------------------

    def _stopped(self, now: float) -> float | None:
        """When the graceful end began (``None``: not yet)."""
        if self.stopped_at is None and self.sim.stopping.is_set():
            return now  # (set a moment ago: the board's task has not woken yet)
        return self.stopped_at

    def _fired(self, tracked: Tracked, now: float) -> int:
        """How many firings of ``tracked`` have been made by ``now`` (those at ``now``
        included, for an API fault once its task has delivered them; none at or after its
        end, the graceful end or the run's duration)."""
        rule, plan = tracked.rule, tracked.plan
        if not tracked.chargers or rule.probability <= 0:
            return 0
        first = plan.firing_time(tracked.index, 0)
        limits = [tracked.ended_at, self._stopped(now),
                  None if plan.end is None else plan.start + plan.end]
        limit = min((t for t in limits if t is not None), default=math.inf)
        if now < first or limit <= first:
            return 0
        # An API fault's firings count once its task is past them (due is not done: under
        # real time a moment passes between the post and the delivery).
        horizon = math.inf
        if tracked.source == "api" and not tracked.done:
            horizon = first if tracked.waiting is None else tracked.waiting
        if horizon <= first:
            return 0
        if rule.every is None:
            return 1
        by_now = math.floor((now - first) / rule.every) + 1
        if not math.isinf(horizon):
            by_now = min(by_now, math.ceil((horizon - first) / rule.every))
        if math.isinf(limit):
            return by_now
        return min(by_now, math.ceil((limit - first) / rule.every))

    def _next(self, tracked: Tracked, now: float) -> float | None:
        """When ``tracked`` fires next (``None``: never again)."""
        if tracked.ended_at is not None or self._stopped(now) is not None:
            return None
        if not tracked.chargers or tracked.rule.probability <= 0:
            return None
        fired = self._fired(tracked, now)
        if fired and tracked.rule.every is None:
            return None
        at = tracked.plan.firing_time(tracked.index, fired)
        plan = tracked.plan
        if plan.end is not None and at >= plan.start + plan.end:
            return None
        return at

    def _until(self, tracked: Tracked, now: float) -> tuple[float | None, bool]:
        """The latest end of an injection made (monotonic; ``None``: none has one) and whether
        one still acts now. An injection the API ended early ends then; one the charger could
        not cut short keeps its ``until``."""
        hits = tracked.delivered if tracked.source == "api" else self._recent_hits(tracked, now)
        ends: list[float] = []
        active = False
        for hit in hits:
            injection = hit.injection
            if injection.fault in ONCE:
                continue
            end = injection.until
            cut = tracked.ended_at
            if cut is not None and ends_early(injection) and in_force(injection, cut):
                end = cut
            if end is not None:
                ends.append(end)
            active = active or (injection.at <= now and (end is None or end > now))
        return (max(ends) if ends else None), active

    def _recent_hits(self, tracked: Tracked, now: float) -> list[Hit]:
        """The hits made so far by a fleet rule's latest firing that hit any charger (at most
        :data:`LOOKED_BACK` firings back). Every firing of a rule lasts as long, so its latest
        hits are the ones that end last: they tell whether it still acts. Each firing is
        worked out once (a firing draws for every charger of the target: 10,000 draws on a
        large fleet), and only the last two that hit anyone are kept."""
        fired = self._fired(tracked, now)
        for firing in range(max(tracked.examined, fired - 1 - LOOKED_BACK) + 1, fired):
            hits = tracked.plan.firing(tracked.index, firing)
            if hits:
                tracked.recent = [*tracked.recent[-1:], hits]
        tracked.examined = max(tracked.examined, fired - 1)
        for hits in reversed(tracked.recent):
            made = [hit for hit in hits if hit.injection.at <= now]
            if made:
                return made
        return []

    def row(self, tracked: Tracked, now: float) -> FaultRow:
        """``tracked`` as a :class:`FaultRow`."""
        rule, origin = tracked.rule, self.origin
        until, active = self._until(tracked, now)
        upcoming = self._next(tracked, now)
        state = "active" if active else "scheduled" if upcoming is not None else "ended"
        return FaultRow(
            id=tracked.id, fault=rule.fault, family=family_of(rule.fault).value,
            target={key: value for key, value in msgspec.to_builtins(rule.target).items()
                    if value is not None and value != ()},
            chargers=list(tracked.chargers),
            at=tracked.plan.firing_time(tracked.index, 0) - origin, every=rule.every,
            for_=rule.for_, until=None if until is None else until - origin,
            params=dict(rule.params), state=state, source=tracked.source,
        )

    def rows(self, now: float) -> FaultList:
        """Every fault, by state (the last :data:`ENDED_KEPT` ended ones)."""
        active: list[FaultRow] = []
        scheduled: list[FaultRow] = []
        ended: list[FaultRow] = []
        for tracked in self.faults.values():
            row = self.row(tracked, now)
            {"active": active, "scheduled": scheduled, "ended": ended}[row.state].append(row)
        return FaultList(active=active, scheduled=scheduled, ended=ended[-ENDED_KEPT:])


# --- the handlers -----------------------------------------------------------------------------


@get("/api/chaos/catalog", tags=["chaos"])
async def chaos_catalog() -> list[CatalogRow]:
    """Every fault of the catalog: family, what it does and targets, its parameters."""
    return CATALOG_ROWS


@post("/api/chaos", tags=["chaos"], status_code=201)
async def inject_fault(data: JSONBody[ChaosTable],
                       chaos_board: NamedDependency[ChaosBoard]) -> FaultRow:
    """Inject a fault with the ``[[chaos]]`` schema; ``at`` counts from now."""
    tracked = await chaos_board.post(data)
    return chaos_board.row(tracked, trio.current_time())


@get("/api/chaos", tags=["chaos"])
async def list_faults(chaos_board: NamedDependency[ChaosBoard]) -> FaultList:
    """The faults active, scheduled and ended (the API's and the fleet file's)."""
    return chaos_board.rows(trio.current_time())


@delete("/api/chaos/{fault_id:str}", tags=["chaos"], status_code=200)
async def end_fault(fault_id: FromPath[str],
                    chaos_board: NamedDependency[ChaosBoard]) -> FaultRow:
    """End a fault injected through the API: no more hits, injections in force ended."""
    tracked = chaos_board.faults.get(fault_id)
    if tracked is None:
        known = ", ".join(chaos_board.faults) or "none"
        raise problem(404, f"no fault {fault_id!r} in this run (faults: {known})")
    await chaos_board.end(tracked)
    return chaos_board.row(tracked, trio.current_time())


HANDLERS: Final[Sequence[Any]] = (chaos_catalog, inject_fault, list_faults, end_fault)


def part(ctx: ApiContext) -> ApiPart:
    """This part's handlers, its board (dependency ``chaos_board``) and the board's task."""
    board = ChaosBoard(ctx.sim, ctx.sim.t0)
    ctx.sim.bus.observe(board.observe)
    return ApiPart(handlers=HANDLERS, dependencies={"chaos_board": provide(board)},
                   tasks=(board.run,))
