"""The sans-IO core never imports trio (nor SQLite or asyncio): the architecture's layering.

Every module of the core packages (found by walking them, so a new module is checked too) is
imported in a fresh interpreter, and the test fails if trio (or any I/O
library of the actor layer) was loaded along the way. This checks what is loaded at run time,
conditional and dynamic imports included; ``lint-imports`` (pyproject.toml's contracts) checks the
import graph itself, layer by layer.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

import pytest

CORE_PACKAGES = [
    "simulator.ocpp",
    "simulator.machines",
    "simulator.chaos",
]
CORE_MODULES = [
    *sorted(
        info.name
        for package in CORE_PACKAGES
        for info in pkgutil.walk_packages(
            importlib.import_module(package).__path__, prefix=f"{package}."
        )
    ),
    *CORE_PACKAGES,
    "simulator.events",
    "simulator.seeds",
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
