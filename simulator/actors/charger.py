"""The charger actor: one virtual charge point, its connectors and its link to the CSMS.

The actor owns a :class:`~simulator.machines.charger.ChargerMachine` and does only what the
machine asks: it feeds it inputs (frames, connection changes, domain requests, the passing of
time) and applies the effects it returns (send, publish, close, reboot, persist the outbox). All
decisions are the machine's.

One task owns the machine. Tasks, all in the actor's own nursery:

- the main loop (:meth:`ChargerActor.run`): the only task that steps the machine. It waits on the
  inbox until the machine's next deadline (trio's own deadline, ``move_on_at``), steps the machine
  with what came or with the passing of time, and applies the effects in order: a frame goes to
  the connection's writer, an event to the bus (waiting while the ledger lags), an outbox
  snapshot to the ledger;
- the link (:meth:`ChargerActor.run_link`): connects through ``ChargerEnv.open_transport`` and,
  per connection, runs a reader (each frame received goes into the inbox) and a writer (each
  frame the main loop hands it goes on the wire); it reconnects with exponential backoff and full
  jitter drawn from the charger's seeded RNG. It never touches the machine;
- one connector actor per connector with automatic sessions (``simulator.actors.connector``).

One frame's path, in one direction: socket → ``Transport.receive`` in the reader → inbox →
main loop: ``machine.receive`` → effects → ``FrameOut`` on the bus and the frame into the
writer's channel → ``Transport.send`` → socket. The ledger records a frame out when the machine
hands it over, so the ledger's order is the machine's; a frame that the connection lost before
writing it is recorded as a ``frame_unsent`` event.

Backpressure: the inbox (:data:`INBOX_SIZE`) blocks the reader and the connector actors while the
main loop is behind (nothing is dropped: the reader simply stops reading the socket). The main
loop never waits on the writer: when a connection's writes stall until the writer's channel
(:data:`OUTGOING_SIZE`) is full, the connection is dropped, as a TCP stack gives up on a peer that
does not read, and the machine hears of it as of any other disconnect.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Final

import trio

from simulator import seeds
from simulator.actors.connector import run_connector
from simulator.actors.transport import ConnectError, Transport, TransportClosed
from simulator.events import Connected, ConnectFailed, Disconnected, Event, FrameOut, FrameUnsent
from simulator.machines.charger import ChargerMachine, ChargerSpec, ChargerStatistics
from simulator.machines.domain import (
    ClearFault,
    DomainRequest,
    PlugIn,
    PresentTag,
    RebootCharger,
    SetFault,
    StopCharging,
    Unplug,
)
from simulator.machines.effects import (
    CloseConnection,
    OutboxEntry,
    PersistOutbox,
    Publish,
    Reboot,
    Send,
)
from simulator.machines.workload import SessionPlan
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import PLUGIN, ChargePointErrorCode

MIN_TICK: Final = 0.001
"""Seconds: the main loop never wakes for a deadline sooner than this after a step."""
URGENT_RETRY: Final = 0.5
"""Seconds between connection attempts during the end-of-run grace period."""
INBOX_SIZE: Final = 64
"""Frames and domain requests waiting for the main loop; senders wait while it is full."""
OUTGOING_SIZE: Final = 64
"""Frames handed to a connection's writer and not written yet; when full, the connection is
dropped (the peer has stopped reading)."""
CLOSED_BY_CHARGER: Final = "closed by the charger"
"""The ``disconnected`` event's reason when the charger itself closed the connection."""
UNSENT_PUBLISH_TIMEOUT: Final = 1.0
"""Seconds a closing connection's writer may wait on the bus to record its unsent frames."""
OUTBOX_PERSIST_INTERVAL: Final = 0.2
"""Seconds a message added to an outbox whose stored snapshot is empty may wait before the
snapshot goes to the ledger. Online with a prompt CSMS a message is queued and acknowledged
within that time and never stored at all. Once the stored snapshot holds messages, every change
is stored at once, so a message delivered is not sent again by ``--resume``. A message added
within the last interval before a kill -9 is lost to ``--resume``, like the events of the
ledger writer's last batch. A graceful end, a crash and a cancelled fleet store what is left."""

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

    ``publish`` sends an event to the bus and may wait (ledger backpressure); ``persist`` stores
    an outbox snapshot in the ledger and may wait too. ``wall_epoch`` is Unix time at
    ``trio.current_time() == 0``. ``sessions``: automatic transactions on every connector.
    ``plugin``: the protocol version the machine speaks (``open_transport`` must offer the
    same one).
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
    plugin: ProtocolPlugin = PLUGIN


@dataclasses.dataclass(frozen=True, slots=True)
class Shutdown:
    """Graceful end: stop transactions (reason Local), deliver the queue until ``deadline``."""

    deadline: float


@dataclasses.dataclass(frozen=True, slots=True)
class _Up:
    generation: int
    subprotocol: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class _Down:
    generation: int
    code: int | None
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Frame:
    generation: int
    text: str


InboxItem = DomainRequest | Shutdown | _Up | _Down | _Frame


class ChargerControl:
    """The fleet's handle on one charger; survives the charger's crashes and restarts.

    It owns the inbox (closed by the fleet at the end), keeps the last outbox snapshot so that a
    restarted charger resumes its undelivered transaction messages (``outbox``; ``persisted`` is
    the last one handed to the ledger), and tells when the charger has finished (``done``).
    Other tasks act on the charger only through :meth:`request` (its inbox).
    """

    def __init__(self, outbox: tuple[OutboxEntry, ...] = ()) -> None:
        self.inbox_send, self.inbox = trio.open_memory_channel[InboxItem](INBOX_SIZE)
        self.outbox = outbox
        self.persisted = outbox
        self.done = trio.Event()
        self.connected = False
        self.restarts = 0
        self.machine: ChargerMachine | None = None
        """The running charger's machine, for reading only (``statistics()``, views); None
        between a crash and the restart. Only the charger's main loop steps it."""

    @property
    def unsaved(self) -> bool:
        """Whether ``outbox`` differs from the snapshot last handed to the ledger."""
        return self.outbox is not self.persisted and self.outbox != self.persisted

    def statistics(self) -> ChargerStatistics | None:
        """The running machine's statistics (None while the charger is not running)."""
        return None if self.machine is None else self.machine.statistics()

    async def request(self, request: DomainRequest) -> None:
        """Hand ``request`` to the charger's main loop (waits while its inbox is full)."""
        await self.inbox_send.send(request)

    async def shutdown(self, deadline: float) -> None:
        """Ask the charger to end gracefully by ``deadline`` (no-op if it has finished)."""
        if not self.done.is_set():
            with trio.move_on_at(deadline):
                await self.inbox_send.send(Shutdown(deadline))


class _Connection:
    """One live connection: its transport, its writer's channel, and the cancel scope of the
    nursery that runs its reader and writer (:meth:`attach`, once the machine has heard of it).

    The first cause that ends it (the peer's close, the charger's drop) is kept in ``code`` and
    ``reason`` for the ``_Down`` the link reports; a connection ended before its nursery opened
    is cancelled as the nursery attaches.
    """

    def __init__(self, generation: int, transport: Transport) -> None:
        self.generation = generation
        self.transport = transport
        self.outgoing, self.to_write = trio.open_memory_channel[Send](OUTGOING_SIZE)
        self.ended = False
        self.code: int | None = None
        self.reason = ""
        self._scope: trio.CancelScope | None = None

    def attach(self, scope: trio.CancelScope) -> None:
        self._scope = scope
        if self.ended:
            scope.cancel()

    def end(self, code: int | None, reason: str) -> None:
        if not self.ended:
            self.ended = True
            self.code, self.reason = code, reason
            if self._scope is not None:
                self._scope.cancel()


class ChargerActor:
    """One run of one charger (a restart after a crash is a new actor with the same control).

    State: the machine; the connection the machine knows as up (``_generation``); a pending
    power-on after a reboot; a pending outbox store; the shutdown asked for. The main loop is the
    only task that changes the machine or these; the link task changes only the link's own
    fields (``_connection``, the hold and the retry state).
    """

    def __init__(self, env: ChargerEnv, control: ChargerControl) -> None:
        self.env = env
        self.control = control
        self.identity = env.spec.identity
        now = trio.current_time()
        self.machine = ChargerMachine(
            env.spec,
            rng=seeds.derive(env.seed, self.identity, "behaviour"),
            new_id=seeds.uuid_ids(seeds.derive(env.seed, self.identity, "ids", control.restarts)),
            wall_epoch=env.wall_epoch,
            now=now,
            outbox=control.outbox,
            plugin=env.plugin,
        )
        # main loop state
        self._generation: int | None = None  # the connection the machine knows as up
        self._power_on_at: float | None = None
        self._persist_at: float | None = now if control.unsaved else None
        self._store_now = False
        self._shutdown: Shutdown | None = None
        # link state
        self._connection: _Connection | None = None
        self._connections = 0
        self._hold_until = -math.inf
        self._urgent = False
        self._wake: trio.Event | None = None  # set by _hurry; exists while the link waits

    # --- the main loop ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the charger until it has shut down gracefully (or is cancelled).

        Reports readiness once the machine is powered on and the link and the connectors are
        started. Returns after a :class:`Shutdown` once the transaction queue is delivered or
        the deadline passed, having handed the undelivered queue to the ledger. Exceptions from
        the machine propagate (the supervisor records them and restarts the charger).
        """
        env, control, machine = self.env, self.control, self.machine
        control.machine = machine
        try:
            async with trio.open_nursery() as nursery:
                connectors: list[trio.CancelScope] = []
                if env.sessions is not None:
                    for connector_id in range(1, env.spec.connectors + 1):
                        scope = trio.CancelScope()
                        connectors.append(scope)
                        nursery.start_soon(
                            functools.partial(
                                run_connector, connector_id, env.sessions,
                                seeds.derive(env.seed, self.identity, "sessions", connector_id),
                                control.request, cancel_scope=scope,
                            ),
                            name=f"connector {self.identity}/{connector_id}",
                        )
                now = trio.current_time()
                machine.power_on(now)
                await self._apply(now)
                nursery.start_soon(self.run_link, name=f"link {self.identity}")
                task_status.started()
                while True:
                    item: InboxItem | None = None  # None: the wake-up time came first
                    with trio.move_on_at(self._wake_time(now)):
                        item = await control.inbox.receive()
                    now = trio.current_time()
                    if isinstance(item, Shutdown):
                        for scope in connectors:
                            scope.cancel()
                    await self._step(item, now)
                    await self._apply(now)
                    if self._shutdown is not None and (
                        machine.statistics().drained or now >= self._shutdown.deadline
                    ):
                        break
                await self._store_outbox()  # what is left undelivered, for --resume
                nursery.cancel_scope.cancel()
        finally:
            control.machine = None
        control.done.set()

    def _wake_time(self, now: float) -> float:
        deadline = self.machine.next_deadline()
        # A deadline the machine did not clear (it should always) must not spin the loop:
        # under a mock clock that would stop time itself.
        wake_at = math.inf if deadline is None else max(deadline, now + MIN_TICK)
        for when in (self._power_on_at, self._persist_at):
            if when is not None:
                wake_at = min(wake_at, when)
        if self._shutdown is not None:
            wake_at = min(wake_at, self._shutdown.deadline)
        return wake_at

    async def _step(self, item: InboxItem | None, now: float) -> None:
        """Feed ``item`` (None: only time passed) to the machine, then the passing of time
        (a connection change is published before the machine hears of it)."""
        machine = self.machine
        if self._power_on_at is not None and now >= self._power_on_at:
            self._power_on_at = None
            machine.power_on(now)
        match item:
            case _Frame(generation=generation, text=text):
                if generation == self._generation:
                    machine.receive(text, now)
            case _Up(generation=generation, subprotocol=subprotocol):
                self._generation = generation
                self.control.connected = True
                await self.env.publish(Connected(
                    t=now, charger=self.identity, url=self.env.url, subprotocol=subprotocol
                ))
                machine.connected(now)
            case _Down(generation=generation, code=code, reason=reason):
                if generation == self._generation:
                    self._generation = None
                    self.control.connected = False
                    await self.env.publish(Disconnected(
                        t=now, charger=self.identity, code=code, reason=reason
                    ))
                    machine.disconnected(now)
            case PlugIn(connector_id=connector_id, ev=ev):
                machine.plug_in(connector_id, now, ev=ev)
            case Unplug(connector_id=connector_id):
                machine.unplug(connector_id, now)
            case PresentTag(connector_id=connector_id, id_tag=id_tag, start_only=start_only):
                machine.present_tag(connector_id, id_tag, now, start_only=start_only)
            case StopCharging(connector_id=connector_id, reason=reason):
                machine.stop_local(connector_id, now, reason=reason)
            case SetFault(connector_id=connector_id, error_code=error_code, info=info):
                machine.hardware_error(connector_id, error_code, now, info=info)
            case ClearFault(connector_id=connector_id):
                machine.hardware_error(connector_id, ChargePointErrorCode.NO_ERROR, now)
            case RebootCharger(hard=hard):
                machine.reboot(now, hard=hard)
            case Shutdown():
                self._shutdown = item
                self._hurry()
                machine.shutdown(now)
            case None:
                pass
        machine.tick(now)

    async def _apply(self, now: float) -> None:
        """Carry out the machine's effects of the step taken at ``now``, in order."""
        for effect in self.machine.take_effects():
            match effect:
                case Send():
                    await self._send(effect, now)
                case Publish(event=event):
                    await self.env.publish(event)
                case CloseConnection():
                    self._drop()
                case Reboot(delay=delay):
                    self._power_on_at = now + delay
                    self._drop(hold_until=self._power_on_at)
                case PersistOutbox(entries=entries):
                    self._outbox_changed(entries, now)
        if self._store_now or (self._persist_at is not None and now >= self._persist_at):
            await self._store_outbox()

    async def _send(self, send: Send, now: float) -> None:
        """Hand ``send`` to the writer of the connection the machine knows as up; a frame for a
        connection already gone is not sent (the machine hears the ``_Down`` next)."""
        connection = self._connection
        if connection is None or connection.generation != self._generation:
            return
        try:
            connection.outgoing.send_nowait(send)
        except trio.WouldBlock:
            connection.end(None, "the CSMS stopped reading: send queue full")
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the writer has ended with the connection
        await self.env.publish(
            FrameOut(t=now, charger=self.identity, raw=send.data.decode(),
                     message_type=send.message_type, unique_id=send.unique_id,
                     action=send.action)
        )

    def _outbox_changed(self, entries: tuple[OutboxEntry, ...], now: float) -> None:
        control = self.control
        control.outbox = entries
        if control.persisted:  # stored messages: a delivery is stored at once
            self._store_now = True
        elif not control.unsaved:  # back to the (empty) snapshot stored: nothing to store
            self._persist_at = None
        elif self._persist_at is None:
            self._persist_at = now + OUTBOX_PERSIST_INTERVAL

    async def _store_outbox(self) -> None:
        """Hand the outbox to the ledger if it differs from the snapshot stored last."""
        self._persist_at = None
        self._store_now = False
        control = self.control
        outbox = control.outbox
        if control.unsaved:
            await self.env.persist(PersistOutbox(charger=self.identity, entries=outbox))
            control.persisted = outbox  # only once handed over (the await may be cancelled)

    # --- the link --------------------------------------------------------------------------

    def _drop(self, *, hold_until: float | None = None) -> None:
        """Close the current connection (if any); reconnect not before ``hold_until``. (The
        machine has said why, in its own events.)"""
        if hold_until is not None:
            self._hold_until = hold_until
        if self._connection is not None:
            self._connection.end(1000, CLOSED_BY_CHARGER)

    def _hurry(self) -> None:
        """The run is ending: stop waiting out the backoff, retry every ``URGENT_RETRY`` s so
        that queued messages get their chance within the grace period."""
        self._urgent = True
        if self._wake is not None:
            self._wake.set()

    async def _wait_retry(self, delay: float) -> None:
        if self._urgent:
            await trio.sleep(min(delay, URGENT_RETRY))
            return
        self._wake = trio.Event()
        try:
            with trio.move_on_after(delay):
                await self._wake.wait()
        finally:
            self._wake = None

    async def run_link(self) -> None:
        """Keep the charger connected: connect, run the connection's reader and writer until it
        ends, report it, reconnect with backoff. Runs until cancelled."""
        env = self.env
        rng: seeds.Stream | None = None  # made on first use

        def uniform(low: float, high: float) -> float:
            nonlocal rng
            if rng is None:
                rng = seeds.derive(env.seed, self.identity, "reconnect")
            return rng.uniform(low, high)

        attempt = 0
        inbox = self.control.inbox_send
        while True:
            if trio.current_time() < self._hold_until:
                await trio.sleep_until(self._hold_until)
            try:
                async with env.open_transport(self.identity) as transport:
                    attempt = 0
                    self._connections += 1
                    connection = _Connection(self._connections, transport)
                    self._connection = connection
                    try:
                        await inbox.send(_Up(connection.generation, transport.subprotocol))
                        async with trio.open_nursery() as nursery:
                            connection.attach(nursery.cancel_scope)
                            nursery.start_soon(self._write, connection)
                            await self._read(connection, inbox)
                    finally:
                        self._connection = None
                await inbox.send(_Down(connection.generation, connection.code,
                                       connection.reason))
            except ConnectError as exc:
                attempt += 1
                delay = env.backoff.delay(attempt, uniform)
                await env.publish(
                    ConnectFailed(
                        t=trio.current_time(), charger=self.identity, url=env.url,
                        error=str(exc), attempt=attempt, retry_in=round(delay, 3),
                    )
                )
                await self._wait_retry(delay)
                continue
            # A dropped connection: come back soon, but spread (full jitter over one base
            # period).
            await self._wait_retry(env.backoff.delay(0, uniform))

    async def _read(
        self, connection: _Connection, inbox: trio.MemorySendChannel[InboxItem]
    ) -> None:
        """Every frame received goes into the inbox, until the connection ends."""
        try:
            while True:
                text = await connection.transport.receive()
                await inbox.send(_Frame(connection.generation, text))
        except TransportClosed as closed:
            connection.end(closed.code, closed.reason)

    async def _write(self, connection: _Connection) -> None:
        """Write every frame the main loop hands over, in order, until the connection ends.
        The frames it could not write (the one a close interrupted, those still queued) are
        recorded as ``frame_unsent`` events, within :data:`UNSENT_PUBLISH_TIMEOUT`."""
        transport = connection.transport
        unsent: list[Send] = []
        with connection.to_write:
            try:
                while True:  # (the main loop never closes the channel: cancelled at the end)
                    send = await connection.to_write.receive()
                    try:
                        await transport.send(send.data.decode())
                    except TransportClosed as closed:
                        connection.end(closed.code, closed.reason)
                        unsent.append(send)
                        break
                    except trio.Cancelled:
                        unsent.append(send)
                        raise
            finally:
                while True:
                    try:
                        unsent.append(connection.to_write.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                if unsent:
                    with trio.CancelScope(shield=True), \
                            trio.move_on_after(UNSENT_PUBLISH_TIMEOUT):
                        for send in unsent:
                            await self.env.publish(FrameUnsent(
                                t=trio.current_time(), charger=self.identity,
                                unique_id=send.unique_id, action=send.action,
                            ))


async def run_charger(
    env: ChargerEnv,
    control: ChargerControl,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one charger (a new :class:`ChargerActor`) until it has shut down gracefully or is
    cancelled: ``ChargerActor(env, control).run``, as a function to start as a task."""
    await ChargerActor(env, control).run(task_status=task_status)
