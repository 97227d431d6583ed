"""Ending an injection before its ``until``: whether one is still in force, and the end
itself, recorded as a :class:`~simulator.events.FaultEnded` event then handed to the charger.

A fault delivered with an ``until`` is in force until then; one without is in force until the
run ends, unless it acts once (:data:`ONCE`: a close, a reset, the protocol faults, which
break a number of frames, a failing firmware update). The charger can cut short the faults of
:data:`EARLY` (:meth:`~simulator.actors.charger.ChargerControl.end`: the link's shaping, the
machine's windows and distortions, which then end as they would at their ``until``); any
other keeps acting until its ``until`` (``partition``, ``half_open``, ``power_loss``...: the
event says so, ``early`` false).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final

import trio

from simulator.actors.charger import ChargerControl
from simulator.actors.director import skip_reason
from simulator.chaos import CATALOG, Family, Hit, Injection
from simulator.events import Event, FaultEnded

__all__ = ["EARLY", "ONCE", "end_injection", "ends_early", "in_force"]

ONCE: Final = frozenset({"disconnect", "reset", "slow_close", "firmware_failure"}) \
    | CATALOG[Family.PROTOCOL]
"""Faults that act once: never in force afterwards."""

EARLY: Final = frozenset({
    "latency", "bandwidth", "fragment", "slow_responses", "reject_commands", "connector_fault",
    "boot_loop", "duplicate_start", "stale_transaction_id", "missing_transaction_id",
    "clock_skew", "meter_regress", "meter_spike",
})
"""Faults a charger can end before their ``until`` (a ``connector_fault`` only when it has
one: without, nothing clears it but a ``clear_fault``)."""


def ends_early(injection: Injection) -> bool:
    """Whether a charger can end ``injection`` before its ``until``."""
    return injection.fault in EARLY and (
        injection.fault != "connector_fault" or injection.until is not None)


def in_force(injection: Injection, now: float) -> bool:
    """Whether ``injection`` (delivered) still acts at ``now``."""
    if injection.fault in ONCE or injection.at > now:
        return False
    return injection.until is None or injection.until > now


async def end_injection(
    hit: Hit,
    controls: Mapping[str, ChargerControl],
    publish: Callable[[Event], Awaitable[None]],
    *,
    source: str,
) -> bool:
    """Record the end of ``hit``'s injection now (``source``: who asked), then have its
    charger end it if it can (:data:`EARLY`) and still runs. Returns whether it was ended."""
    injection = hit.injection
    early = ends_early(injection) and skip_reason(hit.charger, controls) is None
    await publish(FaultEnded(t=trio.current_time(), charger=hit.charger,
                             connector=injection.connector, fault=injection.fault,
                             injection=injection.id, source=source, early=early))
    if early:
        await controls[hit.charger].end(injection)
    return early
