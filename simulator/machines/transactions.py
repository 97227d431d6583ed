"""Authorization, transactions and metering of a charger, one connector ("point") at a time.

Rules (OCPP 1.6 core spec; OCPP16.md §3-§4):

- A driver's idTag is decided by :func:`simulator.machines.auth.decide`: accepted locally,
  refused locally, asked about with Authorize (online and boot Accepted), or started offline.
  Every ``IdTagInfo`` the CS sends (Authorize, StartTransaction, StopTransaction) feeds the cache.
- An authorized tag starts a transaction as soon as an EV is plugged in; a tag (or remote start)
  without a cable waits in Preparing for ``ConnectionTimeOut`` seconds, then falls back.
- StartTransaction, StopTransaction and the transaction's MeterValues go through the session's
  outbox (FIFO, retried, never lost). ``meterStart``/``meterStop`` are the connector's import
  register in whole Wh, which never decreases and is not reset per transaction.
- An idTag the CS does not accept in StartTransaction's result stops the transaction with
  DeAuthorized when ``StopTransactionOnInvalidId``; otherwise the charger keeps going until
  ``MaxEnergyOnInvalidId`` Wh have flowed, then suspends the EVSE (SuspendedEVSE).
- Sampled MeterValues every ``MeterValueSampleInterval`` s from the transaction start
  (``MeterValuesSampledData``); clock-aligned ones every ``ClockAlignedDataInterval`` s from
  midnight (``MeterValuesAlignedData``; outside a transaction they are ordinary messages without a
  transactionId). ``StopTxnSampledData`` / ``StopTxnAlignedData`` are collected at the same
  instants (plus Transaction.Begin and .End) into StopTransaction's ``transactionData``.
- A connector's status follows from its point (:meth:`Transactions.desired_status`) and moves
  only along legal transitions.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from simulator.events import TransactionAcknowledged, TransactionStarted, TransactionStopped
from simulator.machines.auth import Decision, decide, remember, same_id_tag
from simulator.machines.charger_state import BootState, ChargerBase, Transaction, time_to_energy
from simulator.machines.connector import delivery_status
from simulator.machines.effects import OutboxEntry
from simulator.machines.meter import (
    MeasurandSpec,
    next_clock_aligned,
    next_periodic_sample,
)
from simulator.ocpp.v16 import (
    AuthorizationStatus,
    AuthorizeRequest,
    AvailabilityType,
    ChargePointStatus,
    IdTagInfo,
    Measurand,
    MeterValue,
    MeterValuesRequest,
    ReadingContext,
    Reason,
    StartTransactionRequest,
    StartTransactionResponse,
    StopTransactionRequest,
    StopTransactionResponse,
)

_S = ChargePointStatus
_CAP_TOLERANCE_WH = 0.5
"""An energy cap this close to reached counts as reached (the meter integrates analytically)."""

_entry_payload: msgspec.json.Decoder[dict[str, Any]] = msgspec.json.Decoder(dict[str, Any])


class AuthorizeContext(msgspec.Struct, frozen=True):
    """Attached to an Authorize CALL: which connector and tag it decides."""

    connector_id: int
    id_tag: str


class Transactions(ChargerBase):
    """Authorization, transactions, metering and connector statuses (see the module docstring)."""

    # --- status -------------------------------------------------------------------------------

    def accepted_online(self) -> bool:
        """True when the charger may talk freely: connected and boot Accepted."""
        return self.session.online and self.boot == BootState.ACCEPTED

    def desired_status(self, connector_id: int) -> ChargePointStatus:
        """The status a connector should show, from its point and availability."""
        error = self.errors.get(connector_id)
        if error is not None and error.fault:  # (self.faulted(), without the call)
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
                evse_suspended=tx.energy_cap_wh is not None and not meter.delivering,
            )
        if not self.operative(connector_id):
            return _S.UNAVAILABLE
        if point.finished:
            return _S.FINISHING
        if point.ev is not None or point.ready_tag is not None:
            return _S.PREPARING
        return _S.AVAILABLE

    def refresh_status(self, connector_id: int, now: float) -> None:
        """Move the connector to its desired status (legal steps only)."""
        self.move(connector_id, self.desired_status(connector_id), now)

    def refresh_all(self, now: float) -> None:
        """Refresh every connector's status, connector 0 included."""
        for connector_id in self.connectors:
            self.refresh_status(connector_id, now)

    # --- authorization ------------------------------------------------------------------------

    def authorize(self, connector_id: int, id_tag: str, now: float) -> None:
        """Decide ``id_tag`` for a start at ``connector_id`` (locally or with Authorize)."""
        point = self.points[connector_id]
        outcome = decide(
            id_tag,
            online=self.accepted_online(),
            wall=self.wall(now),
            settings=self.auth_settings(),
            local_list=self.local_list,
            cache=self.cache,
        )
        match outcome.decision:
            case Decision.ACCEPT | Decision.START_OFFLINE:
                self.authorized(connector_id, id_tag, now)
            case Decision.REJECT:
                status = outcome.info.status if outcome.info is not None else "Unknown"
                self.refused(connector_id, id_tag, now, str(status))
            case Decision.ASK:
                point.authorizing = id_tag
                self.session.call(
                    AuthorizeRequest(id_tag=id_tag), now,
                    context=AuthorizeContext(connector_id, id_tag),
                )

    def authorize_answered(self, context: AuthorizeContext, info: IdTagInfo, now: float) -> None:
        """The CS answered Authorize: remember the answer, then start or refuse."""
        remember(self.cache, self.auth_settings(), context.id_tag, info)
        point = self.points[context.connector_id]
        if point.authorizing is None or not same_id_tag(point.authorizing, context.id_tag):
            return
        point.authorizing = None
        if info.status == AuthorizationStatus.ACCEPTED and self.operative(context.connector_id):
            self.authorized(context.connector_id, context.id_tag, now)
        else:
            self.refused(context.connector_id, context.id_tag, now, str(info.status))

    def authorize_failed(self, context: AuthorizeContext, now: float) -> None:
        """Authorize got no valid answer: decide as if offline."""
        point = self.points[context.connector_id]
        if point.authorizing is None or not same_id_tag(point.authorizing, context.id_tag):
            return
        point.authorizing = None
        outcome = decide(
            context.id_tag,
            online=False,
            wall=self.wall(now),
            settings=self.auth_settings(),
            local_list=self.local_list,
            cache=self.cache,
        )
        if outcome.decision in (Decision.ACCEPT, Decision.START_OFFLINE):
            self.authorized(context.connector_id, context.id_tag, now)
        else:
            self.refused(context.connector_id, context.id_tag, now, "NoAnswer")

    def authorized(self, connector_id: int, id_tag: str, now: float) -> None:
        """``id_tag`` may charge at ``connector_id``: start now if an EV is plugged in, else wait
        in Preparing for the cable."""
        point = self.points[connector_id]
        if point.transaction is not None or not self.operative(connector_id):
            return
        if point.ev is not None:
            self.start_transaction(connector_id, id_tag, now)
            return
        point.ready_tag = id_tag
        point.ready_since = now
        self.refresh_status(connector_id, now)

    def refused(self, connector_id: int, id_tag: str, now: float, status: str) -> None:
        """``id_tag`` may not charge: record it; the connector stays as it is."""
        self.note(now, "authorization_refused", connector_id, id_tag=id_tag, status=status)
        self.refresh_status(connector_id, now)

    # --- transactions -------------------------------------------------------------------------

    def transaction_by_local(self, local_id: int) -> Transaction | None:
        """The running transaction with this local id, if any."""
        for point in self.points.values():
            if point.transaction is not None and point.transaction.local_id == local_id:
                return point.transaction
        return None

    def transaction_by_id(self, transaction_id: int) -> Transaction | None:
        """The running transaction the CS knows by ``transaction_id``, if any."""
        for point in self.points.values():
            tx = point.transaction
            if tx is not None and tx.transaction_id == transaction_id:
                return tx
        return None

    def start_transaction(self, connector_id: int, id_tag: str, now: float) -> None:
        """Start a transaction for ``id_tag``: StartTransaction goes into the outbox."""
        point = self.points[connector_id]
        meter = self.meters[connector_id]
        meter.set_delivering(True, now)
        tx = Transaction(
            local_id=self.next_local_tx,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=meter.meter_value_wh(),
            started_at=now,
        )
        self.next_local_tx += 1
        self.transactions_started += 1
        point.transaction = tx
        point.ready_tag = None
        point.finished = False
        meter.mark("periodic", now)
        self.session.enqueue_transaction(
            StartTransactionRequest(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=tx.meter_start,
                timestamp=self.wall(now),
            ),
            now,
            local_tx=tx.local_id,
        )
        self.publish(TransactionStarted(t=now, charger=self.charger, connector=connector_id,
                                        id_tag=id_tag, meter_start=tx.meter_start,
                                        local_id=tx.local_id))
        self._collect_stop_data(tx, now, "StopTxnSampledData", ReadingContext.TRANSACTION_BEGIN)
        interval = self.sample_interval
        tx.next_sample = next_periodic_sample(now, start=now, interval=interval)
        self.refresh_status(connector_id, now)

    def stop_transaction(
        self, connector_id: int, now: float, reason: Reason, *, id_tag: str | None = None
    ) -> bool:
        """Stop the transaction at ``connector_id`` (if any) with ``reason``; StopTransaction goes
        into the outbox. Returns whether a transaction was stopped."""
        point = self.points[connector_id]
        tx = point.transaction
        if tx is None:
            return False
        meter = self.meters[connector_id]
        meter.set_delivering(False, now)
        self._collect_stop_data(tx, now, "StopTxnSampledData", ReadingContext.TRANSACTION_END)
        meter_stop = meter.meter_value_wh()
        self.session.enqueue_transaction(
            StopTransactionRequest(
                meter_stop=meter_stop,
                timestamp=self.wall(now),
                # 0 is a placeholder the session never sends: it fills in the CS's id.
                transaction_id=tx.transaction_id if tx.transaction_id is not None else 0,
                id_tag=id_tag,
                reason=reason,
                transaction_data=tuple(tx.stop_data) or None,
            ),
            now,
            local_tx=tx.local_id,
        )
        self.transactions_stopped += 1
        self.publish(TransactionStopped(t=now, charger=self.charger, connector=connector_id,
                                        local_id=tx.local_id, transaction_id=tx.transaction_id,
                                        meter_stop=meter_stop, reason=reason.value))
        point.transaction = None
        point.finished = point.ev is not None
        self.apply_scheduled(connector_id, now)
        self.refresh_status(connector_id, now)
        return True

    def stop_all(self, now: float, reason: Reason) -> int:
        """Stop every running transaction with ``reason``; return how many."""
        return sum(self.stop_transaction(cid, now, reason) for cid in self.points)

    def start_answered(
        self, entry: OutboxEntry, response: StartTransactionResponse, now: float
    ) -> None:
        """StartTransaction was answered: learn the id, remember the idTagInfo, and stop or cap
        the transaction if the CS did not accept the idTag."""
        id_tag = str(_entry_payload.decode(entry.payload).get("idTag", ""))
        info = response.id_tag_info
        remember(self.cache, self.auth_settings(), id_tag, info)
        local_id = entry.local_tx if entry.local_tx is not None else -1
        tx = self.transaction_by_local(local_id)
        self.publish(TransactionAcknowledged(
            t=now, charger=self.charger,
            connector=tx.connector_id if tx is not None else None,
            local_id=local_id, transaction_id=response.transaction_id, status=info.status.value,
        ))
        if tx is None:
            return
        tx.transaction_id = response.transaction_id
        if info.status == AuthorizationStatus.ACCEPTED:
            return
        if self.config.get_bool("StopTransactionOnInvalidId"):
            self.stop_transaction(tx.connector_id, now, Reason.DE_AUTHORIZED)
            return
        tx.energy_cap_wh = float(self.config.get_int("MaxEnergyOnInvalidId"))
        self.check_caps(now)

    def stop_answered(
        self, entry: OutboxEntry, response: StopTransactionResponse, now: float
    ) -> None:
        """StopTransaction was answered: remember its idTagInfo, if any."""
        id_tag = _entry_payload.decode(entry.payload).get("idTag")
        if response.id_tag_info is not None and isinstance(id_tag, str):
            remember(self.cache, self.auth_settings(), id_tag, response.id_tag_info)
        del now

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

    # --- metering -----------------------------------------------------------------------------

    def check_caps(self, now: float) -> None:
        """Suspend the EVSE on transactions that used up their ``MaxEnergyOnInvalidId``."""
        for point in self.points.values():
            tx = point.transaction
            if tx is None or tx.energy_cap_wh is None:
                continue
            meter = self.meters[point.connector_id]
            meter.advance(now)
            if meter.delivering and meter.register_wh - tx.meter_start >= (
                tx.energy_cap_wh - _CAP_TOLERANCE_WH
            ):
                meter.set_delivering(False, now)
                self.note(now, "energy_cap_reached", point.connector_id,
                          max_energy_wh=tx.energy_cap_wh)
            self.refresh_status(point.connector_id, now)

    def cap_deadline(self, now: float) -> float | None:
        """When the next energy cap may be reached (a lower bound), or None."""
        best: float | None = None
        for point in self.points.values():
            tx = point.transaction
            if tx is None or tx.energy_cap_wh is None:
                continue
            meter = self.meters[point.connector_id]
            if not meter.delivering:
                continue
            meter.advance(now)
            remaining = tx.energy_cap_wh - (meter.register_wh - tx.meter_start)
            wait = max(time_to_energy(remaining, meter.power_w()), 1.0)
            if math.isfinite(wait):
                best = now + wait if best is None else min(best, now + wait)
        return best

    def sample_periodic(self, now: float) -> None:
        """Take the periodic samples that are due (MeterValueSampleInterval)."""
        interval = self.sample_interval
        for point in self.points.values():
            tx = point.transaction
            if tx is None or tx.next_sample is None or now < tx.next_sample:
                continue
            specs = self.measurands("MeterValuesSampledData")
            value = self._meter_value(point.connector_id, specs, now,
                                      ReadingContext.SAMPLE_PERIODIC, "periodic")
            if value is not None:
                self._enqueue_meter_values(tx, value, now)
            self._collect_stop_data(tx, now, "StopTxnSampledData",
                                    ReadingContext.SAMPLE_PERIODIC)
            tx.next_sample = next_periodic_sample(now, start=tx.started_at, interval=interval)
            self.refresh_status(point.connector_id, now)

    def sample_aligned(self, now: float) -> None:
        """Take the clock-aligned samples (ClockAlignedDataInterval) of every connector."""
        specs = self.measurands("MeterValuesAlignedData")
        for point in self.points.values():
            cid = point.connector_id
            tx = point.transaction
            value = self._meter_value(cid, specs, now, ReadingContext.SAMPLE_CLOCK, "aligned")
            if tx is not None:
                if value is not None:
                    self._enqueue_meter_values(tx, value, now)
                self._collect_stop_data(tx, now, "StopTxnAlignedData",
                                        ReadingContext.SAMPLE_CLOCK)
            elif value is not None and self.accepted_online():
                self.session.call(MeterValuesRequest(connector_id=cid, meter_value=(value,)), now)
            self.refresh_status(cid, now)

    def next_aligned(self, now: float) -> float | None:
        """The next clock-aligned sampling instant after ``now``, or None when off."""
        interval = self.config.get_int("ClockAlignedDataInterval")
        return next_clock_aligned(now, wall_offset=self.wall_offset, interval=interval)

    def reschedule_samples(self, now: float) -> None:
        """MeterValueSampleInterval changed: re-plan every running transaction's next sample."""
        interval = self.sample_interval
        for point in self.points.values():
            tx = point.transaction
            if tx is not None:
                tx.next_sample = next_periodic_sample(now, start=tx.started_at, interval=interval)

    def triggered_meter_values(self, connector_id: int, now: float) -> None:
        """Send MeterValues with context Trigger for one connector (an ordinary message)."""
        specs = self.measurands("MeterValuesSampledData") or (
            MeasurandSpec(Measurand.ENERGY_ACTIVE_IMPORT_REGISTER),
        )
        value = self._meter_value(connector_id, specs, now, ReadingContext.TRIGGER, None)
        if value is None:
            return
        tx = self.points[connector_id].transaction
        tx_id = None
        if tx is not None:
            tx_id = tx.transaction_id if tx.transaction_id is not None else (
                self.session.transaction_id(tx.local_id)
            )
        self.session.call(
            MeterValuesRequest(connector_id=connector_id, meter_value=(value,),
                               transaction_id=tx_id),
            now,
        )

    def _meter_value(
        self,
        connector_id: int,
        specs: tuple[MeasurandSpec, ...],
        now: float,
        context: ReadingContext,
        stream: str | None,
    ) -> MeterValue | None:
        if not specs:
            return None
        sampled = self.meters[connector_id].sample(specs, now, context=context, stream=stream)
        if not sampled:
            return None
        return MeterValue(timestamp=self.wall(now), sampled_value=tuple(sampled))

    def _enqueue_meter_values(self, tx: Transaction, value: MeterValue, now: float) -> None:
        self.session.enqueue_transaction(
            # No transactionId: the session fills in the CS's id when it sends the message.
            MeterValuesRequest(connector_id=tx.connector_id, meter_value=(value,)),
            now,
            local_tx=tx.local_id,
        )

    def _collect_stop_data(
        self, tx: Transaction, now: float, key: str, context: ReadingContext
    ) -> None:
        specs = self.measurands(key)
        if not specs:
            return
        value = self._meter_value(tx.connector_id, specs, now, context, f"stop:{key}")
        if value is not None:
            tx.stop_data.append(value)
