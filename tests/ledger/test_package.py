"""The package's surface: what it exports, and that reading a ledger needs no trio."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import simulator.ledger

TRIO_FREE = [
    "simulator.ledger",
    "simulator.ledger.schema",
    "simulator.ledger.reads",
    "simulator.ledger.statements",
    "simulator.ledger.outbox",
    "simulator.ledger.store",
]


@pytest.mark.parametrize("module", TRIO_FREE)
def test_only_the_writer_imports_trio(module: str) -> None:
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps([m for m in ('trio', 'simulator.ledger.writer') if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [], f"{module} loads trio"


def test_the_package_exports_what_all_names() -> None:
    exported = simulator.ledger.__all__
    assert len(set(exported)) == len(exported)
    missing = [name for name in exported if not hasattr(simulator.ledger, name)]
    assert missing == []
    public = {name for name in vars(simulator.ledger) if not name.startswith("_")}
    modules = {"schema", "reads", "statements", "outbox", "store", "writer"}  # once imported
    assert public - modules == set(exported)
