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
  snapshot (with the charger's memory) to the ledger. It also wakes when the ledger reports a
  snapshot stored (:meth:`ChargerControl.stored`) and tells the machine;
- the link (:class:`simulator.actors.link.Link`): connects through ``ChargerEnv.open_transport``
  and, per connection, runs a reader (each frame received goes into the inbox) and a writer
  (each frame the main loop hands it goes on the wire); it reconnects with exponential backoff
  and full jitter drawn from the charger's seeded RNG. It never touches the machine;
- one connector actor per connector with automatic sessions (``simulator.actors.connector``);
- one task per real transfer the machine asks for (``Transfer``: ``simulator.actors.transfers``),
  whose outcome comes back through the inbox.

One frame's path, in one direction: socket → ``Transport.receive`` in the reader → inbox →
main loop: ``machine.receive`` → effects → ``FrameOut`` on the bus and the frame into the
writer's channel → ``Transport.send`` → socket. The ledger records a frame out when the machine
hands it over, so the ledger's order is the machine's; a frame that the connection lost before
writing it is recorded as a ``frame_unsent`` event.

Durability (write-ahead): every change of the transaction queue is handed to the ledger at once,
and a transaction message goes on the wire only once the ledger has committed a snapshot holding
it; it leaves the stored queue only once its CALLRESULT came. So a kill -9 loses no transaction
message: after ``--resume`` the CS gets each one at least once (a message answered just before
the kill may come twice, with a new message id). Meanwhile the charger goes on with everything
else (heartbeats, answers to the CS), and the message's latency is counted from its send.

Crash: when the machine raises, the events it recorded before the failure (the ``frame_in`` of
the frame it was handling first) are published before the exception goes to the supervisor, and
the input that made it fail is kept in :attr:`ChargerControl.last_input` for the crash event.

Backpressure: the inbox (:data:`INBOX_SIZE`) blocks the reader and the connector actors while the
main loop is behind (nothing is dropped: the reader simply stops reading the socket). The main
loop never waits on the writer: when a connection's writes stall until the writer's channel is
full, the connection is dropped, as a TCP stack gives up on a peer that does not read, and the
machine hears of it as of any other disconnect.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

import msgspec
import trio

from simulator import seeds
from simulator.actors.chaos_stream import TransportChaos
from simulator.actors.connector import run_connector
from simulator.actors.link import (
    Backoff,
    ConnectRefused,
    CredentialOpener,
    Down,
    Link,
    LinkEvent,
    Received,
    TransportOpener,
    Up,
)
from simulator.actors.transfers import TransferDone, run_transfer
from simulator.actors.transport import Transport
from simulator.chaos.catalog import Family
from simulator.chaos.injection import Injection
from simulator.chaos.protocol import ProtocolChaos, Wire
from simulator.events import CRASH_NOTE, Connected, Disconnected, Event, FrameIn, FrameOut
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
    ChargerMemory,
    CloseConnection,
    Credentials,
    OutboxEntry,
    PersistOutbox,
    Publish,
    Reboot,
    Send,
    Transfer,
    UseCredentials,
    durable_through,
)
from simulator.machines.session import redact_frame
from simulator.machines.workload import SessionPlan
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import PLUGIN, ChargePointErrorCode

MIN_TICK: Final = 0.001
"""Seconds: the main loop never wakes for a deadline sooner than this after a step."""
INBOX_SIZE: Final = 64
"""Frames and domain requests waiting for the main loop; senders wait while it is full."""
INPUT_PREVIEW: Final = 200
"""Characters of a frame kept in :attr:`ChargerControl.last_input` (for the crash event)."""
CRASHES_KEPT: Final = 5
"""Crashes a :class:`ChargerControl` remembers (the latest; older ones are in the ledger)."""


class CrashRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One crash of a charger as its supervisor caught it: ``t`` (the run's monotonic seconds),
    ``error`` (``Type: message``) and the formatted ``traceback`` (as in its ``crash`` event)."""

    t: float
    error: str
    traceback: str

@dataclasses.dataclass(frozen=True, slots=True)
class ChargerEnv:
    """Everything a charger actor takes from outside (immutable, shared by its restarts).

    ``publish`` sends an event to the bus and may wait (ledger backpressure); ``persist`` hands
    an outbox snapshot to the ledger and may wait too; whoever stores it calls
    :meth:`ChargerControl.stored` once it is durable, during ``persist`` or later (until then
    the messages it added stay off the wire). ``run_id`` tells this run's message ids from
    those of the earlier runs of the same ledger (resumed runs). ``wall_epoch`` is Unix time at
    ``trio.current_time() == 0``. ``sessions``: automatic transactions on every connector.
    ``plugin``: the protocol version the machine speaks (``open_transport`` must offer the
    same one). ``chaos``: the charger's transport chaos state, whose streams ``open_transport``
    puts under the WebSocket client (None: transport faults that shape bytes have no stream to
    act on). ``connect``: when set, the link connects through it instead of ``open_transport``,
    with the charger's credentials in force (:attr:`ChargerControl.credentials`).
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
    run_id: int = 0
    chaos: TransportChaos | None = None
    connect: CredentialOpener | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Shutdown:
    """Graceful end: stop transactions (reason Local), deliver the queue until ``deadline``."""

    deadline: float


@dataclasses.dataclass(frozen=True, slots=True)
class Inject:
    """A fault of the chaos catalog for this charger (the director decided it and recorded it)."""

    injection: Injection


@dataclasses.dataclass(frozen=True, slots=True)
class EndInject:
    """End a fault given earlier (``injection``, as it was given) now, before its ``until``."""

    injection: Injection


InboxItem = DomainRequest | Shutdown | LinkEvent | Inject | EndInject | TransferDone


class ChargerControl:
    """The fleet's handle on one charger; survives the charger's crashes and restarts.

    It owns the inbox (closed by the fleet at the end), keeps the last outbox snapshot and the
    charger's memory so that a restarted charger resumes its undelivered transaction messages
    and stops the transactions that were running (``outbox``, ``memory``; ``persisted`` is the
    last snapshot handed to the ledger, ``stored_through`` how far the ledger has stored), and
    tells when the charger has finished (``done``). Other tasks act on the charger only through
    :meth:`request` (its inbox) and :meth:`stored`.

    A restored ``outbox`` and ``memory`` (``--resume``) are durable already: ``stored_through``
    starts at the highest seq they name.
    """

    def __init__(
        self, outbox: tuple[OutboxEntry, ...] = (), memory: ChargerMemory | None = None
    ) -> None:
        self.inbox_send, self.inbox = trio.open_memory_channel[InboxItem](INBOX_SIZE)
        self.outbox = outbox
        self.persisted = outbox
        self.memory = memory
        self.stored_through = durable_through(outbox, memory)
        self.waiting: trio.CancelScope | None = None
        """The main loop's wait on the inbox, while it waits (:meth:`stored` ends it)."""
        self.done = trio.Event()
        self.connected = False
        self.disconnections = 0
        """How many times a connection the charger knew as up has ended (the fleet's collector
        watches for mass drops)."""
        self.credentials: Credentials | None = None
        """What the charger connects with, as its machine last said (``UseCredentials``, or
        the machine's at each start: a restarted charger's new machine knows only the fleet
        file's settings, and the connection follows it); None: not started yet. Secret:
        never published."""
        self.restarts = 0
        self.crashes: collections.deque[CrashRecord] = collections.deque(maxlen=CRASHES_KEPT)
        """The last :data:`CRASHES_KEPT` crashes, oldest first (the supervisor appends; the
        control API's actor tree reads)."""
        self.last_input: str | None = None
        """What the main loop was handling when the machine raised (None: not an input)."""
        self.last_unique_id: str | None = None
        """The message id of the frame the main loop was handling then, if it had one."""
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

    def stored(self, through: int) -> None:
        """The ledger has committed a snapshot holding every message up to ``seq == through``:
        wake the main loop to send them (call from the Trio thread; never blocks)."""
        if through > self.stored_through:
            self.stored_through = through
            if self.waiting is not None:
                self.waiting.cancel()

    async def request(self, request: DomainRequest) -> None:
        """Hand ``request`` to the charger's main loop (waits while its inbox is full)."""
        await self.inbox_send.send(request)

    async def inject(self, injection: Injection) -> None:
        """Hand a fault to the charger's main loop (waits while its inbox is full), which passes
        it on by family: transport to the link, protocol to the send path, behaviour to the
        machine."""
        await self.inbox_send.send(Inject(injection))

    async def end(self, injection: Injection) -> None:
        """Have the charger end a fault it was given now, before its ``until`` (waits while its
        inbox is full): a ``latency``, ``bandwidth`` or ``fragment`` on its link, a behaviour
        fault in its machine (each records its end as it would at ``until``); any other goes
        on until its ``until``."""
        await self.inbox_send.send(EndInject(injection))

    async def shutdown(self, deadline: float) -> None:
        """Ask the charger to end gracefully by ``deadline`` (no-op if it has finished)."""
        if not self.done.is_set():
            with trio.move_on_at(deadline):
                await self.inbox_send.send(Shutdown(deadline))


class ChargerActor:
    """One run of one charger (a restart after a crash is a new actor with the same control).

    State: the machine; the connection the machine knows as up (``_generation``); a pending
    power-on after a reboot; how far the machine knows the outbox stored; the shutdown asked
    for; the link. The main loop is the only task that changes the machine or these; the link's
    task changes only the link's own state.
    """

    def __init__(self, env: ChargerEnv, control: ChargerControl) -> None:
        self.env = env
        self.control = control
        self.identity = env.spec.identity
        now = trio.current_time()
        self.machine = ChargerMachine(
            env.spec,
            rng=seeds.derive(env.seed, self.identity, "behaviour"),
            new_id=seeds.uuid_ids(seeds.derive(env.seed, self.identity, "ids", env.run_id,
                                               control.restarts)),
            wall_epoch=env.wall_epoch,
            now=now,
            outbox=control.outbox,
            plugin=env.plugin,
            memory=control.memory,
            stored_through=control.stored_through,
        )
        # main loop state
        self._generation: int | None = None  # the connection the machine knows as up
        self._power_on_at: float | None = None
        self._stored_through = control.stored_through  # as far as the machine knows
        self._shutdown: Shutdown | None = None
        self._nursery: trio.Nursery | None = None  # where real transfers run
        self.protocol = ProtocolChaos(
            seeds.derive(env.seed, self.identity, "chaos", "protocol"),
            plugin=env.plugin, wall_epoch=env.wall_epoch,
        )
        # A new machine (a restart after a crash) knows only the fleet file's security settings:
        # the connection must use the same, or a CSMS could lower the profile the charger
        # connects with. Keys and certificates set over OCPP are lost in a crash.
        control.credentials = self.machine.credentials()
        self.link = Link(
            identity=self.identity, url=env.url, seed=env.seed,
            open_transport=self._opener(), deliver=control.inbox_send.send,
            publish=env.publish, backoff=env.backoff, chaos=env.chaos,
        )

    def _opener(self) -> TransportOpener:
        """What the link connects with: ``env.connect`` with the credentials in force at each
        attempt (read from the control, which the main loop updates), else
        ``env.open_transport``."""
        connect, control = self.env.connect, self.control
        if connect is None:
            return self.env.open_transport

        def opener(identity: str) -> AbstractAsyncContextManager[Transport]:
            assert control.credentials is not None  # (set before the link starts)
            return connect(identity, control.credentials)

        return opener

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
                self._nursery = nursery
                connectors: list[trio.CancelScope] = []
                if env.sessions is not None:
                    for connector_id in range(1, env.spec.connectors + 1):
                        scope = trio.CancelScope()
                        connectors.append(scope)
                        nursery.start_soon(
                            functools.partial(
                                run_connector, connector_id, env.sessions,
                                seeds.derive(env.seed, self.identity, "sessions", connector_id),
                                control.request, charger=self.identity, cancel_scope=scope,
                            ),
                            name=f"connector {self.identity}/{connector_id}",
                        )
                now = trio.current_time()
                if control.unsaved:  # changed by a predecessor, never handed to the ledger
                    await self._store_outbox()
                await self._guarded(self._power_on, None, now)
                nursery.start_soon(self.link.run, name=f"link {self.identity}")
                task_status.started()
                while True:
                    item: InboxItem | None = None  # None: the wake-up time came first
                    with trio.move_on_at(self._wake_time(now)) as waiting:
                        control.waiting = waiting
                        item = await control.inbox.receive()
                    control.waiting = None
                    now = trio.current_time()
                    if isinstance(item, Shutdown):
                        for scope in connectors:
                            scope.cancel()
                    await self._guarded(self._step, item, now)
                    if self._shutdown is not None and (
                        machine.statistics().drained or now >= self._shutdown.deadline
                    ):
                        break
                if control.unsaved:
                    await self._store_outbox()  # what is left undelivered, for --resume
                nursery.cancel_scope.cancel()
        finally:
            control.machine = None
        control.done.set()

    async def _power_on(self, item: InboxItem | None, now: float) -> None:
        del item
        self.machine.power_on(now)

    async def _guarded(
        self,
        step: Callable[[InboxItem | None, float], Awaitable[None]],
        item: InboxItem | None,
        now: float,
    ) -> None:
        """Take ``step`` with ``item`` and apply its effects. When the machine raises, keep what
        it was handling (``control.last_input``), publish the events it recorded before the
        failure (the ``frame_in`` of a frame first; one made here if it failed before recording
        it), then let the exception go on."""
        try:
            await step(item, now)
        except Exception:
            control = self.control
            control.last_input, control.last_unique_id = _describe_input(item)
            recorded = [e.event for e in self.machine.take_effects() if isinstance(e, Publish)]
            if isinstance(item, Received) and not any(isinstance(e, FrameIn) for e in recorded):
                text = item.data
                recorded.insert(0, FrameIn(
                    t=now, charger=self.identity, unique_id=control.last_unique_id,
                    raw=redact_frame(text if isinstance(text, str)
                                     else text.decode(errors="replace")),
                    violations=[CRASH_NOTE],
                ))
            for event in recorded:
                await self.env.publish(event)
            raise
        await self._apply(now)

    def _wake_time(self, now: float) -> float:
        if self.control.stored_through > self._stored_through:
            return now  # the ledger stored messages the machine waits to send
        deadline = self.machine.next_deadline()
        # A deadline the machine did not clear (it should always) must not spin the loop:
        # under a mock clock that would stop time itself.
        wake_at = math.inf if deadline is None else max(deadline, now + MIN_TICK)
        if self._power_on_at is not None:
            wake_at = min(wake_at, self._power_on_at)
        if self._shutdown is not None:
            wake_at = min(wake_at, self._shutdown.deadline)
        held = self.protocol.next_deadline()  # a frame a protocol fault holds back
        if held is not None:
            wake_at = min(wake_at, max(held, now + MIN_TICK))
        return wake_at

    async def _step(self, item: InboxItem | None, now: float) -> None:
        """Feed ``item`` (None: only time passed) to the machine, then the passing of time
        (a connection change is published before the machine hears of it)."""
        machine = self.machine
        if self._power_on_at is not None and now >= self._power_on_at:
            self._power_on_at = None
            machine.power_on(now)
        if self.control.stored_through > self._stored_through:
            self._stored_through = self.control.stored_through
            machine.outbox_stored(self._stored_through, now)
        match item:
            case Received(generation=generation, data=str() as text):
                if generation == self._generation:
                    machine.receive(text, now)
            case Received(generation=generation, data=bytes() as binary):
                if generation == self._generation:
                    machine.receive_binary(binary, now)
            case Up(generation=generation, subprotocol=subprotocol):
                self._generation = generation
                self.control.connected = True
                await self.env.publish(Connected(
                    t=now, charger=self.identity, url=self.env.url, subprotocol=subprotocol
                ))
                machine.connected(now)
            case ConnectRefused(failure=failure, detail=detail):
                machine.connect_failed(failure, now, detail)
            case Down(generation=generation, code=code, reason=reason):
                if generation == self._generation:
                    self._generation = None
                    self.control.connected = False
                    self.control.disconnections += 1
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
            case Inject(injection=injection):
                self._inject(injection, now)
            case EndInject(injection=injection):
                if injection.family is Family.TRANSPORT:
                    self.link.chaos.end(injection.id, now)
                elif injection.family is Family.BEHAVIOUR:
                    self.machine.end_fault(injection.id, now)
            case TransferDone(job=job, ok=ok, data=data, detail=detail):
                machine.transfer_done(job, ok, data, now, detail=detail)
            case Shutdown():
                self._shutdown = item
                self.link.hurry()
                machine.shutdown(now)
            case None:
                pass
        machine.tick(now)

    def _inject(self, injection: Injection, now: float) -> None:
        """Pass a fault on to the part of the charger it acts on, by its family."""
        match injection.family:
            case Family.TRANSPORT:
                self.link.inject(injection, now)
            case Family.PROTOCOL:
                self.protocol.inject(injection, now)
            case Family.BEHAVIOUR:
                self.machine.inject(injection, now)
            case _:
                raise ValueError(f"a {injection.family} fault cannot be given to a charger")

    async def _apply(self, now: float) -> None:
        """Carry out the machine's effects of the step taken at ``now``, in order, then send
        the frames a protocol fault held back that are due."""
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
                    # (an answer given before going down, e.g. to the Reset, still goes out)
                    self.link.drop(hold_until=self._power_on_at, after_queued=True)
                case Transfer(job=job):
                    assert self._nursery is not None  # effects come only from inside run()
                    self._nursery.start_soon(run_transfer, effect, self.control.inbox_send.send,
                                             name=f"transfer {self.identity} {job}")
                case UseCredentials(credentials=credentials, reconnect=reconnect):
                    self.control.credentials = credentials
                    if reconnect:  # (once the answers given so far are on the wire)
                        self.link.drop(after_queued=True)
                case PersistOutbox(entries=entries, memory=memory):
                    self.control.outbox = entries
                    if memory is not None:
                        self.control.memory = memory
                    await self._store_outbox(effect)
        for wire in self.protocol.due(now):
            await self._put(wire, now)

    async def _send(self, send: Send, now: float) -> None:
        """Put on the wire what the protocol faults in force make of ``send`` (``send`` itself
        when none acts on it)."""
        for wire in self.protocol.outgoing(send, now):
            await self._put(wire, now)

    async def _put(self, wire: Wire, now: float) -> None:
        """Hand ``wire``'s frame to the link for the connection the machine knows as up, and
        record it (``frame_out``, naming the fault that made or changed it) once handed over."""
        send = wire.send
        if self.link.hand_over(send, self._generation):
            await self.env.publish(
                FrameOut(t=now, charger=self.identity, raw=send.data.decode(),
                         message_type=send.message_type, unique_id=send.unique_id,
                         action=send.action, fault=wire.fault, injection=wire.injection)
            )

    async def _store_outbox(self, snapshot: PersistOutbox | None = None) -> None:
        """Hand ``snapshot`` (by default the control's outbox and memory) to the ledger."""
        control = self.control
        if snapshot is None:
            memory = control.memory
            snapshot = PersistOutbox(charger=self.identity, entries=control.outbox,
                                     memory=memory, through=durable_through(control.outbox, memory))
        await self.env.persist(snapshot)
        control.persisted = snapshot.entries  # only once handed over (the await may be cancelled)


def _describe_input(item: InboxItem | None) -> tuple[str | None, str | None]:
    """What the main loop handled, for the crash event, and the message id of a frame (the
    second member of its JSON array, when it has one); (None, None) when only time passed."""
    match item:
        case None:
            return None, None
        case Received(data=text):
            shown = redact_frame(text if isinstance(text, str) else repr(text))
            preview = shown if len(shown) <= INPUT_PREVIEW else shown[:INPUT_PREVIEW] + "…"
            return f"frame {preview}", _message_id(text)
        case _:
            return repr(item)[:INPUT_PREVIEW], None


def _message_id(text: str | bytes) -> str | None:
    try:
        frame = _frame_decoder.decode(text)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if len(frame) > 1 and isinstance(frame[1], str):
        return frame[1][:INPUT_PREVIEW]
    return None


_frame_decoder: Final = msgspec.json.Decoder(list[Any])


async def run_charger(
    env: ChargerEnv,
    control: ChargerControl,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one charger (a new :class:`ChargerActor`) until it has shut down gracefully or is
    cancelled: ``ChargerActor(env, control).run``, as a function to start as a task."""
    await ChargerActor(env, control).run(task_status=task_status)
