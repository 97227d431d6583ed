"""The Reservation profile: ReserveNow and CancelReservation (OCPP 1.6 §5.13, §5.3).

The reservations themselves, and when they end, are :mod:`simulator.machines.reservations`'s;
this handler answers the central system and keeps the expiry timer.

Rules of ReserveNow (the same ``reservationId`` replaces the older reservation, judged as if
that one were gone; a refused replacement leaves it as it was):

- Rejected: a connector that does not exist; connector 0 without
  ``ReserveConnectorZeroSupported`` (a read-only key a fleet sets in ``[group.config]``); an
  ``expiryDate`` already passed on the charger's clock.
- Faulted: the connector or the charge point is Faulted (connector 0: the charge point, or every
  connector).
- Unavailable: the connector or the charge point is Inoperative (connector 0: the charge point,
  or every connector).
- Occupied: the connector is busy (a transaction, an EV plugged in, a tag waiting or being
  authorized, a cable left after a transaction), reserved already (by another reservation, for
  any tag), or one of the free connectors that connector-0 reservations need; connector 0: no
  free connector is left beyond those the connector-0 reservations already keep.
- Accepted otherwise: once the answer is out, the connector goes Reserved (connector 0: the
  free connectors go Reserved once no more of them are left than connector-0 reservations).

CancelReservation: Accepted for a reservation the charger holds (then the connector is
Available again), Rejected otherwise. An expired reservation ends at its ``expiryDate`` on the
charger's clock (a clock sync moves that instant), and its connector is Available again.
"""

from __future__ import annotations

import msgspec

from simulator.machines.context import ChargerContext
from simulator.machines.profiles import Answer, ProfileHandler
from simulator.machines.reservations import Reservation, as_utc
from simulator.ocpp.v16 import (
    AvailabilityType,
    CancelReservationRequest,
    CancelReservationResponse,
    CancelReservationStatus,
    Profile,
    ReservationStatus,
    ReserveNowRequest,
    ReserveNowResponse,
)

_R = ReservationStatus


class ReservationHandler(ProfileHandler):
    """ReserveNow and CancelReservation, and the reservations' expiry (see the module
    docstring)."""

    profile = Profile.RESERVATION

    def __init__(self, ctx: ChargerContext) -> None:
        super().__init__(ctx)

    def answer(self, request: msgspec.Struct, now: float) -> Answer | None:
        """The response to one Reservation request and what to do once it is sent."""
        match request:
            case ReserveNowRequest():
                return self._reserve(request, now)
            case CancelReservationRequest():
                return self._cancel(request, now)
        return None

    # --- timers -------------------------------------------------------------------------------

    def has_timers(self) -> bool:
        """Reservations expire."""
        return True

    def next_deadline(self) -> float | None:
        """When the earliest reservation expires (monotonic seconds), or None."""
        if not self.ctx.reservations:
            return None  # none held: the usual case, kept cheap (asked at every step)
        expiry = self.ctx.reservations.next_expiry()
        return None if expiry is None else expiry - self.ctx.wall_offset

    def due(self, now: float) -> None:
        """End the reservations that expired; keep the connectors that connector-0
        reservations hold up to date (nothing while the charger is down)."""
        ctx = self.ctx
        if not ctx.powered or not ctx.reservations:
            return
        for reservation in ctx.reservations.expire(ctx.wall_offset, now):
            ctx.reservation_ended(reservation, now, "Expired")
            self._refresh(reservation, now)
        if ctx.reservations.for_any():
            for cid in ctx.points:
                ctx.refresh_status(cid, now)

    # --- the operations -----------------------------------------------------------------------

    def _reserve(self, request: ReserveNowRequest, now: float) -> Answer:
        ctx = self.ctx
        reservation = Reservation(
            reservation_id=request.reservation_id, connector_id=request.connector_id,
            id_tag=request.id_tag, expiry=as_utc(request.expiry_date),
            parent_id_tag=request.parent_id_tag,
        )
        old = ctx.reservations.cancel(reservation.reservation_id)
        try:
            status = self._judge(reservation, now)
        finally:
            if old is not None:
                ctx.reservations.place(old)
        if status != _R.ACCEPTED:
            known = reservation.connector_id in ctx.connectors
            ctx.note(now, "reservation_refused", reservation.connector_id if known else None,
                     reservation_id=reservation.reservation_id, status=status.value)
            return ReserveNowResponse(status=status), None

        def place() -> None:
            replaced = ctx.reservations.place(reservation)
            if replaced is not None:
                ctx.reservation_ended(replaced, now, "Replaced")
                self._refresh(replaced, now)
            ctx.note(now, "reservation_placed", reservation.connector_id,
                     reservation_id=reservation.reservation_id, id_tag=reservation.id_tag,
                     expiry=reservation.expiry.isoformat())
            self._refresh(reservation, now)

        return ReserveNowResponse(status=_R.ACCEPTED), place

    def _judge(self, reservation: Reservation, now: float) -> ReservationStatus:
        """The ReserveNow status for ``reservation`` (see the module docstring)."""
        ctx = self.ctx
        cid = reservation.connector_id
        if cid != 0 and cid not in ctx.points:
            return _R.REJECTED
        if cid == 0 and not ctx.config.get_bool("ReserveConnectorZeroSupported"):
            return _R.REJECTED
        if reservation.expiry.timestamp() - ctx.wall_offset <= now:
            return _R.REJECTED
        if cid == 0:
            return self._judge_any()
        if ctx.faulted(cid) or ctx.faulted(0):
            return _R.FAULTED
        if not ctx.operative(cid):
            return _R.UNAVAILABLE
        point = ctx.points[cid]
        if point.transaction is not None or point.ev is not None or point.finished \
                or point.ready_tag is not None or point.authorizing is not None:
            return _R.OCCUPIED
        if ctx.reservations.at(cid) is not None:
            return _R.OCCUPIED
        free = ctx.reservations.free(ctx.points, ctx.operative)
        if len(free) - 1 < len(ctx.reservations.unclaimed(ctx.points)):
            return _R.OCCUPIED
        return _R.ACCEPTED

    def _judge_any(self) -> ReservationStatus:
        """The ReserveNow status for connector 0."""
        ctx = self.ctx
        if ctx.faulted(0) or all(ctx.faulted(c) for c in ctx.points):
            return _R.FAULTED
        if ctx.availability[0] == AvailabilityType.INOPERATIVE \
                or not any(ctx.operative(c) for c in ctx.points):
            return _R.UNAVAILABLE
        free = ctx.reservations.free(ctx.points, ctx.operative)
        kept = len(ctx.reservations.unclaimed(ctx.points))
        return _R.ACCEPTED if len(free) > kept else _R.OCCUPIED

    def _cancel(self, request: CancelReservationRequest, now: float) -> Answer:
        ctx = self.ctx
        reservation = ctx.reservations.get(request.reservation_id)
        if reservation is None:
            return CancelReservationResponse(status=CancelReservationStatus.REJECTED), None

        def cancel() -> None:
            ctx.reservations.cancel(reservation.reservation_id)
            ctx.reservation_ended(reservation, now, "Cancelled")
            self._refresh(reservation, now)

        return CancelReservationResponse(status=CancelReservationStatus.ACCEPTED), cancel

    def _refresh(self, reservation: Reservation, now: float) -> None:
        """Statuses after ``reservation`` came or went: its connector's, every connector's
        for a connector-0 reservation."""
        if reservation.connector_id == 0:
            for cid in self.ctx.points:
                self.ctx.refresh_status(cid, now)
        else:
            self.ctx.refresh_status(reservation.connector_id, now)
