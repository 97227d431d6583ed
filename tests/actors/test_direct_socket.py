"""DirectSocketStream: the plain-TCP stream under the thin transports, over real loopback
sockets (127.0.0.1, port 0, every test bounded)."""

from __future__ import annotations

import functools
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
import trio
import trio.testing

from simulator.actors.sansio_transport import STREAM_ERRORS
from simulator.actors.sockets import READY_STREAK, DirectSocketStream


@asynccontextmanager
async def stream_pair() -> AsyncIterator[tuple[DirectSocketStream, trio.SocketStream]]:
    """A DirectSocketStream connected to a plain trio stream on the server side."""
    accepted: trio.MemorySendChannel[trio.SocketStream]
    accepted, arrivals = trio.open_memory_channel[trio.SocketStream](1)

    async def keep(server: trio.SocketStream) -> None:
        await accepted.send(server)
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, keep, 0,
                                                          host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        client = DirectSocketStream(await trio.open_tcp_stream("127.0.0.1", port))
        server = await arrivals.receive()
        try:
            yield client, server
        finally:
            await client.aclose()
            await server.aclose()
            nursery.cancel_scope.cancel()


async def test_bytes_go_both_ways_and_the_end_of_the_stream_is_empty() -> None:
    with trio.fail_after(10):
        async with stream_pair() as (client, server):
            await client.send_all(b"hello")
            assert await server.receive_some(100) == b"hello"
            await server.send_all(b"world")
            assert await client.receive_some(100) == b"world"
            await server.send_eof()
            assert await client.receive_some(100) == b""


async def test_send_nowait_writes_what_the_socket_takes_and_never_waits() -> None:
    """The thin transports write a frame with it before they fall back to ``send_all``: it
    returns the count written, 0 once the socket buffer is full, and raises for a closed
    socket as ``send_all`` does."""
    with trio.fail_after(10):
        async with stream_pair() as (client, server):
            assert client.send_nowait(b"frame") == 5
            assert await server.receive_some(100) == b"frame"
            chunk, written = b"x" * 65536, 0
            while (sent := client.send_nowait(chunk)) > 0:  # nobody reads: the buffers fill
                written += sent
            assert client.send_nowait(b"more") == 0
            received = 0
            while received < written:
                received += len(await server.receive_some(1 << 20))
            assert received == written
            await client.aclose()
            with pytest.raises(STREAM_ERRORS):
                client.send_nowait(b"late")


async def test_a_read_after_close_raises_a_stream_error_even_after_a_short_read() -> None:
    """A short read makes the next one wait for bytes before trying; on a socket closed
    meanwhile (a cancelled write closes it while the reader is elsewhere) that wait must not
    run on fd -1 (a ValueError, which escaped a transport's aclose): recv raises EBADF, which
    the transports treat as a lost connection."""
    with trio.fail_after(10):
        async with stream_pair() as (client, server):
            await server.send_all(b"a")
            assert await client.receive_some(100) == b"a"
            await client.aclose()
            with pytest.raises(STREAM_ERRORS):
                await client.receive_some(100)


async def test_a_write_larger_than_the_socket_buffers_waits_and_arrives_whole() -> None:
    payload = bytes(range(256)) * (16 * 1024)  # 4 MiB: far more than the kernel buffers hold
    received = bytearray()
    with trio.fail_after(20):
        async with stream_pair() as (client, server):

            async def slow_reader() -> None:
                while len(received) < len(payload):
                    received.extend(await server.receive_some(64 * 1024))
                    await trio.sleep(0.001)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow_reader)
                await client.send_all(payload)
    assert received == payload


async def test_a_cancelled_wait_for_bytes_loses_nothing() -> None:
    with trio.fail_after(10):
        async with stream_pair() as (client, server):
            with trio.move_on_after(0.05) as waited:
                await client.receive_some(100)
            assert waited.cancelled_caught
            await server.send_all(b"late")
            assert await client.receive_some(100) == b"late"


async def test_closing_wakes_a_reader_that_waits() -> None:
    with trio.fail_after(10):
        async with stream_pair() as (client, _server):
            async with trio.open_nursery() as nursery:

                async def reader() -> None:
                    with pytest.raises(trio.ClosedResourceError):
                        await client.receive_some(100)

                nursery.start_soon(reader)
                await trio.testing.wait_all_tasks_blocked()
                await client.aclose()
            await client.aclose()  # again: a no-op


async def test_a_ready_socket_is_written_and_read_without_yielding() -> None:
    """The point of the class: no trip through the scheduler when the socket is ready."""
    with trio.fail_after(10):
        async with stream_pair() as (client, server):
            await server.send_all(b"ready")
            await trio.sleep(0.05)  # the bytes are in the client's socket buffer
            yields = 0

            async def count_yields() -> None:
                nonlocal yields
                while True:
                    await trio.lowlevel.checkpoint()
                    yields += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(count_yields)
                await trio.sleep(0.01)  # the counter runs
                before = yields
                assert await client.receive_some(100) == b"ready"
                await client.send_all(b"sent")
                assert yields == before  # the counter never ran in between
                nursery.cancel_scope.cancel()
            assert await server.receive_some(100) == b"sent"


@contextmanager
def flooding_peer() -> Iterator[int]:
    """A peer in another thread that writes as fast as it can: the socket stays readable."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def flood() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(0.1)
            chunk = b"x" * 65536
            while not stop.is_set():
                try:
                    connection.sendall(chunk)
                except TimeoutError:
                    continue
                except OSError:
                    return

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


async def test_a_peer_that_keeps_the_socket_ready_cannot_hold_off_deadlines_or_others() -> None:
    """Reads that never wait still yield every READY_STREAK calls: the reader's own timeout
    fires and the other tasks keep running."""
    with flooding_peer() as port, trio.fail_after(10):
        client = DirectSocketStream(await trio.open_tcp_stream("127.0.0.1", port))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await trio.sleep(0.001)
                ticks += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            await trio.sleep(0.05)  # the peer has filled the socket buffers
            reads = 0
            started = time.perf_counter()
            with trio.move_on_after(0.2) as timeout:
                while True:
                    data = await client.receive_some(1024)  # never catches up
                    assert data.count(b"x") == len(data)  # what a transport does with it
                    reads += 1
            assert timeout.cancelled_caught
            assert time.perf_counter() - started < 1.0
            assert reads > READY_STREAK  # most reads did not wait
            assert ticks > 10
            nursery.cancel_scope.cancel()
        await client.aclose()



async def test_errors_are_trios_closed_after_aclose_and_broken_for_a_failed_socket() -> None:
    """trio-websocket's reader runs on this stream and ends on trio's errors, not OSError:
    ``ClosedResourceError`` once this side closed it, ``BrokenResourceError`` (caused by the
    OSError) when the peer reset the connection."""
    with trio.fail_after(10):
        async with stream_pair() as (client, server):
            server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
            await server.aclose()  # linger on, 0 s: the close resets the connection
            with pytest.raises(trio.BrokenResourceError) as broken:
                for _ in range(100):  # the reset may take a moment to arrive
                    await client.send_all(b"x" * 1024)
                    await trio.sleep(0.01)
            assert isinstance(broken.value.__cause__, OSError)
            await client.aclose()
            with pytest.raises(trio.ClosedResourceError):
                await client.receive_some(10)
            with pytest.raises(trio.ClosedResourceError):
                await client.send_all(b"late")
            with pytest.raises(trio.ClosedResourceError):
                client.send_nowait(b"late")
