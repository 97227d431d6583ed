"""Byte streams under the WebSocket clients, and the seam between the two.

A transport (:mod:`simulator.actors.transport`) runs its WebSocket client over any
``trio.abc.Stream``, which a :data:`StreamConnector` opens for an :class:`Endpoint`:
:func:`tcp_connector` opens TCP (and TLS for ``wss://``), :func:`memory_connector` hands out one
end of ``trio.testing.memory_stream_pair`` and serves the other end in-process (virtual time,
tests). Between the stream and the WebSocket layer a wrapper may sit: :class:`StreamWrapper`
delegates every call to the stream it wraps, so a subclass (the chaos engine's latency,
bandwidth, fragmentation, half-open links, resets; a test's recorder) overrides only what it
changes. Nothing here knows WebSocket or OCPP.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio
import trio.testing


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a transport connects: one charger's URL, split.

    Attributes:
        url: the whole ``ws://`` or ``wss://`` URL (for messages).
        host: the host name or address, IPv6 without brackets.
        port: the TCP port (the scheme's default when the URL names none).
        secure: ``wss://``: TLS under the WebSocket.
        resource: the path and query of the HTTP request (``/ocpp/CP%201``).
        host_header: the ``Host`` header: brackets an IPv6 address, names the port unless it
            is the scheme's default.
    """

    url: str
    host: str
    port: int
    secure: bool
    resource: str
    host_header: str


StreamConnector = Callable[[Endpoint, trio.Nursery], Awaitable[trio.abc.Stream]]
"""``(endpoint, nursery)`` → an open byte stream to ``endpoint``.

The caller owns the stream from then on (it closes it). A connector that needs a task for the
stream's lifetime (the peer of a memory stream) starts it in ``nursery``, which the caller
cancels once the stream is closed. A connector raises ``OSError`` (refused, DNS) or
``trio.BrokenResourceError`` (a TLS failure, with the ``ssl`` error as its cause) when it cannot
connect; it is cancelled when the connect budget runs out."""


def tcp_connector(ssl_context: ssl.SSLContext | None = None) -> StreamConnector:
    """Open TCP to the endpoint and, for ``wss://``, do the TLS handshake before returning (a
    certificate the context refuses fails here, as itself, not later as a WebSocket timeout).
    ``ssl_context`` is used for ``wss://`` only; None means the system trust store."""

    async def connect(endpoint: Endpoint, nursery: trio.Nursery) -> trio.abc.Stream:
        tcp = await trio.open_tcp_stream(endpoint.host, endpoint.port)
        if not endpoint.secure:
            return tcp
        tls = trio.SSLStream(tcp, ssl_context or ssl.create_default_context(),
                             server_hostname=endpoint.host, https_compatible=True)
        try:
            await tls.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(tls)
            raise
        return tls

    return connect


def memory_connector(serve: Callable[[trio.abc.Stream], Awaitable[object]]) -> StreamConnector:
    """Each connection is one end of ``trio.testing.memory_stream_pair()``; ``serve`` gets the
    other end in the connection's nursery (it closes that end). No sockets, no real time: this
    is how the fleet reaches the embedded CSMS under virtual time (``serve`` is
    ``CsmsServer.serve_stream``).

    ``serve`` is shielded from the nursery's cancellation and cancelled once the client's end
    is closed: like a server across a network, it outlives a charger cancelled as a whole (the
    end of a run) long enough to answer its closing handshake, instead of both ends waiting out
    their close timeouts."""

    async def connect(endpoint: Endpoint, nursery: trio.Nursery) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()
        scope = trio.CancelScope(shield=True)

        async def serve_until_closed() -> None:
            with scope:
                await serve(server)

        nursery.start_soon(serve_until_closed)
        return _EndsServing(client, scope)

    return connect


class StreamWrapper(trio.abc.Stream):
    """A stream that forwards every call to ``inner``: the base of wrappers placed between a
    connection's stream and its WebSocket client (``open_transport(..., wrap=...)``).

    A subclass overrides the calls it changes and delegates the rest with ``super()``. The
    wrapper owns ``inner``: :meth:`aclose` closes it. The WebSocket clients call ``send_all``
    from one task at a time and ``receive_some`` from one task at a time (the two may overlap);
    a wrapper that delays a call must stay cancellable, since a connect budget or a closing
    transport cancels it.
    """

    __slots__ = ("inner",)  # one per connection: no __dict__ unless a subclass wants one

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _EndsServing(StreamWrapper):
    """The client's end of a :func:`memory_connector` stream: closing it also cancels the
    in-process server of the other end (``scope``), whatever happens to the close itself."""

    __slots__ = ("_scope",)

    def __init__(self, inner: trio.abc.Stream, scope: trio.CancelScope) -> None:
        super().__init__(inner)
        self._scope = scope

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            self._scope.cancel()


__all__ = [
    "Endpoint",
    "StreamConnector",
    "StreamWrapper",
    "memory_connector",
    "tcp_connector",
]
