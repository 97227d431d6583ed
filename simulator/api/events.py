"""The control API: ``GET /api/events``, the bus's events as server-sent events.

Each client gets its own lossy subscription to the bus (:meth:`EventBus.subscribe_lossy`) for
as long as it is connected: the fleet never waits for a viewer. A client that reads slower than
the fleet publishes fills its buffer (``buffer`` events, a query parameter) and then misses
events; the bus counts them, and the client is told ``event: dropped`` with
``data: {"dropped": N}`` (N: events missed since the last such notice) once it has caught up,
or after every ``buffer`` events it reads while it stays behind.

Filters: ``kind=KIND[,KIND]`` names event kinds (the ledger's ``kind`` tags): the bus then never
puts any other kind into the client's channel (a dashboard that skips ``frame_in`` /
``frame_out`` costs the fleet no channel send per frame). ``charger=ID[,ID]`` keeps the events of
those chargers; it is applied as events leave the channel, so events of other chargers still use
(and, when the client falls behind, are counted in) its buffer. Unknown kinds or chargers are a
400 problem document.

Each event is ``event: <kind>`` and ``data: <the event as JSON, with its kind>``, as the bus
carries it but for ``t``, in seconds since the run started (events carry no secret). A
``: keep-alive`` comment goes out after :data:`KEEP_ALIVE` seconds without an event, so proxies
and browsers keep the connection. The stream ends when the client disconnects (the subscription
is closed and the bus unsubscribes it on its next publish), when the server stops, or when the
bus closes at the end of the run.

The response is Litestar's :class:`~litestar.response.Stream` with the event-stream media type
and the headers of its ``ServerSentEvent``: that class reads its header fields through a worker
thread (``sync_to_thread``) on every response, and the API runs no thread.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Collection
from typing import Annotated, Final

import msgspec
import trio
from litestar import get
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.params import Parameter
from litestar.response import Stream

from simulator.api.parts import ApiContext, ApiPart, provide
from simulator.api.problems import problem
from simulator.bus import EventBus, event_classes
from simulator.events import Event
from simulator.simulation import CommandError, Simulation

KEEP_ALIVE: Final = 15.0
"""Seconds without an event after which a ``: keep-alive`` comment is sent."""

DEFAULT_BUFFER: Final = 1000
"""Events a client's subscription holds before the bus drops (and counts) for it."""

MAX_BUFFER: Final = 100_000
"""The largest ``buffer`` a client may ask for."""

BATCH: Final = 256
"""At most this many buffered events are written to the client as one chunk."""

MEDIA_TYPE: Final = "text/event-stream"
HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""The headers Litestar's ``ServerSentEvent`` sets (no caching, no proxy buffering)."""

OPENING: Final = b": events\n\n"
"""The first bytes of every stream (a comment): the subscription exists from then on."""

KEEP_ALIVE_COMMENT: Final = b": keep-alive\n\n"

_encode = msgspec.json.Encoder().encode


def event_message(event: Event, t0: float) -> bytes:
    """One event as a server-sent event (``event:`` its kind, ``data:`` its JSON, with ``t``
    counted from ``t0``)."""
    kind = event.__struct_config__.tag
    data = _encode(msgspec.structs.replace(event, t=event.t - t0))
    return b"event: %s\ndata: %s\n\n" % (str(kind).encode(), data)


def dropped_message(dropped: int) -> bytes:
    """The notice that ``dropped`` events were missed since the last notice."""
    return b'event: dropped\ndata: {"dropped":%d}\n\n' % dropped


class Closing:
    """Tells every stream of an app to end cleanly (the run has finished): :meth:`close` wakes
    the streams waiting for an event, and each then returns, so its response ends with its last
    chunk instead of being cut when the server stops."""

    def __init__(self) -> None:
        self.closed = False
        self._waits: set[trio.CancelScope] = set()

    def close(self) -> None:
        self.closed = True
        for waiting in list(self._waits):
            waiting.cancel()

    def watch(self, waiting: trio.CancelScope) -> None:
        if self.closed:
            waiting.cancel()
        self._waits.add(waiting)

    def unwatch(self, waiting: trio.CancelScope) -> None:
        self._waits.discard(waiting)


async def stream_events(
    bus: EventBus, *, t0: float, name: str = "api events", buffer: int = DEFAULT_BUFFER,
    kinds: Collection[str] | None = None, chargers: Collection[str] | None = None,
    closing: Closing | None = None,
    keep_alive: float = KEEP_ALIVE,
) -> AsyncGenerator[bytes, None]:
    """A client's server-sent event stream of ``bus``, as chunks.

    Subscribes to ``bus`` when first iterated (a lossy subscriber called ``name``, with room
    for ``buffer`` events, getting only ``kinds``; None: every kind) and leaves when it ends: at
    the bus's end, when cancelled while it waits, or when closed (``aclose``); a stream never
    iterated never subscribes. Event times count from ``t0`` (the run's start, on the bus's
    clock). ``chargers`` keeps only those chargers' events (None: all). Starts with
    :data:`OPENING` (subscribed from then on); after ``keep_alive`` seconds without an event it
    yields :data:`KEEP_ALIVE_COMMENT`. Drops counted by the bus for this subscriber are reported
    (:func:`dropped_message`) once the channel is empty, and after every ``buffer`` events read
    while it is not. Raises ``ValueError`` for unknown ``kinds`` (at the first iteration); ends
    at once if the bus has closed, and once ``closing`` is closed.
    """
    try:
        receive = bus.subscribe_lossy(buffer, name, kinds=kinds)
    except trio.ClosedResourceError:
        return
    with receive:  # closed however the stream ends: the bus then unsubscribes it
        reported = 0
        since_report = 0
        yield OPENING
        while True:
            event: Event | None = None
            with trio.move_on_after(keep_alive) as waiting:
                if closing is not None:
                    closing.watch(waiting)
                try:
                    event = await receive.receive()
                except trio.EndOfChannel:
                    return
                finally:
                    if closing is not None:
                        closing.unwatch(waiting)
            if closing is not None and closing.closed:
                return
            if event is None:
                yield KEEP_ALIVE_COMMENT
                continue
            chunk: list[bytes] = []
            caught_up = False
            while True:
                if chargers is None or event.charger in chargers:
                    chunk.append(event_message(event, t0))
                since_report += 1
                if len(chunk) >= BATCH or since_report >= buffer:
                    break
                try:
                    event = receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    caught_up = True  # (end-of-channel: the next receive() says so)
                    break
            if caught_up or since_report >= buffer:
                since_report = 0
                dropped = bus.subscriber_statistics(receive).dropped
                if dropped > reported:
                    chunk.append(dropped_message(dropped - reported))
                    reported = dropped
            if chunk:
                yield b"".join(chunk)


def _split(text: str | None) -> list[str]:
    return [] if text is None else [item.strip() for item in text.split(",") if item.strip()]


DESCRIPTION: Final = (
    "Every event of the run as it happens: `event: <kind>`, `data: <the event as JSON>` (`t` in "
    "seconds since the run started). Filter with `kind` (event kinds, as in the ledger) and "
    "`charger`. The fleet never waits for a client: one that falls behind misses events and is "
    "told `event: dropped` with `data: {\"dropped\": N}` (missed since the last notice); "
    "`buffer` sets how many events it may fall behind first. A `: keep-alive` comment comes "
    "every 15 s without events. A browser's EventSource sends the token as `?access_token=`."
)
"""The route's description in the OpenAPI document."""


async def _close(stream: AsyncGenerator[bytes, None]) -> None:
    await stream.aclose()  # (a coroutine function: Litestar would run a method in a thread)


@get("/api/events", media_type=MEDIA_TYPE, summary="The live event stream (server-sent events)",
     description=DESCRIPTION)
async def events(
    sim: NamedDependency[Simulation],
    closing: NamedDependency[Closing],
    charger: Annotated[str | None, Parameter(
        description="Only these chargers' events (comma-separated ids)")] = None,
    kind: Annotated[str | None, Parameter(
        description="Only these kinds of events (comma-separated kind tags, such as "
                    "status,connected,crash)")] = None,
    buffer: Annotated[int, Parameter(
        ge=1, le=MAX_BUFFER,
        description="Events held for this client before it misses some")] = DEFAULT_BUFFER,
) -> Stream:
    """Server-sent events of the run's bus (see the module docstring)."""
    ids = _split(charger)
    if ids:
        try:
            sim.chargers(ids)
        except CommandError as exc:
            raise problem(400, f"charger filter: {exc}") from None
    kinds = _split(kind)
    if kinds:
        try:
            event_classes(kinds)
        except ValueError as exc:
            raise problem(400, f"kind filter: {exc}") from None
    name = "api events" + (f" kind={','.join(kinds)}" if kinds else "") \
        + (f" charger={','.join(ids)}" if ids else "")
    stream = stream_events(sim.bus, t0=sim.t0, name=name, buffer=buffer, kinds=kinds or None,
                           chargers=frozenset(ids) if ids else None, closing=closing)
    # The stream is closed after the response, however it ended: a client that left while the
    # stream waited to write (not while it waited for an event) would leave it suspended.
    return Stream(stream, media_type=MEDIA_TYPE, headers=HEADERS,
                  background=BackgroundTask(_close, stream))


def part(ctx: ApiContext) -> ApiPart:
    """This part's handlers: ``GET /api/events``; its streams end cleanly once the fleet has
    finished (:class:`Closing`)."""
    closing = Closing()

    async def close_when_finished() -> None:
        await ctx.sim.wait_finished()
        closing.close()

    return ApiPart(handlers=[events], dependencies={"closing": provide(closing)},
                   tasks=[close_when_finished])
