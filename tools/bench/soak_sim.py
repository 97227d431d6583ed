"""The soak's simulator process: a fleet, a fault every period, until the time is up.

``soak.py`` starts it with the central system's URL, the workload (an ``ocpp_fleet.Workload`` as
JSON, expressed as a fleet file by ``fleet_sim.sim_fleet_text``) and the length of the run. It
runs the fleet with ``simulator.open_simulation`` (ledger on, GC tuning on, no live view) and,
every ``--fault-every`` seconds, injects the next fault of a seeded rotation (every kind once
per round, the order shuffled each round) on a seeded share of the fleet (``--share``, drawn
between its bounds each time):

- ``reset``: the charger's TCP connection is reset (the ``wrap`` seam: :class:`Resettable`
  fails the WebSocket client's reads and writes and closes the socket with an RST);
- ``reboot-hard`` / ``reboot-soft``: ``Simulation.reboot(hard=...)``;
- ``fault``: a connector reports GroundFailure (``set_fault``), cleared half a period later;
- ``unplug``: the EV on a connector is unplugged (nothing happens where none is);
- ``stop``: the transaction on a connector is stopped with reason EmergencyStop (likewise).

Each fault is appended to ``--faults`` as a JSON line (``t`` in seconds since the run began,
``wall`` in Unix seconds, ``fault``, ``connector``, ``chargers``: the ids it reached,
``skipped``: ids the ramp had not started) and published as a ``fault`` event, so the
ledger's ``faults`` view lists it too. Every second the live counters and
``sys.getallocatedblocks()`` go to ``--stats`` (one JSON object, replaced atomically), through
the graceful end too. At the end of
``--duration``, or on SIGINT/SIGTERM (the run is then ``interrupted``), the faults stop and the
run ends gracefully (``--grace`` seconds for queued messages; a second signal cuts it short),
and its result is printed as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Final

import msgspec
import trio

from simulator import open_simulation
from simulator.actors.streams import StreamWrapper
from simulator.config import parse_fleet
from simulator.events import FaultInjected
from simulator.ocpp.v16 import ChargePointErrorCode, Reason
from simulator.simulation import CommandError, Simulation

FAULTS: Final = ("reset", "reboot-hard", "reboot-soft", "fault", "unplug", "stop")
"""The kinds of fault in the rotation."""
STATS_EVERY_S: Final = 1.0
"""Seconds between two writes of ``--stats`` (the sampler reads the latest)."""
RST_LINGER: Final = struct.pack("ii", 1, 0)
"""SO_LINGER on, 0 s: ``close`` sends an RST instead of a FIN."""


class Resettable(StreamWrapper):
    """A connection's stream that :meth:`reset` breaks from outside: the WebSocket client's
    pending and later reads and writes raise ``trio.BrokenResourceError``, and closing it
    resets the TCP connection (RST) rather than ending it. ``registry`` maps each charger to
    its live stream; the stream leaves it when closed."""

    def __init__(self, inner: trio.abc.Stream, identity: str,
                 registry: dict[str, Resettable]) -> None:
        super().__init__(inner)
        self._identity = identity
        self._registry = registry
        self._broken = False
        self._waits: set[trio.CancelScope] = set()
        registry[identity] = self

    def reset(self) -> None:
        """Break the connection now (from any task of the run)."""
        self._broken = True
        if isinstance(self.inner, trio.SocketStream):
            with contextlib.suppress(OSError):  # a socket already closed resets nothing
                self.inner.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST_LINGER)
        for scope in self._waits:
            scope.cancel()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self._breakable():
            await super().send_all(data)
            return
        raise self._reset_error()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        with self._breakable():
            return await super().receive_some(max_bytes)
        raise self._reset_error()

    async def aclose(self) -> None:
        if self._registry.get(self._identity) is self:
            del self._registry[self._identity]
        await super().aclose()

    @contextlib.contextmanager
    def _breakable(self) -> Iterator[None]:
        """Run a wait that :meth:`reset` cancels (the code after the block then runs); raise at
        once when already reset."""
        if self._broken:
            raise self._reset_error()
        with trio.CancelScope() as scope:
            self._waits.add(scope)
            try:
                yield
            finally:
                self._waits.discard(scope)

    @staticmethod
    def _reset_error() -> trio.BrokenResourceError:
        return trio.BrokenResourceError("connection reset by the soak")


async def run_faults(sim: Simulation, streams: dict[str, Resettable], args: argparse.Namespace,
                     t0: float) -> None:
    """Inject a fault every ``args.fault_every`` seconds until cancelled (see the module
    docstring); each one is logged to ``args.faults`` and published."""
    rng = random.Random(args.seed)
    every = sim.chargers()
    rotation: list[str] = []
    with open(args.faults, "a", encoding="utf-8") as log:  # noqa: ASYNC230 - a short append
        async with trio.open_nursery() as nursery:
            at = t0
            while True:
                at += args.fault_every
                await trio.sleep_until(at)
                if not rotation:
                    rotation = rng.sample(FAULTS, len(FAULTS))
                kind = rotation.pop(0)
                share = rng.uniform(*args.share)
                ids = rng.sample(every, max(1, round(share * len(every))))
                connector = rng.randint(1, args.connectors)
                reached, skipped = await inject(sim, streams, kind, ids, connector)
                if kind == "fault":
                    nursery.start_soon(clear_later, sim, reached, connector,
                                       args.fault_every / 2)
                record = {"t": round(trio.current_time() - t0, 3),
                          "wall": round(time.time(), 3), "fault": kind,
                          "share": round(share, 4), "connector": connector,
                          "chargers": reached, "skipped": skipped}
                log.write(json.dumps(record) + "\n")
                log.flush()
                await sim.bus.publish(FaultInjected(
                    t=trio.current_time(), fault=f"soak-{kind}",
                    params={"connector": connector, "chargers": reached}))


async def inject(sim: Simulation, streams: dict[str, Resettable], kind: str, ids: list[str],
                 connector: int) -> tuple[list[str], list[str]]:
    """Apply fault ``kind`` to each of ``ids``; return the ids it reached and those skipped (a
    charger not started yet, or for ``reset`` one with no connection)."""
    reached: list[str] = []
    skipped: list[str] = []
    for identity in ids:
        try:
            if kind == "reset":
                stream = streams.get(identity)
                if stream is None:
                    skipped.append(identity)
                    continue
                stream.reset()
            elif kind in ("reboot-hard", "reboot-soft"):
                await sim.reboot(identity, hard=kind == "reboot-hard")
            elif kind == "fault":
                await sim.set_fault(identity, connector, ChargePointErrorCode.GROUND_FAILURE)
            elif kind == "unplug":
                await sim.unplug(identity, connector)
            else:
                await sim.stop_transaction(identity, connector, reason=Reason.EMERGENCY_STOP)
        except CommandError:
            skipped.append(identity)
            continue
        reached.append(identity)
    return reached, skipped


async def clear_later(sim: Simulation, ids: list[str], connector: int, delay: float) -> None:
    """Clear the GroundFailure of ``ids`` after ``delay`` seconds."""
    await trio.sleep(delay)
    for identity in ids:
        try:
            await sim.clear_fault(identity, connector)
        except CommandError:
            continue


async def write_stats(sim: Simulation, path: Path, every: float, t0: float) -> None:
    """Replace ``path`` with the live counters every ``every`` seconds until cancelled."""
    tmp = path.with_name(path.name + ".tmp")
    while True:
        stats = msgspec.to_builtins(sim.statistics())
        stats["py_blocks"] = sys.getallocatedblocks()
        stats["run_t"] = round(trio.current_time() - t0, 3)
        stats["wall"] = time.time()
        tmp.write_text(json.dumps(stats), encoding="utf-8")
        os.replace(tmp, path)
        await trio.sleep(every)


async def end_grace_on_signal(sim: Simulation, signals: AsyncIterator[int]) -> None:
    """A signal during the graceful end ends it at once (as ``sim start`` does)."""
    async for _ in signals:
        sim.end_grace()
        return


async def run_soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run the fleet with its faults for ``args.duration`` seconds; the run's result."""
    fleet = parse_fleet(fleet_text(args), source="<soak>", env={})
    streams: dict[str, Resettable] = {}

    def wrap(identity: str, stream: trio.abc.Stream) -> trio.abc.Stream:
        return Resettable(stream, identity, streams)

    t0 = trio.current_time()
    async with open_simulation(fleet, live=False, wrap=wrap, grace=args.grace) as sim:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(write_stats, sim, Path(args.stats), STATS_EVERY_S, t0)
                async with trio.open_nursery() as faulting:
                    faulting.start_soon(run_faults, sim, streams, args, t0)
                    with trio.move_on_after(args.duration):
                        async for _ in signals:
                            sim.interrupted = True
                            break
                    faulting.cancel_scope.cancel()
                sim.stop(args.grace)
                nursery.start_soon(end_grace_on_signal, sim, signals)
                await sim.wait_finished()
                nursery.cancel_scope.cancel()
    assert sim.result is not None
    return {"status": sim.result.status, "exit_code": sim.result.exit_code,
            "reasons": list(sim.result.reasons), "run_id": sim.result.run_id,
            "ended_after_s": round(trio.current_time() - t0, 3)}


def fleet_text(args: argparse.Namespace) -> str:
    """The fleet file: ``fleet_sim.sim_fleet_text`` with this run's settings."""
    from fleet_sim import sim_fleet_text  # type: ignore[import-not-found]  # this directory

    shaped = argparse.Namespace(
        workload_spec=args.workload_spec, chargers=args.chargers,
        connect_rate=args.connect_rate, settle=0.0, duration=args.duration, seed=args.seed,
        label="soak", ledger=args.ledger, url=args.url, transport=args.transport, groups=1)
    return str(sim_fleet_text(shaped))


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line ``soak.py`` gives the worker."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("--url", "--ledger", "--faults", "--stats", "--workload-json", "--transport"):
        parser.add_argument(name, required=True)
    parser.add_argument("--chargers", type=int, required=True)
    parser.add_argument("--connect-rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--fault-every", type=float, required=True)
    parser.add_argument("--share", type=float, nargs=2, required=True, metavar=("LOW", "HIGH"))
    parser.add_argument("--grace", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)
    args.workload_spec = json.loads(args.workload_json)
    args.connectors = int(args.workload_spec["connectors"])
    return args


def main() -> None:
    """Entry point: run, print the result as one JSON line."""
    from benchlib import raise_open_files_limit  # type: ignore[import-not-found]

    args = parse_args(sys.argv[1:])
    raise_open_files_limit()
    print(json.dumps(trio.run(run_soak, args)), flush=True)


if __name__ == "__main__":
    main()
