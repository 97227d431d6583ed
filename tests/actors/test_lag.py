"""The event-loop lag probe: a second in which the loop ran late becomes one event, a healthy
loop records nothing.

A task that moves the virtual clock on without yielding holds the loop, as a long computation
would: the probe then wakes exactly that late, deterministically.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from simulator.actors.lag import run_lag_probe
from simulator.events import Event, LoopLagged


async def probe_through(
    clock: trio.testing.MockClock, *, hold_at: float, hold: float, until: float, **probe: float,
) -> list[Event]:
    """Run the probe (``probe``: its interval, period, notable) on ``clock`` until ``until``
    virtual seconds, holding the loop for ``hold`` seconds at ``hold_at``; what it published."""
    published: list[Event] = []

    async def publish(event: Event) -> None:
        published.append(event)

    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        nursery.start_soon(lambda: run_lag_probe(publish, **probe))
        await trio.sleep_until(start + hold_at)
        clock.jump(hold)  # the loop is held: nobody else runs meanwhile
        await trio.sleep_until(start + until)
        nursery.cancel_scope.cancel()
    return published


async def test_a_loop_on_time_records_nothing(autojump_clock: trio.testing.MockClock) -> None:
    assert await probe_through(autojump_clock, hold_at=10, hold=0, until=30) == []


async def test_a_blocked_loop_is_recorded_once_per_period_with_how_late_it_ran(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Held for 150 ms, the probe wakes that late; the period it falls in is recorded, the calm
    periods around it are not."""
    (lagged,) = await probe_through(autojump_clock, hold_at=0.305, hold=0.15, until=1.05,
                                    interval=0.01, period=0.2, notable=0.1)
    assert isinstance(lagged, LoopLagged)
    assert lagged.max == pytest.approx(0.145)  # asked for 0.31, woke at 0.455
    assert lagged.mean < lagged.max
    assert lagged.samples >= 2
    assert lagged.probe_interval == 0.01


async def test_a_stall_longer_than_a_period_is_recorded_with_all_its_length(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One wake-up half a second late closes one period: its event covers the whole stall, so
    the report counts half a second, not one period."""
    (stall,) = await probe_through(autojump_clock, hold_at=0.155, hold=0.5, until=0.955,
                                   interval=0.01, period=0.1, notable=0.3)
    assert isinstance(stall, LoopLagged)
    assert stall.max == pytest.approx(0.495)
    assert stall.period >= stall.max
