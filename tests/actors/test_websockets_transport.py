"""What only the websockets transport is tested on: byte sequences trio-websocket will not
send, from a hand-written raw server (frames glued to the handshake, bad UTF-8, a socket that just
ends, protocol errors), and close codes the wire cannot carry. The behaviour both thin transports
share is tested on both in ``test_thin_transports.py``; wss:// in ``test_tls.py``."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from simulator.actors.transport import SUBPROTOCOL, ConnectError, TransportClosed
from simulator.actors.websockets_transport import open_websockets_transport
from tests.actors.servers import CloseWatcher, serve

RawHandler = Callable[[trio.SocketStream, bytes], Awaitable[None]]


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
    read_out = trio.Event()

    async def glued(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(
            _accept_response(request)
            + _frame(0x9, b"early")  # ping
            + _frame(0x1, b"first")
            + _frame(0x1, b"sec", fin=False) + _frame(0x0, b"o", fin=False) + _frame(0x0, b"nd")
            + _frame(0x8, (4001).to_bytes(2, "big") + b"done")
        )
        client_sent.append(await _read_until_eof(stream))
        read_out.set()

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
            await read_out.wait()  # the server has read what the client wrote, to its end
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
    read_out = trio.Event()

    async def misbehave(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(_accept_response(request))
        await stream.receive_some(4096)  # the client's "ready": the handshake is behind it
        await stream.send_all(frames)
        client_sent.append(await _read_until_eof(stream))
        read_out.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve_raw(nursery, misbehave)
            async with open_websockets_transport(
                f"ws://127.0.0.1:{port}/ocpp", "CP1"
            ) as transport:
                await transport.send("ready")
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
            await read_out.wait()
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
    server = CloseWatcher()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, server.handle)
            async with open_websockets_transport(
                f"ws://127.0.0.1:{port}/ocpp", "CP1"
            ) as transport:
                await transport.aclose(code, reason)
                with pytest.raises(TransportClosed) as closed:
                    await transport.receive()
            await server.done.wait()
            nursery.cancel_scope.cancel()
    assert (closed.value.code, closed.value.reason) == (code, reason)
    (got,) = server.reasons
    assert got is not None
    assert (None if got.code == 1006 else (got.code, got.reason or "")) == wire
