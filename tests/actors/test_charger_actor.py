"""The charger actor, its supervisor and the fleet ramp, on trio's autojump clock over memory
transports, against the embedded CSMS's sans-IO core (no sockets, no real time)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from simulator.actors import fleet as fleet_module
from simulator.actors.charger import (
    OUTBOX_PERSIST_INTERVAL,
    Backoff,
    ChargerControl,
    ChargerEnv,
    run_charger,
)
from simulator.actors.fleet import GroupPlan, run_fleet, supervise_charger
from simulator.actors.timers import TimerWheel
from simulator.actors.transport import (
    NOT_SENT,
    SENT,
    STARTED,
    ConnectError,
    Transport,
    TransportClosed,
    memory_transport_pair,
)
from simulator.csms.core import CentralSystem
from simulator.csms.options import CsmsOptions
from simulator.events import (
    Connected,
    ConnectFailed,
    Crashed,
    Disconnected,
    Event,
    FrameOut,
    Note,
    TransactionStopped,
)
from simulator.machines.charger import ChargerMachine, ChargerSpec
from simulator.machines.domain import PlugIn, PresentTag
from simulator.machines.effects import OutboxEntry, PersistOutbox
from simulator.machines.meter import EvSpec
from simulator.machines.workload import Range, SessionPlan
from simulator.ocpp.v16 import ResetRequest, ResetType

WALL_EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeCsms:
    """The reference CSMS core behind memory transports; ``down`` refuses new connections."""

    def __init__(self, options: CsmsOptions | None = None) -> None:
        counter = itertools.count(1)
        self.core = CentralSystem(options or CsmsOptions(heartbeat_interval=10),
                                  wall_epoch=WALL_EPOCH,
                                  new_id=lambda: f"cs-{next(counter)}")
        self.received: list[tuple[str, list[Any]]] = []
        self.down = False
        self.connects = 0
        self.live: dict[str, Transport] = {}
        self.nursery: trio.Nursery | None = None

    def opener(
        self, *, fail: Callable[[int], BaseException | None] = lambda attempt: None
    ) -> Callable[[str], AbstractAsyncContextManager[Transport]]:
        attempts = itertools.count(1)

        @asynccontextmanager
        async def open_transport(identity: str) -> AsyncIterator[Transport]:
            error = fail(next(attempts))
            if error is not None:
                raise error
            if self.down:
                raise ConnectError(f"ws://memory/{identity}: connection refused")
            client, server = memory_transport_pair(64)
            assert self.nursery is not None
            self.nursery.start_soon(self._serve, identity, server)
            self.connects += 1
            try:
                yield client
            finally:
                await client.aclose()

        return open_transport

    async def _serve(self, identity: str, transport: Transport) -> None:
        opened = self.core.connect(identity, trio.current_time())
        self.live[identity] = transport
        try:
            while True:
                data = await transport.receive()
                self.received.append((identity, json.loads(data)))
                reply = self.core.receive(identity, data, trio.current_time())
                for frame in reply.frames:
                    await transport.send(frame.data.decode())
        except TransportClosed:
            pass
        finally:
            self.live.pop(identity, None)
            self.core.disconnect(identity, opened.session, trio.current_time())

    async def drop(self, identity: str) -> None:
        transport = self.live.get(identity)
        if transport is not None:
            await transport.aclose(1006, "dropped by the test")

    def calls(self, identity: str, action: str) -> list[dict[str, Any]]:
        return [frame[3] for who, frame in self.received
                if who == identity and frame[0] == 2 and frame[2] == action]


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.persisted: list[PersistOutbox] = []

    async def publish(self, event: Event) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()  # as EventBus.publish does
        self.events.append(event)

    def publish_nowait(self, event: Event) -> bool:
        """Takes every event, as ``EventBus.publish_nowait`` does while the ledger keeps up:
        the charger's steps then complete without waiting, wherever they are taken."""
        self.events.append(event)
        return True

    async def persist(self, effect: PersistOutbox) -> None:
        self.persisted.append(effect)

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def start_charging(
    nursery: trio.Nursery, csms: FakeCsms, env: ChargerEnv, control: ChargerControl, *,
    energy_wanted_kwh: float,
) -> None:
    """Run the charger of ``env`` against ``csms`` in ``nursery`` (with its fleet wheel, if it
    has one), let it boot for 2 s, then an EV plugs into connector 1 and TAG-1 starts a
    transaction."""
    csms.nursery = nursery
    if env.timers is not None:
        await nursery.start(env.timers.run)
    nursery.start_soon(run_charger, env, control)
    await trio.sleep(2)
    ev = EvSpec(battery_kwh=60, initial_soc=20, max_power_kw=11,
                energy_wanted_kwh=energy_wanted_kwh)
    await control.inbox_send.send(PlugIn(1, ev=ev))
    await control.inbox_send.send(PresentTag(1, "TAG-1"))


def make_env(
    csms: FakeCsms,
    recorder: Recorder,
    *,
    identity: str = "CP-1",
    config: dict[str, str | int | bool | float] | None = None,
    sessions: SessionPlan | None = None,
    fail: Callable[[int], BaseException | None] = lambda attempt: None,
    timers: TimerWheel | None = None,
) -> ChargerEnv:
    spec = ChargerSpec(
        identity=identity, vendor="Acme", model="AC22", connectors=2, max_power_kw=22,
        config=config or {"HeartbeatInterval": 10, "MeterValueSampleInterval": 5},
    )
    return ChargerEnv(
        spec=spec, seed=7, url=f"ws://memory/{identity}", open_transport=csms.opener(fail=fail),
        publish=recorder.publish, publish_nowait=recorder.publish_nowait,
        persist=recorder.persist, wall_epoch=WALL_EPOCH,
        sessions=sessions, backoff=Backoff(base=1.0, cap=30.0), timers=timers,
    )


@pytest.mark.parametrize("wheel", [False, True], ids=["own-wheel", "fleet-wheel"])
async def test_charger_boots_reports_statuses_and_heartbeats(
    autojump_clock: trio.testing.MockClock, wheel: bool,
) -> None:
    csms, recorder = FakeCsms(), Recorder()
    timers = TimerWheel() if wheel else None
    env = make_env(csms, recorder, timers=timers)
    control = ChargerControl()
    async with trio.open_nursery() as nursery:
        csms.nursery = nursery
        if timers is not None:
            await nursery.start(timers.run)
        nursery.start_soon(run_charger, env, control)
        await trio.sleep(35)
        assert control.connected
        await control.shutdown(trio.current_time() + 5)
        await control.done.wait()
        nursery.cancel_scope.cancel()

    sent = [e.action for e in recorder.of(FrameOut) if e.message_type == 2]
    assert sent[0] == "BootNotification"
    assert sent[1:4] == ["StatusNotification"] * 3
    assert sent.count("Heartbeat") == 3  # at 10, 20 and 30 s
    heartbeats = [e.t for e in recorder.of(FrameOut) if e.action == "Heartbeat"]
    # every 10 s (each late by at most one step of the timer wheel's 5 ms grid)
    assert [b - a for a, b in itertools.pairwise(heartbeats)] == pytest.approx([10, 10],
                                                                               abs=0.0051)
    if timers is not None:
        assert timers.fired >= 3
    assert len(recorder.of(Connected)) == 1
    state = csms.core.charger_state("CP-1")
    assert state is not None and state.boot_status == "Accepted"
    # the FrameOut events are exactly what the CSMS received, in order
    assert [json.loads(e.raw) for e in recorder.of(FrameOut)] == [f for _, f in csms.received]


async def test_events_published_without_waiting_or_after_a_wait_come_once_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With ``publish_nowait``, an event it takes is not published again, and one it refuses
    (a full ledger buffer) is awaited through ``publish``: the same events, in the same order,
    as a charger that only awaits."""

    async def run(refuse_every: int | None) -> list[tuple[object, ...]]:
        csms, recorder = FakeCsms(), Recorder()
        calls = itertools.count()

        def publish_nowait(event: Event) -> bool:
            if refuse_every is None or next(calls) % refuse_every == 0:
                return False  # (None: a charger that only awaits)
            recorder.events.append(event)
            return True

        env = dataclasses.replace(make_env(csms, recorder), publish_nowait=publish_nowait)
        control = ChargerControl()
        async with trio.open_nursery() as nursery:
            await start_charging(nursery, csms, env, control, energy_wanted_kwh=10)
            await trio.sleep(30)
            await control.shutdown(trio.current_time() + 5)
            await control.done.wait()
            nursery.cancel_scope.cancel()
        start = recorder.events[0].t  # (the second run starts later on the same clock)
        return [(type(e).__name__, round(e.t - start, 6), getattr(e, "action", None),
                 getattr(e, "unique_id", None)) for e in recorder.events]

    awaited = await run(None)
    assert len(awaited) > 30
    assert await run(3) == awaited
    assert await run(10**9) == awaited  # all but the first taken at once


async def test_a_reset_from_the_csms_reboots_the_charger_after_answering_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The Reset CALL finds the main loop idle, so the link's own task steps the machine with
    it: the Reboot it causes must still close the connection (after the answer went out), hold
    the charger down for its reboot delay and boot it again."""
    csms, recorder = FakeCsms(), Recorder()
    env = make_env(csms, recorder)
    control = ChargerControl()
    async with trio.open_nursery() as nursery:
        csms.nursery = nursery
        nursery.start_soon(run_charger, env, control)
        await trio.sleep(3)
        assert control.connected
        reset_at = trio.current_time()
        request = csms.core.call("CP-1", ResetRequest(type=ResetType.HARD), reset_at)
        await csms.live["CP-1"].send(request.decode())
        await trio.sleep(30)
        assert control.connected
        await control.shutdown(trio.current_time() + 5)
        await control.done.wait()
        nursery.cancel_scope.cancel()

    reset_id = json.loads(request)[1]
    answers = [e for e in recorder.of(FrameOut) if e.unique_id == reset_id]
    assert [json.loads(e.raw)[2] for e in answers] == [{"status": "Accepted"}]
    # the whole step was applied, also what came after the Reboot effect
    assert [n.data for n in recorder.of(Note) if n.what == "reboot"] == [{"delay": 5.0}]
    (down,) = recorder.of(Disconnected)
    assert (down.code, down.reason) == (1000, "closed by the charger")
    assert answers[0].t <= down.t
    connects = [e.t for e in recorder.of(Connected)]
    assert len(connects) == 2
    assert connects[1] - reset_at >= env.spec.reboot_delay == 5.0
    assert len(csms.calls("CP-1", "BootNotification")) == 2


async def test_unreachable_csms_means_logged_reconnects_with_jittered_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    csms, recorder = FakeCsms(), Recorder()
    csms.down = True
    env = make_env(csms, recorder)
    control = ChargerControl()
    async with trio.open_nursery() as nursery:
        csms.nursery = nursery
        nursery.start_soon(supervise_charger, env, control)
        await trio.sleep(120)
        csms.down = False
        await trio.sleep(60)
        assert control.connected
        await control.shutdown(trio.current_time() + 5)
        await control.done.wait()
        nursery.cancel_scope.cancel()

    failures = recorder.of(ConnectFailed)
    assert len(failures) >= 5
    assert [f.attempt for f in failures] == list(range(1, len(failures) + 1))
    for failure in failures:
        assert 0 <= failure.retry_in <= min(30.0, 2.0 ** failure.attempt)
        assert "connection refused" in failure.error
    assert not recorder.of(Crashed)
    assert csms.calls("CP-1", "BootNotification")


async def test_backoff_is_reproducible_from_the_seed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def delays() -> list[float]:
        csms, recorder = FakeCsms(), Recorder()
        csms.down = True
        control = ChargerControl()
        async with trio.open_nursery() as nursery:
            csms.nursery = nursery
            nursery.start_soon(run_charger, make_env(csms, recorder), control)
            await trio.sleep(100)
            nursery.cancel_scope.cancel()
        return [f.retry_in for f in recorder.of(ConnectFailed)]

    first, second = await delays(), await delays()
    assert first == second and len(set(first)) > 1


async def test_crash_is_recorded_with_traceback_and_the_charger_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    csms, recorder = FakeCsms(), Recorder()

    def fail(attempt: int) -> BaseException | None:
        return RuntimeError("boom in the transport") if attempt == 1 else None

    env = make_env(csms, recorder, fail=fail)
    control = ChargerControl()
    async with trio.open_nursery() as nursery:
        csms.nursery = nursery
        nursery.start_soon(supervise_charger, env, control)
        await trio.sleep(90)
        assert control.connected
        await control.shutdown(trio.current_time() + 5)
        await control.done.wait()
        nursery.cancel_scope.cancel()

    crashes = recorder.of(Crashed)
    assert len(crashes) == 1
    assert "boom in the transport" in crashes[0].error
    assert "RuntimeError" in crashes[0].traceback and "Traceback" in crashes[0].traceback
    assert control.restarts == 1
    assert len(csms.calls("CP-1", "BootNotification")) == 1


async def test_transaction_messages_survive_a_dropped_connection_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    csms, recorder = FakeCsms(), Recorder()
    env = make_env(csms, recorder)
    control = ChargerControl()
    async with trio.open_nursery() as nursery:
        await start_charging(nursery, csms, env, control, energy_wanted_kwh=10)
        await trio.sleep(12)
        csms.down = True
        await csms.drop("CP-1")
        await trio.sleep(40)  # offline: MeterValues pile up in the outbox
        assert not control.connected
        assert recorder.persisted and recorder.persisted[-1].entries
        csms.down = False
        await trio.sleep(60)
        assert control.connected
        await control.shutdown(trio.current_time() + 10)
        await control.done.wait()
        nursery.cancel_scope.cancel()

    starts = csms.calls("CP-1", "StartTransaction")
    values = csms.calls("CP-1", "MeterValues")
    stops = csms.calls("CP-1", "StopTransaction")
    assert len(starts) == 1 and len(stops) == 1
    tx = csms.core.transactions("CP-1")
    assert len(tx) == 1
    tx_id = tx[0].transaction_id
    assert stops[0]["transactionId"] == tx_id and stops[0]["reason"] == "Local"
    assert all(v["transactionId"] == tx_id for v in values)
    stamps = [v["meterValue"][0]["timestamp"] for v in values]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    # one sample every 5 s over ~110 s of transaction: none lost while offline
    assert len(values) >= 20
    registers = [float(v["meterValue"][0]["sampledValue"][0]["value"]) for v in values]
    assert registers == sorted(registers)
    stopped = recorder.of(TransactionStopped)
    assert [s.reason for s in stopped] == ["Local"]


@pytest.mark.parametrize("nowait", [False, True], ids=["awaited", "nowait"])
@pytest.mark.parametrize("wheel", [False, True], ids=["own-wheel", "fleet-wheel"])
async def test_the_outbox_is_stored_late_while_empty_and_at_once_once_it_holds_messages(
    autojump_clock: trio.testing.MockClock, wheel: bool, nowait: bool,
) -> None:
    """Online with prompt answers, every transaction message is queued and acknowledged within
    the interval: nothing is stored. Offline, the first message waits one interval, the next ones
    are stored as they come; back online, every delivery is stored at once (a kill then never
    makes --resume send a delivered message again), down to the empty queue. The same whether
    the ledger takes the snapshots without waiting (``persist_nowait``) or not."""
    csms, recorder = FakeCsms(), Recorder()
    timers = TimerWheel() if wheel else None
    env = make_env(csms, recorder, config={"HeartbeatInterval": 10,
                                           "MeterValueSampleInterval": 1}, timers=timers)
    control = ChargerControl()
    stamps: list[float] = []
    awaited: list[PersistOutbox] = []

    async def persist(effect: PersistOutbox) -> None:
        stamps.append(trio.current_time())
        recorder.persisted.append(effect)
        awaited.append(effect)

    def persist_nowait(effect: PersistOutbox) -> bool:
        stamps.append(trio.current_time())
        recorder.persisted.append(effect)
        return True

    env = dataclasses.replace(env, persist=persist)
    if nowait:
        env = dataclasses.replace(env, persist_nowait=persist_nowait)
    async with trio.open_nursery() as nursery:
        await start_charging(nursery, csms, env, control, energy_wanted_kwh=30)
        await trio.sleep(20)
        assert len(csms.calls("CP-1", "MeterValues")) >= 15
        assert recorder.persisted == []  # every message acknowledged within the interval
        csms.down = True
        await csms.drop("CP-1")
        dropped_at = trio.current_time()
        await trio.sleep(30)  # offline: a MeterValues a second piles up
        offline = [len(p.entries) for p in recorder.persisted]
        assert offline == list(range(1, len(offline) + 1))  # each new message, as it comes
        assert len(offline) >= 25
        first_sample = dropped_at + 1.0  # the next MeterValues after the drop, within a second
        assert first_sample - 1.0 + OUTBOX_PERSIST_INTERVAL - 1e-9 <= stamps[0] \
            <= first_sample + OUTBOX_PERSIST_INTERVAL + 0.01  # the first one waited
        csms.down = False
        await trio.sleep(40)
        assert control.connected
        drain = [len(p.entries) for p in recorder.persisted[len(offline):]]
        # every delivery stored at once: the queue shrinks one message at a time (new samples
        # may join it meanwhile, one at a time too), to the empty queue
        assert all(abs(b - a) <= 1 for a, b in itertools.pairwise(drain))  # (or an entry
        # updated in place: the transaction id once StartTransaction is answered)
        assert drain.index(0) == len(drain) - 1 >= 25
        count = len(recorder.persisted)
        assert (awaited == []) is nowait  # (with nowait, none of these had to wait)
        await control.shutdown(trio.current_time() + 10)
        await control.done.wait()
        nursery.cancel_scope.cancel()
    # the StopTransaction was queued and acknowledged at the end: stored at most twice more, and
    # the last word is the empty queue
    assert len(recorder.persisted) <= count + 2
    assert recorder.persisted[-1].entries == ()
    assert control.persisted == control.outbox == ()


async def test_a_message_acknowledged_within_the_interval_costs_no_wake_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The wake-up that would store a new message is dropped once the queue is back to the
    stored (empty) snapshot: online, each MeterValues costs the charger one alarm (its sample),
    not two (at 1,000 chargers the second was a third of the main loops' wake-ups)."""
    csms, recorder = FakeCsms(), Recorder()
    timers = TimerWheel()
    env = make_env(csms, recorder, config={"HeartbeatInterval": 3600,
                                           "MeterValueSampleInterval": 1}, timers=timers)
    control = ChargerControl()
    async with trio.open_nursery() as nursery:
        await start_charging(nursery, csms, env, control, energy_wanted_kwh=30)
        await trio.sleep(5)
        fired, sent = timers.fired, len(csms.calls("CP-1", "MeterValues"))
        await trio.sleep(20)
        fired, sent = timers.fired - fired, len(csms.calls("CP-1", "MeterValues")) - sent
        nursery.cancel_scope.cancel()
    assert sent >= 19
    assert recorder.persisted == []
    assert fired <= sent + 1  # one sample per MeterValues (and no second wake to store it)


async def test_a_restarted_charger_stores_what_its_predecessor_left_unstored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A charger that crashed within an interval of a change leaves its control with an outbox
    the ledger has not seen; the restart stores it before anything else."""
    csms, recorder = FakeCsms(), Recorder()
    csms.down = True  # offline all along: nothing gets delivered meanwhile
    env = make_env(csms, recorder)
    control = ChargerControl()
    entry = OutboxEntry(seq=1, action="StopTransaction",
                        payload='{"meterStop":10,"timestamp":"2026-01-01T00:00:00Z",'
                                '"transactionId":7}', local_tx=1, transaction_id=7)
    control.outbox = (entry,)  # changed by the predecessor, never handed to the ledger
    async with trio.open_nursery() as nursery:
        csms.nursery = nursery
        nursery.start_soon(run_charger, env, control)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert [p.entries for p in recorder.persisted] == [(entry,)]
    assert control.persisted == (entry,)


async def test_fleet_ramps_at_connect_rate_and_runs_automatic_sessions(
    autojump_clock: trio.testing.MockClock,
) -> None:
    csms, recorder = FakeCsms(), Recorder()
    sessions = SessionPlan(arrivals_per_hour=360, duration=Range(20, 60),
                           energy_kwh=Range(1, 5), id_tags=("TAG-1", "TAG-2"))
    envs = [make_env(csms, recorder, identity=f"CP-{n}", sessions=sessions) for n in range(10)]
    async with trio.open_nursery() as nursery:
        csms.nursery = nursery
        fleet = await nursery.start(
            lambda task_status: run_fleet([GroupPlan("g", 5.0, envs)], gc_tuning=False,
                                          task_status=task_status)
        )
        await fleet.ramp_done.wait()
        await trio.sleep(600)
        assert fleet.connected() == 10
        fleet.stop(10.0)
        with trio.fail_after(30):
            for control in fleet.controls.values():
                await control.done.wait()
        nursery.cancel_scope.cancel()

    connects = sorted(e.t for e in recorder.of(Connected))
    assert len(connects) == 10
    gaps = [b - a for a, b in itertools.pairwise(connects)]
    assert all(g == pytest.approx(0.2, abs=0.05) for g in gaps)
    records = csms.core.transactions()
    assert len(records) >= 10  # ~6 per connector-hour over 10 min on 20 connectors
    assert all(r.stopped_at is not None for r in records)  # the graceful end stops what was running


@pytest.mark.parametrize("gc_tuning", [True, False])
async def test_gc_tuning_freezes_while_the_fleet_ramps_and_tunes_after(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch, gc_tuning: bool,
) -> None:
    """With tuning, what is alive is frozen every second of the ramp, each time after a
    collection of the young generations (a full one would traverse every charger started so
    far), then fully collected, frozen and the thresholds raised; without it the collector is
    left alone."""
    calls: list[str] = []
    freezes: list[float] = []
    thresholds: list[tuple[int, ...]] = []

    def freeze() -> None:
        calls.append("freeze")
        freezes.append(trio.current_time())

    def collect(generation: int = 2) -> int:
        calls.append(f"collect({generation})")
        return 0

    monkeypatch.setattr(fleet_module.gc, "freeze", freeze)
    monkeypatch.setattr(fleet_module.gc, "collect", collect)
    monkeypatch.setattr(fleet_module.gc, "set_threshold",
                        lambda *values: thresholds.append(values))
    csms, recorder = FakeCsms(), Recorder()
    envs = [make_env(csms, recorder, identity=f"CP-{n}") for n in range(20)]
    async with trio.open_nursery() as nursery:
        csms.nursery = nursery
        started = trio.current_time()
        fleet = await nursery.start(
            lambda task_status: run_fleet([GroupPlan("g", 4.0, envs)], gc_tuning=gc_tuning,
                                          task_status=task_status)
        )
        await fleet.ramp_done.wait()
        ramp_s = trio.current_time() - started
        await trio.sleep(30)
        fleet.stop(5.0)
        with trio.fail_after(30):
            for control in fleet.controls.values():
                await control.done.wait()
        nursery.cancel_scope.cancel()

    if not gc_tuning:
        assert (calls, thresholds) == ([], [])
        return
    assert ramp_s == pytest.approx(4.75, abs=0.1)  # 20 chargers at 4/s
    during_ramp = [t - started for t in freezes if t - started < ramp_s]
    assert during_ramp == pytest.approx([0, 1, 2, 3, 4])
    # after the ramp, and once more when the whole fleet is connected
    assert len(freezes) == len(during_ramp) + 2
    assert calls == ["collect(1)", "freeze"] * len(during_ramp) + ["collect(2)", "freeze"] * 2
    assert thresholds == [fleet_module.GC_THRESHOLDS] * 2



class SendPolicy:
    """A memory transport whose ``send_nowait`` refuses (``NOT_SENT``) or only starts
    (``STARTED``, the frame held back until ``flush``) every ``every``-th frame: the charger's
    waiting paths, taken where the socket would make it take them."""

    def __init__(self, inner: Transport, mode: int, every: int, counter: itertools.count[int],
                 ) -> None:
        self._inner = inner
        self._mode = mode
        self._every = every
        self._calls = counter
        self._held: str | None = None
        self.flushes = 0

    @property
    def subprotocol(self) -> str | None:
        return self._inner.subprotocol

    async def send(self, data: str) -> None:
        assert self._held is None, "a frame was started and not flushed"
        await self._inner.send(data)

    def send_nowait(self, data: str) -> int:
        assert self._held is None, "a frame was started and not flushed"
        if self._mode == SENT or next(self._calls) % self._every:
            return self._inner.send_nowait(data)
        if self._mode == STARTED:
            self._held = data
        return self._mode

    async def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self.flushes += 1
            await self._inner.send(held)

    async def receive(self) -> str:
        return await self._inner.receive()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.aclose(code, reason)


@pytest.mark.parametrize("wheel", [False, True], ids=["own-wheel", "fleet-wheel"])
async def test_frames_sent_at_once_or_after_a_wait_give_the_same_run(
    autojump_clock: trio.testing.MockClock, wheel: bool,
) -> None:
    """A frame the socket takes at once (``send_nowait``), one it refuses (sent by ``send``, in
    the main loop or the link) and one it takes in part (finished by ``flush``) make the same
    run: the same frames and events, at the same times, in the same order."""

    async def run(mode: int, every: int) -> list[tuple[object, ...]]:
        csms, recorder = FakeCsms(), Recorder()
        env = make_env(csms, recorder, timers=TimerWheel() if wheel else None,
                       config={"HeartbeatInterval": 10, "MeterValueSampleInterval": 1})
        counter = itertools.count()
        transports: list[SendPolicy] = []
        plain = env.open_transport

        @asynccontextmanager
        async def open_transport(identity: str) -> AsyncIterator[Transport]:
            async with plain(identity) as inner:
                transports.append(SendPolicy(inner, mode, every, counter))
                yield transports[-1]

        env = dataclasses.replace(env, open_transport=open_transport)
        control = ChargerControl()
        with trio.fail_after(200):
            async with trio.open_nursery() as nursery:
                await start_charging(nursery, csms, env, control, energy_wanted_kwh=10)
                await trio.sleep(40)
                await control.shutdown(trio.current_time() + 5)
                await control.done.wait()
                nursery.cancel_scope.cancel()
        if mode == STARTED:
            assert sum(t.flushes for t in transports) >= 5
        assert [json.loads(e.raw) for e in recorder.of(FrameOut)] == [f for _, f in csms.received]
        start = recorder.events[0].t
        return [(type(e).__name__, round(e.t - start, 6), getattr(e, "action", None),
                 getattr(e, "unique_id", None)) for e in recorder.events]

    at_once = await run(SENT, 1)
    assert sum(1 for e in at_once if e[0] == "FrameOut") > 40
    assert await run(NOT_SENT, 3) == at_once
    assert await run(STARTED, 4) == at_once
    assert await run(NOT_SENT, 1) == at_once  # a transport that never sends without waiting


@pytest.mark.parametrize("where", ["tick", "next_deadline"])
async def test_a_crash_in_a_step_the_timer_wheel_took_is_the_chargers_alone(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch, where: str,
) -> None:
    """A step taken in the fleet wheel's task (a timer came due while the charger waited) that
    raises, in the step or in the deadline computed after it, crashes that charger, recorded
    and restarted by its supervisor, not the wheel: the other chargers on it keep their
    timers."""
    csms, recorder = FakeCsms(), Recorder()
    timers = TimerWheel()
    armed = [True]

    def failing(method: Callable[..., Any], *, caller: str | None = None) -> Callable[..., Any]:
        def wrapper(self: ChargerMachine, *args: Any) -> Any:
            if armed[0] and self.spec.identity == "CP-A" and trio.current_time() >= 15 \
                    and (caller is None or sys._getframe(1).f_code.co_name == caller):
                armed[0] = False
                raise RuntimeError(f"boom in {method.__name__}")
            return method(self, *args)
        return wrapper

    if where == "tick":
        monkeypatch.setattr(ChargerMachine, "tick", failing(ChargerMachine.tick))
    else:  # as the actor asks for it after the step (the machine's own calls pass)
        monkeypatch.setattr(ChargerMachine, "next_deadline",
                            failing(ChargerMachine.next_deadline, caller="wake_time"))
    envs = [make_env(csms, recorder, identity=name, timers=timers) for name in ("CP-A", "CP-B")]
    controls = [ChargerControl(), ChargerControl()]
    with trio.fail_after(300):
        async with trio.open_nursery() as nursery:
            csms.nursery = nursery
            await nursery.start(timers.run)
            for env, control in zip(envs, controls, strict=True):
                nursery.start_soon(supervise_charger, env, control)
            await trio.sleep(60)
            for control in controls:
                await control.shutdown(trio.current_time() + 5)
                await control.done.wait()
            nursery.cancel_scope.cancel()

    crashes = recorder.of(Crashed)
    assert [c.charger for c in crashes] == ["CP-A"]
    assert f"boom in {where}" in crashes[0].error
    assert "tick_inline" in crashes[0].traceback  # it was the wheel's step that raised
    assert controls[0].restarts == 1 and controls[1].restarts == 0
    assert len(csms.calls("CP-A", "BootNotification")) == 2
    # CP-B's heartbeats every 10 s went on through CP-A's crash (the wheel lived on)
    beats = [e.t for e in recorder.of(FrameOut)
             if e.charger == "CP-B" and e.action == "Heartbeat"]
    assert len(beats) == 5
    assert [b - a for a, b in itertools.pairwise(beats)] == pytest.approx([10] * 4, abs=0.0051)


async def test_frames_queued_behind_a_busy_main_loop_keep_their_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Calls from the CSMS that queued in the inbox while the main loop was busy are answered
    in order, also when one more arrives as the main loop works through them: the main loop
    yields after a burst with items still queued, and no frame may be stepped around them
    then (by the link or the wheel)."""

    class GatedRecorder(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.gate: trio.Event | None = None
            self.late: Callable[[], None] | None = None

        async def publish(self, event: Event) -> None:
            if self.gate is not None:
                await self.gate.wait()
            if self.late is not None:
                late, self.late = self.late, None
                late()
            await super().publish(event)

        def publish_nowait(self, event: Event) -> bool:
            return self.gate is None and self.late is None and super().publish_nowait(event)

    def call(n: int) -> str:
        return json.dumps([2, f"q{n:02}", "GetConfiguration", {"key": ["HeartbeatInterval"]}])

    async def one_run() -> list[str]:
        csms, recorder = FakeCsms(), GatedRecorder()
        control = ChargerControl()
        async with trio.open_nursery() as nursery:
            csms.nursery = nursery
            nursery.start_soon(run_charger, make_env(csms, recorder), control)
            await trio.sleep(3)
            server = csms.live["CP-1"]
            recorder.gate = trio.Event()  # the main loop's next step waits in publish
            ev = EvSpec(battery_kwh=60, initial_soc=20, max_power_kw=11, energy_wanted_kwh=5)
            await control.inbox_send.send(PlugIn(1, ev=ev))
            await trio.testing.wait_all_tasks_blocked()
            for n in range(20):  # the main loop is busy: the link queues these in the inbox
                await server.send(call(n))
            await trio.testing.wait_all_tasks_blocked()
            # once the main loop goes again, one more call reaches the link (parked in receive)
            recorder.late = lambda: server.send_nowait(call(20)) and None
            gate, recorder.gate = recorder.gate, None
            gate.set()
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
        return [f[1] for _, f in csms.received if f[0] == 3 and str(f[1]).startswith("q")]

    with trio.fail_after(600):
        for _ in range(20):  # trio reverses a batch of tasks at random: 20 tries
            answered = await one_run()
            assert len(answered) == 21
            assert answered == sorted(answered), " ".join(answered)


async def test_a_timer_step_never_overtakes_an_item_handed_to_the_parked_main_loop(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An item sent to the parked main loop is handed to it at once (it is in no buffer) and
    waits for the main loop to run; a charger deadline that falls due meanwhile must not be
    stepped by the wheel ahead of it: the plug-in sent first is the machine's next input."""
    log: list[str] = []
    tick, plug_in = ChargerMachine.tick, ChargerMachine.plug_in

    def logged_tick(self: ChargerMachine, now: float) -> None:
        log.append("tick")
        tick(self, now)

    def logged_plug_in(self: ChargerMachine, connector_id: int, now: float, *,
                       ev: EvSpec) -> None:
        log.append("plug_in")
        plug_in(self, connector_id, now, ev=ev)

    monkeypatch.setattr(ChargerMachine, "tick", logged_tick)
    monkeypatch.setattr(ChargerMachine, "plug_in", logged_plug_in)
    csms, recorder = FakeCsms(), Recorder()
    timers = TimerWheel()
    control = ChargerControl()
    ev = EvSpec(battery_kwh=60, initial_soc=20, max_power_kw=11, energy_wanted_kwh=5)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            csms.nursery = nursery
            await nursery.start(timers.run)
            env = make_env(csms, recorder, timers=timers)
            nursery.start_soon(run_charger, env, control)
            await trio.sleep(3)
            await trio.testing.wait_all_tasks_blocked()  # idle, parked on its empty inbox
            (alarm,) = {a for bucket in timers._buckets.values() for a in bucket
                        if a._channel is control.inbox_send and a.when is not None}
            deadline = alarm.when
            assert deadline is not None

            def plug(now: float) -> bool:  # fired by the wheel just before the charger's alarm
                control.inbox_send.send_nowait(PlugIn(1, ev=ev))
                log.append("PlugIn sent")
                return True

            timers.alarm(control.inbox_send, None, plug).set(deadline - 0.02)
            autojump_clock.autojump_threshold = math.inf  # one late wake-up: both are due
            autojump_clock.jump(deadline + 0.01 - trio.current_time())
            await trio.testing.wait_all_tasks_blocked()
            autojump_clock.autojump_threshold = 0
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
    after = log[log.index("PlugIn sent"):]
    assert after[:2] == ["PlugIn sent", "plug_in"], after[:4]


async def test_trio_marks_a_task_parked_on_a_memory_channel_until_it_is_rescheduled() -> None:
    """The charger's fast paths tell that its main loop is still parked on its inbox from
    ``Task.custom_sleep_data``: set by the memory channel while the task waits in ``receive``,
    None from the moment trio reschedules it (before it runs). Were a trio release to change
    that, no step would be taken outside the main loop any more; this test says why."""
    send, receive = trio.open_memory_channel[int](1)
    parked: list[trio.lowlevel.Task] = []

    async def park() -> None:
        parked.append(trio.lowlevel.current_task())
        await receive.receive()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(park)
            await trio.testing.wait_all_tasks_blocked()
            assert parked[0].custom_sleep_data is not None
            send.send_nowait(1)  # handed to the parked task, which has not run yet
            assert parked[0].custom_sleep_data is None
