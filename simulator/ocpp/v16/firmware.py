"""Request and response payloads of the OCPP 1.6 Firmware Management profile.

One Struct per schema file (``<Action>.json`` → ``<Action>Request``, ``<Action>Response.json`` →
``<Action>Response``); fields, required-ness and constraints are the official schema's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from simulator.ocpp.v16.base import CiString255, check_member, utc_field
from simulator.ocpp.v16.base import Payload as _Payload
from simulator.ocpp.v16.enums import DiagnosticsStatus, FirmwareStatus

_FIRMWARE_NOTIFICATION_STATUSES: Final = frozenset(
    {
        FirmwareStatus.DOWNLOADED,
        FirmwareStatus.DOWNLOAD_FAILED,
        FirmwareStatus.DOWNLOADING,
        FirmwareStatus.IDLE,
        FirmwareStatus.INSTALLATION_FAILED,
        FirmwareStatus.INSTALLING,
        FirmwareStatus.INSTALLED,
    }
)
"""The statuses FirmwareStatusNotification allows (the security extension's extra ones are not)."""


class DiagnosticsStatusNotificationRequest(_Payload, frozen=True):
    """``DiagnosticsStatusNotification`` request (the CALL payload), CP → CS."""

    status: DiagnosticsStatus


class DiagnosticsStatusNotificationResponse(_Payload, frozen=True):
    """``DiagnosticsStatusNotification`` response (the CALLRESULT payload): an empty object."""


class FirmwareStatusNotificationRequest(_Payload, frozen=True):
    """``FirmwareStatusNotification`` request (the CALL payload), CP → CS."""

    status: FirmwareStatus

    def __post_init__(self) -> None:
        check_member(self.status, _FIRMWARE_NOTIFICATION_STATUSES, "status")


class FirmwareStatusNotificationResponse(_Payload, frozen=True):
    """``FirmwareStatusNotification`` response (the CALLRESULT payload): an empty object."""


class GetDiagnosticsRequest(_Payload, frozen=True):
    """``GetDiagnostics`` request (the CALL payload), CS → CP."""

    location: str
    retries: int | None = None
    retry_interval: int | None = None
    start_time: datetime | None = None
    stop_time: datetime | None = None

    def __post_init__(self) -> None:
        utc_field(self, "start_time")
        utc_field(self, "stop_time")


class GetDiagnosticsResponse(_Payload, frozen=True):
    """``GetDiagnostics`` response (the CALLRESULT payload)."""

    file_name: CiString255 | None = None


class UpdateFirmwareRequest(_Payload, frozen=True):
    """``UpdateFirmware`` request (the CALL payload), CS → CP."""

    location: str
    retrieve_date: datetime
    retries: int | None = None
    retry_interval: int | None = None

    def __post_init__(self) -> None:
        utc_field(self, "retrieve_date")


class UpdateFirmwareResponse(_Payload, frozen=True):
    """``UpdateFirmware`` response (the CALLRESULT payload): an empty object."""
