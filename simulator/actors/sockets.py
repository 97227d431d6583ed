"""A TCP socket as a trio stream that goes through the scheduler only when it must wait.

Under every WebSocket transport of the fleet (``transport``, ``wsproto_transport``,
``websockets_transport``) for plain ``ws://``; TLS goes through ``trio.SSLStream``.
"""

from __future__ import annotations

import socket
from typing import Final

import trio

RECEIVE_SIZE: Final = 64 * 1024
"""Bytes asked of the stream per read."""
READY_STREAK: Final = 16
""":class:`DirectSocketStream` calls that may complete without waiting before one yields."""


class DirectSocketStream(trio.abc.Stream):
    """A connected TCP socket as a trio stream that goes through the scheduler only to wait.

    ``trio.SocketStream`` yields to the scheduler around every ``send`` and ``recv`` that
    succeeds at once (a checkpoint, so that every call may be cancelled); with one send and one
    receive per exchange that was two trips through the run loop each, about 15% of the CPU of
    a bare exchange (measured with 1,000 connections). Here a call that can complete does so
    without yielding, like ``send_nowait``, except once every :data:`READY_STREAK` calls in a
    row (a peer that keeps the socket ready must not stall the other tasks, nor the caller's
    own deadlines, which the run loop notices only when the task yields); a cancelled caller is
    refused at once. Takes over the socket of ``stream`` (TCP_NODELAY stays set). Errors are
    trio's: ``ClosedResourceError`` after :meth:`aclose`, ``BrokenResourceError`` for a socket
    that failed (trio-websocket's reader relies on them).
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self._socket = socket.socket(fileno=stream.socket.detach())
        self._socket.setblocking(False)
        self._unyielded = 0  # calls completed in a row without going through the scheduler
        # The last read returned less than asked, so it emptied the socket: the next one waits
        # for bytes before it tries (a request-response peer is silent right after an answer;
        # trying first cost a recv that fails with EAGAIN, and its exception, every exchange).
        self._drained = False

    async def _pace(self) -> None:
        """Raise ``Cancelled`` if the task is cancelled, and yield once every
        :data:`READY_STREAK` calls that did not wait: a deadline is only noticed by the run
        loop, and a peer that keeps the socket ready must not keep the other tasks (or the
        close timeout of the reader's own ``move_on_after``) waiting."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self._unyielded += 1
        if self._unyielded >= READY_STREAK:
            self._unyielded = 0
            await trio.lowlevel.checkpoint()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._pace()
        with memoryview(data) as view:
            while view:
                try:
                    sent = self._socket.send(view)
                except BlockingIOError:
                    self._unyielded = 0
                    await trio.lowlevel.wait_writable(self._socket)
                    continue
                except OSError as exc:
                    raise self._gone(exc) from exc
                view = view[sent:]

    def send_nowait(self, data: bytes) -> int:
        """Write what the socket takes of ``data`` now, without waiting and without a
        coroutine: the count of bytes written (0 when it takes none). Raises as
        :meth:`send_all` does. Not a cancellation point."""
        try:
            return self._socket.send(data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise self._gone(exc) from exc

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.wait_writable(self._socket)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await self._pace()
        size = max_bytes or RECEIVE_SIZE
        drained, self._drained = self._drained, False
        if drained and self._socket.fileno() != -1:  # the last read emptied the socket: wait
            self._unyielded = 0  # before trying, no EAGAIN (closed: recv raises below)
            await trio.lowlevel.wait_readable(self._socket)
        while True:
            try:
                data = self._socket.recv(size)
            except BlockingIOError:
                self._unyielded = 0
                await trio.lowlevel.wait_readable(self._socket)
                continue
            except OSError as exc:
                raise self._gone(exc) from exc
            self._drained = 0 < len(data) < size
            return data

    def _gone(self, exc: OSError) -> trio.ClosedResourceError | trio.BrokenResourceError:
        """What a failed call raises, as trio's streams do: ``ClosedResourceError`` once this
        side closed the stream, ``BrokenResourceError`` (caused by the ``OSError``) otherwise."""
        if self._socket.fileno() == -1:
            return trio.ClosedResourceError("the stream is closed")
        return trio.BrokenResourceError(f"socket error: {exc}")

    async def aclose(self) -> None:
        if self._socket.fileno() != -1:
            trio.lowlevel.notify_closing(self._socket)  # a task waiting on it gets woken
            self._socket.close()
        await trio.lowlevel.checkpoint()


__all__ = ["READY_STREAK", "RECEIVE_SIZE", "DirectSocketStream"]
