"""Opening a transport: the URL, the handshake and every way it can fail, on both WebSocket
clients (each test runs on both: they promise the same behaviour). Loopback servers run on
127.0.0.1 port 0; the byte-exact and timing cases run over memory streams on the mock clock.
The connected behaviour is in ``test_transport_messages.py``, wss:// in ``test_tls.py``."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import re

import pytest
import trio
import trio.testing
import trio_websocket

from simulator.actors.streams import Endpoint
from simulator.actors.transport import (
    ConnectError,
    TransportClosed,
    WebSocketClient,
    basic_auth_header,
    charger_url,
    memory_transport_pair,
    parse_endpoint,
)
from simulator.actors.websockets_transport import websockets_client
from simulator.csms import CsmsOptions, open_csms
from simulator.ocpp.v16 import PLUGIN
from tests.actors.servers import (
    CLIENTS,
    SUBPROTOCOL,
    accept_response,
    opener_for,
    raw_peer,
    read_until_eof,
    serve,
)

PASSWORD = "0123456789abcdef"
BOOT = json.dumps(
    [2, "boot-1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]
)



@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> WebSocketClient:
    """Each WebSocket client."""
    chosen: WebSocketClient = request.param
    return chosen


async def idle(request: object, ws: trio_websocket.WebSocketConnection) -> None:
    await trio.sleep_forever()


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


@pytest.mark.parametrize(
    ("url", "host", "port", "host_header", "resource"),
    [("ws://cs.example/ocpp/CP1", "cs.example", 80, "cs.example", "/ocpp/CP1"),
     ("wss://cs.example:443/o/CP1?x=1", "cs.example", 443, "cs.example", "/o/CP1?x=1"),
     ("ws://[::1]:9000/ocpp/CP1", "::1", 9000, "[::1]:9000", "/ocpp/CP1")],
)
def test_an_endpoint_names_the_port_in_the_host_header_unless_it_is_the_default(
    url: str, host: str, port: int, host_header: str, resource: str
) -> None:
    endpoint = parse_endpoint(url)
    assert endpoint == Endpoint(url=url, host=host, port=port, secure=url.startswith("wss"),
                                resource=resource, host_header=host_header)


def test_basic_auth_header_uses_identity_as_user() -> None:
    name, value = basic_auth_header("CP001", PASSWORD)
    assert name == b"Authorization"
    assert base64.b64decode(value.split(b" ")[1]) == b"CP001:0123456789abcdef"


async def test_memory_pair_carries_frames_both_ways_and_closes() -> None:
    near, far = memory_transport_pair()
    await near.send("[2,\"1\",\"Heartbeat\",{}]")
    assert await far.receive() == "[2,\"1\",\"Heartbeat\",{}]"
    await far.send("[3,\"1\",{}]")
    assert await near.receive() == "[3,\"1\",{}]"
    await far.aclose()
    with pytest.raises(TransportClosed):
        await near.receive()
    with pytest.raises(TransportClosed):
        await far.send("x")


async def test_boot_notification_round_trip_with_the_embedded_csms(
    client: WebSocketClient,
) -> None:
    with trio.fail_after(10):
        async with (
            open_csms(CsmsOptions()) as csms,
            opener_for(client)(csms.url, "CP 1/x") as transport,
        ):
            assert transport.subprotocol == SUBPROTOCOL
            await transport.send(BOOT)
            reply = json.loads(await transport.receive())
            assert csms.server.connected() == ("CP 1/x",)  # percent-decoded by the CSMS
    assert reply[:2] == [3, "boot-1"]
    assert reply[2]["status"] == "Accepted"


async def test_the_plugins_subprotocol_is_offered_with_the_identity_and_auth(
    client: WebSocketClient,
) -> None:
    seen: dict[str, object] = {}

    async def echo(request: trio_websocket.WebSocketRequest,
                   ws: trio_websocket.WebSocketConnection) -> None:
        seen["path"] = request.path
        seen["protocols"] = list(request.proposed_subprotocols)
        seen["auth"] = dict(request.headers).get(b"authorization")
        message = await ws.get_message()
        assert isinstance(message, str)
        await ws.send_message(f"echo:{message}")
        with contextlib.suppress(trio_websocket.ConnectionClosed):
            await ws.get_message()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, echo)
            async with opener_for(client)(
                f"ws://127.0.0.1:{port}/ocpp/", "CP 1/x", password=PASSWORD
            ) as transport:
                assert transport.subprotocol == SUBPROTOCOL
                await transport.send("hello")
                assert await transport.receive() == "echo:hello"
            nursery.cancel_scope.cancel()
    assert seen["path"] == "/ocpp/CP%201%2Fx"
    assert seen["protocols"] == [SUBPROTOCOL]
    assert seen["auth"] == b"Basic Q1AgMS94OjAxMjM0NTY3ODlhYmNkZWY="  # "CP 1/x:0123456789abcdef"


async def test_another_versions_subprotocol_reaches_the_wire(client: WebSocketClient) -> None:
    """The subprotocol comes from the protocol plugin, not from the transport."""
    other = dataclasses.replace(PLUGIN, name="OCPP 9.9", subprotocol="ocpp9.9")
    offered: list[list[str]] = []

    async def record(request: trio_websocket.WebSocketRequest,
                     ws: trio_websocket.WebSocketConnection) -> None:
        offered.append(list(request.proposed_subprotocols))
        with contextlib.suppress(trio_websocket.ConnectionClosed):
            await ws.get_message()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, record, subprotocol="ocpp9.9")
            async with opener_for(client)(f"ws://127.0.0.1:{port}/ocpp", "CP1",
                                          plugin=other) as transport:
                assert transport.subprotocol == "ocpp9.9"
            nursery.cancel_scope.cancel()
    assert offered == [["ocpp9.9"]]


async def test_basic_auth_against_the_embedded_csms(client: WebSocketClient) -> None:
    options = CsmsOptions(passwords={"CP1": PASSWORD})
    with trio.fail_after(10):
        async with open_csms(options) as csms:
            async with opener_for(client)(csms.url, "CP1", password=PASSWORD) as transport:
                await transport.send(BOOT)
                assert json.loads(await transport.receive())[2]["status"] == "Accepted"
            for password in ("wrong-password-16", None):
                with pytest.raises(ConnectError, match="HTTP 401") as raised:
                    async with opener_for(client)(csms.url, "CP1", password=password):
                        pass  # pragma: no cover - never reached
                assert f"{csms.url}/CP1" in str(raised.value)


async def test_http_404_is_a_connect_error_with_the_status(client: WebSocketClient) -> None:
    with trio.fail_after(10):
        async with open_csms(CsmsOptions()) as csms:
            wrong_path = csms.url.removesuffix("/ocpp") + "/elsewhere"
            with pytest.raises(ConnectError) as raised:
                async with opener_for(client)(wrong_path, "CP1"):
                    pass  # pragma: no cover - never reached
    assert str(raised.value) == f"{wrong_path}/CP1: handshake refused with HTTP 404"


async def test_a_refused_handshake_is_one_connect_error_naming_the_status(
    client: WebSocketClient,
) -> None:
    """A CSMS that refuses the charger (a wrong password: HTTP 401) gives the connect loop a
    ConnectError to log and back off on, not an exception group that would crash the charger
    (trio-websocket's reader raises the refusal in a task of its own)."""

    async def refuse(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(401)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(lambda task_status: trio_websocket.serve_websocket(
                refuse, "127.0.0.1", 0, None, task_status=task_status))
            with pytest.raises(ConnectError, match="handshake refused with HTTP 401"):
                async with opener_for(client)(f"ws://127.0.0.1:{server.port}/ocpp", "CP1",
                                              password="wrong-password!!"):
                    pass  # pragma: no cover - never reached
            nursery.cancel_scope.cancel()


async def test_handshake_without_the_subprotocol_is_refused(client: WebSocketClient) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, idle, subprotocol=None)
            refused = pytest.raises(
                ConnectError, match=f"did not select subprotocol '{re.escape(SUBPROTOCOL)}'")
            with refused as raised:
                async with opener_for(client)(f"ws://127.0.0.1:{port}/ocpp", "CP1"):
                    pass  # pragma: no cover - never reached
            nursery.cancel_scope.cancel()
    assert str(raised.value).startswith(f"ws://127.0.0.1:{port}/ocpp/CP1: ")
    assert "\n" not in str(raised.value)


async def test_a_foreign_subprotocol_is_refused(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    async def other(stream: trio.abc.Stream, request: bytes) -> None:
        await stream.send_all(accept_response(request, subprotocol="ocpp2.0.1"))
        await read_until_eof(stream)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            with pytest.raises(ConnectError) as raised:
                async with opener_for(client)("ws://cs.test/ocpp", "CP1",
                                              connect_stream=raw_peer(nursery, other)):
                    pass  # pragma: no cover - never reached
    assert str(raised.value) == ('ws://cs.test/ocpp/CP1: the central system chose subprotocol '
                                 f'"ocpp2.0.1"; this charger speaks {SUBPROTOCOL}')


async def test_unreachable_port_is_one_clear_connect_error(client: WebSocketClient) -> None:
    with trio.fail_after(10):
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()  # nothing listens on this port now
        with pytest.raises(ConnectError) as raised:
            async with opener_for(client)(f"ws://127.0.0.1:{port}/ocpp", "CP1"):
                pass  # pragma: no cover - never reached
    message = str(raised.value)
    assert message.startswith(f"ws://127.0.0.1:{port}/ocpp/CP1: ")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("base_url", "complaint"),
    [("http://127.0.0.1:1/ocpp", "not a ws:// or wss:// URL"),
     ("ws://127.0.0.1:99999/ocpp", "bad port")],
)
async def test_a_bad_url_is_one_clear_connect_error(
    client: WebSocketClient, base_url: str, complaint: str
) -> None:
    with trio.fail_after(10), pytest.raises(ConnectError) as raised:
        async with opener_for(client)(base_url, "CP1"):
            pass  # pragma: no cover - never reached
    assert str(raised.value).startswith(f"{base_url}/CP1: {complaint}")


async def test_a_silent_server_is_a_connect_error(client: WebSocketClient) -> None:
    """A server that accepts TCP (in the kernel backlog) and never answers."""
    with trio.fail_after(10):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        async with listeners[0]:
            with pytest.raises(ConnectError, match=r"no handshake within 0\.2 s"):
                async with opener_for(client)(f"ws://127.0.0.1:{port}/ocpp", "CP1",
                                              connect_timeout=0.2):
                    pass  # pragma: no cover - never reached


async def test_stream_and_handshake_share_one_budget(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    """A stream that takes 3 s to open and a peer that never answers: the connect fails when
    the one budget of 5 s is spent, not 5 s after the stream opened."""

    async def hold(stream: trio.abc.Stream, request: bytes) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        peer = raw_peer(nursery, hold)

        async def slow(endpoint: Endpoint, connection: trio.Nursery) -> trio.abc.Stream:
            await trio.sleep(3)
            return await peer(endpoint, connection)

        started = trio.current_time()
        with pytest.raises(ConnectError) as raised:
            async with opener_for(client)("ws://cs.test/ocpp", "CP1", connect_stream=slow,
                                          connect_timeout=5):
                pass  # pragma: no cover - never reached
        assert trio.current_time() - started == 5
        nursery.cancel_scope.cancel()
    assert str(raised.value) == "ws://cs.test/ocpp/CP1: no handshake within 5 s"


async def test_a_peer_that_is_not_a_websocket_server_is_a_connect_error(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    async def junk(stream: trio.abc.Stream, request: bytes) -> None:
        await stream.send_all(b"SSH-2.0-OpenSSH\r\n\r\n")
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        with pytest.raises(ConnectError, match="bad handshake response") as raised:
            async with opener_for(client)("ws://cs.test/ocpp", "CP1",
                                          connect_stream=raw_peer(nursery, junk)):
                pass  # pragma: no cover - never reached
        nursery.cancel_scope.cancel()
    assert str(raised.value).startswith("ws://cs.test/ocpp/CP1: bad handshake response (")


HANG_UPS = {
    "closes": b"",
    "half-an-answer": b"HTTP/1.1 101 Switching",
    "401-then-closes": b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n",
}


@pytest.mark.parametrize("answer", HANG_UPS.values(), ids=HANG_UPS.keys())
async def test_a_server_that_closes_during_the_handshake_fails_the_connect_at_once(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock, answer: bytes
) -> None:
    """trio-websocket waits only for an answer: a CSMS that hangs up on an unknown charger
    would cost the whole connect budget and read as a timeout. It fails at once (no time
    passes on the mock clock), saying so; a refusal whose body ends with the stream may
    instead be read in full, and then names its status."""

    async def hang_up(stream: trio.abc.Stream, request: bytes) -> None:
        if answer:
            await stream.send_all(answer)

    async with trio.open_nursery() as nursery:
        started = trio.current_time()
        with pytest.raises(ConnectError) as raised:
            async with opener_for(client)("ws://cs.test/ocpp", "CP1", connect_timeout=5,
                                          connect_stream=raw_peer(nursery, hang_up)):
                pass  # pragma: no cover - never reached
        assert trio.current_time() == started
    message = str(raised.value)
    if answer.startswith(b"HTTP/1.1 401") and client is websockets_client:
        assert message == "ws://cs.test/ocpp/CP1: handshake refused with HTTP 401"
    else:
        assert message == ("ws://cs.test/ocpp/CP1: the server closed the connection during "
                           "the handshake")


async def test_wss_to_a_plain_server_is_one_clear_connect_error(client: WebSocketClient) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, idle)
            with pytest.raises(ConnectError) as raised:
                async with opener_for(client)(f"wss://127.0.0.1:{port}/ocpp", "CP1"):
                    pass  # pragma: no cover - never reached
            nursery.cancel_scope.cancel()
    message = str(raised.value)
    assert message.startswith(f"wss://127.0.0.1:{port}/ocpp/CP1: ")
    assert "\n" not in message


async def test_a_cancelled_connect_or_connection_leaves_as_a_bare_cancellation(
    client: WebSocketClient,
) -> None:
    """The fleet ending cancels its chargers: whether the transport is in the handshake or
    connected, the caller's scope catches one plain Cancelled (no group of two from the reader
    and the socket's close)."""

    async def hold(stream: trio.SocketStream) -> None:
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
                        async with opener_for(client)(url, "CP1") as transport:
                            assert connected
                            await transport.receive()
                    except BaseExceptionGroup:  # pragma: no cover - the failure
                        pytest.fail("the cancellation came out in a group")
                assert scope.cancelled_caught
            nursery.cancel_scope.cancel()
