"""The seam between a connection's stream and its WebSocket client: a ``StreamWrapper`` passed
as ``wrap`` sees and shapes every byte, on both clients, over memory streams to the embedded
CSMS (the mock clock) and over TCP."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from simulator.actors.streams import StreamWrapper, memory_connector
from simulator.actors.transport import WebSocketClient
from simulator.csms import CsmsOptions, CsmsServer, open_csms
from simulator.csms.server import new_central_system
from tests.actors.servers import CLIENTS, SUBPROTOCOL, opener_for, unmask_frames

BOOT = json.dumps(
    [2, "boot-1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]
)
CLOSE_1000 = (0x8, (1000).to_bytes(2, "big"))


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> WebSocketClient:
    """Each WebSocket client."""
    chosen: WebSocketClient = request.param
    return chosen


class Recorder(StreamWrapper):
    """Keeps a copy of every byte written (``sent``) and read (``received``)."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        super().__init__(inner)
        self.sent = bytearray()
        self.received = bytearray()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await super().send_all(data)
        self.sent += data

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await super().receive_some(max_bytes)
        self.received += data
        return data


class OneByte(StreamWrapper):
    """Writes one byte per ``send_all`` of the inner stream and reads at most one byte per
    ``receive_some``: every frame and the handshake arrive in pieces."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        super().__init__(inner)
        self.writes = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        for byte in bytes(data):
            await super().send_all(bytes([byte]))
            self.writes += 1

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await super().receive_some(1)


def embedded_csms() -> CsmsServer:
    return CsmsServer(new_central_system(CsmsOptions()))


def head_and_rest(data: bytes) -> tuple[list[str], bytes]:
    """An HTTP head's lines and the bytes after it."""
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n"), rest


def header(lines: list[str], name: str) -> str:
    values = [line.split(":", 1)[1].strip() for line in lines[1:]
              if line.split(":", 1)[0].strip().lower() == name.lower()]
    assert len(values) == 1, (name, lines)
    return values[0]


async def test_a_recording_wrapper_sees_the_exact_bytes_of_a_boot_notification(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    recorders: list[Recorder] = []

    def record(stream: trio.abc.Stream) -> Recorder:
        recorders.append(Recorder(stream))
        return recorders[-1]

    async with opener_for(client)("ws://cs.test/ocpp", "CP 1", wrap=record,
                                  connect_stream=memory_connector(embedded_csms().serve_stream),
                                  ) as transport:
        await transport.send(BOOT)
        reply = await transport.receive()
    assert json.loads(reply)[:2] == [3, "boot-1"]

    (recorder,) = recorders
    request, client_frames = head_and_rest(bytes(recorder.sent))
    assert request[0] == "GET /ocpp/CP%201 HTTP/1.1"
    assert header(request, "Host") == "cs.test"
    assert header(request, "Upgrade").lower() == "websocket"
    assert header(request, "Sec-WebSocket-Protocol") == SUBPROTOCOL
    assert client_frames[1] & 0x80  # the client masks its frames
    assert unmask_frames(client_frames) == [(0x1, BOOT.encode()), CLOSE_1000]

    response, server_frames = head_and_rest(bytes(recorder.received))
    assert response[0].startswith("HTTP/1.1 101 ")
    assert header(response, "Sec-WebSocket-Protocol") == SUBPROTOCOL
    assert not server_frames[1] & 0x80  # the server does not
    assert unmask_frames(server_frames) == [(0x1, reply.encode()), CLOSE_1000]


async def test_writes_cut_into_single_bytes_still_deliver_frames(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    wrappers: list[OneByte] = []

    def one_byte(stream: trio.abc.Stream) -> OneByte:
        wrappers.append(OneByte(stream))
        return wrappers[-1]

    async with opener_for(client)("ws://cs.test/ocpp", "CP1", wrap=one_byte,
                                  connect_stream=memory_connector(embedded_csms().serve_stream),
                                  ) as transport:
        await transport.send(BOOT)
        assert json.loads(await transport.receive())[2]["status"] == "Accepted"
        await transport.send('[2,"hb-1","Heartbeat",{}]')
        assert json.loads(await transport.receive())[:2] == [3, "hb-1"]
    assert wrappers[0].writes > len(BOOT)  # every byte went out on its own


async def test_a_wrapper_sits_on_tcp_streams_too(client: WebSocketClient) -> None:
    recorders: list[Recorder] = []

    def record(stream: trio.abc.Stream) -> Recorder:
        recorders.append(Recorder(stream))
        return recorders[-1]

    with trio.fail_after(10):
        async with (
            open_csms(CsmsOptions()) as csms,
            opener_for(client)(csms.url, "CP1", wrap=record) as transport,
        ):
            await transport.send(BOOT)
            reply = await transport.receive()
    (recorder,) = recorders
    assert head_and_rest(bytes(recorder.sent))[0][0] == "GET /ocpp/CP1 HTTP/1.1"
    assert (0x1, reply.encode()) in unmask_frames(head_and_rest(bytes(recorder.received))[1])
