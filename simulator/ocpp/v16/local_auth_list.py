"""Request and response payloads of the OCPP 1.6 Local Auth List Management profile.

One Struct per schema file (``<Action>.json`` → ``<Action>Request``, ``<Action>Response.json`` →
``<Action>Response``); fields, required-ness and constraints are the official schema's.
"""

from __future__ import annotations

from simulator.ocpp.v16.base import Payload as _Payload
from simulator.ocpp.v16.datatypes import AuthorizationData
from simulator.ocpp.v16.enums import UpdateStatus, UpdateType


class GetLocalListVersionRequest(_Payload, frozen=True):
    """``GetLocalListVersion`` request (the CALL payload), CS → CP: an empty object."""


class GetLocalListVersionResponse(_Payload, frozen=True):
    """``GetLocalListVersion`` response (the CALLRESULT payload)."""

    list_version: int


class SendLocalListRequest(_Payload, frozen=True):
    """``SendLocalList`` request (the CALL payload), CS → CP."""

    list_version: int
    update_type: UpdateType
    local_authorization_list: tuple[AuthorizationData, ...] | None = None


class SendLocalListResponse(_Payload, frozen=True):
    """``SendLocalList`` response (the CALLRESULT payload)."""

    status: UpdateStatus
