"""The README as a new user meets it: its "Usage" commands run as written, in order, in an empty
folder; it names every command and flag ``--help`` shows; and ``pip install`` of a wheel (no
editable install) gives a ``sim`` that runs from any folder with the scenarios it ships.

The Usage block is read out of README.md, so the two cannot drift apart. It runs in bash in a
network namespace of its own (``unshare --net``, loopback only): the block starts a CSMS on the
fixed port 9100 as a user would, and there that port is always free, whatever else this machine
runs. Every ``sim`` there is this source tree's (``python -m simulator``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[1]
README: Final = ROOT / "README.md"
SCENARIOS: Final = ROOT / "scenarios"
BLOCK_BOUND_S: Final = 120.0
"""Seconds the whole Usage block may take before the test gives up (it takes about 25)."""
WHEEL_STEP_BOUND_S: Final = 120.0

LOOPBACK_UP: Final = textwrap.dedent("""\
    import fcntl, os, socket, struct, sys
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    request = struct.pack("16sH14x", b"lo", 0)
    flags = struct.unpack("16sH14x", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
    fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    probe.close()
    os.execvp(sys.argv[1], sys.argv[1:])
""")
"""Run in the new network namespace: bring its loopback up, then exec the command."""


def usage_block(text: str) -> str:
    """The first indented code block after the ``## Usage`` heading, unindented."""
    section = text.split("\n## Usage\n", 1)[1].split("\n## ", 1)[0]
    lines: list[str] = []
    for line in section.splitlines():
        if line.startswith("    "):
            lines.append(line[4:])
        elif lines and line.strip():
            break
    return "\n".join(lines) + "\n"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the variables that would change what ``sim`` does."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SIM_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


def test_the_usage_block_is_found_and_short() -> None:
    block = usage_block(README.read_text(encoding="utf-8"))
    commands = [line for line in block.splitlines() if line.strip()]
    assert commands[0].startswith("sim ") and len(commands) >= 10
    for line in commands:  # every run is bounded: a run without --duration would take 30 s
        if line.startswith("sim start"):
            assert "--duration 3s" in line, line


def test_the_usage_block_runs_as_written_in_an_empty_folder(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.fail("util-linux's unshare is needed to give the block a network of its own")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sim = bin_dir / "sim"
    sim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m simulator "$@"\n')
    sim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    script = tmp_path / "usage.sh"
    script.write_text(
        "set -euo pipefail -x\n"
        + usage_block(README.read_text(encoding="utf-8"))
        # (the test's own epilogue: the background CSMS's exit code)
        + 'status=0; wait %1 || status=$?; echo "sim csms exited $status"\n'
    )
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(ROOT),
                    PYTHONUNBUFFERED="1")
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", LOOPBACK_UP, "bash", str(script)],
        cwd=work, env=env, capture_output=True, text=True, timeout=BLOCK_BOUND_S, check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "Traceback" not in output
    assert "sim csms exited 130" in done.stdout  # the Ctrl-C exit code, for `kill` too
    # the block's outputs, where it says they go
    assert (work / "fleet.schema.json").stat().st_size > 0
    ledgers = sorted(p.name for p in (work / "runs").iterdir())
    assert ledgers == ["fleet.db", "interop.db", "lab.db"]  # and no -wal/-shm beside them


def help_flags(*command: str) -> set[str]:
    done = subprocess.run([sys.executable, "-m", "simulator", *command, "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, check=True,
                          env=clean_env(PYTHONPATH=str(ROOT), COLUMNS="200"))
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", done.stdout))


def command_list(text: str) -> dict[str, str]:
    """The README's list of commands: ``- `sim NAME` …`` bullets, each with its sub-bullets."""
    entries = re.split(r"^- `sim ", text.split("The commands and their flags", 1)[1],
                       flags=re.M)[1:]
    listed: dict[str, str] = {}
    for entry in entries:
        name = re.match(r"[a-z-]+", entry)
        assert name is not None
        listed[name.group(0)] = entry.split("\n\n", 1)[0]
    return listed


def test_the_readme_names_every_command_and_flag_help_shows() -> None:
    text = README.read_text(encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "simulator", "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, check=True,
                          env=clean_env(PYTHONPATH=str(ROOT), COLUMNS="200"))
    commands = re.findall(r"^│ ([a-z]+) ", done.stdout, re.M)
    assert {"start", "csms", "report", "check", "schema"} <= set(commands)
    listed = command_list(text)
    for command in commands:
        assert command in listed, command
        for flag in help_flags(command) - {"--help"}:
            if flag.startswith("--no-"):  # a switch's negative form: the README says it once
                continue
            assert re.search(rf"{re.escape(flag)}\b", listed[command]), (command, flag)
    assert "--version" in help_flags() and "--version" in listed["--version"]
    assert "--no-" in text


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with this project installed from a wheel built from a copy of the tree
    (no editable install, no network: ``--no-index``). Its dependencies come from this venv,
    through a ``.pth`` line naming its site-packages (which runs none of that folder's own
    ``.pth`` files, so this venv's editable install of the project is not seen)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "build", "dist", "__pycache__", "*.egg-info", ".*_cache"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "--wheel-dir", str(base / "dist"), str(source)],
                   check=True, capture_output=True, timeout=WHEEL_STEP_BOUND_S, env=clean_env())
    (wheel,) = (base / "dist").glob("*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=WHEEL_STEP_BOUND_S, env=clean_env())
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=WHEEL_STEP_BOUND_S, env=clean_env())
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=60, env=clean_env(),
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return venv


@pytest.mark.slow
def test_an_installed_wheel_runs_the_default_fleet_from_any_folder(
    installed: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import simulator; print(simulator.__file__)"],
        cwd=elsewhere, env=clean_env(), capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed)  # the wheel's copy, not this tree
    done = subprocess.run(
        [str(installed / "bin" / "sim"), "start", "--toml", "fleet", "--duration", "3s",
         "--quiet"],
        cwd=elsewhere, env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "Run 1 'fleet' in runs/fleet.db: completed (exit code 0)" in done.stdout
    assert sorted(p.name for p in (elsewhere / "runs").iterdir()) == ["fleet.db"]


@pytest.mark.slow
def test_the_wheel_ships_the_scenarios_folder_as_it_is(installed: Path, tmp_path: Path) -> None:
    shipped = subprocess.run(
        [str(installed / "bin" / "python"), "-c",
         "import simulator.config as c; print(c.fleet_file('fleet').parent)"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()
    library = Path(shipped)
    assert library.is_relative_to(installed)
    ours = {p.name: p.read_bytes() for p in SCENARIOS.glob("*.toml")}
    theirs = {p.name: p.read_bytes() for p in library.glob("*.toml")}
    assert ours and theirs == ours
