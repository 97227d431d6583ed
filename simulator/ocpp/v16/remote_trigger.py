"""Request and response payloads of the OCPP 1.6 Remote Trigger profile.

One Struct per schema file (``<Action>.json`` → ``<Action>Request``, ``<Action>Response.json`` →
``<Action>Response``); fields, required-ness and constraints are the official schema's.
"""

from __future__ import annotations

from typing import Final

from simulator.ocpp.v16.base import Payload as _Payload
from simulator.ocpp.v16.base import check_member
from simulator.ocpp.v16.enums import MessageTrigger, TriggerMessageStatus

_TRIGGERABLE: Final = frozenset(
    {
        MessageTrigger.BOOT_NOTIFICATION,
        MessageTrigger.DIAGNOSTICS_STATUS_NOTIFICATION,
        MessageTrigger.FIRMWARE_STATUS_NOTIFICATION,
        MessageTrigger.HEARTBEAT,
        MessageTrigger.METER_VALUES,
        MessageTrigger.STATUS_NOTIFICATION,
    }
)
"""What TriggerMessage may request (ExtendedTriggerMessage allows two more)."""


class TriggerMessageRequest(_Payload, frozen=True):
    """``TriggerMessage`` request (the CALL payload), CS → CP."""

    requested_message: MessageTrigger
    connector_id: int | None = None

    def __post_init__(self) -> None:
        check_member(self.requested_message, _TRIGGERABLE, "requestedMessage")


class TriggerMessageResponse(_Payload, frozen=True):
    """``TriggerMessage`` response (the CALLRESULT payload)."""

    status: TriggerMessageStatus
