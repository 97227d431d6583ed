"""Request and response payloads of the OCPP 1.6 security extension (security whitepaper ed. 3).

One Struct per schema file (``<Action>.json`` → ``<Action>Request``, ``<Action>Response.json`` →
``<Action>Response``); fields, required-ness and constraints are the official schema's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from msgspec import Meta

from simulator.ocpp.v16.base import (
    CiString50,
    CiString255,
    String5500,
    String10000,
    check_member,
    utc_field,
)
from simulator.ocpp.v16.base import Payload as _Payload
from simulator.ocpp.v16.datatypes import CertificateHashData, Firmware, LogParameters
from simulator.ocpp.v16.enums import (
    CertificateSignedStatus,
    CertificateStatus,
    CertificateUse,
    DeleteCertificateStatus,
    FirmwareStatus,
    GenericStatus,
    GetInstalledCertificateStatus,
    Log,
    LogStatus,
    MessageTrigger,
    TriggerMessageStatus,
    UpdateFirmwareStatus,
    UploadLogStatus,
)

_EXTENDED_TRIGGERABLE: Final = frozenset(
    {
        MessageTrigger.BOOT_NOTIFICATION,
        MessageTrigger.LOG_STATUS_NOTIFICATION,
        MessageTrigger.FIRMWARE_STATUS_NOTIFICATION,
        MessageTrigger.HEARTBEAT,
        MessageTrigger.METER_VALUES,
        MessageTrigger.SIGN_CHARGE_POINT_CERTIFICATE,
        MessageTrigger.STATUS_NOTIFICATION,
    }
)
"""What ExtendedTriggerMessage may request (its schema leaves out DiagnosticsStatusNotification)."""


class SecurityEventNotificationRequest(_Payload, frozen=True):
    """``SecurityEventNotification`` request (the CALL payload), CP → CS."""

    type: CiString50
    timestamp: datetime
    tech_info: CiString255 | None = None

    def __post_init__(self) -> None:
        utc_field(self, "timestamp")


class SecurityEventNotificationResponse(_Payload, frozen=True):
    """``SecurityEventNotification`` response (the CALLRESULT payload): an empty object."""


class SignCertificateRequest(_Payload, frozen=True):
    """``SignCertificate`` request (the CALL payload), CP → CS."""

    csr: String5500


class SignCertificateResponse(_Payload, frozen=True):
    """``SignCertificate`` response (the CALLRESULT payload)."""

    status: GenericStatus


class LogStatusNotificationRequest(_Payload, frozen=True):
    """``LogStatusNotification`` request (the CALL payload), CP → CS."""

    status: UploadLogStatus
    request_id: int | None = None


class LogStatusNotificationResponse(_Payload, frozen=True):
    """``LogStatusNotification`` response (the CALLRESULT payload): an empty object."""


class SignedFirmwareStatusNotificationRequest(_Payload, frozen=True):
    """``SignedFirmwareStatusNotification`` request (the CALL payload), CP → CS."""

    status: FirmwareStatus
    request_id: int | None = None


class SignedFirmwareStatusNotificationResponse(_Payload, frozen=True):
    """``SignedFirmwareStatusNotification`` response (the CALLRESULT payload): an empty object."""


class ExtendedTriggerMessageRequest(_Payload, frozen=True):
    """``ExtendedTriggerMessage`` request (the CALL payload), CS → CP."""

    requested_message: MessageTrigger
    connector_id: int | None = None

    def __post_init__(self) -> None:
        check_member(self.requested_message, _EXTENDED_TRIGGERABLE, "requestedMessage")


class ExtendedTriggerMessageResponse(_Payload, frozen=True):
    """``ExtendedTriggerMessage`` response (the CALLRESULT payload)."""

    status: TriggerMessageStatus


class CertificateSignedRequest(_Payload, frozen=True):
    """``CertificateSigned`` request (the CALL payload), CS → CP."""

    certificate_chain: String10000


class CertificateSignedResponse(_Payload, frozen=True):
    """``CertificateSigned`` response (the CALLRESULT payload)."""

    status: CertificateSignedStatus


class InstallCertificateRequest(_Payload, frozen=True):
    """``InstallCertificate`` request (the CALL payload), CS → CP."""

    certificate_type: CertificateUse
    certificate: String5500


class InstallCertificateResponse(_Payload, frozen=True):
    """``InstallCertificate`` response (the CALLRESULT payload)."""

    status: CertificateStatus


class DeleteCertificateRequest(_Payload, frozen=True):
    """``DeleteCertificate`` request (the CALL payload), CS → CP."""

    certificate_hash_data: CertificateHashData


class DeleteCertificateResponse(_Payload, frozen=True):
    """``DeleteCertificate`` response (the CALLRESULT payload)."""

    status: DeleteCertificateStatus


class GetInstalledCertificateIdsRequest(_Payload, frozen=True):
    """``GetInstalledCertificateIds`` request (the CALL payload), CS → CP."""

    certificate_type: CertificateUse


class GetInstalledCertificateIdsResponse(_Payload, frozen=True):
    """``GetInstalledCertificateIds`` response (the CALLRESULT payload)."""

    status: GetInstalledCertificateStatus
    certificate_hash_data: Annotated[tuple[CertificateHashData, ...], Meta(min_length=1)] | None = (
        None
    )


class GetLogRequest(_Payload, frozen=True):
    """``GetLog`` request (the CALL payload), CS → CP."""

    log: LogParameters
    log_type: Log
    request_id: int
    retries: int | None = None
    retry_interval: int | None = None


class GetLogResponse(_Payload, frozen=True):
    """``GetLog`` response (the CALLRESULT payload)."""

    status: LogStatus
    filename: CiString255 | None = None


class SignedUpdateFirmwareRequest(_Payload, frozen=True):
    """``SignedUpdateFirmware`` request (the CALL payload), CS → CP."""

    request_id: int
    firmware: Firmware
    retries: int | None = None
    retry_interval: int | None = None


class SignedUpdateFirmwareResponse(_Payload, frozen=True):
    """``SignedUpdateFirmware`` response (the CALLRESULT payload)."""

    status: UpdateFirmwareStatus
