"""Machine benchmark: CPU per OCPP exchange of the sans-IO charger machine alone, with no event
loop, no transport and no ledger.

``N`` :class:`~simulator.machines.charger.ChargerMachine` s run a workload of
``tools/bench/ocpp_fleet.py`` (``--workload``, ``ocpp_fleet.WORKLOADS``) the way
``tools/bench/fleet_sim.py`` expresses it as a fleet file: ``meter-2s`` (the default) is 2
connectors, ``HeartbeatInterval`` 5 s, ``MeterValueSampleInterval`` 2 s, and per connector
sessions back to back as the connector actor (``simulator/actors/connector.py``) drives them:
Poisson arrivals (mean gap: the workload's idle gap, 2 s), plug in and present the tag
(``start_only``), stop after the workload's meter samples per transaction times its meter interval
(20 s), unplug after a walk back of 2-10 s. ``meter-1s`` is the same with MeterValues every second
and a Heartbeat every 10 s. Each machine is driven as ``simulator/actors/charger.py`` drives it:
every input (``receive``, ``plug_in``, ``present_tag``, ``stop_local``, ``unplug``, a reached
deadline) is followed by ``tick(now)``, ``take_effects()`` and ``next_deadline()``.

A scripted central system answers every CALL at once with a valid CALLRESULT (boot Accepted with
the workload's heartbeat ``interval``, every idTag Accepted, fresh transaction ids,
``currentTime`` on the charger's own clock); its answer goes back to the machine once the effects
of the current step are applied, as the actor's inbox would deliver it. A virtual clock jumps from
deadline to deadline across the fleet (a heap of wake-up times, one per charger).

The fleet boots and runs ``--warmup`` virtual seconds, then a window of ``--duration`` virtual
seconds is measured: process CPU time (``time.process_time``, garbage collector off) for the
whole step loop, and inside it the time spent in the machine's own methods (``perf_counter_ns``
around each call, by method). An exchange is one CALL of ours answered by its CALLRESULT. Best
of ``--repeat`` runs, each with a fresh fleet (the simulation is deterministic: every run does
the same work). A busy charger sends no Heartbeat (any frame proves liveness), so the mix is
Authorize, StartTransaction, MeterValues, StatusNotification and StopTransaction.

The bench seeds its own ``random.Random`` streams (drawn with the connector actor's ``draw_ev``
and ``WALK_BACK`` and the actor's ``uuid_ids``), independent of the simulator's own seeding, so
that it runs unchanged against another checkout of the simulator and measures the same work there:
run it with ``PYTHONPATH=/path/to/other/checkout`` (the first line says which ``simulator`` was
measured) to compare two versions of the machine.

Usage::

    python tools/bench/machines.py [--chargers 200] [--duration 120] [--repeat 3]
    python tools/bench/machines.py --workload meter-1s      # issue #4's heavier workload
    python tools/bench/machines.py --profile runs/machines-profile.txt   # pyinstrument, 1 run
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime as dt
import gc
import heapq
import itertools
import platform
import random
import shlex
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

import msgspec
from ocpp_fleet import WORKLOADS, Workload  # type: ignore[import-not-found]  # this directory

import simulator
from simulator.actors.connector import WALK_BACK, draw_ev
from simulator.machines.charger import ChargerMachine, ChargerSpec
from simulator.machines.effects import Send
from simulator.ocpp.frames import MessageType
from simulator.seeds import uuid_ids

DEFAULT_CHARGERS: Final = 200
DEFAULT_WARMUP_S: Final = 30.0
DEFAULT_DURATION_S: Final = 120.0
DEFAULT_REPEAT: Final = 3
SEED: Final = 1

DEFAULT_WORKLOAD: Final = "meter-2s"
ENERGY_KWH: Final = (1.0, 2.0)
"""Energy each arriving EV wants, kWh (``fleet_sim``'s ``energy_kwh = "1..2"``)."""
EPOCH: Final = 1_767_225_600.0
"""2026-01-01T00:00:00Z: the fleet's wall clock at virtual ``now == 0``."""
BOOT_SPREAD_S: Final = 1.0
"""The chargers connect spread over this many virtual seconds."""

_frame_decoder: Final = msgspec.json.Decoder(tuple[int, str, str, dict[str, Any]])
_encoder: Final = msgspec.json.Encoder()


class ScriptedCentralSystem:
    """Answers every CALL of a charger at once with a valid CALLRESULT (as text); a boot gets
    ``heartbeat_interval`` (s) as its ``interval``."""

    def __init__(self, heartbeat_interval: int) -> None:
        self._heartbeat_interval = heartbeat_interval
        self._transaction_ids = itertools.count(1)

    def answer(self, data: bytes, now: float) -> str:
        _, unique_id, action, payload = _frame_decoder.decode(data)
        result: dict[str, Any]
        match action:
            case "BootNotification":
                result = {"status": "Accepted", "currentTime": _wall(now),
                          "interval": self._heartbeat_interval}
            case "Heartbeat":
                result = {"currentTime": _wall(now)}
            case "Authorize":
                result = {"idTagInfo": {"status": "Accepted"}}
            case "StartTransaction":
                result = {"idTagInfo": {"status": "Accepted"},
                          "transactionId": next(self._transaction_ids)}
            case "StopTransaction":
                result = {"idTagInfo": {"status": "Accepted"}} if "idTag" in payload else {}
            case _:  # StatusNotification, MeterValues
                result = {}
        return _encoder.encode([MessageType.CALL_RESULT, unique_id, result]).decode()


def rng_for(*parts: str | int) -> random.Random:
    """A stream of its own for each charger and purpose (seeded from text: stable across
    processes, and independent of the simulator's own seeding)."""
    return random.Random(repr((SEED, *parts)))


def _wall(now: float) -> str:
    stamp = dt.datetime.fromtimestamp(round(EPOCH + now, 3), tz=dt.UTC)
    return stamp.isoformat().replace("+00:00", "Z")


@dataclasses.dataclass
class Timer:
    """Time spent in the machine's methods, by method (ns), and the calls made."""

    ns: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    calls: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    on: bool = False

    def call(self, name: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self.on:
            return method(*args, **kwargs)
        started = time.perf_counter_ns()
        result = method(*args, **kwargs)
        self.ns[name] += time.perf_counter_ns() - started
        self.calls[name] += 1
        return result


class Driver:
    """One connector's drivers, as ``run_connector`` schedules them: the next action and when."""

    def __init__(self, connector_id: int, rng: random.Random, workload: Workload) -> None:
        self.connector_id = connector_id
        self.rng = rng
        self.mean_gap_s = workload.idle_between_transactions_s
        self.session_s = workload.meter_samples_per_transaction * workload.meter_interval_s
        self.id_tag = workload.id_tag
        self.action = "arrive"
        self.at = rng.expovariate(1.0 / self.mean_gap_s)


class Rig:
    """One charger machine, its drivers and its scripted central system."""

    def __init__(
        self, index: int, connect_at: float, workload: Workload, timer: Timer,
        counts: collections.Counter[str],
    ) -> None:
        identity = workload.identity_format.format(n=index)
        heartbeat = int(workload.heartbeat_interval_s)
        spec = ChargerSpec(
            identity=identity, vendor="BenchVendor", model="BenchModel",
            connectors=workload.connectors, max_power_kw=22.0,
            config={"MeterValueSampleInterval": workload.meter_interval_s,
                    "HeartbeatInterval": heartbeat},
        )
        self.machine = ChargerMachine(
            spec, rng=rng_for(identity, "behaviour"), new_id=uuid_ids(rng_for(identity, "ids")),
            wall_epoch=EPOCH, now=0.0,
        )
        self.cs = ScriptedCentralSystem(heartbeat)
        self.timer = timer
        self.counts = counts
        self.drivers = [Driver(c, rng_for(identity, "sessions", c), workload)
                        for c in range(1, workload.connectors + 1)]
        self.connect_at: float | None = connect_at
        self.inbox: collections.deque[str] = collections.deque()
        self.machine.power_on(0.0)
        self.machine.take_effects()
        self.deadline = self.machine.next_deadline()

    def wake_at(self) -> float:
        """When this charger next has something to do."""
        if self.connect_at is not None:
            return self.connect_at
        times = [driver.at for driver in self.drivers]
        if self.deadline is not None:
            times.append(self.deadline)
        return min(times)

    def step(self, now: float) -> None:
        """Everything due at ``now``: the connection, the drivers' actions, the deadline."""
        machine = self.machine
        if self.connect_at is not None:
            self.connect_at = None
            self._input(now, "connected", machine.connected, now)
        for driver in self.drivers:
            if driver.at <= now:
                self._drive(driver, now)
        if self.deadline is not None and self.deadline <= now:
            self._input(now, "tick", machine.tick, now)

    def _drive(self, driver: Driver, now: float) -> None:
        machine, rng, cid = self.machine, driver.rng, driver.connector_id
        match driver.action:
            case "arrive":
                ev = draw_ev(rng, rng.uniform(*ENERGY_KWH))
                self._input(now, "plug_in", machine.plug_in, cid, now, ev=ev)
                self._input(now, "present_tag", machine.present_tag, cid, driver.id_tag, now,
                            start_only=True)
                driver.action, driver.at = "stop", now + driver.session_s
            case "stop":
                self._input(now, "stop_local", machine.stop_local, cid, now)
                driver.action, driver.at = "unplug", now + rng.uniform(*WALK_BACK)
            case "unplug":
                self._input(now, "unplug", machine.unplug, cid, now)
                driver.action = "arrive"
                driver.at = now + rng.expovariate(1.0 / driver.mean_gap_s)

    def _input(
        self, now: float, name: str, method: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        """One input as the actor's loop handles it: the method, ``tick``, the effects applied
        (each CALL answered at once), ``next_deadline``; then the answers, one input each."""
        machine, call = self.machine, self.timer.call
        call(name, method, *args, **kwargs)
        while True:
            call("tick", machine.tick, now)
            for effect in call("take_effects", machine.take_effects):
                if isinstance(effect, Send) and effect.message_type == MessageType.CALL:
                    self.counts[effect.action] += 1
                    self.inbox.append(self.cs.answer(effect.data, now))
            self.deadline = call("next_deadline", machine.next_deadline)
            if not self.inbox:
                return
            call("receive", machine.receive, self.inbox.popleft(), now)


@dataclasses.dataclass(frozen=True)
class Result:
    """One measured window."""

    cpu_s: float
    exchanges: int
    by_action: dict[str, int]
    machine_ns: dict[str, int]
    machine_calls: dict[str, int]


def run(
    chargers: int, workload: Workload, warmup: float, duration: float,
    profile: Path | None = None,
) -> Result:
    """Build a fleet of ``workload``, run it ``warmup`` s, measure ``duration`` s of virtual
    time."""
    timer = Timer()
    counts: collections.Counter[str] = collections.Counter()
    rigs = [Rig(i, i * BOOT_SPREAD_S / chargers, workload, timer, counts) for i in range(chargers)]
    heap = [(rig.wake_at(), i) for i, rig in enumerate(rigs)]
    heapq.heapify(heap)

    def advance_to(end: float) -> None:
        while heap[0][0] < end:
            now, i = heapq.heappop(heap)
            rigs[i].step(now)
            heapq.heappush(heap, (rigs[i].wake_at(), i))

    advance_to(warmup)
    counts.clear()
    profiler: Any = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    timer.on = profile is None
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        advance_to(warmup + duration)
        cpu = time.process_time() - started
    finally:
        if gc_was_enabled:
            gc.enable()
    if profiler is not None and profile is not None:
        profiler.stop()
        profile.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    return Result(cpu, sum(counts.values()), dict(counts), dict(timer.ns), dict(timer.calls))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=DEFAULT_CHARGERS, help="machines")
    parser.add_argument("--workload", choices=list(WORKLOADS), default=DEFAULT_WORKLOAD,
                        help="meter-2s: MeterValues every 2 s, heartbeat 5 s (issue #13's "
                             "table); meter-1s: MeterValues every second, heartbeat 10 s")
    parser.add_argument("--warmup", type=float, default=DEFAULT_WARMUP_S,
                        help="virtual seconds before the window")
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION_S,
                        help="virtual seconds measured")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="runs; best counts")
    parser.add_argument("--profile", type=Path, default=None,
                        help="one run under pyinstrument, text report written to this file")
    args = parser.parse_args(argv)
    if args.chargers < 1 or args.duration <= 0 or args.warmup < 0 or args.repeat < 1:
        parser.error("--chargers and --repeat must be >= 1, --duration > 0, --warmup >= 0")

    workload = WORKLOADS[args.workload]
    command = shlex.join(["python", "tools/bench/machines.py", *sys.argv[1:]])
    print(f"$ {command}")
    if args.profile is not None:
        result = run(args.chargers, workload, args.warmup, args.duration, args.profile)
        print(f"profile of {result.exchanges} exchanges written to {args.profile}")
        return 0
    print(
        f"simulator from {Path(simulator.__file__).parent}; "
        f"python {platform.python_version()}, msgspec {version('msgspec')}; {args.chargers} "
        f"chargers x {workload.connectors} connectors, workload {workload.name}, "
        f"{args.warmup:g} s warm-up, {args.duration:g} virtual s measured, best of "
        f"{args.repeat}; process_time, gc off"
    )
    results = [run(args.chargers, workload, args.warmup, args.duration)
               for _ in range(args.repeat)]
    best = min(results, key=lambda r: r.cpu_s)
    exchanges = best.exchanges
    machine_s = sum(best.machine_ns.values()) / 1e9
    print(f"exchanges: {exchanges} ({exchanges / args.duration / args.chargers:.2f} per charger "
          f"per s): " + ", ".join(f"{a} {n}" for a, n in sorted(best.by_action.items())))
    header = f"{'part':<22} {'calls':>9} {'s':>8} {'µs/exchange':>12}"
    print(header)
    print("-" * len(header))
    rows = sorted(best.machine_ns.items(), key=lambda item: -item[1])
    for name, ns in rows:
        print(f"{'  machine.' + name:<22} {best.machine_calls[name]:>9} {ns / 1e9:>8.3f} "
              f"{ns / 1e3 / exchanges:>12.2f}")
    print(f"{'machine (all methods)':<22} {'':>9} {machine_s:>8.3f} "
          f"{machine_s * 1e6 / exchanges:>12.2f}")
    print(f"{'whole loop (CPU)':<22} {'':>9} {best.cpu_s:>8.3f} "
          f"{best.cpu_s * 1e6 / exchanges:>12.2f}")
    print("whole loop = process CPU of the window (machine + the bench's scripted CS, drivers "
          "and clock);\nmachine = perf_counter_ns around each machine method call; all runs: "
          + ", ".join(f"{r.cpu_s * 1e6 / r.exchanges:.1f}" for r in results) + " µs/exchange")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
