"""The control API: the fleet's chargers (``GET /api/chargers``, ``/api/chargers/states``,
``/api/chargers/{id}``) and the commands given to one (``POST /api/chargers/{id}/commands``,
:mod:`simulator.api.commands`).

- ``GET /api/chargers?group=&status=&offset=&limit=``: a page of :class:`ChargerRow` in fleet
  order; ``group`` keeps one group's chargers, ``status`` those whose link state or any
  connector status (the charge point's too) is that name (case-insensitive); ``limit`` at most
  :data:`MAX_LIMIT`. An unknown group is a 404.
- ``GET /api/chargers/states``: one small code per charger (:mod:`simulator.api.fleetview`),
  for the dashboard's canvas grid: cheap enough to poll every 2 s on 10,000 chargers.
- ``GET /api/chargers/{id}``: one charger's row with its connectors' energy and transactions,
  its configuration keys (secrets ``<redacted>``), its last frames (a frame naming
  ``AuthorizationKey`` with its values as ``***``, as the ledger has it) and last crash since
  the API started (:mod:`simulator.api.recent`). An unknown id is a 404.

Everything is read from the running chargers' machines through read-only accessors, in the
event loop, with no thread and no ledger read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final

import msgspec
from litestar import MediaType, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, QueryParameter

from simulator.actors.charger import ChargerControl
from simulator.api import commands
from simulator.api.clock import RunClock
from simulator.api.fleetview import LEGEND, link_state, state_code, statuses
from simulator.api.parts import ApiContext, ApiPart, provide
from simulator.api.problems import problem
from simulator.api.recent import RecentActivity
from simulator.config.model import REDACTED
from simulator.machines.session import redact_frame
from simulator.simulation import Simulation

_encode = msgspec.json.Encoder().encode
MAX_LIMIT: Final = 1000
"""The most rows one page holds."""
NO_BOOT: Final = "off"
"""The ``boot`` of a charger without a running machine (not started, restarting)."""


class Connector(msgspec.Struct, frozen=True):
    """One connector: ``status`` and ``error_code`` as its last StatusNotification says them,
    ``transaction_id`` the CSMS's id of its running transaction (null until answered)."""

    id: int
    status: str
    error_code: str
    transaction_id: int | None


class ChargerRow(msgspec.Struct, frozen=True):
    """One charger in the list: its ``link`` state (:func:`~simulator.api.fleetview.link_state`),
    registration (``boot``), crash restarts, queued transaction messages (``outbox``) and its
    connectors (1..n; none while it has no running machine)."""

    id: str
    group: str
    link: str
    boot: str
    restarts: int
    outbox: int
    connectors: tuple[Connector, ...]


class ChargerPage(msgspec.Struct, frozen=True):
    """A page of the list: ``total`` rows match, ``items`` from ``offset``, at most ``limit``."""

    total: int
    offset: int
    limit: int
    items: tuple[ChargerRow, ...]


class States(msgspec.Struct, frozen=True):
    """Every charger's state code (``codes[i]`` is ``ids[i]``'s), in fleet order; ``legend``
    names the codes."""

    ids: tuple[str, ...]
    codes: list[int]
    legend: Mapping[int, str]


class Transaction(msgspec.Struct, frozen=True):
    """A running transaction: the CSMS's ``id`` (null until answered), the ``id_tag`` it runs
    for, the meter at its start (Wh) and when it ``started`` (seconds since the run started)."""

    id: int | None
    id_tag: str
    meter_start: int
    started: float


class ConnectorDetail(msgspec.Struct, frozen=True):
    """A connector in a charger's detail: its row, its energy register (Wh) and transaction."""

    id: int
    status: str
    error_code: str
    transaction_id: int | None
    energy_wh: float
    transaction: Transaction | None


class ConfigurationKey(msgspec.Struct, frozen=True):
    """A configuration key and its value (write-only keys such as AuthorizationKey
    ``<redacted>``); ``readonly``: the CSMS cannot change it."""

    key: str
    value: str
    readonly: bool


class FrameView(msgspec.Struct, frozen=True):
    """A frame the charger sent (``out``) or received (``in``), ``t`` seconds since the run
    started, its text (secrets redacted, cut at a few KB)."""

    t: float
    direction: str
    action: str | None
    message_type: int | None
    raw: str


class CrashView(msgspec.Struct, frozen=True):
    """A charger's last crash: when (``t``), the error and its traceback."""

    t: float
    error: str
    traceback: str


class ChargerDetail(msgspec.Struct, frozen=True):
    """``GET /api/chargers/{id}`` (see the module docstring)."""

    id: str
    group: str
    link: str
    boot: str
    restarts: int
    outbox: int
    connectors: tuple[ConnectorDetail, ...]
    configuration: tuple[ConfigurationKey, ...]
    frames: tuple[FrameView, ...]
    last_crash: CrashView | None


class FleetIndex:
    """The fleet as these endpoints read it, built once: its ids in fleet order, each charger's
    group, and the part of :class:`States` that never changes, encoded."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.ids = sim.chargers()
        self.group_of = {identity: group.name for group in sim.fleet.groups
                         for identity in group.ids}
        self.states_head = (b'{"ids":' + _encode(self.ids) + b',"legend":' + _encode(LEGEND)
                            + b',"codes":')
        """The encoded :class:`States` up to its codes."""

    def row(self, identity: str, control: ChargerControl | None) -> ChargerRow:
        """``identity``'s row now."""
        machine = control.machine if control is not None else None
        connectors: tuple[Connector, ...] = ()
        if machine is not None:
            codes = machine.error_codes()
            connectors = tuple(
                Connector(view.connector_id, view.status.value, codes[view.connector_id].value,
                          view.transaction_id)
                for view in machine.connectors()[1:]
            )
        return ChargerRow(
            id=identity, group=self.group_of[identity], link=link_state(control),
            boot=machine.boot.value if machine is not None else NO_BOOT,
            restarts=control.restarts if control is not None else 0,
            outbox=len(control.outbox) if control is not None else 0,
            connectors=connectors,
        )


@get("/api/chargers", tags=["chargers"], sync_to_thread=False,
     summary="Every charger's link, boot, connectors and transaction, paginated")
def list_chargers(
    sim: NamedDependency[Simulation], fleet: NamedDependency[FleetIndex],
    group: FromQuery[str | None] = None, status: FromQuery[str | None] = None,
    offset: Annotated[int, QueryParameter(ge=0)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = 100,
) -> ChargerPage:
    """A page of the fleet's chargers (see the module docstring)."""
    ids = fleet.ids
    if group is not None:
        named = {g.name: g for g in sim.fleet.groups}
        if group not in named:
            raise problem(404, f"no group {group!r} in this fleet "
                               f"(groups: {', '.join(named)})")
        ids = named[group].ids
    controls = sim.running_controls
    if status is not None:
        wanted = status.strip().lower()
        ids = tuple(i for i in ids if wanted in statuses(controls.get(i)))
    page = ids[offset:offset + limit]
    return ChargerPage(total=len(ids), offset=offset, limit=limit,
                       items=tuple(fleet.row(i, controls.get(i)) for i in page))


@get("/api/chargers/states", tags=["chargers"], sync_to_thread=False,
     summary="One state code per charger, for the dashboard's grid",
     responses={200: ResponseSpec(States, description="Every charger's state code")})
def charger_states(sim: NamedDependency[Simulation],
                   fleet: NamedDependency[FleetIndex]) -> Response[bytes]:
    """Every charger's state code, in fleet order (see the module docstring): a
    :class:`States` whose ids and legend, which never change, are encoded once."""
    get_control = sim.running_controls.get
    codes = [state_code(get_control(i)) for i in fleet.ids]
    return Response(fleet.states_head + _encode(codes) + b"}", media_type=MediaType.JSON)


@get("/api/chargers/{charger_id:str}", tags=["chargers"], sync_to_thread=False,
     summary="One charger: connectors, transactions, configuration, last frames, outbox")
def charger_detail(charger_id: FromPath[str], sim: NamedDependency[Simulation],
                   fleet: NamedDependency[FleetIndex], recent: NamedDependency[RecentActivity],
                   clock: NamedDependency[RunClock]) -> ChargerDetail:
    """One charger (see the module docstring)."""
    if charger_id not in fleet.group_of:
        raise problem(404, f"no charger {charger_id!r} in this fleet")
    control = sim.running_controls.get(charger_id)
    row = fleet.row(charger_id, control)
    machine = control.machine if control is not None else None
    connectors: tuple[ConnectorDetail, ...] = ()
    configuration: tuple[ConfigurationKey, ...] = ()
    if machine is not None:
        running = {tx.connector_id: tx for tx in machine.transactions()}
        energy = {view.connector_id: view.energy_wh for view in machine.connectors()}
        connectors = tuple(
            ConnectorDetail(
                id=c.id, status=c.status, error_code=c.error_code,
                transaction_id=c.transaction_id, energy_wh=round(energy[c.id], 3),
                transaction=None if (tx := running.get(c.id)) is None else Transaction(
                    id=tx.transaction_id, id_tag=tx.id_tag, meter_start=tx.meter_start,
                    started=clock.since(tx.started_at)),
            )
            for c in row.connectors
        )
        configuration = tuple(ConfigurationKey(key, REDACTED if value is None else value,
                                               readonly)
                              for key, value, readonly in machine.configuration())
    crash = recent.crash(charger_id)
    return ChargerDetail(
        id=row.id, group=row.group, link=row.link, boot=row.boot, restarts=row.restarts,
        outbox=row.outbox, connectors=connectors, configuration=configuration,
        frames=tuple(FrameView(clock.since(f.t), f.direction, f.action, f.message_type,
                               redact_frame(f.raw))  # (again: whoever published it)
                     for f in recent.frames(charger_id)),
        last_crash=None if crash is None else CrashView(clock.since(crash.t), crash.error,
                                                        crash.traceback),
    )


def part(ctx: ApiContext) -> ApiPart:
    """The chargers' endpoints; their last frames and crashes are kept from now on (a bus
    observer)."""
    recent = RecentActivity()
    ctx.sim.bus.observe(recent.observe)
    return ApiPart(
        handlers=[list_chargers, charger_states, charger_detail, commands.give_command],
        dependencies={"fleet": provide(FleetIndex(ctx.sim)), "recent": provide(recent)},
    )


__all__ = ["MAX_LIMIT", "ChargerDetail", "ChargerPage", "ChargerRow", "States", "part"]
