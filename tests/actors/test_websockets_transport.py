"""The websockets transport against real loopback servers: the embedded CSMS, trio-websocket
(plain and behind TLS with a throwaway CA from trustme) and a hand-written raw server for what
trio-websocket will not send (frames glued to the handshake, bad UTF-8, a socket that just ends)."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing
import trio_websocket
import trustme

from simulator.actors.transport import SUBPROTOCOL, ConnectError, TransportClosed
from simulator.actors.websockets_transport import open_websockets_transport
from simulator.csms import CsmsOptions, open_csms

PASSWORD = "0123456789abcdef"
BOOT = json.dumps(
    [2, "boot-1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]
)

Handler = Callable[[trio_websocket.WebSocketRequest, trio_websocket.WebSocketConnection],
                   Awaitable[None]]
RawHandler = Callable[[trio.SocketStream, bytes], Awaitable[None]]


async def _serve(nursery: trio.Nursery, handler: Handler, *,
                 subprotocol: str | None = SUBPROTOCOL, max_message_size: int = 2**20) -> int:
    """A trio-websocket server on 127.0.0.1 port 0; returns the port."""

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


async def test_boot_notification_round_trip_with_the_embedded_csms() -> None:
    with trio.fail_after(10):
        async with (
            open_csms(CsmsOptions()) as csms,
            open_websockets_transport(csms.url, "CP 1/x") as transport,
        ):
            assert transport.subprotocol == SUBPROTOCOL
            await transport.send(BOOT)
            reply = json.loads(await transport.receive())
            assert csms.server.connected() == ("CP 1/x",)  # percent-decoded by the CSMS
    assert reply[:2] == [3, "boot-1"]
    assert reply[2]["status"] == "Accepted"


async def test_identity_is_percent_encoded_and_basic_auth_sent() -> None:
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
            port = await _serve(nursery, record)
            async with open_websockets_transport(
                f"ws://127.0.0.1:{port}/ocpp/", "CP 1/x", password=PASSWORD
            ) as transport:
                assert await transport.receive() == "hello"
            nursery.cancel_scope.cancel()
    assert seen["path"] == "/ocpp/CP%201%2Fx"
    assert seen["protocols"] == [SUBPROTOCOL]
    assert seen["auth"] == b"Basic Q1AgMS94OjAxMjM0NTY3ODlhYmNkZWY="  # "CP 1/x:0123456789abcdef"


async def test_basic_auth_against_the_embedded_csms() -> None:
    options = CsmsOptions(passwords={"CP1": PASSWORD})
    with trio.fail_after(10):
        async with open_csms(options) as csms:
            async with open_websockets_transport(
                csms.url, "CP1", password=PASSWORD
            ) as transport:
                await transport.send(BOOT)
                assert json.loads(await transport.receive())[2]["status"] == "Accepted"
            for password in ("wrong-password-16", None):
                with pytest.raises(ConnectError, match="HTTP 401") as raised:
                    async with open_websockets_transport(csms.url, "CP1", password=password):
                        pass  # pragma: no cover - never reached
                assert f"{csms.url}/CP1" in str(raised.value)


async def test_http_404_is_a_connect_error_with_the_status() -> None:
    with trio.fail_after(10):
        async with open_csms(CsmsOptions()) as csms:
            wrong_path = csms.url.removesuffix("/ocpp") + "/elsewhere"
            with pytest.raises(ConnectError) as raised:
                async with open_websockets_transport(wrong_path, "CP1"):
                    pass  # pragma: no cover - never reached
    message = str(raised.value)
    assert message == f"{wrong_path}/CP1: handshake refused with HTTP 404"


async def test_handshake_without_the_subprotocol_is_refused() -> None:
    async def idle(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, idle, subprotocol=None)
            refused = pytest.raises(ConnectError, match=r"did not select subprotocol 'ocpp1\.6'")
            with refused as raised:
                async with open_websockets_transport(f"ws://127.0.0.1:{port}/ocpp", "CP1"):
                    pass  # pragma: no cover - never reached
            nursery.cancel_scope.cancel()
    assert str(raised.value).startswith(f"ws://127.0.0.1:{port}/ocpp/CP1: ")
    assert "\n" not in str(raised.value)


async def test_unreachable_port_is_one_clear_connect_error() -> None:
    with trio.fail_after(10):
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()  # nothing listens on this port now
        with pytest.raises(ConnectError) as raised:
            async with open_websockets_transport(f"ws://127.0.0.1:{port}/ocpp", "CP1"):
                pass  # pragma: no cover - never reached
    message = str(raised.value)
    assert message.startswith(f"ws://127.0.0.1:{port}/ocpp/CP1: ")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("base_url", "complaint"),
    [("http://127.0.0.1:1/ocpp", "not a ws:// or wss:// URL"),
     ("ws://127.0.0.1:99999/ocpp", "bad port")],
)
async def test_a_bad_url_is_one_clear_connect_error(base_url: str, complaint: str) -> None:
    with trio.fail_after(10), pytest.raises(ConnectError) as raised:
        async with open_websockets_transport(base_url, "CP1"):
            pass  # pragma: no cover - never reached
    assert str(raised.value).startswith(f"{base_url}/CP1: {complaint}")


async def test_silent_server_is_a_handshake_timeout() -> None:
    with trio.fail_after(10):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        async with listeners[0]:  # accepts in the kernel backlog, never answers
            with pytest.raises(ConnectError, match=r"no handshake within 0\.2 s"):
                async with open_websockets_transport(
                    f"ws://127.0.0.1:{port}/ocpp", "CP1", connect_timeout=0.2
                ):
                    pass  # pragma: no cover - never reached


async def test_ping_is_answered_inside_receive() -> None:
    async def ping_then_talk(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await ws.ping(b"are you there")  # returns once the matching pong arrives
        await ws.send_message("pong seen")
        await ws.get_message()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, ping_then_talk)
            async with open_websockets_transport(
                f"ws://127.0.0.1:{port}/ocpp", "CP1"
            ) as transport:
                assert await transport.receive() == "pong seen"
            nursery.cancel_scope.cancel()


async def test_server_close_ends_receive_and_send_with_transport_closed() -> None:
    async def close_at_once(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await ws.aclose(1001, "going away")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, close_at_once)
            async with open_websockets_transport(
                f"ws://127.0.0.1:{port}/ocpp", "CP1"
            ) as transport:
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
                with pytest.raises(TransportClosed):
                    await transport.send("too late")
            nursery.cancel_scope.cancel()
    assert (closed.value.code, closed.value.reason) == (1001, "going away")


async def test_aclose_does_the_closing_handshake_and_wakes_the_reader() -> None:
    server_saw: list[int | None] = []
    server_done = trio.Event()

    async def wait_for_close(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        try:
            await ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            server_saw.append(getattr(exc.reason, "code", None))
        server_done.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, wait_for_close)
            async with open_websockets_transport(
                f"ws://127.0.0.1:{port}/ocpp", "CP1"
            ) as transport:
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
            await server_done.wait()
            nursery.cancel_scope.cancel()
    assert server_saw == [4000]
    assert [(e.code, e.reason) for e in reader_saw] == [(4000, "bye")]


async def test_fragmented_and_binary_messages_are_joined_as_text() -> None:
    async def send_odd_frames(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await ws.send_message("x" * 200_000)  # many TCP reads, one message
        await ws.send_message(b'[2,"1","Heartbeat",{}]')
        await ws.send_message(b"\xff\xfe")  # not UTF-8: replaced, not fatal, in a binary frame
        await ws.get_message()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, send_odd_frames)
            async with open_websockets_transport(
                f"ws://127.0.0.1:{port}/ocpp", "CP1"
            ) as transport:
                assert await transport.receive() == "x" * 200_000
                assert await transport.receive() == "[2,\"1\",\"Heartbeat\",{}]"
                assert await transport.receive() == "\ufffd\ufffd"
            nursery.cancel_scope.cancel()


async def test_message_over_the_limit_closes_with_1009() -> None:
    server_saw: list[int | None] = []
    server_done = trio.Event()

    async def send_big(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await ws.send_message("y" * 5000)
        try:
            await ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            server_saw.append(getattr(exc.reason, "code", None))
        server_done.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, send_big)
            async with open_websockets_transport(
                f"ws://127.0.0.1:{port}/ocpp", "CP1", max_message_size=1000
            ) as transport:
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
            await server_done.wait()
            nursery.cancel_scope.cancel()
    assert closed.value.code == 1009
    assert server_saw == [1009]


async def test_send_and_receive_concurrently_with_pings() -> None:
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
            port = await _serve(nursery, echo_and_ping)
            async with open_websockets_transport(
                f"ws://127.0.0.1:{port}/ocpp", "CP1"
            ) as transport:
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


async def test_leaving_the_body_by_cancellation_closes_with_1000() -> None:
    server_saw: list[int | None] = []
    server_done = trio.Event()

    async def wait_for_close(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        try:
            await ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            server_saw.append(getattr(exc.reason, "code", None))
        server_done.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, wait_for_close)
            with trio.CancelScope() as scope:
                async with open_websockets_transport(
                    f"ws://127.0.0.1:{port}/ocpp", "CP1"
                ) as transport:
                    scope.cancel()
                    await transport.receive()
            await server_done.wait()
            nursery.cancel_scope.cancel()
    assert scope.cancelled_caught
    assert server_saw == [1000]


async def test_wss_to_a_plain_server_is_one_clear_connect_error() -> None:
    async def idle(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, idle)
            with pytest.raises(ConnectError) as raised:
                async with open_websockets_transport(f"wss://127.0.0.1:{port}/ocpp", "CP1"):
                    pass  # pragma: no cover - never reached
            nursery.cancel_scope.cancel()
    message = str(raised.value)
    assert message.startswith(f"wss://127.0.0.1:{port}/ocpp/CP1: ")
    assert "\n" not in message


# --- TLS (the wsproto cases of tests/actors/test_tls.py) -------------------------------------


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(params=[SUBPROTOCOL])
async def tls_server(authority: trustme.CA, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """An echoing WebSocket server behind TLS for 127.0.0.1 that selects ``request.param`` as
    the subprotocol; yields its wss:// URL."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    selected: str | None = request.param

    async def echo(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept(subprotocol=selected)
        with contextlib.suppress(trio_websocket.ConnectionClosed):
            while True:
                await ws.send_message(await ws.get_message())

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, echo, "127.0.0.1", 0, context)
        yield f"wss://127.0.0.1:{server.port}/ocpp"
        nursery.cancel_scope.cancel()


def _trusting(authority: trustme.CA, tmp_path: Path) -> ssl.SSLContext:
    """A client context that trusts ``authority`` through a CA file, as ``ca_file`` does."""
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return ssl.create_default_context(cafile=str(ca_file))


async def test_the_csms_certificate_is_verified_against_ca_file(
    tls_server: str, authority: trustme.CA, tmp_path: Path
) -> None:
    with trio.fail_after(10):
        async with open_websockets_transport(
            tls_server, "CP-1", ssl_context=_trusting(authority, tmp_path)
        ) as transport:
            await transport.send('[2,"1","Heartbeat",{}]')
            assert await transport.receive() == '[2,"1","Heartbeat",{}]'
            assert transport.subprotocol == SUBPROTOCOL


async def test_an_unknown_authority_is_refused_with_one_line(tls_server: str) -> None:
    context = ssl.create_default_context()  # the system store does not know trustme's CA
    with trio.fail_after(10), pytest.raises(ConnectError) as refused:
        async with open_websockets_transport(
            tls_server, "CP-1", ssl_context=context, connect_timeout=3
        ):
            pass  # pragma: no cover - never reached
    message = str(refused.value)
    assert message.startswith(tls_server) and "\n" not in message
    assert "certificate" in message.lower()


@pytest.mark.parametrize("tls_server", [None], indirect=True)
async def test_a_server_without_ocpp16_is_refused_over_tls_too(
    tls_server: str, authority: trustme.CA, tmp_path: Path
) -> None:
    with trio.fail_after(10), pytest.raises(ConnectError, match="did not select subprotocol"):
        async with open_websockets_transport(
            tls_server, "CP-1", ssl_context=_trusting(authority, tmp_path)
        ):
            pass  # pragma: no cover - never reached


# --- a raw server: byte sequences trio-websocket does not produce ----------------------------


def _accept_response(request: bytes, *, subprotocol: str = SUBPROTOCOL) -> bytes:
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


def _frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One unmasked server frame (payload under 126 bytes)."""
    assert len(payload) < 126
    return bytes([(0x80 if fin else 0) | opcode, len(payload)]) + payload


async def _read_request(stream: trio.SocketStream) -> bytes:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        request += chunk
    return request


async def _serve_raw(nursery: trio.Nursery, handler: RawHandler) -> int:
    """A TCP server on 127.0.0.1 port 0 handing each connection and its handshake request to
    ``handler`` (which writes the response itself); returns the port."""

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            await handler(stream, await _read_request(stream))

    listeners = await nursery.start(functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    return listeners[0].socket.getsockname()[1]  # type: ignore[no-any-return]


async def _read_until_eof(stream: trio.SocketStream) -> bytes:
    received = b""
    with contextlib.suppress(trio.BrokenResourceError):
        while chunk := await stream.receive_some(4096):
            received += chunk
    return received


async def test_frames_sent_with_the_handshake_response_are_not_lost() -> None:
    """101, a ping, a fragmented text message and a close in one write: the messages come out,
    the ping is answered, then the peer's close code."""
    client_sent: list[bytes] = []

    async def glued(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(
            _accept_response(request)
            + _frame(0x9, b"early")  # ping
            + _frame(0x1, b"first")
            + _frame(0x1, b"sec", fin=False) + _frame(0x0, b"o", fin=False) + _frame(0x0, b"nd")
            + _frame(0x8, (4001).to_bytes(2, "big") + b"done")
        )
        client_sent.append(await _read_until_eof(stream))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve_raw(nursery, glued)
            async with open_websockets_transport(
                f"ws://127.0.0.1:{port}/ocpp", "CP1"
            ) as transport:
                assert await transport.receive() == "first"
                assert await transport.receive() == "second"
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
            nursery.cancel_scope.cancel()
    assert (closed.value.code, closed.value.reason) == (4001, "done")
    sent = client_sent[0]
    assert sent[0] == 0x8A and sent[1] == 0x80 | len(b"early")  # a masked pong comes first
    pong = bytes(b ^ sent[2 + i % 4] for i, b in enumerate(sent[6:6 + 5]))
    assert pong == b"early"
    assert sent[11] == 0x88  # then the close reply


async def test_a_socket_that_just_ends_is_1006_for_receive_and_send() -> None:
    async def vanish(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(_accept_response(request) + _frame(0x1, b"last words"))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve_raw(nursery, vanish)
            async with open_websockets_transport(
                f"ws://127.0.0.1:{port}/ocpp", "CP1"
            ) as transport:
                assert await transport.receive() == "last words"
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
                with pytest.raises(TransportClosed) as too_late:
                    await transport.send("anyone?")
            nursery.cancel_scope.cancel()
    assert closed.value.code == too_late.value.code == 1006


@pytest.mark.parametrize(
    ("frames", "code"),
    [(_frame(0x1, b"\xff\xfe"), 1007),  # a text frame that is not UTF-8
     (_frame(0x0, b"orphan"), 1002),  # a continuation without a start
     (bytes([0x81, 0x80 | 2, 0, 0, 0, 0]) + b"hi", 1002)],  # a masked server frame
    ids=["bad-utf8", "orphan-continuation", "masked-frame"],
)
async def test_a_peer_breaking_the_protocol_is_closed_with_its_code(
    frames: bytes, code: int
) -> None:
    client_sent: list[bytes] = []

    async def misbehave(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(_accept_response(request))
        await stream.receive_some(4096)  # the client's "ready": the handshake is behind it
        await stream.send_all(frames)
        client_sent.append(await _read_until_eof(stream))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve_raw(nursery, misbehave)
            async with open_websockets_transport(
                f"ws://127.0.0.1:{port}/ocpp", "CP1"
            ) as transport:
                await transport.send("ready")
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
            nursery.cancel_scope.cancel()
    assert closed.value.code == code
    sent = client_sent[0]
    assert sent[0] == 0x88  # a close frame, then the socket closed
    payload = bytes(b ^ sent[2 + i % 4] for i, b in enumerate(sent[6:6 + (sent[1] & 0x7F)]))
    assert int.from_bytes(payload[:2], "big") == code


async def test_a_server_that_hangs_up_during_the_handshake_is_a_connect_error() -> None:
    async def hang_up(stream: trio.SocketStream, request: bytes) -> None:
        pass

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve_raw(nursery, hang_up)
            with pytest.raises(ConnectError, match="closed the connection during the handshake"):
                async with open_websockets_transport(f"ws://127.0.0.1:{port}/ocpp", "CP1"):
                    pass  # pragma: no cover - never reached
            nursery.cancel_scope.cancel()


async def test_a_foreign_subprotocol_is_refused() -> None:
    async def other(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(_accept_response(request, subprotocol="ocpp2.0.1"))
        await _read_until_eof(stream)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve_raw(nursery, other)
            with pytest.raises(ConnectError) as raised:
                async with open_websockets_transport(f"ws://127.0.0.1:{port}/ocpp", "CP1"):
                    pass  # pragma: no cover - never reached
            nursery.cancel_scope.cancel()
    message = str(raised.value)
    assert message.startswith(f"ws://127.0.0.1:{port}/ocpp/CP1: the server did not select")
    assert "ocpp2.0.1" in message and "\n" not in message


@pytest.mark.parametrize(
    ("code", "reason", "wire"),
    [(1006, "reset", None),  # not a code for the wire: the socket is dropped without a frame
     (4002, "é" * 100, (4002, "é" * 61))],  # the reason is cut to fit a control frame
)
async def test_aclose_with_codes_and_reasons_the_wire_cannot_carry(
    code: int, reason: str, wire: tuple[int, str] | None
) -> None:
    server_saw: list[tuple[int, str] | None] = []
    server_done = trio.Event()

    async def wait_for_close(request: object, ws: trio_websocket.WebSocketConnection) -> None:
        try:
            await ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            got = exc.reason
            assert got is not None
            server_saw.append(None if got.code == 1006 else (got.code, got.reason or ""))
        server_done.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, wait_for_close)
            async with open_websockets_transport(
                f"ws://127.0.0.1:{port}/ocpp", "CP1"
            ) as transport:
                await transport.aclose(code, reason)
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
            await server_done.wait()
            nursery.cancel_scope.cancel()
    assert (closed.value.code, closed.value.reason) == (code, reason)
    assert server_saw == [wire]
