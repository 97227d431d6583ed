"""The transports: memory pairs, and the WebSocket transport against real loopback servers."""

from __future__ import annotations

import base64

import pytest
import trio
import trio_websocket

from simulator.actors.transport import (
    SUBPROTOCOL,
    ConnectError,
    TransportClosed,
    basic_auth_header,
    charger_url,
    memory_transport_pair,
    open_websocket_transport,
)
from tests.actors.servers import serve


@pytest.mark.parametrize(
    ("base", "identity", "expected"),
    [
        ("ws://cs.example/ocpp", "CP001", "ws://cs.example/ocpp/CP001"),
        ("ws://cs.example/ocpp/", "RDAM 123", "ws://cs.example/ocpp/RDAM%20123"),
        ("wss://h:9/x", "a/b?c#d", "wss://h:9/x/a%2Fb%3Fc%23d"),
    ],
)
def test_charger_url_percent_encodes_the_identity(base: str, identity: str, expected: str) -> None:
    assert charger_url(base, identity) == expected


def test_basic_auth_header_uses_identity_as_user() -> None:
    name, value = basic_auth_header("CP001", "0123456789abcdef")
    assert name == b"Authorization"
    assert base64.b64decode(value.split(b" ")[1]) == b"CP001:0123456789abcdef"


async def test_memory_pair_carries_frames_both_ways_and_closes() -> None:
    client, server = memory_transport_pair()
    await client.send("[2,\"1\",\"Heartbeat\",{}]")
    assert await server.receive() == "[2,\"1\",\"Heartbeat\",{}]"
    await server.send("[3,\"1\",{}]")
    assert await client.receive() == "[3,\"1\",{}]"
    await server.aclose()
    with pytest.raises(TransportClosed):
        await client.receive()
    with pytest.raises(TransportClosed):
        await server.send("x")


async def test_websocket_transport_offers_ocpp16_and_sends_identity_and_auth() -> None:
    seen: dict[str, object] = {}

    async def echo(
        request: trio_websocket.WebSocketRequest, ws: trio_websocket.WebSocketConnection
    ) -> None:
        seen["path"] = request.path
        seen["protocols"] = list(request.proposed_subprotocols)
        seen["auth"] = dict(request.headers).get(b"authorization")
        message = await ws.get_message()
        await ws.send_message(f"echo:{message}")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, echo)
            async with open_websocket_transport(
                f"ws://127.0.0.1:{port}/ocpp", "CP 1", password="0123456789abcdef"
            ) as transport:
                assert transport.subprotocol == SUBPROTOCOL
                await transport.send("hello")
                assert await transport.receive() == "echo:hello"
            nursery.cancel_scope.cancel()
    assert seen["path"] == "/ocpp/CP%201"
    assert seen["protocols"] == [SUBPROTOCOL]
    assert seen["auth"] == b"Basic " + base64.b64encode(b"CP 1:0123456789abcdef")


async def test_handshake_without_the_subprotocol_is_refused() -> None:
    async def idle(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, idle, subprotocol=None)
            with pytest.raises(ConnectError, match="subprotocol"):
                async with open_websocket_transport(f"ws://127.0.0.1:{port}/ocpp", "CP1"):
                    pass  # pragma: no cover - never reached
            nursery.cancel_scope.cancel()


async def test_server_close_ends_receive_with_transport_closed() -> None:
    async def close_at_once(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await ws.aclose(1001, "going away")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, close_at_once)
            async with open_websocket_transport(f"ws://127.0.0.1:{port}/ocpp", "CP1") as transport:
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
            nursery.cancel_scope.cancel()
    assert closed.value.code == 1001


async def test_a_refused_handshake_is_one_connect_error_naming_the_status() -> None:
    """A CSMS that refuses the charger (a wrong password: HTTP 401) gives the connect loop a
    ConnectError to log and back off on, not an exception group that would crash the charger
    (trio-websocket's reader raises the refusal inside our nursery)."""

    async def refuse(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(401)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(lambda task_status: trio_websocket.serve_websocket(
                refuse, "127.0.0.1", 0, None, task_status=task_status))
            with pytest.raises(ConnectError, match="handshake refused with HTTP 401"):
                async with open_websocket_transport(
                        f"ws://127.0.0.1:{server.port}/ocpp", "CP1", password="wrong-password!!"):
                    pass  # pragma: no cover - never reached
            nursery.cancel_scope.cancel()


async def test_a_silent_server_is_a_connect_error_within_one_budget() -> None:
    """TCP connect and handshake share the connect timeout: a server that accepts and never
    answers is reported once that budget is spent, as one line."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]

    async def hold(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, hold, [listener])
            started = trio.current_time()
            with pytest.raises(ConnectError, match=r"no handshake within 0\.3 s"):
                async with open_websocket_transport(
                        f"ws://127.0.0.1:{port}/ocpp", "CP1", connect_timeout=0.3):
                    pass  # pragma: no cover - never reached
            assert trio.current_time() - started < 0.3 + 0.25
            nursery.cancel_scope.cancel()


async def test_a_peer_that_is_not_a_websocket_server_is_a_connect_error() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]

    async def junk(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)
        await stream.send_all(b"SSH-2.0-OpenSSH\r\n\r\n")
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, junk, [listener])
            with pytest.raises(ConnectError, match="bad handshake response"):
                async with open_websocket_transport(f"ws://127.0.0.1:{port}/ocpp", "CP1"):
                    pass  # pragma: no cover - never reached
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("answer", [b"", b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n",
                                    b"HTTP/1.1 101 Switching"],
                         ids=["closes", "401-then-closes", "half-an-answer"])
async def test_a_server_that_closes_during_the_handshake_fails_the_connect_at_once(
    answer: bytes,
) -> None:
    """trio-websocket waits only for an answer: a CSMS that hangs up on an unknown charger
    would cost the whole connect timeout and read as a timeout. It fails at once, saying so."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]

    async def hang_up(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)
        if answer:
            await stream.send_all(answer)
        await stream.aclose()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, hang_up, [listener])
            started = trio.current_time()
            with pytest.raises(ConnectError, match="closed the connection during the handshake"):
                async with open_websocket_transport(f"ws://127.0.0.1:{port}/ocpp", "CP1",
                                                    connect_timeout=5):
                    pass  # pragma: no cover - never reached
            assert trio.current_time() - started < 1
            nursery.cancel_scope.cancel()


async def test_a_cancelled_connect_or_connection_leaves_as_a_bare_cancellation() -> None:
    """The fleet ending cancels its chargers: whether the transport is in the handshake or
    connected, the caller's scope catches one plain Cancelled (no group of two from the reader
    and the socket's close)."""

    async def hold(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async def idle(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
            silent = listener.socket.getsockname()[1]
            nursery.start_soon(trio.serve_listeners, hold, [listener])
            port = await serve(nursery, idle)
            for url, connected in ((f"ws://127.0.0.1:{silent}/ocpp", False),
                                   (f"ws://127.0.0.1:{port}/ocpp", True)):
                with trio.move_on_after(0.3) as scope:
                    try:
                        async with open_websocket_transport(url, "CP1") as transport:
                            assert connected
                            await transport.receive()
                    except BaseExceptionGroup:  # pragma: no cover - the failure
                        pytest.fail("the cancellation came out in a group")
                assert scope.cancelled_caught
            nursery.cancel_scope.cancel()
