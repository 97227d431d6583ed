"""``GET /api/events``: the bus's lossy viewer as server-sent events.

The stream itself (:func:`stream_events`) on trio's autojump clock: keep-alive comments, the
charger filter, the ``dropped`` notice, the end. Then the endpoint over a real socket (hypercorn's
Trio worker on 127.0.0.1, port 0, a real-time fleet against the embedded CSMS), read with httpx's
streaming API: the kind and charger filters, a client that does not read getting ``dropped``, the
subscription closed when the client leaves and when the server stops, bad filters refused.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from simulator.api.events import (
    KEEP_ALIVE_COMMENT,
    OPENING,
    dropped_message,
    event_message,
    stream_events,
)
from simulator.api.server import ApiService
from simulator.bus import EventBus, SubscriberStatistics
from simulator.config import parse_fleet
from simulator.events import Connected, Note
from simulator.runtime import open_simulation
from simulator.simulation import Simulation


def note(i: int, charger: str = "CP-1") -> Note:
    return Note(t=float(i), charger=charger, what=f"n{i}")


# --- the stream, on a virtual clock ------------------------------------------------------------


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_an_idle_stream_sends_keep_alive_comments(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    stream = stream_events(bus, t0=0.0, keep_alive=15.0)
    assert bus.statistics().subscribers == ()  # (not iterated yet: not subscribed)
    assert await anext(stream) == OPENING
    assert [s.name for s in bus.statistics().subscribers] == ["api events"]
    start = trio.current_time()
    assert await anext(stream) == KEEP_ALIVE_COMMENT
    assert trio.current_time() - start == 15.0
    await bus.publish(note(1))
    assert await anext(stream) == event_message(note(1), 0.0)
    await stream.aclose()


async def test_events_are_kind_and_json_and_the_charger_filter_keeps_its_own(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    stream = stream_events(bus, t0=1.0, chargers={"CP-1"})
    assert await anext(stream) == OPENING
    for event in (note(1), note(2, "CP-2"), Connected(t=3.0, charger="CP-1", url="ws://x")):
        await bus.publish(event)
    chunk = await anext(stream)  # what was buffered goes out as one chunk
    *messages, rest = chunk.decode().split("\n\n")
    assert rest == ""
    parsed = [(head, json.loads(data.removeprefix("data: ")))
              for head, data in (message.split("\n") for message in messages)]
    assert parsed == [
        # (times count from the run's start, here 1.0 on the bus's clock)
        ("event: note", {"kind": "note", "t": 0.0, "charger": "CP-1", "what": "n1"}),
        ("event: connected", {"kind": "connected", "t": 2.0, "charger": "CP-1", "url": "ws://x"}),
    ]
    await stream.aclose()


async def test_a_client_behind_is_told_how_many_events_it_missed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    stream = stream_events(bus, t0=0.0, buffer=2)
    assert await anext(stream) == OPENING
    for i in range(5):
        await bus.publish(note(i))
    assert await anext(stream) == event_message(note(0), 0.0) + event_message(note(1), 0.0) \
        + dropped_message(3)
    for i in range(5, 10):
        await bus.publish(note(i))
    assert await anext(stream) == event_message(note(5), 0.0) + event_message(note(6), 0.0) \
        + dropped_message(3)  # counted since the last notice, not since the start
    await bus.publish(note(10))
    assert await anext(stream) == event_message(note(10), 0.0)  # nothing more missed: no notice
    [viewer] = bus.statistics().subscribers
    assert (viewer.buffer, viewer.dropped) == (2, 6)
    await stream.aclose()


async def test_a_client_that_stays_behind_hears_of_drops_after_each_buffer_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    stream = stream_events(bus, t0=0.0, buffer=3)
    assert await anext(stream) == OPENING
    for i in range(5):
        await bus.publish(note(i))
    # three read (the buffer's worth), none left to catch up with yet: the notice comes anyway
    chunk = await anext(stream)
    assert chunk == b"".join(event_message(note(i), 0.0) for i in range(3)) + dropped_message(2)
    await stream.aclose()


async def test_the_stream_ends_with_the_bus_and_closing_it_unsubscribes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    ending = stream_events(bus, t0=0.0, name="ends")
    leaving = stream_events(bus, t0=0.0, name="leaves", kinds=["note"])
    assert await anext(ending) == OPENING and await anext(leaving) == OPENING
    await leaving.aclose()  # the client left (the stream waited to write): closed after it
    await bus.publish(note(1))
    assert [(s.name, s.open) for s in bus.statistics().subscribers] \
        == [("ends", True), ("leaves", False)]
    assert await anext(ending) == event_message(note(1), 0.0)
    await bus.aclose()
    with pytest.raises(StopAsyncIteration):
        await anext(ending)
    with pytest.raises(StopAsyncIteration):  # a stream that begins after the end ends at once
        await anext(stream_events(bus, t0=0.0))


# --- the endpoint, over a real socket ----------------------------------------------------------


FLEET = """
[run]
name = "events"
seed = 7
time = "real"
ledger = "{ledger}"

[api]
listen = "127.0.0.1:0"
token = "events-token"

[csms.embedded]
accepted_tags = ["TAG-*"]

[[group]]
name = "street"
count = 2
id = "ST-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 1
max_power_kw = 22
connect_rate = 50
"""

BEARER = {"Authorization": "Bearer events-token"}

LIMIT = 20.0
"""Seconds any one real-socket test may take."""


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Simulation, str]]:
    """A real-time fleet with the API on 127.0.0.1 (port 0): the simulation and the API's URL."""
    fleet = parse_fleet(FLEET.format(ledger=tmp_path / "r.db"))
    assert fleet.api is not None
    service = ApiService(fleet.api)
    with trio.fail_after(LIMIT):
        async with open_simulation(fleet, alongside=[service], gc_tuning=False,
                                   grace=1) as sim:
            assert service.url is not None
            yield sim, service.url
            sim.stop()


def viewers(sim: Simulation) -> list[SubscriberStatistics]:
    return [s for s in sim.bus.statistics().subscribers if s.name.startswith("api events")]


async def read_messages(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """``(event, data)`` of each message of a server-sent event stream (``("", comment)`` for a
    comment block)."""
    event, data, comment = "", "", ""
    async for line in response.aiter_lines():
        if line.startswith(":"):
            comment = line[1:].strip()
        elif line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            data = line[len("data: "):]
        elif line == "":
            yield (event, data) if event else ("", comment)
            event, data, comment = "", "", ""


async def test_the_filters_pass_only_the_kinds_and_chargers_asked_for(
    served: tuple[Simulation, str],
) -> None:
    sim, url = served
    threads = threading.active_count()
    async with httpx.AsyncClient(base_url=url) as client, client.stream(
        "GET", "/api/events",  # (the token as a browser's EventSource must send it)
        params={"kind": "command,status", "charger": "ST-1", "access_token": "events-token"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        messages = read_messages(response)
        assert await anext(messages) == ("", "events")  # subscribed from here on
        [viewer] = viewers(sim)
        assert viewer.open and viewer.name == "api events kind=command,status charger=ST-1"
        await sim.plug("ST-2", 1)  # another charger's: filtered out
        await sim.plug("ST-1", 1)
        seen: list[tuple[str, dict[str, object]]] = []
        async for event, data in messages:
            seen.append((event, json.loads(data)))
            if event == "status" and seen[-1][1].get("new") == "Preparing":
                break
    kinds = [event for event, _ in seen]
    assert kinds[0] == "command" and "status" in kinds and set(kinds) <= {"command", "status"}
    assert all(data["kind"] == event and data["charger"] == "ST-1" for event, data in seen)
    assert all(0 < float(str(data["t"])) < LIMIT for _, data in seen)  # since the run started
    assert seen[0][1]["command"] == "plug"
    assert threading.active_count() == threads  # (the API runs no thread, not even once)


async def test_a_client_that_does_not_read_is_told_what_it_missed(
    served: tuple[Simulation, str],
) -> None:
    sim, url = served
    async with httpx.AsyncClient(base_url=url, headers=BEARER) as client, client.stream(
        "GET", "/api/events", params={"kind": "note", "buffer": "3"},
    ) as response:
        messages = read_messages(response)
        assert await anext(messages) == ("", "events")
        for i in range(50):  # all at once: the viewer's task cannot run in between
            await sim.bus.publish(note(i, "ST-1"))
        notes: list[str] = []
        dropped = 0
        while len(notes) + dropped < 50:
            event, data = await anext(messages)
            if event == "dropped":
                dropped += json.loads(data)["dropped"]
            else:
                notes.append(json.loads(data)["what"])
        # the fleet never waited: the client got what its buffer held (and the one handed
        # straight to its waiting stream), in order, and was told how many it missed
        assert notes == [f"n{i}" for i in range(len(notes))] and 3 <= len(notes) <= 4
        [viewer] = viewers(sim)
        assert (viewer.buffer, viewer.delivered, viewer.dropped) == (3, len(notes), dropped)


async def test_the_subscription_ends_when_the_client_leaves(
    served: tuple[Simulation, str],
) -> None:
    sim, url = served
    async with httpx.AsyncClient(base_url=url, headers=BEARER) as client:
        async with client.stream("GET", "/api/events") as response:
            assert await anext(read_messages(response)) == ("", "events")
            assert [v.open for v in viewers(sim)] == [True]
        # the server hears of the disconnect and closes the channel (polled: nothing signals
        # when hypercorn has read the client's end of the connection)
        while viewers(sim)[0].open:  # noqa: ASYNC110
            await trio.sleep(0.01)
        [before] = viewers(sim)
        await sim.bus.publish(note(0))  # the bus finds it closed and unsubscribes it
        [after] = viewers(sim)
        assert not after.open and after.delivered == before.delivered


async def test_the_stream_ends_when_the_server_stops(tmp_path: Path) -> None:
    fleet = parse_fleet(FLEET.format(ledger=tmp_path / "stop.db"))
    assert fleet.api is not None
    service = ApiService(fleet.api)
    ended = trio.Event()
    with trio.fail_after(LIMIT):
        async with (
            open_simulation(fleet, alongside=[service], gc_tuning=False, grace=1) as sim,
            httpx.AsyncClient(base_url=service.url or "", headers=BEARER) as client,
        ):

            async def watch(task_status: trio.TaskStatus[None]) -> None:
                async with client.stream("GET", "/api/events") as response:
                    messages = read_messages(response)
                    assert await anext(messages) == ("", "events")
                    task_status.started()
                    async for _ in messages:  # to its clean end: never cut mid-body
                        pass
                ended.set()

            async with trio.open_nursery() as nursery:
                await nursery.start(watch)
                sim.stop()
                await sim.wait_finished()
                await ended.wait()  # the fleet's end ends the stream (with its last chunk)
            assert [v.open for v in viewers(sim)] == [False]


async def test_the_stream_needs_the_token(served: tuple[Simulation, str]) -> None:
    sim, url = served
    async with httpx.AsyncClient(base_url=url) as client:
        refused = await client.get("/api/events", params={"access_token": "wrong"})
    assert refused.status_code == 401 and viewers(sim) == []
    assert "events-token" not in refused.text


@pytest.mark.parametrize(("params", "detail"), [
    ({"kind": "status,no_such_kind"}, "kind filter: no event kind 'no_such_kind'"),
    ({"charger": "ST-1,ST-9"}, "charger filter: no charger 'ST-9' in this fleet"),
    ({"buffer": "0"}, "buffer"),
])
async def test_bad_filters_are_a_problem_document(
    served: tuple[Simulation, str], params: dict[str, str], detail: str,
) -> None:
    sim, url = served
    async with httpx.AsyncClient(base_url=url, headers=BEARER) as client:
        response = await client.get("/api/events", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert detail in response.json()["detail"]
    assert viewers(sim) == []
