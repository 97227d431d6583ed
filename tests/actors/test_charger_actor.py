"""The charger actor, its supervisor and the fleet ramp, on trio's autojump clock over memory
transports, against the embedded CSMS's sans-IO core (no sockets, no real time)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Container
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from simulator.actors import collector
from simulator.actors import fleet as fleet_module
from simulator.actors.charger import (
    ChargerControl,
    ChargerEnv,
    run_charger,
)
from simulator.actors.fleet import GroupPlan, run_fleet, supervise_charger
from simulator.actors.link import Backoff
from simulator.actors.transport import (
    ConnectError,
    Transport,
    TransportClosed,
    memory_transport_pair,
)
from simulator.csms.core import CentralSystem
from simulator.csms.options import CsmsOptions
from simulator.events import (
    CallTimedOut,
    Connected,
    ConnectFailed,
    Crashed,
    Disconnected,
    Event,
    FrameIn,
    FrameOut,
    FrameUnsent,
    Note,
    StatusChanged,
    TransactionStopped,
)
from simulator.machines.charger import ChargerSpec
from simulator.machines.domain import PlugIn, PresentTag
from simulator.machines.effects import OutboxEntry, PersistOutbox
from simulator.machines.meter import EvSpec
from simulator.machines.workload import Range, SessionPlan
from simulator.ocpp.frames import BINARY_FRAME
from simulator.ocpp.v16 import GetConfigurationRequest, ResetRequest, ResetType

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
    """The bus and the ledger of the charger actors under test: records what they publish,
    and stores every outbox snapshot at once (telling the charger's control)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.persisted: list[PersistOutbox] = []
        self.controls: dict[str, ChargerControl] = {}

    def control(self, identity: str = "CP-1") -> ChargerControl:
        """A new control for ``identity``, told of every snapshot this recorder stores."""
        self.controls[identity] = control = ChargerControl()
        return control

    async def publish(self, event: Event) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()  # as EventBus.publish does
        self.events.append(event)

    async def persist(self, effect: PersistOutbox) -> None:
        self.persisted.append(effect)
        self.controls[effect.charger].stored(effect.through)

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def start_charging(
    nursery: trio.Nursery, csms: FakeCsms, env: ChargerEnv, control: ChargerControl, *,
    energy_wanted_kwh: float,
) -> None:
    """Run the charger of ``env`` against ``csms`` in ``nursery``, let it boot for 2 s, then an
    EV plugs into connector 1 and TAG-1 starts a transaction."""
    csms.nursery = nursery
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
) -> ChargerEnv:
    spec = ChargerSpec(
        identity=identity, vendor="Acme", model="AC22", connectors=2, max_power_kw=22,
        config=config or {"HeartbeatInterval": 10, "MeterValueSampleInterval": 5},
    )
    return ChargerEnv(
        spec=spec, seed=7, url=f"ws://memory/{identity}", open_transport=csms.opener(fail=fail),
        publish=recorder.publish, persist=recorder.persist, wall_epoch=WALL_EPOCH,
        sessions=sessions, backoff=Backoff(base=1.0, cap=30.0),
    )


async def test_charger_boots_reports_statuses_and_heartbeats(
    autojump_clock: trio.testing.MockClock,
) -> None:
    csms, recorder = FakeCsms(), Recorder()
    env = make_env(csms, recorder)
    control = recorder.control()
    async with trio.open_nursery() as nursery:
        csms.nursery = nursery
        nursery.start_soon(run_charger, env, control)
        await trio.sleep(35)
        assert control.connected
        await control.shutdown(trio.current_time() + 5)
        await control.done.wait()
        nursery.cancel_scope.cancel()

    sent = [e.action for e in recorder.of(FrameOut) if e.message_type == 2]
    assert sent[0] == "BootNotification"
    # (with the power-on's StartupOfTheDevice security event, queued in the outbox)
    assert sorted(sent[1:5]) == ["SecurityEventNotification"] + ["StatusNotification"] * 3
    assert sent.count("Heartbeat") == 3  # at 10, 20 and 30 s
    heartbeats = [e.t for e in recorder.of(FrameOut) if e.action == "Heartbeat"]
    # every 10 s, on trio's own deadlines
    assert [b - a for a, b in itertools.pairwise(heartbeats)] == pytest.approx([10, 10],
                                                                               abs=1e-6)
    assert len(recorder.of(Connected)) == 1
    state = csms.core.charger_state("CP-1")
    assert state is not None and state.boot_status == "Accepted"
    # the FrameOut events are exactly what the CSMS received, in order
    assert [json.loads(e.raw) for e in recorder.of(FrameOut)] == [f for _, f in csms.received]


async def test_a_reset_from_the_csms_reboots_the_charger_after_answering_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The Reboot a Reset causes closes the connection after the answer went out, holds the
    charger down for its reboot delay and boots it again."""
    csms, recorder = FakeCsms(), Recorder()
    env = make_env(csms, recorder)
    control = recorder.control()
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
    control = recorder.control()
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
        control = recorder.control()
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
    control = recorder.control()
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
    control = recorder.control()
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


async def test_a_transaction_message_goes_out_only_once_a_snapshot_holding_it_is_stored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Write-ahead: every change of the outbox is handed to the ledger at once, and a
    transaction message goes on the wire only after a snapshot holding it was stored (here a
    slow ledger, 0.3 s); offline the stored queue grows one message at a time, and
    back online it is delivered down to the empty queue, stored as such."""
    lag = 0.3
    csms, recorder = FakeCsms(), Recorder()
    env = make_env(csms, recorder, config={"HeartbeatInterval": 10,
                                           "MeterValueSampleInterval": 1})
    control = recorder.control()
    acked: dict[int, float] = {}  # seq -> when a snapshot holding it was stored
    async with trio.open_nursery() as nursery:

        async def store(effect: PersistOutbox) -> None:
            await trio.sleep(lag)
            for entry in effect.entries:
                acked.setdefault(entry.seq, trio.current_time())
            control.stored(effect.through)

        async def persist(effect: PersistOutbox) -> None:
            recorder.persisted.append(effect)
            nursery.start_soon(store, effect)

        await start_charging(nursery, csms, dataclasses.replace(env, persist=persist), control,
                             energy_wanted_kwh=30)
        await trio.sleep(20)
        assert len(csms.calls("CP-1", "MeterValues")) >= 15  # about one a second, all out
        csms.down = True
        await csms.drop("CP-1")
        before = len(recorder.persisted)
        await trio.sleep(15)  # offline: a MeterValues a second piles up
        offline = [len(p.entries) for p in recorder.persisted[before:]]
        assert offline[-1] >= 14
        assert all(b - a == 1 for a, b in itertools.pairwise(offline))  # as each comes
        csms.down = False
        await trio.sleep(40)
        assert control.connected
        await control.shutdown(trio.current_time() + 10)
        await control.done.wait()
        nursery.cancel_scope.cancel()

    seq_of = {entry.unique_id: entry.seq for snapshot in recorder.persisted
              for entry in snapshot.entries if entry.unique_id is not None}
    sent = [e for e in recorder.of(FrameOut) if e.message_type == 2
            and e.action in ("StartTransaction", "MeterValues", "StopTransaction")]
    assert len(sent) >= 40
    for frame in sent:
        assert acked[seq_of[frame.unique_id]] <= frame.t, frame
    assert [f[2] for _, f in csms.received if f[0] == 2 and f[2] in
            ("StartTransaction", "MeterValues", "StopTransaction")] == [e.action for e in sent]
    assert recorder.persisted[-1].entries == ()
    assert control.persisted == control.outbox == ()


async def test_a_restarted_charger_stores_what_its_predecessor_left_unstored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A charger that crashed within an interval of a change leaves its control with an outbox
    the ledger has not seen; the restart stores it before anything else."""
    csms, recorder = FakeCsms(), Recorder()
    csms.down = True  # offline all along: nothing gets delivered meanwhile
    env = make_env(csms, recorder)
    control = recorder.control()
    entry = OutboxEntry(seq=1, action="StopTransaction",
                        payload='{"meterStop":10,"timestamp":"2026-01-01T00:00:00Z",'
                                '"transactionId":7}', local_tx=1, transaction_id=7)
    control.outbox = (entry,)  # changed by the predecessor, never handed to the ledger
    async with trio.open_nursery() as nursery:
        csms.nursery = nursery
        nursery.start_soon(run_charger, env, control)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    # first the predecessor's outbox, then the power-on's security event behind it
    assert [p.entries[:1] for p in recorder.persisted] == [(entry,), (entry,)]
    assert [e.action for e in recorder.persisted[-1].entries] == \
        ["StopTransaction", "SecurityEventNotification"]
    assert control.persisted == recorder.persisted[-1].entries


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
        recorder.controls = fleet.controls  # the fleet's own (filled as chargers start)
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
    far), then fully collected, frozen and the thresholds raised, and again every refresh
    interval (the oldest generation is never collected on its own then); without it the
    collector is left alone."""
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
        recorder.controls = fleet.controls  # the fleet's own (filled as chargers start)
        await fleet.ramp_done.wait()
        ramp_s = trio.current_time() - started
        await trio.sleep(2 * collector.REFRESH_INTERVAL + 30)
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
    # after the ramp, once more when the whole fleet is connected, then at every refresh
    assert len(freezes) == len(during_ramp) + 4
    assert calls == ["collect(1)", "freeze"] * len(during_ramp) + ["collect(2)", "freeze"] * 4
    refreshes = [t - started for t in freezes[-2:]]
    assert refreshes[1] - refreshes[0] == pytest.approx(collector.REFRESH_INTERVAL)
    assert thresholds == [collector.GC_THRESHOLDS] * 2  # raised after the ramp and once connected



class Wrapped:
    """A memory transport seen through ``hooks``: ``send_gate`` (awaited before each send: a
    stalled link while it blocks) and ``receive_hook`` (called before each receive: may raise).
    A received text found in ``binary`` arrives as a binary frame (its UTF-8 bytes)."""

    def __init__(self, inner: Transport, *, send_gate: Callable[[], Any] | None = None,
                 receive_hook: Callable[[], None] | None = None,
                 binary: Container[str] = ()) -> None:
        self._inner = inner
        self._send_gate = send_gate
        self._receive_hook = receive_hook
        self._binary = binary

    @property
    def subprotocol(self) -> str | None:
        return self._inner.subprotocol

    async def send(self, data: str) -> None:
        if self._send_gate is not None:
            await self._send_gate()
        await self._inner.send(data)

    async def receive(self) -> str | bytes:
        if self._receive_hook is not None:
            self._receive_hook()
        data = await self._inner.receive()
        return data.encode() if isinstance(data, str) and data in self._binary else data

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.aclose(code, reason)


def wrapping(env: ChargerEnv, wrap: Callable[[str, Transport], Transport]) -> ChargerEnv:
    """``env`` with every transport it opens passed through ``wrap(identity, transport)``."""
    plain = env.open_transport

    @asynccontextmanager
    async def open_transport(identity: str) -> AsyncIterator[Transport]:
        async with plain(identity) as inner:
            yield wrap(identity, inner)

    return dataclasses.replace(env, open_transport=open_transport)


async def test_a_stalled_write_leaves_the_machine_stepping(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Writes that never finish (a link whose peer stopped reading) hold up only the
    connection's writer: the main loop goes on taking inputs and deadlines (a plug-in, the
    status it causes, the CALL's timeout), and every frame it handed over and that never got
    out is recorded as unsent once the connection is dropped."""
    csms, recorder = FakeCsms(), Recorder()
    stalled = trio.Event()
    stall = [False]

    async def gate() -> None:
        if stall[0]:
            stalled.set()
            await trio.sleep_forever()

    env = wrapping(make_env(csms, recorder, config={"HeartbeatInterval": 10}),
                   lambda identity, inner: Wrapped(inner, send_gate=gate))
    control = recorder.control()
    with trio.fail_after(300):
        async with trio.open_nursery() as nursery:
            csms.nursery = nursery
            nursery.start_soon(run_charger, env, control)
            await trio.sleep(3)
            assert control.connected
            stall[0] = True
            await stalled.wait()  # the next heartbeat is stuck in the writer
            stuck_at = trio.current_time()
            ev = EvSpec(battery_kwh=60, initial_soc=20, max_power_kw=11, energy_wanted_kwh=5)
            await control.request(PlugIn(1, ev=ev))
            await trio.sleep(1)
            statuses = [e for e in recorder.of(StatusChanged) if e.t >= stuck_at]
            assert [(e.connector, e.new) for e in statuses] == [(1, "Preparing")]
            await trio.sleep(60)  # the heartbeat times out, the machine drops the link
            nursery.cancel_scope.cancel()
    timeouts = recorder.of(CallTimedOut)
    assert [t.action for t in timeouts][:1] == ["Heartbeat"]
    handed = {e.unique_id for e in recorder.of(FrameOut) if e.t >= stuck_at - 10}
    unsent = {e.unique_id for e in recorder.of(FrameUnsent)}
    assert unsent and unsent <= handed
    received = {f[1] for who, f in csms.received}
    assert not unsent & received


async def test_a_binary_frame_is_recorded_and_never_answered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A CALL in a binary frame (OCPP-J is text only) reaches the machine as binary: it is
    recorded with its violation and ignored; the same CALL as text is answered."""
    csms, recorder = FakeCsms(), Recorder()
    binary: set[str] = set()
    env = wrapping(make_env(csms, recorder),
                   lambda identity, inner: Wrapped(inner, binary=binary))
    control = recorder.control()
    async with trio.open_nursery() as nursery:
        csms.nursery = nursery
        nursery.start_soon(run_charger, env, control)
        await trio.sleep(3)
        assert control.connected
        as_binary = '[2,"in-binary","GetConfiguration",{}]'
        binary.add(as_binary)
        await csms.live["CP-1"].send(as_binary)
        as_text = csms.core.call("CP-1", GetConfigurationRequest(), trio.current_time())
        await csms.live["CP-1"].send(as_text.decode())
        await trio.sleep(5)
        await control.shutdown(trio.current_time() + 5)
        await control.done.wait()
        nursery.cancel_scope.cancel()

    text_id = json.loads(as_text)[1]
    [ignored] = [e for e in recorder.of(FrameIn) if e.violations]
    assert ignored.violations == [BINARY_FRAME]
    assert ignored.raw == f"(binary, {len(as_binary)} bytes) {as_binary.encode()!r}"
    answered = {e.unique_id for e in recorder.of(FrameOut) if e.message_type != 2}
    assert text_id in answered and "in-binary" not in answered
    assert not recorder.of(Crashed) and len(recorder.of(Connected)) == 1


async def test_a_crash_is_the_chargers_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One charger that crashes (here its link raises) is recorded and restarted by its
    supervisor; the other charger's timers go on through it, on time."""
    csms, recorder = FakeCsms(), Recorder()
    armed = [True]

    def boom() -> None:
        if armed[0] and trio.current_time() >= 15:
            armed[0] = False
            raise RuntimeError("boom in receive")

    envs = [
        wrapping(make_env(csms, recorder, identity=name),
                 lambda identity, inner: Wrapped(
                     inner, receive_hook=boom if identity == "CP-A" else None))
        for name in ("CP-A", "CP-B")
    ]
    controls = [recorder.control("CP-A"), recorder.control("CP-B")]
    with trio.fail_after(300):
        async with trio.open_nursery() as nursery:
            csms.nursery = nursery
            for env, control in zip(envs, controls, strict=True):
                nursery.start_soon(supervise_charger, env, control)
            await trio.sleep(55)
            for control in controls:
                await control.shutdown(trio.current_time() + 5)
                await control.done.wait()
            nursery.cancel_scope.cancel()

    crashes = recorder.of(Crashed)
    assert [c.charger for c in crashes] == ["CP-A"]
    assert "boom in receive" in crashes[0].error
    assert controls[0].restarts == 1 and controls[1].restarts == 0
    assert len(csms.calls("CP-A", "BootNotification")) == 2
    beats = [e.t for e in recorder.of(FrameOut)
             if e.charger == "CP-B" and e.action == "Heartbeat"]
    assert len(beats) == 5
    assert [b - a for a, b in itertools.pairwise(beats)] == pytest.approx([10] * 4, abs=1e-6)



async def test_frames_queued_behind_a_busy_main_loop_keep_their_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Calls from the CSMS that queued in the inbox while the main loop was busy are answered
    in order, also when one more arrives as the main loop works through them."""

    class GatedRecorder(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.gate: trio.Event | None = None
            self.late: Callable[[], Awaitable[None]] | None = None

        async def publish(self, event: Event) -> None:
            if self.gate is not None:
                await self.gate.wait()
            if self.late is not None:
                late, self.late = self.late, None
                await late()
            await super().publish(event)

    def call(n: int) -> str:
        return json.dumps([2, f"q{n:02}", "GetConfiguration", {"key": ["HeartbeatInterval"]}])

    async def one_run() -> list[str]:
        csms, recorder = FakeCsms(), GatedRecorder()
        control = recorder.control()
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
            recorder.late = lambda: server.send(call(20))
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
