"""Floor benchmark: what one exchange costs with nothing but Trio and a WebSocket transport.

N connections, each one Trio task that sends a MeterValues CALL every ``1 / --rate`` seconds
(1.4/s: the per-charger rate of ``tools/bench/fleet.py``'s default workload, ``meter-2s``;
2.3/s for ``meter-1s``) and waits for its
CALLRESULT, against ``tools/bench/loopback_csms.py`` in another process, on 127.0.0.1. No
charger machine, no ledger, no bus, no connector actors: the part of ``fleet.py``'s CPU per
exchange that no simulator on this transport can go below. The difference to ``fleet.py``'s
figure is what the simulator itself costs.

Each connection is ``simulator.actors.transport.open_transport`` with the client ``--transport``
names (``trio_websocket_client`` or ``websockets_client``) and waits out its period with
``trio.sleep``, as the chargers wait on trio's own deadlines. The connections open at 1,000/s;
after ``--settle`` seconds the GC is tuned as the simulator tunes it
(``simulator.actors.fleet.tune_gc``) and a window of ``--window`` seconds is measured: process
CPU (user + system) per exchange completed in it.

Usage::

    python tools/bench/floor.py                                   # 1,000 x websockets
    python tools/bench/floor.py --transport trio-websocket --connections 1000
    python tools/bench/floor.py --connections 10000 --rate 0.3 --window 30

The run stops by itself after the window.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import random
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Final

import trio
from benchlib import (  # type: ignore[import-not-found]  # this directory, run as a script
    cpu_seconds,
    open_loopback_csms,
    raise_open_files_limit,
)

CALL: Final = (
    '[2,"{id}","MeterValues",{{"connectorId":1,"transactionId":5,"meterValue":[{{'
    '"timestamp":"2026-11-26T18:00:00Z","sampledValue":[{{"value":"1234",'
    '"measurand":"Energy.Active.Import.Register","unit":"Wh"}}]}}]}}]'
)
"""The CALL sent: the size and shape of the fleet's most frequent frame."""
OPEN_RATE: Final = 1000.0
"""Connections opened per second."""


CLIENTS: Final = {
    "trio-websocket": ("simulator.actors.transport", "trio_websocket_client"),
    "websockets": ("simulator.actors.websockets_transport", "websockets_client"),
}
"""Where the simulator keeps each WebSocket client of ``open_transport``."""


def simulator_api(module: str, name: str) -> Any:
    """``module.name`` of the simulator; exits with one line when it has moved."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        sys.exit(f"floor.py: this simulator has no {module}.{name}; the bench needs updating")


def opener(name: str) -> Callable[[str, str], AbstractAsyncContextManager[Any]]:
    """``(url, identity)`` → ``open_transport`` of the simulator with the client ``name``,
    offering OCPP 1.6."""
    open_transport = simulator_api("simulator.actors.transport", "open_transport")
    plugin = simulator_api("simulator.ocpp.v16", "PLUGIN")
    client = simulator_api(*CLIENTS[name])
    return functools.partial(open_transport, plugin=plugin, client=client)


async def run(args: argparse.Namespace, url: str) -> tuple[int, float]:
    """Exchanges completed in the window and the process CPU seconds it took."""
    tune_gc = simulator_api("simulator.actors.fleet", "tune_gc")
    open_transport = opener(args.transport)
    period = 1.0 / args.rate
    completed = 0

    async def connection(index: int) -> None:
        nonlocal completed
        async with open_transport(url, f"FLOOR-{index:05}") as transport:
            await trio.sleep(random.Random(index).random() * period)  # spread the phases
            sent = 0
            while True:
                await trio.sleep(period)
                sent += 1
                await transport.send(CALL.format(id=sent))
                await transport.receive()
                completed += 1

    async with trio.open_nursery() as nursery:
        for index in range(args.connections):
            nursery.start_soon(connection, index)
            if index % 100 == 99:
                await trio.sleep(100 / OPEN_RATE)
        await trio.sleep(args.settle)
        tune_gc()
        cpu0, done0 = cpu_seconds(), completed
        await trio.sleep(args.window)
        cpu1, done1 = cpu_seconds(), completed
        nursery.cancel_scope.cancel()
    return done1 - done0, cpu1 - cpu0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--transport", choices=list(CLIENTS), default="websockets")
    parser.add_argument("--rate", type=float, default=1.4, help="CALLs per connection per s")
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=15.0)
    args = parser.parse_args(argv)
    raise_open_files_limit()
    with tempfile.TemporaryDirectory(prefix="floor-") as workdir, \
            open_loopback_csms(Path(workdir), "floor", 10.0) as (port, _stats):
        exchanges, cpu = trio.run(run, args, f"ws://127.0.0.1:{port}/ocpp")
    if not exchanges:
        sys.exit("floor.py: no exchange completed in the window")
    print(f"floor: {args.connections:,} connections x {args.transport}, {args.rate:g} CALL/s each,"
          f" window {args.window:g} s")
    print(f"exchanges {exchanges:,} ({exchanges / args.window:,.0f}/s), CPU {cpu:.2f} s,"
          f" {cpu / exchanges * 1e6:.1f} µs per exchange")
    given = sys.argv[1:] if argv is None else argv
    print(" ".join(["command: python tools/bench/floor.py", *given]))


if __name__ == "__main__":
    main()
