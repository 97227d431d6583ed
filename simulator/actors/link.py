"""A charger's link to its CSMS: one task that keeps it connected, and per connection a reader
and a writer.

The link never touches the charger's machine. It tells the charger's main loop what happens
through ``deliver`` (the main loop's inbox): :class:`Up` when a connection is open, every frame
received as :class:`Received`, :class:`Down` when the connection has ended, each tagged with the
connection's ``generation`` so that the main loop ignores what belongs to a connection it no
longer knows. The main loop acts on the link only through :meth:`Link.hand_over` (a frame to
write), :meth:`Link.drop` and :meth:`Link.hurry`; none of them waits.

Per connection (opened by ``open_transport``, which owns the stream and the WebSocket client):

- the reader is the link's own task: every frame received goes to ``deliver``, which waits while
  the inbox is full (backpressure: the socket is not read meanwhile, nothing is dropped);
- the writer writes, in order, the frames the main loop hands over through a bounded channel
  (:data:`OUTGOING_SIZE`). The main loop never waits on it: when a connection's writes stall
  until that channel is full, the connection is ended (as a TCP stack gives up on a peer that
  does not read), and the frames that were handed over but never written are published as
  ``frame_unsent`` events.

A failed connect is published (``connect_failed``) and retried after a delay with full jitter
(:class:`Backoff`, drawn from the charger's seeded ``reconnect`` stream); a connection that ended
is reopened after a jittered delay of one base period.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Final

import trio

from simulator import seeds
from simulator.actors.transport import ConnectError, Transport, TransportClosed
from simulator.chaos.injection import Injection
from simulator.events import ConnectFailed, Event, FrameUnsent
from simulator.machines.effects import Send

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


LinkEvent = Up | Down | Received
"""What the link delivers to the main loop."""


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


class Link:
    """The link of the charger ``identity`` (see the module docstring).

    ``deliver`` hands a :class:`LinkEvent` to the main loop (and may wait); ``publish`` sends an
    event to the bus. :meth:`run` is the link's task; the other methods are for the main loop.
    """

    def __init__(
        self, *, identity: str, url: str, seed: int, open_transport: TransportOpener,
        deliver: Callable[[LinkEvent], Awaitable[None]],
        publish: Callable[[Event], Awaitable[None]], backoff: Backoff,
    ) -> None:
        self.identity = identity
        self.url = url
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

    def drop(self, *, hold_until: float | None = None) -> None:
        """Close the current connection (if any); reconnect not before ``hold_until``. (The
        machine has said why, in its own events.)"""
        if hold_until is not None:
            self._hold_until = hold_until
        if self._connection is not None:
            self._connection.end(1000, CLOSED_BY_CHARGER)

    def inject(self, injection: Injection, now: float) -> None:
        """Apply a transport fault: ``disconnect`` closes the connection cleanly (1000) and the
        link reconnects as after any drop; ``partition`` closes it and stays offline until the
        fault's ``until``; ``reconnect_storm`` closes it and reconnects at exactly ``until``
        (or ``params["at"]``), with no jitter, like every charger in the storm."""
        match injection.fault:
            case "disconnect":
                self.drop()
            case "partition" | "reconnect_storm":
                self.drop(hold_until=injection.until if injection.until is not None else now)
                if self._wake is not None:  # offline, waiting out a backoff: wait for `until`
                    self._wake.set()
            case _:
                raise ValueError(f"the link does not apply the {injection.fault} fault")

    def hurry(self) -> None:
        """The run is ending: stop waiting out the backoff, retry every :data:`URGENT_RETRY`
        seconds so that queued messages get their chance within the grace period."""
        self._urgent = True
        if self._wake is not None:
            self._wake.set()

    # --- the link's task -------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the charger connected: connect, run the connection's reader and writer until it
        ends, report it, reconnect with backoff. Runs until cancelled."""
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
                await self._deliver(Down(connection.generation, connection.code,
                                         connection.reason))
            except ConnectError as exc:
                attempt += 1
                delay = self._backoff.delay(attempt, self._uniform)
                await self._publish(
                    ConnectFailed(
                        t=trio.current_time(), charger=self.identity, url=self.url,
                        error=str(exc), attempt=attempt, retry_in=round(delay, 3),
                    )
                )
                await self._wait_retry(delay)
                continue
            if trio.current_time() < self._hold_until:
                continue  # held offline (a reboot, a partition): back exactly then, no jitter
            # A dropped connection: come back soon, but spread (full jitter over one base
            # period).
            await self._wait_retry(self._backoff.delay(0, self._uniform))

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
                            await self._publish(FrameUnsent(
                                t=trio.current_time(), charger=self.identity,
                                unique_id=send.unique_id, action=send.action,
                            ))
