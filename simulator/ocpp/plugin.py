"""What an OCPP-J protocol version provides to the rest of the simulator.

A :class:`ProtocolPlugin` bundles one version's WebSocket subprotocol name, its action registry
(:class:`ActionSpec` per action) and its payload codec. Everything outside ``simulator.ocpp``
talks to a version only through this record, so 2.0.1 can later sit beside ``v16`` as a second
instance without changes elsewhere. :class:`PayloadError` is the one failure every codec raises.
Pure data: no I/O, no trio.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import msgspec

from simulator.ocpp.frames import ErrorCode


class Direction(enum.StrEnum):
    """Who may send an action's CALL: the charge point, the central system, or either."""

    CP_TO_CS = "CpToCs"
    CS_TO_CP = "CsToCp"
    BOTH = "Both"

    @property
    def charge_point_sends(self) -> bool:
        """True when a charge point may send this action's CALL."""
        return self is not Direction.CS_TO_CP

    @property
    def central_system_sends(self) -> bool:
        """True when a central system may send this action's CALL."""
        return self is not Direction.CP_TO_CS


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action of a protocol version.

    Attributes:
        action: the case-sensitive action name on the wire (``"BootNotification"``).
        request: the Struct type of the CALL payload.
        response: the Struct type of the CALLRESULT payload.
        direction: who sends the CALL.
        profile: the feature profile (1.6) or functional block (2.x) the action belongs to; a
            version-specific ``StrEnum``.
    """

    action: str
    request: type[msgspec.Struct]
    response: type[msgspec.Struct]
    direction: Direction
    profile: enum.StrEnum


class PayloadError(Exception):
    """A CALL or CALLRESULT payload that does not fit its action's schema, or an unknown action.

    Attributes:
        code: the OCPP error code a receiver answers a CALL with.
        reason: one line saying what is wrong (field path included), fit for a log or a
            CALLERROR description.
    """

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ProtocolPlugin:
    """What one OCPP-J version provides.

    Attributes:
        name: human-readable version name (``"OCPP 1.6"``).
        subprotocol: the ``Sec-WebSocket-Protocol`` token a client offers and a server selects
            (each version's own: see ``simulator.ocpp.v16.PLUGIN``).
        actions: every action of the version by name (immutable).
        decode_request: ``(action, raw) -> Struct``; raises :class:`PayloadError`.
        decode_response: ``(action, raw) -> Struct``; raises :class:`PayloadError`.
        encode_payload: ``Struct -> bytes`` (compact UTF-8 JSON).
        action_of: the action name of a request or response Struct (instance or type); raises
            ``ValueError`` for a type that belongs to no action.
    """

    name: str
    subprotocol: str
    actions: Mapping[str, ActionSpec]
    decode_request: Callable[[str, bytes | msgspec.Raw], msgspec.Struct]
    decode_response: Callable[[str, bytes | msgspec.Raw], msgspec.Struct]
    encode_payload: Callable[[msgspec.Struct], bytes]
    action_of: Callable[[msgspec.Struct | type[msgspec.Struct]], str]
