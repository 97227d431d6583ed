"""The two thin transports (sans-IO wsproto, sans-IO websockets) against real loopback servers:
the embedded CSMS and trio-websocket. Each test runs on both: they promise the same behaviour.
What only the websockets transport is tested on (raw byte sequences) is in
``test_websockets_transport.py``; wss:// for every transport is in ``test_tls.py``."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest
import trio
import trio.testing
import trio_websocket

from simulator.actors.transport import (
    NOT_SENT,
    SENT,
    STARTED,
    SUBPROTOCOL,
    ConnectError,
    Transport,
    TransportClosed,
    open_websocket_transport,
)
from simulator.actors.websockets_transport import open_websockets_transport
from simulator.actors.wsproto_transport import open_wsproto_transport
from simulator.csms import CsmsOptions, open_csms
from tests.actors.servers import CloseWatcher, serve

PASSWORD = "0123456789abcdef"
BOOT = json.dumps(
    [2, "boot-1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]
)

Opener = Callable[..., AbstractAsyncContextManager[Transport]]


@pytest.fixture(params=[pytest.param(open_wsproto_transport, id="wsproto"),
                        pytest.param(open_websockets_transport, id="websockets")])
def open_thin(request: pytest.FixtureRequest) -> Opener:
    """Each thin transport's ``open_*_transport``."""
    opener: Opener = request.param
    return opener


async def test_boot_notification_round_trip_with_the_embedded_csms(open_thin: Opener) -> None:
    with trio.fail_after(10):
        async with (
            open_csms(CsmsOptions()) as csms,
            open_thin(csms.url, "CP 1/x") as transport,
        ):
            assert transport.subprotocol == SUBPROTOCOL
            await transport.send(BOOT)
            reply = json.loads(await transport.receive())
            assert csms.server.connected() == ("CP 1/x",)  # percent-decoded by the CSMS
    assert reply[:2] == [3, "boot-1"]
    assert reply[2]["status"] == "Accepted"


async def test_identity_is_percent_encoded_and_basic_auth_sent(open_thin: Opener) -> None:
    seen: dict[str, object] = {}

    async def record(request: trio_websocket.WebSocketRequest,
                     ws: trio_websocket.WebSocketConnection) -> None:
        seen["path"] = request.path
        seen["protocols"] = list(request.proposed_subprotocols)
        seen["auth"] = dict(request.headers).get(b"authorization")
        await ws.send_message("hello")
        await ws.get_message()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, record)
            async with open_thin(
                f"ws://127.0.0.1:{port}/ocpp/", "CP 1/x", password=PASSWORD
            ) as transport:
                assert await transport.receive() == "hello"
            nursery.cancel_scope.cancel()
    assert seen["path"] == "/ocpp/CP%201%2Fx"
    assert seen["protocols"] == [SUBPROTOCOL]
    assert seen["auth"] == b"Basic Q1AgMS94OjAxMjM0NTY3ODlhYmNkZWY="  # "CP 1/x:0123456789abcdef"


async def test_basic_auth_against_the_embedded_csms(open_thin: Opener) -> None:
    options = CsmsOptions(passwords={"CP1": PASSWORD})
    with trio.fail_after(10):
        async with open_csms(options) as csms:
            async with open_thin(csms.url, "CP1", password=PASSWORD) as transport:
                await transport.send(BOOT)
                assert json.loads(await transport.receive())[2]["status"] == "Accepted"
            for password in ("wrong-password-16", None):
                with pytest.raises(ConnectError, match="HTTP 401") as raised:
                    async with open_thin(csms.url, "CP1", password=password):
                        pass  # pragma: no cover - never reached
                assert f"{csms.url}/CP1" in str(raised.value)


async def test_http_404_is_a_connect_error_with_the_status(open_thin: Opener) -> None:
    with trio.fail_after(10):
        async with open_csms(CsmsOptions()) as csms:
            wrong_path = csms.url.removesuffix("/ocpp") + "/elsewhere"
            with pytest.raises(ConnectError) as raised:
                async with open_thin(wrong_path, "CP1"):
                    pass  # pragma: no cover - never reached
    message = str(raised.value)
    assert message == f"{wrong_path}/CP1: handshake refused with HTTP 404"


async def test_handshake_without_the_subprotocol_is_refused(open_thin: Opener) -> None:
    async def idle(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, idle, subprotocol=None)
            refused = pytest.raises(ConnectError, match=r"did not select subprotocol 'ocpp1\.6'")
            with refused as raised:
                async with open_thin(f"ws://127.0.0.1:{port}/ocpp", "CP1"):
                    pass  # pragma: no cover - never reached
            nursery.cancel_scope.cancel()
    assert str(raised.value).startswith(f"ws://127.0.0.1:{port}/ocpp/CP1: ")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("opener", [
    pytest.param(open_wsproto_transport, id="wsproto"),
    pytest.param(open_websockets_transport, id="websockets"),
    pytest.param(open_websocket_transport, id="trio-websocket"),
])
async def test_unreachable_port_is_one_clear_connect_error(opener: Opener) -> None:
    """The same line from every transport, the default one included."""
    with trio.fail_after(10):
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()  # nothing listens on this port now
        with pytest.raises(ConnectError) as raised:
            async with opener(f"ws://127.0.0.1:{port}/ocpp", "CP1"):
                pass  # pragma: no cover - never reached
    message = str(raised.value)
    assert f"ws://127.0.0.1:{port}/ocpp/CP1" in message
    assert message.startswith(f"ws://127.0.0.1:{port}/ocpp/CP1: ")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("base_url", "complaint"),
    [("http://127.0.0.1:1/ocpp", "not a ws:// or wss:// URL"),
     ("ws://127.0.0.1:99999/ocpp", "bad port")],
)
async def test_a_bad_url_is_one_clear_connect_error(
    open_thin: Opener, base_url: str, complaint: str
) -> None:
    with trio.fail_after(10), pytest.raises(ConnectError) as raised:
        async with open_thin(base_url, "CP1"):
            pass  # pragma: no cover - never reached
    assert str(raised.value).startswith(f"{base_url}/CP1: {complaint}")


async def test_silent_server_is_a_handshake_timeout(open_thin: Opener) -> None:
    with trio.fail_after(10):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        async with listeners[0]:  # accepts in the kernel backlog, never answers
            with pytest.raises(ConnectError, match=r"no handshake within 0\.2 s"):
                async with open_thin(
                    f"ws://127.0.0.1:{port}/ocpp", "CP1", connect_timeout=0.2
                ):
                    pass  # pragma: no cover - never reached


async def test_ping_is_answered_inside_receive(open_thin: Opener) -> None:
    async def ping_then_talk(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await ws.ping(b"are you there")  # returns once the matching pong arrives
        await ws.send_message("pong seen")
        await ws.get_message()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, ping_then_talk)
            async with open_thin(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
                assert await transport.receive() == "pong seen"
            nursery.cancel_scope.cancel()


async def test_server_close_ends_receive_and_send_with_transport_closed(open_thin: Opener) -> None:
    async def close_at_once(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await ws.aclose(1001, "going away")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, close_at_once)
            async with open_thin(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
                with pytest.raises(TransportClosed):
                    await transport.send("too late")
            nursery.cancel_scope.cancel()
    assert (closed.value.code, closed.value.reason) == (1001, "going away")


async def test_aclose_does_the_closing_handshake_and_wakes_the_reader(open_thin: Opener) -> None:
    server = CloseWatcher()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, server.handle)
            async with open_thin(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
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


async def test_fragmented_and_binary_messages_are_joined_as_text(open_thin: Opener) -> None:
    async def send_odd_frames(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await ws.send_message("x" * 200_000)  # many TCP reads, one message
        await ws.send_message(b'[2,"1","Heartbeat",{}]')
        await ws.send_message(b"\xff\xfe")  # not UTF-8: replaced, not fatal, in a binary frame
        await ws.get_message()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, send_odd_frames)
            async with open_thin(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
                assert await transport.receive() == "x" * 200_000
                assert await transport.receive() == "[2,\"1\",\"Heartbeat\",{}]"
                assert await transport.receive() == "\ufffd\ufffd"
            nursery.cancel_scope.cancel()


async def test_message_over_the_limit_closes_with_1009(open_thin: Opener) -> None:
    server = CloseWatcher()

    async def send_big(request: trio_websocket.WebSocketRequest,
                       ws: trio_websocket.WebSocketConnection) -> None:
        await ws.send_message("y" * 5000)
        await server.handle(request, ws)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, send_big)
            async with open_thin(
                f"ws://127.0.0.1:{port}/ocpp", "CP1", max_message_size=1000
            ) as transport:
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
            await server.done.wait()
            nursery.cancel_scope.cancel()
    assert closed.value.code == 1009
    assert server.codes == [1009]


async def test_send_and_receive_concurrently_with_pings(open_thin: Opener) -> None:
    """The main loop sends while the reader answers pings: writes never interleave."""

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
            async with open_thin(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
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


async def test_leaving_the_body_by_cancellation_closes_with_1000(open_thin: Opener) -> None:
    server = CloseWatcher()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, server.handle)
            with trio.CancelScope() as scope:
                async with open_thin(
                    f"ws://127.0.0.1:{port}/ocpp", "CP1"
                ) as transport:
                    scope.cancel()
                    await transport.receive()
            await server.done.wait()
            nursery.cancel_scope.cancel()
    assert scope.cancelled_caught
    assert server.codes == [1000]


async def test_wss_to_a_plain_server_is_one_clear_connect_error(open_thin: Opener) -> None:
    async def idle(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, idle)
            with pytest.raises(ConnectError) as raised:
                async with open_thin(f"wss://127.0.0.1:{port}/ocpp", "CP1"):
                    pass  # pragma: no cover - never reached
            nursery.cancel_scope.cancel()
    message = str(raised.value)
    assert message.startswith(f"wss://127.0.0.1:{port}/ocpp/CP1: ")
    assert "\n" not in message


async def fill_until_started(transport: Transport, size: int, limit: int = 400) -> list[str]:
    """``send_nowait`` messages of ``size`` characters (each of its own letter) until the socket
    takes one only in part; returns them all, the started one last."""
    sent: list[str] = []
    for n in range(limit):
        message = chr(ord("a") + n % 26) * size
        status = transport.send_nowait(message)
        sent.append(message)
        if status == STARTED:
            return sent
        assert status == SENT
    raise AssertionError(f"{limit} messages of {size} characters never filled the socket")


async def test_send_nowait_writes_whole_frames_and_a_started_one_is_flushed_first(
    open_thin: Opener,
) -> None:
    size = 200_000
    received: list[str] = []
    reading = trio.Event()
    got_last = trio.Event()

    async def read_later(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await reading.wait()
        try:
            while True:
                received.append(str(await ws.get_message()))
                if received[-1] == "last":
                    got_last.set()
        except trio_websocket.ConnectionClosed:
            pass

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, read_later)
            async with open_thin(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
                sent = await fill_until_started(transport, size)
                # the frame started holds the write lock: nothing else may go on the wire now
                assert transport.send_nowait("queued") == NOT_SENT
                waiting_send_done = trio.Event()

                async def send_after() -> None:
                    await transport.send("after")
                    waiting_send_done.set()

                nursery.start_soon(send_after)
                await trio.testing.wait_all_tasks_blocked()
                assert not waiting_send_done.is_set()  # a send waits for the flush
                reading.set()  # the server reads: the rest of the frame goes out
                await transport.flush()
                await waiting_send_done.wait()
                assert transport.send_nowait("last") == SENT
                await got_last.wait()
            nursery.cancel_scope.cancel()
    assert received == [*sent, "after", "last"]  # whole, in order, none interleaved


async def test_aclose_with_a_frame_half_written_cuts_the_connection(open_thin: Opener) -> None:
    reasons: list[int | None] = []
    done = trio.Event()

    async def never_read(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await trio.sleep(2)  # the client's close comes first; then drain to see how it ended
        try:
            while True:
                await ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            reasons.append(None if exc.reason is None else exc.reason.code)
        done.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, never_read)
            async with open_thin(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
                await fill_until_started(transport, 200_000)
                with trio.fail_after(1):  # no wait for a close frame that cannot be sent
                    await transport.aclose()
                with pytest.raises(TransportClosed):
                    transport.send_nowait("too late")
            await done.wait()
            nursery.cancel_scope.cancel()
    assert reasons and reasons[0] != 1000  # no clean closing handshake: the peer saw a cut
