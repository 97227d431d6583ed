"""The charger actor: one virtual charge point, its connectors and its link to the CSMS.

The actor owns a :class:`~simulator.machines.charger.ChargerMachine` and does only what the
machine asks: it feeds it inputs (frames, connection changes, domain requests from the connector
actors, the passing of time) and applies the effects it returns (send, publish, close, reboot,
persist the outbox). All decisions are the machine's.

Tasks, all in the actor's own nursery:

- the main loop (this module's :func:`run_charger`): it waits on the inbox until the machine's
  next deadline, through an alarm on the fleet's timer wheel (``simulator.actors.timers``; a
  charger run on its own runs a wheel of its own), and steps the machine with what comes. A
  deadline that finds the main loop waiting on an empty inbox is stepped by the wheel's task
  itself (most exchanges start with a timer: meter samples, heartbeats): that spares the main
  loop a wake-up; what the step raises is raised by the main loop, as its own crash;
- the link (:func:`_run_link`): connects, reads frames, reconnects with exponential backoff and
  full jitter drawn from the charger's seeded RNG. A frame that finds the main loop waiting on
  an empty inbox is stepped into the machine by the link itself (one task switch less per frame,
  about 10% of a fleet's CPU); any other goes through the inbox, so that frames and the other
  inputs keep their order. One step at a time, under a lock: a step is the input, the tick and
  applying every effect; a drop the link asks for in its own step happens after it. Effects are
  applied without a coroutine (``Transport.send_nowait``, ``publish_nowait``) for as long as
  none has to wait; the rest of a step is finished with awaits, by the link for its own step,
  by the main loop for the wheel's, the lock held until then;
- one connector actor per connector with automatic sessions (``simulator.actors.connector``).

The inbox is one bounded channel (:data:`INBOX_SIZE`): when the main loop falls behind, the link
stops reading the socket and the connectors wait (backpressure, nothing dropped).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Final, cast

import trio

from simulator import seeds
from simulator.actors.connector import run_connector
from simulator.actors.timers import TimerWheel
from simulator.actors.transport import (
    NOT_SENT,
    STARTED,
    ConnectError,
    Transport,
    TransportClosed,
)
from simulator.events import Connected, ConnectFailed, Disconnected, Event, FrameOut
from simulator.machines.charger import ChargerMachine, ChargerSpec
from simulator.machines.domain import DomainRequest, PlugIn, PresentTag, StopCharging, Unplug
from simulator.machines.effects import (
    CloseConnection,
    Effect,
    OutboxEntry,
    PersistOutbox,
    Publish,
    Reboot,
    Send,
)
from simulator.machines.workload import SessionPlan

MIN_TICK: Final = 0.001
"""Seconds: the main loop never wakes again sooner than this after it woke."""
MAX_BURST: Final = 16
"""Inbox items taken without waiting before the main loop waits (and so yields) once."""
URGENT_RETRY: Final = 0.5
"""Seconds between connection attempts during the end-of-run grace period."""
INBOX_SIZE: Final = 64
"""Frames and domain requests waiting for the main loop; senders block when it is full."""
OUTBOX_PERSIST_INTERVAL: Final = 0.2
"""Seconds a message added to an outbox whose stored snapshot is empty may wait before the
snapshot goes to the ledger. Online with a prompt CSMS a message is queued and acknowledged
within milliseconds (a MeterValues every second, per connector): it is then never stored at all,
where it cost two snapshots before. The ledger itself writes in batches at this pace
(``storage.DEFAULT_FLUSH_INTERVAL``); a message added within the last interval before a kill -9
is lost to ``--resume``, like the events of the writer's last batch. Once the stored snapshot
holds messages, every change is stored at once, so a message delivered is not sent again by
``--resume``. A graceful end, a crash and a cancelled fleet store what is left (the charger on
its way out, its restart, and :func:`simulator.runtime.run_simulation` at the end)."""

TransportOpener = Callable[[str], AbstractAsyncContextManager[Transport]]
"""Opens a transport for a charger identity (raises ``ConnectError``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: full jitter, ``uniform(0, min(cap, base * 2**attempt))`` seconds."""

    base: float = 1.0
    cap: float = 30.0

    def delay(self, attempt: int, rng_uniform: Callable[[float, float], float]) -> float:
        return rng_uniform(0.0, min(self.cap, self.base * 2.0 ** min(attempt, 30)))


@dataclasses.dataclass(frozen=True, slots=True)
class ChargerEnv:
    """Everything a charger actor takes from outside (immutable, shared by its restarts).

    ``publish`` sends an event to the bus and may block (ledger backpressure); ``publish_nowait``
    is tried first and returns False, having delivered nothing, when ``publish`` would have to
    wait (``EventBus.publish_nowait``: no coroutine per event; by default it never delivers);
    ``persist`` stores an outbox snapshot in the ledger; ``persist_nowait`` is tried first, as
    ``publish_nowait`` is (``EventBus.publish_control_nowait``; by default it never stores).
    ``wall_epoch`` is Unix time at ``trio.current_time() == 0``.
    ``timers``: the fleet's :class:`~simulator.actors.timers.TimerWheel`, whose task must run
    while the charger does; without one the charger runs a wheel of its own.
    """

    spec: ChargerSpec
    seed: int
    url: str
    open_transport: TransportOpener
    publish: Callable[[Event], Awaitable[None]]
    persist: Callable[[PersistOutbox], Awaitable[None]]
    wall_epoch: float
    sessions: SessionPlan | None = None
    backoff: Backoff = Backoff()
    timers: TimerWheel | None = None
    publish_nowait: Callable[[Event], bool] = lambda event: False
    persist_nowait: Callable[[PersistOutbox], bool] = lambda effect: False


@dataclasses.dataclass(frozen=True, slots=True)
class Shutdown:
    """Graceful end: stop transactions (reason Local), deliver the queue until ``deadline``."""

    deadline: float


@dataclasses.dataclass(frozen=True, slots=True)
class _Up:
    generation: int
    transport: Transport


@dataclasses.dataclass(frozen=True, slots=True)
class _Down:
    generation: int
    code: int | None
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Frame:
    generation: int
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Tick:
    """The timer wheel's wake-up: the machine's deadline (or the actor's own) has come."""


_TICK: Final = _Tick()


@dataclasses.dataclass(frozen=True, slots=True)
class _Flush:
    """A frame ``send_nowait`` started: its rest is to be written, then ``event`` published."""

    transport: Transport
    event: FrameOut


@dataclasses.dataclass(frozen=True, slots=True)
class _Rest:
    """A step whose effects had to wait: ``effects[index:]`` are left (then the outbox store
    that is due), for the step taken at ``now``."""

    effects: list[Effect | _Flush]
    index: int
    now: float

InboxItem = DomainRequest | Shutdown | _Up | _Down | _Frame | _Tick


class ChargerControl:
    """The fleet's handle on one charger; survives the charger's crashes and restarts.

    It owns the inbox (closed by the fleet at the end), keeps the last outbox snapshot so that a
    restarted charger resumes its undelivered transaction messages (``outbox``; ``persisted`` is
    the last one handed to the ledger), and tells when the charger has finished (``done``).
    """

    def __init__(self, outbox: tuple[OutboxEntry, ...] = ()) -> None:
        self.inbox_send, self.inbox = trio.open_memory_channel[InboxItem](INBOX_SIZE)
        self.outbox = outbox
        self.persisted = outbox
        self.done = trio.Event()
        self.connected = False
        self.restarts = 0

    @property
    def unsaved(self) -> bool:
        """Whether ``outbox`` differs from the snapshot last handed to the ledger."""
        return self.outbox is not self.persisted and self.outbox != self.persisted

    async def shutdown(self, deadline: float) -> None:
        """Ask the charger to end gracefully by ``deadline`` (no-op if it has finished)."""
        if not self.done.is_set():
            with trio.move_on_at(deadline):
                await self.inbox_send.send(Shutdown(deadline))


class _Link:
    """The connection state shared by the main loop and the link task (one thread, no locks)."""

    def __init__(self) -> None:
        self.generation = 0
        self.transport: Transport | None = None
        self.scope: trio.CancelScope | None = None
        self.hold_until = -math.inf
        self.wake = trio.Event()
        self.urgent = False
        self.task: trio.lowlevel.Task | None = None
        self.dropping = False
        self.cut = False
        """The connection's scope was cancelled (by :meth:`drop`): cheaper to test per frame
        than ``CancelScope.cancel_called``, which reads the clock."""
        self.take: Callable[[_Frame], bool | _Rest] | None = None
        """Steps a frame into the machine in the link's task if nothing is ahead of it: False
        when it did not (the frame goes through the inbox), True when it did, or what is left
        of the step, for ``finish``."""
        self.finish: Callable[[_Rest], Awaitable[None]] | None = None

    def hurry(self) -> None:
        """The run is ending: stop waiting out the backoff, retry every ``URGENT_RETRY`` s so that
        queued messages get their chance within the grace period."""
        self.urgent = True
        self.wake.set()

    async def wait_retry(self, delay: float) -> None:
        """Sleep ``delay`` seconds before the next connection attempt (less when hurried)."""
        if self.urgent:
            await trio.sleep(min(delay, URGENT_RETRY))
            return
        with trio.move_on_after(delay):
            await self.wake.wait()

    def drop(self, *, hold_until: float | None = None) -> None:
        """Close the current connection (if any); reconnect not before ``hold_until``."""
        if hold_until is not None:
            self.hold_until = hold_until
        if self.scope is not None:
            if trio.lowlevel.current_task() is self.task:
                self.dropping = True  # asked while the link steps the machine: after the step
            else:
                self.cut = True
                self.scope.cancel()


async def _run_link(
    env: ChargerEnv,
    link: _Link,
    inbox: trio.MemorySendChannel[InboxItem],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep the charger connected: connect, read frames into ``inbox``, reconnect with backoff."""
    identity = env.spec.identity
    rng: seeds.Stream | None = None  # made on first use

    def uniform(low: float, high: float) -> float:
        nonlocal rng
        if rng is None:
            rng = seeds.derive(env.seed, identity, "reconnect")
        return rng.uniform(low, high)

    attempt = 0
    link.task = trio.lowlevel.current_task()
    async with inbox:
        task_status.started()
        while True:
            if trio.current_time() < link.hold_until:
                await trio.sleep_until(link.hold_until)
            code: int | None = None
            reason = ""
            try:
                async with env.open_transport(identity) as transport:
                    attempt = 0
                    link.generation += 1
                    generation = link.generation
                    with trio.CancelScope() as scope:
                        link.scope, link.transport = scope, transport
                        link.dropping = link.cut = False
                        await inbox.send(_Up(generation, transport))
                        burst = 0  # frames stepped here since this task last yielded
                        try:
                            while True:
                                frame = _Frame(generation, await transport.receive())
                                if link.cut:
                                    break  # dropped while a buffered frame came out unawaited
                                taken = False if link.take is None else link.take(frame)
                                if taken is not False:
                                    if taken is not True and link.finish is not None:
                                        await link.finish(taken)
                                    if link.dropping:
                                        scope.cancel()
                                        break
                                    burst += 1
                                    if burst >= MAX_BURST:  # a CSMS that floods the socket must
                                        burst = 0  # not keep the other tasks from running
                                        await trio.lowlevel.checkpoint()
                                    continue
                                try:  # no trip through the scheduler while there is room
                                    inbox.send_nowait(frame)
                                except trio.WouldBlock:
                                    await inbox.send(frame)  # the main loop is behind: wait
                        except TransportClosed as closed:
                            code, reason = closed.code, closed.reason
                    if scope.cancelled_caught or (code is None and scope.cancel_called):
                        code, reason = 1000, "closed by the charger"
                    link.scope, link.transport = None, None
                await inbox.send(_Down(generation, code, reason))
            except ConnectError as exc:
                attempt += 1
                delay = env.backoff.delay(attempt, uniform)
                await env.publish(
                    ConnectFailed(
                        t=trio.current_time(), charger=identity, url=env.url, error=str(exc),
                        attempt=attempt, retry_in=round(delay, 3),
                    )
                )
                await link.wait_retry(delay)
                continue
            # A dropped connection: come back soon, but spread (full jitter over one base period).
            await link.wait_retry(env.backoff.delay(0, uniform))


async def run_charger(
    env: ChargerEnv,
    control: ChargerControl,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one charger until it has shut down gracefully (or is cancelled).

    Reports readiness once the machine is powered on and its tasks are started. Returns after a
    :class:`Shutdown` once the transaction queue is delivered or the deadline passed. Exceptions
    from the machine propagate (the supervisor records and restarts); the inbox and the control
    outlive this call.
    """
    spec = env.spec
    identity = spec.identity
    now = trio.current_time()
    machine = ChargerMachine(
        spec,
        rng=seeds.derive(env.seed, identity, "behaviour"),
        new_id=seeds.uuid_ids(seeds.derive(env.seed, identity, "ids", control.restarts)),
        wall_epoch=env.wall_epoch,
        now=now,
        outbox=control.outbox,
    )
    link = _Link()
    connected_generation: int | None = None
    power_on_at: float | None = None
    # An outbox change waits for the ledger until persist_at; a predecessor that crashed may
    # have left one unstored.
    persist_at: float | None = now if control.unsaved else None
    shutdown: Shutdown | None = None

    store_due = False  # an outbox change to store before the step ends (messages were stored)

    async def save_outbox() -> None:
        """Hand the outbox to the ledger if it differs from the snapshot stored last."""
        nonlocal persist_at, store_due
        persist_at = None
        store_due = False
        outbox = control.outbox
        if control.unsaved:
            await env.persist(PersistOutbox(charger=identity, entries=outbox))
            control.persisted = outbox  # only once handed over (the await may be cancelled)

    def store_nowait() -> bool:
        """:func:`save_outbox` if the ledger takes the snapshot without waiting: True once
        done (or when there is nothing to store), False, with nothing changed, when it would
        have to wait. A charger whose queue is behind stores at every change: with only the
        awaited store, each of its timer steps and frames went the main loop's slower way."""
        nonlocal persist_at, store_due
        outbox = control.outbox
        if control.unsaved:
            if not env.persist_nowait(PersistOutbox(charger=identity, entries=outbox)):
                return False
            control.persisted = outbox
        persist_at = None
        store_due = False
        return True

    publish_nowait = env.publish_nowait

    def sent_frame(send: Send, text: str) -> FrameOut:
        """The event of a frame just written."""
        return FrameOut(t=trio.current_time(), charger=identity, raw=text,
                        message_type=send.message_type, unique_id=send.unique_id,
                        action=send.action)

    def store_due_at(now: float) -> bool:
        """Whether the step at ``now`` ends with storing the outbox."""
        return store_due or (persist_at is not None and now >= persist_at)

    def apply_nowait(effects: list[Effect | _Flush], now: float, start: int) -> int:
        """Carry out ``effects[start:]`` of the step taken at ``now``, in order, as long as none
        has to wait: the index of the first one left (``len(effects)``: all done). A frame the
        socket took only part of is left as a :class:`_Flush`, a frame sent whose event the bus
        could not take at once as a :class:`~simulator.machines.effects.Publish`, in place."""
        nonlocal power_on_at, persist_at, store_due
        end = len(effects)
        index = start
        while index < end:
            match effects[index]:
                case Send(data=data) as effect:
                    transport = link.transport
                    if transport is not None and connected_generation == link.generation:
                        text = data.decode()
                        try:
                            sent = transport.send_nowait(text)
                        except TransportClosed:
                            link.drop()
                            sent = None
                        if sent is not None:
                            if sent == NOT_SENT:
                                return index
                            frame_out = sent_frame(effect, text)
                            if sent == STARTED:
                                effects[index] = _Flush(transport, frame_out)
                                return index
                            if not publish_nowait(frame_out):
                                effects[index] = Publish(event=frame_out)
                                return index
                    # else the link went down under us; the machine hears _Down next
                case Publish(event=event):
                    if not publish_nowait(event):
                        return index
                case CloseConnection():
                    link.drop()
                case Reboot(delay=delay):
                    power_on_at = trio.current_time() + delay
                    link.drop(hold_until=power_on_at)
                case PersistOutbox(entries=entries):
                    control.outbox = entries
                    if control.persisted:  # stored messages: a delivery is stored at once
                        store_due = True
                    elif not control.unsaved:  # back to the (empty) snapshot stored: no
                        persist_at = None  # wake-up to store nothing (once per message)
                    elif persist_at is None:
                        persist_at = now + OUTBOX_PERSIST_INTERVAL
                case _Flush():
                    return index
            index += 1
        return end

    async def complete(rest: _Rest) -> None:
        """Finish a step :func:`step_nowait` left unfinished: the effects that had to wait, in
        order, then the outbox store that is due."""
        effects, now = rest.effects, rest.now
        end = len(effects)
        index = rest.index
        while (index := apply_nowait(effects, now, index)) < end:
            match effects[index]:
                case Send(data=data) as effect:
                    transport = link.transport
                    if transport is not None and connected_generation == link.generation:
                        text = data.decode()
                        try:
                            await transport.send(text)
                        except TransportClosed:
                            link.drop()
                        else:
                            await publish(sent_frame(effect, text))
                case _Flush(transport=transport, event=frame_out):
                    try:
                        await transport.flush()
                    except TransportClosed:
                        link.drop()
                    else:
                        await publish(frame_out)
                case Publish(event=event):
                    await env.publish(event)
            index += 1
        if store_due_at(now):
            await save_outbox()

    async def publish(event: Event) -> None:
        if not publish_nowait(event):
            await env.publish(event)

    def step_nowait(now: float) -> _Rest | None:
        """The rest of a step at ``now`` after its input: the passing of time, then the effects,
        as far as they go without waiting. None when the step is complete; else what is left,
        for :func:`complete`."""
        machine.tick(now)
        effects = cast("list[Effect | _Flush]", machine.take_effects())
        index = apply_nowait(effects, now, 0) if effects else 0
        if index < len(effects) or (store_due_at(now) and not store_nowait()):
            return _Rest(effects, index, now)
        return None

    async with trio.open_nursery() as nursery:
        timers = env.timers
        if timers is None:
            timers = TimerWheel()
            await nursery.start(timers.run)
        # One scope per connector actor, cancelled at shutdown (no new sessions then); the actors
        # run in this nursery directly: at 10,000 chargers a task and a nursery less each count.
        connectors: list[trio.CancelScope] = []
        if env.sessions is not None:
            for connector_id in range(1, spec.connectors + 1):
                connectors.append(trio.CancelScope())
                nursery.start_soon(functools.partial(
                    run_connector, connector_id, env.sessions,
                    seeds.derive(env.seed, identity, "sessions", connector_id),
                    control.inbox_send.clone(), cancel_scope=connectors[-1], timers=timers,
                ))
        machine.power_on(now)
        await complete(_Rest(cast("list[Effect | _Flush]", machine.take_effects()), 0, now))
        await nursery.start(_run_link, env, link, control.inbox_send.clone())
        task_status.started()

        # One step of the machine at a time: the main loop's, the link's (take_frame) or the
        # wheel's (tick_inline). A semaphore of one, not a Lock: waiters are served in order all
        # the same, and it keeps no owner (a Lock's bookkeeping of its owner task was ~3% of a
        # fleet's CPU), so a step the wheel began can be finished by the main loop.
        stepping = trio.Semaphore(1, max_value=1)
        waiting = False  # the main loop waits on an empty inbox
        begun: _Rest | Exception | None = None  # what the wheel left the main loop to finish

        def wake_time(now: float) -> float:
            deadline = machine.next_deadline()
            # A deadline the machine did not clear (it should always) must not spin the
            # loop: under a mock clock that would stop time itself.
            wake_at = math.inf if deadline is None else max(deadline, now + MIN_TICK)
            if power_on_at is not None:
                wake_at = min(wake_at, power_on_at)
            if shutdown is not None:
                wake_at = min(wake_at, shutdown.deadline)
            if persist_at is not None:
                wake_at = min(wake_at, persist_at)
            return wake_at

        main_loop = trio.lowlevel.current_task()

        def ready() -> bool:
            """Whether a step may be taken outside the main loop: nothing is ahead of it (the
            main loop waits on an empty inbox, no step is under way) and no power-on or
            shutdown is pending. ``waiting`` stays set from the moment an item is handed to the
            parked main loop until it runs; the task tells whether it is still parked: trio
            sets ``custom_sleep_data`` to None when it reschedules a task, and the memory
            channel sets it while the task waits in ``receive`` (asked of the channel's
            ``statistics()``, the same answer cost ~1% of a fleet's CPU). Were a trio release
            to stop setting it, no step would be taken here: slower, never out of order."""
            return waiting and main_loop.custom_sleep_data is not None \
                and stepping.value == 1 and power_on_at is None and shutdown is None

        async def finish(rest: _Rest) -> None:
            """Finish a step begun without waiting (it holds the step lock), then let go."""
            try:
                await complete(rest)
            finally:
                stepping.release()
            alarm.set(wake_time(rest.now))

        def take_frame(frame: _Frame) -> bool | _Rest:
            """Step the machine with ``frame`` in the link's own task, sparing the main loop a
            wake-up, when it is :func:`ready`; False: the frame goes through the inbox. What is
            left of the step when an effect has to wait, the link finishes (:func:`finish`)."""
            if frame.generation != connected_generation or not ready():
                return False
            now = trio.current_time()
            stepping.acquire_nowait()
            try:
                machine.receive(frame.text, now)
                rest = step_nowait(now)
            except BaseException:
                stepping.release()
                raise
            if rest is not None:
                return rest
            stepping.release()
            alarm.set(wake_time(now))
            return True

        def tick_inline(wheel_now: float) -> bool:
            """The alarm's work, done in the wheel's task when the charger is :func:`ready`:
            the step, sparing the main loop a wake-up (most of a fleet's exchanges start with a
            timer: meter samples, heartbeats). False: the wheel wakes the main loop, which takes
            the tick itself, or finishes what is left of the step begun here when an effect has
            to wait, or raises what the step raised (the charger's crash, not the wheel's: the
            wheel serves the whole fleet). The step reads the clock itself: the wheel's time is
            when it woke, and a large batch of alarms takes a while."""
            nonlocal begun
            if not ready():
                return False
            stepping.acquire_nowait()
            now = trio.current_time()
            try:
                rest = step_nowait(now)
                if rest is None:
                    alarm.set(wake_time(now))  # (the machine's deadline is computed here)
            except Exception as exc:
                begun = exc
                return False
            if rest is not None:
                begun = rest
                return False
            stepping.release()
            return True

        # Waits end with an input or the alarm's tick (a stale tick left by a crashed
        # predecessor is a harmless extra turn of the loop).
        alarm = timers.alarm(control.inbox_send, _TICK, tick_inline)

        link.take, link.finish = take_frame, finish
        burst = 0
        while True:
            item: InboxItem | None = None
            if burst >= MAX_BURST:  # let the other tasks run; what is queued stays ahead of
                burst = 0  # anything new (not ``waiting``: nothing may be stepped around it)
                await trio.lowlevel.checkpoint()
            try:  # the common case under load: something is waiting, no cancel scope needed
                item = control.inbox.receive_nowait()
                burst += 1
            except trio.WouldBlock:
                burst = 0
                alarm.set(wake_time(now))
                waiting = True  # parked on an empty inbox (receive takes nothing queued first)
                try:
                    item = await control.inbox.receive()
                finally:
                    waiting = False
            now = trio.current_time()
            if begun is not None:  # the wheel began a step (holding the step lock): finish it
                left, begun = begun, None
                if isinstance(left, Exception):
                    raise left
                await finish(left)
            try:  # uncontended unless the link is in the middle of a step: then after it
                stepping.acquire_nowait()
            except trio.WouldBlock:
                await stepping.acquire()
            try:
                if power_on_at is not None and now >= power_on_at:
                    power_on_at = None
                    machine.power_on(now)
                match item:
                    case _Frame(generation=generation, text=text):
                        if generation == connected_generation:
                            machine.receive(text, now)
                    case _Up(generation=generation, transport=transport):
                        connected_generation = generation
                        control.connected = True
                        await env.publish(
                            Connected(t=now, charger=identity, url=env.url,
                                      subprotocol=transport.subprotocol)
                        )
                        machine.connected(now)
                    case _Down(generation=generation, code=code, reason=reason):
                        if generation == connected_generation:
                            connected_generation = None
                            control.connected = False
                            await env.publish(
                                Disconnected(t=now, charger=identity, code=code, reason=reason)
                            )
                            machine.disconnected(now)
                    case PlugIn(connector_id=connector_id, ev=ev):
                        machine.plug_in(connector_id, now, ev=ev)
                    case Unplug(connector_id=connector_id):
                        machine.unplug(connector_id, now)
                    case PresentTag(connector_id=connector_id, id_tag=id_tag,
                                    start_only=start_only):
                        machine.present_tag(connector_id, id_tag, now, start_only=start_only)
                    case StopCharging(connector_id=connector_id, reason=reason):
                        machine.stop_local(connector_id, now, reason=reason)
                    case Shutdown():
                        shutdown = item
                        link.hurry()
                        for scope in connectors:
                            scope.cancel()
                        machine.shutdown(now)
                    case _Tick() | None:
                        pass
                rest = step_nowait(now)
                if rest is not None:
                    await complete(rest)
            finally:
                stepping.release()
            if shutdown is not None and (machine.statistics().drained or now >= shutdown.deadline):
                break
        alarm.cancel()
        await save_outbox()  # what is left undelivered at the end, for --resume
        nursery.cancel_scope.cancel()
    link.take = link.finish = None  # (no reference cycle left behind with the machine)
    control.done.set()

