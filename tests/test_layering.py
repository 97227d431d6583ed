"""The sans-IO core never imports trio (nor SQLite or asyncio): DESIGN.md's layering, enforced.

Each core package is imported in a fresh interpreter, and the test fails if trio (or any I/O
library of the actor layer) was loaded along the way. This checks what is loaded at run time,
conditional and dynamic imports included; ``lint-imports`` (pyproject.toml's contracts) checks the
import graph itself, layer by layer.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CORE_MODULES = [
    "simulator.ocpp",
    "simulator.ocpp.frames",
    "simulator.ocpp.plugin",
    "simulator.ocpp.v16",
    "simulator.events",
    "simulator.seeds",
    "simulator.machines",
    "simulator.machines.session",
    "simulator.machines.charger",
    "simulator.machines.connector",
    "simulator.machines.meter",
    "simulator.machines.configuration",
    "simulator.machines.auth",
    "simulator.machines.workload",
    "simulator.chaos",
    "simulator.chaos.catalog",
    "simulator.chaos.targets",
    "simulator.durations",
    "simulator.csms.core",
]

FORBIDDEN = ["trio", "trio_websocket", "sqlite3", "sqlite_utils", "asyncio"]


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_no_io(module: str) -> None:
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == [], f"{module} imports {loaded}"
