"""The CS-initiated operations a charger implements: Core, and TriggerMessage (RemoteTrigger).

Each handler answers first and acts after (the reply is on the wire before any message the
operation causes, e.g. TriggerMessage's requested message or RemoteStop's StopTransaction). Rules
(OCPP 1.6 core spec; OCPP16.md §2):

- ChangeAvailability: connector 0 means the whole charge point; an unknown connector is Rejected;
  Inoperative while a transaction runs is Scheduled and applied when it ends; the availability
  survives a reboot.
- ChangeConfiguration / GetConfiguration: the configuration store's answers; write-only values
  are redacted in the ``ConfigurationChanged`` event.
- RemoteStartTransaction: Rejected for an unknown, busy or unavailable connector; else Accepted,
  then the idTag is authorized as if presented locally when ``AuthorizeRemoteTxRequests`` is true,
  or taken as authorized at once. A charging profile in the request is not applied (the charger
  does not implement Smart Charging).
- RemoteStopTransaction: a local stop with reason Remote; Rejected for an unknown transaction.
- Reset: Accepted; transactions stop with SoftReset / HardReset (queued, so they survive the
  reboot); a Hard reset reboots at once and its StopTransactions go out after the reboot, a Soft
  one reboots once the outbox is delivered or after the call timeout.
- UnlockConnector: a running transaction stops with UnlockCommand, and a cable left locked after
  the EV went is released; Unlocked (UnlockFailed for a connector that does not exist).
- TriggerMessage: Rejected for a connectorId that does not exist when the message is
  connector-specific (StatusNotification, MeterValues); ignored otherwise. Before the boot is
  answered Accepted or Pending only a BootNotification may be triggered (others: Rejected).
  StatusNotification without connectorId reports connector 0 and every connector; MeterValues
  uses context Trigger. Diagnostics- and FirmwareStatusNotification report Idle (no upload or
  update is ever running).
- DataTransfer: Accepted for a vendorId listed in the spec, else UnknownVendorId.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

from simulator.events import ConfigurationChanged
from simulator.machines.charger_state import BootState
from simulator.machines.configuration import redact
from simulator.machines.effects import Reboot
from simulator.machines.session import IncomingCall
from simulator.machines.transactions import Transactions
from simulator.ocpp.frames import ErrorCode
from simulator.ocpp.v16 import (
    AvailabilityStatus,
    AvailabilityType,
    BootNotificationRequest,
    ChangeAvailabilityRequest,
    ChangeAvailabilityResponse,
    ChangeConfigurationRequest,
    ChangeConfigurationResponse,
    ClearCacheRequest,
    ClearCacheResponse,
    ClearCacheStatus,
    ConfigurationStatus,
    DataTransferRequest,
    DataTransferResponse,
    DataTransferStatus,
    DiagnosticsStatus,
    DiagnosticsStatusNotificationRequest,
    FirmwareStatus,
    FirmwareStatusNotificationRequest,
    GetConfigurationRequest,
    GetConfigurationResponse,
    HeartbeatRequest,
    MessageTrigger,
    Reason,
    RemoteStartStopStatus,
    RemoteStartTransactionRequest,
    RemoteStartTransactionResponse,
    RemoteStopTransactionRequest,
    RemoteStopTransactionResponse,
    ResetRequest,
    ResetResponse,
    ResetStatus,
    ResetType,
    TriggerMessageRequest,
    TriggerMessageResponse,
    TriggerMessageStatus,
    UnlockConnectorRequest,
    UnlockConnectorResponse,
    UnlockStatus,
)

BOOT: Final = "boot"
"""The context attached to a BootNotification CALL."""

Followup = Callable[[], None] | None
"""What an operation does after its answer is sent."""

_SETTINGS_KEYS = frozenset(
    {"TransactionMessageAttempts", "TransactionMessageRetryInterval", "MinimumStatusDuration"}
)


class Operations(Transactions):
    """The CS→CP operations (see the module docstring) and the reset/reboot sequence."""

    reset_until: float | None = None
    """While a Soft reset waits for the outbox to drain: when it reboots anyway."""
    powered: bool = True
    """False between a Reboot effect and the next ``power_on``."""
    aligned_at: float | None = None
    """The next clock-aligned sampling instant."""

    def handle_call(self, call: IncomingCall, now: float) -> None:
        """Answer one valid CS→CP CALL, then carry out what it asks."""
        request = call.request
        followup: Followup = None
        response: msgspec.Struct
        match request:
            case ChangeAvailabilityRequest():
                response, followup = self._change_availability(request, now)
            case ChangeConfigurationRequest():
                response = self._change_configuration(request, now)
            case ClearCacheRequest():
                self.cache.clear()
                response = ClearCacheResponse(status=ClearCacheStatus.ACCEPTED)
            case DataTransferRequest():
                known = request.vendor_id in self.spec.data_transfer_vendors
                response = DataTransferResponse(
                    status=DataTransferStatus.ACCEPTED if known
                    else DataTransferStatus.UNKNOWN_VENDOR_ID
                )
            case GetConfigurationRequest():
                values, unknown = self.config.get(list(request.key) if request.key else None)
                response = GetConfigurationResponse(
                    configuration_key=tuple(values), unknown_key=tuple(unknown) or None
                )
            case RemoteStartTransactionRequest():
                response, followup = self._remote_start(request, now)
            case RemoteStopTransactionRequest():
                response, followup = self._remote_stop(request, now)
            case ResetRequest():
                response = ResetResponse(status=ResetStatus.ACCEPTED)
                kind = request.type
                followup = lambda: self.begin_reset(kind, now)  # noqa: E731
            case UnlockConnectorRequest():
                response, followup = self._unlock(request, now)
            case TriggerMessageRequest():
                response, followup = self._trigger(request, now)
            case _:
                self.session.reply_error(call.unique_id, call.action, ErrorCode.NOT_SUPPORTED,
                                         f"{call.action} is not supported", now)
                return
        self.session.reply(call, response, now)
        if followup is not None:
            followup()

    # --- availability -------------------------------------------------------------------------

    def _change_availability(
        self, request: ChangeAvailabilityRequest, now: float
    ) -> tuple[ChangeAvailabilityResponse, Followup]:
        cid, wanted = request.connector_id, request.type
        if cid not in self.connectors:
            return ChangeAvailabilityResponse(status=AvailabilityStatus.REJECTED), None
        targets = list(self.points) if cid == 0 else [cid]
        busy = [c for c in targets if self.points[c].transaction is not None]
        self.scheduled.pop(cid, None)
        if wanted == AvailabilityType.OPERATIVE:
            for c in targets:
                self.scheduled.pop(c, None)
        if self.availability[cid] == wanted and all(self.availability[c] == wanted
                                                    for c in targets):
            return ChangeAvailabilityResponse(status=AvailabilityStatus.ACCEPTED), None
        if wanted == AvailabilityType.INOPERATIVE and busy:
            self.scheduled[cid] = wanted
            for c in busy:
                self.scheduled[c] = wanted

            def apply_idle() -> None:
                for c in targets:
                    if c not in busy:
                        self.set_availability(c, wanted, now)

            return ChangeAvailabilityResponse(status=AvailabilityStatus.SCHEDULED), apply_idle
        return (
            ChangeAvailabilityResponse(status=AvailabilityStatus.ACCEPTED),
            lambda: self.set_availability(cid, wanted, now),
        )

    # --- configuration ------------------------------------------------------------------------

    def _change_configuration(
        self, request: ChangeConfigurationRequest, now: float
    ) -> ChangeConfigurationResponse:
        status = self.config.change(request.key, request.value)
        self.publish(ConfigurationChanged(t=now, charger=self.charger, key=request.key,
                                          value=redact(request.key, request.value),
                                          status=status.value))
        if status == ConfigurationStatus.ACCEPTED:
            self.configuration_applied(request.key, now)
        return ChangeConfigurationResponse(status=status)

    def configuration_applied(self, key: str, now: float) -> None:
        """A key changed: make the parts that read it follow."""
        if key in _SETTINGS_KEYS:
            self.sync_session_settings()
        elif key == "MeterValueSampleInterval":
            self.reschedule_samples(now)
        elif key == "ClockAlignedDataInterval":
            self.aligned_at = self.next_aligned(now)

    # --- remote start / stop, unlock ----------------------------------------------------------

    def _pick_connector(self) -> int | None:
        """For a RemoteStart without connectorId: a plugged-in idle connector, else a free one."""
        idle = [p for p in self.points.values()
                if p.transaction is None and p.authorizing is None
                and self.operative(p.connector_id)]
        for point in idle:
            if point.ev is not None:
                return point.connector_id
        for point in idle:
            if point.ready_tag is None:
                return point.connector_id
        return None

    def _remote_start(
        self, request: RemoteStartTransactionRequest, now: float
    ) -> tuple[RemoteStartTransactionResponse, Followup]:
        cid = request.connector_id if request.connector_id is not None else self._pick_connector()
        rejected = RemoteStartTransactionResponse(status=RemoteStartStopStatus.REJECTED)
        if cid is None or cid not in self.points:
            return rejected, None
        point = self.points[cid]
        if point.transaction is not None or point.authorizing is not None \
                or not self.operative(cid):
            return rejected, None
        tag = request.id_tag
        if request.charging_profile is not None:
            self.note(now, "charging_profile_ignored", cid, reason="SmartCharging not supported")

        def go() -> None:
            if self.config.get_bool("AuthorizeRemoteTxRequests"):
                self.authorize(cid, tag, now)
            else:
                self.authorized(cid, tag, now)

        return RemoteStartTransactionResponse(status=RemoteStartStopStatus.ACCEPTED), go

    def _remote_stop(
        self, request: RemoteStopTransactionRequest, now: float
    ) -> tuple[RemoteStopTransactionResponse, Followup]:
        tx = self.transaction_by_id(request.transaction_id)
        if tx is None:
            return RemoteStopTransactionResponse(status=RemoteStartStopStatus.REJECTED), None
        cid = tx.connector_id
        return (
            RemoteStopTransactionResponse(status=RemoteStartStopStatus.ACCEPTED),
            lambda: self._stop(cid, now, Reason.REMOTE),
        )

    def _stop(self, connector_id: int, now: float, reason: Reason) -> None:
        self.stop_transaction(connector_id, now, reason)

    def _unlock(
        self, request: UnlockConnectorRequest, now: float
    ) -> tuple[UnlockConnectorResponse, Followup]:
        cid = request.connector_id
        if cid not in self.points:
            return UnlockConnectorResponse(status=UnlockStatus.UNLOCK_FAILED), None
        return (
            UnlockConnectorResponse(status=UnlockStatus.UNLOCKED),
            lambda: self._release(cid, now),
        )

    def _release(self, connector_id: int, now: float) -> None:
        """UnlockConnector: stop the transaction (UnlockCommand) and free a cable left locked
        after the EV went (the connector is Available again once no EV is plugged in)."""
        self.stop_transaction(connector_id, now, Reason.UNLOCK_COMMAND)
        point = self.points[connector_id]
        if point.ev is None and point.finished:
            point.finished = False
            self.refresh_status(connector_id, now)

    # --- trigger ------------------------------------------------------------------------------

    def _trigger(
        self, request: TriggerMessageRequest, now: float
    ) -> tuple[TriggerMessageResponse, Followup]:
        wanted, cid = request.requested_message, request.connector_id
        per_connector = wanted in (MessageTrigger.STATUS_NOTIFICATION,
                                   MessageTrigger.METER_VALUES)
        if per_connector and cid is not None and cid not in self.connectors:
            return TriggerMessageResponse(status=TriggerMessageStatus.REJECTED), None
        registered = self.boot in (BootState.ACCEPTED, BootState.PENDING)
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
                self.send_boot(now)
            case MessageTrigger.HEARTBEAT:
                self.session.call(HeartbeatRequest(), now)
            case MessageTrigger.STATUS_NOTIFICATION:
                for c in sorted(self.connectors) if cid is None else [cid]:
                    report = self.connectors[c].current_notification()
                    self.session.call(report.to_request(self.wall_offset), now)
            case MessageTrigger.METER_VALUES:
                for c in sorted(self.points) if cid in (None, 0) else [cid]:
                    self.triggered_meter_values(c, now)
            case MessageTrigger.DIAGNOSTICS_STATUS_NOTIFICATION:
                self.session.call(
                    DiagnosticsStatusNotificationRequest(status=DiagnosticsStatus.IDLE), now
                )
            case MessageTrigger.FIRMWARE_STATUS_NOTIFICATION:
                self.session.call(
                    FirmwareStatusNotificationRequest(status=FirmwareStatus.IDLE), now
                )
            case _:
                self.note(now, "trigger_not_implemented", requested=str(wanted))

    def send_boot(self, now: float) -> None:
        """Send a BootNotification. Unless the charger is already Accepted (a triggered boot),
        it now waits for the answer (BOOTING); either way the outbox holds until the answer."""
        spec = self.spec
        request = BootNotificationRequest(
            charge_point_vendor=spec.vendor,
            charge_point_model=spec.model,
            charge_point_serial_number=spec.serial_number,
            firmware_version=spec.firmware_version,
            meter_type=spec.meter_type,
            meter_serial_number=spec.meter_serial_number,
        )
        if self.boot != BootState.ACCEPTED:
            self.boot = BootState.BOOTING
        # Transaction messages wait for the answer: a triggered boot may come back Pending
        # or Rejected, and nothing of the outbox may go out then.
        self.session.transactions_enabled = False
        self.boot_at = None
        self.boots_sent += 1
        self.session.call(request, now, context=BOOT)

    # --- reset --------------------------------------------------------------------------------

    def begin_reset(self, kind: ResetType, now: float) -> None:
        """Stop every transaction with SoftReset / HardReset and reboot: at once for Hard; for
        Soft once the outbox is delivered (or after the call timeout)."""
        reason = Reason.HARD_RESET if kind == ResetType.HARD else Reason.SOFT_RESET
        if kind == ResetType.HARD:
            # Down at once: the StopTransactions wait in the outbox and go out after the reboot
            # (sending them now would race the socket being closed and duplicate them).
            self.session.transactions_enabled = False
        self.stop_all(now, reason)
        self.note(now, "reset", type=kind.value)
        if kind == ResetType.HARD:
            self.reboot(now)
        else:
            self.reset_until = now + self.spec.call_timeout
            self.check_reset(now)

    def check_reset(self, now: float) -> None:
        """Reboot a pending Soft reset when its StopTransactions are through (or time is up)."""
        if self.reset_until is None:
            return
        if not self.session.export_outbox() or not self.session.online or now >= self.reset_until:
            self.reboot(now)

    def reboot(self, now: float) -> None:
        """Go down: the actor closes the socket, waits, and calls ``power_on``."""
        self.reset_until = None
        self.boot_at = None
        self.powered = False
        self.effects.append(Reboot(self.spec.reboot_delay))
        self.note(now, "reboot", delay=self.spec.reboot_delay)
