"""Request and response payloads of the OCPP 1.6 Reservation profile.

One Struct per schema file (``<Action>.json`` → ``<Action>Request``, ``<Action>Response.json`` →
``<Action>Response``); fields, required-ness and constraints are the official schema's.
"""

from __future__ import annotations

from datetime import datetime

from simulator.ocpp.v16.base import CiString20, utc_field
from simulator.ocpp.v16.base import Payload as _Payload
from simulator.ocpp.v16.enums import CancelReservationStatus, ReservationStatus


class ReserveNowRequest(_Payload, frozen=True):
    """``ReserveNow`` request (the CALL payload), CS → CP."""

    connector_id: int
    expiry_date: datetime
    id_tag: CiString20
    reservation_id: int
    parent_id_tag: CiString20 | None = None

    def __post_init__(self) -> None:
        utc_field(self, "expiry_date")


class ReserveNowResponse(_Payload, frozen=True):
    """``ReserveNow`` response (the CALLRESULT payload)."""

    status: ReservationStatus


class CancelReservationRequest(_Payload, frozen=True):
    """``CancelReservation`` request (the CALL payload), CS → CP."""

    reservation_id: int


class CancelReservationResponse(_Payload, frozen=True):
    """``CancelReservation`` response (the CALLRESULT payload)."""

    status: CancelReservationStatus
