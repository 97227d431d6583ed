"""Helpers the benchmarks share: the loopback CSMS process, worker processes and their JSON
results, CPU pinning, /proc figures, the open-files limit, table cells.

``fleet.py``, ``fleet_sim.py``, ``memory.py`` and ``floor.py`` run as scripts from this
directory, which puts it first on ``sys.path``: they import this module as ``benchlib``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

BENCH_DIR: Final = Path(__file__).resolve().parent

LOOPBACK_CSMS: Final = BENCH_DIR / "loopback_csms.py"

TRANSPORTS: Final = ("trio-websocket", "websockets")
"""The sim worker's ``--transport`` choices, as ``[csms] transport`` spells them
(trio-websocket is the simulator's default)."""
WORKLOAD_NAMES: Final = ("meter-2s", "meter-1s")
"""The names of ``ocpp_fleet.WORKLOADS`` (not imported here: the sim worker never loads the
``ocpp`` package), the default first."""
FLEET_TRANSPORT: Final = {"sim": "trio-websocket", "sim-nogc": "trio-websocket",
                          "sim-websockets": "websockets"}
"""The transport each sim fleet runs with."""
RAMP_SLACK_S: Final = 30.0
"""Seconds beyond ``N / connect_rate`` after which the window opens even if not all booted."""
READY_TIMEOUT_S: Final = 20.0
"""Seconds the loopback CSMS gets to report its port."""
STOP_TIMEOUT_S: Final = 15.0
"""Seconds a child process gets to exit after SIGTERM before it is killed."""
WORKER_SLACK_S: Final = 90.0
"""Bound on a worker's start-up and teardown, beyond its ramp, settle and window."""
SPARE_FILES: Final = 256
"""Open files a fleet process needs beyond one per charger (ledger, pipes, the interpreter)."""


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds() -> float:
    """User + system CPU time of this process so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def proc_status_kib(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (``VmRSS``, ``VmHWM``); ``None`` where unavailable."""
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def percentiles(values: Sequence[float], scale: float) -> dict[str, float] | None:
    """p50/p95/p99/max of ``values`` times ``scale`` (``None`` when empty)."""
    if not values:
        return None
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * scale, 3)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": at(1.0)}


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``None`` while it does not exist yet."""
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded


@contextlib.contextmanager
def open_loopback_csms(workdir: Path, label: str, interval: float,
                       core: int | None = None) -> Iterator[tuple[int, Path]]:
    """Start a loopback CSMS process (on CPU ``core`` alone when given); yield
    ``(port, stats_path)``; stop it on exit."""
    ready, stats = workdir / f"{label}.port", workdir / f"{label}.csms.json"
    for stale in (ready, stats):  # left by an earlier run in a --keep directory
        stale.unlink(missing_ok=True)
    log = (workdir / f"{label}.csms.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, str(LOOPBACK_CSMS), "--host", "127.0.0.1", "--port", "0",
         "--ready", str(ready), "--stats", str(stats), "--interval", f"{interval:g}"],
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=pinned(core),
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the loopback CSMS did not start; see {log.name}")
            time.sleep(0.05)
        yield int(ready.read_text().strip()), stats
    finally:
        stop_process(process)
        log.close()


def pinned(core: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that puts the child on CPU ``core`` alone before it runs (its threads
    inherit the affinity), or ``None`` to leave it where the kernel likes."""
    if core is None:
        return None
    return functools.partial(os.sched_setaffinity, 0, {core})


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM ``process`` and wait; SIGKILL it if it has not exited in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


def run_worker(command: list[str], timeout: float, log_path: Path,
               core: int | None = None) -> dict[str, Any]:
    """Run a fleet process (on CPU ``core`` alone when given) to its end (killed after
    ``timeout`` s); its last stdout line is a JSON object, its stderr goes to ``log_path``."""
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True,
                                   preexec_fn=pinned(core))
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(process)
            raise RuntimeError(f"{command[1]} ran over {timeout:.0f} s; see {log_path}") from None
        except BaseException:  # Ctrl-C: the child got SIGINT too; never leave it behind
            stop_process(process)
            raise
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"{Path(command[1]).name} failed (exit {process.returncode}); "
                           f"{log_path} ends with: " + " | ".join(tail))
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a number greater than zero."""

    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse

