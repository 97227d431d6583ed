"""Transports: how a charger actor reaches its central system.

A :class:`Transport` is a connected pipe of OCPP-J text messages: ``send``, ``receive``,
``aclose`` and the ``subprotocol`` the server selected. A binary message the peer sends comes
out of ``receive`` as ``bytes``, as it came: OCPP-J is text only, and whether that is a fault is
for the charger to say, not the transport. :func:`open_transport` builds every one
the same way, whatever the client or the stream:

1. the charger's URL is the base URL with the percent-encoded identity appended (OCPP-J §3);
2. a :data:`~simulator.actors.streams.StreamConnector` opens a byte stream to it (TCP, TLS for
   ``wss://``, or one end of a memory stream pair);
3. ``wrap`` may put a :class:`~simulator.actors.streams.StreamWrapper` between that stream and
   the WebSocket layer;
4. a :data:`WebSocketClient` does the opening handshake over the (wrapped) stream, offering
   the protocol plugin's subprotocol and HTTP Basic credentials when there is a password;
5. the server must have selected that subprotocol.

The clients: :func:`trio_websocket_client` (the default) and
:func:`~simulator.actors.websockets_transport.websockets_client` (the thin one).
:func:`memory_transport_pair` is a message pipe with no WebSocket under it, for machine-level
tests.

Errors: whatever keeps the connection from opening raises :class:`ConnectError`, one line that
names the URL and the cause (refused, DNS, TLS, an HTTP status, a bad or missing subprotocol,
the connect budget spent); a connection that ends raises :class:`TransportClosed` from
``send`` and ``receive``. A failure that matters to security (the server's certificate, a TLS
version or cipher suite refused, HTTP 401/403, a TLS alert against the client certificate) is
classified in ``ConnectError.failure`` (:mod:`simulator.actors.refusals`), and a TLS cause reads
``TLS: certificate verify failed: unable to get local issuer certificate``.
"""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import quote, urlsplit

import trio
import trio_websocket

from simulator.actors.refusals import http_failure, tls_failure
from simulator.actors.streams import Endpoint, StreamConnector, StreamWrapper, tcp_connector
from simulator.machines.charger import ConnectFailure
from simulator.ocpp.plugin import ProtocolPlugin

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
"""Seconds for the stream (TCP, TLS) plus the WebSocket handshake: one budget."""
DEFAULT_MAX_MESSAGE_SIZE: Final = 1024 * 1024
"""Bytes; a larger incoming message closes the connection with 1009."""
DEFAULT_CLOSE_TIMEOUT: Final = 2.0
"""Seconds ``aclose`` waits for the peer's half of the closing handshake."""
ABNORMAL_CLOSURE: Final = 1006
"""The close code of a connection that ended without a close frame."""
MAX_CLOSE_REASON: Final = 123
"""Bytes of close reason that fit in a control frame (125 minus the code)."""
_WIRE_CODES: Final = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})
"""Close codes below 3000 that may go on the wire (RFC 6455 §7.4)."""


class ConnectError(Exception):
    """The connection could not be opened; ``str()`` is one line naming the URL and the cause.
    ``failure`` says why when the cause is a matter of security (None: any other cause)."""

    def __init__(self, message: str, failure: ConnectFailure | None = None) -> None:
        super().__init__(message)
        self.failure = failure


class TransportClosed(Exception):
    """The connection ended (``code`` is the WebSocket close code when known)."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class Transport(Protocol):
    """A connected message pipe carrying OCPP-J text frames.

    One task may wait in ``receive`` at a time and one task may ``send`` at a time; the two may
    overlap (a reader task and a writer task per connection). Frames never interleave on the
    wire with each other or with the client's own control frames (pongs, close).
    """

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server selected (None: it selected none)."""

    async def send(self, data: str) -> None:
        """Send one text frame; raises :class:`TransportClosed` if the connection is gone. A
        send cancelled half way leaves the connection unusable: it is dropped (1006)."""

    async def receive(self) -> str | bytes:
        """Wait for the next message: a text one as ``str``, a binary one as ``bytes``, whole
        (a fragmented message is joined); raises :class:`TransportClosed` at the end.
        Cancelling it loses no message."""

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (idempotent, also from a cancelled scope): a close frame with
        ``code`` and ``reason`` (none when the code may not go on the wire, e.g. 1006), at most
        :data:`DEFAULT_CLOSE_TIMEOUT` seconds for the peer's, then the stream is closed. Every
        later or waiting ``send``/``receive`` raises ``TransportClosed(code, reason)``."""


@dataclass(frozen=True, slots=True)
class Handshake:
    """What a :data:`WebSocketClient` asks the server for.

    Attributes:
        endpoint: the charger's URL, split (``Host`` header, resource).
        subprotocol: the one subprotocol offered (the protocol plugin's).
        headers: extra request headers (``Authorization``).
        max_message_size: bytes; a larger incoming message closes the connection with 1009.
    """

    endpoint: Endpoint
    subprotocol: str
    headers: tuple[tuple[bytes, bytes], ...]
    max_message_size: int


WebSocketClient = Callable[[trio.abc.Stream, Handshake, trio.Nursery], Awaitable[Transport]]
"""``(stream, handshake, nursery)`` → a connected :class:`Transport`, after the opening
handshake over ``stream``.

The transport owns ``stream`` (its ``aclose`` closes it). Tasks the client needs for the life of
the connection go in ``nursery``, cancelled once the transport is closed. A refused or broken
handshake raises :class:`ConnectError`; a failing stream raises what it raised. On any failure
the caller closes ``stream``. The caller checks the selected subprotocol and bounds the whole
call by the connect budget (cancelling it)."""


def charger_url(base_url: str, identity: str) -> str:
    """The CSMS endpoint with the percent-encoded charger identity appended (OCPP-J §3)."""
    return base_url.rstrip("/") + "/" + quote(identity, safe="")


def basic_auth_header(identity: str, password: str) -> tuple[bytes, bytes]:
    """``Authorization: Basic base64(identity:password)`` (security profiles 1 and 2)."""
    token = base64.b64encode(f"{identity}:{password}".encode()).decode("ascii")
    return (b"Authorization", f"Basic {token}".encode("ascii"))


def parse_endpoint(url: str) -> Endpoint:
    """Split a ``ws://`` or ``wss://`` URL; raises :class:`ConnectError` naming it otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConnectError(f"{url}: not a ws:// or wss:// URL")
    secure = parts.scheme == "wss"
    default_port = 443 if secure else 80
    try:
        port = parts.port or default_port
    except ValueError:  # not a number, or out of range
        raise ConnectError(f"{url}: bad port") from None
    host_header = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port != default_port:
        host_header = f"{host_header}:{port}"
    return Endpoint(url=url, host=parts.hostname, port=port, secure=secure,
                    resource=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                    host_header=host_header)


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


def stream_failure(url: str, exc: BaseException) -> ConnectError:
    """The one line for a stream that failed while connecting (refused, DNS, TLS): a TLS
    failure classified (:func:`~simulator.actors.refusals.tls_failure`)."""
    tls = tls_failure(exc)
    if tls is not None:
        return ConnectError(f"{url}: {tls[1]}", tls[0])
    return ConnectError(f"{url}: {root_cause(exc)}")


def http_refusal(url: str, status: int) -> ConnectError:
    """The one line for a handshake answered with HTTP ``status`` instead of 101 (401 and 403
    refuse the charger's credentials)."""
    return ConnectError(f"{url}: handshake refused with HTTP {status}", http_failure(status))


def refusal(handshake: Handshake, exc: BaseException) -> ConnectError:
    """The one line for a handshake response the client library refused: a subprotocol the
    server chose but was not offered, a TLS failure met while reading it (a server that
    wants a client certificate says so only then, under TLS 1.3), or anything else that is
    not a WebSocket answer."""
    if tls_failure(exc) is not None:
        return stream_failure(handshake.endpoint.url, exc)
    cause = root_cause(exc)
    chosen = _CHOSEN.search(cause)
    if chosen is not None:
        return ConnectError(f"{handshake.endpoint.url}: the central system chose subprotocol "
                            f'"{chosen.group(1)}"; this charger speaks {handshake.subprotocol}')
    if "subprotocol" in cause:
        return ConnectError(f"{handshake.endpoint.url}: the server did not select subprotocol "
                            f"{handshake.subprotocol!r} ({cause})")
    return ConnectError(f"{handshake.endpoint.url}: bad handshake response ({cause})")


_CHOSEN: Final = re.compile(r"(?:unrecognized|unsupported) subprotocol:? (\S+)")
"""How the WebSocket clients name a subprotocol the server chose that was not offered."""


def hung_up(handshake: Handshake) -> ConnectError:
    """The one line for a server that closed the connection before it answered in full."""
    return ConnectError(
        f"{handshake.endpoint.url}: the server closed the connection during the handshake")


def wire_close(code: int, reason: str) -> tuple[int, str] | None:
    """What a close frame for ``code``/``reason`` carries: None when the code may not go on the
    wire (1005, 1006, 1015, ...: the stream is just dropped), else the reason cut to fit."""
    if code not in _WIRE_CODES and not 3000 <= code <= 4999:
        return None
    encoded = reason.encode()
    if len(encoded) > MAX_CLOSE_REASON:
        reason = encoded[:MAX_CLOSE_REASON].decode(errors="ignore")
    return code, reason


@asynccontextmanager
async def open_transport(
    base_url: str,
    identity: str,
    *,
    plugin: ProtocolPlugin,
    connect_stream: StreamConnector | None = None,
    wrap: Callable[[trio.abc.Stream], trio.abc.Stream] | None = None,
    client: WebSocketClient | None = None,
    password: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> AsyncIterator[Transport]:
    """Connect ``identity`` to ``base_url`` and yield the transport; close it on exit.

    ``connect_stream`` opens the stream (default: :func:`~simulator.actors.streams.tcp_connector`
    with ``ssl_context``), ``wrap`` wraps it, ``client`` does the handshake (default:
    :func:`trio_websocket_client`) offering ``plugin.subprotocol``; ``password`` adds HTTP Basic
    credentials. Stream and handshake share ``connect_timeout`` seconds.

    Raises :class:`ConnectError` (one line naming the URL) when the connection cannot be opened
    or the server did not select ``plugin.subprotocol``. The connection and any task under it
    live exactly as long as the ``async with`` body; leaving the body, also by cancellation,
    closes it with code 1000 (unless the body closed it already). Exceptions from the body and
    cancellations come out as they are, never in an exception group.
    """
    url = charger_url(base_url, identity)
    headers = (basic_auth_header(identity, password),) if password is not None else ()
    handshake = Handshake(parse_endpoint(url), plugin.subprotocol, headers, max_message_size)
    connect = connect_stream or tcp_connector(ssl_context)
    error: BaseException | None = None  # from the connect or the body: re-raised as it is
    try:
        async with trio.open_nursery() as nursery:
            try:
                with trio.move_on_after(connect_timeout) as budget:
                    transport = await _connect(handshake, connect, wrap,
                                               client or trio_websocket_client, nursery)
                if budget.cancelled_caught:
                    raise ConnectError(f"{url}: no handshake within {connect_timeout:g} s")
            except BaseException as exc:
                error = exc
                nursery.cancel_scope.cancel()
            else:
                try:
                    if transport.subprotocol != handshake.subprotocol:
                        raise ConnectError(
                            f"{url}: the server did not select subprotocol "
                            f"{handshake.subprotocol!r} (it answered {transport.subprotocol!r})"
                        )
                    yield transport
                except BaseException as exc:
                    error = exc
                finally:
                    with trio.CancelScope(shield=True):
                        await transport.aclose()
                    nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # a task of the connection failed
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from error
        raise
    if error is not None:
        raise error


async def _connect(
    handshake: Handshake,
    connect: StreamConnector,
    wrap: Callable[[trio.abc.Stream], trio.abc.Stream] | None,
    client: WebSocketClient,
    nursery: trio.Nursery,
) -> Transport:
    """The stream, wrapped, and the handshake over it; the stream is closed if that fails."""
    try:
        stream = await connect(handshake.endpoint, nursery)
    except (OSError, trio.BrokenResourceError) as exc:
        raise stream_failure(handshake.endpoint.url, exc) from None
    try:
        if wrap is not None:
            stream = wrap(stream)
        return await client(stream, handshake, nursery)
    except BaseException as exc:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(stream)
        if isinstance(exc, (OSError, trio.BrokenResourceError, trio.ClosedResourceError)):
            raise stream_failure(handshake.endpoint.url, exc) from None
        raise


# --- the default client: trio-websocket -------------------------------------------------------


async def trio_websocket_client(
    stream: trio.abc.Stream, handshake: Handshake, nursery: trio.Nursery
) -> WebSocketTransport:
    """The :data:`WebSocketClient` on trio-websocket (``wrap_client_stream``): its reader task
    runs in ``nursery``. A server that hangs up or answers with something other than a
    WebSocket accept fails the handshake at once, as one :class:`ConnectError` line."""
    if handshake.endpoint.secure:  # trio-websocket's reader swallows a TLS alert's error
        stream = _FailureKept(stream)
    with trio.CancelScope() as waiting:
        reader = _ReaderNursery(nursery, waiting, handshake, stream)
        try:
            ws = await trio_websocket.wrap_client_stream(
                reader, stream, handshake.endpoint.host_header,  # type: ignore[arg-type]
                handshake.endpoint.resource, subprotocols=[handshake.subprotocol],
                extra_headers=list(handshake.headers),
                max_message_size=handshake.max_message_size,
            )
        except BaseException:
            reader.stop()
            raise
    if waiting.cancelled_caught:
        reader.stop()
        if reader.failure is None and isinstance(stream, _FailureKept) \
                and stream.failure is not None:
            raise stream_failure(handshake.endpoint.url, stream.failure)
        raise reader.failure or hung_up(handshake)
    reader.opened = True
    return WebSocketTransport(ws, stream, stop_reader=reader.stop)


class _FailureKept(StreamWrapper):
    """A TLS stream that keeps the error its last failed read or write raised (``failure``):
    a server that refuses the client's certificate under TLS 1.3 says so with an alert the
    client reads during the WebSocket handshake, and trio-websocket's reader turns that
    error into a mere hang-up."""

    __slots__ = ("failure",)

    def __init__(self, inner: trio.abc.Stream) -> None:
        super().__init__(inner)
        self.failure: BaseException | None = None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self.inner.send_all(data)
        except trio.BrokenResourceError as exc:
            self.failure = exc
            raise

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        try:
            return await self.inner.receive_some(max_bytes)
        except trio.BrokenResourceError as exc:
            self.failure = exc
            raise


class _ReaderNursery:
    """The nursery handed to ``trio_websocket.wrap_client_stream``, which starts its reader task
    there (``start_soon``, the only method it uses).

    trio-websocket only waits for an answer: here the reader ending before the handshake
    completed cancels the wait (``waiting``), and what it raised meanwhile (an HTTP refusal, a
    response that is not HTTP) becomes ``failure``. After the handshake, an error of the reader
    (wsproto refusing what the peer sent, or a pong it may no longer send while closing) ends
    the connection, not the connection's nursery: the stream is dropped, and the transport's
    calls raise ``TransportClosed`` (1006 unless a close code was exchanged).

    The reader runs shielded from the nursery's cancellation until :meth:`stop`: a charger
    cancelled as a whole (the end of a run) closes its connection in a shielded ``aclose``,
    which waits for the peer's half of the closing handshake, and only a running reader can
    receive it (a cancelled one left every such close waiting out its timeout). The transport
    stops the reader once it has closed the stream.
    """

    def __init__(self, nursery: trio.Nursery, waiting: trio.CancelScope,
                 handshake: Handshake, stream: trio.abc.Stream) -> None:
        self._nursery = nursery
        self._waiting = waiting
        self._handshake = handshake
        self._stream = stream
        self.opened = False
        """The handshake completed."""
        self.failure: ConnectError | None = None
        self._scope = trio.CancelScope(shield=True)

    def stop(self) -> None:
        """End the reader task (if it still runs). Idempotent."""
        self._scope.cancel()

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        self._nursery.start_soon(self._reader, fn, *args, name="websocket reader")

    async def _reader(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """trio-websocket's reader task, ``fn(*args)``, with its failures handled as above."""
        try:
            with self._scope:
                await fn(*args)
        except trio_websocket.ConnectionRejected as exc:
            self.failure = http_refusal(self._handshake.endpoint.url, exc.status_code)
        except Exception as exc:  # wsproto's and h11's errors
            if self.opened:
                await trio.aclose_forcefully(self._stream)
            else:
                self.failure = refusal(self._handshake, exc)
        finally:
            self._waiting.cancel()  # (a no-op once the handshake is over)


class WebSocketTransport:
    """:class:`Transport` over a ``trio_websocket.WebSocketConnection`` whose handshake has
    completed over ``stream``; owns both (see :func:`trio_websocket_client`)."""

    def __init__(self, ws: trio_websocket.WebSocketConnection, stream: trio.abc.Stream, *,
                 stop_reader: Callable[[], None] | None = None) -> None:
        self._ws = ws
        self._stream = stream
        self._stop_reader = stop_reader or (lambda: None)
        self._closed: TransportClosed | None = None  # set by aclose: what later calls raise

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    async def send(self, data: str) -> None:
        if self._closed is not None:
            raise self._closed
        await trio.lowlevel.checkpoint_if_cancelled()  # (cancelled before a byte went out)
        try:
            await self._ws.send_message(data)
        except trio_websocket.ConnectionClosed as exc:
            raise self._closed or _closed(exc) from None
        except trio.Cancelled:  # a frame may be half written: the connection is unusable
            await self._drop(TransportClosed(ABNORMAL_CLOSURE, "send cancelled"))
            raise

    async def receive(self) -> str | bytes:
        if self._closed is not None:
            raise self._closed
        try:
            return await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise self._closed or _closed(exc) from None

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is not None:
            return
        self._closed = TransportClosed(code, reason)
        frame = wire_close(code, reason)
        with trio.CancelScope(shield=True):
            if frame is not None:
                with trio.move_on_after(DEFAULT_CLOSE_TIMEOUT):
                    await self._ws.aclose(*frame)
            # (after the peer closed, trio-websocket's aclose leaves the stream open)
            await trio.aclose_forcefully(self._stream)
        self._stop_reader()

    async def _drop(self, closed: TransportClosed) -> None:
        if self._closed is None:
            self._closed = closed
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(self._stream)
        self._stop_reader()


def _closed(exc: trio_websocket.ConnectionClosed) -> TransportClosed:
    """What trio-websocket's ``ConnectionClosed`` means here (no reason: the reader failed)."""
    if exc.reason is None:
        return TransportClosed(ABNORMAL_CLOSURE, "connection lost")
    return TransportClosed(exc.reason.code, exc.reason.reason or "")


# --- the memory message pipe --------------------------------------------------------------------


class MemoryTransport:
    """One end of an in-memory :class:`Transport` pair (see :func:`memory_transport_pair`)."""

    def __init__(
        self,
        send_channel: trio.MemorySendChannel[str],
        receive_channel: trio.MemoryReceiveChannel[str],
        subprotocol: str | None = None,
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
            raise TransportClosed(ABNORMAL_CLOSURE, "peer gone") from None

    async def receive(self) -> str:
        if self._closed is not None:
            raise self._closed
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise self._closed or TransportClosed(1000, "peer closed") from None

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is None:
            self._closed = TransportClosed(code, reason)
            await self._send.aclose()
            await self._receive.aclose()


def memory_transport_pair(
    buffer: int = 16, *, subprotocol: str | None = None
) -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected in-memory transports (client, server) reporting ``subprotocol``.

    No WebSocket and no handshake: whole messages go through. Each direction is a bounded
    channel of ``buffer`` frames: a sender blocks when the other side does not read
    (backpressure, like a full socket). Closing one end ends the other's ``receive``.
    """
    a_send, b_receive = trio.open_memory_channel[str](buffer)
    b_send, a_receive = trio.open_memory_channel[str](buffer)
    return (MemoryTransport(a_send, a_receive, subprotocol),
            MemoryTransport(b_send, b_receive, subprotocol))


__all__ = [
    "ABNORMAL_CLOSURE",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "ConnectError",
    "Handshake",
    "MemoryTransport",
    "Transport",
    "TransportClosed",
    "WebSocketClient",
    "WebSocketTransport",
    "basic_auth_header",
    "charger_url",
    "http_refusal",
    "hung_up",
    "memory_transport_pair",
    "open_transport",
    "parse_endpoint",
    "refusal",
    "root_cause",
    "stream_failure",
    "trio_websocket_client",
    "wire_close",
]
