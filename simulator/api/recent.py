"""What the API remembers of each charger that its machine does not keep: its last frames and
its last crash, fed by a bus observer.

:class:`RecentActivity` observes the bus from the moment the API is built (just after the fleet
started: frames and crashes before that are not in it; the ledger has them). Per charger it keeps
the last :data:`FRAMES_KEPT` frames, in and out, as the ledger records them (a frame naming
``AuthorizationKey`` is already redacted by the charger before it is published), read cut to
:data:`RAW_KEPT` characters, and the last crash with its traceback. The observer runs inside
``bus.publish`` on the fleet's hot path: a type test, a dictionary look-up and a bounded
``deque.append`` of the event itself (no copy); it never raises.
"""

from __future__ import annotations

import collections
from typing import Final, NamedTuple, cast

from simulator.events import Crashed, Event, FrameIn, FrameOut

FRAMES_KEPT: Final = 20
"""Frames kept per charger (the newest)."""
RAW_KEPT: Final = 4096
"""Characters of a frame's text kept (a longer frame is cut, and marked so)."""


class Frame(NamedTuple):
    """One frame as kept: trio time ``t``, ``direction`` ``in`` or ``out``, the CALL's
    ``action`` (or the action answered), the OCPP-J ``message_type`` and the text ``raw``."""

    t: float
    direction: str
    action: str | None
    message_type: int | None
    raw: str


class Crash(NamedTuple):
    """A charger's last crash: trio time ``t``, the error and its traceback."""

    t: float
    error: str
    traceback: str


class RecentActivity:
    """Each charger's last frames and last crash (see the module docstring); read with
    :meth:`frames` and :meth:`crash`."""

    def __init__(self) -> None:
        self._frames: dict[str, collections.deque[FrameIn | FrameOut]] = {}
        self._crashes: dict[str, Crash] = {}

    def observe(self, event: Event) -> None:
        """Keep ``event`` if it is a charger's frame or crash (called inside ``bus.publish`` for
        every event: it keeps the frame event itself, and makes a :class:`Frame` of it only when
        one is read)."""
        kind = type(event)
        if kind is FrameIn or kind is FrameOut:
            charger = event.charger
            if charger is None:
                return
            ring = self._frames.get(charger)
            if ring is None:
                ring = self._frames[charger] = collections.deque(maxlen=FRAMES_KEPT)
            ring.append(cast(FrameIn | FrameOut, event))
        elif kind is Crashed:
            crash = cast(Crashed, event)
            if crash.charger is not None:
                self._crashes[crash.charger] = Crash(crash.t, crash.error, crash.traceback)

    def frames(self, charger: str) -> tuple[Frame, ...]:
        """``charger``'s last frames, oldest first (empty: none seen since the API started)."""
        ring = self._frames.get(charger)
        if ring is None:
            return ()
        return tuple(
            Frame(frame.t, "in" if type(frame) is FrameIn else "out", frame.action,
                  frame.message_type,
                  frame.raw if len(frame.raw) <= RAW_KEPT else frame.raw[:RAW_KEPT] + "…")
            for frame in ring)

    def crash(self, charger: str) -> Crash | None:
        """``charger``'s last crash since the API started (None: none)."""
        return self._crashes.get(charger)


__all__ = ["FRAMES_KEPT", "RAW_KEPT", "Crash", "Frame", "RecentActivity"]
