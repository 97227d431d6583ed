r"""The OCPP 1.6 enumerations (core spec and security extension) as ``StrEnum``\s.

Names follow the PyPI ``ocpp`` package's ``ocpp.v16.enums``; members are UPPER_SNAKE and their
values are the wire strings. Where the official JSON schemas allow values the package lacks,
they are added (``UnitOfMeasure.CELCIUS`` and ``UnitOfMeasure.HERTZ``). Where one enum serves
two messages that allow different subsets (``FirmwareStatus``, ``MessageTrigger``,
``UnitOfMeasure``), the message Structs check the narrower set themselves.
"""

from __future__ import annotations

import enum


class AuthorizationStatus(enum.StrEnum):
    """Status of an identifier in an IdTagInfo."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


class AvailabilityStatus(enum.StrEnum):
    """Status returned in response to ChangeAvailability.req. Used by
    ChangeAvailabilityResponse.status.
    """

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    SCHEDULED = "Scheduled"


class AvailabilityType(enum.StrEnum):
    """Requested availability change in ChangeAvailability.req. Used by ChangeAvailability.type."""

    INOPERATIVE = "Inoperative"
    OPERATIVE = "Operative"


class CancelReservationStatus(enum.StrEnum):
    """Status in CancelReservation.conf. Used by CancelReservationResponse.status."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


class CertificateSignedStatus(enum.StrEnum):
    """CertificateSignedStatusEnumType is used by: CertificateSigned.conf. Used by
    CertificateSignedResponse.status.
    """

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


class CertificateStatus(enum.StrEnum):
    """CertificateStatusEnumType is used by: InstallCertificate.conf. Used by
    InstallCertificateResponse.status.
    """

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    FAILED = "Failed"


class CertificateUse(enum.StrEnum):
    """CertificateUseEnumType is used by: GetInstalledCertificateIds.req, InstallCertificate.req.
    Used by GetInstalledCertificateIds.certificateType, InstallCertificate.certificateType.
    """

    CENTRAL_SYSTEM_ROOT_CERTIFICATE = "CentralSystemRootCertificate"
    MANUFACTURER_ROOT_CERTIFICATE = "ManufacturerRootCertificate"


class ChargePointErrorCode(enum.StrEnum):
    """Charge Point status reported in StatusNotification.req. Used by
    StatusNotification.errorCode.
    """

    CONNECTOR_LOCK_FAILURE = "ConnectorLockFailure"
    EV_COMMUNICATION_ERROR = "EVCommunicationError"
    GROUND_FAILURE = "GroundFailure"
    HIGH_TEMPERATURE = "HighTemperature"
    INTERNAL_ERROR = "InternalError"
    LOCAL_LIST_CONFLICT = "LocalListConflict"
    NO_ERROR = "NoError"
    OTHER_ERROR = "OtherError"
    OVER_CURRENT_FAILURE = "OverCurrentFailure"
    OVER_VOLTAGE = "OverVoltage"
    POWER_METER_FAILURE = "PowerMeterFailure"
    POWER_SWITCH_FAILURE = "PowerSwitchFailure"
    READER_FAILURE = "ReaderFailure"
    RESET_FAILURE = "ResetFailure"
    UNDER_VOLTAGE = "UnderVoltage"
    WEAK_SIGNAL = "WeakSignal"


class ChargePointStatus(enum.StrEnum):
    """Status reported in StatusNotification.req. A status can be reported for the Charge Point
    main controller (connectorId = 0) or for a specific connector. Status for the Charge Point
    main controller is a subset of the enumeration: Available, Unavailable or Faulted. Used by
    StatusNotification.status.
    """

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class ChargingProfileKindType(enum.StrEnum):
    """ "Absolute": Schedule periods are relative to a fixed point in time defined             in
    the schedule. "Recurring": Schedule restarts periodically at the first schedule period.
    "Relative": Schedule periods are relative to a situation- specific start
    point(such as the start of a session). Used by RemoteStartTransaction.chargingProfileKind.
    """

    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class ChargingProfilePurposeType(enum.StrEnum):
    """In load balancing scenarios, the Charge Point has one or more local charging profiles that
    limit the power or current to be shared by all connectors of the Charge Point. The Central
    System SHALL configure such a profile with ChargingProfilePurpose set to
    “ChargePointMaxProfile”. ChargePointMaxProfile can only be set at Charge Point ConnectorId
    0. Used by ClearChargingProfile.chargingProfilePurpose,
    RemoteStartTransaction.chargingProfilePurpose.
    """

    CHARGE_POINT_MAX_PROFILE = "ChargePointMaxProfile"
    TX_DEFAULT_PROFILE = "TxDefaultProfile"
    TX_PROFILE = "TxProfile"


class ChargingProfileStatus(enum.StrEnum):
    """Status returned in response to SetChargingProfile.req. Used by
    SetChargingProfileResponse.status.
    """

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    NOT_SUPPORTED = "NotSupported"


class ChargingRateUnitType(enum.StrEnum):
    """Unit in which a charging schedule is defined, as used in: GetCompositeSchedule.req and
    ChargingSchedule. Used by GetCompositeSchedule.chargingRateUnit,
    GetCompositeScheduleResponse.chargingRateUnit.
    """

    WATTS = "W"
    AMPS = "A"


class ClearCacheStatus(enum.StrEnum):
    """Status returned in response to ClearCache.req. Used by ClearCacheResponse.status."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


class ClearChargingProfileStatus(enum.StrEnum):
    """Status returned in response to ClearChargingProfile.req. Used by
    ClearChargingProfileResponse.status.
    """

    ACCEPTED = "Accepted"
    UNKNOWN = "Unknown"


class ConfigurationKey(enum.StrEnum):
    """The configuration keys of the 1.6 spec and the security extension (not used by any schema:
    keys are free strings).
    """

    ALLOW_OFFLINE_TX_FOR_UNKNOWN_ID = "AllowOfflineTxForUnknownId"
    AUTHORIZATION_CACHE_ENABLED = "AuthorizationCacheEnabled"
    AUTHORIZE_REMOTE_TX_REQUESTS = "AuthorizeRemoteTxRequests"
    BLINK_REPEAT = "BlinkRepeat"
    CLOCK_ALIGNED_DATA_INTERVAL = "ClockAlignedDataInterval"
    CONNECTION_TIME_OUT = "ConnectionTimeOut"
    CONNECTOR_PHASE_ROTATION = "ConnectorPhaseRotation"
    CONNECTOR_PHASE_ROTATION_MAX_LENGTH = "ConnectorPhaseRotationMaxLength"
    GET_CONFIGURATION_MAX_KEYS = "GetConfigurationMaxKeys"
    HEARTBEAT_INTERVAL = "HeartbeatInterval"
    LIGHT_INTENSITY = "LightIntensity"
    LOCAL_AUTHORIZE_OFFLINE = "LocalAuthorizeOffline"
    LOCAL_PRE_AUTHORIZE = "LocalPreAuthorize"
    MAX_ENERGY_ON_INVALID_ID = "MaxEnergyOnInvalidId"
    METER_VALUES_ALIGNED_DATA = "MeterValuesAlignedData"
    METER_VALUES_ALIGNED_DATA_MAX_LENGTH = "MeterValuesAlignedDataMaxLength"
    METER_VALUES_SAMPLED_DATA = "MeterValuesSampledData"
    METER_VALUES_SAMPLED_DATA_MAX_LENGTH = "MeterValuesSampledDataMaxLength"
    METER_VALUE_SAMPLE_INTERVAL = "MeterValueSampleInterval"
    MINIMUM_STATUS_DURATION = "MinimumStatusDuration"
    NUMBER_OF_CONNECTORS = "NumberOfConnectors"
    RESET_RETRIES = "ResetRetries"
    STOP_TRANSACTION_ON_EV_SIDE_DISCONNECT = "StopTransactionOnEVSideDisconnect"
    STOP_TRANSACTION_ON_INVALID_ID = "StopTransactionOnInvalidId"
    STOP_TXN_ALIGNED_DATA = "StopTxnAlignedData"
    STOP_TXN_ALIGNED_DATA_MAX_LENGTH = "StopTxnAlignedDataMaxLength"
    STOP_TXN_SAMPLED_DATA = "StopTxnSampledData"
    STOP_TXN_SAMPLED_DATA_MAX_LENGTH = "StopTxnSampledDataMaxLength"
    SUPPORTED_FEATURE_PROFILES = "SupportedFeatureProfiles"
    SUPPORTED_FEATURE_PROFILES_MAX_LENGTH = "SupportedFeatureProfilesMaxLength"
    TRANSACTION_MESSAGE_ATTEMPTS = "TransactionMessageAttempts"
    TRANSACTION_MESSAGE_RETRY_INTERVAL = "TransactionMessageRetryInterval"
    UNLOCK_CONNECTOR_ON_EV_SIDE_DISCONNECT = "UnlockConnectorOnEVSideDisconnect"
    WEB_SOCKET_PING_INTERVAL = "WebSocketPingInterval"
    LOCAL_AUTH_LIST_ENABLED = "LocalAuthListEnabled"
    LOCAL_AUTH_LIST_MAX_LENGTH = "LocalAuthListMaxLength"
    SEND_LOCAL_LIST_MAX_LENGTH = "SendLocalListMaxLength"
    RESERVE_CONNECTOR_ZERO_SUPPORTED = "ReserveConnectorZeroSupported"
    CHARGE_PROFILE_MAX_STACK_LEVEL = "ChargeProfileMaxStackLevel"
    CHARGING_SCHEDULE_ALLOWED_CHARGING_RATE_UNIT = "ChargingScheduleAllowedChargingRateUnit"
    CHARGING_SCHEDULE_MAX_PERIODS = "ChargingScheduleMaxPeriods"
    CONNECTOR_SWITCH_3TO1_PHASE_SUPPORTED = "ConnectorSwitch3to1PhaseSupported"
    MAX_CHARGING_PROFILES_INSTALLED = "MaxChargingProfilesInstalled"
    CENTRAL_CONTRACT_VALIDATION_ALLOWED = "CentralContractValidationAllowed"
    CERTIFICATE_SIGNED_MAX_CHAIN_SIZE = "CertificateSignedMaxChainSize"
    CERT_SIGNING_WAIT_MINIMUM = "CertSigningWaitMinimum"
    CERT_SIGNING_REPEAT_TIMES = "CertSigningRepeatTimes"
    CERTIFICATE_STORE_MAX_LENGTH = "CertificateStoreMaxLength"
    CONTRACT_VALIDATION_OFFLINE = "ContractValidationOffline"
    ISO_15118_PNC_ENABLED = "ISO15118PnCEnabled"
    ADDITIONAL_ROOT_CERTIFICATE_CHECK = "AdditionalRootCertificateCheck"
    AUTHORIZATION_KEY = "AuthorizationKey"
    CPO_NAME = "CpoName"
    SECURITY_PROFILE = "SecurityProfile"


class ConfigurationStatus(enum.StrEnum):
    """Status in ChangeConfiguration.conf. Used by ChangeConfigurationResponse.status."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    REBOOT_REQUIRED = "RebootRequired"
    NOT_SUPPORTED = "NotSupported"


class DataTransferStatus(enum.StrEnum):
    """Status in DataTransfer.conf. Used by DataTransferResponse.status."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    UNKNOWN_MESSAGE_ID = "UnknownMessageId"
    UNKNOWN_VENDOR_ID = "UnknownVendorId"


class DeleteCertificateStatus(enum.StrEnum):
    """DeleteCertificateStatusEnumType is used by: DeleteCertificate.conf. Used by
    DeleteCertificateResponse.status.
    """

    ACCEPTED = "Accepted"
    FAILED = "Failed"
    NOT_FOUND = "NotFound"


class DiagnosticsStatus(enum.StrEnum):
    """Status in DiagnosticsStatusNotification.req. Used by DiagnosticsStatusNotification.status."""

    IDLE = "Idle"
    UPLOADED = "Uploaded"
    UPLOAD_FAILED = "UploadFailed"
    UPLOADING = "Uploading"


class FirmwareStatus(enum.StrEnum):
    """Firmware update status. FirmwareStatusNotification allows only the first seven values;
    SignedFirmwareStatusNotification allows all.
    """

    DOWNLOADED = "Downloaded"
    DOWNLOAD_FAILED = "DownloadFailed"
    DOWNLOADING = "Downloading"
    IDLE = "Idle"
    INSTALLATION_FAILED = "InstallationFailed"
    INSTALLING = "Installing"
    INSTALLED = "Installed"
    DOWNLOAD_SCHEDULED = "DownloadScheduled"
    DOWNLOAD_PAUSED = "DownloadPaused"
    INSTALL_REBOOTING = "InstallRebooting"
    INSTALL_SCHEDULED = "InstallScheduled"
    INSTALL_VERIFICATION_FAILED = "InstallVerificationFailed"
    INVALID_SIGNATURE = "InvalidSignature"
    SIGNATURE_VERIFIED = "SignatureVerified"


class GenericStatus(enum.StrEnum):
    """Generic message response status. Used by SignCertificateResponse.status."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


class GetCompositeScheduleStatus(enum.StrEnum):
    """Status returned in response to GetCompositeSchedule.req. Used by
    GetCompositeScheduleResponse.status.
    """

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


class GetInstalledCertificateStatus(enum.StrEnum):
    """GetInstalledCertificateStatusEnumType is used by: GetInstalledCertificateIds.conf. Used by
    GetInstalledCertificateIdsResponse.status.
    """

    ACCEPTED = "Accepted"
    NOT_FOUND = "NotFound"


class HashAlgorithm(enum.StrEnum):
    """HashAlgorithmEnumType is used by: CertificateHashDataType. Used by
    DeleteCertificate.hashAlgorithm.
    """

    SHA256 = "SHA256"
    SHA384 = "SHA384"
    SHA512 = "SHA512"


class Location(enum.StrEnum):
    """Allowable values of the optional "location" field of a value element in SampledValue. Used
    by MeterValues.location.
    """

    INLET = "Inlet"
    OUTLET = "Outlet"
    BODY = "Body"
    CABLE = "Cable"
    EV = "EV"


class Log(enum.StrEnum):
    """LogEnumType is used by GetLog.req. Used by GetLog.logType."""

    DIAGNOSTICS_LOG = "DiagnosticsLog"
    SECURITY_LOG = "SecurityLog"


class LogStatus(enum.StrEnum):
    """LogStatusEnumType is used by: GetLog.conf. Used by GetLogResponse.status."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    ACCEPTED_CANCELED = "AcceptedCanceled"


class Measurand(enum.StrEnum):
    """Allowable values of the optional "measurand" field of a Value element, as used in
    MeterValues.req and StopTransaction.req messages. Default value of "measurand" is always
    "Energy.Active.Import.Register". Used by MeterValues.measurand.
    """

    CURRENT_EXPORT = "Current.Export"
    CURRENT_IMPORT = "Current.Import"
    CURRENT_OFFERED = "Current.Offered"
    ENERGY_ACTIVE_EXPORT_REGISTER = "Energy.Active.Export.Register"
    ENERGY_ACTIVE_IMPORT_REGISTER = "Energy.Active.Import.Register"
    ENERGY_REACTIVE_EXPORT_REGISTER = "Energy.Reactive.Export.Register"
    ENERGY_REACTIVE_IMPORT_REGISTER = "Energy.Reactive.Import.Register"
    ENERGY_ACTIVE_EXPORT_INTERVAL = "Energy.Active.Export.Interval"
    ENERGY_ACTIVE_IMPORT_INTERVAL = "Energy.Active.Import.Interval"
    ENERGY_REACTIVE_EXPORT_INTERVAL = "Energy.Reactive.Export.Interval"
    ENERGY_REACTIVE_IMPORT_INTERVAL = "Energy.Reactive.Import.Interval"
    FREQUENCY = "Frequency"
    POWER_ACTIVE_EXPORT = "Power.Active.Export"
    POWER_ACTIVE_IMPORT = "Power.Active.Import"
    POWER_FACTOR = "Power.Factor"
    POWER_OFFERED = "Power.Offered"
    POWER_REACTIVE_EXPORT = "Power.Reactive.Export"
    POWER_REACTIVE_IMPORT = "Power.Reactive.Import"
    RPM = "RPM"
    SOC = "SoC"
    TEMPERATURE = "Temperature"
    VOLTAGE = "Voltage"


class MessageTrigger(enum.StrEnum):
    """What a TriggerMessage or ExtendedTriggerMessage asks for. TriggerMessage allows the first
    six values; ExtendedTriggerMessage all but DiagnosticsStatusNotification.
    """

    BOOT_NOTIFICATION = "BootNotification"
    FIRMWARE_STATUS_NOTIFICATION = "FirmwareStatusNotification"
    HEARTBEAT = "Heartbeat"
    METER_VALUES = "MeterValues"
    STATUS_NOTIFICATION = "StatusNotification"
    DIAGNOSTICS_STATUS_NOTIFICATION = "DiagnosticsStatusNotification"
    LOG_STATUS_NOTIFICATION = "LogStatusNotification"
    SIGN_CHARGE_POINT_CERTIFICATE = "SignChargePointCertificate"


class Phase(enum.StrEnum):
    """Phase as used in SampledValue. Phase specifies how a measured value is to be interpreted.
    Please note that not all values of Phase are applicable to all Measurands. Used by
    MeterValues.phase.
    """

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    N = "N"
    L1_N = "L1-N"
    L2_N = "L2-N"
    L3_N = "L3-N"
    L1_L2 = "L1-L2"
    L2_L3 = "L2-L3"
    L3_L1 = "L3-L1"


class ReadingContext(enum.StrEnum):
    """Values of the context field of a value in SampledValue. Used by MeterValues.context."""

    INTERRUPTION_BEGIN = "Interruption.Begin"
    INTERRUPTION_END = "Interruption.End"
    OTHER = "Other"
    SAMPLE_CLOCK = "Sample.Clock"
    SAMPLE_PERIODIC = "Sample.Periodic"
    TRANSACTION_BEGIN = "Transaction.Begin"
    TRANSACTION_END = "Transaction.End"
    TRIGGER = "Trigger"


class Reason(enum.StrEnum):
    """Reason for stopping a transaction in StopTransaction.req. Used by StopTransaction.reason."""

    EMERGENCY_STOP = "EmergencyStop"
    EV_DISCONNECTED = "EVDisconnected"
    HARD_RESET = "HardReset"
    LOCAL = "Local"
    OTHER = "Other"
    POWER_LOSS = "PowerLoss"
    REBOOT = "Reboot"
    REMOTE = "Remote"
    SOFT_RESET = "SoftReset"
    UNLOCK_COMMAND = "UnlockCommand"
    DE_AUTHORIZED = "DeAuthorized"


class RecurrencyKind(enum.StrEnum):
    """ "Daily": The schedule restarts at the beginning of the next day. "Weekly": The schedule
    restarts at the beginning of the next week           (defined as Monday morning). Used by
    RemoteStartTransaction.recurrencyKind.
    """

    DAILY = "Daily"
    WEEKLY = "Weekly"


class RegistrationStatus(enum.StrEnum):
    """Result of registration in response to BootNotification.req. Used by
    BootNotificationResponse.status.
    """

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class RemoteStartStopStatus(enum.StrEnum):
    """The result of a RemoteStartTransaction.req or RemoteStopTransaction.req request. Used by
    RemoteStartTransactionResponse.status, RemoteStopTransactionResponse.status.
    """

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


class ReservationStatus(enum.StrEnum):
    """Status in ReserveNow.conf. Used by ReserveNowResponse.status."""

    ACCEPTED = "Accepted"
    FAULTED = "Faulted"
    OCCUPIED = "Occupied"
    REJECTED = "Rejected"
    UNAVAILABLE = "Unavailable"


class ResetStatus(enum.StrEnum):
    """Result of Reset.req. Used by ResetResponse.status."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


class ResetType(enum.StrEnum):
    """Type of reset requested by Reset.req. Used by Reset.type."""

    HARD = "Hard"
    SOFT = "Soft"


class SecurityEvent(enum.StrEnum):
    """The security events of the 1.6 security whitepaper (Appendix 1): the ``type`` of a
    SecurityEventNotification.req (a CiString50 on the wire; these are the spec's names)."""

    FIRMWARE_UPDATED = "FirmwareUpdated"
    FAILED_TO_AUTHENTICATE_AT_CENTRAL_SYSTEM = "FailedToAuthenticateAtCentralSystem"
    CENTRAL_SYSTEM_FAILED_TO_AUTHENTICATE = "CentralSystemFailedToAuthenticate"
    SETTING_SYSTEM_TIME = "SettingSystemTime"
    STARTUP_OF_THE_DEVICE = "StartupOfTheDevice"
    RESET_OR_REBOOT = "ResetOrReboot"
    SECURITY_LOG_WAS_CLEARED = "SecurityLogWasCleared"
    RECONFIGURATION_OF_SECURITY_PARAMETERS = "ReconfigurationOfSecurityParameters"
    MEMORY_EXHAUSTION = "MemoryExhaustion"
    INVALID_MESSAGES = "InvalidMessages"
    ATTEMPTED_REPLAY_ATTACKS = "AttemptedReplayAttacks"
    TAMPER_DETECTION_ACTIVATED = "TamperDetectionActivated"
    INVALID_FIRMWARE_SIGNATURE = "InvalidFirmwareSignature"
    INVALID_FIRMWARE_SIGNING_CERTIFICATE = "InvalidFirmwareSigningCertificate"
    INVALID_CENTRAL_SYSTEM_CERTIFICATE = "InvalidCentralSystemCertificate"
    INVALID_CHARGE_POINT_CERTIFICATE = "InvalidChargePointCertificate"
    INVALID_TLS_VERSION = "InvalidTLSVersion"
    INVALID_TLS_CIPHER_SUITE = "InvalidTLSCipherSuite"


class TriggerMessageStatus(enum.StrEnum):
    """Status in TriggerMessage.conf. Used by ExtendedTriggerMessageResponse.status,
    TriggerMessageResponse.status.
    """

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    NOT_IMPLEMENTED = "NotImplemented"


class UnitOfMeasure(enum.StrEnum):
    """Unit of a sampled value. ``CELCIUS`` (sic) and ``HERTZ`` are in the schemas but not in the
    package; StopTransaction does not allow ``HERTZ``.
    """

    WH = "Wh"
    KWH = "kWh"
    VARH = "varh"
    KVARH = "kvarh"
    W = "W"
    KW = "kW"
    VA = "VA"
    KVA = "kVA"
    VAR = "var"
    KVAR = "kvar"
    A = "A"
    V = "V"
    CELSIUS = "Celsius"
    FAHRENHEIT = "Fahrenheit"
    K = "K"
    PERCENT = "Percent"
    CELCIUS = "Celcius"
    HERTZ = "Hertz"


class UnlockStatus(enum.StrEnum):
    """Status in response to UnlockConnector.req. Used by UnlockConnectorResponse.status."""

    UNLOCKED = "Unlocked"
    UNLOCK_FAILED = "UnlockFailed"
    NOT_SUPPORTED = "NotSupported"


class UpdateFirmwareStatus(enum.StrEnum):
    """UpdateFirmwareStatusEnumType is used by: SignedUpdateFirmware.conf. Used by
    SignedUpdateFirmwareResponse.status.
    """

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    ACCEPTED_CANCELED = "AcceptedCanceled"
    INVALID_CERTIFICATE = "InvalidCertificate"
    REVOKED_CERTIFICATE = "RevokedCertificate"


class UpdateStatus(enum.StrEnum):
    """Type of update for a SendLocalList.req. Used by SendLocalListResponse.status."""

    ACCEPTED = "Accepted"
    FAILED = "Failed"
    NOT_SUPPORTED = "NotSupported"
    VERSION_MISMATCH = "VersionMismatch"


class UpdateType(enum.StrEnum):
    """Type of update for a SendLocalList.req. Used by SendLocalList.updateType."""

    DIFFERENTIAL = "Differential"
    FULL = "Full"


class UploadLogStatus(enum.StrEnum):
    """UploadLogStatusEnumType is used by: LogStatusNotification.req. Used by
    LogStatusNotification.status.
    """

    BAD_MESSAGE = "BadMessage"
    IDLE = "Idle"
    NOT_SUPPORTED_OPERATION = "NotSupportedOperation"
    PERMISSION_DENIED = "PermissionDenied"
    UPLOADED = "Uploaded"
    UPLOAD_FAILURE = "UploadFailure"
    UPLOADING = "Uploading"


class ValueFormat(enum.StrEnum):
    """Format that specifies how the value element in SampledValue is to be interpreted. Used by
    MeterValues.format.
    """

    RAW = "Raw"
    SIGNED_DATA = "SignedData"
