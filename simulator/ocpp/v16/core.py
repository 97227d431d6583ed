"""Request and response payloads of the OCPP 1.6 Core profile.

One Struct per schema file (``<Action>.json`` → ``<Action>Request``, ``<Action>Response.json`` →
``<Action>Response``); fields, required-ness and constraints are the official schema's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from msgspec import Meta

from simulator.ocpp.v16.base import (
    CiString20,
    CiString25,
    CiString50,
    CiString255,
    CiString500,
    check_member,
    check_not_empty,
    utc_field,
)
from simulator.ocpp.v16.base import Payload as _Payload
from simulator.ocpp.v16.datatypes import ChargingProfile, IdTagInfo, KeyValue, MeterValue
from simulator.ocpp.v16.enums import (
    AvailabilityStatus,
    AvailabilityType,
    ChargePointErrorCode,
    ChargePointStatus,
    ClearCacheStatus,
    ConfigurationStatus,
    DataTransferStatus,
    Reason,
    RegistrationStatus,
    RemoteStartStopStatus,
    ResetStatus,
    ResetType,
    UnitOfMeasure,
    UnlockStatus,
)

_STOP_UNITS: Final = frozenset(UnitOfMeasure) - {UnitOfMeasure.HERTZ}
"""StopTransaction's schema lists every unit but ``Hertz`` (MeterValues allows it)."""


class AuthorizeRequest(_Payload, frozen=True):
    """``Authorize`` request (the CALL payload), CP → CS."""

    id_tag: CiString20


class AuthorizeResponse(_Payload, frozen=True):
    """``Authorize`` response (the CALLRESULT payload)."""

    id_tag_info: IdTagInfo


class BootNotificationRequest(_Payload, frozen=True):
    """``BootNotification`` request (the CALL payload), CP → CS."""

    charge_point_vendor: CiString20
    charge_point_model: CiString20
    charge_point_serial_number: CiString25 | None = None
    charge_box_serial_number: CiString25 | None = None
    firmware_version: CiString50 | None = None
    iccid: CiString20 | None = None
    imsi: CiString20 | None = None
    meter_type: CiString25 | None = None
    meter_serial_number: CiString25 | None = None


class BootNotificationResponse(_Payload, frozen=True):
    """``BootNotification`` response (the CALLRESULT payload)."""

    status: RegistrationStatus
    current_time: datetime
    interval: int

    def __post_init__(self) -> None:
        utc_field(self, "current_time")


class DataTransferRequest(_Payload, frozen=True):
    """``DataTransfer`` request (the CALL payload), either way."""

    vendor_id: CiString255
    message_id: CiString50 | None = None
    data: str | None = None


class DataTransferResponse(_Payload, frozen=True):
    """``DataTransfer`` response (the CALLRESULT payload)."""

    status: DataTransferStatus
    data: str | None = None


class HeartbeatRequest(_Payload, frozen=True):
    """``Heartbeat`` request (the CALL payload), CP → CS: an empty object."""


class HeartbeatResponse(_Payload, frozen=True):
    """``Heartbeat`` response (the CALLRESULT payload)."""

    current_time: datetime

    def __post_init__(self) -> None:
        utc_field(self, "current_time")


class MeterValuesRequest(_Payload, frozen=True):
    """``MeterValues`` request (the CALL payload), CP → CS."""

    connector_id: int
    meter_value: Annotated[tuple[MeterValue, ...], Meta(min_length=1)]
    transaction_id: int | None = None

    def __post_init__(self) -> None:
        for meter_value in self.meter_value:
            check_not_empty(meter_value.sampled_value, "sampledValue")


class MeterValuesResponse(_Payload, frozen=True):
    """``MeterValues`` response (the CALLRESULT payload): an empty object."""


class StartTransactionRequest(_Payload, frozen=True):
    """``StartTransaction`` request (the CALL payload), CP → CS."""

    connector_id: int
    id_tag: CiString20
    meter_start: int
    timestamp: datetime
    reservation_id: int | None = None

    def __post_init__(self) -> None:
        utc_field(self, "timestamp")


class StartTransactionResponse(_Payload, frozen=True):
    """``StartTransaction`` response (the CALLRESULT payload)."""

    id_tag_info: IdTagInfo
    transaction_id: int


class StatusNotificationRequest(_Payload, frozen=True):
    """``StatusNotification`` request (the CALL payload), CP → CS."""

    connector_id: int
    error_code: ChargePointErrorCode
    status: ChargePointStatus
    info: CiString50 | None = None
    timestamp: datetime | None = None
    vendor_id: CiString255 | None = None
    vendor_error_code: CiString50 | None = None

    def __post_init__(self) -> None:
        utc_field(self, "timestamp")


class StatusNotificationResponse(_Payload, frozen=True):
    """``StatusNotification`` response (the CALLRESULT payload): an empty object."""


class StopTransactionRequest(_Payload, frozen=True):
    """``StopTransaction`` request (the CALL payload), CP → CS."""

    meter_stop: int
    timestamp: datetime
    transaction_id: int
    id_tag: CiString20 | None = None
    reason: Reason | None = None
    transaction_data: tuple[MeterValue, ...] | None = None

    def __post_init__(self) -> None:
        utc_field(self, "timestamp")
        for meter_value in self.transaction_data or ():
            for sampled in meter_value.sampled_value:
                if sampled.unit is not None:
                    check_member(sampled.unit, _STOP_UNITS, "unit")


class StopTransactionResponse(_Payload, frozen=True):
    """``StopTransaction`` response (the CALLRESULT payload)."""

    id_tag_info: IdTagInfo | None = None


class ChangeAvailabilityRequest(_Payload, frozen=True):
    """``ChangeAvailability`` request (the CALL payload), CS → CP."""

    connector_id: int
    type: AvailabilityType


class ChangeAvailabilityResponse(_Payload, frozen=True):
    """``ChangeAvailability`` response (the CALLRESULT payload)."""

    status: AvailabilityStatus


class ChangeConfigurationRequest(_Payload, frozen=True):
    """``ChangeConfiguration`` request (the CALL payload), CS → CP."""

    key: CiString50
    value: CiString500


class ChangeConfigurationResponse(_Payload, frozen=True):
    """``ChangeConfiguration`` response (the CALLRESULT payload)."""

    status: ConfigurationStatus


class ClearCacheRequest(_Payload, frozen=True):
    """``ClearCache`` request (the CALL payload), CS → CP: an empty object."""


class ClearCacheResponse(_Payload, frozen=True):
    """``ClearCache`` response (the CALLRESULT payload)."""

    status: ClearCacheStatus


class GetConfigurationRequest(_Payload, frozen=True):
    """``GetConfiguration`` request (the CALL payload), CS → CP."""

    key: tuple[CiString50, ...] | None = None


class GetConfigurationResponse(_Payload, frozen=True):
    """``GetConfiguration`` response (the CALLRESULT payload)."""

    configuration_key: tuple[KeyValue, ...] | None = None
    unknown_key: tuple[CiString50, ...] | None = None


class RemoteStartTransactionRequest(_Payload, frozen=True):
    """``RemoteStartTransaction`` request (the CALL payload), CS → CP."""

    id_tag: CiString20
    connector_id: int | None = None
    charging_profile: ChargingProfile | None = None


class RemoteStartTransactionResponse(_Payload, frozen=True):
    """``RemoteStartTransaction`` response (the CALLRESULT payload)."""

    status: RemoteStartStopStatus


class RemoteStopTransactionRequest(_Payload, frozen=True):
    """``RemoteStopTransaction`` request (the CALL payload), CS → CP."""

    transaction_id: int


class RemoteStopTransactionResponse(_Payload, frozen=True):
    """``RemoteStopTransaction`` response (the CALLRESULT payload)."""

    status: RemoteStartStopStatus


class ResetRequest(_Payload, frozen=True):
    """``Reset`` request (the CALL payload), CS → CP."""

    type: ResetType


class ResetResponse(_Payload, frozen=True):
    """``Reset`` response (the CALLRESULT payload)."""

    status: ResetStatus


class UnlockConnectorRequest(_Payload, frozen=True):
    """``UnlockConnector`` request (the CALL payload), CS → CP."""

    connector_id: int


class UnlockConnectorResponse(_Payload, frozen=True):
    """``UnlockConnector`` response (the CALLRESULT payload)."""

    status: UnlockStatus
