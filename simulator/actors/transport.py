"""Transports: how a charger actor reaches its central system.

A :class:`Transport` is a message pipe with text frames: ``send``, ``receive`` and ``aclose``,
plus ``send_nowait`` (a frame written without a coroutine when the socket takes it) and
``flush`` (the rest of a frame the socket took only part of). Two
implementations: :func:`open_websocket_transport` (trio-websocket, the default; offers the
``ocpp1.6`` subprotocol and refuses a handshake that does not return it) and
:func:`memory_transport_pair` (in-memory, for tests and virtual time). The charger actor only sees
the interface, so a thinner WebSocket layer or the chaos transport can be swapped in.
For ``ws://``, trio-websocket runs over a :class:`~simulator.actors.sockets.DirectSocketStream`
(the socket is read and written without a trip through the scheduler when it is ready); for
``wss://`` over ``trio.SSLStream``, after a TLS handshake of its own.

Errors the user can cause (unreachable URL, refused handshake, wrong subprotocol, bad credentials)
raise :class:`ConnectError` with one line that names the URL; a connection that ends raises
:class:`TransportClosed` from ``receive``/``send``.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final, Protocol
from urllib.parse import SplitResult, quote, urlsplit

import h11
import trio
import trio_websocket
from wsproto.utilities import ProtocolError

from simulator.actors.sockets import DirectSocketStream

SUBPROTOCOL: Final = "ocpp1.6"
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
"""Seconds for TCP connect plus the WebSocket handshake."""
DEFAULT_MAX_MESSAGE_SIZE: Final = 1024 * 1024
"""Bytes; larger incoming messages close the connection with 1009."""


class ConnectError(Exception):
    """The connection could not be opened; ``str()`` is one line naming the URL and the cause."""


class TransportClosed(Exception):
    """The connection ended (``code`` is the WebSocket close code when known)."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


NOT_SENT: Final = 0
"""``send_nowait``: nothing was written; ``send`` the frame."""
SENT: Final = 1
"""``send_nowait``: the whole frame was written."""
STARTED: Final = 2
"""``send_nowait``: the frame is started and its rest waits for the socket; the caller must
``await flush()`` next (other writers wait until then)."""


class Transport(Protocol):
    """A connected message pipe carrying OCPP-J text frames."""

    @property
    def subprotocol(self) -> str | None: ...

    async def send(self, data: str) -> None:
        """Send one text frame; raises :class:`TransportClosed` if the connection is gone."""

    def send_nowait(self, data: str) -> int:
        """Send one text frame if that needs no waiting, without a coroutine (and not a
        cancellation point): :data:`SENT`, :data:`NOT_SENT` (nothing written: use ``send``) or
        :data:`STARTED` (then ``flush`` comes next). Raises :class:`TransportClosed` if the
        connection is gone."""

    async def flush(self) -> None:
        """Write the rest of the frame ``send_nowait`` started; raises
        :class:`TransportClosed` if the connection is gone (no-op when nothing is started)."""

    async def receive(self) -> str:
        """Wait for the next text frame; raises :class:`TransportClosed` at the end."""

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (idempotent)."""


def charger_url(base_url: str, identity: str) -> str:
    """The CSMS endpoint with the percent-encoded charger identity appended (OCPP-J §3)."""
    return base_url.rstrip("/") + "/" + quote(identity, safe="")


def basic_auth_header(identity: str, password: str) -> tuple[bytes, bytes]:
    """``Authorization: Basic base64(identity:password)`` (security profiles 1 and 2)."""
    token = base64.b64encode(f"{identity}:{password}".encode()).decode("ascii")
    return (b"Authorization", f"Basic {token}".encode("ascii"))


class WebSocketTransport:
    """:class:`Transport` over a ``trio_websocket.WebSocketConnection`` (owned by the caller)."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self._ws = ws

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    async def send(self, data: str) -> None:
        try:
            await self._ws.send_message(data)
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(exc) from None

    def send_nowait(self, data: str) -> int:
        """Always :data:`NOT_SENT`: trio-websocket writes only from a coroutine, under a lock
        owned by the writing task."""
        return NOT_SENT

    async def flush(self) -> None:
        pass

    async def receive(self) -> str:
        try:
            message = await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(exc) from None
        if isinstance(message, bytes):
            # OCPP-J frames are text; a binary frame still gets parsed (and rejected) upstream.
            return message.decode("utf-8", errors="replace")
        return message

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.aclose(code, reason or None)


def _closed(exc: trio_websocket.ConnectionClosed) -> TransportClosed:
    reason = exc.reason
    return TransportClosed(getattr(reason, "code", None), getattr(reason, "reason", None) or "")


@asynccontextmanager
async def open_websocket_transport(
    base_url: str,
    identity: str,
    *,
    password: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> AsyncIterator[WebSocketTransport]:
    """Connect ``identity`` to ``base_url`` and yield the transport; close it on exit.

    Raises :class:`ConnectError` when the server is unreachable, refuses the handshake, times out,
    or does not select ``ocpp1.6``. The connection (and trio-websocket's reader task) lives exactly
    as long as the ``async with`` body; cancelling the body closes it.
    """
    url = charger_url(base_url, identity)
    headers = [basic_auth_header(identity, password)] if password is not None else []
    deadline = trio.current_time() + connect_timeout  # one budget: TCP, TLS and handshake
    opener: AbstractAsyncContextManager[trio_websocket.WebSocketConnection]
    if urlsplit(url).scheme == "wss":
        opener = _tls_websocket(
            url, ssl_context or ssl.create_default_context(), headers=headers,
            max_message_size=max_message_size, deadline=deadline,
        )
    else:
        opener = _tcp_websocket(url, headers=headers, max_message_size=max_message_size,
                                deadline=deadline)
    try:
        ws = await opener.__aenter__()
    except trio_websocket.ConnectionRejected as exc:
        raise ConnectError(f"{url}: handshake refused with HTTP {exc.status_code}") from None
    except (trio_websocket.ConnectionTimeout, trio.TooSlowError):
        raise ConnectError(f"{url}: no handshake within {connect_timeout:g} s") from None
    except (ProtocolError, h11.ProtocolError) as exc:  # (h11: wsproto's HTTP/1.1 handshake)
        raise ConnectError(f"{url}: bad handshake response ({exc})") from None
    except (trio_websocket.HandshakeError, trio.BrokenResourceError, OSError,
            ValueError) as exc:  # (ValueError: a port out of range)
        raise ConnectError(f"{url}: {root_cause(exc)}") from None
    try:
        if ws.subprotocol != SUBPROTOCOL:
            raise ConnectError(
                f"{url}: the server did not select subprotocol {SUBPROTOCOL!r} "
                f"(it answered {ws.subprotocol!r})"
            )
        yield WebSocketTransport(ws)
    except BaseException as exc:
        if not await opener.__aexit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        await opener.__aexit__(None, None, None)


@asynccontextmanager
async def _tcp_websocket(
    url: str,
    *,
    headers: list[tuple[bytes, bytes]],
    max_message_size: int,
    deadline: float,
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """ws:// over a :class:`~simulator.actors.sockets.DirectSocketStream`: trio-websocket's
    reader and writer then go through the scheduler only to wait, where the
    ``trio.SocketStream`` it opens itself yields around every send and every receive."""
    parts = urlsplit(url)
    with trio.fail_at(deadline):
        tcp = await trio.open_tcp_stream(parts.hostname or "", parts.port or 80)
    async with _websocket_over(
        DirectSocketStream(tcp), parts, headers=headers, max_message_size=max_message_size,
        deadline=deadline,
    ) as ws:
        yield ws


@asynccontextmanager
async def _tls_websocket(
    url: str,
    context: ssl.SSLContext,
    *,
    headers: list[tuple[bytes, bytes]],
    max_message_size: int,
    deadline: float,
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """wss:// with the TLS handshake done first: trio-websocket on its own reports a refused
    certificate only as a handshake timeout; here it fails at once with the TLS error."""
    parts = urlsplit(url)
    with trio.fail_at(deadline):
        stream = await trio.open_ssl_over_tcp_stream(
            parts.hostname or "", parts.port or 443, ssl_context=context, https_compatible=True
        )
        try:
            await stream.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
    async with _websocket_over(
        stream, parts, headers=headers, max_message_size=max_message_size, deadline=deadline,
    ) as ws:
        yield ws


@asynccontextmanager
async def _websocket_over(
    stream: trio.abc.Stream,
    parts: SplitResult,
    *,
    headers: list[tuple[bytes, bytes]],
    max_message_size: int,
    deadline: float,
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """The WebSocket handshake over ``stream`` (to the URL split in ``parts``) by ``deadline``,
    and the connection, with trio-websocket's reader in a nursery of its own; closed (within
    2 s) and the stream with it on the way out. Errors come out as they are, never in a group
    (the reader's ``ConnectionRejected`` surfaces from the nursery in a group of one). The
    ``Host`` header names the port unless it is the scheme's default, as trio-websocket's own
    opener does, and brackets an IPv6 address."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != (443 if parts.scheme == "wss" else 80):
        host = f"{host}:{parts.port}"
    resource = parts.path + (f"?{parts.query}" if parts.query else "")
    error: BaseException | None = None  # from the handshake or the body: re-raised as it is
    try:
        async with trio.open_nursery() as nursery:
            handshake = trio.CancelScope(deadline=deadline)
            reader = _ReaderNursery(nursery, handshake)
            try:
                with handshake:
                    ws = await trio_websocket.wrap_client_stream(
                        reader, stream, host, resource,  # type: ignore[arg-type]
                        subprotocols=[SUBPROTOCOL], extra_headers=headers,
                        max_message_size=max_message_size,
                    )
                if handshake.cancelled_caught:
                    raise (trio.BrokenResourceError("the server closed the connection during the"
                                                    " handshake") if reader.ended
                           else trio.TooSlowError())
            except BaseException as exc:
                error = exc
                with trio.CancelScope(shield=True):  # (a cancelled caller: one Cancelled only)
                    await trio.aclose_forcefully(stream)
                nursery.cancel_scope.cancel()
            else:
                try:
                    yield ws
                except BaseException as exc:
                    error = exc
                finally:
                    with trio.CancelScope(shield=True):
                        with trio.move_on_after(2):
                            await ws.aclose()
                        # (after the peer closed, trio-websocket's aclose leaves the socket open)
                        await trio.aclose_forcefully(stream)
                    nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    if error is not None:
        raise error


class _ReaderNursery:
    """The nursery handed to ``trio_websocket.wrap_client_stream``, which starts its reader task
    there (``start_soon``, the only method it uses): once that task ends, the handshake is
    cancelled, so a peer that closes before it answers fails the connect at once instead of
    costing the whole connect timeout (trio-websocket only waits for an answer)."""

    def __init__(self, nursery: trio.Nursery, handshake: trio.CancelScope) -> None:
        self._nursery = nursery
        self._handshake = handshake
        self.ended = False
        """The reader task has ended."""

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        async def reader() -> None:
            try:
                await fn(*args)
            finally:
                self.ended = True
                self._handshake.cancel()  # (a no-op once the handshake is over)

        self._nursery.start_soon(reader)


def root_cause(exc: BaseException) -> str:
    """The innermost useful message of a connect failure: trio wraps the refusals of every
    address in a group, and TLS errors in ``BrokenResourceError``."""
    seen: BaseException | None = exc
    message = str(exc) or type(exc).__name__
    while seen is not None:
        if isinstance(seen, BaseExceptionGroup) and seen.exceptions:
            seen = seen.exceptions[0]
            continue
        text = str(seen)
        if text:
            message = text
        seen = seen.__cause__ or seen.__context__
    return message


class MemoryTransport:
    """One end of an in-memory :class:`Transport` pair (see :func:`memory_transport_pair`)."""

    def __init__(
        self,
        send_channel: trio.MemorySendChannel[str],
        receive_channel: trio.MemoryReceiveChannel[str],
        subprotocol: str | None = SUBPROTOCOL,
    ) -> None:
        self._send = send_channel
        self._receive = receive_channel
        self._subprotocol = subprotocol
        self._closed: TransportClosed | None = None

    @property
    def subprotocol(self) -> str | None:
        return self._subprotocol

    async def send(self, data: str) -> None:
        if self._closed is not None:
            raise self._closed
        try:
            await self._send.send(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise TransportClosed(1006, "peer gone") from None

    def send_nowait(self, data: str) -> int:
        if self._closed is not None:
            raise self._closed
        try:
            self._send.send_nowait(data)
        except trio.WouldBlock:
            return NOT_SENT
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise TransportClosed(1006, "peer gone") from None
        return SENT

    async def flush(self) -> None:
        pass  # a frame goes whole or not at all

    async def receive(self) -> str:
        if self._closed is not None:
            raise self._closed
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise TransportClosed(1000, "peer closed") from None

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is None:
            self._closed = TransportClosed(code, reason)
            await self._send.aclose()
            await self._receive.aclose()


def memory_transport_pair(buffer: int = 16) -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected in-memory transports (client, server).

    Each direction is a bounded channel of ``buffer`` frames: a sender blocks when the other side
    does not read (backpressure, like a full socket). Closing one end ends the other's ``receive``.
    """
    a_send, b_receive = trio.open_memory_channel[str](buffer)
    b_send, a_receive = trio.open_memory_channel[str](buffer)
    return MemoryTransport(a_send, a_receive), MemoryTransport(b_send, b_receive)


__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "NOT_SENT",
    "SENT",
    "STARTED",
    "SUBPROTOCOL",
    "ConnectError",
    "MemoryTransport",
    "Transport",
    "TransportClosed",
    "WebSocketTransport",
    "basic_auth_header",
    "charger_url",
    "memory_transport_pair",
    "open_websocket_transport",
    "root_cause",
]
