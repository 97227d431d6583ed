"""``POST /api/chargers/{id}/commands``: a command to one charger, with the schema and the
command facade of a ``[[step]]``.

The body is :class:`CommandBody`: ``do`` (plug, unplug, present_tag, stop, reboot, fault,
clear_fault), ``connector`` and ``params`` as a ``[[step]]`` table writes them. It is checked by
the fleet file's own resolution (:func:`simulator.config.resolve.resolve_step`, whose
``STEP_PARAMS`` name each action's parameters and fill in their defaults), so a command through
the API and a step accept exactly the same things; a connector action without a connector acts
on every connector, as a step does. It is then carried out through the facade's methods
(:class:`~simulator.simulation.Simulation`) with ``source="api"``: each is a ``command`` event
in the ledger, at the simulated time it took effect, that ``sim replay`` can apply again.

Answers: 202 with the command, the charger and the connectors it went to; 400 (problem document
naming the field, e.g. ``params.id_tag``) for a bad body; 404 for an unknown charger; 409 for a
charger the ramp has not started, one that has finished, or a run that is stopping.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from litestar import post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from simulator.api.problems import problem
from simulator.config import StepAction
from simulator.config.errors import Invalid, field_name
from simulator.config.resolve import resolve_step
from simulator.config.tables import ScalarTable, StepActionName, StepTable, TargetTable
from simulator.ocpp.v16 import Reason
from simulator.simulation import Simulation

SOURCE: Final = "api"
"""The ``source`` of the ``command`` events of the API's commands."""


class CommandBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A command to one charger: a ``[[step]]`` table's ``do``, its target's ``connector`` and
    its ``params``, as the fleet file writes them."""

    do: StepActionName
    connector: Annotated[int, msgspec.Meta(ge=0)] | None = None
    params: ScalarTable = {}


class CommandGiven(msgspec.Struct, frozen=True):
    """The command handed to ``charger``, on each of ``connectors`` (empty: the charger as a
    whole, e.g. reboot)."""

    command: str
    charger: str
    connectors: tuple[int, ...]


@post("/api/chargers/{charger_id:str}/commands", status_code=202, tags=["chargers"],
      summary="Plug, unplug, present_tag, stop, reboot, fault or clear_fault, as a [[step]]")
async def give_command(charger_id: FromPath[str], data: JSONBody[CommandBody],
                       sim: NamedDependency[Simulation]) -> CommandGiven:
    """Carry out ``data`` on the charger (see the module docstring)."""
    group = next((g for g in sim.fleet.groups if charger_id in g.ids), None)
    if group is None:
        raise problem(404, f"no charger {charger_id!r} in this fleet")
    if data.do == StepAction.DISCONNECT.value:
        raise problem(400, "do: disconnect is a transport fault: inject it with POST /api/chaos",
                      field="do")
    try:
        step = resolve_step(
            StepTable(at=0.0, do=data.do, target=TargetTable(group=group.name,
                                                             connector=data.connector),
                      params=data.params),
            0, (group,),
        )
    except Invalid as error:
        path = error.path[2:] if error.path[:1] == ("step",) else error.path
        where = "connector" if path[:2] == ("target", "connector") else field_name(path)
        raise problem(400, f"{where}: {error.message}", field=where,
                      errors=[{"key": where, "message": error.message}]) from None
    if sim.stopping.is_set():
        raise problem(409, "the run is stopping: no command is carried out any more")
    control = sim.running_controls.get(charger_id)
    if control is not None and control.done.is_set():
        raise problem(409, f"charger {charger_id!r} has finished")
    # (a charger the ramp has not started: the facade raises CommandError, a 409)
    action, params = step.do, step.params
    if action is StepAction.REBOOT:
        await sim.reboot(charger_id, hard=bool(params["hard"]), source=SOURCE)
        return CommandGiven(action.value, charger_id, ())
    connectors = ((step.target.connector,) if step.target.connector is not None
                  else tuple(range(1, group.connectors + 1)))
    for connector in connectors:
        match action:
            case StepAction.PLUG:
                await sim.plug(charger_id, connector, source=SOURCE)
            case StepAction.UNPLUG:
                await sim.unplug(charger_id, connector, source=SOURCE)
            case StepAction.PRESENT_TAG:
                await sim.present_tag(charger_id, connector, str(params["id_tag"]),
                                      source=SOURCE)
            case StepAction.STOP:
                await sim.stop_transaction(charger_id, connector,
                                           reason=Reason(str(params["reason"])), source=SOURCE)
            case StepAction.FAULT:
                info = params.get("info")
                await sim.set_fault(charger_id, connector, str(params["error_code"]),
                                    info=None if info is None else str(info), source=SOURCE)
            case StepAction.CLEAR_FAULT:
                await sim.clear_fault(charger_id, connector, source=SOURCE)
    return CommandGiven(action.value, charger_id, connectors)


__all__ = ["SOURCE", "CommandBody", "CommandGiven", "give_command"]
