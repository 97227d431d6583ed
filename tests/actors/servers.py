"""A trio-websocket server on 127.0.0.1 port 0 for the transport tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
import trio_websocket

from simulator.actors.transport import SUBPROTOCOL

Handler = Callable[[trio_websocket.WebSocketRequest, trio_websocket.WebSocketConnection],
                   Awaitable[None]]


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
