"""The event-loop lag probe: a second in which the loop ran late becomes one event, a healthy
loop records nothing."""

from __future__ import annotations

import time

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


async def test_a_blocked_loop_is_recorded_once_per_period_with_how_late_it_ran() -> None:
    """Real time: a task that holds the loop for 150 ms makes the probe wake that late, and the
    period it falls in is recorded (a calm period is not: see the test above; on a busy
    machine another period may lag too, so only the worst one is checked)."""
    published: list[Event] = []

    async def publish(event: Event) -> None:
        published.append(event)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: run_lag_probe(publish, interval=0.01, period=0.2,
                                                     notable=0.1))
            await trio.sleep(0.3)
            time.sleep(0.15)  # noqa: ASYNC251 (blocks the whole loop, as an overloaded process)
            await trio.sleep(0.6)
            nursery.cancel_scope.cancel()
    assert published and all(isinstance(event, LoopLagged) for event in published)
    lagged = max(published, key=lambda event: event.max)  # type: ignore[attr-defined]
    assert isinstance(lagged, LoopLagged)
    assert 0.12 <= lagged.max < 1.0
    assert lagged.mean < lagged.max
    assert lagged.samples >= 2
    assert lagged.probe_interval == 0.01


async def test_a_stall_longer_than_a_period_is_recorded_with_all_its_length() -> None:
    """One wake-up half a second late closes one period: its event covers the whole stall, so
    the report counts half a second, not one period."""
    published: list[Event] = []

    async def publish(event: Event) -> None:
        published.append(event)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: run_lag_probe(publish, interval=0.01, period=0.1,
                                                     notable=0.3))
            await trio.sleep(0.15)
            time.sleep(0.5)  # noqa: ASYNC251 (blocks the whole loop)
            await trio.sleep(0.3)
            nursery.cancel_scope.cancel()
    assert published and all(isinstance(event, LoopLagged) for event in published)
    stall = max(published, key=lambda event: event.max)  # type: ignore[attr-defined]
    assert isinstance(stall, LoopLagged)
    assert 0.45 <= stall.max < 2.0
    assert stall.period >= stall.max
