"""The chaos stream: transport faults applied to the bytes under a charger's WebSocket client.

Every stream a charger's connections run over (TCP, TLS, or a memory stream under virtual time)
is wrapped in a :class:`ChaosStream` made by the charger's :class:`TransportChaos`, which the
charger's link owns and changes (``simulator.actors.link``): the faults in force (``latency``
with jitter, ``bandwidth``, ``fragment``, the ``half_open`` hold), each until its end, and what
the link asked of the live streams (a reset, a lingering close). The wrapper only reads that
state, on every send and every receive, so a fault in force also shapes a connection opened
later in its window. With nothing in force a call costs one attribute check on top of the
wrapped stream's. Jittered delays are drawn from the charger's seeded ``chaos``/``transport``
stream.

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
import dataclasses
import math
import socket
import struct
from collections.abc import Callable
from typing import Final

import trio

from simulator import seeds
from simulator.actors.streams import StreamWrapper
from simulator.chaos.injection import Injection

PACING_SLICE: Final = 0.1
"""Seconds of bytes a bandwidth-limited write hands to the stream at a time."""
_RST_LINGER: Final = struct.pack("ii", 1, 0)
"""SO_LINGER on, zero seconds: closing the socket sends an RST instead of a FIN."""

CloseLater = Callable[[trio.abc.Stream, float], None]
"""``(stream, at)``: close ``stream`` at monotonic time ``at`` (the link's job)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Delay:
    """A latency: ``seconds`` ± ``jitter`` (uniform), until ``until``."""

    seconds: float
    jitter: float
    until: float


@dataclasses.dataclass(frozen=True, slots=True)
class Rate:
    """A bandwidth limit of ``bytes_per_second``, until ``until``."""

    bytes_per_second: int
    until: float


@dataclasses.dataclass(frozen=True, slots=True)
class Split:
    """Writes cut into pieces of ``size`` bytes, until ``until``."""

    size: int
    until: float


class TransportChaos:
    """The transport faults in force for one charger, and its live chaos streams.

    The link is the only writer: :meth:`apply` (latency, bandwidth, fragment, half_open),
    :meth:`reset_streams`, :meth:`linger_streams`, :attr:`close_later`. A fault replaces one of
    the same kind still in force. Ends are monotonic seconds (``math.inf``: until the run ends).
    ``active`` is False when nothing is in force and no live stream is marked: the streams then
    pass every call straight through.
    """

    __slots__ = ("_rng", "active", "close_later", "fragment", "half_open_until", "identity",
                 "receive_latency", "receive_rate", "seed", "send_latency", "send_rate",
                 "streams")

    def __init__(self, seed: int, identity: str) -> None:
        self.seed = seed
        self.identity = identity
        self.active = False
        self.send_latency: Delay | None = None
        self.receive_latency: Delay | None = None
        self.send_rate: Rate | None = None
        self.receive_rate: Rate | None = None
        self.fragment: Split | None = None
        self.half_open_until: float | None = None
        self.streams: list[ChaosStream] = []
        """The chaos streams not closed yet (few: a connection, an identity clash's)."""
        self.close_later: CloseLater | None = None
        """Set by the running link; without it a lingering stream is closed at once."""
        self._rng: seeds.Stream | None = None  # made on first use

    def wrap(self, stream: trio.abc.Stream) -> ChaosStream:
        """A chaos stream over ``stream`` (which it owns, as any :class:`StreamWrapper`)."""
        chaos = ChaosStream(stream, self)
        self.streams.append(chaos)
        return chaos

    def apply(self, injection: Injection, now: float) -> None:
        """Put ``latency``, ``bandwidth``, ``fragment`` or ``half_open`` in force from ``now``
        until ``injection.until`` (None: until the run ends). Raises ``ValueError`` for any
        other fault or a parameter it cannot use (nothing is changed then)."""
        params = injection.params
        until = math.inf if injection.until is None else injection.until
        directions = _directions(str(params.get("direction", "both")))
        match injection.fault:
            case "latency":
                delay = Delay(float(params.get("ms", 200.0)) / 1000,
                              float(params.get("jitter_ms", 0.0)) / 1000, until)
                if "send" in directions:
                    self.send_latency = delay
                if "receive" in directions:
                    self.receive_latency = delay
            case "bandwidth":
                rate = Rate(max(1, int(params.get("bytes_per_second", 2000))), until)
                if "send" in directions:
                    self.send_rate = rate
                if "receive" in directions:
                    self.receive_rate = rate
            case "fragment":
                self.fragment = Split(max(1, int(params.get("size", 8))), until)
            case "half_open":
                self.half_open_until = until
            case _:
                raise ValueError(f"the chaos stream does not apply the {injection.fault} fault")
        self.active = True
        self.refresh(now)

    def refresh(self, now: float) -> None:
        """Forget the faults that have ended by ``now``; ``active`` says whether anything is
        left to consult."""
        if self.send_latency is not None and self.send_latency.until <= now:
            self.send_latency = None
        if self.receive_latency is not None and self.receive_latency.until <= now:
            self.receive_latency = None
        if self.send_rate is not None and self.send_rate.until <= now:
            self.send_rate = None
        if self.receive_rate is not None and self.receive_rate.until <= now:
            self.receive_rate = None
        if self.fragment is not None and self.fragment.until <= now:
            self.fragment = None
        if self.half_open_until is not None and self.half_open_until <= now:
            self.half_open_until = None
        self.active = (
            self.send_latency is not None or self.receive_latency is not None
            or self.send_rate is not None or self.receive_rate is not None
            or self.fragment is not None or self.half_open_until is not None
            or any(stream.marked for stream in self.streams)
        )

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

    def delay(self, latency: Delay) -> float:
        """One delay of ``latency``, in seconds (never negative)."""
        if latency.jitter <= 0:
            return latency.seconds
        if self._rng is None:
            self._rng = seeds.derive(self.seed, self.identity, "chaos", "transport")
        return max(0.0, latency.seconds + self._rng.uniform(-latency.jitter, latency.jitter))


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


def _directions(direction: str) -> tuple[str, ...]:
    """The directions a ``direction`` parameter names; raises ``ValueError`` for another."""
    if direction not in ("both", "send", "receive"):
        raise ValueError(f'direction {direction!r}: use "both", "send" or "receive"')
    return ("send", "receive") if direction == "both" else (direction,)


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
    "Delay",
    "Rate",
    "Split",
    "TransportChaos",
]
