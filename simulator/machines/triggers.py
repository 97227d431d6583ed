"""Sending a message the central system asked for: the part TriggerMessage (RemoteTrigger) and
ExtendedTriggerMessage (the Security extension) share.

Rules (OCPP 1.6 core spec §5.17, security whitepaper §4.3 and §5.x):

- the connector rules: StatusNotification without connectorId reports connector 0 and every
  connector; MeterValues without one (or with 0) reports every connector, with context Trigger;
  a connectorId is ignored by the messages that are not per connector;
- a job's notification reports the job's current status (:class:`~.parts.Activities`), Idle
  when no such job runs: DiagnosticsStatusNotification, FirmwareStatusNotification,
  LogStatusNotification (with the job's ``requestId``) and SignedFirmwareStatusNotification
  (ExtendedTriggerMessage's FirmwareStatusNotification: the signed update's status, else an
  unsigned update's, without a ``requestId``).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Final

from simulator.machines.context import ChargerContext
from simulator.machines.metering import Metering
from simulator.ocpp.v16 import (
    DiagnosticsStatus,
    DiagnosticsStatusNotificationRequest,
    FirmwareStatus,
    FirmwareStatusNotificationRequest,
    HeartbeatRequest,
    LogStatusNotificationRequest,
    MessageTrigger,
    SignedFirmwareStatusNotificationRequest,
    UploadLogStatus,
)

PER_CONNECTOR: Final = frozenset({MessageTrigger.STATUS_NOTIFICATION, MessageTrigger.METER_VALUES})
"""The requested messages a connectorId applies to."""


class Triggers:
    """Sends the messages a trigger asks for (see the module docstring)."""

    def __init__(self, ctx: ChargerContext, *, metering: Metering) -> None:
        self.ctx = ctx
        self.metering = metering

    def send(self, wanted: MessageTrigger, cid: int | None, now: float, *,
             signed: bool = False) -> bool:
        """Send the message ``wanted`` asks for, for connector ``cid`` where that applies
        (``signed``: an ExtendedTriggerMessage, whose FirmwareStatusNotification is the
        SignedFirmwareStatusNotification). False for a message this part does not send
        (SignChargePointCertificate: the Security handler's own)."""
        ctx = self.ctx
        cid = cid if wanted in PER_CONNECTOR else None
        match wanted:
            case MessageTrigger.BOOT_NOTIFICATION:
                ctx.send_boot(now)
            case MessageTrigger.HEARTBEAT:
                ctx.session.call(HeartbeatRequest(), now)
            case MessageTrigger.STATUS_NOTIFICATION:
                for c in sorted(ctx.connectors) if cid is None else [cid]:
                    report = ctx.connectors[c].current_notification()
                    ctx.session.call(ctx.status_request(report, now), now)
            case MessageTrigger.METER_VALUES:
                for c in sorted(ctx.points) if cid in (None, 0) else [cid]:
                    self.metering.triggered_meter_values(c, now)
            case MessageTrigger.DIAGNOSTICS_STATUS_NOTIFICATION:
                ctx.session.call(DiagnosticsStatusNotificationRequest(
                    status=ctx.activities.diagnostics or DiagnosticsStatus.IDLE), now)
            case MessageTrigger.FIRMWARE_STATUS_NOTIFICATION if signed:
                status, request_id = ctx.activities.signed_firmware or (
                    ctx.activities.firmware or FirmwareStatus.IDLE, None)
                ctx.session.call(SignedFirmwareStatusNotificationRequest(
                    status=status, request_id=request_id), now)
            case MessageTrigger.FIRMWARE_STATUS_NOTIFICATION:
                ctx.session.call(FirmwareStatusNotificationRequest(
                    status=ctx.activities.firmware or FirmwareStatus.IDLE), now)
            case MessageTrigger.LOG_STATUS_NOTIFICATION:
                log_status, log_id = ctx.activities.log or (UploadLogStatus.IDLE, None)
                ctx.session.call(LogStatusNotificationRequest(
                    status=log_status, request_id=log_id), now)
            case _:
                return False
        return True
