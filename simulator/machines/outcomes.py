"""What the OCPP-J session tells the charger: the outcomes of one step.

:class:`IncomingCall` (a valid CALL from the central system, to be answered), :class:`CallAnswered`
and :class:`CallFailed` (what became of one of our CALLs, an :class:`OutgoingCall`). Frozen
records, handed over by :meth:`simulator.machines.session.Session.take_outcomes` in the order
they happened.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from simulator.machines.effects import OutboxEntry


@dataclasses.dataclass(frozen=True, slots=True)
class OutgoingCall:
    """One of our CALLs as it went out.

    ``context`` is whatever the charger attached to an ordinary message (e.g. the connector an
    Authorize is for); ``entry`` is set instead for a transaction message.
    """

    unique_id: str
    action: str
    sent_at: float
    request: msgspec.Struct | None = None
    context: object = None
    entry: OutboxEntry | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class IncomingCall:
    """A valid CALL from the CS; the charger must answer it with :meth:`Session.reply` (or stay
    silent on purpose, e.g. while the boot was Rejected)."""

    unique_id: str
    action: str
    request: Any


@dataclasses.dataclass(frozen=True, slots=True)
class CallAnswered:
    """The CS answered ``call`` with a valid ``response``."""

    call: OutgoingCall
    response: Any


@dataclasses.dataclass(frozen=True, slots=True)
class CallFailed:
    """``call`` failed: CALLERROR, timeout, invalid result or lost connection (``reason``).
    ``final`` is true when the message was given up on (always for an ordinary message)."""

    call: OutgoingCall
    reason: str
    final: bool


Outcome = IncomingCall | CallAnswered | CallFailed
