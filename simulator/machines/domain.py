"""Domain requests: what a connector actor (the simulated driver and car) asks its charger for,
and the views of a connector and of a whole charger the charger gives back.

Connector actors talk to their charger actor over memory channels; these frozen Structs are the
messages on those channels. The charger actor turns each request into a call on
:class:`~simulator.machines.charger.ChargerMachine` (``plug_in``, ``unplug``, ``present_tag``,
``stop_local``) and answers with a :class:`ConnectorView` (also what
:meth:`~simulator.machines.charger.ChargerMachine.connectors` returns).
"""

from __future__ import annotations

import dataclasses

import msgspec

from simulator.machines.meter import EvSpec
from simulator.machines.parts import BootState
from simulator.ocpp.v16 import ChargePointErrorCode, ChargePointStatus, Reason


class PlugIn(msgspec.Struct, frozen=True):
    """The driver plugs ``ev`` into connector ``connector_id``."""

    connector_id: int
    ev: EvSpec


class Unplug(msgspec.Struct, frozen=True):
    """The driver unplugs the car from connector ``connector_id``."""

    connector_id: int


class PresentTag(msgspec.Struct, frozen=True):
    """The driver presents RFID ``id_tag`` at connector ``connector_id`` (starts or stops;
    with ``start_only`` a running transaction is left alone)."""

    connector_id: int
    id_tag: str
    start_only: bool = False


class StopCharging(msgspec.Struct, frozen=True):
    """Stop the transaction on ``connector_id`` locally, with ``reason``."""

    connector_id: int
    reason: Reason = Reason.LOCAL


class SetFault(msgspec.Struct, frozen=True):
    """The hardware of connector ``connector_id`` reports ``error_code`` (a fault code makes the
    connector Faulted; a warning code leaves its status alone), with optional ``info``."""

    connector_id: int
    error_code: ChargePointErrorCode
    info: str | None = None


class ClearFault(msgspec.Struct, frozen=True):
    """The hardware error on connector ``connector_id`` is gone (NoError)."""

    connector_id: int


class RebootCharger(msgspec.Struct, frozen=True):
    """Someone power-cycles the charger: ``hard`` skips the graceful stop of transactions."""

    hard: bool = False


DomainRequest = PlugIn | Unplug | PresentTag | StopCharging | SetFault | ClearFault | RebootCharger
"""Every request a charger takes from a connector actor or the command facade."""


class ConnectorView(msgspec.Struct, frozen=True):
    """A snapshot of one connector (connector 0: the charge point as a whole).

    ``energy_wh`` is the connector's energy register (Wh, never decreases; 0 for connector 0);
    ``transaction_id`` the central system's id of the running transaction once its
    StartTransaction was answered (None otherwise); ``plugged`` whether an EV is plugged in.
    """

    connector_id: int
    status: ChargePointStatus
    in_transaction: bool
    energy_wh: float
    transaction_id: int | None = None
    plugged: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class ChargerStatistics:
    """A snapshot of one charger for views and tests.

    ``outbox`` is the number of queued transaction messages, ``call_pending`` whether one of our
    CALLs waits for its result (``pending_call`` its message id), ``queued_calls`` the actions of
    the ordinary messages waiting behind it; the charger is *drained* when nothing of its own is
    queued or in flight.
    """

    identity: str
    boot: BootState
    online: bool
    powered: bool
    statuses: tuple[ChargePointStatus, ...]
    in_transaction: int
    outbox: int
    call_pending: bool
    boots_sent: int
    transactions_started: int
    transactions_stopped: int
    energy_wh: tuple[float, ...]
    pending_call: str | None = None
    queued_calls: tuple[str, ...] = ()

    @property
    def drained(self) -> bool:
        """Nothing of ours is queued or in flight."""
        return self.outbox == 0 and not self.call_pending
