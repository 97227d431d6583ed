"""A charger's link to its CSMS: one task that keeps it connected, and per connection a reader
and a writer.

The link never touches the charger's machine. It tells the charger's main loop what happens
through ``deliver`` (the main loop's inbox): :class:`Up` when a connection is open, every frame
received as :class:`Received`, :class:`Down` when the connection has ended, each tagged with the
connection's ``generation`` so that the main loop ignores what belongs to a connection it no
longer knows. The main loop acts on the link only through :meth:`Link.hand_over` (a frame to
write), :meth:`Link.drop`, :meth:`Link.hurry` and :meth:`Link.inject` (a transport fault);
none of them waits.

Per connection (opened by ``open_transport``, which owns the stream and the WebSocket client):

- the reader is the link's own task: every frame received goes to ``deliver``, which waits while
  the inbox is full (backpressure: the socket is not read meanwhile, nothing is dropped);
- the writer writes, in order, the frames the main loop hands over through a bounded channel
  (:data:`OUTGOING_SIZE`). The main loop never waits on it: when a connection's writes stall
  until that channel is full, the connection is ended (as a TCP stack gives up on a peer that
  does not read), and the frames that were handed over but never written are published as
  ``frame_unsent`` events.

A failed connect is published (``connect_failed``, every attempt, naming the cause) and retried
after a delay with full jitter (:class:`Backoff`, drawn from the charger's seeded ``reconnect``
stream); a connection that ended is reopened after a jittered delay of one base period. A
failure that matters to security (a certificate, a TLS version or suite, credentials refused:
``ConnectError.failure``) is also delivered to the main loop as :class:`ConnectRefused`, for
the machine to raise its security event. The opener is called for every attempt, so that it
connects with the charger's credentials in force then.

Transport faults: the link owns the charger's
:class:`~simulator.actors.chaos_stream.TransportChaos`, the state every stream of its connections
consults (``open_transport`` wraps them in its chaos streams), and acts on the connection itself
for the faults that end or double it; a fault's own tasks (the end of a half-open spell, an
identity clash's second connection) run in a nursery beside the connection loop.
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
from simulator.actors.chaos_stream import TransportChaos
from simulator.actors.transport import ABNORMAL_CLOSURE, ConnectError, Transport, TransportClosed
from simulator.chaos.injection import Injection
from simulator.events import ConnectFailed, Event, FrameUnsent, Note
from simulator.machines.charger import ConnectFailure
from simulator.machines.effects import Credentials, Send

URGENT_RETRY: Final = 0.5
"""Seconds between connection attempts during the end-of-run grace period."""
OUTGOING_SIZE: Final = 64
"""Frames handed to a connection's writer and not written yet; when full, the connection is
ended (the peer has stopped reading)."""
CLOSED_BY_CHARGER: Final = "closed by the charger"
"""The ``disconnected`` event's reason when the charger itself closed the connection."""
SEND_QUEUE_FULL: Final = "the CSMS stopped reading: send queue full"
"""The reason of a connection ended because its writer's channel was full."""
UNSENT_PUBLISH_TIMEOUT: Final = 1.0
"""Seconds a closing connection's writer may wait on the bus to record its unsent frames."""
DEFAULT_CLASH: Final = 10.0
"""Seconds an ``identity_clash`` keeps its second connection when the fault names no end."""
SHAPING_FAULTS: Final = frozenset({"latency", "bandwidth", "fragment"})
"""Transport faults that only shape the bytes (the chaos stream applies them)."""

TransportOpener = Callable[[str], AbstractAsyncContextManager[Transport]]
"""Opens a transport for a charger identity (raises ``ConnectError``)."""
CredentialOpener = Callable[[str, Credentials], AbstractAsyncContextManager[Transport]]
"""Opens a transport for a charger identity with the credentials in force (its security
profile, password and client certificate; raises ``ConnectError``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: full jitter, ``uniform(0, min(cap, base * 2**attempt))`` seconds."""

    base: float = 1.0
    cap: float = 30.0

    def delay(self, attempt: int, rng_uniform: Callable[[float, float], float]) -> float:
        return rng_uniform(0.0, min(self.cap, self.base * 2.0 ** min(attempt, 30)))


@dataclasses.dataclass(frozen=True, slots=True)
class Up:
    """Connection ``generation`` is open, with the subprotocol the server selected."""

    generation: int
    subprotocol: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Down:
    """Connection ``generation`` has ended: the close ``code`` (None: no close frame) and why."""

    generation: int
    code: int | None
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Received:
    """A frame received on connection ``generation``: ``data`` is ``str`` for a text frame,
    ``bytes`` for a binary one (not OCPP-J: the machine records and ignores it)."""

    generation: int
    data: str | bytes


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectRefused:
    """A connection attempt failed for a security reason (``failure``); ``detail`` is its
    cause in one line, without the URL (``TLS: certificate verify failed: ...``; no secret)."""

    failure: ConnectFailure
    detail: str


LinkEvent = Up | Down | Received | ConnectRefused
"""What the link delivers to the main loop."""


def _cause(error: str) -> str:
    """A connect error's cause, without the charger URL it starts with."""
    head, sep, rest = error.partition(": ")
    return rest if sep and head.startswith(("ws://", "wss://")) else error


class _Connection:
    """One live connection: its transport, its writer's channel, and the cancel scope of the
    nursery that runs its reader and writer (:meth:`attach`).

    The first cause that ends it (the peer's close, the charger's drop) is kept in ``code`` and
    ``reason`` for the :class:`Down` the link reports; a connection ended before its nursery
    opened is cancelled as the nursery attaches.
    """

    def __init__(self, generation: int, transport: Transport) -> None:
        self.generation = generation
        self.transport = transport
        # (None: close the connection once everything handed over before it is written)
        self.outgoing, self.to_write = trio.open_memory_channel[Send | None](OUTGOING_SIZE)
        self.ended = False
        self.code: int | None = None
        self.reason = ""
        self.closing: tuple[int, str] | None = None
        """The close code and wire reason the link closes it with (None: the default close)."""
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

    def close_with(self, code: int, wire_reason: str, reason: str) -> None:
        """End it because of a fault: closed with ``code`` and ``wire_reason`` (a code that may
        not go on the wire, 1006, sends no close frame); ``reason`` is the one reported."""
        if not self.ended:
            self.closing = (code, wire_reason)
        self.end(code, reason)


class Link:
    """The link of the charger ``identity`` (see the module docstring).

    ``deliver`` hands a :class:`LinkEvent` to the main loop (and may wait); ``publish`` sends an
    event to the bus. :meth:`run` is the link's task; the other methods are for the main loop.
    ``chaos`` is the charger's transport chaos state, the one whose streams ``open_transport``
    puts under the WebSocket client (None: a state of its own, which no stream consults, as
    over a message pipe with no stream under it).
    """

    def __init__(
        self, *, identity: str, url: str, seed: int, open_transport: TransportOpener,
        deliver: Callable[[LinkEvent], Awaitable[None]],
        publish: Callable[[Event], Awaitable[None]], backoff: Backoff,
        chaos: TransportChaos | None = None,
    ) -> None:
        self.identity = identity
        self.url = url
        self.chaos = chaos if chaos is not None else TransportChaos(seed, identity)
        self._seed = seed
        self._open_transport = open_transport
        self._deliver = deliver
        self._publish = publish
        self._backoff = backoff
        self._rng: seeds.Stream | None = None  # made on first use
        self._connection: _Connection | None = None
        self._connections = 0
        self._hold_until = -math.inf
        self._urgent = False
        self._wake: trio.Event | None = None  # set by hurry; exists while the link waits
        self._side: trio.Nursery | None = None  # the fault tasks' nursery, while run runs
        self._queued: list[Callable[[], Awaitable[None]]] = []  # fault tasks before run ran
        self._clashes = 0  # identity_clash connections open
        self._lingering: list[tuple[trio.abc.Stream, float]] = []  # slow closes: (stream, end)

    # --- for the main loop -----------------------------------------------------------------

    def hand_over(self, send: Send, generation: int | None) -> bool:
        """Give ``send`` to the writer of connection ``generation``, without waiting: True if
        it was handed over. A frame for a connection that is gone is not (the main loop hears
        its :class:`Down` next); a full writer channel ends the connection."""
        connection = self._connection
        if connection is None or connection.generation != generation:
            return False
        try:
            connection.outgoing.send_nowait(send)
        except trio.WouldBlock:
            connection.end(None, SEND_QUEUE_FULL)
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False  # the writer has ended with the connection
        return True

    def drop(self, *, hold_until: float | None = None, after_queued: bool = False) -> None:
        """Close the current connection (if any); reconnect not before ``hold_until``. (The
        machine has said why, in its own events.) With ``after_queued``, the frames handed
        over already are written first (an answer the charger gave before it reconnects with
        new credentials), unless the writer's channel is full."""
        if hold_until is not None:
            self._hold_until = hold_until
        connection = self._connection
        if connection is None:
            return
        if after_queued:
            try:
                connection.outgoing.send_nowait(None)
                return
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        connection.end(1000, CLOSED_BY_CHARGER)

    def inject(self, injection: Injection, now: float) -> None:
        """Apply a transport fault of the catalog (never raises; a fault it cannot apply is
        recorded as a ``note``):

        - ``disconnect``: a clean close with ``params["code"]`` (a code that may not go on the
          wire, such as 1006, ends it without a close frame); the link reconnects as after any
          drop. ``reset``: the connection is aborted (no close frame: 1006 at the peer, an
          RST over TCP). ``slow_close``: a clean close (1000) whose connection is ended only
          ``params["linger"]`` seconds later. The three act on the connection open now (and on
          an ``identity_clash`` socket, if one is open); offline, they are a no-op and a note.
        - ``partition``: closed, and offline until the fault's ``until``; ``reconnect_storm``:
          closed, and back at exactly ``until`` (no jitter), like every charger in the storm.
        - ``latency``, ``bandwidth``, ``fragment``: the chaos stream shapes every connection
          until ``until``, those opened meanwhile included.
        - ``half_open``: every connection until ``until`` reads and writes nothing (no pong);
          at ``until`` the connections are reset. The charger's machine runs on meanwhile.
        - ``identity_clash``: a second connection with the same identity is opened and kept
          until ``until``; notes record what the CSMS did with it and with the first.
        """
        fault = injection.fault
        try:
            if fault in SHAPING_FAULTS:
                self.chaos.apply(injection, now)
            elif fault == "half_open":
                self.chaos.apply(injection, now)
                if injection.until is not None:
                    self._spawn(functools.partial(self._end_half_open, injection))
            elif fault in ("partition", "reconnect_storm"):
                self.drop(hold_until=injection.until if injection.until is not None else now)
                if self._wake is not None:  # offline, waiting out a backoff: wait for `until`
                    self._wake.set()
            elif fault == "identity_clash":
                self._spawn(functools.partial(self._clash, injection))
            elif fault in ("disconnect", "reset", "slow_close"):
                self._close_for(injection, now)
            else:
                self._note(injection, "not_applied", reason="not a transport fault")
        except (ValueError, TypeError) as exc:  # parameters the director should have refused
            self._note(injection, "not_applied", reason=str(exc))

    def _close_for(self, injection: Injection, now: float) -> None:
        """``disconnect``, ``reset`` or ``slow_close`` on the connection open now."""
        connection = self._connection
        if connection is None or connection.ended:
            self._note(injection, "not_applied", reason="offline")
            return
        match injection.fault:
            case "disconnect":
                code = int(injection.params.get("code", 1000))
                connection.close_with(code, "", "disconnect (chaos)")
            case "reset":
                self.chaos.reset_streams()
                connection.close_with(ABNORMAL_CLOSURE, "", "reset (chaos)")
            case _:
                self.chaos.linger_streams(now + float(injection.params.get("linger", 10.0)))
                connection.close_with(1000, "", "slow close (chaos)")

    def hurry(self) -> None:
        """The run is ending: stop waiting out the backoff, retry every :data:`URGENT_RETRY`
        seconds so that queued messages get their chance within the grace period."""
        self._urgent = True
        if self._wake is not None:
            self._wake.set()

    # --- the link's task -------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the charger connected: connect, run the connection's reader and writer until it
        ends, report it, reconnect with backoff. Runs until cancelled, with the tasks of the
        faults in force (the end of a half-open spell, an identity clash) beside it."""
        async with trio.open_nursery() as side:
            self._side = side
            self.chaos.close_later = self._linger
            for task in self._queued:
                side.start_soon(task)
            self._queued.clear()
            try:
                await self._keep_connected()
            finally:
                self._side = None
                self.chaos.close_later = None

    async def _keep_connected(self) -> None:
        attempt = 0
        while True:
            if trio.current_time() < self._hold_until:
                await trio.sleep_until(self._hold_until)
            try:
                async with self._open_transport(self.identity) as transport:
                    attempt = 0
                    self._connections += 1
                    connection = _Connection(self._connections, transport)
                    self._connection = connection
                    try:
                        await self._deliver(Up(connection.generation, transport.subprotocol))
                        async with trio.open_nursery() as nursery:
                            connection.attach(nursery.cancel_scope)
                            nursery.start_soon(self._write, connection)
                            await self._read(connection)
                    finally:
                        self._connection = None
                    reported = False
                    if connection.closing is not None:
                        await transport.aclose(*connection.closing)
                    if self._lingering:  # a slow close: the charger knows now, the peer later
                        await self._report_down(connection)
                        reported = True
                        await self._close_lingering()
                if not reported:
                    await self._report_down(connection)
            except ConnectError as exc:
                attempt += 1
                delay = self._backoff.delay(attempt, self._uniform)
                await self._publish(
                    ConnectFailed(
                        t=trio.current_time(), charger=self.identity, url=self.url,
                        error=str(exc), attempt=attempt, retry_in=round(delay, 3),
                    )
                )
                if exc.failure is not None:
                    await self._deliver(ConnectRefused(exc.failure, _cause(str(exc))))
                await self._wait_retry(delay)
                continue
            if trio.current_time() < self._hold_until:
                continue  # held offline (a reboot, a partition): back exactly then, no jitter
            # A dropped connection: come back soon, but spread (full jitter over one base
            # period).
            await self._wait_retry(self._backoff.delay(0, self._uniform))

    # --- the faults' tasks -----------------------------------------------------------------

    def _spawn(self, task: Callable[[], Awaitable[None]]) -> None:
        """Run ``task`` beside the link (once the link runs, if it does not yet)."""
        if self._side is not None:
            self._side.start_soon(task)
        else:
            self._queued.append(task)

    def _note(self, injection: Injection, what: str, **data: object) -> None:
        """Record, as a ``note`` event, what a fault did (or why it did nothing)."""
        note = Note(t=trio.current_time(), charger=self.identity, what=what,
                    data={"fault": injection.fault, "injection": injection.id, **data})
        self._spawn(functools.partial(self._publish, note))

    async def _end_half_open(self, injection: Injection) -> None:
        """At the end of a ``half_open`` fault, reset the connections it held (unless a later
        ``half_open`` goes on longer: its own end does it)."""
        assert injection.until is not None
        await trio.sleep_until(injection.until)
        later = self.chaos.half_open_until
        if later is not None and later > injection.until:
            return
        self.chaos.reset_streams()
        if self._connection is not None:
            self._connection.close_with(ABNORMAL_CLOSURE, "", "half-open connection reset (chaos)")

    async def _clash(self, injection: Injection) -> None:
        """``identity_clash``: a second connection with this charger's identity, through the
        same opener, kept until the fault's end; it only reads. Notes record whether the CSMS
        refused it, ended it (with which code and reason), or let it be."""
        now = trio.current_time()
        until = injection.until if injection.until is not None else now + DEFAULT_CLASH
        data: dict[str, object] = {"connection": "second", "first_open": self._connection
                                   is not None}
        self._clashes += 1
        try:
            async with self._open_transport(self.identity) as transport:
                await self._publish(self._clash_note(injection, event="opened", **data))
                frames = 0
                with trio.move_on_at(until):
                    try:
                        while True:
                            await transport.receive()
                            frames += 1
                    except TransportClosed as closed:
                        code = None if closed.code is None else int(closed.code)
                        data.update(event="ended", code=code,
                                    reason=closed.reason, frames=frames)
                if "event" not in data:
                    data.update(event="kept until the end", frames=frames)
                await transport.aclose()
                await self._close_lingering()  # (when a slow close held this one too)
        except ConnectError as exc:
            data.update(event="refused", error=str(exc))
        finally:
            self._clashes -= 1
        await self._publish(self._clash_note(injection, **data))

    def _clash_note(self, injection: Injection, **data: object) -> Note:
        return Note(t=trio.current_time(), charger=self.identity, what="identity_clash",
                    data={"injection": injection.id, **data})

    def _linger(self, stream: trio.abc.Stream, at: float) -> None:
        """A chaos stream closed during a ``slow_close``: its connection ends at ``at``."""
        self._lingering.append((stream, at))

    async def _close_lingering(self) -> None:
        """End the connections a ``slow_close`` holds, each at its time (all at once when
        cancelled)."""
        try:
            while self._lingering:
                stream, at = self._lingering[0]
                await trio.sleep_until(at)
                self._lingering.pop(0)
                await trio.aclose_forcefully(stream)
        finally:
            while self._lingering:
                await trio.aclose_forcefully(self._lingering.pop()[0])

    async def _report_down(self, connection: _Connection) -> None:
        """Tell the main loop that ``connection`` has ended (noted too during a clash)."""
        if self._clashes:
            await self._publish(Note(
                t=trio.current_time(), charger=self.identity, what="identity_clash",
                data={"connection": "first", "event": "closed",
                      "code": None if connection.code is None else int(connection.code),
                      "reason": connection.reason},
            ))
        await self._deliver(Down(connection.generation, connection.code, connection.reason))

    def _uniform(self, low: float, high: float) -> float:
        if self._rng is None:
            self._rng = seeds.derive(self._seed, self.identity, "reconnect")
        return self._rng.uniform(low, high)

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

    async def _read(self, connection: _Connection) -> None:
        """Every frame received goes to the main loop, until the connection ends."""
        try:
            while True:
                data = await connection.transport.receive()
                await self._deliver(Received(connection.generation, data))
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
                    if send is None:  # (drop after_queued: all before it is written)
                        connection.end(1000, CLOSED_BY_CHARGER)
                        break
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
                        left = connection.to_write.receive_nowait()
                        if left is not None:
                            unsent.append(left)
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                if unsent:
                    with trio.CancelScope(shield=True), \
                            trio.move_on_after(UNSENT_PUBLISH_TIMEOUT):
                        for send in unsent:
                            await self._publish(FrameUnsent(
                                t=trio.current_time(), charger=self.identity,
                                unique_id=send.unique_id, action=send.action,
                            ))
