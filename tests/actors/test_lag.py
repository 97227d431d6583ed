"""The event-loop lag probe: a second in which the loop ran late becomes one event, a healthy
loop records nothing."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from simulator.actors.lag import run_lag_probe
from simulator.events import Event, LoopLagged


async def test_a_loop_on_time_records_nothing(autojump_clock: trio.testing.MockClock) -> None:
    published: list[Event] = []

    async def publish(event: Event) -> None:
        published.append(event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_lag_probe, publish)
        await trio.sleep(30)  # (virtual: the loop is never late)
        nursery.cancel_scope.cancel()
    assert published == []


async def test_a_blocked_loop_is_recorded_once_per_period_with_how_late_it_ran(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A task that holds the loop for 150 ms (here: moves the virtual clock on without
    yielding, as a long computation would) makes the probe wake that late; the period it falls
    in is recorded, the calm periods around it are not."""
    published: list[Event] = []

    async def publish(event: Event) -> None:
        published.append(event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_lag_probe(publish, interval=0.01, period=0.2,
                                                 notable=0.1))
        await trio.sleep(0.305)
        autojump_clock.jump(0.15)  # the loop is held: nobody else runs meanwhile
        await trio.sleep(0.6)
        nursery.cancel_scope.cancel()
    (lagged,) = published
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
    published: list[Event] = []

    async def publish(event: Event) -> None:
        published.append(event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_lag_probe(publish, interval=0.01, period=0.1,
                                                 notable=0.3))
        await trio.sleep(0.155)
        autojump_clock.jump(0.5)
        await trio.sleep(0.3)
        nursery.cancel_scope.cancel()
    (stall,) = published
    assert isinstance(stall, LoopLagged)
    assert stall.max == pytest.approx(0.495)
    assert stall.period >= stall.max
