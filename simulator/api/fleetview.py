"""How the API reads one charger: its link state, its connectors and the small state code of the
dashboard's grid, from the fleet's :class:`~simulator.actors.charger.ChargerControl` and the
machine's read-only accessors (never a step; the charger's own task stays the only one that
changes it).

Link states: ``not_started`` (the ramp has not started it), ``connecting`` (started, no
connection up: connecting, backing off, offline), ``connected``, ``restarting`` (crashed, its
supervisor restarts it), ``finished`` (it ended with the run).

State codes (:data:`LEGEND`): a charger that is not connected shows its link state
(0 not started, 1 connecting/offline, 7 restarting, 8 finished); a connected one shows the
most telling status among its connectors and the charge point (connector 0), in this order:
faulted/unavailable (6), charging (4), suspended (5), preparing/finishing/reserved (3),
available (2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from simulator.actors.charger import ChargerControl
from simulator.ocpp.v16 import ChargePointStatus

_S = ChargePointStatus
LEGEND: Final[Mapping[int, str]] = {
    0: "not_started", 1: "connecting", 2: "available", 3: "preparing", 4: "charging",
    5: "suspended", 6: "faulted", 7: "restarting", 8: "finished",
}
"""The grid's state codes and their names."""
NOT_STARTED, CONNECTING, RESTARTING, FINISHED = 0, 1, 7, 8
_STATUS_RANK: Final[Mapping[ChargePointStatus, int]] = {
    _S.AVAILABLE: 0, _S.PREPARING: 1, _S.FINISHING: 1, _S.RESERVED: 1,
    _S.SUSPENDED_EV: 2, _S.SUSPENDED_EVSE: 2, _S.CHARGING: 3, _S.FAULTED: 4, _S.UNAVAILABLE: 4,
}
"""How telling a status is (the highest of a charger's wins)."""
_RANK_CODE: Final = (2, 3, 5, 4, 6)
"""The state code of each rank of :data:`_STATUS_RANK`."""


def link_state(control: ChargerControl | None) -> str:
    """The charger's link state (see the module docstring)."""
    if control is None:
        return "not_started"
    if control.done.is_set():
        return "finished"
    if control.machine is None:
        return "restarting"
    return "connected" if control.connected else "connecting"


def state_code(control: ChargerControl | None) -> int:
    """The charger's state code (see the module docstring); cheap: a few attribute reads and
    one look-up per connector, no statistics snapshot."""
    if control is None:
        return NOT_STARTED
    if control.done.is_set():
        return FINISHED
    machine = control.machine
    if machine is None:
        return RESTARTING
    if not control.connected:
        return CONNECTING
    return _RANK_CODE[max(map(_STATUS_RANK.__getitem__, machine.connector_statuses()))]


def statuses(control: ChargerControl | None) -> tuple[str, ...]:
    """The names a ``status`` filter matches, lower case: the link state and the status of every
    connector (the charge point's too)."""
    shown = [link_state(control)]
    if control is not None and control.machine is not None:
        shown.extend(status.value.lower() for status in control.machine.connector_statuses())
    return tuple(shown)


__all__ = ["LEGEND", "link_state", "state_code", "statuses"]
