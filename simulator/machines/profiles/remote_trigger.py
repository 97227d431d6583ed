"""The RemoteTrigger profile: TriggerMessage.

Rules (OCPP 1.6 core spec §5.17):

- Rejected for a connectorId that does not exist when the message is connector-specific
  (StatusNotification, MeterValues); the connectorId is ignored otherwise.
- Before the boot is answered Accepted or Pending only a BootNotification may be triggered
  (others: Rejected).
- The requested message goes out after the answer. StatusNotification without connectorId
  reports connector 0 and every connector; MeterValues uses context Trigger (every connector for
  none or 0). Diagnostics- and FirmwareStatusNotification report the running job's status, or
  Idle (:mod:`simulator.machines.triggers`).
"""

from __future__ import annotations

import msgspec

from simulator.machines.context import ChargerContext
from simulator.machines.parts import BootState
from simulator.machines.profiles import Answer, ProfileHandler
from simulator.machines.triggers import PER_CONNECTOR, Triggers
from simulator.ocpp.v16 import (
    MessageTrigger,
    Profile,
    TriggerMessageRequest,
    TriggerMessageResponse,
    TriggerMessageStatus,
)


class RemoteTriggerHandler(ProfileHandler):
    """TriggerMessage (see the module docstring)."""

    profile = Profile.REMOTE_TRIGGER

    def __init__(self, ctx: ChargerContext, *, triggers: Triggers) -> None:
        super().__init__(ctx)
        self.triggers = triggers

    def answer(self, request: msgspec.Struct, now: float) -> Answer | None:
        """The response to TriggerMessage and the triggered message to send once it is out."""
        if not isinstance(request, TriggerMessageRequest):
            return None
        wanted, cid = request.requested_message, request.connector_id
        per_connector = wanted in PER_CONNECTOR
        if per_connector and cid is not None and cid not in self.ctx.connectors:
            return TriggerMessageResponse(status=TriggerMessageStatus.REJECTED), None
        registered = self.ctx.boot in (BootState.ACCEPTED, BootState.PENDING)
        if not registered and wanted != MessageTrigger.BOOT_NOTIFICATION:
            # Nothing but a BootNotification may go out before the boot is Accepted/Pending.
            return TriggerMessageResponse(status=TriggerMessageStatus.REJECTED), None

        def send() -> None:
            self.triggers.send(wanted, cid, now)

        return TriggerMessageResponse(status=TriggerMessageStatus.ACCEPTED), send
