"""What the reference CSMS answers to each CALL a charge point sends, and the state it keeps.

:class:`Answers` turns one decoded CP→CS request into its response, updating the per-charger
records (:class:`ChargerRecord`) and the :class:`~simulator.csms.transaction_book.TransactionBook`
and reporting anomalies through the :class:`Turn` of the frame. The rules are OCPP 1.6's, so the
request and response Structs are 1.6's; the action table comes from the version's plugin.
Pure: no clock (``now`` and the wall clock come in), no I/O.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from simulator.csms.options import BootStatus, CsmsOptions
from simulator.csms.records import Anomaly, AnomalyKind, ConnectorState
from simulator.csms.rules import matches, tag_status, timestamp_anomalies
from simulator.csms.transaction_book import TransactionBook
from simulator.events import CsmsNote, Event
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import (
    AuthorizationStatus,
    AuthorizeRequest,
    AuthorizeResponse,
    BootNotificationRequest,
    BootNotificationResponse,
    DataTransferRequest,
    DataTransferResponse,
    DataTransferStatus,
    DiagnosticsStatusNotificationRequest,
    DiagnosticsStatusNotificationResponse,
    FirmwareStatusNotificationRequest,
    FirmwareStatusNotificationResponse,
    GenericStatus,
    HeartbeatRequest,
    HeartbeatResponse,
    IdTagInfo,
    LogStatusNotificationRequest,
    LogStatusNotificationResponse,
    MeterValuesRequest,
    MeterValuesResponse,
    RegistrationStatus,
    SecurityEventNotificationRequest,
    SecurityEventNotificationResponse,
    SignCertificateRequest,
    SignCertificateResponse,
    SignedFirmwareStatusNotificationRequest,
    SignedFirmwareStatusNotificationResponse,
    StartTransactionRequest,
    StartTransactionResponse,
    StatusNotificationRequest,
    StatusNotificationResponse,
    StopTransactionRequest,
    StopTransactionResponse,
)

# --- mutable bookkeeping (never handed out: see simulator.csms.records for the snapshots) ------


@dataclasses.dataclass(slots=True)
class Outstanding:
    """The CS→CP CALL waiting for its answer on a connection."""

    unique_id: str
    action: str
    sent_at: float


@dataclasses.dataclass(slots=True)
class ChargerRecord:
    """What the CSMS knows about one charge point (by identity); survives its sessions."""

    identity: str
    anomalies: collections.deque[Anomaly]
    session: int = 0
    connected: bool = False
    connections: int = 0
    replaced: int = 0
    boots: int = 0
    boot_status: str | None = None
    vendor: str | None = None
    model: str | None = None
    firmware_version: str | None = None
    firmware_status: str | None = None
    diagnostics_status: str | None = None
    last_seen: float | None = None
    last_call_id: str | None = None
    outstanding: Outstanding | None = None
    connectors: dict[int, ConnectorState] = dataclasses.field(default_factory=dict)
    anomaly_counts: collections.Counter[str] = dataclasses.field(
        default_factory=collections.Counter
    )


@dataclasses.dataclass(slots=True)
class Turn:
    """The context of one received frame: who, when, and what to publish about it."""

    charger: ChargerRecord
    now: float
    totals: collections.Counter[str]
    events: list[Event] = dataclasses.field(default_factory=list)
    violations: list[str] = dataclasses.field(default_factory=list)

    def report(self, kind: AnomalyKind, /, **detail: Any) -> None:
        """Record an anomaly of this turn's charger (kept, counted and published)."""
        charger = self.charger
        charger.anomalies.append(
            Anomaly(t=self.now, charger=charger.identity, kind=kind, detail=detail)
        )
        charger.anomaly_counts[str(kind)] += 1
        self.totals[str(kind)] += 1
        self.events.append(CsmsNote(
            t=self.now, charger=charger.identity, what="anomaly",
            data={"anomaly": str(kind), **detail},
        ))


class Answers:
    """The CP→CS answers (see the module docstring).

    Args:
        options: the CSMS's behaviour.
        book: where transactions are recorded (and their ids allocated).
        wall: the CSMS's wall clock at a monotonic ``now`` (aware, UTC).
        plugin: the protocol version (its action table gives the empty answers).
    """

    def __init__(
        self,
        options: CsmsOptions,
        book: TransactionBook,
        wall: Callable[[float], datetime],
        plugin: ProtocolPlugin,
    ) -> None:
        self.options = options
        self.book = book
        self.wall = wall
        self.plugin = plugin

    def answer(self, turn: Turn, request: msgspec.Struct) -> msgspec.Struct:
        """The response to a valid request. Raises ``TypeError`` for a request with no handler
        and whatever a bookkeeping step raises (the caller turns it into InternalError)."""
        match request:
            case HeartbeatRequest():
                return HeartbeatResponse(current_time=self.wall(turn.now))
            case BootNotificationRequest():
                return self._boot(
                    turn, request.charge_point_vendor, request.charge_point_model,
                    request.firmware_version,
                )
            case AuthorizeRequest():
                return AuthorizeResponse(id_tag_info=self._id_tag_info(request.id_tag))
            case StatusNotificationRequest():
                return self._status(turn, request)
            case StartTransactionRequest():
                return self._start(turn, request)
            case MeterValuesRequest():
                return self._meter_values(turn, request)
            case StopTransactionRequest():
                return self._stop(turn, request)
            case DataTransferRequest():
                known = matches(request.vendor_id, self.options.data_transfer_vendors)
                return DataTransferResponse(
                    status=DataTransferStatus.ACCEPTED if known
                    else DataTransferStatus.UNKNOWN_VENDOR_ID
                )
            case FirmwareStatusNotificationRequest():
                turn.charger.firmware_status = str(request.status)
                return FirmwareStatusNotificationResponse()
            case DiagnosticsStatusNotificationRequest():
                turn.charger.diagnostics_status = str(request.status)
                return DiagnosticsStatusNotificationResponse()
            case SecurityEventNotificationRequest():
                self._check_time(turn, request.timestamp, "SecurityEventNotification")
                return SecurityEventNotificationResponse()
            case SignCertificateRequest():
                return SignCertificateResponse(status=self._sign_status())
            case LogStatusNotificationRequest():
                return LogStatusNotificationResponse()
            case SignedFirmwareStatusNotificationRequest():
                turn.charger.firmware_status = str(request.status)
                return SignedFirmwareStatusNotificationResponse()
        raise TypeError(f"no handler for {type(request).__name__}")

    def fallback(self, turn: Turn, action: str) -> msgspec.Struct:
        """The answer to a CALL of ``action`` whose payload broke the schema (``validate`` off):
        as if it carried nothing usable (see :meth:`CentralSystem.receive`)."""
        invalid = IdTagInfo(status=AuthorizationStatus.INVALID)
        match action:
            case "BootNotification":
                return self._boot(turn, None, None, None)
            case "Heartbeat":
                return HeartbeatResponse(current_time=self.wall(turn.now))
            case "Authorize":
                return AuthorizeResponse(id_tag_info=invalid)
            case "StartTransaction":
                return StartTransactionResponse(
                    id_tag_info=invalid,
                    transaction_id=self.book.allocate_id(turn.charger.identity),
                )
            case "StopTransaction":
                return StopTransactionResponse(id_tag_info=invalid)
            case "DataTransfer":
                return DataTransferResponse(status=DataTransferStatus.REJECTED)
            case "SignCertificate":
                return SignCertificateResponse(status=GenericStatus.REJECTED)
        response: msgspec.Struct = self.plugin.actions[action].response()
        return response

    # --- one per action -------------------------------------------------------------------------

    def _boot(
        self, turn: Turn, vendor: str | None, model: str | None, firmware: str | None
    ) -> BootNotificationResponse:
        charger, options = turn.charger, self.options
        charger.boots += 1
        charger.vendor, charger.model, charger.firmware_version = vendor, model, firmware
        if options.pending_then_accept_after is not None:
            accepted = charger.boots > options.pending_then_accept_after
            status = BootStatus.ACCEPTED if accepted else BootStatus.PENDING
        else:
            status = options.boot_status
        charger.boot_status = status
        interval = (
            options.heartbeat_interval if status == BootStatus.ACCEPTED
            else options.boot_retry_interval
        )
        return BootNotificationResponse(
            status=RegistrationStatus(status), current_time=self.wall(turn.now),
            interval=interval,
        )

    def _status(self, turn: Turn, request: StatusNotificationRequest) -> msgspec.Struct:
        if request.timestamp is not None:
            self._check_time(turn, request.timestamp, "StatusNotification")
        turn.charger.connectors[request.connector_id] = ConnectorState(
            status=str(request.status), error_code=str(request.error_code), updated_at=turn.now,
            info=request.info, timestamp=request.timestamp,
        )
        return StatusNotificationResponse()

    def _start(self, turn: Turn, request: StartTransactionRequest) -> StartTransactionResponse:
        self._check_time(turn, request.timestamp, "StartTransaction")
        transaction_id, status = self.book.start(
            turn.charger.identity, request, tag_status(self.options, request.id_tag), turn.now,
            turn.report,
        )
        return StartTransactionResponse(
            id_tag_info=IdTagInfo(status=AuthorizationStatus(status)),
            transaction_id=transaction_id,
        )

    def _meter_values(self, turn: Turn, request: MeterValuesRequest) -> MeterValuesResponse:
        for meter_value in request.meter_value:
            self._check_time(turn, meter_value.timestamp, "MeterValues")
        self.book.meter_values(
            turn.charger.identity, request.connector_id, request.transaction_id,
            request.meter_value, turn.report,
        )
        return MeterValuesResponse()

    def _stop(self, turn: Turn, request: StopTransactionRequest) -> StopTransactionResponse:
        self._check_time(turn, request.timestamp, "StopTransaction")
        self.book.stop(turn.charger.identity, request, turn.now, turn.report)
        info = None if request.id_tag is None else self._id_tag_info(request.id_tag)
        return StopTransactionResponse(id_tag_info=info)

    # --- helpers --------------------------------------------------------------------------------

    def _id_tag_info(self, id_tag: str) -> IdTagInfo:
        """The tag rules' answer (ConcurrentTx is for starts only: see TransactionBook)."""
        return IdTagInfo(status=AuthorizationStatus(tag_status(self.options, id_tag)))

    def _sign_status(self) -> GenericStatus:
        accepted = self.options.sign_certificate_accepted
        return GenericStatus.ACCEPTED if accepted else GenericStatus.REJECTED

    def _check_time(self, turn: Turn, timestamp: datetime, action: str) -> None:
        wall = self.wall(turn.now)
        for kind in timestamp_anomalies(timestamp, wall, self.options.max_clock_skew):
            turn.report(kind, action=action, timestamp=timestamp.isoformat())
