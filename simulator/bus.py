"""The event bus: fan-out of every event Struct to the ledger, the statistics and the viewers.

``EventBus.publish`` hands each event straight to every subscriber's bounded memory channel — there
is no central fan-out task, so the hot path is one channel call per subscriber. Subscribers come in
three kinds, chosen when they subscribe:

- lossless (the ledger): when its buffer is full the publisher waits. A slow disk slows the fleet
  down (backpressure); it never loses an event.
- lossy (progress line, API viewers): ``send_nowait`` — when its buffer is full the event is
  dropped for that subscriber alone and counted in :meth:`EventBus.statistics`. A lossy
  subscriber may name the ``kinds`` it wants (event classes or their ``kind`` tags): the others
  are never put into its channel, so they cost it nothing and are never counted as dropped.
- observers (the live counters): a plain function called with each event inside ``publish``. It
  must be cheap and must not raise; it costs no channel and no task switch, which matters when
  every frame of ten thousand chargers passes through here.

The kinds filter costs the hot path one dictionary look-up by the event's class (the lossy
subscribers that want this class: the unfiltered ones plus the filtered ones that named it; the
unfiltered ones alone for a class no filter names), the same for every subscriber with or without
filters; nothing per filtered subscriber.

``publish`` is the fleet's hottest await, so it only yields to the scheduler when it must: when a
lossless buffer is full (the publisher waits for room) or when the calling task has been cancelled.
Every publisher also awaits I/O in the same loop (its transport, its inbox), so no task can starve
the others by publishing.

Control events (:meth:`EventBus.publish_control`) go to the lossless subscribers alone: the ledger
writer's instructions (such as an outbox snapshot) that are not facts for viewers or counters.

The bus owns every send side and closes them all in :meth:`EventBus.aclose`; a subscriber owns its
receive side and sees end-of-channel once it has drained what was buffered. A subscriber that
closes its receive side has left: it is unsubscribed on the next publish.

:class:`Counters` (an observer: ``bus.observe(counters.observe)``, as the runtime does; or fed
from a lossy subscription by the :func:`run_statistics` actor) turns the event stream into the live
numbers of the progress view: chargers connected and in a transaction, messages per second,
CALLERRORs, timeouts, reconnects and crashes, as a frozen :class:`LiveStatistics` snapshot.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Iterable
from typing import Final

import msgspec
import trio

from simulator.events import (
    CallTimedOut,
    Connected,
    ConnectFailed,
    Crashed,
    Disconnected,
    Event,
    FrameIn,
    FrameOut,
    TransactionStarted,
    TransactionStopped,
)

CALL_ERROR: Final = 4
"""OCPP-J message type of a CALLERROR (``frame_in`` / ``frame_out`` ``message_type``)."""

DEFAULT_RATE_WINDOW: Final = 5.0
"""Seconds over which :class:`Counters` averages messages per second."""


class SubscriberStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """One subscriber's counters: ``delivered`` events put into its channel, ``dropped`` events it
    missed because its buffer was full (always 0 for a lossless subscriber), ``buffered`` events
    waiting in its channel now, and whether it is still subscribed (``open``: false once it has
    closed its receive side, or the bus has closed)."""

    name: str
    lossless: bool
    buffer: int
    delivered: int
    dropped: int
    buffered: int
    open: bool


class BusStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of the bus: events ``published`` so far and each subscriber's counters (in
    subscription order, including those that have left)."""

    published: int
    subscribers: tuple[SubscriberStatistics, ...]

    @property
    def dropped(self) -> int:
        """Events dropped over all lossy subscribers."""
        return sum(s.dropped for s in self.subscribers)


class _Subscriber:
    """Mutable bookkeeping for one subscriber (private to the bus)."""

    __slots__ = ("buffer", "delivered", "dropped", "kinds", "lossless", "name", "open", "send")

    def __init__(
        self, name: str, lossless: bool, buffer: int, send: trio.MemorySendChannel[Event],
        kinds: frozenset[type[Event]] | None = None,
    ) -> None:
        self.name = name
        self.kinds = kinds
        self.lossless = lossless
        self.buffer = buffer
        self.send = send
        self.delivered = 0
        self.dropped = 0
        self.open = True

    def snapshot(self) -> SubscriberStatistics:
        # A subscriber that closed its receive side has left, though the bus only unsubscribes
        # it on the next publish.
        channel = self.send.statistics() if self.open else None
        return SubscriberStatistics(
            name=self.name,
            lossless=self.lossless,
            buffer=self.buffer,
            delivered=self.delivered,
            dropped=self.dropped,
            buffered=channel.current_buffer_used if channel is not None else 0,
            open=channel is not None and channel.open_receive_channels > 0,
        )


class EventBus:
    """Fan-out of events to bounded per-subscriber channels (see the module docstring).

    Subscribe before the publishers start: a subscriber sees only events published after it
    subscribed. The bus is used from one Trio run; it is not thread-safe.
    """

    def __init__(self) -> None:
        # Tuples, rebuilt on (un)subscribe: publish iterates them while a subscriber may leave
        # (or, during a lossless wait, another task may subscribe).
        self._lossless: tuple[_Subscriber, ...] = ()
        self._lossy: tuple[_Subscriber, ...] = ()
        self._lossy_everything: tuple[_Subscriber, ...] = ()
        """The lossy subscribers without a kinds filter."""
        self._lossy_by_kind: dict[type[Event], tuple[_Subscriber, ...]] = {}
        """For each class some filtered lossy subscriber wants: the lossy subscribers that get
        it (empty while no subscriber filters)."""
        self._by_receive: dict[trio.MemoryReceiveChannel[Event], _Subscriber] = {}
        self._observers: tuple[Callable[[Event], object], ...] = ()
        self._all: list[_Subscriber] = []
        self._published = 0
        self._closed = False

    def subscribe(
        self, *, lossless: bool, buffer: int, name: str,
        kinds: Iterable[type[Event] | str] | None = None,
    ) -> trio.MemoryReceiveChannel[Event]:
        """Add a subscriber and return its receive channel (the caller owns and closes it).

        ``buffer`` is the channel's capacity in events (> 0). Lossless: publishers wait while it is
        full. Lossy: events that find it full are dropped for this subscriber and counted.
        ``kinds`` (lossy only; None: every kind) names the events it wants, as event classes
        (and their subclasses) or ``kind`` tags; it gets no other.
        Raises ``trio.ClosedResourceError`` after :meth:`aclose`, ``ValueError`` on a bad buffer,
        an unknown or empty ``kinds``, or ``kinds`` for a lossless subscriber (the ledger keeps
        everything).
        """
        if self._closed:
            raise trio.ClosedResourceError("the event bus is closed")
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer <= 0:
            raise ValueError(f"buffer must be a positive number of events, got {buffer!r}")
        wanted = None if kinds is None else event_classes(kinds)
        if wanted is not None and lossless:
            raise ValueError("a lossless subscriber gets every kind: it takes no kinds filter")
        send, receive = trio.open_memory_channel[Event](buffer)
        subscriber = _Subscriber(name, lossless, buffer, send, wanted)
        if lossless:
            self._lossless = (*self._lossless, subscriber)
        else:
            self._lossy = (*self._lossy, subscriber)
            self._route_lossy()
        self._all.append(subscriber)
        self._by_receive[receive] = subscriber
        return receive

    def subscribe_lossless(
        self, buffer: int, name: str = "ledger"
    ) -> trio.MemoryReceiveChannel[Event]:
        """:meth:`subscribe` with ``lossless=True``: publishers block while its buffer is full."""
        return self.subscribe(lossless=True, buffer=buffer, name=name)

    def subscribe_lossy(
        self, buffer: int, name: str, kinds: Iterable[type[Event] | str] | None = None
    ) -> trio.MemoryReceiveChannel[Event]:
        """:meth:`subscribe` with ``lossless=False``: drop and count when its buffer is full;
        only the ``kinds`` named (default: all) are put into its channel."""
        return self.subscribe(lossless=False, buffer=buffer, name=name, kinds=kinds)

    def subscriber_statistics(
        self, receive: trio.MemoryReceiveChannel[Event]
    ) -> SubscriberStatistics:
        """The counters of the subscriber whose receive channel is ``receive`` (a viewer reads
        its own ``dropped`` without a snapshot of the whole bus). ``KeyError`` if it is not
        one of this bus's."""
        return self._by_receive[receive].snapshot()

    def _route_lossy(self) -> None:
        """Rebuild the by-class delivery table after the lossy subscribers changed."""
        filtered = [s for s in self._lossy if s.kinds is not None]
        everything = tuple(s for s in self._lossy if s.kinds is None)
        classes = {cls for s in filtered for cls in s.kinds or ()}
        self._lossy_everything = everything
        self._lossy_by_kind = {
            cls: tuple(s for s in self._lossy if s.kinds is None or cls in s.kinds)
            for cls in classes
        }

    def observe(self, observer: Callable[[Event], object]) -> None:
        """Call ``observer(event)`` inside every later :meth:`publish`, before the channels.

        For cheap in-process accounting (:class:`Counters`): it runs in the publisher's task, so
        it must not block and must not raise."""
        if self._closed:
            raise trio.ClosedResourceError("the event bus is closed")
        self._observers = (*self._observers, observer)

    async def publish(self, event: Event) -> None:
        """Deliver ``event`` to every observer and subscriber.

        Observers are called first; then lossy subscribers get it, without waiting; then each
        lossless subscriber in turn, waiting while its buffer is full. Events from one publisher
        reach each subscriber in publication order. Yields to the scheduler only when it waits,
        or when the task is already cancelled (it then raises ``trio.Cancelled`` and delivers
        nothing); cancelled while waiting, the event may have reached some subscribers and not
        others. Raises ``trio.ClosedResourceError`` after
        :meth:`aclose` (also when the bus is closed while this call waits).
        """
        if self._closed:
            raise trio.ClosedResourceError("the event bus is closed")
        await trio.lowlevel.checkpoint_if_cancelled()  # a cancelled publisher delivers nothing
        self._deliver_observed(event)
        await self._deliver_lossless(event)

    def _deliver_observed(self, event: Event) -> None:
        """Count ``event`` and hand it to the observers and the lossy subscribers (which drop
        it when full): the part of a publish that never waits."""
        self._published += 1
        for observer in self._observers:
            observer(event)
        for subscriber in self._lossy_by_kind.get(type(event), self._lossy_everything):
            try:
                subscriber.send.send_nowait(event)
            except trio.WouldBlock:
                subscriber.dropped += 1
            except trio.BrokenResourceError:
                self._leave(subscriber)
            else:
                subscriber.delivered += 1

    async def publish_control(self, event: Event) -> None:
        """Deliver a control event to the lossless subscribers only (see the module docstring);
        waits, yields and raises as :meth:`publish` does. Not counted in ``published``."""
        if self._closed:
            raise trio.ClosedResourceError("the event bus is closed")
        await trio.lowlevel.checkpoint_if_cancelled()
        await self._deliver_lossless(event)

    async def _deliver_lossless(self, event: Event) -> None:
        for subscriber in self._lossless:
            try:
                try:
                    subscriber.send.send_nowait(event)
                except trio.WouldBlock:
                    await subscriber.send.send(event)  # full: wait for room (backpressure)
            except trio.BrokenResourceError:
                self._leave(subscriber)
            else:
                subscriber.delivered += 1

    def _leave(self, subscriber: _Subscriber) -> None:
        """Unsubscribe one whose receive side was closed."""
        subscriber.open = False
        subscriber.send.close()
        if subscriber.lossless:
            self._lossless = tuple(s for s in self._lossless if s is not subscriber)
        else:
            self._lossy = tuple(s for s in self._lossy if s is not subscriber)
            self._route_lossy()

    async def aclose(self) -> None:
        """Close every send side: each subscriber drains what is buffered, then sees
        ``trio.EndOfChannel``. Publishers still waiting get ``trio.ClosedResourceError``.
        Idempotent."""
        self._closed = True
        for subscriber in self._all:
            if subscriber.open:
                subscriber.open = False
                subscriber.send.close()
        self._lossless = ()
        self._lossy = ()
        self._route_lossy()
        self._observers = ()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> BusStatistics:
        """A frozen snapshot of the bus counters."""
        return BusStatistics(
            published=self._published,
            subscribers=tuple(s.snapshot() for s in self._all),
        )


def event_kinds() -> dict[str, type[Event]]:
    """Every event class by its ``kind`` tag (the classes defined so far)."""
    kinds: dict[str, type[Event]] = {}
    pending: list[type[Event]] = [Event]
    while pending:
        cls = pending.pop()
        tag = cls.__struct_config__.tag
        if isinstance(tag, str) and cls is not Event:  # (the base class is no kind)
            kinds[tag] = cls
        pending.extend(cls.__subclasses__())
    return kinds


def event_classes(kinds: Iterable[type[Event] | str]) -> frozenset[type[Event]]:
    """The event classes ``kinds`` names: classes (with their subclasses) or ``kind`` tags.
    ``ValueError`` on an unknown tag, a class that is no event, or nothing named."""
    known = event_kinds()
    classes: set[type[Event]] = set()
    for kind in kinds:
        if isinstance(kind, str):
            if kind not in known:
                raise ValueError(f"no event kind {kind!r} (kinds: {', '.join(sorted(known))})")
            classes.add(known[kind])
        elif isinstance(kind, type) and issubclass(kind, Event):
            classes.update(cls for cls in known.values() if issubclass(cls, kind))
            classes.add(kind)
        else:
            raise ValueError(f"not an event kind: {kind!r}")
    if not classes:
        raise ValueError("kinds names no event kind (None means every kind)")
    return frozenset(classes)


# --- live counters ------------------------------------------------------------------------------


class LiveStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """What the live view shows, as of ``t`` (monotonic seconds).

    ``messages_in_per_s`` / ``messages_out_per_s`` average frames over the last rate window.
    ``call_errors_received`` / ``call_errors_sent`` count CALLERROR frames in / out.
    ``reconnects`` counts ``connected`` events of chargers that had connected before.
    """

    t: float
    events: int
    chargers_connected: int
    chargers_in_transaction: int
    transactions_open: int
    frames_in: int
    frames_out: int
    messages_in_per_s: float
    messages_out_per_s: float
    call_errors_received: int
    call_errors_sent: int
    timeouts: int
    connects: int
    reconnects: int
    connect_failures: int
    crashes: int


class _RateMeter:
    """Counts per whole second of event time, summed over a trailing window."""

    __slots__ = ("_buckets", "_window")

    def __init__(self, window: float) -> None:
        self._window = window
        self._buckets: collections.deque[list[int]] = collections.deque()

    def add(self, t: float) -> None:
        second = math.floor(t)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += 1
        else:
            self._buckets.append([second, 1])
            self._prune(second)

    def _prune(self, now: float) -> None:
        horizon = math.floor(now) - math.ceil(self._window)
        while self._buckets and self._buckets[0][0] < horizon:
            self._buckets.popleft()

    def rate(self, now: float) -> float:
        """Events per second over the ``window`` whole seconds before the second of ``now``."""
        self._prune(now)
        current = math.floor(now)
        start = current - math.ceil(self._window)
        total = sum(n for second, n in self._buckets if start <= second < current)
        return total / math.ceil(self._window)


class Counters:
    """Live counters fed one event at a time (:meth:`observe`), read with :meth:`snapshot`.

    A charger counts as connected between its ``connected`` and its next ``disconnected`` or
    charger-level ``crash`` (its transport dies with it). A transaction is open between
    ``tx_started`` and the ``tx_stopped`` with the same ``(charger, local_id)``. Rates use the
    events' own ``t``, so they are exact under a mock clock. Unknown kinds only count in
    ``events``.
    """

    def __init__(self, *, rate_window: float = DEFAULT_RATE_WINDOW) -> None:
        if rate_window <= 0:
            raise ValueError(f"rate_window must be positive seconds, got {rate_window!r}")
        self._events = 0
        self._last_t = 0.0
        self._connected: set[str] = set()
        self._ever_connected: set[str] = set()
        self._open_tx: dict[tuple[str | None, int], str | None] = {}
        self._frames_in = 0
        self._frames_out = 0
        self._rate_in = _RateMeter(rate_window)
        self._rate_out = _RateMeter(rate_window)
        self._errors_received = 0
        self._errors_sent = 0
        self._timeouts = 0
        self._connects = 0
        self._reconnects = 0
        self._connect_failures = 0
        self._crashes = 0

    def observe(self, event: Event) -> None:
        """Account for one event."""
        self._events += 1
        self._last_t = max(self._last_t, event.t)
        match event:
            case FrameIn():
                self._frames_in += 1
                self._rate_in.add(event.t)
                if event.message_type == CALL_ERROR:
                    self._errors_received += 1
            case FrameOut():
                self._frames_out += 1
                self._rate_out.add(event.t)
                if event.message_type == CALL_ERROR:
                    self._errors_sent += 1
            case CallTimedOut():
                self._timeouts += 1
            case Connected(charger=charger):
                self._connects += 1
                if charger is not None:
                    if charger in self._ever_connected:
                        self._reconnects += 1
                    self._ever_connected.add(charger)
                    self._connected.add(charger)
            case Disconnected(charger=charger) if charger is not None:
                self._connected.discard(charger)
            case ConnectFailed():
                self._connect_failures += 1
            case Crashed(charger=charger, connector=connector):
                self._crashes += 1
                if charger is not None and connector is None:
                    self._connected.discard(charger)
            case TransactionStarted(charger=charger, local_id=local_id):
                self._open_tx[(charger, local_id)] = charger
            case TransactionStopped(charger=charger, local_id=local_id):
                self._open_tx.pop((charger, local_id), None)
            case _:
                pass

    def snapshot(self, now: float | None = None) -> LiveStatistics:
        """The counters as of ``now`` (default: the latest event time seen)."""
        at = self._last_t if now is None else now
        return LiveStatistics(
            t=at,
            events=self._events,
            chargers_connected=len(self._connected),
            chargers_in_transaction=len(set(self._open_tx.values())),
            transactions_open=len(self._open_tx),
            frames_in=self._frames_in,
            frames_out=self._frames_out,
            messages_in_per_s=self._rate_in.rate(at),
            messages_out_per_s=self._rate_out.rate(at),
            call_errors_received=self._errors_received,
            call_errors_sent=self._errors_sent,
            timeouts=self._timeouts,
            connects=self._connects,
            reconnects=self._reconnects,
            connect_failures=self._connect_failures,
            crashes=self._crashes,
        )


async def run_statistics(
    receive: trio.MemoryReceiveChannel[Event],
    counters: Counters,
    *,
    task_status: trio.TaskStatus[Counters] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Feed every event from ``receive`` (normally a lossy subscription) into ``counters``.

    Reports ``counters`` through ``task_status.started``; readers call ``counters.snapshot()``.
    Owns and closes ``receive``; returns at end-of-channel (after :meth:`EventBus.aclose`).
    Cancellation simply stops it.
    """
    async with receive:
        task_status.started(counters)
        async for event in receive:
            counters.observe(event)
