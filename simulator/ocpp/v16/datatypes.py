"""The nested OCPP 1.6 datatypes, named as in the PyPI ``ocpp`` package's ``ocpp.v16.datatypes``.

They share the payload conventions of :class:`~simulator.ocpp.v16.base.Payload` (camelCase on the
wire, frozen, unknown fields rejected, ``None`` omitted); each one is checked against every schema
that embeds it by the tests.
"""

from __future__ import annotations

from datetime import datetime

from simulator.ocpp.v16.base import (
    CiString20,
    CiString50,
    CiString500,
    String40,
    String128,
    String512,
    String800,
    String5500,
    check_tenth,
    utc_field,
)
from simulator.ocpp.v16.base import Payload as _Payload
from simulator.ocpp.v16.enums import (
    AuthorizationStatus,
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
    HashAlgorithm,
    Location,
    Measurand,
    Phase,
    ReadingContext,
    RecurrencyKind,
    UnitOfMeasure,
    ValueFormat,
)


class IdTagInfo(_Payload, frozen=True):
    """Status information about an identifier (Authorize, StartTransaction and StopTransaction
    results, local list entries).
    """

    status: AuthorizationStatus
    expiry_date: datetime | None = None
    parent_id_tag: CiString20 | None = None

    def __post_init__(self) -> None:
        utc_field(self, "expiry_date")


class AuthorizationData(_Payload, frozen=True):
    """One entry of a local authorization list update (SendLocalList)."""

    id_tag: CiString20
    id_tag_info: IdTagInfo | None = None


class ChargingSchedulePeriod(_Payload, frozen=True):
    """One period of a charging schedule: from ``start_period`` seconds on, at most ``limit`` (A
    or W, a multiple of 0.1).
    """

    start_period: int
    limit: float
    number_phases: int | None = None

    def __post_init__(self) -> None:
        check_tenth(self, "limit")


class ChargingSchedule(_Payload, frozen=True):
    """A charging schedule: the power or current limits per period (SetChargingProfile,
    GetCompositeSchedule).
    """

    charging_rate_unit: ChargingRateUnitType
    charging_schedule_period: tuple[ChargingSchedulePeriod, ...]
    duration: int | None = None
    start_schedule: datetime | None = None
    min_charging_rate: float | None = None

    def __post_init__(self) -> None:
        utc_field(self, "start_schedule")
        check_tenth(self, "min_charging_rate")


class ChargingProfile(_Payload, frozen=True):
    """A charging profile: purpose, kind, stack level and schedule (SetChargingProfile,
    RemoteStartTransaction).
    """

    charging_profile_id: int
    stack_level: int
    charging_profile_purpose: ChargingProfilePurposeType
    charging_profile_kind: ChargingProfileKindType
    charging_schedule: ChargingSchedule
    transaction_id: int | None = None
    recurrency_kind: RecurrencyKind | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def __post_init__(self) -> None:
        utc_field(self, "valid_from")
        utc_field(self, "valid_to")


class KeyValue(_Payload, frozen=True):
    """One configuration key in a GetConfiguration result."""

    key: CiString50
    readonly: bool
    value: CiString500 | None = None


class SampledValue(_Payload, frozen=True):
    """One sampled value of a meter value. ``value`` is a decimal held in a string."""

    value: str
    context: ReadingContext | None = None
    format: ValueFormat | None = None
    measurand: Measurand | None = None
    phase: Phase | None = None
    location: Location | None = None
    unit: UnitOfMeasure | None = None


class MeterValue(_Payload, frozen=True):
    """The sampled values read at one instant (MeterValues, StopTransaction ``transactionData``)."""

    timestamp: datetime
    sampled_value: tuple[SampledValue, ...]

    def __post_init__(self) -> None:
        utc_field(self, "timestamp")


class CertificateHashData(_Payload, frozen=True):
    """Identifies a certificate by hashes of its issuer and its serial number (security
    extension).
    """

    hash_algorithm: HashAlgorithm
    issuer_name_hash: String128
    issuer_key_hash: String128
    serial_number: String40


class Firmware(_Payload, frozen=True):
    """A signed firmware image to install (SignedUpdateFirmware)."""

    location: String512
    retrieve_date_time: datetime
    signing_certificate: String5500
    signature: String800
    install_date_time: datetime | None = None

    def __post_init__(self) -> None:
        utc_field(self, "retrieve_date_time")
        utc_field(self, "install_date_time")


class LogParameters(_Payload, frozen=True):
    """Where to upload a log and which time range it covers (GetLog)."""

    remote_location: String512
    oldest_timestamp: datetime | None = None
    latest_timestamp: datetime | None = None

    def __post_init__(self) -> None:
        utc_field(self, "oldest_timestamp")
        utc_field(self, "latest_timestamp")
