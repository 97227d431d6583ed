"""The chaos stream: transport faults applied to the bytes under a charger's WebSocket client.

Every stream a charger's connections run over (TCP, TLS, or a memory stream under virtual time)
is wrapped in a :class:`ChaosStream` made by the charger's :class:`TransportChaos`, which the
charger's link owns and changes (``simulator.actors.link``): the faults in force (``latency``
with jitter, ``bandwidth``, ``fragment``, the ``half_open`` hold), each until its end, and what
the link asked of the live streams (a reset, a lingering close). Which faults are in force and
the seeded draws of jittered delays are pure (:class:`simulator.chaos.transport.TransportFaults`,
which :class:`TransportChaos` extends with the live streams). The wrapper only reads that state,
on every send and every receive, so a fault in force also shapes a connection opened later in its
window. With nothing in force a call costs one attribute check on top of the wrapped stream's.

What each fault does on the wire:

- latency: each write goes out ``ms`` (± ``jitter_ms``, uniform) after the client made it; each
  read reaches the client that much after the bytes arrived ("send", "receive" or "both"
  directions). Calls in one direction stay in order, each waiting for the one before: a burst
  pays the delay once per write (OCPP-J keeps one CALL in flight, so bursts are rare).
- bandwidth: ``bytes_per_second`` in each chosen direction; a write of N bytes is paced out in
  pieces of about a tenth of a second's worth, its last byte leaving N / rate seconds after the
  line was free; reads are paced the same way.
- fragment: every write is split into writes of ``size`` bytes.
- half_open: nothing is read or written (no pong, no frame: the calls wait) until the link
  resets the stream at the fault's end.
- reset: writes and reads fail with ``trio.BrokenResourceError``; closing sends no goodbye (no
  close frame, no TLS close_notify) and, over TCP, aborts the socket with an RST.
- a lingering close (``slow_close``): closing the stream returns at once, but the connection
  under it is ended only at the given time, by the link.
"""

from __future__ import annotations

import contextlib
import math
import socket
import struct
from collections.abc import Callable
from typing import Final

import trio

from simulator.actors.streams import StreamWrapper
from simulator.chaos.transport import TransportFaults

PACING_SLICE: Final = 0.1
"""Seconds of bytes a bandwidth-limited write hands to the stream at a time."""
_RST_LINGER: Final = struct.pack("ii", 1, 0)
"""SO_LINGER on, zero seconds: closing the socket sends an RST instead of a FIN."""

CloseLater = Callable[[trio.abc.Stream, float], None]
"""``(stream, at)``: close ``stream`` at monotonic time ``at`` (the link's job)."""


class TransportChaos(TransportFaults):
    """The transport faults in force for one charger (:class:`TransportFaults`), and its live
    chaos streams.

    The link is the only writer: :meth:`apply` (latency, bandwidth, fragment, half_open),
    :meth:`reset_streams`, :meth:`linger_streams`, :attr:`close_later`. ``active`` is also True
    while a live stream is marked (reset, lingering, closed).
    """

    __slots__ = ("close_later", "streams")

    def __init__(self, seed: int, identity: str) -> None:
        super().__init__(seed, identity)
        self.streams: list[ChaosStream] = []
        """The chaos streams not closed yet (few: a connection, an identity clash's)."""
        self.close_later: CloseLater | None = None
        """Set by the running link; without it a lingering stream is closed at once."""

    def wrap(self, stream: trio.abc.Stream) -> ChaosStream:
        """A chaos stream over ``stream`` (which it owns, as any :class:`StreamWrapper`)."""
        chaos = ChaosStream(stream, self)
        self.streams.append(chaos)
        return chaos

    def refresh(self, now: float) -> None:
        """Forget the faults that have ended by ``now`` (:meth:`TransportFaults.refresh`);
        ``active`` stays True while a live stream is marked."""
        super().refresh(now)
        self.active = self.active or any(stream.marked for stream in self.streams)

    def reset_streams(self) -> int:
        """Mark every live stream reset (see the module docstring); returns how many."""
        for stream in self.streams:
            stream.reset()
        self.active = self.active or bool(self.streams)
        return len(self.streams)

    def linger_streams(self, until: float) -> int:
        """Have every live stream's connection ended only at ``until`` once the stream is
        closed; returns how many."""
        for stream in self.streams:
            stream.linger_until = until
        self.active = self.active or bool(self.streams)
        return len(self.streams)


class ChaosStream(StreamWrapper):
    """A stream shaped by a :class:`TransportChaos` (see the module docstring); made by
    :meth:`TransportChaos.wrap`.

    Every wait it adds is cancellable. Closing it also forgets it in its state.
    """

    __slots__ = ("_broken", "_chaos", "_closed", "_receive_free", "_send_free", "_woken",
                 "linger_until")

    def __init__(self, inner: trio.abc.Stream, chaos: TransportChaos) -> None:
        super().__init__(inner)
        self._chaos = chaos
        self.linger_until: float | None = None
        """Set by :meth:`TransportChaos.linger_streams`."""
        self._broken = False
        self._closed = False
        self._woken: trio.Event | None = None  # set by reset: ends a half-open hold
        self._send_free = -math.inf  # when the paced line is free again, per direction
        self._receive_free = -math.inf

    @property
    def marked(self) -> bool:
        """Reset, lingering or closed: every call must look at it."""
        return self._broken or self._closed or self.linger_until is not None

    def reset(self) -> None:
        """End the connection abruptly (see the module docstring); wakes a half-open hold."""
        self._broken = True
        if self._woken is not None:
            self._woken.set()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if not self._chaos.active:
            await self.inner.send_all(data)
            return
        chaos = self._chaos
        chaos.refresh(trio.current_time())
        await self._pass()
        latency = chaos.send_latency
        if latency is not None:
            await trio.sleep(chaos.delay(latency))
        rate, split = chaos.send_rate, chaos.fragment
        piece = len(data) or 1
        if split is not None:
            piece = split.size
        if rate is not None:
            piece = min(piece, max(1, int(rate.bytes_per_second * PACING_SLICE)))
        view = memoryview(data)
        for start in range(0, max(len(data), 1), piece):
            chunk = view[start:start + piece]
            if rate is not None:
                self._send_free = (max(self._send_free, trio.current_time())
                                   + len(chunk) / rate.bytes_per_second)
                await trio.sleep_until(self._send_free)
            await self._pass()
            await self.inner.send_all(chunk)

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        chaos = self._chaos
        if chaos.active:
            chaos.refresh(trio.current_time())
            await self._pass()
            rate = chaos.receive_rate
            if rate is not None:
                piece = max(1, int(rate.bytes_per_second * PACING_SLICE))
                max_bytes = piece if max_bytes is None else min(max_bytes, piece)
        data = await self.inner.receive_some(max_bytes)
        if chaos.active:  # (also when a fault came while this call waited for the bytes)
            await self._shape_received(data)
        return data

    async def _shape_received(self, data: bytes | bytearray) -> None:
        """Hold ``data`` back from the client as the faults in force say."""
        chaos = self._chaos
        chaos.refresh(trio.current_time())
        await self._pass()
        latency = chaos.receive_latency
        if latency is not None:
            await trio.sleep(chaos.delay(latency))
        rate = chaos.receive_rate
        if rate is not None and data:
            self._receive_free = (max(self._receive_free, trio.current_time())
                                  + len(data) / rate.bytes_per_second)
            await trio.sleep_until(self._receive_free)
        await self._pass()

    async def aclose(self) -> None:
        """Close: at once, with an abort for a reset stream; a lingering stream's connection is
        handed to the link to end at ``linger_until`` (closed now when no link runs)."""
        chaos = self._chaos
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        if self in chaos.streams:
            chaos.streams.remove(self)
        chaos.refresh(trio.current_time())
        if self._broken:
            _abort(self.inner)
            await trio.aclose_forcefully(self.inner)
        elif self.linger_until is not None and chaos.close_later is not None:
            chaos.close_later(self.inner, self.linger_until)
            await trio.lowlevel.checkpoint()
        else:
            await self.inner.aclose()

    async def _pass(self) -> None:
        """Raise for a reset or closed stream; wait out a half-open hold (until the link resets
        the stream)."""
        if self._broken:
            raise trio.BrokenResourceError("the connection was reset (chaos: reset)")
        if self._closed:
            raise trio.ClosedResourceError("the stream was closed")
        if self._chaos.half_open_until is not None:
            if self._woken is None:
                self._woken = trio.Event()
            await self._woken.wait()
            raise trio.BrokenResourceError("the half-open connection was reset (chaos)")


def _abort(stream: trio.abc.Stream) -> None:
    """Make closing ``stream`` abort its TCP connection (an RST), when a socket is under it."""
    while True:
        if isinstance(stream, trio.SocketStream):
            with contextlib.suppress(OSError):  # already closed: nothing left to abort
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_LINGER)
            return
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        elif isinstance(stream, StreamWrapper):
            stream = stream.inner
        else:
            return


__all__ = [
    "PACING_SLICE",
    "ChaosStream",
    "CloseLater",
    "TransportChaos",
]
