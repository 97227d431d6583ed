"""What the two thin WebSocket transports share: the socket under a sans-IO protocol.

:mod:`~simulator.actors.wsproto_transport` and :mod:`~simulator.actors.websockets_transport` each
feed a sans-IO WebSocket protocol (wsproto's, the ``websockets`` package's) from a trio stream in
the caller's own task. The protocol parts differ; the stream parts are the same and live here:

- :func:`open_stream`: TCP, then TLS for ``wss://`` (the TLS handshake first, so that a refused
  certificate is reported as such), with every failure one :class:`ConnectError` line;
- :class:`StreamTransport`: the socket side of a connection (the FIFO write lock, writes that a
  cancellation cannot leave half done, the bounded close, the "connection lost" state);
- :func:`connected`: the life of a connection for ``open_*_transport``, bounded handshake,
  ``ocpp1.6`` required, closed on the way out.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final, Protocol, TypeVar

import trio

from simulator.actors.sockets import READY_STREAK, RECEIVE_SIZE, DirectSocketStream
from simulator.actors.transport import (
    NOT_SENT,
    SENT,
    STARTED,
    SUBPROTOCOL,
    ConnectError,
    TransportClosed,
    root_cause,
)

DEFAULT_CLOSE_TIMEOUT: Final = 2.0
"""Seconds ``aclose`` waits for the peer's half of the closing handshake."""
MESSAGE_TOO_BIG: Final = 1009
ABNORMAL_CLOSURE: Final = 1006

STREAM_ERRORS: Final = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
"""What a socket that went away raises."""


async def open_stream(
    url: str, host: str, port: int, *, secure: bool, ssl_context: ssl.SSLContext | None
) -> trio.abc.Stream:
    """A TCP stream to ``host:port``, with its TLS handshake done when ``secure`` (the system
    store unless ``ssl_context``). Raises ``ConnectError`` naming ``url`` on failure."""
    try:
        tcp = await trio.open_tcp_stream(host, port)
    except OSError as exc:
        raise ConnectError(f"{url}: {root_cause(exc)}") from None
    if not secure:
        return DirectSocketStream(tcp)
    tls = trio.SSLStream(tcp, ssl_context or ssl.create_default_context(),
                         server_hostname=host, https_compatible=True)
    try:
        await tls.do_handshake()
    except BaseException as exc:
        await trio.aclose_forcefully(tls)
        if isinstance(exc, (trio.BrokenResourceError, OSError)):
            raise ConnectError(f"{url}: {root_cause(exc)}") from None
        raise
    return tls


class StreamTransport:
    """The socket side of a thin transport; subclasses add the protocol.

    ``_closed`` is the ``TransportClosed`` every later call raises once the connection has ended;
    ``_peer_closed`` is set once the peer's close frame (or the end of the stream) has been seen;
    ``_reading`` is true while the reader waits for bytes.
    """

    def __init__(self, stream: trio.abc.Stream, close_timeout: float) -> None:
        self._stream = stream
        self._close_timeout = close_timeout
        # FIFO, cheaper than a Lock, and with no owner: a frame send_nowait started is
        # finished (and the lock released) by whichever task calls flush
        self._write_lock = trio.Semaphore(1, max_value=1)
        self._closed: TransportClosed | None = None
        self._peer_closed = trio.Event()
        self._reading = False
        self._stream_closed = False
        self._tail = b""  # the rest of the frame send_nowait started (it holds the lock)

    def _encode_text(self, data: str) -> bytes:
        """The wire bytes of a text frame of ``data`` (the protocol counts it as sent); raises
        ``TransportClosed`` once the connection is no longer open."""
        raise NotImplementedError

    async def send(self, data: str) -> None:
        """Send one text frame; raises ``TransportClosed`` if the connection is gone."""
        if self._closed is not None:
            raise self._closed
        await self._acquire_write_lock()
        try:
            if self._closed is not None:  # set while this task waited for the lock
                raise self._closed
            payload = self._encode_text(data)
            try:
                await self._send_bytes(payload)
            except STREAM_ERRORS:
                raise self._lost() from None
        finally:
            self._write_lock.release()

    def send_nowait(self, data: str) -> int:
        """Write one text frame now if the write lock is free (``SENT``), else ``NOT_SENT``;
        ``STARTED`` when the socket took only part of it: the write lock stays taken until
        :meth:`flush` has written the rest. Raises ``TransportClosed`` if the connection is
        gone. Not a cancellation point."""
        if self._closed is not None:
            raise self._closed
        stream = self._stream
        if not self._write_lock.value or self._stream_closed \
                or not isinstance(stream, DirectSocketStream):
            return NOT_SENT
        payload = self._encode_text(data)
        try:
            sent = stream.send_nowait(payload)
        except STREAM_ERRORS:
            raise self._lost() from None
        if sent == len(payload):
            return SENT
        self._write_lock.acquire_nowait()
        self._tail = payload[sent:]
        return STARTED

    async def flush(self) -> None:
        """Write the rest of the frame :meth:`send_nowait` started, then release the write
        lock; raises ``TransportClosed`` if the connection is gone."""
        if not self._tail:
            return
        tail, self._tail = self._tail, b""
        try:
            await self._send_bytes(tail)
        except STREAM_ERRORS:
            raise self._lost() from None
        finally:
            self._write_lock.release()

    async def _acquire_write_lock(self) -> None:
        """Take the write lock for a frame of the caller's: a cancelled caller writes nothing,
        and a free lock is taken without a trip through the scheduler (the usual case)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self._write_lock.acquire_nowait()
        except trio.WouldBlock:
            await self._write_lock.acquire()

    async def _send_bytes(self, data: bytes) -> None:
        """Write under the write lock. A cancelled write may have left half a frame on the wire:
        the connection is then unusable, so it is dropped (1006)."""
        if self._stream_closed:
            raise trio.ClosedResourceError("the socket is closed")
        if not data:
            return
        stream = self._stream
        if isinstance(stream, DirectSocketStream):  # a frame fits the socket buffer: written
            sent = stream.send_nowait(data)  # without a coroutine (the callers checked for
            if sent == len(data):  # cancellation before they built it)
                return
            data = data[sent:]
        try:
            await stream.send_all(data)
        except trio.Cancelled:
            self._lost()
            if not self._stream_closed:
                self._stream_closed = True
                await trio.aclose_forcefully(self._stream)
            raise

    async def _write(self, data: bytes) -> None:
        """Write control bytes (a pong, a close frame); a broken socket shows up on the next
        read."""
        try:
            async with self._write_lock:
                await self._send_bytes(data)
        except STREAM_ERRORS:
            pass

    def _close_frame(self, code: int, reason: str) -> bytes | None:
        """The protocol's close frame for ``code``/``reason``, or None when there is none to
        send (the connection is no longer open, or the code may not go on the wire)."""
        raise NotImplementedError

    async def _drain_until_peer_close(self) -> None:
        """Read (and drop) until the peer's close frame or the end of the stream, then set
        ``_peer_closed``; used by :meth:`aclose` when no task is reading."""
        raise NotImplementedError

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (idempotent): send a close frame, wait at most ``close_timeout``
        seconds for the peer's, close the socket. A task blocked in ``receive`` then gets
        ``TransportClosed(code, reason)``. Safe to call from a cancelled scope (it shields)."""
        with trio.CancelScope(shield=True):
            if self._closed is None:
                self._closed = TransportClosed(code, reason)
            # A frame half written (its flush never came) leaves no room for a close frame.
            frame = None if self._stream_closed or self._tail else self._close_frame(code, reason)
            if frame is not None:
                with trio.move_on_after(self._close_timeout):
                    await self._write(frame)
                    if self._reading:  # the reader sees the reply and sets the event
                        await self._peer_closed.wait()
                    else:
                        await self._drain_until_peer_close()
            await self._close_stream()

    def _lost(self) -> TransportClosed:
        """The connection went away without a close frame (1006), unless it had ended already."""
        if self._closed is None:
            self._closed = TransportClosed(ABNORMAL_CLOSURE, "connection lost")
        return self._closed

    async def _close_stream(self) -> None:
        """Close the socket; a TLS goodbye gets ``close_timeout`` seconds, then it is cut."""
        if not self._stream_closed:
            self._stream_closed = True
            with trio.CancelScope(shield=True), trio.move_on_after(self._close_timeout):
                await self._stream.aclose()


class _Closable(Protocol):
    @property
    def subprotocol(self) -> str | None: ...

    async def aclose(self, code: int = 1000, reason: str = "") -> None: ...


T = TypeVar("T", bound=_Closable)


@asynccontextmanager
async def connected(
    url: str, connect_timeout: float, connect: Callable[[], Awaitable[T]]
) -> AsyncIterator[T]:
    """Open a connection with ``connect()`` (TCP, TLS and the handshake, all within
    ``connect_timeout`` seconds), require ``ocpp1.6``, yield it, close it on the way out (also
    by cancellation, with code 1000)."""
    with trio.move_on_after(connect_timeout) as timeout:
        transport = await connect()
    if timeout.cancelled_caught:
        raise ConnectError(f"{url}: no handshake within {connect_timeout:g} s")
    try:
        if transport.subprotocol != SUBPROTOCOL:
            raise ConnectError(
                f"{url}: the server did not select subprotocol {SUBPROTOCOL!r} "
                f"(it answered {transport.subprotocol!r})"
            )
        yield transport
    finally:
        await transport.aclose()


__all__ = [
    "ABNORMAL_CLOSURE",
    "DEFAULT_CLOSE_TIMEOUT",
    "MESSAGE_TOO_BIG",
    "READY_STREAK",
    "RECEIVE_SIZE",
    "STREAM_ERRORS",
    "DirectSocketStream",
    "StreamTransport",
    "connected",
    "open_stream",
]
