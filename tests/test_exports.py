"""The public API in ``simulator/__init__.py``: every exported name resolves to the object its
module defines, and importing the package loads no I/O library until a name is used."""

from __future__ import annotations

import json
import subprocess
import sys

import simulator
import simulator.config
import simulator.events
import simulator.runtime
import simulator.simulation


def test_every_exported_name_is_the_defining_modules_object() -> None:
    assert simulator.load_fleet is simulator.config.load_fleet
    assert simulator.parse_fleet is simulator.config.parse_fleet
    assert simulator.fleet_file is simulator.config.fleet_file
    assert simulator.Fleet is simulator.config.Fleet
    assert simulator.ConfigError is simulator.config.ConfigError
    assert simulator.open_simulation is simulator.runtime.open_simulation
    assert simulator.run_simulation is simulator.runtime.run_simulation
    assert simulator.run_clock is simulator.runtime.run_clock
    assert simulator.Simulation is simulator.simulation.Simulation
    assert simulator.RunResult is simulator.simulation.RunResult
    assert simulator.CommandError is simulator.simulation.CommandError
    assert simulator.Event is simulator.events.Event
    assert simulator.events is simulator.events  # the event types, as a module
    for name in simulator.__all__:
        assert getattr(simulator, name) is not None, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        simulator.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_package_loads_no_io_library() -> None:
    code = (
        "import json, sys, simulator\n"
        "print(json.dumps([m for m in ('trio', 'sqlite3', 'sqlite_utils') if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
