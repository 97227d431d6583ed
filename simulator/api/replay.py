"""``sim replay``'s interactive part: every command and fault a run was given through the control
API, applied again at the same simulated times.

The ledger marks them with ``source = "api"``: ``command`` events (the command facade's),
``fault`` events (the chaos part's deliveries, one per charger hit) and ``fault_ended`` events
(a ``DELETE /api/chaos/{id}``). :func:`recorded_actions` reads them, in the order they were
recorded, with their times as seconds since the run started; :class:`Replayer` is a runtime
service (``simulator.runtime.Service``) that waits for each time on the replay's clock (counted
from the replay's start, which it learns as the fleet starts) and carries it out:

- a command through the facade (``source="api"``), as the API did; a charger that is not
  running then (possible only under real time) is recorded as a ``note`` instead; a
  ``stop_run`` (``POST /api/run/stop``) begins the replay's graceful end at the same time;
- a fault delivered to its charger as the chaos part did (the injection as recorded: same id,
  parameters and length, its end moved to the replay's clock);
- an end recorded again, and the injection ended on its charger where the charger can.

Nothing is applied once the replay's graceful end has begun. Under virtual time with the same
seed, the replay's ledger has the same ``command``, ``fault`` and ``fault_ended`` events at the
same times, and the chargers send the same frames.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import msgspec
import trio

from simulator.actors.director import deliver
from simulator.api.ending import end_injection
from simulator.bus import EventBus
from simulator.chaos import Family, Hit, Injection
from simulator.events import STOP_RUN, CommandIssued, FaultEnded, Note
from simulator.ledger.reads import open_readonly
from simulator.ocpp.v16 import Reason
from simulator.simulation import CommandError, Simulation

__all__ = ["KINDS", "Recorded", "Replayer", "recorded_actions"]

KINDS: Final = ("command", "fault", "fault_ended")
"""The event kinds a replay applies again (those with source ``api``)."""


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """One event of the recorded run to apply again: ``t`` seconds after its start; ``data``
    the event's own fields; ``until`` a fault's end, in seconds after the start too."""

    t: float
    kind: str
    charger: str | None
    connector: int | None
    data: dict[str, Any]
    until: float | None = None


def recorded_actions(ledger: Path, run_id: int, origin: float | None) -> list[Recorded]:
    """The events of run ``run_id`` in ``ledger`` that came through the API (see the module
    docstring), in recording order. ``origin`` is the run's clock origin (its summary's): a
    fault's ``until`` is stored on the run's own clock. Raises ``ValueError`` when a fault has
    an end but the run stored no origin."""
    query = ("SELECT t, kind, charger, connector, data FROM events WHERE run_id = ?"
             f" AND kind IN ({', '.join('?' * len(KINDS))})"
             " AND json_extract(data, '$.source') = 'api' ORDER BY seq")
    with open_readonly(ledger) as db:
        rows = list(db.execute(query, (run_id, *KINDS)))
    actions: list[Recorded] = []
    for t, kind, charger, connector, raw in rows:
        data = json.loads(raw) if raw else {}
        until = data.get("until")
        if until is not None and origin is None:
            raise ValueError(f"run {run_id} stored no clock origin: the ends of its API faults "
                             "cannot be placed on the replay's clock")
        actions.append(Recorded(
            t=float(t), kind=kind, charger=charger, connector=connector, data=data,
            until=None if until is None or origin is None else float(until) - origin))
    return actions


class Replayer:
    """Applies ``actions`` again at their times (see the module docstring); a runtime
    service."""

    def __init__(self, actions: Sequence[Recorded]) -> None:
        self.actions = tuple(actions)
        self._given: dict[tuple[str, str], Injection] = {}

    def attach(self, bus: EventBus) -> None:
        """Nothing to observe: the actions are known before the run."""

    async def serve(self, sim: Simulation, *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Apply each action at its time, until all are done or the graceful end begins."""
        start = sim.t0
        task_status.started()
        for action in self.actions:
            await trio.sleep_until(start + action.t)
            if sim.stopping.is_set():
                return
            match action.kind:
                case "command":
                    await self._command(sim, action)
                case "fault":
                    await self._fault(sim, action, start)
                case "fault_ended":
                    await self._ended(sim, action)

    async def _command(self, sim: Simulation, action: Recorded) -> None:
        data, charger, connector = action.data, action.charger, action.connector
        params: dict[str, Any] = data.get("params", {})
        if data["command"] == STOP_RUN:  # the run was ended through the API: at the same time
            await sim.bus.publish(CommandIssued(t=trio.current_time(), command=STOP_RUN,
                                                source="api"))
            sim.stop()
            return
        assert charger is not None  # (every other command event names its charger)
        try:
            match data["command"]:
                case "plug":
                    await sim.plug(charger, connector or 1, source="api")
                case "unplug":
                    await sim.unplug(charger, connector or 1, source="api")
                case "present_tag":
                    await sim.present_tag(charger, connector or 1, str(params["id_tag"]),
                                          source="api")
                case "stop":
                    await sim.stop_transaction(charger, connector or 1,
                                               reason=Reason(params.get("reason", "Local")),
                                               source="api")
                case "reboot":
                    await sim.reboot(charger, hard=bool(params.get("hard", False)),
                                     source="api")
                case "fault":
                    info = params.get("info")
                    await sim.set_fault(charger, connector or 1, str(params["error_code"]),
                                        info=None if info is None else str(info), source="api")
                case "clear_fault":
                    await sim.clear_fault(charger, connector or 1, source="api")
                case other:
                    await self._not_applied(sim, action, f"no command {other!r} to replay")
        except CommandError as error:
            await self._not_applied(sim, action, str(error))

    async def _fault(self, sim: Simulation, action: Recorded, start: float) -> None:
        data, now = action.data, trio.current_time()
        assert action.charger is not None  # (an injection names its charger)
        injection = Injection(
            id=str(data["injection"]), fault=str(data["fault"]),
            family=Family(data["family"]), at=now,
            until=None if action.until is None else start + action.until,
            connector=action.connector, params=data.get("params", {}),
            deliberate=bool(data.get("deliberate", False)),
            seed_path=tuple(data.get("seed_path", ())),
        )
        self._given[(action.charger, injection.id)] = injection
        await deliver(Hit(action.charger, injection), sim.running_controls, sim.bus.publish,
                      source="api")

    async def _ended(self, sim: Simulation, action: Recorded) -> None:
        data = action.data
        if action.charger is None:
            await sim.bus.publish(FaultEnded(
                t=trio.current_time(), fault=str(data["fault"]),
                injection=str(data["injection"]), source="api",
                cancelled=bool(data.get("cancelled", False))))
            return
        given = self._given.get((action.charger, str(data["injection"])))
        if given is None:
            await self._not_applied(sim, action, "the replay never gave this injection")
            return
        await end_injection(Hit(action.charger, given), sim.running_controls, sim.bus.publish,
                            source="api")

    async def _not_applied(self, sim: Simulation, action: Recorded, reason: str) -> None:
        await sim.bus.publish(Note(
            t=trio.current_time(), charger=action.charger, connector=action.connector,
            what="replay_not_applied",
            data={"kind": action.kind, "recorded_t": action.t, "reason": reason}))
