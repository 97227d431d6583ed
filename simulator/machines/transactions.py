"""Authorization and transactions of a charger, one connector ("point") at a time.

Rules (OCPP 1.6 core specification, §3.4 and §4-§5):

- A driver's idTag is decided by :func:`simulator.machines.auth.decide`: accepted locally,
  refused locally, asked about with Authorize (online and boot Accepted), or started offline.
  Every ``IdTagInfo`` the CS sends (Authorize, StartTransaction, StopTransaction) feeds the cache.
- An authorized tag starts a transaction as soon as an EV is plugged in; a tag (or remote start)
  without a cable waits in Preparing for ``ConnectionTimeOut`` seconds, then falls back.
- StartTransaction and StopTransaction go through the session's outbox (FIFO, retried, never
  lost). ``meterStart``/``meterStop`` are the connector's import register in whole Wh, which
  never decreases and is not reset per transaction.
- After a power loss (a restart with the charger's memory), the transactions that were running
  are stopped with reason PowerLoss, ``meterStop`` the register as remembered, and the time of
  the power-on; local transaction numbers go on from where they were, never repeating.
- An idTag the CS does not accept in StartTransaction's result stops the transaction with
  DeAuthorized when ``StopTransactionOnInvalidId``; otherwise the charger keeps going until
  ``MaxEnergyOnInvalidId`` Wh have flowed, then suspends the EVSE (see :mod:`.metering`).
- **Reservations** (:mod:`.reservations`). A reserved connector refuses a tag that does not
  match its reservation (noted ``authorization_refused`` with status Reserved; nothing starts):
  at once when the tag's parent is known (local list, cache) or the reservation names no
  parent, else once Authorize has told the parent. A transaction started with a matching tag
  ends the reservation and carries its ``reservationId`` in StartTransaction.
- **LocalListConflict** (§3.5). When the CS's ``idTagInfo`` for a tag (Authorize or
  StartTransaction result) has another status than the local list's entry, connector 0
  reports the warning LocalListConflict with its status (a StatusNotification); the warning
  stays until the next accepted SendLocalList or a hardware error of connector 0 replaces it.

:class:`Transactions` owns the local transaction numbering and the counters; the points, meters
and session it works on are the :class:`~simulator.machines.context.ChargerContext`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from simulator.events import TransactionAcknowledged, TransactionStarted, TransactionStopped
from simulator.machines.auth import Decision, decide, find_entry, remember, same_id_tag
from simulator.machines.context import ChargerContext
from simulator.machines.effects import OpenTransaction, OutboxEntry
from simulator.machines.metering import Metering
from simulator.machines.parts import HardwareError, Transaction
from simulator.machines.reservations import Reservation
from simulator.ocpp.v16 import (
    AuthorizationStatus,
    AuthorizeRequest,
    ChargePointErrorCode,
    ChargePointStatus,
    IdTagInfo,
    ReadingContext,
    Reason,
    StartTransactionRequest,
    StartTransactionResponse,
    StopTransactionRequest,
    StopTransactionResponse,
)

_entry_payload: msgspec.json.Decoder[dict[str, Any]] = msgspec.json.Decoder(dict[str, Any])


class AuthorizeContext(msgspec.Struct, frozen=True):
    """Attached to an Authorize CALL: which connector and tag it decides."""

    connector_id: int
    id_tag: str


class Transactions:
    """Authorization and transactions (see the module docstring).

    Args:
        ctx: the charger's shared context.
        metering: the charger's metering (begin/end readings, energy caps).
        restored: the outbox restored from a previous run (local ids continue after its own).
        next_local_tx: the next local id the charger's memory holds (the larger one wins).
    """

    def __init__(
        self,
        ctx: ChargerContext,
        metering: Metering,
        restored: Iterable[OutboxEntry] = (),
        *,
        next_local_tx: int = 1,
    ) -> None:
        self.ctx = ctx
        self.metering = metering
        self.next_local_tx = max(1 + max((e.local_tx or 0 for e in restored), default=0),
                                 next_local_tx)
        self.transactions_started = 0
        self.transactions_stopped = 0

    # --- connection timeout -------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When a tag waiting for a cable gives up (``ConnectionTimeOut``), or None."""
        waiting = [p.ready_since for p in self.ctx.points.values()
                   if p.ready_tag is not None and p.ev is None]
        if not waiting:
            return None
        timeout = self.ctx.config.get_int("ConnectionTimeOut")
        return min(waiting) + timeout if timeout > 0 else None

    def due(self, now: float) -> None:
        """Forget the tags that waited ``ConnectionTimeOut`` seconds for a cable."""
        timeout = self.ctx.config.get_int("ConnectionTimeOut")
        for point in self.ctx.points.values():
            if point.ready_tag is not None and point.ev is None \
                    and timeout > 0 and now >= point.ready_since + timeout:
                self.ctx.note(now, "connection_timeout", point.connector_id,
                              id_tag=point.ready_tag)
                point.ready_tag = None
                self.ctx.refresh_status(point.connector_id, now)

    # --- authorization ------------------------------------------------------------------------

    def authorize(self, connector_id: int, id_tag: str, now: float) -> None:
        """Decide ``id_tag`` for a start at ``connector_id`` (locally or with Authorize)."""
        point = self.ctx.points[connector_id]
        parent = self.known_parent(id_tag, now)
        blocker = self.reservation_blocker(connector_id, id_tag, parent)
        if blocker is not None and (parent is not None or blocker.parent_id_tag is None):
            self.refused_reserved(connector_id, id_tag, blocker, now)
            return
        outcome = decide(
            id_tag,
            online=self.ctx.accepted_online(),
            wall=self.ctx.wall(now),
            settings=self.ctx.auth_settings(),
            local_list=self.ctx.local_list,
            cache=self.ctx.cache,
        )
        match outcome.decision:
            case Decision.ACCEPT | Decision.START_OFFLINE:
                self.authorized(connector_id, id_tag, now, parent=parent)
            case Decision.REJECT:
                status = outcome.info.status if outcome.info is not None else "Unknown"
                self.refused(connector_id, id_tag, now, str(status))
            case Decision.ASK:
                point.authorizing = id_tag
                self.ctx.session.call(
                    AuthorizeRequest(id_tag=id_tag), now,
                    context=AuthorizeContext(connector_id, id_tag),
                )

    def authorize_answered(self, context: AuthorizeContext, info: IdTagInfo, now: float) -> None:
        """The CS answered Authorize: remember the answer (and report a conflict with the
        local list), then start or refuse."""
        remember(self.ctx.cache, self.ctx.auth_settings(), context.id_tag, info)
        self.check_local_list(context.id_tag, info, now)
        point = self.ctx.points[context.connector_id]
        if point.authorizing is None or not same_id_tag(point.authorizing, context.id_tag):
            return
        point.authorizing = None
        if info.status == AuthorizationStatus.ACCEPTED and self.ctx.operative(context.connector_id):
            self.authorized(context.connector_id, context.id_tag, now,
                            parent=info.parent_id_tag)
        else:
            self.refused(context.connector_id, context.id_tag, now, str(info.status))

    def authorize_failed(self, context: AuthorizeContext, now: float) -> None:
        """Authorize got no valid answer: decide as if offline."""
        point = self.ctx.points[context.connector_id]
        if point.authorizing is None or not same_id_tag(point.authorizing, context.id_tag):
            return
        point.authorizing = None
        outcome = decide(
            context.id_tag,
            online=False,
            wall=self.ctx.wall(now),
            settings=self.ctx.auth_settings(),
            local_list=self.ctx.local_list,
            cache=self.ctx.cache,
        )
        if outcome.decision in (Decision.ACCEPT, Decision.START_OFFLINE):
            self.authorized(context.connector_id, context.id_tag, now,
                            parent=self.known_parent(context.id_tag, now))
        else:
            self.refused(context.connector_id, context.id_tag, now, "NoAnswer")

    def authorized(
        self, connector_id: int, id_tag: str, now: float, *, parent: str | None = None
    ) -> None:
        """``id_tag`` (whose parent idTag is ``parent``; None: looked up in the local list and
        the cache) may charge at ``connector_id``: start now if an EV is plugged in, else wait
        in Preparing for the cable. A reservation for another tag refuses it."""
        point = self.ctx.points[connector_id]
        if point.transaction is not None or not self.ctx.operative(connector_id):
            return
        if parent is None:
            parent = self.known_parent(id_tag, now)
        blocker = self.reservation_blocker(connector_id, id_tag, parent)
        if blocker is not None:
            self.refused_reserved(connector_id, id_tag, blocker, now)
            return
        if point.ev is not None:
            self.start_transaction(connector_id, id_tag, now, parent=parent)
            return
        point.ready_tag = id_tag
        point.ready_parent = parent
        point.ready_since = now
        self.ctx.refresh_status(connector_id, now)

    def refused(self, connector_id: int, id_tag: str, now: float, status: str) -> None:
        """``id_tag`` may not charge: record it; the connector stays as it is."""
        self.ctx.note(now, "authorization_refused", connector_id, id_tag=id_tag, status=status)
        self.ctx.refresh_status(connector_id, now)

    # --- reservations and the local list -------------------------------------------------------

    def known_parent(self, id_tag: str, now: float) -> str | None:
        """The parent idTag the local list or the cache gives ``id_tag``, or None."""
        info, _ = find_entry(id_tag, wall=self.ctx.wall(now), settings=self.ctx.auth_settings(),
                             local_list=self.ctx.local_list, cache=self.ctx.cache)
        return info.parent_id_tag if info is not None else None

    def reservation_blocker(
        self, connector_id: int, id_tag: str, parent: str | None
    ) -> Reservation | None:
        """The reservation that keeps ``id_tag`` from charging at ``connector_id``, or None."""
        ctx = self.ctx
        return ctx.reservations.blocker(connector_id, id_tag, parent, ctx.points, ctx.operative)

    def refused_reserved(
        self, connector_id: int, id_tag: str, reservation: Reservation, now: float
    ) -> None:
        """``id_tag`` may not charge at ``connector_id``: it is reserved for another tag."""
        self.ctx.note(now, "authorization_refused", connector_id, id_tag=id_tag,
                      status="Reserved", reservation_id=reservation.reservation_id)
        self.ctx.refresh_status(connector_id, now)

    def check_local_list(self, id_tag: str, info: IdTagInfo, now: float) -> None:
        """The CS sent ``info`` for ``id_tag``: if the local list says otherwise, connector 0
        reports LocalListConflict (unless a hardware error of its own is showing)."""
        ctx = self.ctx
        if not ctx.auth_settings().local_auth_list_enabled \
                or not ctx.local_list.conflicts_with(id_tag, info, ctx.wall(now)):
            return
        listed = ctx.local_list.lookup(id_tag, ctx.wall(now))
        ctx.note(now, "local_list_conflict", id_tag=id_tag, central_system=info.status.value,
                 local_list=listed.status.value if listed is not None else None)
        current = ctx.errors.get(0)
        if current is not None and current.code != ChargePointErrorCode.LOCAL_LIST_CONFLICT:
            return
        ctx.errors[0] = HardwareError(ChargePointErrorCode.LOCAL_LIST_CONFLICT,
                                      info=f"idTag {id_tag}"[:50])
        ctx.refresh_status(0, now)

    # --- transactions -------------------------------------------------------------------------

    def transaction_by_local(self, local_id: int) -> Transaction | None:
        """The running transaction with this local id, if any."""
        for point in self.ctx.points.values():
            if point.transaction is not None and point.transaction.local_id == local_id:
                return point.transaction
        return None

    def transaction_by_id(self, transaction_id: int) -> Transaction | None:
        """The running transaction the CS knows by ``transaction_id``, if any."""
        for point in self.ctx.points.values():
            tx = point.transaction
            if tx is not None and tx.transaction_id == transaction_id:
                return tx
        return None

    def start_transaction(
        self, connector_id: int, id_tag: str, now: float, *, parent: str | None = None
    ) -> None:
        """Start a transaction for ``id_tag`` (parent idTag ``parent``; None: the one known
        when the tag became ready): StartTransaction goes into the outbox, with the
        ``reservationId`` of the reservation the start ends, if any."""
        point = self.ctx.points[connector_id]
        if parent is None and point.ready_tag is not None and same_id_tag(point.ready_tag, id_tag):
            parent = point.ready_parent
        reservation = self.ctx.reservations.consume(connector_id, id_tag, parent)
        if reservation is not None:
            self.ctx.reservation_ended(reservation, now, "Used")
        meter = self.ctx.meters[connector_id]
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
        point.ready_tag = point.ready_parent = None
        point.finished = False
        meter.mark("periodic", now)
        self.ctx.session.enqueue_transaction(
            StartTransactionRequest(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=self.ctx.written_register(connector_id, tx.meter_start, now),
                timestamp=self.ctx.stamp(now),
                reservation_id=reservation.reservation_id if reservation is not None else None,
            ),
            now,
            local_tx=tx.local_id,
        )
        self.ctx.publish(TransactionStarted(
            t=now, charger=self.ctx.charger, connector=connector_id, id_tag=id_tag,
            meter_start=tx.meter_start, local_id=tx.local_id,
        ))
        self.metering.begin(tx, now)
        if self.ctx.connectors[connector_id].status == ChargePointStatus.RESERVED:
            # Reserved → Preparing → Charging, as the spec draws it (not through Available).
            self.ctx.move(connector_id, ChargePointStatus.PREPARING, now)
        if reservation is not None and reservation.connector_id == 0:
            self.ctx.refresh_all(now)  # the connectors it kept Reserved are free again
        else:
            self.ctx.refresh_status(connector_id, now)

    def stop_transaction(
        self, connector_id: int, now: float, reason: Reason, *, id_tag: str | None = None
    ) -> bool:
        """Stop the transaction at ``connector_id`` (if any) with ``reason``; StopTransaction goes
        into the outbox. Returns whether a transaction was stopped."""
        point = self.ctx.points[connector_id]
        tx = point.transaction
        if tx is None:
            return False
        meter = self.ctx.meters[connector_id]
        meter.set_delivering(False, now)
        self.metering.collect_stop_data(tx, now, "StopTxnSampledData",
                                        ReadingContext.TRANSACTION_END)
        meter_stop = meter.meter_value_wh()
        self.ctx.session.enqueue_transaction(
            StopTransactionRequest(
                meter_stop=self.ctx.written_register(connector_id, meter_stop, now),
                timestamp=self.ctx.stamp(now),
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
        self.ctx.publish(TransactionStopped(
            t=now, charger=self.ctx.charger, connector=connector_id, local_id=tx.local_id,
            transaction_id=tx.transaction_id, meter_stop=meter_stop, reason=reason.value,
        ))
        point.transaction = None
        point.finished = point.ev is not None
        self.ctx.apply_scheduled(connector_id, now)
        self.ctx.refresh_status(connector_id, now)
        return True

    def stop_interrupted(self, interrupted: Iterable[OpenTransaction], now: float) -> None:
        """Stop the transactions a power loss interrupted (reason PowerLoss, the register as
        remembered); their StopTransactions queue behind the outbox as it was."""
        for tx in interrupted:
            meter = self.ctx.meters.get(tx.connector_id)
            meter_stop = meter.meter_value_wh() if meter is not None else 0
            self.ctx.session.enqueue_transaction(
                StopTransactionRequest(
                    meter_stop=self.ctx.written_register(tx.connector_id, meter_stop, now),
                    timestamp=self.ctx.stamp(now),
                    transaction_id=tx.transaction_id if tx.transaction_id is not None else 0,
                    reason=Reason.POWER_LOSS,
                ),
                now,
                local_tx=tx.local_tx,
            )
            self.transactions_stopped += 1
            self.ctx.publish(TransactionStopped(
                t=now, charger=self.ctx.charger, connector=tx.connector_id,
                local_id=tx.local_tx, transaction_id=tx.transaction_id, meter_stop=meter_stop,
                reason=Reason.POWER_LOSS.value,
            ))

    def hardware_error(
        self,
        connector_id: int,
        error_code: ChargePointErrorCode,
        now: float,
        *,
        info: str | None = None,
        vendor_error_code: str | None = None,
    ) -> None:
        """The hardware reports ``error_code`` at ``connector_id`` (0: the charge point); see
        ``ChargerMachine.hardware_error``: a fault stops the transactions it hits (reason Other)
        and forgets their waiting tags; the statuses follow."""
        ctx = self.ctx
        if error_code == ChargePointErrorCode.NO_ERROR:
            ctx.errors.pop(connector_id, None)
        else:
            ctx.errors[connector_id] = HardwareError(error_code, info, vendor_error_code)
        if ctx.faulted(connector_id):
            hit = list(ctx.points) if connector_id == 0 else [connector_id]
            for cid in hit:
                self.stop_transaction(cid, now, Reason.OTHER)
                ctx.points[cid].ready_tag = None
        ctx.note(now, "hardware_error", connector_id, code=error_code.value,
                 fault=ctx.faulted(connector_id))
        if connector_id == 0:
            ctx.refresh_all(now)
        else:
            ctx.refresh_status(connector_id, now)

    def stop_all(self, now: float, reason: Reason) -> int:
        """Stop every running transaction with ``reason``; return how many."""
        return sum(self.stop_transaction(cid, now, reason) for cid in self.ctx.points)

    def start_answered(
        self, entry: OutboxEntry, response: StartTransactionResponse, now: float
    ) -> None:
        """StartTransaction was answered: learn the id, remember the idTagInfo, and stop or cap
        the transaction if the CS did not accept the idTag."""
        id_tag = str(_entry_payload.decode(entry.payload).get("idTag", ""))
        info = response.id_tag_info
        remember(self.ctx.cache, self.ctx.auth_settings(), id_tag, info)
        self.check_local_list(id_tag, info, now)
        local_id = entry.local_tx if entry.local_tx is not None else -1
        tx = self.transaction_by_local(local_id)
        self.ctx.publish(TransactionAcknowledged(
            t=now, charger=self.ctx.charger,
            connector=tx.connector_id if tx is not None else None,
            local_id=local_id, transaction_id=response.transaction_id, status=info.status.value,
        ))
        if tx is None:
            return
        tx.transaction_id = response.transaction_id
        if info.status == AuthorizationStatus.ACCEPTED:
            return
        if self.ctx.config.get_bool("StopTransactionOnInvalidId"):
            self.stop_transaction(tx.connector_id, now, Reason.DE_AUTHORIZED)
            return
        tx.energy_cap_wh = float(self.ctx.config.get_int("MaxEnergyOnInvalidId"))
        self.metering.check_caps(now)

    def stop_answered(
        self, entry: OutboxEntry, response: StopTransactionResponse, now: float
    ) -> None:
        """StopTransaction was answered: remember its idTagInfo, if any."""
        id_tag = _entry_payload.decode(entry.payload).get("idTag")
        if response.id_tag_info is not None and isinstance(id_tag, str):
            remember(self.ctx.cache, self.ctx.auth_settings(), id_tag, response.id_tag_info)
        del now
