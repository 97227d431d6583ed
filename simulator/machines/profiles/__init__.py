"""Feature-profile handlers: the CS→CP operations of a charge point, one handler per profile.

A CALL from the central system is dispatched by action: the protocol plugin's
:class:`~simulator.ocpp.plugin.ActionSpec` names the action's profile, and the handler whose
:attr:`ProfileHandler.profile` it is answers it. A profile without a handler is not supported:
the session answers its calls NotSupported before they reach the charger, and
``SupportedFeatureProfiles`` lists only the handled ones.

The contract of a handler (:class:`ProfileHandler`):

- ``profile`` (a class attribute) is the profile it implements;
- :meth:`~ProfileHandler.answer` decides the response to one decoded request and returns what to
  do once the response is on the wire (answer first, act after: e.g. a RemoteStop's
  StopTransaction goes out after the CALLRESULT); :meth:`~ProfileHandler.handle` sends the reply
  and runs that follow-up, and answers a request it does not know NotSupported;
- :meth:`~ProfileHandler.next_deadline` and :meth:`~ProfileHandler.due` are the handler's own
  timers (checked by the charger at every step, for a handler whose
  :meth:`~ProfileHandler.has_timers` is True), :meth:`~ProfileHandler.powered_on` is called at
  every (re)boot;
- a handler owns its own state; what it shares with the rest of the charger it reaches through
  the :class:`~simulator.machines.context.ChargerContext` and the components handed to its
  constructor, never through another handler.

A handler that sends a CALL of its own and wants its answer (e.g. SignCertificate's status)
passes an :class:`AwaitsAnswer` as the call's ``context``; the charger hands it the response or
the failure.

Adding a profile is a new module here with one :class:`ProfileHandler` subclass, and one line in
the charger's list of handlers; no other handler changes.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable
from typing import Any, ClassVar

import msgspec

from simulator.machines.context import ChargerContext
from simulator.machines.outcomes import IncomingCall
from simulator.ocpp.frames import ErrorCode

Followup = Callable[[], None] | None
"""What an operation does after its answer is sent (None: nothing)."""

Answer = tuple[msgspec.Struct, Followup]
"""A response and its follow-up."""


class ProfileHandler(abc.ABC):
    """The CS→CP operations of one feature profile (see the module docstring)."""

    profile: ClassVar[enum.StrEnum]
    """The feature profile whose actions this handler answers."""

    def __init__(self, ctx: ChargerContext) -> None:
        self.ctx = ctx

    @abc.abstractmethod
    def answer(self, request: msgspec.Struct, now: float) -> Answer | None:
        """The response to a decoded ``request`` of this profile and what to do after sending
        it; None for a request this handler does not implement (answered NotSupported)."""

    def handle(self, call: IncomingCall, now: float) -> None:
        """Answer ``call`` (CALLRESULT, or CALLERROR NotSupported), then carry out what it asks."""
        answered = self.answer(call.request, now)
        session = self.ctx.session
        if answered is None:
            session.reply_error(call.unique_id, call.action, ErrorCode.NOT_SUPPORTED,
                                f"{call.action} is not supported", now)
            return
        response, followup = answered
        session.reply(call, response, now)
        if followup is not None:
            followup()

    def has_timers(self) -> bool:
        """Whether this handler keeps timers of its own (:meth:`next_deadline`, :meth:`due`);
        the charger asks only those that do, at every step. A handler that overrides
        :meth:`next_deadline` says True."""
        return False

    def next_deadline(self) -> float | None:
        """When :meth:`due` must next run for this handler's own timers, or None."""
        return None

    def due(self, now: float) -> None:
        """Run what fell due by ``now`` (called at every step)."""
        del now

    def powered_on(self, now: float) -> None:
        """The charger (re)booted: drop what does not survive a reboot."""
        del now


class AwaitsAnswer(abc.ABC):
    """The ``context`` of a CALL a handler sent (``session.call(request, now, context=...)``)
    whose answer it wants: the charger calls :meth:`answered` with the CS's valid response, or
    :meth:`failed` when none came (CALLERROR, timeout, lost link, offline)."""

    @abc.abstractmethod
    def answered(self, response: Any, now: float) -> None:
        """The CS answered with ``response`` (a decoded, schema-valid result)."""

    @abc.abstractmethod
    def failed(self, reason: str, now: float) -> None:
        """No valid answer came (``reason`` as the session gives it)."""
