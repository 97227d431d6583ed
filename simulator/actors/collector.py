"""When a running fleet's garbage collector runs: a small pure policy and the task that applies it.

After the ramp the fleet freezes what is alive (``gc.freeze``) and raises the collection
thresholds (:data:`GC_THRESHOLDS`): thousands of long-lived actors, scanned on every collection,
made the default thresholds collect constantly for nothing. Two things then need care:

- **The oldest generation is never collected on its own** with the raised thresholds. So every
  :data:`REFRESH_INTERVAL` seconds the policy collects and freezes again (a *refresh*).
- **A frozen object is never collected.** A connection alive at a freeze that later drops leaves
  its reference cycles (wsproto's parser generator, trio's tasks and exceptions) in the permanent
  generation for good. So a refresh that follows dropped connections unfreezes first (a *full*
  refresh: it traverses everything, about a second for 2,000 chargers).
- **A mass drop** (a CSMS restart, a reconnect storm, a blackout: :data:`STORM_SHARE` of the fleet
  or more within one tick) leaves the garbage of every dropped connection while the same chargers
  reconnect and allocate anew, so the heap grows by the whole storm and keeps that high-water
  mark (Python's allocator returns little to the system). The policy then does a full refresh at
  once and collects every tick while chargers keep dropping (failed reconnection attempts make
  garbage too, and so do the reconnections: handshakes, boots, replayed queues), until the fleet
  is back to where it was before the storm (within :data:`STORM_SHARE`) and :data:`STORM_QUIET`
  seconds have passed without a mass drop, or :data:`STORM_MAX` seconds in all; then it freezes
  the reconnected fleet.

:class:`CollectorPolicy` decides from the time and the fleet's running count of disconnections
and how many chargers are connected (pure, tested without an event loop); :func:`run_collector`
polls the fleet once per :data:`TICK` and applies the decision with the ``gc`` module.
"""

from __future__ import annotations

import enum
import gc
import math
from collections.abc import Callable
from typing import Final

import trio

GC_THRESHOLDS: Final = (200_000, 100, 1000)
"""Generation thresholds once the fleet is up: thousands of long-lived actors make the default
(700, 10, 10) collect constantly for nothing (measured in tools/bench/fleet.py)."""
TICK: Final = 1.0
"""Seconds between two looks at the fleet."""
VIRTUAL_TICK: Final = 60.0
"""Seconds of a virtual clock between two looks: a simulated day passes in under a minute, and a
look every simulated second (86,400 of them, and a storm's collection on each) cost a tenth of
the run's wall time."""
REFRESH_INTERVAL: Final = 300.0
"""Seconds between two refreshes (collect, then freeze) of a fleet without mass drops."""
STORM_SHARE: Final = 0.05
"""Share of the fleet that must drop within one tick for a storm."""
STORM_QUIET: Final = 10.0
"""Seconds without a mass drop that end a storm (once the fleet is back)."""
STORM_MAX: Final = 300.0
"""Seconds a storm lasts at most (a CSMS that stays down keeps the fleet from coming back)."""


class Action(enum.Enum):
    """What the collector does now."""

    NOTHING = "nothing"
    COLLECT = "collect"
    """A full collection of the unfrozen generations."""
    REFRESH = "refresh"
    """Collect, then freeze what is alive."""
    FULL_REFRESH = "full refresh"
    """Unfreeze, collect everything, freeze what is alive."""


class CollectorPolicy:
    """Decides, each tick, what the collector does (see the module docstring).

    ``size`` is the number of chargers in the fleet; :meth:`tick` takes the time (seconds), the
    fleet's running count of disconnections so far and how many chargers are connected now.
    """

    def __init__(self, size: int, now: float) -> None:
        self._storm_drop = max(1, math.ceil(STORM_SHARE * size))
        self._last_refresh = now
        self._seen = 0
        self._connected = 0
        self._dropped_since_refresh = False
        self._storm_until: float | None = None
        self._storm_ends_by = math.inf
        self._back_at = 0  # how many were connected before the storm

    @property
    def storming(self) -> bool:
        """Whether a storm is on (collections every tick)."""
        return self._storm_until is not None

    def tick(self, now: float, disconnections: int, connected: int) -> Action:
        """The action for this tick. ``disconnections`` never decreases."""
        dropped, self._seen = disconnections - self._seen, disconnections
        before, self._connected = self._connected, connected
        if dropped:
            self._dropped_since_refresh = True
        if dropped >= self._storm_drop:
            starting = self._storm_until is None
            self._storm_until = now + STORM_QUIET
            if starting:
                self._back_at = before
                self._storm_ends_by = now + STORM_MAX
                return self._refreshed(now, full=True)
            return Action.COLLECT
        if self._storm_until is not None:
            reconnecting = connected + self._storm_drop <= self._back_at
            if now < self._storm_ends_by and (now < self._storm_until or reconnecting):
                return Action.COLLECT
            self._storm_until = None
            return self._refreshed(now, full=self._dropped_since_refresh)
        if now - self._last_refresh >= REFRESH_INTERVAL:
            return self._refreshed(now, full=self._dropped_since_refresh)
        return Action.NOTHING

    def _refreshed(self, now: float, *, full: bool) -> Action:
        self._last_refresh = now
        self._dropped_since_refresh = False
        return Action.FULL_REFRESH if full else Action.REFRESH


def apply(action: Action) -> None:
    """Carry out ``action`` with the ``gc`` module."""
    match action:
        case Action.COLLECT:
            gc.collect()
        case Action.REFRESH:
            gc.collect()
            gc.freeze()
        case Action.FULL_REFRESH:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
        case Action.NOTHING:
            pass


def tune_gc() -> None:
    """Collect once, move everything alive into the permanent generation and raise thresholds.

    Called after the ramp: the actors, channels and machines built at start-up live for the
    whole run, so scanning them on every young collection is pure cost.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def run_collector(
    size: int, disconnections: Callable[[], int], connected: Callable[[], int], *,
    tick: float = TICK,
) -> None:
    """Apply :class:`CollectorPolicy` to a fleet of ``size`` chargers whose running count of
    disconnections ``disconnections()`` gives and whose connected chargers ``connected()``
    counts, every ``tick`` seconds of the run's clock (:data:`TICK`; :data:`VIRTUAL_TICK`
    under virtual time), until cancelled."""
    policy = CollectorPolicy(size, trio.current_time())
    while True:
        await trio.sleep(tick)
        apply(policy.tick(trio.current_time(), disconnections(), connected()))
