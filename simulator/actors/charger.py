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
- the link (:class:`simulator.actors.link.Link`): connects through ``ChargerEnv.open_transport``
  and, per connection, runs a reader (each frame received goes into the inbox) and a writer
  (each frame the main loop hands it goes on the wire); it reconnects with exponential backoff
  and full jitter drawn from the charger's seeded RNG. It never touches the machine;
- one connector actor per connector with automatic sessions (``simulator.actors.connector``).

One frame's path, in one direction: socket → ``Transport.receive`` in the reader → inbox →
main loop: ``machine.receive`` → effects → ``FrameOut`` on the bus and the frame into the
writer's channel → ``Transport.send`` → socket. The ledger records a frame out when the machine
hands it over, so the ledger's order is the machine's; a frame that the connection lost before
writing it is recorded as a ``frame_unsent`` event.

Backpressure: the inbox (:data:`INBOX_SIZE`) blocks the reader and the connector actors while the
main loop is behind (nothing is dropped: the reader simply stops reading the socket). The main
loop never waits on the writer: when a connection's writes stall until the writer's channel is
full, the connection is dropped, as a TCP stack gives up on a peer that does not read, and the
machine hears of it as of any other disconnect.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from simulator import seeds
from simulator.actors.connector import run_connector
from simulator.actors.link import Backoff, Down, Link, LinkEvent, Received, TransportOpener, Up
from simulator.events import Connected, Disconnected, Event, FrameOut
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
INBOX_SIZE: Final = 64
"""Frames and domain requests waiting for the main loop; senders wait while it is full."""
OUTBOX_PERSIST_INTERVAL: Final = 0.2
"""Seconds a message added to an outbox whose stored snapshot is empty may wait before the
snapshot goes to the ledger. Online with a prompt CSMS a message is queued and acknowledged
within that time and never stored at all. Once the stored snapshot holds messages, every change
is stored at once, so a message delivered is not sent again by ``--resume``. A message added
within the last interval before a kill -9 is lost to ``--resume``, like the events of the
ledger writer's last batch. A graceful end, a crash and a cancelled fleet store what is left."""

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
    backoff: Backoff = dataclasses.field(default_factory=Backoff)
    plugin: ProtocolPlugin = PLUGIN


@dataclasses.dataclass(frozen=True, slots=True)
class Shutdown:
    """Graceful end: stop transactions (reason Local), deliver the queue until ``deadline``."""

    deadline: float


InboxItem = DomainRequest | Shutdown | LinkEvent


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


class ChargerActor:
    """One run of one charger (a restart after a crash is a new actor with the same control).

    State: the machine; the connection the machine knows as up (``_generation``); a pending
    power-on after a reboot; a pending outbox store; the shutdown asked for; the link. The main
    loop is the only task that changes the machine or these; the link's task changes only the
    link's own state.
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
        self.link = Link(
            identity=self.identity, url=env.url, seed=env.seed,
            open_transport=env.open_transport, deliver=control.inbox_send.send,
            publish=env.publish, backoff=env.backoff,
        )

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
                nursery.start_soon(self.link.run, name=f"link {self.identity}")
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
            case Received(generation=generation, text=text):
                if generation == self._generation:
                    machine.receive(text, now)
            case Up(generation=generation, subprotocol=subprotocol):
                self._generation = generation
                self.control.connected = True
                await self.env.publish(Connected(
                    t=now, charger=self.identity, url=self.env.url, subprotocol=subprotocol
                ))
                machine.connected(now)
            case Down(generation=generation, code=code, reason=reason):
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
                self.link.hurry()
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
                    self.link.drop()
                case Reboot(delay=delay):
                    self._power_on_at = now + delay
                    self.link.drop(hold_until=self._power_on_at)
                case PersistOutbox(entries=entries):
                    self._outbox_changed(entries, now)
        if self._store_now or (self._persist_at is not None and now >= self._persist_at):
            await self._store_outbox()

    async def _send(self, send: Send, now: float) -> None:
        """Hand ``send`` to the link for the connection the machine knows as up, and record it
        (``frame_out``) once handed over."""
        if self.link.hand_over(send, self._generation):
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


async def run_charger(
    env: ChargerEnv,
    control: ChargerControl,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one charger (a new :class:`ChargerActor`) until it has shut down gracefully or is
    cancelled: ``ChargerActor(env, control).run``, as a function to start as a task."""
    await ChargerActor(env, control).run(task_status=task_status)
