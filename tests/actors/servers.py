"""Peers for the transport tests: a trio-websocket server on 127.0.0.1 port 0, and a raw peer
over memory streams that writes byte sequences no WebSocket library would send."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import pytest
import trio
import trio.testing
import trio_websocket

from simulator.actors.streams import Endpoint, StreamConnector
from simulator.actors.transport import (
    Transport,
    WebSocketClient,
    open_transport,
    trio_websocket_client,
)
from simulator.actors.websockets_transport import websockets_client
from simulator.ocpp.v16 import PLUGIN

SUBPROTOCOL = PLUGIN.subprotocol

Handler = Callable[[trio_websocket.WebSocketRequest, trio_websocket.WebSocketConnection],
                   Awaitable[None]]
RawHandler = Callable[[trio.abc.Stream, bytes], Awaitable[None]]
Opener = Callable[..., AbstractAsyncContextManager[Transport]]

CLIENTS = [pytest.param(trio_websocket_client, id="trio-websocket"),
           pytest.param(websockets_client, id="websockets")]
"""Every WebSocket client, for ``pytest.mark.parametrize("client", CLIENTS)``."""


def opener_for(client: WebSocketClient) -> Opener:
    """``open_transport`` with the v1.6 plugin and ``client``."""
    return functools.partial(open_transport, plugin=PLUGIN, client=client)


async def serve(nursery: trio.Nursery, handler: Handler, *,
                subprotocol: str | None = SUBPROTOCOL, max_message_size: int = 2**20) -> int:
    """Serve in ``nursery``: accept each handshake with ``subprotocol`` (None: select none) and
    hand the connection to ``handler``; returns the port."""

    async def accept(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept(subprotocol=subprotocol)
        await handler(request, ws)

    server = await nursery.start(
        lambda task_status: trio_websocket.serve_websocket(
            accept, "127.0.0.1", 0, None, max_message_size=max_message_size,
            task_status=task_status,
        )
    )
    return server.port  # type: ignore[no-any-return]


class CloseWatcher:
    """A server handler (:meth:`handle`) that waits for the client's close and records the
    reason trio-websocket saw (``reasons``; ``codes`` for short); ``done`` is set after."""

    def __init__(self) -> None:
        self.reasons: list[trio_websocket.CloseReason | None] = []
        self.done = trio.Event()

    @property
    def codes(self) -> list[int | None]:
        return [None if reason is None else reason.code for reason in self.reasons]

    async def handle(self, request: trio_websocket.WebSocketRequest,
                     ws: trio_websocket.WebSocketConnection) -> None:
        try:
            await ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            self.reasons.append(exc.reason)
        self.done.set()


# --- a raw peer: byte sequences trio-websocket does not produce -------------------------------


def accept_response(request: bytes, *, subprotocol: str = SUBPROTOCOL) -> bytes:
    """The 101 response to the client's handshake ``request``."""
    lines = request.decode("latin-1").split("\r\n")
    key = next(line.split(":", 1)[1].strip() for line in lines
               if line.lower().startswith("sec-websocket-key:"))
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {base64.b64encode(digest).decode()}\r\n"
        f"Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
    ).encode()


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One unmasked server frame (payload under 126 bytes)."""
    assert len(payload) < 126
    return bytes([(0x80 if fin else 0) | opcode, len(payload)]) + payload


def unmask_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split ``data`` into WebSocket frames: ``(opcode, payload)`` each, payloads unmasked.
    Written from RFC 6455 §5.2, independent of the clients under test."""
    frames: list[tuple[int, bytes]] = []
    at = 0
    while at < len(data):
        opcode, masked, length = data[at] & 0x0F, data[at + 1] & 0x80, data[at + 1] & 0x7F
        at += 2
        if length == 126:
            length, at = int.from_bytes(data[at:at + 2], "big"), at + 2
        elif length == 127:
            length, at = int.from_bytes(data[at:at + 8], "big"), at + 8
        key = data[at:at + 4] if masked else bytes(4)
        at += 4 if masked else 0
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(data[at:at + length]))
        frames.append((opcode, payload))
        at += length
    return frames


async def read_request(stream: trio.abc.Stream) -> bytes:
    """Bytes up to the end of the HTTP request head (or of the stream)."""
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        request += chunk
    return request


async def read_until_eof(stream: trio.abc.Stream) -> bytes:
    received = b""
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        while chunk := await stream.receive_some(4096):
            received += chunk
    return received


def raw_peer(nursery: trio.Nursery, handler: RawHandler) -> StreamConnector:
    """A stream connector over memory streams whose peer, run in ``nursery`` (the test's, so
    it outlives the connection), gets its end and the client's handshake request; the
    handler writes the response itself, and its end is closed when it returns."""

    async def connect(endpoint: Endpoint, connection: trio.Nursery) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()

        async def peer() -> None:
            async with server:
                await handler(server, await read_request(server))

        nursery.start_soon(peer)
        return client

    return connect

