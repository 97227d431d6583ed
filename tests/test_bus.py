"""The event bus: fan-out, lossless backpressure, lossy drop counting, closing; live counters."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from simulator.bus import Counters, EventBus, LiveStatistics, event_kinds, run_statistics
from simulator.events import (
    CallTimedOut,
    Connected,
    ConnectFailed,
    Crashed,
    Disconnected,
    Event,
    FrameIn,
    FrameOut,
    Note,
    TransactionStarted,
    TransactionStopped,
)


def note(i: int) -> Note:
    return Note(t=float(i), charger="CP-1", what=f"n{i}")


def drain(receive: trio.MemoryReceiveChannel[Event]) -> list[Event]:
    out: list[Event] = []
    while True:
        try:
            out.append(receive.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return out


async def test_fan_out_reaches_every_subscriber_in_order() -> None:
    bus = EventBus()
    ledger = bus.subscribe(lossless=True, buffer=10, name="ledger")
    viewer = bus.subscribe_lossy(10, name="viewer")
    stats = bus.subscribe_lossy(10, name="stats")
    events = [note(i) for i in range(5)]
    for event in events:
        await bus.publish(event)
    assert drain(ledger) == events
    assert drain(viewer) == events
    assert drain(stats) == events
    snapshot = bus.statistics()
    assert snapshot.published == 5
    assert [(s.name, s.lossless, s.delivered, s.dropped) for s in snapshot.subscribers] == [
        ("ledger", True, 5, 0), ("viewer", False, 5, 0), ("stats", False, 5, 0),
    ]
    assert snapshot.dropped == 0


async def test_lossy_subscriber_drops_and_counts_when_full() -> None:
    bus = EventBus()
    viewer = bus.subscribe_lossy(2, name="viewer")
    for i in range(5):
        await bus.publish(note(i))
    (sub,) = bus.statistics().subscribers
    assert (sub.delivered, sub.dropped, sub.buffered, sub.buffer) == (2, 3, 2, 2)
    assert drain(viewer) == [note(0), note(1)]  # the oldest are kept, later ones dropped
    await bus.publish(note(5))
    assert drain(viewer) == [note(5)]
    (sub,) = bus.statistics().subscribers
    assert (sub.delivered, sub.dropped, sub.buffered) == (3, 3, 0)
    assert bus.statistics().dropped == 3


async def test_full_lossless_subscriber_blocks_publish(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    ledger = bus.subscribe_lossless(1)
    viewer = bus.subscribe_lossy(10, name="viewer")
    await bus.publish(note(0))  # fills the ledger's buffer
    with trio.move_on_after(60) as scope:
        await bus.publish(note(1))
    assert scope.cancelled_caught, "publish must wait while the lossless buffer is full"
    # the lossy subscriber got it (lossy ones are served first), the ledger did not
    assert drain(viewer) == [note(0), note(1)]
    assert bus.statistics().subscribers[0].delivered == 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bus.publish, note(2))
        await trio.sleep(1)
        assert ledger.statistics().tasks_waiting_send == 1
        assert await ledger.receive() == note(0)  # room again: the waiting publisher proceeds
    assert drain(ledger) == [note(2)]
    (ledger_stats, viewer_stats) = bus.statistics().subscribers
    assert (ledger_stats.delivered, ledger_stats.dropped) == (2, 0)
    assert viewer_stats.delivered == 3


async def test_aclose_ends_subscribers_after_draining_and_refuses_publish() -> None:
    bus = EventBus()
    receive = bus.subscribe_lossless(10)
    await bus.publish(note(0))
    await bus.aclose()
    await bus.aclose()  # idempotent
    assert await receive.receive() == note(0)
    with pytest.raises(trio.EndOfChannel):
        await receive.receive()
    with pytest.raises(trio.ClosedResourceError):
        await bus.publish(note(1))
    with pytest.raises(trio.ClosedResourceError):
        bus.subscribe_lossy(1, name="late")
    assert not bus.statistics().subscribers[0].open


async def test_aclose_releases_a_blocked_publisher(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    bus.subscribe_lossless(1)
    await bus.publish(note(0))
    outcome: list[str] = []

    async def publisher() -> None:
        try:
            await bus.publish(note(1))
        except trio.ClosedResourceError:
            outcome.append("closed")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(publisher)
        await trio.sleep(1)
        await bus.aclose()
    assert outcome == ["closed"]


async def test_a_subscriber_that_closes_its_channel_leaves() -> None:
    bus = EventBus()
    gone = bus.subscribe_lossless(1, name="gone")
    stays = bus.subscribe_lossy(10, name="stays")
    await gone.aclose()
    await bus.publish(note(0))
    await bus.publish(note(1))
    assert drain(stays) == [note(0), note(1)]
    gone_stats, stays_stats = bus.statistics().subscribers
    assert (gone_stats.open, gone_stats.delivered) == (False, 0)
    assert (stays_stats.open, stays_stats.delivered) == (True, 2)


async def test_a_leaving_subscriber_does_not_make_its_neighbour_miss_the_event() -> None:
    bus = EventBus()
    first_lossy = bus.subscribe_lossy(10, name="first")
    second_lossy = bus.subscribe_lossy(10, name="second")
    first_lossless = bus.subscribe_lossless(10, name="ledger-1")
    second_lossless = bus.subscribe_lossless(10, name="ledger-2")
    await first_lossy.aclose()
    await first_lossless.aclose()
    await bus.publish(note(0))
    assert drain(second_lossy) == [note(0)]
    assert drain(second_lossless) == [note(0)]
    assert [(s.name, s.open, s.delivered) for s in bus.statistics().subscribers] == [
        ("first", False, 0), ("second", True, 1), ("ledger-1", False, 0), ("ledger-2", True, 1),
    ]


@pytest.mark.parametrize("buffer", [0, -1, 1.5, True])
def test_subscribe_rejects_bad_buffers(buffer: int) -> None:
    with pytest.raises(ValueError, match="buffer"):
        EventBus().subscribe(lossless=False, buffer=buffer, name="x")


def test_counters_follow_connections_transactions_errors_and_rates() -> None:
    counters = Counters(rate_window=2)
    events: list[Event] = [
        Connected(t=0.1, charger="A", url="ws://x"),
        Connected(t=0.2, charger="B", url="ws://x"),
        ConnectFailed(t=0.3, charger="C", url="ws://x", error="refused", attempt=1, retry_in=1),
        TransactionStarted(t=1.0, charger="A", connector=1, id_tag="T", meter_start=0, local_id=1),
        TransactionStarted(t=1.1, charger="A", connector=2, id_tag="T", meter_start=0, local_id=2),
        TransactionStarted(t=1.2, charger="B", connector=1, id_tag="T", meter_start=0, local_id=1),
        TransactionStopped(
            t=1.5, charger="B", connector=1, local_id=1, transaction_id=7, meter_stop=5,
            reason="Local",
        ),
        FrameOut(t=1.0, charger="A", raw="[2]", message_type=2),
        FrameOut(t=1.4, charger="A", raw="[4]", message_type=4),
        FrameIn(t=2.0, charger="A", raw="[3]", message_type=3),
        FrameIn(t=2.5, charger="A", raw="[4]", message_type=4),
        FrameIn(t=2.6, charger="B", raw="[4]", message_type=4),
        CallTimedOut(t=3.0, charger="B", unique_id="u", action="Heartbeat", timeout=30),
        Disconnected(t=3.1, charger="B"),
        Connected(t=3.5, charger="B", url="ws://x"),
        Crashed(t=3.6, charger="A", error="boom", traceback="", restart_in=1),
        Note(t=3.7, charger="A", what="other"),
    ]
    for event in events:
        counters.observe(event)
    snap = counters.snapshot(now=3.9)
    assert snap == LiveStatistics(
        t=3.9,
        events=len(events),
        chargers_connected=1,  # A crashed, B reconnected
        chargers_in_transaction=1,
        transactions_open=2,
        frames_in=3,
        frames_out=2,
        messages_in_per_s=1.5,  # seconds 1 and 2 (window 2 s before second 3): 3 frames
        messages_out_per_s=1.0,  # second 1: 2 frames
        call_errors_received=2,
        call_errors_sent=1,
        timeouts=1,
        connects=3,
        reconnects=1,
        connect_failures=1,
        crashes=1,
    )
    assert counters.snapshot().t == 3.7
    assert counters.snapshot(now=10).messages_in_per_s == 0.0


def test_counters_reject_a_bad_window() -> None:
    with pytest.raises(ValueError, match="rate_window"):
        Counters(rate_window=0)


async def test_run_statistics_consumes_a_lossy_subscription() -> None:
    bus = EventBus()
    async with trio.open_nursery() as nursery:
        counters = await nursery.start(
            run_statistics, bus.subscribe_lossy(100, name="statistics"), Counters()
        )
        await bus.publish(Connected(t=1, charger="A", url="ws://x"))
        await bus.publish(FrameIn(t=1, charger="A", raw="[4]", message_type=4))
        await bus.aclose()  # run_statistics returns at end-of-channel
    snapshot = counters.snapshot()
    assert (snapshot.chargers_connected, snapshot.call_errors_received) == (1, 1)


async def test_observers_see_every_event_inline_before_the_channels() -> None:
    bus = EventBus()
    seen: list[Event] = []
    ledger = bus.subscribe_lossless(10)
    bus.observe(seen.append)
    counters = Counters()
    bus.observe(counters.observe)
    for i in range(3):
        await bus.publish(note(i))
    assert seen == [note(0), note(1), note(2)]
    assert drain(ledger) == seen
    assert counters.snapshot().events == 3
    await bus.aclose()
    with pytest.raises(trio.ClosedResourceError):
        bus.observe(seen.append)


def ledger_viewer_observer(
    ledger_buffer: int, viewer_buffer: int
) -> tuple[EventBus, trio.MemoryReceiveChannel[Event], trio.MemoryReceiveChannel[Event],
           list[Event]]:
    """A bus with a lossless "ledger", a lossy "viewer" and an observer that keeps what it
    sees."""
    bus = EventBus()
    ledger = bus.subscribe_lossless(ledger_buffer)
    viewer = bus.subscribe_lossy(viewer_buffer, name="viewer")
    seen: list[Event] = []
    bus.observe(seen.append)
    return bus, ledger, viewer, seen


async def test_control_events_reach_only_the_lossless_subscribers() -> None:
    bus, ledger, viewer, seen = ledger_viewer_observer(10, 10)
    await bus.publish_control(note(0))
    await bus.publish(note(1))
    assert drain(ledger) == [note(0), note(1)]
    assert drain(viewer) == [note(1)]
    assert seen == [note(1)]
    assert bus.statistics().published == 1
    await bus.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await bus.publish_control(note(2))


async def test_publish_with_room_does_not_yield_but_honours_cancellation() -> None:
    """The hot path: no task switch while every buffer has room; a cancelled publisher still
    raises ``Cancelled`` at once (and its event reaches nobody)."""
    bus = EventBus()
    ledger = bus.subscribe_lossless(100)
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        for i in range(10):
            await bus.publish(note(i))
        assert ran == []  # ten publishes, and the other task has not had a turn
        await trio.testing.wait_all_tasks_blocked()
        assert ran == ["other"]
    with trio.CancelScope() as scope:
        scope.cancel()
        await bus.publish(note(10))
    assert scope.cancelled_caught
    assert len(drain(ledger)) == 10


async def test_a_cancelled_publisher_delivers_nothing() -> None:
    bus = EventBus()
    ledger = bus.subscribe_lossless(10)
    viewer = bus.subscribe_lossy(10, name="viewer")
    seen: list[Event] = []
    bus.observe(seen.append)
    with trio.CancelScope() as scope:
        scope.cancel()
        await bus.publish(note(0))
    assert scope.cancelled_caught
    assert (drain(ledger), drain(viewer), seen, bus.statistics().published) == ([], [], [], 0)


# --- the kinds filter of a lossy subscriber ------------------------------------------------------


def connected(i: int) -> Connected:
    return Connected(t=float(i), charger=f"CP-{i}", url="ws://csms")


async def test_a_kinds_filter_keeps_unwanted_kinds_out_of_the_channel() -> None:
    bus = EventBus()
    everything = bus.subscribe_lossy(100, name="everything")
    by_tag = bus.subscribe_lossy(100, name="by tag", kinds=["connected", "note"])
    by_class = bus.subscribe_lossy(1, name="by class", kinds=[Connected])
    events: list[Event] = [note(0), connected(1), FrameIn(t=2.0, raw="[]"), connected(3)]
    for event in events:
        await bus.publish(event)
    assert drain(everything) == events
    assert drain(by_tag) == [note(0), connected(1), connected(3)]
    assert drain(by_class) == [connected(1)]  # buffer 1: the second connected is dropped
    stats = {s.name: s for s in bus.statistics().subscribers}
    # unwanted kinds are neither delivered nor counted as dropped
    assert (stats["by tag"].delivered, stats["by tag"].dropped) == (3, 0)
    assert (stats["by class"].delivered, stats["by class"].dropped) == (1, 1)
    assert (stats["everything"].delivered, stats["everything"].dropped) == (4, 0)
    assert bus.subscriber_statistics(by_class) == stats["by class"]


async def test_a_filtered_subscriber_that_leaves_is_unrouted() -> None:
    bus = EventBus()
    gone = bus.subscribe_lossy(10, name="gone", kinds=["connected"])
    stays = bus.subscribe_lossy(10, name="stays", kinds=["connected"])
    plain = bus.subscribe_lossy(10, name="plain")
    gone.close()
    await bus.publish(connected(0))  # finds ``gone`` closed: it leaves
    await bus.publish(connected(1))
    assert drain(stays) == [connected(0), connected(1)]
    assert drain(plain) == [connected(0), connected(1)]
    assert [s.open for s in bus.statistics().subscribers] == [False, True, True]
    assert bus.subscriber_statistics(gone).delivered == 0
    stays.close()
    await bus.publish(connected(2))
    await bus.publish(note(3))
    assert drain(plain) == [connected(2), note(3)]


@pytest.mark.parametrize("kinds", [["no_such_kind"], [], [str], ["connected", 3]])
def test_a_bad_kinds_filter_is_refused(kinds: list[object]) -> None:
    bus = EventBus()
    with pytest.raises(ValueError):
        bus.subscribe_lossy(10, name="viewer", kinds=kinds)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lossless"):
        bus.subscribe(lossless=True, buffer=10, name="ledger", kinds=["connected"])
    assert bus.statistics().subscribers == ()


def test_event_kinds_names_every_event_class_by_its_tag() -> None:
    kinds = event_kinds()
    assert kinds["connected"] is Connected and kinds["crash"] is Crashed
    assert kinds["frame_in"] is FrameIn and "command" in kinds
    assert all(cls.__struct_config__.tag == tag for tag, cls in kinds.items())


async def test_a_subscriber_that_closed_its_channel_is_shown_closed_before_the_next_publish(
) -> None:
    bus = EventBus()
    viewer = bus.subscribe_lossy(10, name="viewer")
    await bus.publish(note(0))
    viewer.close()
    assert bus.subscriber_statistics(viewer).open is False
    await bus.publish(note(1))
    assert bus.subscriber_statistics(viewer).open is False
