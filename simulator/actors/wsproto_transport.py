"""A thinner WebSocket transport: sans-IO wsproto fed inline, no task per connection.

:func:`open_wsproto_transport` has the signature and the error behaviour of
:func:`~simulator.actors.transport.open_websocket_transport` (trio-websocket, the default), but
spawns nothing: :meth:`WsprotoTransport.receive` reads the stream and feeds wsproto in the
caller's task, answering pings and the peer's close frame on the way, and
:meth:`WsprotoTransport.send` writes the frame directly. A connection therefore costs one socket,
one wsproto state machine and the caller's own tasks (issue #4, "a thinner layer").

Writes are serialized by a FIFO lock: a pong or a close reply written from ``receive`` must not
interleave with a frame the charger's main loop is writing. Reads are not locked: one task reads
(the charger's reader), as the :class:`~simulator.actors.transport.Transport` contract says.

Errors the user can cause raise :class:`~simulator.actors.transport.ConnectError` with one line
naming the URL; a connection that ends raises
:class:`~simulator.actors.transport.TransportClosed` (with the peer's close code, 1006 when the
socket just went away, 1009 when a message was too big).
"""

from __future__ import annotations

import functools
import ssl
from collections import deque
from contextlib import AbstractAsyncContextManager
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from simulator.actors.sansio_transport import (
    ABNORMAL_CLOSURE,
    DEFAULT_CLOSE_TIMEOUT,
    MESSAGE_TOO_BIG,
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


class WsprotoTransport(StreamTransport):
    """:class:`~simulator.actors.transport.Transport` over a trio stream and a wsproto client
    connection whose handshake has completed (see :func:`open_wsproto_transport`).

    The transport owns the stream: :meth:`aclose` closes it. One task may call :meth:`receive`
    at a time; any task may call :meth:`send`.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        ws: WSConnection,
        subprotocol: str | None,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        super().__init__(stream, close_timeout)
        self._ws = ws
        self._subprotocol = subprotocol
        self._max_message_size = max_message_size
        self._messages: deque[str] = deque()  # complete messages not handed out yet
        self._parts: list[str | bytes | bytearray] = []  # the message being received
        self._size = 0

    @property
    def subprotocol(self) -> str | None:
        return self._subprotocol

    def _encode_text(self, data: str) -> bytes:
        if self._ws.state is not ConnectionState.OPEN:
            raise self._closed or TransportClosed(ABNORMAL_CLOSURE, "connection closing")
        return self._ws.send(TextMessage(data=data))

    async def receive(self) -> str:
        """The next text message (a binary one is decoded as UTF-8 with replacement).

        Answers pings and the peer's close frame inline. Raises ``TransportClosed`` when the
        connection ends. Cancelling it while it waits for bytes loses nothing: a partly received
        message stays buffered for the next call.
        """
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
            if self._ws.state is ConnectionState.CLOSED:
                continue  # closed by aclose() meanwhile: self._closed is set
            self._ws.receive_data(bytes(data) if data else None)
            await self._process_events()
        return self._messages.popleft()

    async def _process_events(self) -> None:
        for event in self._ws.events():
            match event:
                case TextMessage() | BytesMessage():
                    self._parts.append(event.data)
                    self._size += len(event.data)
                    if self._size > self._max_message_size:
                        self._parts, self._size = [], 0
                        await self._fail(MESSAGE_TOO_BIG, "message too big")
                        return
                    if event.message_finished:
                        self._messages.append(_join(self._parts))
                        self._parts, self._size = [], 0
                case Ping() if self._ws.state is ConnectionState.OPEN:
                    await self._write(self._ws.send(event.response()))
                case CloseConnection():
                    await self._peer_close(event)
                    return
                case _:  # pongs (we never ping) and anything wsproto adds later
                    pass

    async def _peer_close(self, event: CloseConnection) -> None:
        """The peer closed (or broke the protocol, or went away): reply, close the socket."""
        if self._ws.state is ConnectionState.REMOTE_CLOSING:
            await self._write(self._ws.send(event.response()))
        elif self._ws.state is ConnectionState.OPEN:  # wsproto found a protocol error
            await self._write(self._ws.send(CloseConnection(event.code, event.reason)))
        if self._closed is None:
            self._closed = TransportClosed(event.code, event.reason or "")
        self._peer_closed.set()
        await self._close_stream()

    async def _fail(self, code: int, reason: str) -> None:
        """We end the connection (bad input): send a close frame and drop the socket."""
        self._closed = TransportClosed(code, reason)
        if self._ws.state is ConnectionState.OPEN:
            await self._write(self._ws.send(CloseConnection(code, reason)))
        self._peer_closed.set()
        await self._close_stream()

    def _close_frame(self, code: int, reason: str) -> bytes | None:
        if self._ws.state is not ConnectionState.OPEN:
            return None
        return self._ws.send(CloseConnection(code, reason or None))

    async def _drain_until_peer_close(self) -> None:
        while self._ws.state is ConnectionState.LOCAL_CLOSING:
            try:
                data = await self._stream.receive_some(RECEIVE_SIZE)
            except STREAM_ERRORS:
                data = b""
            self._ws.receive_data(bytes(data) if data else None)
            for event in self._ws.events():
                if isinstance(event, CloseConnection):
                    self._peer_closed.set()
            if not data:
                return


def _join(parts: list[str | bytes | bytearray]) -> str:
    texts = [part for part in parts if isinstance(part, str)]
    if len(texts) == len(parts):
        return "".join(texts)
    # OCPP-J frames are text; a binary frame still gets parsed (and rejected) upstream.
    raw = b"".join(part.encode() if isinstance(part, str) else part for part in parts)
    return raw.decode("utf-8", errors="replace")


def open_wsproto_transport(
    base_url: str,
    identity: str,
    *,
    password: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> AbstractAsyncContextManager[WsprotoTransport]:
    """Connect ``identity`` to ``base_url`` and yield the transport; close it on exit.

    Raises ``ConnectError`` when the server is unreachable, refuses the handshake (the line names
    the HTTP status), times out (``connect_timeout`` seconds for TCP, TLS and the handshake), or
    does not select ``ocpp1.6``. No task is started: the connection lives exactly as long as the
    ``async with`` body, and leaving the body (also by cancellation) closes it with code 1000
    within :data:`DEFAULT_CLOSE_TIMEOUT` seconds.
    """
    url = charger_url(base_url, identity)
    headers = [basic_auth_header(identity, password)] if password is not None else []
    return connected(url, connect_timeout, functools.partial(
        _connect, url, headers, ssl_context, max_message_size))


async def _connect(
    url: str, headers: list[tuple[bytes, bytes]], ssl_context: ssl.SSLContext | None,
    max_message_size: int,
) -> WsprotoTransport:
    """TCP (and TLS for wss), then the client handshake; ``ConnectError`` on any failure."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConnectError(f"{url}: not a ws:// or wss:// URL")
    host = parts.hostname
    try:
        port = parts.port or (443 if secure else 80)
    except ValueError:
        raise ConnectError(f"{url}: bad port") from None
    stream = await open_stream(url, host, port, secure=secure, ssl_context=ssl_context)
    try:
        ws = WSConnection(ConnectionType.CLIENT)
        default_port = parts.port is None or parts.port == (443 if secure else 80)
        authority = f"[{host}]" if ":" in host else host
        request = Request(
            host=authority if default_port else f"{authority}:{port}",
            target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            subprotocols=[SUBPROTOCOL],
            extra_headers=headers,
        )
        await stream.send_all(ws.send(request))
        subprotocol = await _wait_for_accept(url, stream, ws)
    except BaseException as exc:
        await trio.aclose_forcefully(stream)
        if isinstance(exc, (trio.BrokenResourceError, OSError)):
            raise ConnectError(f"{url}: {root_cause(exc)}") from None
        if isinstance(exc, (RemoteProtocolError, LocalProtocolError)):
            raise ConnectError(f"{url}: bad handshake response ({exc})") from None
        raise
    return WsprotoTransport(stream, ws, subprotocol, max_message_size=max_message_size)


async def _wait_for_accept(url: str, stream: trio.abc.Stream, ws: WSConnection) -> str | None:
    """Read until the server accepts (→ its subprotocol) or rejects (→ ``ConnectError``)."""
    while True:
        data = await stream.receive_some(RECEIVE_SIZE)
        if not data:
            raise ConnectError(f"{url}: the server closed the connection during the handshake")
        ws.receive_data(bytes(data))
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                return event.subprotocol
            if isinstance(event, RejectConnection):
                raise ConnectError(f"{url}: handshake refused with HTTP {event.status_code}")


__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "WsprotoTransport",
    "open_wsproto_transport",
]
