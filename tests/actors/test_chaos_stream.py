"""Transport faults on the wire: a charger's link (``Link.inject``) and the chaos stream under
each WebSocket client, seen from a hand-written peer that records every byte it reads and when.
Memory streams on the mock clock, except two tests over 127.0.0.1 (a reset is an RST; a
latency holds a frame back on a real socket too)."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from simulator.actors.chaos_stream import TransportChaos
from simulator.actors.link import Backoff, Down, Link, LinkEvent, Received, Up
from simulator.actors.streams import StreamConnector, StreamWrapper, memory_connector
from simulator.actors.transport import Transport, WebSocketClient, open_transport
from simulator.chaos.catalog import Family
from simulator.chaos.injection import Injection, Scalar
from simulator.csms import CsmsOptions, CsmsServer
from simulator.csms.server import new_central_system
from simulator.events import CsmsNote, Event, Note
from simulator.machines.effects import Send
from simulator.ocpp.v16 import PLUGIN
from tests.actors.servers import CLIENTS, accept_response, raw_peer, read_request

IDENTITY = "CP1"
CLOSE, PING, PONG, TEXT = 0x8, 0x9, 0xA, 0x1


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> WebSocketClient:
    """Each WebSocket client."""
    chosen: WebSocketClient = request.param
    return chosen


def fault(name: str, *, until: float | None = None, **params: Scalar) -> Injection:
    return Injection(id=f"test.{name}", fault=name, family=Family.TRANSPORT,
                     at=trio.current_time(), until=until, params=params)


def server_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked server frame, any length under 64 KiB."""
    if len(payload) < 126:
        return bytes([0x80 | opcode, len(payload)]) + payload
    return bytes([0x80 | opcode, 126]) + len(payload).to_bytes(2, "big") + payload


def take_frame(buffer: bytearray) -> tuple[int, bytes] | None:
    """Cut the first whole frame off ``buffer`` (RFC 6455 §5.2): (opcode, unmasked payload);
    None while it is incomplete."""
    if len(buffer) < 2:
        return None
    opcode, masked, length, at = buffer[0] & 0x0F, buffer[1] & 0x80, buffer[1] & 0x7F, 2
    if length >= 126:
        size = 2 if length == 126 else 8
        if len(buffer) < at + size:
            return None
        length, at = int.from_bytes(buffer[at:at + size], "big"), at + size
    key = bytes(buffer[at:at + 4]) if masked else bytes(4)
    at += 4 if masked else 0
    if len(buffer) < at + length:
        return None
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(buffer[at:at + length]))
    del buffer[:at + length]
    return opcode, payload


@dataclasses.dataclass
class PeerConnection:
    """What the peer saw of one connection: every frame whole (time, opcode, payload), and how
    and when it ended ("eof", "reset" for a connection reset, or the error's name)."""

    stream: trio.abc.Stream
    frames: list[tuple[float, int, bytes]] = dataclasses.field(default_factory=list)
    end: tuple[float, str] | None = None
    ended: trio.Event = dataclasses.field(default_factory=trio.Event)
    framed: trio.Event = dataclasses.field(default_factory=trio.Event)  # set at each frame

    def of(self, opcode: int) -> list[tuple[float, bytes]]:
        return [(t, payload) for t, code, payload in self.frames if code == opcode]

    async def wait_frame(self, opcode: int, payload: bytes) -> float:
        """When the frame came whole (waits for it)."""
        while (t := next((t for t, p in self.of(opcode) if p == payload), None)) is None:
            self.framed = trio.Event()
            await self.framed.wait()
        return t

    async def send(self, opcode: int, payload: bytes) -> None:
        await self.stream.send_all(server_frame(opcode, payload))


class Peer:
    """A WebSocket server by hand: accepts every handshake, records every client frame when
    its last byte arrives, answers a close frame with one, reads until the end."""

    def __init__(self) -> None:
        self.connections: list[PeerConnection] = []
        self._opened = trio.Event()

    async def wait_connection(self, count: int) -> PeerConnection:
        while len(self.connections) < count:
            self._opened = trio.Event()
            await self._opened.wait()
        return self.connections[count - 1]

    async def handle(self, stream: trio.abc.Stream, request: bytes) -> None:
        await stream.send_all(accept_response(request))
        connection = PeerConnection(stream)
        self.connections.append(connection)
        self._opened.set()
        buffer = bytearray()
        try:
            while data := await stream.receive_some(65536):
                buffer += data
                while (whole := take_frame(buffer)) is not None:
                    connection.frames.append((trio.current_time(), *whole))
                    connection.framed.set()
                    if whole[0] == CLOSE:
                        await connection.send(CLOSE, whole[1][:2])
            connection.end = (trio.current_time(), "eof")
        except trio.BrokenResourceError as exc:
            reset = isinstance(exc.__cause__, ConnectionResetError)
            connection.end = (trio.current_time(), "reset" if reset else repr(exc.__cause__))
        finally:
            connection.ended.set()


class Wire(StreamWrapper):
    """Under the chaos stream: every write as it goes on the wire (time, bytes)."""

    def __init__(self, inner: trio.abc.Stream, writes: list[tuple[float, bytes]]) -> None:
        super().__init__(inner)
        self.writes = writes

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append((trio.current_time(), bytes(data)))
        await super().send_all(data)


class Harness:
    """One charger's link to a peer: the chaos stream over a :class:`Wire` over the stream
    ``connect`` opens; what the link delivers and publishes is kept."""

    def __init__(self, client: WebSocketClient, connect: StreamConnector | None,
                 url: str = "ws://cs.test/ocpp") -> None:
        self.chaos = TransportChaos(1, IDENTITY)
        self.writes: list[tuple[float, bytes]] = []
        self.published: list[Event] = []
        self._to_test, self._delivered = trio.open_memory_channel[LinkEvent](100)

        def opener(identity: str) -> AbstractAsyncContextManager[Transport]:
            return open_transport(url, identity, plugin=PLUGIN, client=client,
                                  connect_stream=connect,
                                  wrap=lambda stream: self.chaos.wrap(Wire(stream, self.writes)))

        async def publish(event: Event) -> None:
            self.published.append(event)

        self.link = Link(identity=IDENTITY, url=url, seed=1, open_transport=opener,
                         deliver=self._to_test.send, publish=publish, backoff=Backoff(),
                         chaos=self.chaos)

    async def next(self, kind: type[Up] | type[Down] | type[Received]) -> Any:
        """The next link event of ``kind`` (others before it are dropped)."""
        while True:
            event = await self._delivered.receive()
            if isinstance(event, kind):
                return event

    def send(self, generation: int, text: str) -> float:
        """Hand ``text`` to the link's writer; returns the time it was handed over."""
        assert self.link.hand_over(Send(text.encode(), 2, "id", "DataTransfer"), generation)
        return trio.current_time()

    def notes(self, what: str) -> list[dict[str, Any]]:
        return [e.data for e in self.published if isinstance(e, Note) and e.what == what]


@asynccontextmanager
async def linked(client: WebSocketClient, *, before: tuple[Injection, ...] = (),
                 ) -> AsyncIterator[tuple[Harness, Peer, trio.Nursery]]:
    """A link to a :class:`Peer` over memory streams, running (``before``: injected first)."""
    peer = Peer()
    async with trio.open_nursery() as nursery:
        harness = Harness(client, raw_peer(nursery, peer.handle))
        for injection in before:
            harness.link.inject(injection, trio.current_time())
        nursery.start_soon(harness.link.run)
        yield harness, peer, nursery
        nursery.cancel_scope.cancel()


async def frame_arrives(peer: PeerConnection, text: str) -> float:
    """When the peer had the whole text frame ``text``."""
    return await peer.wait_frame(TEXT, text.encode())


async def test_latency_holds_every_frame_in_both_directions_on_every_connection_of_its_window(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    start = trio.current_time()
    latency = fault("latency", until=start + 60, ms=200.0, jitter_ms=0.0, direction="both")
    async with linked(client, before=(latency,)) as (harness, peer, _):  # offline: from the
        up = await harness.next(Up)                                     # first connection on
        first = await peer.wait_connection(1)
        sent = harness.send(up.generation, "one")
        assert await frame_arrives(first, "one") == pytest.approx(sent + 0.2)

        await first.send(TEXT, b"two")
        came = trio.current_time()
        received = await harness.next(Received)
        assert received.data == "two"
        assert trio.current_time() == pytest.approx(came + 0.2)

        harness.link.inject(fault("disconnect", code=1000), trio.current_time())
        up = await harness.next(Up)
        second = await peer.wait_connection(2)
        sent = harness.send(up.generation, "three")
        assert await frame_arrives(second, "three") == pytest.approx(sent + 0.2)

        await trio.sleep_until(start + 61)
        sent = harness.send(up.generation, "four")
        assert await frame_arrives(second, "four") == pytest.approx(sent)


def test_jitter_is_drawn_from_the_chargers_seeded_stream() -> None:
    def delays(seed: int) -> list[float]:
        chaos = TransportChaos(seed, IDENTITY)
        chaos.apply(Injection(id="j", fault="latency", family=Family.TRANSPORT, at=0.0,
                              params={"ms": 200.0, "jitter_ms": 50.0, "direction": "send"}), 0.0)
        assert chaos.send_latency is not None and chaos.receive_latency is None
        return [chaos.delay(chaos.send_latency) for _ in range(50)]

    first = delays(1)
    assert first == delays(1)
    assert first != delays(2)
    assert all(0.15 <= d <= 0.25 for d in first)
    assert max(first) - min(first) > 0.05  # spread over the range, not a constant


async def test_bandwidth_paces_a_frame_of_n_bytes_over_n_over_rate_seconds(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    async with linked(client) as (harness, peer, _):
        up = await harness.next(Up)
        connection = await peer.wait_connection(1)
        harness.link.inject(fault("bandwidth", until=math.inf, bytes_per_second=2000),
                            trio.current_time())
        text = "x" * 1000  # a client frame of 1008 bytes: 2 + 2 (length) + 4 (mask) + 1000
        sent = harness.send(up.generation, text)
        assert await frame_arrives(connection, text) == pytest.approx(sent + 1008 / 2000)
        pieces = [len(data) for t, data in harness.writes if t > sent]
        assert pieces == [200, 200, 200, 200, 200, 8]  # a tenth of a second's worth each

        await connection.send(TEXT, b"y" * 1000)  # a server frame of 1004 bytes
        came = trio.current_time()
        assert (await harness.next(Received)).data == "y" * 1000
        assert trio.current_time() == pytest.approx(came + 1004 / 2000)


async def test_fragment_splits_every_write_into_writes_of_size_bytes(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    async with linked(client) as (harness, peer, _):
        up = await harness.next(Up)
        connection = await peer.wait_connection(1)
        harness.link.inject(fault("fragment", until=math.inf, size=8), trio.current_time())
        await trio.sleep(1)
        text = json.dumps([2, "m-1", "Heartbeat", {}])
        sent = harness.send(up.generation, text)
        await frame_arrives(connection, text)  # whole at the peer
        size = 2 + 4 + len(text)  # header, mask, payload
        assert [len(data) for t, data in harness.writes if t >= sent] == (
            [8] * (size // 8) + [size % 8])


async def test_disconnect_closes_cleanly_with_its_code(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    async with linked(client) as (harness, peer, _):
        await harness.next(Up)
        connection = await peer.wait_connection(1)
        harness.link.inject(fault("disconnect", code=4001), trio.current_time())
        down = await harness.next(Down)
        assert (down.code, down.reason) == (4001, "disconnect (chaos)")
        await connection.ended.wait()
        assert [payload[:2] for t, payload in connection.of(CLOSE)] == [(4001).to_bytes(2, "big")]
        assert connection.end is not None and connection.end[1] == "eof"
        await harness.next(Up)  # and back, as after any drop


async def test_reset_ends_the_connection_without_a_close_frame(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    async with linked(client) as (harness, peer, _):
        await harness.next(Up)
        connection = await peer.wait_connection(1)
        written = len(harness.writes)
        harness.link.inject(fault("reset"), trio.current_time())
        down = await harness.next(Down)
        assert (down.code, down.reason) == (1006, "reset (chaos)")
        await connection.ended.wait()
        assert connection.of(CLOSE) == []
        assert len(harness.writes) == written  # not a byte more after the reset
        assert connection.end is not None and connection.end[1] == "eof"
        await harness.next(Up)
        assert len(peer.connections) == 2


async def test_half_open_reads_nothing_answers_no_ping_then_resets_at_its_end(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    async with linked(client) as (harness, peer, _):
        up = await harness.next(Up)
        connection = await peer.wait_connection(1)
        start = trio.current_time()
        harness.link.inject(fault("half_open", until=start + 30), start)
        written = len(harness.writes)
        await trio.sleep(1)
        await connection.send(PING, b"are you there")
        await connection.send(TEXT, b"a frame")
        harness.send(up.generation, "from the charger")
        with trio.move_on_after(20):
            await harness.next(Received)
            pytest.fail("a half-open link delivered a frame")
        assert len(harness.writes) == written  # no pong, no frame
        assert connection.of(PONG) == connection.of(TEXT) == []

        down = await harness.next(Down)
        assert trio.current_time() == pytest.approx(start + 30)
        assert (down.code, down.reason) == (1006, "half-open connection reset (chaos)")
        await connection.ended.wait()
        assert connection.of(CLOSE) == [] and connection.of(PONG) == []

        await harness.next(Up)  # the next connection is a healthy one
        second = await peer.wait_connection(2)
        await second.send(PING, b"now?")
        await second.wait_frame(PONG, b"now?")


async def test_slow_close_sends_its_close_frame_then_holds_the_connection_linger_seconds(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    async with linked(client) as (harness, peer, _):
        await harness.next(Up)
        connection = await peer.wait_connection(1)
        start = trio.current_time()
        harness.link.inject(fault("slow_close", linger=10.0), start)
        down = await harness.next(Down)
        assert (down.code, down.reason) == (1000, "slow close (chaos)")
        await connection.ended.wait()
        [(closed_at, payload)] = connection.of(CLOSE)
        assert payload[:2] == (1000).to_bytes(2, "big")
        assert closed_at == pytest.approx(start)
        assert connection.end is not None
        assert connection.end == (pytest.approx(start + 10), "eof")


async def test_identity_clash_opens_a_second_connection_and_notes_what_the_csms_did(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock
) -> None:
    csms_events: list[Event] = []

    async def record(event: Event) -> None:
        csms_events.append(event)

    server = CsmsServer(new_central_system(CsmsOptions()), publish=record)
    async with trio.open_nursery() as nursery:
        harness = Harness(client, memory_connector(server.serve_stream))
        nursery.start_soon(harness.link.run)
        await harness.next(Up)
        start = trio.current_time()
        harness.link.inject(fault("identity_clash", until=start + 10), start)
        down = await harness.next(Down)  # the embedded CSMS keeps the newer connection
        assert (down.code, down.reason) == (1000, "replaced")
        await harness.next(Up)  # the charger is back, and replaces the clash in turn
        await trio.sleep(11)
        nursery.cancel_scope.cancel()

    csms = [(e.what, e.charger) for e in csms_events if isinstance(e, CsmsNote)]
    assert csms.count(("connected", IDENTITY)) == 3
    assert csms.count(("replaced", IDENTITY)) == 2
    notes = harness.notes("identity_clash")
    assert notes[0] == {"injection": "test.identity_clash", "connection": "second",
                        "first_open": True, "event": "opened"}
    assert notes[1] == {"connection": "first", "event": "closed", "code": 1000,
                        "reason": "replaced"}
    assert notes[2] == {"injection": "test.identity_clash", "connection": "second",
                        "first_open": True, "event": "ended", "code": 1000,
                        "reason": "replaced", "frames": 0}


async def test_a_fault_the_link_cannot_apply_offline_or_as_given_is_noted_never_raised(
    autojump_clock: trio.testing.MockClock,
) -> None:
    offline = tuple(fault(name) for name in ("disconnect", "reset", "slow_close"))
    unusable = fault("latency", until=math.inf, direction="sideways")
    async with linked(CLIENTS[0].values[0], before=(*offline, unusable)) as (harness, peer, _):
        up = await harness.next(Up)
        await trio.sleep(5)
        assert len(peer.connections) == 1  # none of them touched the connection that came
        sent = harness.send(up.generation, "on time")
        assert await frame_arrives(peer.connections[0], "on time") == sent
    notes = sorted(harness.notes("not_applied"), key=lambda note: str(note["fault"]))
    assert notes == [
        {"fault": "disconnect", "injection": "test.disconnect", "reason": "offline"},
        {"fault": "latency", "injection": "test.latency",
         "reason": 'direction \'sideways\': use "both", "send" or "receive"'},
        {"fault": "reset", "injection": "test.reset", "reason": "offline"},
        {"fault": "slow_close", "injection": "test.slow_close", "reason": "offline"},
    ]


# --- over TCP ----------------------------------------------------------------------------------


@asynccontextmanager
async def tcp_linked(client: WebSocketClient) -> AsyncIterator[tuple[Harness, Peer]]:
    peer = Peer()

    async def handle(stream: trio.SocketStream) -> None:
        await peer.handle(stream, await read_request(stream))

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        harness = Harness(client, None, url=f"ws://127.0.0.1:{port}/ocpp")
        nursery.start_soon(harness.link.run)
        yield harness, peer
        nursery.cancel_scope.cancel()


async def test_reset_over_tcp_is_an_rst(client: WebSocketClient) -> None:
    with trio.fail_after(10):
        async with tcp_linked(client) as (harness, peer):
            await harness.next(Up)
            connection = await peer.wait_connection(1)
            harness.link.inject(fault("reset"), trio.current_time())
            await connection.ended.wait()
            assert connection.end is not None and connection.end[1] == "reset"
            assert connection.of(CLOSE) == []


async def test_latency_over_tcp_holds_a_frame_back() -> None:
    with trio.fail_after(10):
        async with tcp_linked(CLIENTS[0].values[0]) as (harness, peer):
            up = await harness.next(Up)
            connection = await peer.wait_connection(1)
            harness.link.inject(fault("latency", until=math.inf, ms=300.0), trio.current_time())
            sent = harness.send(up.generation, "late")
            assert await frame_arrives(connection, "late") >= sent + 0.3

