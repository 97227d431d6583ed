"""The OCPP 1.6 action registry: every action's request and response types, sender and profile.

``ACTIONS`` is the single source of truth for which actions exist (28 of the core spec and 11 of
the security extension, one per pair of official schema files); the codec builds its decoders from
it and the tests prove it matches the schema folder exactly.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import msgspec

from simulator.ocpp.plugin import ActionSpec, Direction
from simulator.ocpp.v16 import (
    core,
    firmware,
    local_auth_list,
    remote_trigger,
    reservation,
    security,
    smart_charging,
)


class Profile(enum.StrEnum):
    """The 1.6 feature profiles, plus the security extension (values are the spec's names, as
    listed in ``SupportedFeatureProfiles``)."""

    CORE = "Core"
    FIRMWARE_MANAGEMENT = "FirmwareManagement"
    LOCAL_AUTH_LIST_MANAGEMENT = "LocalAuthListManagement"
    RESERVATION = "Reservation"
    SMART_CHARGING = "SmartCharging"
    REMOTE_TRIGGER = "RemoteTrigger"
    SECURITY = "Security"


_CP: Final = Direction.CP_TO_CS
_CS: Final = Direction.CS_TO_CP
_BOTH: Final = Direction.BOTH

ACTIONS: Final[Mapping[str, ActionSpec]] = MappingProxyType(
    {
        spec.action: spec
        for spec in (
            # Core
            ActionSpec(
                "Authorize", core.AuthorizeRequest, core.AuthorizeResponse, _CP, Profile.CORE
            ),
            ActionSpec(
                "BootNotification",
                core.BootNotificationRequest,
                core.BootNotificationResponse,
                _CP,
                Profile.CORE,
            ),
            ActionSpec(
                "DataTransfer",
                core.DataTransferRequest,
                core.DataTransferResponse,
                _BOTH,
                Profile.CORE,
            ),
            ActionSpec(
                "Heartbeat", core.HeartbeatRequest, core.HeartbeatResponse, _CP, Profile.CORE
            ),
            ActionSpec(
                "MeterValues", core.MeterValuesRequest, core.MeterValuesResponse, _CP, Profile.CORE
            ),
            ActionSpec(
                "StartTransaction",
                core.StartTransactionRequest,
                core.StartTransactionResponse,
                _CP,
                Profile.CORE,
            ),
            ActionSpec(
                "StatusNotification",
                core.StatusNotificationRequest,
                core.StatusNotificationResponse,
                _CP,
                Profile.CORE,
            ),
            ActionSpec(
                "StopTransaction",
                core.StopTransactionRequest,
                core.StopTransactionResponse,
                _CP,
                Profile.CORE,
            ),
            ActionSpec(
                "ChangeAvailability",
                core.ChangeAvailabilityRequest,
                core.ChangeAvailabilityResponse,
                _CS,
                Profile.CORE,
            ),
            ActionSpec(
                "ChangeConfiguration",
                core.ChangeConfigurationRequest,
                core.ChangeConfigurationResponse,
                _CS,
                Profile.CORE,
            ),
            ActionSpec(
                "ClearCache", core.ClearCacheRequest, core.ClearCacheResponse, _CS, Profile.CORE
            ),
            ActionSpec(
                "GetConfiguration",
                core.GetConfigurationRequest,
                core.GetConfigurationResponse,
                _CS,
                Profile.CORE,
            ),
            ActionSpec(
                "RemoteStartTransaction",
                core.RemoteStartTransactionRequest,
                core.RemoteStartTransactionResponse,
                _CS,
                Profile.CORE,
            ),
            ActionSpec(
                "RemoteStopTransaction",
                core.RemoteStopTransactionRequest,
                core.RemoteStopTransactionResponse,
                _CS,
                Profile.CORE,
            ),
            ActionSpec("Reset", core.ResetRequest, core.ResetResponse, _CS, Profile.CORE),
            ActionSpec(
                "UnlockConnector",
                core.UnlockConnectorRequest,
                core.UnlockConnectorResponse,
                _CS,
                Profile.CORE,
            ),
            # FirmwareManagement
            ActionSpec(
                "DiagnosticsStatusNotification",
                firmware.DiagnosticsStatusNotificationRequest,
                firmware.DiagnosticsStatusNotificationResponse,
                _CP,
                Profile.FIRMWARE_MANAGEMENT,
            ),
            ActionSpec(
                "FirmwareStatusNotification",
                firmware.FirmwareStatusNotificationRequest,
                firmware.FirmwareStatusNotificationResponse,
                _CP,
                Profile.FIRMWARE_MANAGEMENT,
            ),
            ActionSpec(
                "GetDiagnostics",
                firmware.GetDiagnosticsRequest,
                firmware.GetDiagnosticsResponse,
                _CS,
                Profile.FIRMWARE_MANAGEMENT,
            ),
            ActionSpec(
                "UpdateFirmware",
                firmware.UpdateFirmwareRequest,
                firmware.UpdateFirmwareResponse,
                _CS,
                Profile.FIRMWARE_MANAGEMENT,
            ),
            # LocalAuthListManagement
            ActionSpec(
                "GetLocalListVersion",
                local_auth_list.GetLocalListVersionRequest,
                local_auth_list.GetLocalListVersionResponse,
                _CS,
                Profile.LOCAL_AUTH_LIST_MANAGEMENT,
            ),
            ActionSpec(
                "SendLocalList",
                local_auth_list.SendLocalListRequest,
                local_auth_list.SendLocalListResponse,
                _CS,
                Profile.LOCAL_AUTH_LIST_MANAGEMENT,
            ),
            # Reservation
            ActionSpec(
                "ReserveNow",
                reservation.ReserveNowRequest,
                reservation.ReserveNowResponse,
                _CS,
                Profile.RESERVATION,
            ),
            ActionSpec(
                "CancelReservation",
                reservation.CancelReservationRequest,
                reservation.CancelReservationResponse,
                _CS,
                Profile.RESERVATION,
            ),
            # SmartCharging
            ActionSpec(
                "SetChargingProfile",
                smart_charging.SetChargingProfileRequest,
                smart_charging.SetChargingProfileResponse,
                _CS,
                Profile.SMART_CHARGING,
            ),
            ActionSpec(
                "ClearChargingProfile",
                smart_charging.ClearChargingProfileRequest,
                smart_charging.ClearChargingProfileResponse,
                _CS,
                Profile.SMART_CHARGING,
            ),
            ActionSpec(
                "GetCompositeSchedule",
                smart_charging.GetCompositeScheduleRequest,
                smart_charging.GetCompositeScheduleResponse,
                _CS,
                Profile.SMART_CHARGING,
            ),
            # RemoteTrigger
            ActionSpec(
                "TriggerMessage",
                remote_trigger.TriggerMessageRequest,
                remote_trigger.TriggerMessageResponse,
                _CS,
                Profile.REMOTE_TRIGGER,
            ),
            # Security
            ActionSpec(
                "SecurityEventNotification",
                security.SecurityEventNotificationRequest,
                security.SecurityEventNotificationResponse,
                _CP,
                Profile.SECURITY,
            ),
            ActionSpec(
                "SignCertificate",
                security.SignCertificateRequest,
                security.SignCertificateResponse,
                _CP,
                Profile.SECURITY,
            ),
            ActionSpec(
                "LogStatusNotification",
                security.LogStatusNotificationRequest,
                security.LogStatusNotificationResponse,
                _CP,
                Profile.SECURITY,
            ),
            ActionSpec(
                "SignedFirmwareStatusNotification",
                security.SignedFirmwareStatusNotificationRequest,
                security.SignedFirmwareStatusNotificationResponse,
                _CP,
                Profile.SECURITY,
            ),
            ActionSpec(
                "ExtendedTriggerMessage",
                security.ExtendedTriggerMessageRequest,
                security.ExtendedTriggerMessageResponse,
                _CS,
                Profile.SECURITY,
            ),
            ActionSpec(
                "CertificateSigned",
                security.CertificateSignedRequest,
                security.CertificateSignedResponse,
                _CS,
                Profile.SECURITY,
            ),
            ActionSpec(
                "InstallCertificate",
                security.InstallCertificateRequest,
                security.InstallCertificateResponse,
                _CS,
                Profile.SECURITY,
            ),
            ActionSpec(
                "DeleteCertificate",
                security.DeleteCertificateRequest,
                security.DeleteCertificateResponse,
                _CS,
                Profile.SECURITY,
            ),
            ActionSpec(
                "GetInstalledCertificateIds",
                security.GetInstalledCertificateIdsRequest,
                security.GetInstalledCertificateIdsResponse,
                _CS,
                Profile.SECURITY,
            ),
            ActionSpec(
                "GetLog", security.GetLogRequest, security.GetLogResponse, _CS, Profile.SECURITY
            ),
            ActionSpec(
                "SignedUpdateFirmware",
                security.SignedUpdateFirmwareRequest,
                security.SignedUpdateFirmwareResponse,
                _CS,
                Profile.SECURITY,
            ),
        )
    }
)
"""Every OCPP 1.6 action by its wire name (immutable)."""

_ACTION_BY_TYPE: Final[Mapping[type[msgspec.Struct], str]] = MappingProxyType(
    {t: spec.action for spec in ACTIONS.values() for t in (spec.request, spec.response)}
)


def action_of(payload: msgspec.Struct | type[msgspec.Struct]) -> str:
    """The action name of a request or response Struct, given an instance or the type.

    Raises ``ValueError`` for anything that is not a 1.6 request or response type (nested
    datatypes included).
    """
    cls = payload if isinstance(payload, type) else type(payload)
    try:
        return _ACTION_BY_TYPE[cls]
    except KeyError:
        raise ValueError(f"{cls.__name__} is not an OCPP 1.6 request or response") from None
