"""The RemoteTrigger profile: TriggerMessage.

Rules (OCPP 1.6 core spec §5.17):

- Rejected for a connectorId that does not exist when the message is connector-specific
  (StatusNotification, MeterValues); the connectorId is ignored otherwise.
- Before the boot is answered Accepted or Pending only a BootNotification may be triggered
  (others: Rejected).
- The requested message goes out after the answer. StatusNotification without connectorId
  reports connector 0 and every connector; MeterValues uses context Trigger (every connector for
  none or 0). Diagnostics- and FirmwareStatusNotification report Idle (no upload or update is
  ever running).
"""

from __future__ import annotations

import msgspec

from simulator.machines.context import ChargerContext
from simulator.machines.metering import Metering
from simulator.machines.parts import BootState
from simulator.machines.profiles import Answer, ProfileHandler
from simulator.ocpp.v16 import (
    DiagnosticsStatus,
    DiagnosticsStatusNotificationRequest,
    FirmwareStatus,
    FirmwareStatusNotificationRequest,
    HeartbeatRequest,
    MessageTrigger,
    Profile,
    TriggerMessageRequest,
    TriggerMessageResponse,
    TriggerMessageStatus,
)


class RemoteTriggerHandler(ProfileHandler):
    """TriggerMessage (see the module docstring)."""

    profile = Profile.REMOTE_TRIGGER

    def __init__(self, ctx: ChargerContext, *, metering: Metering) -> None:
        super().__init__(ctx)
        self.metering = metering

    def answer(self, request: msgspec.Struct, now: float) -> Answer | None:
        """The response to TriggerMessage and the triggered message to send once it is out."""
        if not isinstance(request, TriggerMessageRequest):
            return None
        wanted, cid = request.requested_message, request.connector_id
        per_connector = wanted in (MessageTrigger.STATUS_NOTIFICATION,
                                   MessageTrigger.METER_VALUES)
        if per_connector and cid is not None and cid not in self.ctx.connectors:
            return TriggerMessageResponse(status=TriggerMessageStatus.REJECTED), None
        registered = self.ctx.boot in (BootState.ACCEPTED, BootState.PENDING)
        if not registered and wanted != MessageTrigger.BOOT_NOTIFICATION:
            # Nothing but a BootNotification may go out before the boot is Accepted/Pending.
            return TriggerMessageResponse(status=TriggerMessageStatus.REJECTED), None

        def send() -> None:
            self.send_triggered(wanted, cid if per_connector else None, now)

        return TriggerMessageResponse(status=TriggerMessageStatus.ACCEPTED), send

    def send_triggered(self, wanted: MessageTrigger, cid: int | None, now: float) -> None:
        """Send the message a TriggerMessage asked for."""
        match wanted:
            case MessageTrigger.BOOT_NOTIFICATION:
                self.ctx.send_boot(now)
            case MessageTrigger.HEARTBEAT:
                self.ctx.session.call(HeartbeatRequest(), now)
            case MessageTrigger.STATUS_NOTIFICATION:
                for c in sorted(self.ctx.connectors) if cid is None else [cid]:
                    report = self.ctx.connectors[c].current_notification()
                    self.ctx.session.call(self.ctx.status_request(report, now), now)
            case MessageTrigger.METER_VALUES:
                for c in sorted(self.ctx.points) if cid in (None, 0) else [cid]:
                    self.metering.triggered_meter_values(c, now)
            case MessageTrigger.DIAGNOSTICS_STATUS_NOTIFICATION:
                self.ctx.session.call(
                    DiagnosticsStatusNotificationRequest(status=DiagnosticsStatus.IDLE), now
                )
            case MessageTrigger.FIRMWARE_STATUS_NOTIFICATION:
                self.ctx.session.call(
                    FirmwareStatusNotificationRequest(status=FirmwareStatus.IDLE), now
                )
            case _:
                self.ctx.note(now, "trigger_not_implemented", requested=str(wanted))
