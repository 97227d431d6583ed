"""A probe of the simulator's own event loop: how late it runs, recorded in the ledger.

A fleet that asks for more than one process can serve queues its work: frames wait to be read,
timers fire late, and every latency the ledger measures then includes the simulator's own delay.
The probe makes that visible: it asks to wake every :data:`PROBE_INTERVAL` seconds and measures
how late it woke. Each second in which it woke :data:`NOTABLE_LAG` or more late at worst becomes
a :class:`~simulator.events.LoopLagged` event (a healthy run records none; a stall longer than a
second is one event whose ``period`` covers all of it); ``sim report`` adds their periods up and
warns that latencies measured then are not the CSMS's alone. The probe measures the loop, not
the ledger: while its own event waits for room in a full ledger it measures nothing.

Under a virtual clock (``trio.testing.MockClock``) time stands still while tasks run, so the
probe never sees lag; the runtime does not start it there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import trio

from simulator.events import Event, LoopLagged

PROBE_INTERVAL: Final = 0.1
"""Seconds between the probe's wake-ups."""
REPORT_PERIOD: Final = 1.0
"""Seconds over which the wake-ups are summarized in one event."""
NOTABLE_LAG: Final = 0.02
"""Seconds late (at worst within a period) from which the period is recorded: well above a
scheduler's jitter, well below what a CSMS's latency is."""


async def run_lag_probe(
    publish: Callable[[Event], Awaitable[None]],
    *,
    interval: float = PROBE_INTERVAL,
    period: float = REPORT_PERIOD,
    notable: float = NOTABLE_LAG,
) -> None:
    """Measure the event loop's lag until cancelled; ``publish`` each period whose worst lag
    reached ``notable`` as a :class:`LoopLagged`."""
    lags: list[float] = []
    period_start = asked = trio.current_time()
    period_end = period_start + period
    while True:
        asked += interval
        now = trio.current_time()
        if asked < now:  # fell more than an interval behind: measure from now on
            asked = now + interval
        await trio.sleep_until(asked)
        now = trio.current_time()
        lags.append(now - asked)
        if now >= period_end:
            worst = max(lags)
            if worst >= notable:
                await publish(LoopLagged(
                    t=now, max=round(worst, 6), mean=round(sum(lags) / len(lags), 6),
                    samples=len(lags), probe_interval=interval,
                    period=round(now - period_start, 6),  # (a longer stall: all of it)
                ))
            lags.clear()
            period_start = trio.current_time()  # (a wait in publish is the ledger's, not ours)
            period_end = period_start + period


__all__ = ["NOTABLE_LAG", "PROBE_INTERVAL", "REPORT_PERIOD", "run_lag_probe"]
