"""The shared context of one charge point: the state every part of the charger reads or changes.

:class:`ChargerContext` builds and holds the parts a charge point is made of (configuration
store, authorization cache and local list, one connector status machine and one meter per
connector, the OCPP-J session), the state they share (points, availability, hardware errors,
reservations, registration, power) and the plumbing on top of them: the charger's wall clock,
events, legal status changes, and sending a BootNotification. The charger's components
(:mod:`.transactions`, :mod:`.metering`, :mod:`.reboot`) and its feature-profile handlers
(:mod:`.profiles`) each receive this one object explicitly; it holds no reference back to them,
so a charger is freed by reference counting alone.

Status rule: a connector's status follows from its point, availability, hardware error and
reservations (:meth:`ChargerContext.desired_status`) and moves only along legal transitions
(:meth:`ChargerContext.move`); going Faulted or Unavailable ends a connector's reservations.
Pure: no I/O, no clock.
"""
from __future__ import annotations

import collections
import datetime as dt
import enum
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import msgspec

from simulator.events import Event, Note, StatusChanged
from simulator.machines.auth import AuthorizationCache, AuthSettings, LocalAuthList
from simulator.machines.breaches import (
    Breaches,
    RegisterShift,
    carries_register,
    shift_sampled,
    shifted_register,
)
from simulator.machines.charging_profiles import ChargingProfiles
from simulator.machines.configuration import ConfigurationStore
from simulator.machines.connector import (
    ConnectorMachine,
    StatusReport,
    allowed_transitions,
    delivery_status,
)
from simulator.machines.effects import (
    ChargerMemory,
    Credentials,
    Effect,
    OutboxEntry,
    Publish,
    Reboot,
    UseCredentials,
)
from simulator.machines.meter import Meter
from simulator.machines.parts import (
    Activities,
    BootState,
    ChargerSpec,
    HardwareError,
    Point,
    config_overrides,
)
from simulator.machines.reservations import Reservation, Reservations
from simulator.machines.session import Session
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import (
    AvailabilityType,
    BootNotificationRequest,
    CertificateUse,
    ChargePointErrorCode,
    ChargePointStatus,
    Profile,
    SampledValue,
    SecurityEvent,
    SecurityEventNotificationRequest,
    StatusNotificationRequest,
)
from simulator.seeds import Rng, child

BOOT: Final = "boot"
"""The context attached to a BootNotification CALL."""

_S = ChargePointStatus


class ChargerContext:
    """The parts and shared state of one charge point (see the module docstring).

    Args:
        spec: what the charge point is.
        rng: the charger's random stream (each meter's noise derives from it).
        new_id: makes OCPP message ids.
        wall_epoch: Unix seconds at ``now == 0`` (the charger's clock before any sync).
        now: monotonic seconds at construction.
        profiles: the feature profiles the charger implements (``SupportedFeatureProfiles``;
            CS calls of other profiles are answered NotSupported by the session).
        plugin: the protocol version the session speaks.
        outbox: transaction messages restored from a previous run.
        memory: what the charger kept through a power loss (registers, numbering, the
            transactions that were running); None: a new charger.
        stored_through: write-ahead for the session (see :class:`Session`); None: off.
    """

    def __init__(
        self,
        spec: ChargerSpec,
        *,
        rng: Rng,
        new_id: Callable[[], str],
        wall_epoch: float,
        now: float,
        profiles: Sequence[enum.StrEnum],
        plugin: ProtocolPlugin,
        outbox: Iterable[OutboxEntry] = (),
        memory: ChargerMemory | None = None,
        stored_through: int | None = None,
    ) -> None:
        if spec.connectors < 1:
            raise ValueError(f"a charge point needs at least one connector, got {spec.connectors}")
        self.spec = spec
        self.charger = spec.identity
        self.profiles = frozenset(profiles)
        """The feature profiles this charger implements (see :meth:`supports`)."""
        self.firmware_version = spec.firmware_version
        """The ``firmwareVersion`` the next BootNotification reports (an installed update
        changes it)."""
        self.activities = Activities()
        """What the long-running jobs report to a trigger (see :class:`Activities`)."""
        self.installed_certificates: dict[CertificateUse, list[str]] = {}
        """Root certificates installed over OCPP (InstallCertificate), PEM, by use: the
        manufacturer's roots check a firmware's signing certificate, the central system's
        roots a CertificateSigned chain."""
        self.reconnect_due: float | None = None
        """A reconnect with new credentials waits for this instant at the latest (see
        :meth:`use_credentials`); None: none asked for."""
        self.client_certificate: tuple[str, str] | None = None
        """The client certificate chain and its private key (PEM) installed over OCPP, used
        from the next connection on (security profile 3); None: the fleet file's."""
        self.wall_epoch = wall_epoch
        self.clock_offset = 0.0
        """Seconds the CS's clock (``currentTime``) is ahead of ``wall_epoch + now``."""
        self.breaches = Breaches()
        """What behaviour faults distort in the frames built now (see :mod:`.breaches`)."""
        self.effects: list[Effect] = []
        """Effects collected for the actor, in order (the session appends to the same list)."""
        self.config = ConfigurationStore(
            config_overrides(spec.config),
            number_of_connectors=spec.connectors,
            feature_profiles=[p.value for p in profiles],
        )
        self.cache = AuthorizationCache()
        self.charging_profiles = ChargingProfiles()
        """The installed charging profiles (SmartCharging); they cap the meters' power."""
        self.local_list = LocalAuthList(
            supported=self.supports(Profile.LOCAL_AUTH_LIST_MANAGEMENT))
        """The local authorization list (SendLocalList): kept through a reboot, lost in a
        crash."""
        self.reservations = Reservations()
        """The reservations (ReserveNow): read by the status rule and the transactions."""
        self.session = Session(
            spec.identity,
            new_id=new_id,
            supported_profiles=profiles,
            call_timeout=spec.call_timeout,
            outbox=outbox,
            effects=self.effects,
            plugin=plugin,
            stored_through=stored_through,
            next_seq=memory.next_seq if memory is not None else 1,
            transaction_ids={
                tx.local_tx: tx.transaction_id for tx in memory.open_transactions
                if tx.transaction_id is not None
            } if memory is not None else None,
        )
        duration = self.config.get_int("MinimumStatusDuration")
        self.connectors = {
            cid: ConnectorMachine(cid, now=now, minimum_status_duration=duration)
            for cid in range(spec.connectors + 1)
        }
        for machine in self.connectors.values():
            machine.mark_offline()
        registers = memory.registers_wh if memory is not None else ()
        self.meters = {
            cid: Meter(cid, max_power_kw=spec.max_power_kw, rng=child(rng), now=now,
                       phases=spec.phases, voltage_v=spec.voltage_v,
                       register_wh=max(0.0, registers[cid - 1]) if cid <= len(registers) else 0.0)
            for cid in range(1, spec.connectors + 1)
        }
        self.points = {cid: Point(cid) for cid in range(1, spec.connectors + 1)}
        self.availability = {cid: AvailabilityType.OPERATIVE for cid in self.connectors}
        self.scheduled: dict[int, AvailabilityType] = {}
        """ChangeAvailability requests waiting for a connector's transaction to end."""
        self.errors: dict[int, HardwareError] = {}
        self.boot = BootState.WAITING
        self.boot_at: float | None = None
        """When the BootNotification is sent again (after Pending, Rejected or a failure)."""
        self.boots_sent = 0
        self.powered = True
        """False between a Reboot effect and the next ``power_on``."""
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

    def stamp(self, now: float) -> dt.datetime:
        """The timestamp a frame built at ``now`` carries for ``now``: the wall clock, as a
        clock fault in force distorts it (naive for a ``no_zone`` skew)."""
        return self.breaches.stamp(self.wall(now), now, now)

    def status_request(self, report: StatusReport, now: float) -> StatusNotificationRequest:
        """The StatusNotification for ``report``, built at ``now`` (its timestamp is when the
        status began, on the charger's clock as a clock fault in force distorts it)."""
        request = report.to_request(self.wall_offset)
        stamp = self.breaches.stamp(request.timestamp, report.since, now) \
            if request.timestamp is not None else None
        if stamp is request.timestamp:
            return request
        return msgspec.structs.replace(request, timestamp=stamp)

    def written_register(self, connector_id: int, value_wh: int, now: float) -> int:
        """``meterStart``/``meterStop`` as a frame built at ``now`` writes the whole-Wh register
        ``value_wh`` of ``connector_id`` (moved by a meter fault in force)."""
        if not self.breaches.shifts:
            return value_wh
        delta, used = self.breaches.register_delta(connector_id, now, frame=True)
        self._note_shifts(used, connector_id, now)
        return shifted_register(value_wh, delta)

    def written_sample(
        self, connector_id: int, values: list[SampledValue], now: float, *, frame: bool
    ) -> tuple[SampledValue, ...]:
        """Sampled values of ``connector_id`` read at ``now`` as written (registers moved by a
        meter fault in force); ``frame``: they go into a MeterValues of their own."""
        if not self.breaches.shifts or not carries_register(values):
            return tuple(values)
        delta, used = self.breaches.register_delta(connector_id, now, frame=frame)
        self._note_shifts(used, connector_id, now)
        return shift_sampled(values, delta)

    def _note_shifts(self, used: list[RegisterShift], connector_id: int, now: float) -> None:
        for shift in used:
            self.note(now, "fault_applied", connector_id, fault=shift.fault,
                      injection=shift.injection, wh=shift.wh)

    def publish(self, event: Event) -> None:
        """Queue ``event`` for the bus."""
        self.effects.append(Publish(event))

    def note(self, now: float, what: str, connector: int | None = None, **data: object) -> None:
        """Publish a :class:`Note` (a decision worth recording)."""
        self.publish(Note(t=now, charger=self.charger, connector=connector, what=what,
                          data=dict(data)))

    def supports(self, profile: enum.StrEnum) -> bool:
        """Whether the charger implements ``profile`` (a handler of it is present)."""
        return profile in self.profiles

    def security_event(
        self, kind: SecurityEvent, now: float, tech_info: str | None = None
    ) -> None:
        """A security event happened: recorded as a ``security_event`` note, and, when the
        charger implements the Security extension, reported by a SecurityEventNotification.
        That message waits in the outbox like a transaction message (the whitepaper asks that
        security events be queued while offline), so it reaches the CS after the next accepted
        boot at the latest."""
        self.note(now, "security_event", type=kind.value, tech_info=tech_info)
        if self.supports(Profile.SECURITY):
            request = SecurityEventNotificationRequest(
                type=kind.value, timestamp=self.stamp(now),
                tech_info=None if tech_info is None else tech_info[:255],
            )
            self.session.enqueue_transaction(request, now, local_tx=None)

    def credentials(self) -> Credentials:
        """What the charger connects with now (see :class:`Credentials`)."""
        key = self.config.get_str("AuthorizationKey")
        chain, private_key = self.client_certificate or (None, None)
        return Credentials(
            security_profile=self.config.get_int("SecurityProfile"),
            authorization_key=key or None,
            certificate_chain=chain,
            private_key=private_key,
        )

    def use_credentials(self, *, reconnect_by: float | None = None) -> None:
        """Tell the actor the credentials changed (a ``UseCredentials`` effect). With
        ``reconnect_by`` (monotonic seconds), the charger also reconnects with them: once no
        CALL of its own waits for an answer (the central system may be answering it as the
        connection closes, and lose what follows), at ``reconnect_by`` at the latest; the
        charger machine sends that effect (:attr:`reconnect_due`)."""
        if reconnect_by is None:
            self.effects.append(UseCredentials(self.credentials()))
        else:
            self.reconnect_due = reconnect_by

    # --- configuration ------------------------------------------------------------------------

    def auth_settings(self) -> AuthSettings:
        """The authorization keys as they are now."""
        return AuthSettings.from_configuration(self.config)

    def sync_session_settings(self) -> None:
        """Push the keys the session and connectors read into them."""
        self.session.attempts = self.config.get_int("TransactionMessageAttempts")
        self.session.retry_interval = float(
            self.config.get_int("TransactionMessageRetryInterval")
        )
        duration = self.config.get_int("MinimumStatusDuration")
        for machine in self.connectors.values():
            machine.set_minimum_status_duration(duration)

    # --- registration and power ---------------------------------------------------------------

    def accepted_online(self) -> bool:
        """True when the charger may talk freely: connected and boot Accepted."""
        return self.session.online and self.boot == BootState.ACCEPTED

    def send_boot(self, now: float) -> None:
        """Send a BootNotification. Unless the charger is already Accepted (a triggered boot),
        it now waits for the answer (BOOTING); either way the outbox holds until the answer."""
        spec = self.spec
        request = BootNotificationRequest(
            charge_point_vendor=spec.vendor,
            charge_point_model=spec.model,
            charge_point_serial_number=spec.serial_number,
            firmware_version=self.firmware_version,
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

    def go_down(self, now: float, delay: float | None = None) -> None:
        """Power off for a reboot: the actor closes the socket, waits ``delay`` seconds (None:
        the spec's ``reboot_delay``) and calls ``power_on``."""
        down_for = self.spec.reboot_delay if delay is None else delay
        self.boot_at = None
        self.powered = False
        self.effects.append(Reboot(down_for))
        self.note(now, "reboot", delay=down_for)

    # --- status -------------------------------------------------------------------------------

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

    def desired_status(self, connector_id: int) -> ChargePointStatus:
        """The status a connector should show, from its point, availability and
        reservations."""
        if self.faulted(connector_id):
            return _S.FAULTED
        if connector_id == 0:
            inoperative = self.availability[0] == AvailabilityType.INOPERATIVE
            return _S.UNAVAILABLE if inoperative else _S.AVAILABLE
        point = self.points[connector_id]
        tx = point.transaction
        if tx is not None:
            meter = self.meters[connector_id]
            return delivery_status(
                ev_suspended=point.ev is None or meter.ev_full,
                evse_suspended=(tx.energy_cap_wh is not None and not meter.delivering)
                or meter.limit_w == 0,  # a charging limit of 0 suspends the EVSE
            )
        if not self.operative(connector_id):
            return _S.UNAVAILABLE
        if point.finished:
            return _S.FINISHING
        if point.ready_tag is None and self.reservations.holds(connector_id, self.points,
                                                                self.operative):
            return _S.RESERVED  # (a reserved connector stays so when an EV comes without the tag)
        if point.ev is not None or point.ready_tag is not None:
            return _S.PREPARING
        return _S.AVAILABLE

    def refresh_status(self, connector_id: int, now: float) -> None:
        """Move the connector to its desired status (legal steps only). A connector (0: the
        charge point) going Faulted or Unavailable ends its reservations."""
        target = self.desired_status(connector_id)
        if target in (_S.FAULTED, _S.UNAVAILABLE):
            for ended in self.reservations.end_at(connector_id):
                self.reservation_ended(ended, now, target.value)
        self.move(connector_id, target, now)

    def reservation_ended(self, reservation: Reservation, now: float, why: str) -> None:
        """Record that ``reservation`` ended (``why``: Expired, Cancelled, Faulted, ...)."""
        self.note(now, "reservation_ended", reservation.connector_id,
                  reservation_id=reservation.reservation_id, reason=why)

    def refresh_all(self, now: float) -> None:
        """Refresh every connector's status, connector 0 included."""
        for connector_id in self.connectors:
            self.refresh_status(connector_id, now)

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
            return  # nothing to change, nothing to publish
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

    # --- availability -------------------------------------------------------------------------

    def set_availability(self, connector_id: int, wanted: AvailabilityType, now: float) -> None:
        """Make a connector (0: the charge point as a whole) Operative or Inoperative."""
        self.availability[connector_id] = wanted
        if connector_id == 0:
            for cid in self.connectors:
                if cid != 0:
                    self.availability[cid] = wanted
        if wanted == AvailabilityType.INOPERATIVE:
            for cid in self.points if connector_id == 0 else (connector_id,):
                self.points[cid].ready_tag = None
        self.refresh_all(now)

    def apply_scheduled(self, connector_id: int, now: float) -> None:
        """Apply a ChangeAvailability that waited for this connector's transaction to end
        (connector 0's waits for every transaction)."""
        for cid in (connector_id, 0):
            wanted = self.scheduled.get(cid)
            busy = any(p.transaction is not None for p in self.points.values()) if cid == 0 \
                else self.points[cid].transaction is not None
            if wanted is not None and not busy:
                del self.scheduled[cid]
                self.set_availability(cid, wanted, now)


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
