"""The thin WebSocket client: the sans-IO ``ClientProtocol`` of the ``websockets`` package.

:func:`websockets_client` is a :data:`~simulator.actors.transport.WebSocketClient` for
:func:`~simulator.actors.transport.open_transport`, the fast option beside the default
trio-websocket client: it starts no task. :meth:`WebsocketsTransport.receive` reads the stream
and feeds the protocol in the caller's task, :meth:`WebsocketsTransport.send` writes the frame
in the caller's task. The frames that arrive in the same read as the handshake response are
kept and delivered first.

The protocol object answers pings and the peer's close frame by itself: every call that feeds
it or sends through it is followed, in the same synchronous step, by ``data_to_send()``, and
those bytes are written under one lock, so a pong or a close reply never interleaves with a
frame being sent. A connection that ends raises
:class:`~simulator.actors.transport.TransportClosed` with the peer's close code, 1006 when the
stream just went away, 1009 when a message was too big, 1002/1007 when the peer broke the
protocol.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Final

import trio
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus, InvalidURI
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import Event, State
from websockets.typing import BytesLike, Subprotocol
from websockets.uri import parse_uri

from simulator.actors.transport import (
    ABNORMAL_CLOSURE,
    DEFAULT_CLOSE_TIMEOUT,
    ConnectError,
    Handshake,
    TransportClosed,
    http_refusal,
    hung_up,
    refusal,
    wire_close,
)

RECEIVE_SIZE: Final = 64 * 1024
"""Bytes asked of the stream per read."""
INVALID_DATA: Final = 1007
STREAM_ERRORS: Final = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
"""What a stream that went away raises."""

_TEXT: Final = Opcode.TEXT
_BINARY: Final = Opcode.BINARY
_CONT: Final = Opcode.CONT


async def websockets_client(
    stream: trio.abc.Stream, handshake: Handshake, nursery: trio.Nursery
) -> WebsocketsTransport:
    """The opening handshake over ``stream`` with ``websockets``' ``ClientProtocol``; starts no
    task (``nursery`` is unused). The frames that came in the same read as the response are
    kept: they are the transport's first messages (pings among them are answered by the
    first ``receive``)."""
    url = handshake.endpoint.url
    try:
        uri = parse_uri(url)
    except InvalidURI as exc:
        raise ConnectError(f"{url}: not a ws:// or wss:// URL ({exc.msg})") from None
    protocol = ClientProtocol(uri, subprotocols=[Subprotocol(handshake.subprotocol)],
                              max_size=handshake.max_message_size)
    request = protocol.connect()
    for name, value in handshake.headers:
        request.headers[name.decode("ascii")] = value.decode("ascii")
    protocol.send_request(request)
    await stream.send_all(b"".join(protocol.data_to_send()))
    while protocol.state is State.CONNECTING:
        data = await stream.receive_some(RECEIVE_SIZE)
        if data:
            protocol.receive_data(bytes(data))
        else:
            protocol.receive_eof()  # completes a response whose body runs to the end
        failure = protocol.handshake_exc
        if isinstance(failure, InvalidStatus):
            raise http_refusal(url, failure.response.status_code)
        if failure is not None and data:
            raise refusal(handshake, failure)
        if not data:
            raise hung_up(handshake)
    pending = [event for event in protocol.events_received() if not isinstance(event, Response)]
    return WebsocketsTransport(stream, protocol, pending=pending)


class WebsocketsTransport:
    """:class:`~simulator.actors.transport.Transport` over a trio stream and a ``websockets``
    client protocol whose handshake has completed (see :func:`websockets_client`).

    Owns the stream: :meth:`aclose` closes it. ``pending`` holds the events that arrived with
    the handshake response; they are delivered first (pings among them answered then).
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: ClientProtocol,
        *,
        pending: Sequence[Event] = (),
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        self._stream = stream
        self._ws = protocol
        self._close_timeout = close_timeout
        self._write_lock = trio.Lock()  # frames, pongs and the close frame, one at a time
        self._closed: TransportClosed | None = None  # what every later call raises
        self._peer_closed = trio.Event()  # the peer's close frame (or end of stream) seen
        self._reading = False  # a task waits in receive for bytes
        self._stream_closed = False
        self._messages: deque[str | bytes] = deque()  # complete messages not handed out yet
        self._parts: list[BytesLike] = []  # the fragmented message being received
        self._binary = False  # the fragmented message started with a binary frame
        self._pending: list[Event] | None = list(pending)

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    async def send(self, data: str) -> None:
        """Send one text frame; raises ``TransportClosed`` if the connection is gone. A send
        cancelled before it writes writes nothing; one cancelled half way drops the stream."""
        if self._closed is not None:
            raise self._closed
        async with self._write_lock:
            if self._closed is not None:  # set while this task waited for the lock
                raise self._closed
            if self._ws.state is not State.OPEN:  # a close frame not read out by receive yet
                raise TransportClosed(ABNORMAL_CLOSURE, "connection closing")
            self._ws.send_text(data.encode())
            try:
                await self._send_bytes(_joined(self._ws.data_to_send()))
            except STREAM_ERRORS:
                raise self._lost() from None

    async def receive(self) -> str | bytes:
        """The next message: a text one as ``str``, a binary one as ``bytes``.

        Answers pings and the peer's close frame inline. Raises ``TransportClosed`` when the
        connection ends. Cancelling it while it waits for bytes loses nothing: a partly received
        message stays buffered in the protocol for the next call.
        """
        if self._pending is not None:  # what came with the handshake (it may have ended it)
            events, self._pending = self._pending, None
            await self._absorb(events, self._ws.data_to_send())
        while not self._messages:
            if self._closed is not None:
                raise self._closed
            self._reading = True
            try:
                data = await self._stream.receive_some(RECEIVE_SIZE)
            except STREAM_ERRORS:
                data = b""
            finally:
                self._reading = False
            if self._stream_closed:
                continue  # closed by aclose() (or a failed write) meanwhile: self._closed is set
            if data:
                self._ws.receive_data(bytes(data))
            else:
                self._ws.receive_eof()
            await self._absorb(self._ws.events_received(), self._ws.data_to_send())
        return self._messages.popleft()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (idempotent): send a close frame, wait at most
        ``close_timeout`` seconds for the peer's, close the stream. A task blocked in
        ``receive`` then gets ``TransportClosed(code, reason)``. Shielded from cancellation."""
        with trio.CancelScope(shield=True):
            if self._closed is None:
                self._closed = TransportClosed(code, reason)
            frame = None if self._stream_closed else self._close_frame(code, reason)
            if frame is not None:
                with trio.move_on_after(self._close_timeout):
                    await self._write(frame)
                    if self._reading:  # the reader sees the reply and sets the event
                        await self._peer_closed.wait()
                    else:
                        await self._drain_until_peer_close()
            await self._close_stream()

    async def _absorb(self, events: list[Event], writes: list[bytes]) -> None:
        """Turn frames into messages, write what the protocol answered (pongs, a close reply),
        and drop the stream once the connection has ended."""
        failed = False
        for event in events:
            if not isinstance(event, Frame):
                continue
            opcode = event.opcode
            if opcode is _TEXT or opcode is _BINARY:
                if event.fin:
                    failed = not self._add_message(event.data, binary=opcode is _BINARY)
                else:
                    self._parts, self._binary = [event.data], opcode is _BINARY
            elif opcode is _CONT:
                self._parts.append(event.data)
                if event.fin:
                    parts, self._parts = self._parts, []
                    failed = not self._add_message(b"".join(parts), binary=self._binary)
            # Pings were answered by the protocol (in ``writes``), pongs need nothing, and a
            # close frame shows in ``close_rcvd`` below.
            if failed:
                writes += self._ws.data_to_send()
                break
        ws = self._ws
        ended = failed or ws.close_rcvd is not None or ws.parser_exc is not None
        if ended and self._closed is None:
            if ws.close_rcvd is not None:
                self._closed = TransportClosed(ws.close_rcvd.code, ws.close_rcvd.reason)
            elif ws.close_sent is not None:  # we failed the connection (1002, 1007, 1009, ...)
                self._closed = TransportClosed(ws.close_sent.code, ws.close_sent.reason)
            else:  # end of stream without a close frame
                self._lost()
        if writes:
            await self._write(_joined(writes))
        if ended:
            self._peer_closed.set()
            await self._close_stream()

    def _add_message(self, raw: BytesLike, *, binary: bool) -> bool:
        """Queue one complete message (a binary one as ``bytes``, as it came); a text message
        that is not UTF-8 fails the connection with 1007 (and returns False), as RFC 6455 §8.1
        asks."""
        if binary:
            self._messages.append(bytes(raw))
            return True
        try:
            self._messages.append(str(raw, "utf-8"))
        except UnicodeDecodeError as exc:
            self._ws.fail(INVALID_DATA, f"invalid UTF-8 at position {exc.start}")
            return False
        return True

    def _close_frame(self, code: int, reason: str) -> bytes | None:
        """The close frame's bytes, or None when there is none to send (the connection is no
        longer open, or the code may not go on the wire)."""
        wire = wire_close(code, reason)
        if wire is None or self._ws.state is not State.OPEN:
            return None
        self._ws.send_close(*wire)
        return _joined(self._ws.data_to_send())

    async def _drain_until_peer_close(self) -> None:
        """Read (and drop) until the peer's close frame or the end of the stream; used by
        :meth:`aclose` when no task is reading."""
        while self._ws.close_rcvd is None and self._ws.parser_exc is None:
            try:
                data = await self._stream.receive_some(RECEIVE_SIZE)
            except STREAM_ERRORS:
                data = b""
            if data:
                self._ws.receive_data(bytes(data))
            else:
                self._ws.receive_eof()
            self._ws.events_received()  # messages after our close frame are dropped
            self._ws.data_to_send()  # pongs: not worth a write while closing
            if not data:
                break
        self._peer_closed.set()

    async def _write(self, data: bytes) -> None:
        """Write control bytes (a pong, a close frame); a broken stream shows up on the next
        read."""
        try:
            async with self._write_lock:
                await self._send_bytes(data)
        except STREAM_ERRORS:
            pass

    async def _send_bytes(self, data: bytes) -> None:
        """Write under the write lock. A write cancelled half way may have left part of a frame
        on the wire: the connection is then unusable, so the stream is dropped (1006)."""
        if self._stream_closed:
            raise trio.ClosedResourceError("the stream is closed")
        if not data:
            return
        try:
            await self._stream.send_all(data)
        except trio.Cancelled:
            self._lost()
            if not self._stream_closed:
                self._stream_closed = True
                await trio.aclose_forcefully(self._stream)
            raise

    def _lost(self) -> TransportClosed:
        """The connection went away without a close frame (1006), unless it had ended already."""
        if self._closed is None:
            self._closed = TransportClosed(ABNORMAL_CLOSURE, "connection lost")
        return self._closed

    async def _close_stream(self) -> None:
        """Close the stream; a TLS goodbye gets ``close_timeout`` seconds, then it is cut."""
        if not self._stream_closed:
            self._stream_closed = True
            with trio.CancelScope(shield=True), trio.move_on_after(self._close_timeout):
                await self._stream.aclose()


def _joined(writes: list[bytes]) -> bytes:
    """The protocol's pending writes as one chunk (an empty chunk is its request for a
    half-close, which closing the stream does anyway)."""
    return writes[0] if len(writes) == 1 else b"".join(writes)


__all__ = [
    "RECEIVE_SIZE",
    "WebsocketsTransport",
    "websockets_client",
]
