"""What a charger machine is made of: its static description and the records of its state.

:class:`ChargerSpec` is one charge point as the fleet file describes it. :class:`BootState`,
:class:`Transaction`, :class:`HardwareError` and :class:`Point` are the mutable records the
charger's parts share through :class:`~simulator.machines.context.ChargerContext`;
:func:`earliest` is how the parts combine the deadlines they keep. Pure data.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import Final

import msgspec

from simulator.machines.connector import ERROR_CODE_FAULTS
from simulator.machines.meter import EvSpec
from simulator.machines.session import DEFAULT_CALL_TIMEOUT
from simulator.ocpp.v16 import (
    ChargePointErrorCode,
    DiagnosticsStatus,
    FirmwareStatus,
    MeterValue,
    UploadLogStatus,
)

DEFAULT_BOOT_RETRY: Final = 60.0
"""Seconds before a BootNotification that failed (CALLERROR, timeout) is sent again."""

MAX_STOP_DATA: Final = 500
"""MeterValues kept per transaction for StopTransaction's transactionData (the oldest go)."""

ConfigValue = str | int | bool | float


class FirmwareSpec(msgspec.Struct, frozen=True, kw_only=True):
    """How the charger's FirmwareManagement jobs behave (``[group.firmware]``): how long each
    step takes (seconds) and the probability that a step fails (drawn from the charger's seeded
    stream). A download that fails ends in DownloadFailed, an install in InstallationFailed, an
    upload (diagnostics, logs) in UploadFailed."""

    download: float = 10.0
    install: float = 10.0
    upload: float = 5.0
    download_failure: float = 0.0
    install_failure: float = 0.0
    upload_failure: float = 0.0


class SecuritySpec(msgspec.Struct, frozen=True, kw_only=True):
    """What the charger's connection can do for the security profiles (the group's settings,
    no secret): ``tls``, its central system's URL is ``wss://`` (profiles 2 and 3 are
    possible; over ``ws://`` they are not); ``client_certificate``, the group names a client
    certificate and key (profile 3 is possible without one installed over OCPP)."""

    tls: bool = False
    client_certificate: bool = False


class ChargerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What one charge point is.

    Attributes:
        identity: the charge point id (the last URL path segment).
        vendor, model: BootNotification ``chargePointVendor`` / ``chargePointModel`` (≤ 20).
        serial_number: ``chargePointSerialNumber`` (≤ 25), if any.
        firmware_version: ``firmwareVersion`` (≤ 50), if any.
        connectors: number of connectors (≥ 1).
        max_power_kw: rating of each connector, kW.
        phases: supply phases (1-3); voltage_v: line-to-neutral volts.
        config: OCPP configuration key overrides (a float must be integral for integer keys).
        call_timeout: seconds to wait for the result of one of our CALLs.
        boot_retry: seconds before a failed BootNotification is retried; also the centre of the
            spread wait picked when the CS answers a boot with ``interval`` 0.
        data_transfer_vendors: vendorIds whose DataTransfer we accept (others: UnknownVendorId).
        reboot_delay: seconds the charger is down on a Reset.
        meter_type, meter_serial_number: BootNotification meter fields, if any.
        profiles: the feature profiles the charger implements (``[group] profiles``; the
            Security extension counts as ``"Security"``); None: every profile this version
            implements. The CS's calls of any other profile are answered NotSupported.
        firmware: how firmware updates, diagnostics and log uploads behave.
        real_transfers: an http(s) ``location`` of UpdateFirmware, GetDiagnostics, GetLog or
            SignedUpdateFirmware is really fetched or uploaded by the actor (else simulated).
        security: what the connection can do for a raised ``SecurityProfile``.
    """

    identity: str
    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None
    connectors: int = 1
    max_power_kw: float = 22.0
    phases: int = 3
    voltage_v: float = 230.0
    config: Mapping[str, ConfigValue] = msgspec.field(default_factory=dict)
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    boot_retry: float = DEFAULT_BOOT_RETRY
    data_transfer_vendors: tuple[str, ...] = ()
    reboot_delay: float = 5.0
    meter_type: str | None = None
    meter_serial_number: str | None = None
    profiles: tuple[str, ...] | None = None
    firmware: FirmwareSpec = FirmwareSpec()
    real_transfers: bool = False
    security: SecuritySpec = SecuritySpec()


class BootState(enum.StrEnum):
    """Where the charger is in its registration with the central system."""

    WAITING = "waiting"  # powered on; BootNotification goes out when possible
    BOOTING = "booting"  # BootNotification in flight
    PENDING = "pending"  # CS said Pending: answer calls, send only triggered messages
    REJECTED = "rejected"  # CS said Rejected: silent until the retry time
    ACCEPTED = "accepted"


@dataclasses.dataclass(slots=True)
class Transaction:
    """One transaction as the charger knows it.

    ``local_id`` is ours; ``transaction_id`` the CS's, once StartTransaction is answered.
    ``energy_cap_wh`` is set when the CS did not accept the idTag and the charger keeps going up
    to ``MaxEnergyOnInvalidId`` Wh (StopTransactionOnInvalidId false).
    """

    local_id: int
    connector_id: int
    id_tag: str
    meter_start: int
    started_at: float
    transaction_id: int | None = None
    energy_cap_wh: float | None = None
    next_sample: float | None = None
    stop_data: collections.deque[MeterValue] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=MAX_STOP_DATA)
    )


class HardwareError(msgspec.Struct, frozen=True):
    """An error the (simulated) hardware reports at a connector: reported with every status
    until cleared; a code :data:`~simulator.machines.connector.ERROR_CODE_FAULTS` marks as a
    fault takes the connector to Faulted, any other is a warning."""

    code: ChargePointErrorCode
    info: str | None = None
    vendor_error_code: str | None = None

    @property
    def fault(self) -> bool:
        return ERROR_CODE_FAULTS.get(self.code, False)


@dataclasses.dataclass(slots=True)
class Point:
    """What happens at one connector beyond its status: the EV, a driver's authorized tag
    waiting for the cable (``ready_tag`` since ``ready_since``, with its parent idTag when
    known, ``ready_parent``), an Authorize in flight, the running transaction, and whether a
    finished transaction's cable is still plugged."""

    connector_id: int
    ev: EvSpec | None = None
    ready_tag: str | None = None
    ready_parent: str | None = None
    ready_since: float = 0.0
    authorizing: str | None = None
    transaction: Transaction | None = None
    finished: bool = False


@dataclasses.dataclass(slots=True)
class Activities:
    """What the charger's long-running jobs report now, as a TriggerMessage or an
    ExtendedTriggerMessage asks for it (None: no such job running, reported as Idle). The
    handler running a job keeps its field current; the triggers only read it.

    Attributes:
        firmware: the status of the UpdateFirmware in progress.
        diagnostics: the status of the GetDiagnostics upload in progress.
        signed_firmware: the status and ``requestId`` of the SignedUpdateFirmware in progress.
        log: the status and ``requestId`` of the GetLog upload in progress.
    """

    firmware: FirmwareStatus | None = None
    diagnostics: DiagnosticsStatus | None = None
    signed_firmware: tuple[FirmwareStatus, int] | None = None
    log: tuple[UploadLogStatus, int] | None = None


def earliest(*times: float | None) -> float | None:
    """The earliest of ``times`` that is set and finite, or None when there is none."""
    best: float | None = None
    for t in times:
        if t is not None and (best is None or t < best) and math.isfinite(t):
            best = t
    return best


def config_overrides(config: Mapping[str, ConfigValue]) -> dict[str, str | int | bool]:
    """Fleet-file values as the store takes them: integral floats become ints."""
    out: dict[str, str | int | bool] = {}
    for key, value in config.items():
        if isinstance(value, float):
            out[key] = int(value) if value.is_integer() else str(value)
        else:
            out[key] = value
    return out
