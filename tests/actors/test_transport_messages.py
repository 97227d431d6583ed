"""A connected transport: messages, pings, closing, and peers that break the protocol, on both
WebSocket clients (each test runs on both). Well-behaved peers are trio-websocket servers on
127.0.0.1 port 0; byte sequences no library would send come from a raw peer over memory
streams."""

from __future__ import annotations

import pytest
import trio
import trio.testing
import trio_websocket

from simulator.actors.streams import Endpoint
from simulator.actors.transport import DEFAULT_CLOSE_TIMEOUT, TransportClosed, WebSocketClient
from simulator.actors.websockets_transport import websockets_client
from simulator.csms import CsmsOptions, CsmsServer
from simulator.csms.server import new_central_system
from tests.actors.servers import (
    CLIENTS,
    CloseWatcher,
    accept_response,
    frame,
    opener_for,
    raw_peer,
    read_until_eof,
    serve,
    unmask_frames,
)


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> WebSocketClient:
    """Each WebSocket client."""
    chosen: WebSocketClient = request.param
    return chosen


async def test_ping_is_answered_while_receiving(client: WebSocketClient) -> None:
    async def ping_then_talk(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await ws.ping(b"are you there")  # returns once the matching pong arrives
        await ws.send_message("pong seen")
        await ws.get_message()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, ping_then_talk)
            async with opener_for(client)(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
                assert await transport.receive() == "pong seen"
            nursery.cancel_scope.cancel()


async def test_server_close_ends_receive_and_send_with_transport_closed(
    client: WebSocketClient,
) -> None:
    async def close_at_once(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await ws.aclose(1001, "going away")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, close_at_once)
            async with opener_for(client)(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
                with pytest.raises(TransportClosed):
                    await transport.send("too late")
            nursery.cancel_scope.cancel()
    assert (closed.value.code, closed.value.reason) == (1001, "going away")


async def test_aclose_does_the_closing_handshake_and_wakes_the_reader(
    client: WebSocketClient,
) -> None:
    server = CloseWatcher()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, server.handle)
            async with opener_for(client)(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
                reader_saw: list[TransportClosed] = []

                async def reader() -> None:
                    try:
                        await transport.receive()
                    except TransportClosed as exc:
                        reader_saw.append(exc)

                async with trio.open_nursery() as readers:
                    readers.start_soon(reader)
                    await trio.testing.wait_all_tasks_blocked()
                    await transport.aclose(4000, "bye")
                await transport.aclose()  # idempotent
            await server.done.wait()
            nursery.cancel_scope.cancel()
    assert server.codes == [4000]
    assert [(e.code, e.reason) for e in reader_saw] == [(4000, "bye")]


async def test_fragmented_messages_are_joined_and_binary_ones_stay_binary(
    client: WebSocketClient,
) -> None:
    """A binary message comes out as the bytes that were sent, never as text: OCPP-J is text
    only, and the charger must be able to tell (it records and ignores a binary frame)."""
    async def send_odd_frames(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await ws.send_message("x" * 200_000)  # many TCP reads, one message
        await ws.send_message(b'[2,"1","Heartbeat",{}]')
        await ws.send_message(b"\xff\xfe")  # not UTF-8: not fatal in a binary frame
        await ws.send_message(b"z" * 200_000)
        await ws.send_message("after")
        await ws.get_message()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, send_odd_frames)
            async with opener_for(client)(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
                assert await transport.receive() == "x" * 200_000
                assert await transport.receive() == b'[2,"1","Heartbeat",{}]'
                assert await transport.receive() == b"\xff\xfe"
                assert await transport.receive() == b"z" * 200_000
                assert await transport.receive() == "after"
            nursery.cancel_scope.cancel()


async def test_message_over_the_limit_closes_with_1009(client: WebSocketClient) -> None:
    server = CloseWatcher()

    async def send_big(request: trio_websocket.WebSocketRequest,
                       ws: trio_websocket.WebSocketConnection) -> None:
        await ws.send_message("y" * 5000)
        await server.handle(request, ws)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, send_big)
            async with opener_for(client)(
                f"ws://127.0.0.1:{port}/ocpp", "CP1", max_message_size=1000
            ) as transport:
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
            await server.done.wait()
            nursery.cancel_scope.cancel()
    assert closed.value.code == 1009
    assert server.codes == [1009]


async def test_send_and_receive_concurrently_with_pings(client: WebSocketClient) -> None:
    """A writer task sends while the reader answers pings: writes never interleave."""

    async def echo_and_ping(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        async with trio.open_nursery() as pings:

            async def ping_often() -> None:
                for n in range(50):
                    await ws.ping(str(n).encode())

            pings.start_soon(ping_often)
            for _ in range(200):
                message = await ws.get_message()
                assert isinstance(message, str)
                await ws.send_message("echo:" + message)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, echo_and_ping)
            async with opener_for(client)(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
                received: list[str] = []

                async def reader() -> None:
                    while len(received) < 200:
                        received.append(await transport.receive())

                async with trio.open_nursery() as both:
                    both.start_soon(reader)
                    for n in range(200):
                        await transport.send(f"m{n}" + "z" * 3000)
            nursery.cancel_scope.cancel()
    assert received == [f"echo:m{n}" + "z" * 3000 for n in range(200)]


async def test_leaving_the_body_by_cancellation_closes_with_1000(client: WebSocketClient) -> None:
    server = CloseWatcher()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, server.handle)
            with trio.CancelScope() as scope:
                async with opener_for(client)(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
                    scope.cancel()
                    await transport.receive()
            await server.done.wait()
            nursery.cancel_scope.cancel()
    assert scope.cancelled_caught
    assert server.codes == [1000]


async def test_a_connection_cancelled_from_outside_completes_the_closing_handshake_at_once(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    """A charger cancelled as a whole (the end of a run) still reads the peer's half of the
    closing handshake: leaving takes no (virtual) time, not the close timeout."""
    server = CsmsServer(new_central_system(CsmsOptions(), wall_epoch=0.0, new_id=lambda: "x"))
    with trio.fail_after(10):
        async with trio.open_nursery() as outside:  # the peer is not cancelled with the charger

            async def connect(endpoint: Endpoint, nursery: trio.Nursery) -> trio.abc.Stream:
                ours, theirs = trio.testing.memory_stream_pair()
                outside.start_soon(server.serve_stream, theirs)
                return ours

            with trio.CancelScope() as scope:
                async with opener_for(client)("ws://embedded/ocpp", "CP1",
                                              connect_stream=connect) as transport:
                    await transport.send('[2,"1","Heartbeat",{}]')
                    assert (await transport.receive()).startswith('[3,"1",')
                    cancelled_at = trio.current_time()
                    scope.cancel()
                    await transport.receive()
            closed_after = trio.current_time() - cancelled_at
    assert scope.cancelled_caught
    assert closed_after < DEFAULT_CLOSE_TIMEOUT
    assert server.connected() == ()


@pytest.mark.parametrize(
    ("code", "reason", "wire"),
    [(1006, "reset", None),  # not a code for the wire: the stream is dropped without a frame
     (4002, "é" * 100, (4002, "é" * 61))],  # the reason is cut to fit a control frame
)
async def test_aclose_with_codes_and_reasons_the_wire_cannot_carry(
    client: WebSocketClient, code: int, reason: str, wire: tuple[int, str] | None
) -> None:
    server = CloseWatcher()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, server.handle)
            async with opener_for(client)(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
                await transport.aclose(code, reason)
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
            await server.done.wait()
            nursery.cancel_scope.cancel()
    assert (closed.value.code, closed.value.reason) == (code, reason)
    (got,) = server.reasons
    assert got is not None
    assert (None if got.code == 1006 else (got.code, got.reason or "")) == wire


# --- a raw peer over memory streams -------------------------------------------------------


async def test_frames_in_the_same_read_as_the_handshake_response_are_not_lost(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    """101, a ping, a text message, a fragmented one and a close in one write: the messages
    come out, the ping is answered, then the peer's close code."""
    client_sent: list[bytes] = []

    async def glued(stream: trio.abc.Stream, request: bytes) -> None:
        await stream.send_all(
            accept_response(request)
            + frame(0x9, b"early")  # ping
            + frame(0x1, b"first")
            + frame(0x1, b"sec", fin=False) + frame(0x0, b"o", fin=False) + frame(0x0, b"nd")
            + frame(0x8, (4001).to_bytes(2, "big") + b"done")
        )
        client_sent.append(await read_until_eof(stream))

    async with trio.open_nursery() as nursery, opener_for(client)("ws://cs.test/ocpp", "CP1",
                                  connect_stream=raw_peer(nursery, glued)) as transport:
        assert await transport.receive() == "first"
        assert await transport.receive() == "second"
        with pytest.raises(TransportClosed) as closed:
            await transport.receive()
    assert (closed.value.code, closed.value.reason) == (4001, "done")
    (sent,) = client_sent
    assert unmask_frames(sent) == [(0xA, b"early"),  # the pong first
                                   (0x8, (4001).to_bytes(2, "big") + b"done")]  # the close reply


async def test_a_stream_that_just_ends_is_1006_for_receive_and_send(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    async def vanish(stream: trio.abc.Stream, request: bytes) -> None:
        await stream.send_all(accept_response(request) + frame(0x1, b"last words"))

    async with trio.open_nursery() as nursery, opener_for(client)("ws://cs.test/ocpp", "CP1",
                                  connect_stream=raw_peer(nursery, vanish)) as transport:
        assert await transport.receive() == "last words"
        with pytest.raises(TransportClosed) as closed:
            await transport.receive()
        with pytest.raises(TransportClosed) as too_late:
            await transport.send("anyone?")
    assert closed.value.code == too_late.value.code == 1006


async def test_a_fragmented_binary_message_is_joined_as_bytes(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    async def fragments(stream: trio.abc.Stream, request: bytes) -> None:
        await stream.send_all(accept_response(request) + frame(0x2, b"[2,", fin=False)
                              + frame(0x0, b'"1",', fin=False) + frame(0x0, b'"Heartbeat",{}]')
                              + frame(0x1, b"te", fin=False) + frame(0x0, b"xt"))
        await read_until_eof(stream)

    async with trio.open_nursery() as nursery, opener_for(client)("ws://cs.test/ocpp", "CP1",
                                  connect_stream=raw_peer(nursery, fragments)) as transport:
        assert await transport.receive() == b'[2,"1","Heartbeat",{}]'
        assert await transport.receive() == "text"


@pytest.mark.parametrize(
    ("frames", "code"),
    [(frame(0x1, b"\xff\xfe"), 1007),  # a text frame that is not UTF-8
     (frame(0x0, b"orphan"), 1002),  # a continuation without a start
     (bytes([0x81, 0x80 | 2, 0, 0, 0, 0]) + b"hi", 1002)],  # a masked server frame
    ids=["bad-utf8", "orphan-continuation", "masked-frame"],
)
async def test_a_peer_breaking_the_protocol_is_closed_with_its_code(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock, frames: bytes, code: int
) -> None:
    """The transport ends with the code of the peer's fault; the websockets client also tells
    the peer in a close frame."""
    client_sent: list[bytes] = []

    async def misbehave(stream: trio.abc.Stream, request: bytes) -> None:
        await stream.send_all(accept_response(request))
        await stream.receive_some(4096)  # the client's "ready": the handshake is behind it
        await stream.send_all(frames)
        client_sent.append(await read_until_eof(stream))

    async with trio.open_nursery() as nursery, opener_for(client)("ws://cs.test/ocpp", "CP1",
                                  connect_stream=raw_peer(nursery, misbehave)) as transport:
        await transport.send("ready")
        with pytest.raises(TransportClosed) as closed:
            await transport.receive()
    assert closed.value.code == code
    (sent,) = client_sent  # read to the end: the client closed the stream
    if client is websockets_client:  # (trio-websocket drops the stream without a close frame)
        (opcode, payload), *_ = unmask_frames(sent)
        assert opcode == 0x8
        assert int.from_bytes(payload[:2], "big") == code
