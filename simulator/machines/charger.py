"""The charger machine: one OCPP 1.6 charge point as a pure, deterministic state machine.

:class:`ChargerMachine` is the public face of the charger logic. It composes the configuration
store, authorization, one connector machine and one meter per connector, the transaction logic
(:mod:`.transactions`) and the CS-initiated operations (:mod:`.operations`) over one OCPP-J
:class:`~simulator.machines.session.Session`. The actor drives it with method calls that take
``now`` (monotonic seconds) and applies the effects it collects (see docs/internals.md).

Rules (OCPP 1.6 core spec; OCPP16.md §2-§4):

- **Boot.** After ``power_on`` the first thing on a new connection is a BootNotification; nothing
  else is sent before the CS answers Accepted or Pending. Pending: CS calls are answered and only
  what they trigger is sent; the boot is repeated after ``interval``. Rejected: silent (CS calls
  are not answered) until ``interval`` has passed, then the boot is repeated; an ``interval`` of 0
  is spread over 0.5-1.5 times ``boot_retry`` from the charger's RNG, so a fleet does not retry in
  lockstep. ``currentTime`` of the answer sets the charger's clock (so does a Heartbeat's). A
  reconnect does not re-boot; a reboot (Reset, or the actor restarting the charger) does, and
  then every connector reports its status again. While any boot (a triggered one included) waits
  for its answer, and after a Pending or Rejected one, the transaction outbox holds; the clock-
  aligned schedule follows every clock sync.
- **Heartbeat** once ``HeartbeatInterval`` seconds (the Accepted boot's ``interval`` sets it)
  passed without any frame of ours on the wire, while connected and Accepted: any PDU proves
  liveness, so a busy charger sends none.
- **Status.** A connector's status follows from what happens at it and moves only along the
  transition table; a status is reported once it has held ``MinimumStatusDuration`` seconds,
  only while connected and Accepted, and after a reconnect only the current status goes out (also
  when the last report was lost with the link before it reached the CS).
- **Preparing times out** after ``ConnectionTimeOut`` seconds when a driver's tag (or a remote
  start) waits for a cable that never comes.
- **EV side.** Unplugging during a transaction stops it with EVDisconnected when
  ``StopTransactionOnEVSideDisconnect`` (Finishing; then Available when
  ``UnlockConnectorOnEVSideDisconnect`` releases the cable, else Finishing until the cable is
  taken out or unlocked), else the transaction goes on in SuspendedEV. Presenting
  the tag that started a transaction stops it (reason Local).
- **Shutdown** (the end of a run) stops every running transaction with reason Local and forgets
  tags still waiting; the queued messages stay in the outbox for the actor's grace period.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Iterable
from typing import Final

from simulator.events import BootResult, Note
from simulator.machines.auth import same_id_tag
from simulator.machines.charger_state import (
    SUPPORTED_PROFILES,
    BootState,
    ChargerSpec,
    HardwareError,
    Transaction,
)
from simulator.machines.connector import ev_side_disconnect
from simulator.machines.effects import Effect, OutboxEntry
from simulator.machines.meter import EvSpec
from simulator.machines.operations import BOOT, Operations
from simulator.machines.session import CallAnswered, CallFailed, IncomingCall, Outcome
from simulator.machines.transactions import AuthorizeContext
from simulator.ocpp.v16 import (
    BootNotificationResponse,
    ChargePointErrorCode,
    ChargePointStatus,
    HeartbeatRequest,
    HeartbeatResponse,
    Reason,
    RegistrationStatus,
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
]

STATUS_REFRESH: Final = 30.0
"""While energy flows, how often the charger re-checks whether the EV became full (SuspendedEV)."""

_CONNECTION_LOST: Final = frozenset({"connection lost", "offline"})
_BOOT_RETRY: Final = frozenset({BootState.REJECTED, BootState.PENDING, BootState.WAITING})
"""Boot states in which a reached ``boot_at`` sends the BootNotification again."""


@dataclasses.dataclass(frozen=True, slots=True)
class ChargerStatistics:
    """A snapshot of one charger for views and tests.

    ``outbox`` is the number of queued transaction messages, ``call_pending`` whether one of our
    CALLs waits for its result; the charger is *drained* when both are zero/false.
    """

    identity: str
    boot: BootState
    online: bool
    powered: bool
    statuses: tuple[ChargePointStatus, ...]
    in_transaction: int
    outbox: int
    call_pending: bool
    boots_sent: int
    transactions_started: int
    transactions_stopped: int
    energy_wh: tuple[float, ...]

    @property
    def drained(self) -> bool:
        """Nothing of ours is queued or in flight."""
        return self.outbox == 0 and not self.call_pending


class ChargerMachine(Operations):
    """One charge point (see the module docstring for the rules).

    Args:
        spec: what the charge point is (identity, vendor, connectors, configuration overrides).
        rng: the charger's random stream; meter noise and boot spreading derive from it.
        new_id: makes OCPP message ids (≤ 36 characters, unique per charger).
        wall_epoch: Unix seconds at ``now == 0`` (the clock before the CS sets it).
        now: monotonic seconds at construction.
        outbox: transaction messages restored from a previous run (delivered after the boot).
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
        super().__init__(spec, rng=rng, new_id=new_id, wall_epoch=wall_epoch, now=now,
                         outbox=outbox)
        self.powered = True
        self.reset_until = None
        self.aligned_at = None
        self.heartbeat_anchor: float | None = None
        """When the heartbeat period started (online and Accepted); None when not running."""
        self.refresh_at: float | None = None
        self.cap_deadline_cached: float | None = None
        self._settled_at: float | None = None
        """When :meth:`_settle` last reached a fixed point; None once an input changed state
        without settling."""
        self._deadline: float | None = None
        self._deadline_stale = True
        """Whether ``_deadline`` must be recomputed: state changes only inside inputs, so
        :meth:`next_deadline` is computed once per input, not once per call."""
        self._boot_rng = child(rng)

    # --- power and connection -----------------------------------------------------------------

    def power_on(self, now: float) -> None:
        """(Re)boot: pending configuration changes take effect, and the BootNotification goes out
        on the current or next connection. Energy registers and availability survive."""
        self.powered = True
        self.reset_until = None
        self.boot = BootState.WAITING
        self.boot_at = None
        self.heartbeat_anchor = None
        self.aligned_at = None
        self.session.transactions_enabled = False
        applied = self.config.reboot()
        if applied:
            self.note(now, "configuration_applied", keys=list(applied))
        self.sync_session_settings()
        for point in self.points.values():
            point.ready_tag = None
            point.authorizing = None
        for machine in self.connectors.values():
            machine.mark_offline()
            machine.forget_reported()
        self.refresh_all(now)
        if self.session.online:
            self.send_boot(now)
        self._settle(now)

    def connected(self, now: float) -> None:
        """The transport is up. Boot if the charger has not registered yet (and is not waiting
        out a Rejected/Pending interval); an Accepted charger just carries on."""
        self.session.connected(now)
        if not self.powered:
            self._settled_at = None
            self._deadline_stale = True
            return
        if self.boot == BootState.WAITING and (self.boot_at is None or now >= self.boot_at):
            self.send_boot(now)
        elif self.boot == BootState.ACCEPTED:
            self._go_online(now)
        self._settle(now)

    def disconnected(self, now: float) -> None:
        """The transport is down: queued transaction messages stay queued, statuses wait."""
        self.session.disconnected(now)
        for machine in self.connectors.values():
            machine.mark_offline()
        self._settle(now)

    def receive(self, data: bytes | str, now: float) -> None:
        """One frame from the CS."""
        if not self.powered:
            return
        self.session.receive(data, now)
        self._settle(now)

    def tick(self, now: float) -> None:
        """Time passed: run whatever fell due."""
        if now == self._settled_at and not self._due_by(now):
            # Settled at this very instant since the last input, and nothing has fallen due:
            # settling again would change nothing (the actor ticks after every input).
            return
        self._settle(now)

    # --- the driver and the car ---------------------------------------------------------------

    def plug_in(self, connector_id: int, now: float, *, ev: EvSpec) -> None:
        """An EV is plugged into ``connector_id``. With a tag already authorized, the transaction
        starts; with a transaction going on (the EV came back), charging resumes."""
        point = self.points[connector_id]
        meter = self.meters[connector_id]
        point.ev = ev
        if point.transaction is None:
            point.finished = False
        meter.plug_in(ev, now)
        if point.transaction is None and point.ready_tag is not None and self.powered:
            self.start_transaction(connector_id, point.ready_tag, now)
        else:
            self.refresh_status(connector_id, now)
        self._settle(now)

    def unplug(self, connector_id: int, now: float) -> None:
        """The EV is unplugged from ``connector_id`` (the EV-side disconnect rules apply)."""
        point = self.points[connector_id]
        outcome = ev_side_disconnect(
            self.connectors[connector_id].status,
            in_transaction=point.transaction is not None,
            stop_transaction_on_ev_side_disconnect=self.config.get_bool(
                "StopTransactionOnEVSideDisconnect"),
            unlock_connector_on_ev_side_disconnect=self.config.get_bool(
                "UnlockConnectorOnEVSideDisconnect"),
        )
        if outcome.stop_reason is not None:
            # Stopped while the cable is still in: Finishing first.
            self.stop_transaction(connector_id, now, outcome.stop_reason)
        self.meters[connector_id].unplug(now)
        point.ev = None
        # A cable still locked at the charge point keeps it Finishing until it is taken out
        # (the next unplug) or unlocked by UnlockConnector.
        point.finished = outcome.stop_reason is not None and not outcome.unlock
        self.refresh_status(connector_id, now)
        self._settle(now)

    def present_tag(
        self, connector_id: int, id_tag: str, now: float, *, start_only: bool = False
    ) -> None:
        """A driver presents ``id_tag`` at ``connector_id``: the tag that started the running
        transaction stops it; otherwise the tag is authorized for a new one. A driver who only
        means to start (``start_only``) leaves a running transaction alone: e.g. one the CS
        started remotely for the car just plugged in."""
        point = self.points[connector_id]
        tx = point.transaction
        if tx is not None and start_only:
            self.note(now, "tag_ignored", connector_id, id_tag=id_tag,
                      reason="a transaction is already running here")
        elif tx is not None:
            if same_id_tag(tx.id_tag, id_tag):
                self.stop_transaction(connector_id, now, Reason.LOCAL, id_tag=id_tag)
            else:
                self.note(now, "tag_ignored", connector_id, id_tag=id_tag,
                          reason="another transaction is running here")
        elif point.authorizing is None and self.powered:
            self.authorize(connector_id, id_tag, now)
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
        if error_code == ChargePointErrorCode.NO_ERROR:
            self.errors.pop(connector_id, None)
        else:
            self.errors[connector_id] = HardwareError(error_code, info, vendor_error_code)
        if self.faulted(connector_id):
            hit = list(self.points) if connector_id == 0 else [connector_id]
            for cid in hit:
                self.stop_transaction(cid, now, Reason.OTHER)
                self.points[cid].ready_tag = None
        self.note(now, "hardware_error", connector_id, code=error_code.value,
                  fault=self.faulted(connector_id))
        if connector_id == 0:
            self.refresh_all(now)
        else:
            self.refresh_status(connector_id, now)
        self._settle(now)

    def stop_local(self, connector_id: int, now: float, *, reason: Reason = Reason.LOCAL) -> None:
        """Stop the transaction at ``connector_id`` on the charger's own initiative."""
        self.stop_transaction(connector_id, now, reason)
        self._settle(now)

    def shutdown(self, now: float) -> int:
        """The run ends: stop every running transaction with reason Local, and forget tags that
        wait for a cable or an Authorize answer (so no transaction starts after the end).
        Returns how many transactions were stopped."""
        stopped = self.stop_all(now, Reason.LOCAL)
        for point in self.points.values():
            point.ready_tag = None
            point.authorizing = None
        self.refresh_all(now)
        self._settle(now)
        return stopped

    # --- outputs ------------------------------------------------------------------------------

    def take_effects(self) -> list[Effect]:
        """Hand over (and forget) the effects collected so far, in order."""
        effects = list(self.effects)
        self.effects.clear()
        return effects

    def export_outbox(self) -> tuple[OutboxEntry, ...]:
        """The queued transaction messages, head first."""
        return self.session.export_outbox()

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must next be called, or None when nothing is scheduled. While the
        charger is down (between a Reboot effect and ``power_on``) nothing of its own falls
        due: the actor wakes it with ``power_on``."""
        if self._deadline_stale:
            self._deadline = self._earliest_deadline()
            self._deadline_stale = False
        return self._deadline

    def _earliest_deadline(self) -> float | None:
        # The earliest finite candidate (None, NaN and ±inf never count), kept in one variable as
        # the candidates come: cheaper than collecting them into a list first.
        session = self.session
        if not self.powered:
            return session.next_deadline()
        earliest, floor = math.inf, -math.inf
        for candidate in (session.next_deadline(), self.boot_at, self.reset_until,
                          self.aligned_at, self.cap_deadline_cached, self.refresh_at):
            if candidate is not None and floor < candidate < earliest:
                earliest = candidate
        if self.boot == BootState.ACCEPTED and session.online:
            candidate = self._heartbeat_deadline()
            if candidate is not None and floor < candidate < earliest:
                earliest = candidate
            for machine in self.connectors.values():
                candidate = machine.report_at  # (next_deadline(), without the call)
                if candidate is not None and floor < candidate < earliest:
                    earliest = candidate
        timeout = self.connection_timeout
        for point in self.points.values():
            if timeout > 0 and point.ready_tag is not None and point.ev is None:
                candidate = point.ready_since + timeout
                if floor < candidate < earliest:
                    earliest = candidate
            tx = point.transaction
            if tx is not None:
                candidate = tx.next_sample
                if candidate is not None and floor < candidate < earliest:
                    earliest = candidate
        return None if earliest == math.inf else earliest

    def statistics(self) -> ChargerStatistics:
        """A frozen snapshot of the charger."""
        return ChargerStatistics(
            identity=self.charger,
            boot=self.boot,
            online=self.session.online,
            powered=self.powered,
            statuses=tuple(self.connectors[c].status for c in sorted(self.connectors)),
            in_transaction=sum(p.transaction is not None for p in self.points.values()),
            outbox=len(self.session.export_outbox()),
            call_pending=self.session.pending is not None,
            boots_sent=self.boots_sent,
            transactions_started=self.transactions_started,
            transactions_stopped=self.transactions_stopped,
            energy_wh=tuple(self.meters[c].register_wh for c in sorted(self.meters)),
        )

    def transactions(self) -> tuple[Transaction, ...]:
        """The running transactions, by connector."""
        return tuple(p.transaction for _, p in sorted(self.points.items())
                     if p.transaction is not None)

    # --- the engine ---------------------------------------------------------------------------

    def _settle(self, now: float) -> None:
        """Process what the session reported, then everything that is due at ``now``, until
        nothing more happens. Every input ends here."""
        self._settled_at = None
        self._deadline_stale = True
        self.session.tick(now)
        ran_due = False
        for _ in range(64):
            outcomes = self.session.take_outcomes()
            if not outcomes and ran_due:
                self._settled_at = now
                break
            for outcome in outcomes:
                self._on_outcome(outcome, now)
            self._due(now)
            ran_due = True
        self.cap_deadline_cached = self.cap_deadline(now)
        self._deadline_stale = True

    def _due_by(self, now: float) -> bool:
        """Whether something is scheduled at or before ``now``."""
        deadline = self.next_deadline()
        return deadline is not None and deadline <= now

    def _due(self, now: float) -> None:
        if self.boot_at is not None and now >= self.boot_at and self.powered \
                and self.boot in _BOOT_RETRY:
            self.boot_at = None
            if self.session.online:
                self.send_boot(now)
            else:
                self.boot = BootState.WAITING
        sample = False
        for point in self.points.values():
            if point.ready_tag is not None and point.ev is None:
                timeout = self.connection_timeout
                if timeout > 0 and now >= point.ready_since + timeout:
                    self.note(now, "connection_timeout", point.connector_id,
                              id_tag=point.ready_tag)
                    point.ready_tag = None
                    self.refresh_status(point.connector_id, now)
            tx = point.transaction
            if tx is not None and tx.next_sample is not None and now >= tx.next_sample:
                sample = True
        if sample:
            self.sample_periodic(now)
        if self.aligned_at is not None and now >= self.aligned_at:
            self.sample_aligned(now)
            self.aligned_at = self.next_aligned(now)
        if self.cap_deadline_cached is not None and now >= self.cap_deadline_cached:
            self.check_caps(now)
        if self.refresh_at is not None and now >= self.refresh_at:
            self.refresh_all(now)
        delivering = False
        for cid, point in self.points.items():
            if point.transaction is not None and self.meters[cid].delivering:
                delivering = True
                break
        self.refresh_at = now + STATUS_REFRESH if delivering else None
        if self.reset_until is not None:
            self.check_reset(now)
        if self.powered and self.boot == BootState.ACCEPTED and self.session.online:
            self._report_statuses(now)
            deadline = self._heartbeat_deadline()
            if deadline is not None and now >= deadline:
                self.session.call(HeartbeatRequest(), now)
                self.heartbeat_anchor = now

    def _report_statuses(self, now: float) -> None:
        for machine in self.connectors.values():  # (built in connector order)
            if machine.report_at is None:
                continue  # nothing pending (the common case: skip the call)
            report = machine.due_notification(now)
            if report is not None:
                self.session.call(report.to_request(self.wall_offset), now)

    def _heartbeat_deadline(self) -> float | None:
        """``HeartbeatInterval`` after the later of the period start and our last frame."""
        start = self.heartbeat_anchor
        if start is None:
            return None
        interval = self.heartbeat_interval
        if interval <= 0:
            return None
        last = self.session.last_sent
        if last is not None and last > start:
            start = last
        return start + interval

    def _go_online(self, now: float) -> None:
        """Connected and Accepted: statuses, heartbeats and the outbox may move."""
        for machine in self.connectors.values():
            machine.mark_online(now)
        self.session.transactions_enabled = True
        if self.heartbeat_anchor is None:
            self.heartbeat_anchor = now
        if self.aligned_at is None:
            self.aligned_at = self.next_aligned(now)
        self.session.pump(now)

    # --- what the session reports ---------------------------------------------------------------

    def _on_outcome(self, outcome: Outcome, now: float) -> None:
        match outcome:
            case IncomingCall():
                if self.boot == BootState.REJECTED:
                    self.note(now, "call_ignored", action=outcome.action,
                              reason="boot rejected: silent until the retry")
                    return
                self.handle_call(outcome, now)
            case CallAnswered():
                self._on_answer(outcome, now)
            case CallFailed():
                self._on_failure(outcome, now)

    def _on_answer(self, answered: CallAnswered, now: float) -> None:
        call, response = answered.call, answered.response
        if call.context == BOOT and isinstance(response, BootNotificationResponse):
            self._boot_answered(response, now)
        elif isinstance(call.context, AuthorizeContext):
            self.authorize_answered(call.context, response.id_tag_info, now)
        elif call.entry is not None and isinstance(response, StartTransactionResponse):
            self.start_answered(call.entry, response, now)
        elif call.entry is not None and isinstance(response, StopTransactionResponse):
            self.stop_answered(call.entry, response, now)
        elif isinstance(response, HeartbeatResponse):
            self._sync_clock(response.current_time, now)

    def _on_failure(self, failed: CallFailed, now: float) -> None:
        call = failed.call
        if call.context == BOOT:
            if self.boot == BootState.ACCEPTED:
                # a triggered boot got no answer: still Accepted, the outbox moves on
                self.session.transactions_enabled = True
                self.session.pump(now)
                return
            if self.boot != BootState.BOOTING:
                return
            self.boot = BootState.WAITING
            lost = failed.reason in _CONNECTION_LOST
            self.boot_at = None if lost else now + self.spec.boot_retry
        elif isinstance(call.context, AuthorizeContext):
            self.authorize_failed(call.context, now)
        elif isinstance(call.request, StatusNotificationRequest):
            if failed.reason in _CONNECTION_LOST:
                # Lost with the link, not refused: the current status goes out after reconnecting.
                request = call.request
                self.connectors[request.connector_id].report_lost(request.status,
                                                                  request.error_code)
        elif call.entry is not None and failed.final and call.entry.action == "StartTransaction":
            self.note(now, "start_transaction_given_up", local_id=call.entry.local_tx,
                      reason=failed.reason)

    def _boot_answered(self, response: BootNotificationResponse, now: float) -> None:
        self._sync_clock(response.current_time, now)
        status, interval = response.status, response.interval
        self.publish(BootResult(t=now, charger=self.charger, status=status.value,
                                interval=interval))
        if status == RegistrationStatus.ACCEPTED:
            first = self.boot != BootState.ACCEPTED
            self.boot = BootState.ACCEPTED
            self.boot_at = None
            if interval > 0:
                self.config.set_internal("HeartbeatInterval", interval)
            if first:
                self.heartbeat_anchor = now
                self._go_online(now)
            else:  # a triggered boot: the outbox held back while it was in flight moves on
                self.session.transactions_enabled = True
                self.session.pump(now)
            return
        wait = float(interval) if interval > 0 else self.spec.boot_retry * self._boot_rng.uniform(
            0.5, 1.5)
        self.boot = BootState.PENDING if status == RegistrationStatus.PENDING \
            else BootState.REJECTED
        # (also after a triggered boot of an Accepted charger: the queue waits for Accepted)
        self.session.transactions_enabled = False
        self.boot_at = now + wait
        self.publish(Note(t=now, charger=self.charger, what="boot_retry_planned",
                          data={"status": status.value, "in": round(wait, 3)}))

    def _sync_clock(self, current_time: dt.datetime, now: float) -> None:
        """Set the charger's clock from the CS's ``currentTime``."""
        stamp = current_time if current_time.tzinfo is not None else current_time.replace(
            tzinfo=dt.UTC)
        self.clock_offset = stamp.timestamp() - self.wall_epoch - now
        if self.aligned_at is not None:
            # The clock-aligned grid is wall time: re-plan it on the new clock (the old plan
            # would sample off the grid and then, once re-planned, twice in a row).
            self.aligned_at = self.next_aligned(now)
