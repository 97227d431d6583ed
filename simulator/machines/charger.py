"""The charger machine: one OCPP charge point as a pure, deterministic state machine.

:class:`ChargerMachine` is the public face of the charger logic, composed of parts that each own
their state and share one :class:`~simulator.machines.context.ChargerContext` (configuration,
session, connectors, meters, points):

- :class:`~simulator.machines.registration.Registration`: boot, heartbeat, status reports, clock;
- :class:`~simulator.machines.transactions.Transactions`: authorization and transactions;
- :class:`~simulator.machines.metering.Metering`: MeterValues and energy caps;
- :class:`~simulator.machines.reboot.RebootSequence`: going down for a reboot;
- :class:`~simulator.machines.faults.Faults`: the chaos catalog's behaviour faults
  (:meth:`ChargerMachine.inject`);
- :class:`~simulator.machines.jobs.Jobs`: firmware updates, diagnostics and log uploads (a real
  transfer's outcome comes back through :meth:`ChargerMachine.transfer_done`);
- one :class:`~simulator.machines.profiles.ProfileHandler` per supported feature profile (Core,
  FirmwareManagement, LocalAuthListManagement, Reservation, SmartCharging, RemoteTrigger, the
  Security extension), to which a CALL from the central system is dispatched by its action's
  profile.

The actor drives the machine with method calls that take ``now`` (monotonic seconds) and
applies the effects it collects (see docs/internals.md). Every input ends with one *settle*:
what the session reported is handled and whatever is due at ``now`` runs, until nothing changes.
Nothing falls due before :meth:`ChargerMachine.next_deadline`, the earliest of the instants the
parts keep, so :meth:`ChargerMachine.tick` settles only once that instant has come.

Rules (OCPP 1.6 core specification, §4-§5; the parts' modules hold the rest):

- While the boot is Rejected the charger is silent: CS calls are not answered, not even a broken
  one with a CALLERROR (what comes in is still recorded).
- A reconnect does not re-boot; a reboot (Reset, :meth:`ChargerMachine.reboot`, or the actor
  restarting the charger) does, and then every connector reports its status again.
- **EV side.** Unplugging during a transaction stops it with EVDisconnected when
  ``StopTransactionOnEVSideDisconnect`` (Finishing; then Available when
  ``UnlockConnectorOnEVSideDisconnect`` releases the cable, else Finishing until the cable is
  taken out or unlocked), else the transaction goes on in SuspendedEV. Presenting
  the tag that started a transaction stops it (reason Local).
- **Power loss.** A charger restarted with the memory of an earlier life (after a crash, or by
  ``--resume`` after a kill) goes on with its energy registers, its numbering and the firmware
  installed over OCPP, and at power-on
  stops every transaction that was running then with reason PowerLoss and the last meter value
  it knew; those StopTransactions queue behind the messages kept in the outbox.
- **Shutdown** (the end of a run) stops every running transaction with reason Local and forgets
  tags still waiting; the queued messages stay in the outbox for the actor's grace period.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Final

import msgspec

from simulator.machines.auth import same_id_tag
from simulator.machines.connector import ev_side_disconnect
from simulator.machines.context import BOOT, ChargerContext
from simulator.machines.domain import ChargerStatistics, ConnectorView
from simulator.machines.effects import (
    ChargerMemory,
    Credentials,
    Effect,
    OpenTransaction,
    OutboxEntry,
    PersistOutbox,
    UseCredentials,
)
from simulator.machines.faults import DuplicateStart, FaultOrder, Faults
from simulator.machines.jobs import Jobs
from simulator.machines.meter import EvSpec
from simulator.machines.metering import Metering
from simulator.machines.outcomes import CallAnswered, CallFailed, IncomingCall, Outcome
from simulator.machines.parts import (
    BootState,
    ChargerSpec,
    Transaction,
    earliest,
)
from simulator.machines.profiles import AwaitsAnswer
from simulator.machines.profiles.assembly import (
    SUPPORTED_PROFILES,
    build_handlers,
    charger_profiles,
)
from simulator.machines.reboot import RebootSequence
from simulator.machines.registration import Registration
from simulator.machines.transactions import AuthorizeContext, Transactions
from simulator.machines.triggers import Triggers
from simulator.ocpp.frames import ErrorCode
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import (
    PLUGIN,
    BootNotificationResponse,
    ChargePointErrorCode,
    ChargePointStatus,
    HeartbeatResponse,
    Reason,
    SecurityEvent,
    StartTransactionResponse,
    StatusNotificationRequest,
    StopTransactionResponse,
)
from simulator.seeds import Rng, child

__all__ = [
    "SUPPORTED_PROFILES",
    "BootState",
    "ChargerMachine",
    "ChargerSpec",
    "ChargerStatistics",
    "ConnectFailure",
    "charger_profiles",
]

class ConnectFailure(enum.StrEnum):
    """Why a connection attempt failed, as far as security goes (the actor classifies the TLS
    error or the HTTP answer; :meth:`ChargerMachine.connect_failed`)."""

    SERVER_CERTIFICATE = "server_certificate"
    """The central system's certificate is not trusted, or does not name its host."""
    TLS_VERSION = "tls_version"
    """No TLS version both sides accept."""
    TLS_CIPHER_SUITE = "tls_cipher_suite"
    """No cipher suite both sides accept."""
    CREDENTIALS_REFUSED = "credentials_refused"
    """The central system refused the charger's credentials: HTTP 401 or 403 at the
    handshake, or a TLS alert against its client certificate."""


_CONNECT_SECURITY_EVENTS: Final = {
    ConnectFailure.SERVER_CERTIFICATE: SecurityEvent.INVALID_CENTRAL_SYSTEM_CERTIFICATE,
    ConnectFailure.TLS_VERSION: SecurityEvent.INVALID_TLS_VERSION,
    ConnectFailure.TLS_CIPHER_SUITE: SecurityEvent.INVALID_TLS_CIPHER_SUITE,
    ConnectFailure.CREDENTIALS_REFUSED: SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CENTRAL_SYSTEM,
}
"""The security event each failure raises (1.6 security whitepaper, Appendix 1)."""

_MAX_SETTLE_ROUNDS: Final = 64
"""A bound on the rounds of one settle (each round handles what the last one caused)."""


class ChargerMachine:
    """One charge point (see the module docstring for the rules).

    Args:
        spec: what the charge point is (identity, vendor, connectors, configuration overrides).
        rng: the charger's random stream; meter noise and boot spreading derive from it.
        new_id: makes OCPP message ids (≤ 36 characters, unique per charger).
        wall_epoch: Unix seconds at ``now == 0`` (the clock before the CS sets it).
        now: monotonic seconds at construction.
        outbox: transaction messages restored from a previous run (delivered after the boot).
        plugin: the protocol version on the wire (action table, codec); OCPP 1.6 by default.
        memory: what the charger kept through a power loss (see the module docstring); None:
            a new charger.
        stored_through: write-ahead: the highest outbox ``seq`` already stored (None: off).
            With it, a transaction message goes on the wire only once the actor reported a
            snapshot holding it stored (:meth:`outbox_stored`).
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
        plugin: ProtocolPlugin = PLUGIN,
        memory: ChargerMemory | None = None,
        stored_through: int | None = None,
    ) -> None:
        restored = tuple(outbox)
        self._plugin = plugin
        self._ctx = ctx = ChargerContext(
            spec, rng=rng, new_id=new_id, wall_epoch=wall_epoch, now=now,
            profiles=charger_profiles(spec), plugin=plugin, outbox=restored, memory=memory,
            stored_through=stored_through,
        )
        self._metering = Metering(ctx)
        self._transactions = Transactions(
            ctx, self._metering, restored,
            next_local_tx=memory.next_local_tx if memory is not None else 1,
        )
        if memory is not None and memory.firmware_version is not None:
            ctx.firmware_version = memory.firmware_version
        self._interrupted: tuple[OpenTransaction, ...] = (
            memory.open_transactions if memory is not None else ()
        )
        """Transactions of an earlier life, stopped with PowerLoss at the next power-on."""
        self._reboots = RebootSequence(ctx, self._transactions)
        self._registration = Registration(ctx, self._metering, child(rng))
        self._jobs = jobs = Jobs(ctx, child(rng), reboots=self._reboots)
        self._handlers = build_handlers(
            ctx, transactions=self._transactions, metering=self._metering,
            reboots=self._reboots, jobs=jobs, triggers=Triggers(ctx, metering=self._metering),
            rng=rng,
        )
        self._timed = tuple(h for h in self._handlers.values() if h.has_timers())
        """The handlers with timers of their own (asked at every step)."""
        self._faults = Faults(ctx, reboots=self._reboots, transactions=self._transactions,
                              plugin=plugin, jobs=jobs)
        self._connect_failures: set[ConnectFailure] = set()
        """The failures already reported since the last connection (one event each)."""

    @property
    def spec(self) -> ChargerSpec:
        """What the charge point is (as constructed)."""
        return self._ctx.spec

    # --- power and connection -----------------------------------------------------------------

    def power_on(self, now: float) -> None:
        """(Re)boot: pending configuration changes take effect, and the BootNotification goes out
        on the current or next connection. Energy registers and availability survive."""
        ctx = self._ctx
        ctx.powered = True
        self._reboots.cancel()
        self._registration.power_on(now)
        self._metering.stop_schedule()
        ctx.session.transactions_enabled = False
        applied = ctx.config.reboot()
        if applied:
            ctx.note(now, "configuration_applied", keys=list(applied))
        ctx.sync_session_settings()
        for point in ctx.points.values():
            point.ready_tag = None
            point.authorizing = None
        for machine in ctx.connectors.values():
            machine.mark_offline()
            machine.forget_reported()
        for handler in self._handlers.values():
            handler.powered_on(now)
        self._jobs.powered_on(now)
        self._faults.powered_on(now)
        interrupted, self._interrupted = self._interrupted, ()
        self._transactions.stop_interrupted(interrupted, now)
        ctx.refresh_all(now)
        if ctx.session.online:
            ctx.send_boot(now)
        self._settle(now)

    def connected(self, now: float) -> None:
        """The transport is up. Boot if the charger has not registered yet (and is not waiting
        out a Rejected/Pending interval); an Accepted charger just carries on."""
        self._ctx.session.connected(now)
        self._connect_failures.clear()
        if not self._ctx.powered:
            return
        self._faults.connected()
        self._registration.connected(now)
        self._settle(now)

    def connect_failed(self, failure: ConnectFailure, now: float,
                       detail: str | None = None) -> None:
        """A connection attempt failed for a security reason: raise its security event
        (queued; sent once connected, when the charger implements the Security extension),
        once per kind until a connection opens again, not on every retry. ``detail`` (the
        cause, never a secret) goes into the event's techInfo."""
        if failure not in self._connect_failures:
            self._connect_failures.add(failure)
            self._ctx.security_event(_CONNECT_SECURITY_EVENTS[failure], now, detail)
        self._settle(now)

    def disconnected(self, now: float) -> None:
        """The transport is down: queued transaction messages stay queued, statuses wait (a
        reconnect with new credentials that waited for quiet is simply the next connection)."""
        ctx = self._ctx
        if ctx.reconnect_due is not None:
            ctx.reconnect_due = None
            ctx.effects.append(UseCredentials(ctx.credentials()))
        self._ctx.session.disconnected(now)
        for machine in self._ctx.connectors.values():
            machine.mark_offline()
        self._faults.disconnected(now)
        self._settle(now)

    def outbox_stored(self, through: int, now: float) -> None:
        """Write-ahead: the snapshot holding every outbox message up to ``seq == through`` is
        stored (durable), so those may go on the wire. Ignored without write-ahead."""
        self._ctx.session.stored(through, now)
        self._settle(now)

    def receive(self, data: bytes | str, now: float) -> None:
        """One text frame from the CS (ignored while the charger is down)."""
        ctx = self._ctx
        if not ctx.powered:
            return
        ctx.session.silent = ctx.boot == BootState.REJECTED
        ctx.session.receive(data, now)
        self._settle(now)

    def receive_binary(self, data: bytes, now: float) -> None:
        """One binary frame from the CS: recorded as a violation and ignored (OCPP-J is text
        only; ignored altogether while the charger is down)."""
        if not self._ctx.powered:
            return
        self._ctx.session.receive_binary(data, now)
        self._settle(now)

    def tick(self, now: float) -> None:
        """Time passed: run whatever fell due by ``now``. Nothing falls due before
        :meth:`next_deadline` (every other input settles the machine at its own ``now``), so
        a tick before it changes nothing."""
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self._settle(now)

    def reboot(self, now: float, *, hard: bool = False) -> None:
        """A local reboot (the operator's, not the CS's). Soft: every running transaction stops
        with reason Reboot, and the charger goes down (a ``Reboot`` effect) once those
        StopTransactions are delivered, the link is down, or ``call_timeout`` seconds passed.
        Hard (a power cut): down at once with no graceful stop; the interrupted transactions
        are closed with reason PowerLoss by StopTransactions that wait in the outbox until the
        next accepted boot. Ignored while the charger is already down."""
        if not self._ctx.powered:
            return
        reason = Reason.POWER_LOSS if hard else Reason.REBOOT
        self._reboots.begin(now, reason, hard=hard, note="reboot_requested")
        self._settle(now)

    def transfer_done(self, job: str, ok: bool, data: bytes | None, now: float, *,
                      detail: str = "") -> None:
        """A real transfer the machine asked for (a ``Transfer`` effect named ``job``) ended:
        ``ok`` whether it succeeded, ``data`` a download's bytes, ``detail`` what went wrong
        (one line, no secret). A result for a step that ended since is ignored."""
        self._jobs.transfer_done(job, ok, data, now, detail)
        self._settle(now)

    def inject(self, injection: FaultOrder, now: float) -> None:
        """A behaviour fault of the chaos catalog (an ``Injection`` the director decided),
        applied as :mod:`simulator.machines.faults` says; it ends by itself at its ``until``.
        Raises ``ValueError`` for a fault of another family."""
        self._faults.inject(injection, now)
        self._settle(now)

    def end_fault(self, injection: str, now: float) -> bool:
        """End the behaviour fault ``injection`` now, before its ``until``
        (:meth:`simulator.machines.faults.Faults.end`); whether this charger had it in
        force."""
        ended = self._faults.end(injection, now)
        self._settle(now)
        return ended

    # --- the driver and the car ---------------------------------------------------------------

    def plug_in(self, connector_id: int, now: float, *, ev: EvSpec) -> None:
        """An EV is plugged into ``connector_id``. With a tag already authorized, the transaction
        starts; with a transaction going on (the EV came back), charging resumes."""
        ctx = self._ctx
        point = ctx.points[connector_id]
        point.ev = ev
        if point.transaction is None:
            point.finished = False
        ctx.meters[connector_id].plug_in(ev, now)
        if point.transaction is None and point.ready_tag is not None and ctx.powered:
            self._transactions.start_transaction(connector_id, point.ready_tag, now)
        else:
            ctx.refresh_status(connector_id, now)
        self._settle(now)

    def unplug(self, connector_id: int, now: float) -> None:
        """The EV is unplugged from ``connector_id`` (the EV-side disconnect rules apply)."""
        ctx = self._ctx
        point = ctx.points[connector_id]
        outcome = ev_side_disconnect(
            ctx.connectors[connector_id].status,
            in_transaction=point.transaction is not None,
            stop_transaction_on_ev_side_disconnect=ctx.config.get_bool(
                "StopTransactionOnEVSideDisconnect"),
            unlock_connector_on_ev_side_disconnect=ctx.config.get_bool(
                "UnlockConnectorOnEVSideDisconnect"),
        )
        if outcome.stop_reason is not None:
            # Stopped while the cable is still in: Finishing first.
            self._transactions.stop_transaction(connector_id, now, outcome.stop_reason)
        ctx.meters[connector_id].unplug(now)
        point.ev = None
        # A cable still locked at the charge point keeps it Finishing until it is taken out
        # (the next unplug) or unlocked by UnlockConnector.
        point.finished = outcome.stop_reason is not None and not outcome.unlock
        ctx.refresh_status(connector_id, now)
        self._settle(now)

    def present_tag(
        self, connector_id: int, id_tag: str, now: float, *, start_only: bool = False
    ) -> None:
        """A driver presents ``id_tag`` at ``connector_id``: the tag that started the running
        transaction stops it; otherwise the tag is authorized for a new one. A driver who only
        means to start (``start_only``) leaves a running transaction alone: e.g. one the CS
        started remotely for the car just plugged in."""
        ctx = self._ctx
        point = ctx.points[connector_id]
        tx = point.transaction
        if tx is not None and start_only:
            ctx.note(now, "tag_ignored", connector_id, id_tag=id_tag,
                     reason="a transaction is already running here")
        elif tx is not None:
            if same_id_tag(tx.id_tag, id_tag):
                self._transactions.stop_transaction(connector_id, now, Reason.LOCAL,
                                                    id_tag=id_tag)
            else:
                ctx.note(now, "tag_ignored", connector_id, id_tag=id_tag,
                         reason="another transaction is running here")
        elif point.authorizing is None and ctx.powered:
            self._transactions.authorize(connector_id, id_tag, now)
        self._settle(now)

    def hardware_error(
        self,
        connector_id: int,
        error_code: ChargePointErrorCode,
        now: float,
        *,
        info: str | None = None,
        vendor_error_code: str | None = None,
    ) -> None:
        """The hardware reports ``error_code`` at ``connector_id`` (0: the charge point as a
        whole); ``NoError`` clears it. A warning (e.g. HighTemperature) is reported with the
        current status; a fault (e.g. GroundFailure) takes the connector to Faulted and stops
        its transaction with reason Other, a fault at connector 0 every transaction (the
        connectors then show Unavailable). Clearing returns to the status the situation
        calls for."""
        self._transactions.hardware_error(connector_id, error_code, now, info=info,
                                          vendor_error_code=vendor_error_code)
        self._settle(now)

    def stop_local(self, connector_id: int, now: float, *, reason: Reason = Reason.LOCAL) -> None:
        """Stop the transaction at ``connector_id`` on the charger's own initiative."""
        self._transactions.stop_transaction(connector_id, now, reason)
        self._settle(now)

    def shutdown(self, now: float) -> int:
        """The run ends: stop every running transaction with reason Local, and forget tags that
        wait for a cable or an Authorize answer (so no transaction starts after the end).
        Returns how many transactions were stopped."""
        ctx = self._ctx
        stopped = self._transactions.stop_all(now, Reason.LOCAL)
        for point in ctx.points.values():
            point.ready_tag = None
            point.authorizing = None
        ctx.refresh_all(now)
        self._settle(now)
        return stopped

    # --- outputs ------------------------------------------------------------------------------

    def take_effects(self) -> list[Effect]:
        """Hand over (and forget) the effects collected so far, in order. The outbox snapshots
        among them become one: the last, carrying :meth:`memory`, at the place of the first (so
        it goes ahead of the events that tell of the same change)."""
        effects = list(self._ctx.effects)
        self._ctx.effects.clear()
        snapshots = [i for i, effect in enumerate(effects) if isinstance(effect, PersistOutbox)]
        if snapshots:
            last = effects[snapshots[-1]]
            assert isinstance(last, PersistOutbox)
            effects[snapshots[0]] = msgspec.structs.replace(last, memory=self.memory())
            for index in reversed(snapshots[1:]):
                del effects[index]
        return effects

    def memory(self) -> ChargerMemory:
        """What the charger keeps through a power loss now (see :class:`ChargerMemory`)."""
        ctx = self._ctx
        running = tuple(
            OpenTransaction(local_tx=tx.local_id, connector_id=tx.connector_id,
                            transaction_id=tx.transaction_id)
            for tx in self.transactions()
        )
        return ChargerMemory(
            next_local_tx=self._transactions.next_local_tx,
            next_seq=ctx.session.next_seq,
            registers_wh=tuple(ctx.meters[c].register_wh for c in sorted(ctx.meters)),
            open_transactions=self._interrupted + running,
            firmware_version=None if ctx.firmware_version == ctx.spec.firmware_version
            else ctx.firmware_version,
        )

    def credentials(self) -> Credentials:
        """What the charger connects with now (its security settings and secrets: for the
        actor's next connection only, never to be recorded)."""
        return self._ctx.credentials()

    def export_outbox(self) -> tuple[OutboxEntry, ...]:
        """The queued transaction messages, head first."""
        return self._ctx.session.export_outbox()

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must next be called, or None when nothing is scheduled. While the
        charger is down (between a Reboot effect and ``power_on``) nothing of its own falls
        due: the actor wakes it with ``power_on``."""
        session = self._ctx.session
        if not self._ctx.powered:
            return session.next_deadline()
        return earliest(
            session.next_deadline(), self._registration.next_deadline(),
            self._reboots.next_deadline(), self._transactions.next_deadline(),
            self._metering.next_deadline(), self._faults.next_deadline(),
            self._jobs.next_deadline(), self._ctx.reconnect_due,
            *[handler.next_deadline() for handler in self._timed],
        )

    def statistics(self) -> ChargerStatistics:
        """A frozen snapshot of the charger."""
        ctx = self._ctx
        pending = ctx.session.pending
        return ChargerStatistics(
            identity=ctx.charger,
            boot=ctx.boot,
            online=ctx.session.online,
            powered=ctx.powered,
            statuses=tuple(ctx.connectors[c].status for c in sorted(ctx.connectors)),
            in_transaction=sum(p.transaction is not None for p in ctx.points.values()),
            outbox=len(ctx.session.export_outbox()),
            call_pending=pending is not None,
            boots_sent=ctx.boots_sent,
            transactions_started=self._transactions.transactions_started,
            transactions_stopped=self._transactions.transactions_stopped,
            energy_wh=tuple(ctx.meters[c].register_wh for c in sorted(ctx.meters)),
            pending_call=pending.unique_id if pending is not None else None,
            queued_calls=tuple(ctx.session.queued_actions()),
        )

    def connector_statuses(self) -> tuple[ChargePointStatus, ...]:
        """Every connector's status, by connector id from 0 (the charge point): a cheap read for
        views polled often (no snapshot of the rest)."""
        return tuple([machine.status for machine in self._ctx.connectors.values()])  # (faster)

    def error_codes(self) -> tuple[ChargePointErrorCode, ...]:
        """Every connector's current error code, by connector id from 0 (a read)."""
        return tuple(machine.error_code for machine in self._ctx.connectors.values())

    @property
    def boot(self) -> BootState:
        """Where the charger is in its registration with the central system (a read)."""
        return self._ctx.boot

    def configuration(self) -> tuple[tuple[str, str | None, bool], ...]:
        """Every configuration key as ``(key, value, readonly)``, the value of a secret (a
        write-only key such as ``AuthorizationKey``) withheld as None: safe to show (a read)."""
        return self._ctx.config.entries()

    def transactions(self) -> tuple[Transaction, ...]:
        """The running transactions, by connector."""
        points = self._ctx.points
        return tuple(p.transaction for _, p in sorted(points.items())
                     if p.transaction is not None)

    def connectors(self) -> tuple[ConnectorView, ...]:
        """A frozen view of every connector, indexed by connector id (0: the charge point)."""
        ctx = self._ctx
        views = []
        for cid in sorted(ctx.connectors):
            point = ctx.points.get(cid)
            tx = point.transaction if point is not None else None
            views.append(ConnectorView(
                connector_id=cid,
                status=ctx.connectors[cid].status,
                in_transaction=tx is not None,
                energy_wh=ctx.meters[cid].register_wh if cid in ctx.meters else 0.0,
                transaction_id=tx.transaction_id if tx is not None else None,
                plugged=point is not None and point.ev is not None,
            ))
        return tuple(views)

    # --- the engine ---------------------------------------------------------------------------

    def _settle(self, now: float) -> None:
        """Process what the session reported, then everything that is due at ``now``, until
        nothing more happens. Every input ends here."""
        session = self._ctx.session
        session.tick(now)
        for round_ in range(_MAX_SETTLE_ROUNDS):
            outcomes = session.take_outcomes()
            if not outcomes and round_ > 0:
                break
            for outcome in outcomes:
                self._on_outcome(outcome, now)
            self._due(now)
        self._reconnect_when_quiet(now)
        self._metering.plan(now)

    def _reconnect_when_quiet(self, now: float) -> None:
        """A reconnect with new credentials goes once no CALL of ours is in flight (or at its
        deadline): see :meth:`ChargerContext.use_credentials`."""
        ctx = self._ctx
        due = ctx.reconnect_due
        if due is not None and (ctx.session.pending is None or now >= due):
            ctx.reconnect_due = None
            ctx.effects.append(UseCredentials(ctx.credentials(), reconnect=True))

    def _due(self, now: float) -> None:
        if self._faults.active:
            for call in self._faults.due(now):
                self._answer_call(call, now)
        self._registration.retry_boot(now)
        self._transactions.due(now)
        self._metering.due(now)
        self._reboots.due(now)
        self._jobs.due(now)
        for handler in self._timed:
            handler.due(now)
        self._registration.report(now)

    # --- what the session reports ---------------------------------------------------------------

    def _on_outcome(self, outcome: Outcome, now: float) -> None:
        match outcome:
            case IncomingCall():
                self._dispatch(outcome, now)
            case CallAnswered():
                self._on_answer(outcome, now)
            case CallFailed():
                self._on_failure(outcome, now)

    def _dispatch(self, call: IncomingCall, now: float) -> None:
        """Hand a CS CALL to the handler of its action's profile."""
        ctx = self._ctx
        if ctx.boot == BootState.REJECTED:
            ctx.note(now, "call_ignored", action=call.action,
                     reason="boot rejected: silent until the retry")
            return
        if not self._faults.hold(call, now):
            self._answer_call(call, now)

    def _answer_call(self, call: IncomingCall, now: float) -> None:
        """Answer a CS CALL now: refused by a fault in force, or by its profile's handler."""
        ctx = self._ctx
        if self._faults.refuse(call, now):
            return
        spec = self._plugin.actions.get(call.action)
        handler = self._handlers.get(spec.profile) if spec is not None else None
        if handler is None:  # (the session refuses these before they get here)
            ctx.session.reply_error(call.unique_id, call.action, ErrorCode.NOT_SUPPORTED,
                                    f"{call.action} is not supported", now)
            return
        handler.handle(call, now)

    def _on_answer(self, answered: CallAnswered, now: float) -> None:
        call, response = answered.call, answered.response
        if call.context == BOOT and isinstance(response, BootNotificationResponse):
            self._registration.boot_answered(response, now)
        elif isinstance(call.context, AuthorizeContext):
            self._transactions.authorize_answered(call.context, response.id_tag_info, now)
        elif call.entry is not None and isinstance(response, StartTransactionResponse):
            self._transactions.start_answered(call.entry, response, now)
            self._faults.start_answered(call.entry, response, now)
        elif call.entry is not None and isinstance(response, StopTransactionResponse):
            self._transactions.stop_answered(call.entry, response, now)
            self._faults.stop_answered(call.entry)
        elif isinstance(call.context, DuplicateStart) and \
                isinstance(response, StartTransactionResponse):
            self._faults.duplicate_answered(call, response, now)
        elif isinstance(call.context, AwaitsAnswer):
            call.context.answered(response, now)
        elif isinstance(response, HeartbeatResponse):
            self._registration.sync_clock(response.current_time, now)

    def _on_failure(self, failed: CallFailed, now: float) -> None:
        call = failed.call
        if call.context == BOOT:
            self._registration.boot_failed(failed, now)
        elif isinstance(call.context, AuthorizeContext):
            self._transactions.authorize_failed(call.context, now)
        elif isinstance(call.request, StatusNotificationRequest):
            self._registration.status_failed(call.request, failed.reason)
        elif isinstance(call.context, AwaitsAnswer):
            call.context.failed(failed.reason, now)
        elif call.entry is not None and failed.final and call.entry.action == "StartTransaction":
            self._ctx.note(now, "start_transaction_given_up", local_id=call.entry.local_tx,
                           reason=failed.reason)
