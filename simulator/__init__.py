"""OCPP chaos simulator: a fleet of virtual OCPP 1.6-J chargers that misbehave on purpose.

The public Python API, for scripts and tests that drive a fleet themselves::

    import trio
    import simulator

    async def main() -> None:
        fleet = simulator.load_fleet(simulator.fleet_file("fleet"))  # the shipped default
        async with simulator.open_simulation(fleet) as sim:
            await sim.plug("AC-0001", 1)
            await sim.present_tag("AC-0001", 1, "TAG-1")
            await trio.sleep(60)
        print(sim.result)

    trio.run(main)

Layers (checked by import-linter, see ``pyproject.toml``): ``simulator.ocpp``,
``simulator.machines`` and ``simulator.chaos`` are the sans-IO core and never import trio;
``simulator.actors`` and ``simulator.csms`` drive them with Trio; ``simulator.runtime`` wires the
actor tree; ``simulator.cli`` is the command line on top. The names below are imported on first
use, so ``import simulator`` (or any core module) loads no I/O library.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("ocpp-chaos-simulator")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from simulator import events
    from simulator.config import ConfigError, Fleet, fleet_file, load_fleet, parse_fleet
    from simulator.events import Event
    from simulator.runtime import open_simulation, run_clock, run_simulation
    from simulator.simulation import CommandError, RunResult, Simulation

_EXPORTS = {
    "ConfigError": "simulator.config",
    "Fleet": "simulator.config",
    "fleet_file": "simulator.config",
    "load_fleet": "simulator.config",
    "parse_fleet": "simulator.config",
    "open_simulation": "simulator.runtime",
    "run_simulation": "simulator.runtime",
    "run_clock": "simulator.runtime",
    "Simulation": "simulator.simulation",
    "CommandError": "simulator.simulation",
    "RunResult": "simulator.simulation",
    "Event": "simulator.events",
}
"""Public name → the module that defines it."""


def __getattr__(name: str) -> Any:
    if name == "events":
        return importlib.import_module("simulator.events")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "CommandError",
    "ConfigError",
    "Event",
    "Fleet",
    "RunResult",
    "Simulation",
    "__version__",
    "events",
    "fleet_file",
    "load_fleet",
    "open_simulation",
    "parse_fleet",
    "run_clock",
    "run_simulation",
]
