"""A thinner WebSocket transport on the sans-IO ``ClientProtocol`` of the ``websockets`` package.

:func:`open_websockets_transport` has the signature and the error behaviour of
:func:`~simulator.actors.wsproto_transport.open_wsproto_transport` and, like it, spawns nothing:
:meth:`WebsocketsTransport.receive` reads the stream and feeds the protocol in the caller's task,
and :meth:`WebsocketsTransport.send` writes the frame directly. The difference is the protocol
layer: ``websockets`` parses with less machinery and masks with C speedups, so its share of an
exchange is about a third of wsproto's (issue #4, "a thinner layer").

The protocol object answers pings and the peer's close frame by itself: every call that feeds it
or sends through it is followed, in the same synchronous step, by ``data_to_send()``, and those
bytes are written under a FIFO lock, so a pong or a close reply never interleaves with a frame the
charger's main loop is writing. Reads are not locked: one task reads (the charger's reader), as the
:class:`~simulator.actors.transport.Transport` contract says.

Errors the user can cause raise :class:`~simulator.actors.transport.ConnectError` with one line
naming the URL; a connection that ends raises
:class:`~simulator.actors.transport.TransportClosed` (with the peer's close code, 1006 when the
socket just went away, 1009 when a message was too big, 1002/1007 when the peer broke the
protocol).
"""

from __future__ import annotations

import functools
import ssl
from collections import deque
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Final

import trio
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus, InvalidURI, NegotiationError, ProtocolError
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import Event, State
from websockets.typing import BytesLike, Subprotocol
from websockets.uri import WebSocketURI, parse_uri

from simulator.actors.sansio_transport import (
    ABNORMAL_CLOSURE,
    DEFAULT_CLOSE_TIMEOUT,
    RECEIVE_SIZE,
    STREAM_ERRORS,
    StreamTransport,
    connected,
    open_stream,
)
from simulator.actors.transport import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    SUBPROTOCOL,
    ConnectError,
    TransportClosed,
    basic_auth_header,
    charger_url,
    root_cause,
)

INVALID_DATA: Final = 1007
MAX_CLOSE_REASON: Final = 123
"""Bytes of close reason that fit in a control frame (125 minus the code)."""

_TEXT: Final = Opcode.TEXT
_BINARY: Final = Opcode.BINARY
_CONT: Final = Opcode.CONT


class WebsocketsTransport(StreamTransport):
    """:class:`~simulator.actors.transport.Transport` over a trio stream and a ``websockets``
    client protocol whose handshake has completed (see :func:`open_websockets_transport`).

    The transport owns the stream: :meth:`aclose` closes it. ``pending`` holds the frames that
    arrived with the handshake response; they are delivered first. One task may call
    :meth:`receive` at a time; any task may call :meth:`send`.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: ClientProtocol,
        *,
        pending: Sequence[Event] = (),
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        super().__init__(stream, close_timeout)
        self._ws = protocol
        self._messages: deque[str] = deque()  # complete messages not handed out yet
        self._parts: list[BytesLike] = []  # the fragmented message being received
        self._binary = False  # the fragmented message started with a binary frame
        self._pending: list[Event] | None = list(pending)

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    def _encode_text(self, data: str) -> bytes:
        if self._ws.state is not State.OPEN:  # a close frame not read out by receive yet
            raise TransportClosed(ABNORMAL_CLOSURE, "connection closing")
        self._ws.send_text(data.encode())
        return _joined(self._ws.data_to_send())

    async def receive(self) -> str:
        """The next text message (a binary one is decoded as UTF-8 with replacement).

        Answers pings and the peer's close frame inline. Raises ``TransportClosed`` when the
        connection ends. Cancelling it while it waits for bytes loses nothing: a partly received
        message stays buffered in the protocol for the next call.
        """
        if self._pending is not None:  # what came with the handshake (it may have ended it)
            events, self._pending = self._pending, None
            await self._absorb(events, [])
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
                self._ws.receive_data(data)
            else:
                self._ws.receive_eof()
            await self._absorb(self._ws.events_received(), self._ws.data_to_send())
        return self._messages.popleft()

    async def _absorb(self, events: list[Event], writes: list[bytes]) -> None:
        """Turn frames into messages, write what the protocol answered (pongs, a close reply),
        and drop the socket once the connection has ended."""
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
        """Queue one complete message; a text message that is not UTF-8 fails the connection
        with 1007 (and returns False), as RFC 6455 §8.1 asks."""
        if binary:
            # OCPP-J frames are text; a binary frame still gets parsed (and rejected) upstream.
            self._messages.append(str(raw, "utf-8", "replace"))
            return True
        try:
            self._messages.append(str(raw, "utf-8"))
        except UnicodeDecodeError as exc:
            self._ws.fail(INVALID_DATA, f"invalid UTF-8 at position {exc.start}")
            return False
        return True

    def _close_frame(self, code: int, reason: str) -> bytes | None:
        """A code that may not go on the wire (1005, 1006, ...) drops the socket without a
        close frame; a reason longer than a control frame allows is cut."""
        if self._ws.state is not State.OPEN:
            return None
        try:
            self._ws.send_close(code, _cut(reason))
        except ProtocolError:  # not a code for the wire: an abnormal close
            return None
        return _joined(self._ws.data_to_send())

    async def _drain_until_peer_close(self) -> None:
        while self._ws.close_rcvd is None and self._ws.parser_exc is None:
            try:
                data = await self._stream.receive_some(RECEIVE_SIZE)
            except STREAM_ERRORS:
                data = b""
            if data:
                self._ws.receive_data(data)
            else:
                self._ws.receive_eof()
            self._ws.events_received()  # messages after our close frame are dropped
            self._ws.data_to_send()  # pongs: not worth a write while closing
            if not data:
                break
        self._peer_closed.set()


def _joined(writes: list[bytes]) -> bytes:
    """The protocol's pending writes as one chunk (an empty chunk is its request for a
    half-close, which closing the socket does anyway)."""
    return writes[0] if len(writes) == 1 else b"".join(writes)


def _cut(reason: str) -> str:
    encoded = reason.encode()
    if len(encoded) <= MAX_CLOSE_REASON:
        return reason
    return encoded[:MAX_CLOSE_REASON].decode(errors="ignore")


def open_websockets_transport(
    base_url: str,
    identity: str,
    *,
    password: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> AbstractAsyncContextManager[WebsocketsTransport]:
    """Connect ``identity`` to ``base_url`` and yield the transport; close it on exit.

    Raises ``ConnectError`` when the server is unreachable, refuses the handshake (the line names
    the HTTP status), times out (``connect_timeout`` seconds for TCP, TLS and the handshake), or
    does not select ``ocpp1.6``. Incoming messages over ``max_message_size`` bytes close the
    connection with 1009. No task is started: the connection lives exactly as long as the
    ``async with`` body, and leaving the body (also by cancellation) closes it with code 1000
    within :data:`~simulator.actors.sansio_transport.DEFAULT_CLOSE_TIMEOUT` seconds.
    """
    url = charger_url(base_url, identity)
    headers = [basic_auth_header(identity, password)] if password is not None else []
    return connected(url, connect_timeout, functools.partial(
        _connect, url, headers, ssl_context, max_message_size))


def _parse_url(url: str) -> WebSocketURI:
    try:
        return parse_uri(url)
    except InvalidURI as exc:
        raise ConnectError(f"{url}: not a ws:// or wss:// URL ({exc.msg})") from None
    except ValueError:  # urllib: a port that is not a number or out of range
        raise ConnectError(f"{url}: bad port") from None


async def _connect(
    url: str,
    headers: list[tuple[bytes, bytes]],
    ssl_context: ssl.SSLContext | None,
    max_message_size: int,
) -> WebsocketsTransport:
    """TCP (and TLS for wss), then the client handshake; ``ConnectError`` on any failure. The
    frames that came with the handshake response are the transport's first messages."""
    uri = _parse_url(url)
    stream = await open_stream(url, uri.host, uri.port, secure=uri.secure,
                               ssl_context=ssl_context)
    try:
        protocol = ClientProtocol(
            uri, subprotocols=[Subprotocol(SUBPROTOCOL)], max_size=max_message_size
        )
        request = protocol.connect()
        for name, value in headers:
            request.headers[name.decode("ascii")] = value.decode("ascii")
        protocol.send_request(request)
        await stream.send_all(b"".join(protocol.data_to_send()))
        pending = await _wait_for_accept(url, stream, protocol)
    except BaseException as exc:
        await trio.aclose_forcefully(stream)
        if isinstance(exc, (trio.BrokenResourceError, OSError)):
            raise ConnectError(f"{url}: {root_cause(exc)}") from None
        raise
    return WebsocketsTransport(stream, protocol, pending=pending)


async def _wait_for_accept(
    url: str, stream: trio.abc.Stream, protocol: ClientProtocol
) -> list[Event]:
    """Read until the server accepts (→ the frames that followed its response, pongs written)
    or refuses (→ ``ConnectError``)."""
    while protocol.state is State.CONNECTING:
        data = await stream.receive_some(RECEIVE_SIZE)
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()  # completes a response whose body runs to the end
        if isinstance(protocol.handshake_exc, InvalidStatus) or (
            data and protocol.handshake_exc is not None
        ):
            raise ConnectError(f"{url}: {_refusal(protocol.handshake_exc)}")
        if not data:
            raise ConnectError(f"{url}: the server closed the connection during the handshake")
    events: list[Event] = [
        event for event in protocol.events_received() if not isinstance(event, Response)
    ]
    writes = b"".join(protocol.data_to_send())
    if writes:  # pongs for pings that came with the response
        await stream.send_all(writes)
    return events


def _refusal(exc: Exception) -> str:
    """One line for a handshake the server answered but did not accept."""
    if isinstance(exc, InvalidStatus):
        return f"handshake refused with HTTP {exc.response.status_code}"
    if isinstance(exc, NegotiationError) and "subprotocol" in str(exc):
        return f"the server did not select subprotocol {SUBPROTOCOL!r} ({exc})"
    return f"bad handshake response ({root_cause(exc)})"


__all__ = [
    "WebsocketsTransport",
    "open_websockets_transport",
]
