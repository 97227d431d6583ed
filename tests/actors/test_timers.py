"""The timer wheel: alarms fire at their deadline, once, into their owner's channel."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from simulator.actors.timers import TimerWheel


def drain(receive: trio.MemoryReceiveChannel[str]) -> list[str]:
    out: list[str] = []
    while True:
        try:
            out.append(receive.receive_nowait())
        except trio.WouldBlock:
            return out



@asynccontextmanager
async def running(wheel: TimerWheel) -> AsyncIterator[float]:
    """Run ``wheel`` for the body (bounded: 600 s of the test's clock); yields the time it
    started."""
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            await nursery.start(wheel.run)
            yield trio.current_time()
            nursery.cancel_scope.cancel()

async def test_alarms_fire_at_their_deadlines_in_time_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wheel = TimerWheel(resolution=0)
    send, receive = trio.open_memory_channel[str](10)
    seen: list[tuple[str, float]] = []
    async with running(wheel) as start:
        for name, delay in (("c", 3.0), ("a", 1.0), ("b", 2.0)):
            wheel.alarm(send, name).set(start + delay)
        for _ in range(3):
            seen.append((await receive.receive(), trio.current_time() - start))
    assert seen == [("a", 1.0), ("b", 2.0), ("c", 3.0)]
    assert wheel.fired == 3


async def test_setting_again_replaces_the_deadline_both_ways(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wheel = TimerWheel(resolution=0)
    send, receive = trio.open_memory_channel[str](10)
    async with running(wheel) as start:
        later = wheel.alarm(send, "later")
        later.set(start + 5)
        later.set(start + 8)  # moved later: nothing at 5
        sooner = wheel.alarm(send, "sooner")
        sooner.set(start + 10)
        await trio.testing.wait_all_tasks_blocked()
        sooner.set(start + 2)  # moved earlier while the wheel sleeps towards 8: it wakes at 2
        assert await receive.receive() == "sooner"
        assert trio.current_time() - start == 2
        assert await receive.receive() == "later"
        assert trio.current_time() - start == 8
        await trio.sleep(5)  # the replaced entries at 5 and 10 fire nothing
        assert drain(receive) == []
    assert wheel.fired == 2
    assert len(wheel) == 0


async def test_an_alarm_moved_later_keeps_one_heap_entry_and_fires_once_at_the_last(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A charger's deadline moves later at every step: the alarm keeps its one heap entry (the
    wheel moves it on when it comes up) rather than a push per move; earlier moves still win,
    and a move back later after one fires at the latest deadline set, once."""
    wheel = TimerWheel(resolution=0)
    send, receive = trio.open_memory_channel[str](10)
    async with running(wheel) as start:
        alarm = wheel.alarm(send, "a")
        for step in range(1, 101):
            alarm.set(start + 1 + step / 100)  # 1.01 ... 2.00
        assert len(wheel) == 1
        await trio.sleep(1.5)  # the entry came up at 1.01 and moved on to 2.00
        assert drain(receive) == []
        assert len(wheel) == 1
        alarm.set(start + 1.7)  # earlier than the live entry: pushed
        alarm.set(start + 3.0)  # later again: the entry at 1.7 moves on to 3.0 when it comes up
        assert await receive.receive() == "a"
        assert trio.current_time() - start == 3.0
        await trio.sleep(2)
        assert drain(receive) == []
    assert wheel.fired == 1
    assert len(wheel) == 0


async def test_a_cancelled_or_infinite_alarm_never_fires(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wheel = TimerWheel(resolution=0)
    send, receive = trio.open_memory_channel[str](10)
    async with running(wheel) as start:
        cancelled = wheel.alarm(send, "cancelled")
        cancelled.set(start + 1)
        cancelled.cancel()
        never = wheel.alarm(send, "never")
        never.set(start + 1)
        never.set(math.inf)
        assert never.when is None
        await trio.sleep(10)
    assert drain(receive) == [] and wheel.fired == 0


async def test_a_full_or_closed_channel_is_left_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wheel = TimerWheel(resolution=0)
    full_send, full_receive = trio.open_memory_channel[str](1)
    full_send.send_nowait("already there")
    closed_send, closed_receive = trio.open_memory_channel[str](1)
    await closed_receive.aclose()
    async with running(wheel) as start:
        wheel.alarm(full_send, "dropped").set(start + 1)
        wheel.alarm(closed_send, "nobody").set(start + 1)
        await trio.sleep(2)
    assert drain(full_receive) == ["already there"]  # the owner wakes for that one anyway
    assert wheel.fired == 2


async def test_many_alarms_due_together_cost_one_wake_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wheel = TimerWheel(resolution=0)
    send, receive = trio.open_memory_channel[str](1000)
    async with running(wheel) as start:
        for n in range(500):
            wheel.alarm(send, f"a{n}").set(start + 1)
        await trio.sleep(1.5)
    assert drain(receive) == [f"a{n}" for n in range(500)]  # ties fire in the order set
    assert (wheel.fired, wheel.wakeups) == (500, 1)


async def test_alarms_fire_on_the_grid_never_before_their_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wheel = TimerWheel(resolution=0.005)
    send, receive = trio.open_memory_channel[str](100)
    fired_at: dict[str, float] = {}
    deadlines = {f"a{n}": 100.0 + n * 0.0013 for n in range(12)}  # spread over 15 ms
    async with running(wheel):
        for name, when in deadlines.items():
            wheel.alarm(send, name).set(when)
        for _ in deadlines:
            name = await receive.receive()
            fired_at[name] = trio.current_time()
    for name, when in deadlines.items():
        assert when <= fired_at[name] < when + 0.005 + 1e-9
        assert round(fired_at[name] / 0.005, 6) % 1 == 0  # on a grid point
    assert wheel.wakeups <= 4  # 100.005, 100.010, 100.015 (and 100.000 for the first)


def test_a_negative_resolution_is_refused() -> None:
    with pytest.raises(ValueError, match="resolution"):
        TimerWheel(resolution=-1)


async def test_an_inline_hook_does_the_work_or_falls_back_to_the_item(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wheel = TimerWheel(resolution=0)
    send, receive = trio.open_memory_channel[str](10)
    calls: list[tuple[str, float]] = []

    def hook(name: str, handled: bool) -> Callable[[float], bool]:
        def inline(now: float) -> bool:
            calls.append((name, now - start))
            return handled
        return inline

    async with running(wheel) as start:
        done = wheel.alarm(send, "done", hook("done", True))
        done.set(start + 1)
        wheel.alarm(send, "woken", hook("woken", False)).set(start + 2)
        await trio.sleep(3)
        assert calls == [("done", 1.0), ("woken", 2.0)]  # each with the wheel's time, once
        assert drain(receive) == ["woken"]  # the hook that did the work sent nothing
        done.set(trio.current_time() + 1)  # a hook may set its alarm again; it fires again
        await trio.sleep(2)
    assert calls[-1] == ("done", 4.0)
    assert wheel.fired == 3


async def test_an_alarm_back_in_the_bucket_of_its_superseded_entry_fires_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Entries live in one bucket per grid point: an alarm moved earlier leaves a superseded
    entry behind. Once it has fired and is back in that same bucket, it fires once there, and
    an owner that sets it again as it fires (as a charger does) leaves one live entry, not one
    per entry it had."""
    wheel = TimerWheel(resolution=0.005)
    send, receive = trio.open_memory_channel[str](10)
    fired: list[float] = []

    def rearm(now: float) -> bool:
        fired.append(round(now - start, 6))
        if len(fired) == 1:
            first.set(start + 1.0003)  # back in the bucket at 1.005
        elif len(fired) == 2:
            first.set(now + 1.0003)  # the next deadline, as a charger's step sets it: 2.01
        return True

    async with running(wheel) as start:
        first = wheel.alarm(send, "first", rearm)
        first.set(start + 1.0001)  # the bucket at 1.005
        first.set(start + 0.5001)  # earlier: the bucket at 0.505; the entry at 1.005 stays
        later = wheel.alarm(send, "later")
        later.set(start + 1.0012)  # the bucket at 1.005 too, after first's superseded entry
        await trio.sleep(0.6)
        assert fired == [0.505]
        assert len(wheel) == 3  # first's live and superseded entries, later's
        await trio.sleep(0.5)
        assert fired == [0.505, 1.005]  # once, though first had two entries at 1.005
        assert drain(receive) == ["later"]
        assert len(wheel) == 1  # first's live entry at 2.01, nothing else
        await trio.sleep(2)
    assert fired == [0.505, 1.005, 2.01]
    assert wheel.fired == 4
    assert len(wheel) == 0


async def test_sleep_until_wakes_on_the_grid_and_a_cancel_ends_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wheel = TimerWheel(resolution=0.005)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, delay: float) -> None:
        await wheel.sleep_until(trio.current_time() + delay)
        woke.append((name, round(trio.current_time() - start, 6)))

    async with running(wheel) as start:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sleeper, "b", 2.0001)
            nursery.start_soon(sleeper, "a", 1.0021)
            nursery.start_soon(sleeper, "past", -5.0)  # due already: wakes at once
            with trio.move_on_after(1.5) as cancelled:
                await wheel.sleep_until(trio.current_time() + 3.0)
        assert cancelled.cancelled_caught
        assert round(trio.current_time() - start, 6) == 2.005
        await trio.sleep(5)  # the cancelled sleep's alarm fires nothing later
    assert woke == [("past", 0.0), ("a", 1.005), ("b", 2.005)]
    assert wheel.fired == 2  # (a deadline passed already is a checkpoint, no alarm)
    with trio.CancelScope() as scope:
        scope.cancel()
        await wheel.sleep_until(math.inf)  # a checkpoint: a cancelled caller does not sleep
        pytest.fail("slept through a cancellation")
    assert scope.cancelled_caught and len(wheel) == 0


async def test_an_alarm_moved_later_within_its_grid_step_keeps_its_one_entry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wheel = TimerWheel(resolution=0.005)
    send, receive = trio.open_memory_channel[str](10)
    async with running(wheel) as start:
        alarm = wheel.alarm(send, "x")
        for k in range(100):  # later each time, all within the grid step that ends at 1.005
            alarm.set(start + 1.0001 + k * 0.00003)
        alarm.set(start + 1.0)  # earlier, still the same grid point
        assert len(wheel) == 1
        assert await receive.receive() == "x"
        assert round(trio.current_time() - start, 6) == 1.005
    assert wheel.fired == 1


async def test_infinite_and_nan_deadlines(autojump_clock: trio.testing.MockClock) -> None:
    """-inf is "at once" (as for trio.sleep_until), +inf "never"; a NaN is refused in the caller
    and never reaches the wheel, whose task serves every charger."""
    for resolution in (0.0, 0.005):
        wheel = TimerWheel(resolution=resolution)
        send, receive = trio.open_memory_channel[str](10)
        async with running(wheel) as start:
            wheel.alarm(send, "never").set(math.inf)
            wheel.alarm(send, "now").set(-math.inf)
            assert await receive.receive() == "now"
            assert trio.current_time() == start
            await wheel.sleep_until(-math.inf)
            with pytest.raises(ValueError, match="NaN"):
                wheel.alarm(send, "nan").set(math.nan)
            with pytest.raises(ValueError, match="NaN"):
                await wheel.sleep_until(math.nan)
            wheel.alarm(send, "later").set(start + 1)
            assert await receive.receive() == "later"  # the wheel lives on
            await trio.sleep(10)
            assert drain(receive) == []
