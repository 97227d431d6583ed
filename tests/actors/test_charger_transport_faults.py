"""A charger under every transport fault of the catalog, in turn: the real charger actor over the
full WebSocket protocol on memory streams to the embedded CSMS, on the mock clock. Whatever the
link does, the charger's machine keeps stepping: meter samples are taken and queued, heartbeats
fall due whenever the charger is online, and the charger never crashes."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Final

import pytest
import trio
import trio.testing

from simulator.actors.chaos_stream import TransportChaos
from simulator.actors.charger import ChargerControl, ChargerEnv, run_charger
from simulator.actors.link import Backoff
from simulator.actors.streams import memory_connector
from simulator.actors.transport import Transport, WebSocketClient, open_transport
from simulator.chaos.catalog import CATALOG, Family
from simulator.chaos.injection import Injection, Scalar
from simulator.csms import CsmsOptions, CsmsServer
from simulator.csms.server import new_central_system
from simulator.events import Connected, Crashed, Disconnected, FrameOut
from simulator.machines.charger import ChargerSpec
from simulator.machines.domain import PlugIn, PresentTag
from simulator.machines.effects import PersistOutbox
from simulator.machines.meter import EvSpec
from simulator.ocpp.v16 import PLUGIN
from tests.actors.servers import CLIENTS
from tests.actors.test_charger_actor import WALL_EPOCH, Recorder

WINDOW: Final = 30.0
"""Seconds each fault lasts (``until - at``); the charger gets as long again to recover."""
PARAMS: Final[dict[str, dict[str, Scalar]]] = {  # the director's defaults
    "latency": {"ms": 200.0, "jitter_ms": 50.0, "direction": "both"},
    "bandwidth": {"bytes_per_second": 2000, "direction": "both"},
    "fragment": {"size": 8},
    "disconnect": {"code": 1000},
    "slow_close": {"linger": 10.0},
}
DROPS: Final = {  # the close code of the connection each fault ends (the others end none)
    "disconnect": 1000, "reset": 1006, "half_open": 1006, "slow_close": 1000,
    "partition": 1000, "reconnect_storm": 1000, "identity_clash": 1000,
}
OFFLINE_ALL_WINDOW: Final = frozenset({"partition", "reconnect_storm"})


class Ledger(Recorder):
    """The recorder, with the time each MeterValues message entered a charger's queue."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: dict[tuple[str, int], float] = {}

    async def persist(self, effect: PersistOutbox) -> None:
        for entry in effect.entries:
            if entry.action == "MeterValues":
                self.queued.setdefault((effect.charger, entry.seq), trio.current_time())
        await super().persist(effect)

    def energy(self, control: ChargerControl) -> float:
        statistics = control.statistics()
        assert statistics is not None
        return sum(statistics.energy_wh)


def charger(identity: str, server: CsmsServer, recorder: Ledger,
            client: WebSocketClient) -> ChargerEnv:
    chaos = TransportChaos(5, identity)
    connect = memory_connector(server.serve_stream)

    def opener(identity: str) -> AbstractAsyncContextManager[Transport]:
        return open_transport("ws://embedded.virtual/ocpp", identity, plugin=PLUGIN,
                              client=client, connect_stream=connect, wrap=chaos.wrap)

    spec = ChargerSpec(identity=identity, vendor="Acme", model="AC22", connectors=1,
                       max_power_kw=22, config={"MeterValueSampleInterval": 5})
    return ChargerEnv(spec=spec, seed=5, url="ws://embedded.virtual/ocpp",
                      open_transport=opener, publish=recorder.publish, persist=recorder.persist,
                      wall_epoch=WALL_EPOCH, backoff=Backoff(base=1.0, cap=30.0), chaos=chaos)


@pytest.mark.parametrize("client", CLIENTS)
async def test_the_machine_keeps_stepping_under_every_transport_fault(
    client: WebSocketClient, autojump_clock: trio.testing.MockClock,
) -> None:
    server = CsmsServer(new_central_system(CsmsOptions(heartbeat_interval=10)))
    recorder = Ledger()
    controls: dict[str, ChargerControl] = {}
    windows: list[tuple[str, float, float]] = []
    charged: dict[str, float] = {}  # Wh the meter advanced during each window
    async with trio.open_nursery() as nursery:
        for identity in ("METER", "IDLE"):  # charging (samples), and idle (heartbeats)
            controls[identity] = recorder.control(identity)
            nursery.start_soon(run_charger, charger(identity, server, recorder, client),
                               controls[identity])
        await trio.sleep(10)
        await controls["METER"].request(PlugIn(1, ev=EvSpec(energy_wanted_kwh=1000)))
        await controls["METER"].request(PresentTag(1, "TAG-1"))
        await trio.sleep(20)
        for name in sorted(CATALOG[Family.TRANSPORT]):
            at = trio.current_time()
            windows.append((name, at, at + WINDOW))
            before = recorder.energy(controls["METER"])
            for control in controls.values():
                await control.inject(Injection(
                    id=f"{name}.0", fault=name, family=Family.TRANSPORT, at=at,
                    until=at + WINDOW, params=PARAMS.get(name, {}),
                ))
            await trio.sleep(WINDOW)
            charged[name] = recorder.energy(controls["METER"]) - before
            await trio.sleep(WINDOW)
        for control in controls.values():
            await control.shutdown(trio.current_time() + 5)
            await control.done.wait()
        nursery.cancel_scope.cancel()

    assert recorder.of(Crashed) == []
    for name, at, until in windows:
        samples = [seq for (who, seq), when in recorder.queued.items()
                   if who == "METER" and at <= when < until]
        assert len(samples) >= WINDOW / 5 - 1, (name, "meter samples", samples)
        assert charged[name] > 0, name
        beats = [e for e in recorder.of(FrameOut) if e.charger == "IDLE"
                 and e.action == "Heartbeat" and e.message_type == 2]
        drops = [e.code for e in recorder.of(Disconnected)
                 if e.charger == "IDLE" and at <= e.t <= until]
        if name in DROPS:
            assert DROPS[name] in drops, (name, drops)
        else:
            assert drops == [], (name, drops)
        if name in OFFLINE_ALL_WINDOW:  # offline for the whole window, back exactly at its end
            back = [e.t for e in recorder.of(Connected) if e.charger == "IDLE" and e.t >= at]
            assert back[0] == until, name
            assert any(until <= e.t <= until + 21 for e in beats), (
                name, "heartbeat after", [(e.t, e.action) for e in recorder.of(FrameOut)
                                          if e.charger == "IDLE" and at <= e.t <= until + 21])
        else:
            assert any(at < e.t <= until for e in beats), (
                name, "heartbeat during", [(e.t, e.action) for e in recorder.of(FrameOut)
                                           if e.charger == "IDLE" and at <= e.t <= until])
