"""The state a charger machine is made of, and the helpers every part of it shares.

:class:`ChargerSpec` is the static description of one charge point (from the fleet file).
:class:`ChargerBase` builds the parts the charger composes (configuration store, authorization
cache and local list, one connector status machine and one meter per connector, the OCPP session)
and owns the plumbing the transaction logic (:mod:`.transactions`), the CS-initiated operations
(:mod:`.operations`) and the public machine (:mod:`.charger`) share: the charger's wall clock,
event publishing, legal status changes, and sending ordinary messages. Pure: no I/O, no clock.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import math
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Final

import msgspec

from simulator.events import Event, Note, StatusChanged
from simulator.machines.auth import AuthorizationCache, AuthSettings, LocalAuthList
from simulator.machines.configuration import ConfigurationStore
from simulator.machines.connector import ERROR_CODE_FAULTS, ConnectorMachine, allowed_transitions
from simulator.machines.effects import Effect, OutboxEntry, Publish
from simulator.machines.meter import EvSpec, MeasurandSpec, Meter, parse_measurand_list
from simulator.machines.session import DEFAULT_CALL_TIMEOUT, Session
from simulator.ocpp.v16 import (
    AvailabilityType,
    ChargePointErrorCode,
    ChargePointStatus,
    MeterValue,
    Profile,
)
from simulator.seeds import Rng, child

SUPPORTED_PROFILES: Final = (Profile.CORE, Profile.REMOTE_TRIGGER)
"""The feature profiles this charger implements; CS calls of any other profile are answered
NotSupported, and ``SupportedFeatureProfiles`` lists exactly these."""

DEFAULT_BOOT_RETRY: Final = 60.0
"""Seconds before a BootNotification that failed (CALLERROR, timeout) is sent again."""

MAX_STOP_DATA: Final = 500
"""MeterValues kept per transaction for StopTransaction's transactionData (the oldest go)."""

ConfigValue = str | int | bool | float


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
    waiting for the cable (``ready_tag`` since ``ready_since``), an Authorize in flight, the
    running transaction, and whether a finished transaction's cable is still plugged."""

    connector_id: int
    ev: EvSpec | None = None
    ready_tag: str | None = None
    ready_since: float = 0.0
    authorizing: str | None = None
    transaction: Transaction | None = None
    finished: bool = False


def _config_overrides(config: Mapping[str, ConfigValue]) -> dict[str, str | int | bool]:
    """Fleet-file values as the store takes them: integral floats become ints."""
    out: dict[str, str | int | bool] = {}
    for key, value in config.items():
        if isinstance(value, float):
            out[key] = int(value) if value.is_integer() else str(value)
        else:
            out[key] = value
    return out


class ChargerBase:
    """The parts of a charge point and the plumbing they share (see the module docstring).

    Args:
        spec: what the charge point is.
        rng: the charger's random stream (meter noise and boot spread derive from it).
        new_id: makes OCPP message ids.
        wall_epoch: Unix seconds at ``now == 0`` (the charger's clock before any sync).
        now: monotonic seconds at construction.
        outbox: transaction messages restored from a previous run.
    """

    def __init__(
        self,
        spec: ChargerSpec,
        *,
        rng: Rng,
        new_id: Callable[[], str],
        wall_epoch: float,
        now: float,
        outbox: Iterable[OutboxEntry] = (),
    ) -> None:
        if spec.connectors < 1:
            raise ValueError(f"a charge point needs at least one connector, got {spec.connectors}")
        self.spec = spec
        self.charger = spec.identity
        self.rng = rng
        self.wall_epoch = wall_epoch
        self.clock_offset = 0.0
        self.effects: list[Effect] = []
        self.config = ConfigurationStore(
            _config_overrides(spec.config),
            number_of_connectors=spec.connectors,
            feature_profiles=[p.value for p in SUPPORTED_PROFILES],
        )
        # Configuration the charger reads on every step, kept as plain attributes. Invalidation:
        # every write to the store calls its ``on_change`` (:meth:`_config_changed`), which
        # re-reads them all before the write returns, so a change is seen at once.
        self._measurands: dict[str, tuple[MeasurandSpec, ...]] = {}
        """Measurand-list key → its parsed entries (emptied by every configuration write)."""
        self.heartbeat_interval = 0
        """``HeartbeatInterval``, s (re-read on every configuration write)."""
        self.connection_timeout = 0
        """``ConnectionTimeOut``, s (re-read on every configuration write)."""
        self.sample_interval = 0
        """``MeterValueSampleInterval``, s (re-read on every configuration write)."""
        self.config.on_change = weakref.WeakMethod(self._config_changed)
        self._config_changed()
        self.cache = AuthorizationCache()
        self.local_list = LocalAuthList(supported=False)
        restored = tuple(outbox)
        self.session = Session(
            spec.identity,
            new_id=new_id,
            supported_profiles=SUPPORTED_PROFILES,
            call_timeout=spec.call_timeout,
            outbox=restored,
            effects=self.effects,
        )
        self.next_local_tx = 1 + max((e.local_tx or 0 for e in restored), default=0)
        duration = self.config.get_int("MinimumStatusDuration")
        self.connectors = {
            cid: ConnectorMachine(cid, now=now, minimum_status_duration=duration)
            for cid in range(spec.connectors + 1)
        }
        for machine in self.connectors.values():
            machine.mark_offline()
        self.meters = {
            cid: Meter(
                cid,
                max_power_kw=spec.max_power_kw,
                rng=child(rng),
                now=now,
                phases=spec.phases,
                voltage_v=spec.voltage_v,
            )
            for cid in range(1, spec.connectors + 1)
        }
        self.points = {cid: Point(cid) for cid in range(1, spec.connectors + 1)}
        self.availability = {cid: AvailabilityType.OPERATIVE for cid in self.connectors}
        self.scheduled: dict[int, AvailabilityType] = {}
        self.errors: dict[int, HardwareError] = {}
        self.boot = BootState.WAITING
        self.boot_at: float | None = None
        self.boots_sent = 0
        self.transactions_started = 0
        self.transactions_stopped = 0
        self.sync_session_settings()

    # --- clock, events ------------------------------------------------------------------------

    @property
    def wall_offset(self) -> float:
        """Unix seconds at ``now == 0`` on the charger's (possibly synced) clock."""
        return self.wall_epoch + self.clock_offset

    def wall(self, now: float) -> dt.datetime:
        """The charger's wall time at ``now`` (aware, UTC, whole milliseconds)."""
        seconds = round(self.wall_offset + now, 3)
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)

    def publish(self, event: Event) -> None:
        """Queue ``event`` for the bus."""
        self.effects.append(Publish(event))

    def note(self, now: float, what: str, connector: int | None = None, **data: object) -> None:
        """Publish a :class:`Note` (a decision worth recording)."""
        self.publish(Note(t=now, charger=self.charger, connector=connector, what=what,
                          data=dict(data)))

    # --- configuration ------------------------------------------------------------------------

    def auth_settings(self) -> AuthSettings:
        """The authorization keys as they are now."""
        return AuthSettings.from_configuration(self.config)

    def _config_changed(self) -> None:
        """A configuration value was written: refresh what is kept of it (see ``__init__``)."""
        config = self.config
        self._measurands.clear()
        self.heartbeat_interval = config.get_int("HeartbeatInterval")
        self.connection_timeout = config.get_int("ConnectionTimeOut")
        self.sample_interval = config.get_int("MeterValueSampleInterval")

    def measurands(self, key: str) -> tuple[MeasurandSpec, ...]:
        """A measurand-list key, parsed (the store only ever holds supported entries)."""
        parsed = self._measurands.get(key)
        if parsed is None:
            parsed = self._measurands[key] = parse_measurand_list(self.config.get_str(key))
        return parsed

    def sync_session_settings(self) -> None:
        """Push the keys the session and connectors read into them."""
        self.session.attempts = self.config.get_int("TransactionMessageAttempts")
        self.session.retry_interval = float(
            self.config.get_int("TransactionMessageRetryInterval")
        )
        duration = self.config.get_int("MinimumStatusDuration")
        for machine in self.connectors.values():
            machine.set_minimum_status_duration(duration)

    # --- status -------------------------------------------------------------------------------

    def move(self, connector_id: int, target: ChargePointStatus, now: float) -> None:
        """Move a connector to ``target`` along legal transitions only: directly when the table
        allows it, else through the shortest chain of allowed intermediate statuses (e.g.
        Finishing → Preparing → Charging). Each step is published as ``StatusChanged``."""
        machine = self.connectors[connector_id]
        error = self.errors.get(connector_id)
        code = error.code if error is not None else ChargePointErrorCode.NO_ERROR
        info = error.info if error is not None else None
        vendor_code = error.vendor_error_code if error is not None else None
        if machine.shows(target, code, info, vendor_code):
            return  # (the common case: nothing to change, nothing to publish)
        # An empty path still applies a changed error code to the current status.
        steps = [target] if machine.status == target else _path(connector_id, machine.status,
                                                                 target)
        for status in steps:
            old = machine.status
            if machine.set_status(status, now, error_code=code, info=info,
                                  vendor_error_code=vendor_code):
                self.publish(StatusChanged(t=now, charger=self.charger, connector=connector_id,
                                           old=old.value, new=status.value,
                                           error_code=code.value))

    def faulted(self, connector_id: int) -> bool:
        """Whether the hardware reports a fault (not a mere warning) at ``connector_id``."""
        error = self.errors.get(connector_id)
        return error is not None and error.fault

    def operative(self, connector_id: int) -> bool:
        """Whether a connector (and the charge point as a whole) is Operative and not faulted."""
        return (
            self.availability[0] == AvailabilityType.OPERATIVE
            and self.availability[connector_id] == AvailabilityType.OPERATIVE
            and not self.faulted(0)
            and not self.faulted(connector_id)
        )


def _path(
    connector_id: int, start: ChargePointStatus, target: ChargePointStatus
) -> list[ChargePointStatus]:
    """The shortest legal chain of statuses from ``start`` to ``target`` (excluding ``start``)."""
    if start == target:
        return []
    previous: dict[ChargePointStatus, ChargePointStatus] = {}
    frontier = collections.deque([start])
    while frontier:
        status = frontier.popleft()
        for nxt in sorted(allowed_transitions(connector_id, status)):
            if nxt in previous or nxt == start:
                continue
            previous[nxt] = status
            if nxt == target:
                chain = [nxt]
                while chain[-1] in previous and previous[chain[-1]] != start:
                    chain.append(previous[chain[-1]])
                return chain[::-1]
            frontier.append(nxt)
    raise ValueError(f"connector {connector_id}: no legal path from {start} to {target}")


def time_to_energy(remaining_wh: float, power_w: float) -> float:
    """Seconds until ``remaining_wh`` is delivered at ``power_w`` (inf when nothing flows). Power
    never rises while a session goes on, so this is a lower bound: re-check when it passes."""
    if power_w <= 0:
        return math.inf
    return remaining_wh / power_w * 3600.0
