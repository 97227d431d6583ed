"""One task that wakes every charger at its deadline.

A charger's main loop waits on its inbox until the machine's next deadline. With a cancel scope of
its own for that wait (``trio.move_on_at``), every park registers a deadline with trio and every
timeout unwinds a ``Cancelled`` through the charger's stack: about 15 µs a wake-up, and at 10,000
chargers sampling meters every second the fleet's largest single cost after the sockets.

Here the chargers register an :class:`Alarm` instead and wait on their inbox with no scope at all.
The :class:`TimerWheel` task keeps the alarms in buckets, one per instant it wakes at, and sleeps
until the earliest; when it wakes it fires every alarm that is due, by putting a tick item in
the owner's inbox (``send_nowait``: a full inbox wakes its owner anyway), unless the alarm's
``inline`` hook does the owner's work there and then, in the wheel's task (a charger waiting idle
is stepped so, without a wake-up of its own). One cancel scope, one timeout per batch of due
alarms, however many chargers.

An alarm has one deadline at a time: setting it again replaces it, so a charger whose deadline
moves never gets a stale wake-up. A charger's deadline moves at every step, mostly later (the
next sample once this one is taken): an alarm moved later keeps its entry, which the wheel moves
on to the new deadline when it comes up, instead of an entry per move and stale ones skipped
later (a third of the wheel's CPU at 1,000 chargers). Only a move earlier makes an entry; the one
it supersedes is skipped when it comes up.

The wheel wakes on a grid of :data:`DEFAULT_RESOLUTION` seconds: an alarm fires at the first
grid point at or after its deadline, never before it. Thousands of chargers sampling meters every
second then share a wake-up per grid step instead of one each (the wake-up itself is a timeout,
the cost this module exists to pay less often); a charger's timer is late by at most 5 ms, less
than a real charger's own timer granularity. An entry is a list append in its grid point's
bucket, and only the buckets' times are kept in order (a heap of floats): at 10,000 chargers a
heap of every alarm, ordered by (time, sequence) tuples, cost 3% of the fleet's CPU in its pops
alone. Alarms of one bucket fire in the order of their entries; with ``resolution=0``
every deadline is a bucket of its own, so they fire in time order.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any, Final

import trio

DEFAULT_RESOLUTION: Final = 0.005
"""Seconds between the instants the wheel may wake at (0: wake at each deadline exactly)."""


class Alarm:
    """One waiter's deadline on a :class:`TimerWheel`: when it is due the wheel puts ``item`` into
    ``channel`` (without waiting; a full or closed channel is left alone).

    ``inline``, if given, is called first, in the wheel's task, with the wheel's current time:
    True means the waiter has done its work there and then (no item is sent, no task is woken).
    It must not block and must not raise: what it raises ends the wheel, and with it the run.
    """

    __slots__ = ("_channel", "_inline", "_item", "_queued", "_wheel", "when")

    def __init__(self, wheel: TimerWheel, channel: trio.MemorySendChannel[Any] | None,
                 item: object, inline: Callable[[float], bool] | None = None) -> None:
        self._wheel = wheel
        self._channel = channel
        self._item = item
        self._inline = inline
        self.when: float | None = None
        """The pending deadline (trio clock seconds), None when none is pending."""
        self._queued: float | None = None
        """The wake-up time of this alarm's live entry (at or before ``when``; it comes up
        then), None when it has none; other entries of this alarm are superseded."""

    def set(self, when: float) -> None:
        """Fire at ``when`` (``math.inf``: never; ``-math.inf``: at once), replacing the
        pending deadline. Raises ``ValueError`` for NaN (in the caller, not in the wheel)."""
        if when == self.when:
            return
        if when == math.inf:
            self.when = None
            return
        if when != when:  # NaN
            raise ValueError("an alarm's deadline must not be NaN")
        self.when = when
        queued = self._queued
        if queued is not None and (queued <= when or queued <= self._wheel._wake_at(when)):
            return  # the live entry comes up first (or at the same grid point): it is moved
        self._wheel._schedule(when, self)  # on to ``when`` then, if need be

    def cancel(self) -> None:
        """Drop the pending deadline."""
        self.when = None

    def _fire(self, now: float) -> None:
        self.when = None
        inline = self._inline
        if inline is not None and inline(now):
            return
        if self._channel is None:
            return
        try:  # noqa: SIM105 (the hot path: no context manager per fired alarm)
            self._channel.send_nowait(self._item)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # a full inbox wakes its owner anyway; a closed one has no owner left


class TimerWheel:
    """The alarms of many waiters, fired by one task (:meth:`run`); see the module docstring.

    Used from one Trio run; not thread-safe."""

    def __init__(self, resolution: float = DEFAULT_RESOLUTION) -> None:
        if not resolution >= 0:
            raise ValueError(f"resolution must be >= 0 seconds, got {resolution!r}")
        self.resolution = resolution
        self._buckets: dict[float, list[Alarm]] = {}
        """The alarms' entries by the time the wheel wakes for them (a grid point), each list in
        the order the entries were made."""
        self._times: list[float] = []  # a heap of the buckets' times, one entry each
        self._scope: trio.CancelScope | None = None
        self.fired = 0
        """Alarms fired so far."""
        self.wakeups = 0
        """Times the wheel's task woke up to fire alarms."""

    def alarm(self, channel: trio.MemorySendChannel[Any], item: object,
              inline: Callable[[float], bool] | None = None) -> Alarm:
        """A new alarm that puts ``item`` into ``channel`` when due (unless ``inline`` does the
        work: see :class:`Alarm`)."""
        return Alarm(self, channel, item, inline)

    async def sleep_until(self, when: float) -> None:
        """Sleep until ``when`` (trio clock seconds), woken by the wheel at the first grid point
        at or after it: like ``trio.sleep_until``, a checkpoint that a cancellation ends, but
        with no cancel scope and no ``Cancelled`` unwound at every wake-up (a task that sleeps
        often, like a connector's drivers, pays ~15 µs less each time). The wheel's task must
        be running."""
        if when != when:  # NaN, as trio.sleep_until refuses it
            raise ValueError("the deadline must not be NaN")
        if when <= trio.current_time():
            await trio.lowlevel.checkpoint()
            return
        task = trio.lowlevel.current_task()

        def wake(now: float) -> bool:
            trio.lowlevel.reschedule(task)
            return True

        alarm = Alarm(self, None, None, wake)
        alarm.set(when)

        def abort(raise_cancel: Any) -> trio.lowlevel.Abort:
            alarm.cancel()
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def __len__(self) -> int:
        """Entries, including replaced ones not yet skipped."""
        return sum(map(len, self._buckets.values()))

    def _wake_at(self, when: float) -> float:
        """The grid point the wheel wakes at for a deadline ``when``: at or after it (a
        deadline of ``-math.inf``: at once)."""
        step = self.resolution
        if step == 0 or when == -math.inf:
            return when
        return max(when, (math.floor(when / step) + 1) * step) if when % step else when

    def _schedule(self, when: float, alarm: Alarm) -> None:
        """Enter ``alarm`` for ``when``: in the bucket of that deadline's wake-up time."""
        wake_at = self._wake_at(when)
        alarm._queued = wake_at
        bucket = self._buckets.get(wake_at)
        if bucket is not None:
            bucket.append(alarm)
            return
        self._buckets[wake_at] = [alarm]
        heapq.heappush(self._times, wake_at)
        scope = self._scope
        if scope is not None and wake_at < scope.deadline:
            scope.deadline = wake_at  # the wheel sleeps until this one now

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fire alarms as they come due, until cancelled."""
        times, buckets = self._times, self._buckets
        task_status.started()
        while True:
            with trio.CancelScope(deadline=times[0] if times else math.inf) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            self.wakeups += 1
            now = trio.current_time()
            due = max(now, scope.deadline)  # at least the grid point reached
            while times and times[0] <= due:
                wake_at = heapq.heappop(times)
                for alarm in buckets.pop(wake_at):
                    if alarm._queued != wake_at:
                        continue  # superseded by an earlier entry of the same alarm
                    alarm._queued = None
                    target = alarm.when
                    if target is None:
                        continue  # cancelled
                    if target <= due:
                        self.fired += 1
                        alarm._fire(now)
                    else:  # moved later since this entry was made: on to its deadline
                        self._schedule(target, alarm)


__all__ = ["Alarm", "TimerWheel"]
