"""The reservations a charge point holds (OCPP 1.6 §5.13 ReserveNow, §5.3 CancelReservation).

:class:`Reservations` is the charger's book of reservations, kept in the
:class:`~simulator.machines.context.ChargerContext` because three parts read it: the Reservation
handler (ReserveNow, CancelReservation, expiry), the status rule (a reserved connector shows
Reserved) and the transactions (a reserved connector refuses other tags; a start by the
reserved tag ends the reservation and carries its ``reservationId``).

Rules:

- A reservation is for one connector, or for connector 0 (any connector, when
  ``ReserveConnectorZeroSupported``): the charge point then keeps one *free* connector for its
  tag for as long as it lasts. A connector is free when it is operative and idle (no
  transaction, waiting or authorizing tag, or cable left after a transaction) and holds no
  reservation of its own; an EV plugged in without a tag claims nothing. While the free
  connectors are no more than the connector-0 reservations, they are *kept*: a tag that does
  not match may not start there, and a kept connector shows Reserved (Preparing once an EV is
  plugged in, since Preparing may not go to Reserved).
- A tag *matches* a reservation when it is the reservation's idTag, or the reservation has a
  parentIdTag and the tag is that parent or has it as its own parent (the parent of an
  incoming tag is known from the local list, the cache or an Authorize answer).
- The same ``reservationId`` replaces the older reservation.
- A reservation ends when its ``expiryDate`` passes on the charger's clock, when a transaction
  starts with a matching tag on its connector (any connector for connector 0), when its
  connector (connector 0: the charge point) goes Faulted or Unavailable, and on
  CancelReservation.
- Reservations live in the context and survive a reboot (``power_on``); a crash or a kill
  forgets them (they are not part of the charger's memory).

IdTags compare case-insensitively (CiString). Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping

import msgspec

from simulator.machines.auth import same_id_tag
from simulator.machines.parts import Point


class Reservation(msgspec.Struct, frozen=True, kw_only=True):
    """One accepted ReserveNow: ``connector_id`` 0 reserves any connector; ``expiry`` is an
    aware UTC datetime on the charger's clock."""

    reservation_id: int
    connector_id: int
    id_tag: str
    expiry: dt.datetime
    parent_id_tag: str | None = None

    def admits(self, id_tag: str, parent_id_tag: str | None) -> bool:
        """Whether ``id_tag`` (whose parent is ``parent_id_tag``, None: not known) may use this
        reservation (see the module docstring)."""
        if same_id_tag(id_tag, self.id_tag):
            return True
        parent = self.parent_id_tag
        if parent is None:
            return False
        return same_id_tag(id_tag, parent) or (
            parent_id_tag is not None and same_id_tag(parent_id_tag, parent))


def as_utc(moment: dt.datetime) -> dt.datetime:
    """An aware UTC datetime (one without a zone is taken as UTC; one at the edge of the
    calendar, year 1 or 9999 with an offset that has no UTC twin, keeps its clock reading)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        return moment.replace(tzinfo=dt.UTC)


class Reservations:
    """The reservations of one charge point, by ``reservationId`` (see the module docstring)."""

    def __init__(self) -> None:
        self._by_id: dict[int, Reservation] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Reservation]:
        return iter(list(self._by_id.values()))

    def get(self, reservation_id: int) -> Reservation | None:
        """The reservation with this id, or None."""
        return self._by_id.get(reservation_id)

    def at(self, connector_id: int) -> Reservation | None:
        """The reservation of connector ``connector_id`` (> 0) itself, or None."""
        for reservation in self._by_id.values():
            if reservation.connector_id == connector_id:
                return reservation
        return None

    def for_any(self) -> list[Reservation]:
        """The connector-0 reservations, oldest first."""
        return [r for r in self._by_id.values() if r.connector_id == 0]

    def unclaimed(self, points: Mapping[int, Point]) -> list[Reservation]:
        """The connector-0 reservations still keeping a connector: those whose tag is not
        already waiting for a cable or being authorized at some connector."""
        def claimed(reservation: Reservation) -> bool:
            return any(
                (p.ready_tag is not None and reservation.admits(p.ready_tag, p.ready_parent))
                or (p.authorizing is not None and reservation.admits(p.authorizing, None))
                for p in points.values())
        return [r for r in self.for_any() if not claimed(r)]

    # --- changes ------------------------------------------------------------------------------

    def place(self, reservation: Reservation) -> Reservation | None:
        """Add ``reservation``; returns the one with the same id it replaces, if any."""
        replaced = self._by_id.pop(reservation.reservation_id, None)
        self._by_id[reservation.reservation_id] = reservation
        return replaced

    def cancel(self, reservation_id: int) -> Reservation | None:
        """Remove and return the reservation with this id (None: there is none)."""
        return self._by_id.pop(reservation_id, None)

    def end_at(self, connector_id: int) -> list[Reservation]:
        """Remove and return the reservations of ``connector_id`` (0: the connector-0 ones)."""
        ended = [r for r in self._by_id.values() if r.connector_id == connector_id]
        for reservation in ended:
            del self._by_id[reservation.reservation_id]
        return ended

    def expire(self, wall_offset: float, now: float) -> list[Reservation]:
        """Remove and return the reservations expired at ``now`` on the charger's clock
        (``wall_offset``: Unix seconds at ``now == 0``). The test is written as
        :meth:`next_expiry` minus ``wall_offset``, so a tick at that deadline always ends it."""
        ended = [r for r in self._by_id.values()
                 if r.expiry.timestamp() - wall_offset <= now]
        for reservation in ended:
            del self._by_id[reservation.reservation_id]
        return ended

    def next_expiry(self) -> float | None:
        """The earliest expiry (Unix seconds), or None."""
        return min((r.expiry.timestamp() for r in self._by_id.values()), default=None)

    def consume(
        self, connector_id: int, id_tag: str, parent_id_tag: str | None
    ) -> Reservation | None:
        """A transaction starts at ``connector_id`` for ``id_tag``: remove and return the
        reservation it uses (the connector's own if the tag matches it, else the oldest
        matching connector-0 one), or None."""
        own = self.at(connector_id)
        if own is not None and own.admits(id_tag, parent_id_tag):
            return self._by_id.pop(own.reservation_id)
        for reservation in self.for_any():
            if reservation.admits(id_tag, parent_id_tag):
                return self._by_id.pop(reservation.reservation_id)
        return None

    # --- what the reservations hold -----------------------------------------------------------

    def free(
        self, points: Mapping[int, Point], operative: Callable[[int], bool]
    ) -> frozenset[int]:
        """The free connectors (see the module docstring)."""
        return frozenset(
            cid for cid, p in points.items()
            if operative(cid) and p.transaction is None
            and p.ready_tag is None and p.authorizing is None and not p.finished
            and self.at(cid) is None
        )

    def holds(
        self, connector_id: int, points: Mapping[int, Point], operative: Callable[[int], bool]
    ) -> bool:
        """Whether connector ``connector_id`` (> 0) shows Reserved: it has a reservation of its
        own, or it is one of the free connectors the connector-0 reservations keep, with no EV
        plugged in."""
        if self.at(connector_id) is not None:
            return True
        if points[connector_id].ev is not None:
            return False
        wanted = len(self.unclaimed(points))
        if not wanted:
            return False
        free = self.free(points, operative)
        return connector_id in free and len(free) <= wanted

    def blocker(
        self,
        connector_id: int,
        id_tag: str,
        parent_id_tag: str | None,
        points: Mapping[int, Point],
        operative: Callable[[int], bool],
    ) -> Reservation | None:
        """The reservation that keeps ``id_tag`` (parent ``parent_id_tag``, None: unknown) from
        charging at ``connector_id``, or None: the connector's own reservation for another
        tag, or a connector-0 reservation that needs this free connector."""
        own = self.at(connector_id)
        if own is not None:
            return None if own.admits(id_tag, parent_id_tag) else own
        others = [r for r in self.unclaimed(points) if not r.admits(id_tag, parent_id_tag)]
        if not others:
            return None
        free = self.free(points, operative)
        if connector_id in free and len(free) - 1 < len(others):
            return others[0]
        return None
