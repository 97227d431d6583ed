"""Benchmark: our fleet (Trio actors, ledger on) against a loopback central system, side by side
with the same workload written with the PyPI ``ocpp`` package.

Each measured fleet runs in its own process, against its own ``tools/bench/loopback_csms.py``
process (a fresh port, so the previous run's TIME_WAIT sockets never get in the way), on
127.0.0.1 only:

- ``sim``: ``simulator.runtime.run_simulation`` in-process (``live=False``, ledger on), with the
  GC tuning of ``simulator.actors.fleet.tune_gc``;
- ``sim-nogc``: the same with ``gc_tuning=False`` (Python's default GC thresholds);
- ``sim-websockets``: ``sim`` with ``[csms] transport = "websockets"`` (the thin client on the
  ``websockets`` package's sans-IO protocol) in place of trio-websocket, the simulator's default;
  the worker's ``--transport trio-websocket|websockets`` writes that line of the fleet file;
- ``ocpp``: ``tools/bench/ocpp_fleet.py`` (asyncio + websockets + ``ocpp``, schema validation on).

The workload (``--workload``, ``ocpp_fleet.WORKLOADS``) is the same for every fleet: N chargers x
2 connectors, boot, a StatusNotification per connector, a Heartbeat every 5 s (``meter-2s``, the
default: issue #13's table) or 10 s (``meter-1s``: issue #4's), and per connector transactions
back to back (Authorize, StartTransaction, 10 MeterValues 2 s or 1 s apart, StopTransaction, 2 s
idle). Our chargers express it as a fleet file (:func:`sim_fleet_text`); being real chargers
they also send the status changes of a session (Preparing, Charging, Finishing, Available) and
walk back 2-10 s before unplugging, so the mix differs a little; every figure is per exchange or
per charger.

With ``--pin`` (the default on a machine with two cores or more) the fleet process and its CSMS
process each run on a core of their own (``os.sched_setaffinity``, set before the process
starts, so every thread inherits it), as issue #13 measured them.

Every run: ramp at ``--connect-rate``, wait until the whole fleet has booted (or
``N / rate + 30 s``), settle ``--settle`` s (the GC tuning happens after the ramp), then measure a
window of ``--duration`` s. In the window: exchanges (request/response pairs completed: CallResult
frames in the ledger for ``sim``, the package's own count for ``ocpp``), process CPU time (user +
system, all threads: the ledger writer thread counts), exchanges/s, CPU µs per exchange,
exchanges per CPU-second, the fleet process's CPU % of one core, latency p50 by action (from
the ledger for ``sim``), GC pauses, event-loop lag. RSS per charger is the VmRSS growth from
before the first connect to the moment the fleet is up, divided by the chargers connected then
(again after the settle and at the end, divided by N: those include the growth of the ledger's
SQLite page cache). The connect rate is the rate achieved between the first and the last
established connection. The run then stops by itself (SIGTERM to its own process for ``sim``,
which ends it gracefully, as Ctrl-C would). On failure of one fleet the others still run and the
exit code is 1.

``--pace K`` makes every interval of the workload K times longer (1/K of the exchanges per
charger); the table's header says what a run offers. At 10,000 chargers pace 1 asks for about
13,800 exchanges/s (``meter-2s``) or 22,700 (``meter-1s``), several times what one process
serves: the run then measures a growing backlog (queued transaction messages, late answers,
drivers refused while their charger is still booting), not a steady state. Sessions all start
within the ramp and end together a session later (10 meter intervals plus the idle gap, times the
pace): measure a window of a session period or settle past that wave (``tools/bench/README.md``).

Usage::

    python tools/bench/fleet.py                         # 1,000 chargers, ~2-3 minutes
    python tools/bench/fleet.py --workload meter-1s     # issue #4's heavier workload
    python tools/bench/fleet.py --chargers 10000 --connect-rate 500 --pace 5 \
        --fleets sim-websockets --duration 110 --settle 60     # sustained rate at 10k
    python tools/bench/fleet.py --no-pin                # let the kernel place the processes
    python tools/bench/fleet.py --chargers 10000 --connect-rate 500 --groups 50 --fleets sim
    python tools/bench/fleet.py --fleets sim --profile runs/bench-profile.txt
    python tools/bench/fleet.py --fleets sim,sim-websockets,ocpp  # both transports
    python tools/bench/fleet.py --fleets sim-websockets --profile runs/ws-profile.txt
    tools/just bench fleet --chargers 2000

``--profile FILE`` adds one more run of the first sim fleet of ``--fleets`` under pyinstrument
(main thread, window only; not used for the figures, the profiler costs CPU) and writes its text
report to FILE, and the session to ``FILE.pyisession`` (``pyinstrument --load FILE.pyisession
-r text --show-all`` re-renders it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import json
import os
import resource
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

BENCH_DIR: Final = Path(__file__).resolve().parent

LOOPBACK_CSMS: Final = BENCH_DIR / "loopback_csms.py"
OCPP_FLEET: Final = BENCH_DIR / "ocpp_fleet.py"

FLEETS: Final = ("sim", "sim-websockets", "sim-nogc", "ocpp")
"""The fleets a run can measure, in the order they run."""
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
GRACE_S: Final = 2.0
"""Graceful end of a ``sim`` run: seconds for the queues (the window is already closed)."""
READY_TIMEOUT_S: Final = 20.0
"""Seconds the loopback CSMS gets to report its port."""
STOP_TIMEOUT_S: Final = 15.0
"""Seconds a child process gets to exit after SIGTERM before it is killed."""
WORKER_SLACK_S: Final = 90.0
"""Bound on a worker's start-up and teardown, beyond its ramp, settle and window."""
POLL_S: Final = 0.25
LAG_PROBE_S: Final = 0.01
"""Period of the event-loop lag probe: how late a ``trio.sleep`` of this length wakes up."""
SPARE_FILES: Final = 256
"""Open files a fleet process needs beyond one per charger (ledger, pipes, the interpreter)."""

TARGET_RSS_KIB: Final = 60.0
"""Issue #13: RSS per connected charger, every transport, at 1,000 and 10,000 chargers."""
TARGET_RATIO: Final = {"trio-websocket": 1.5, "websockets": 2.5}
"""Issue #13: exchanges per CPU-second against the ``ocpp``-package fleet's, by transport, at
1,000 chargers with the peer below saturation."""
TARGET_LATENCY_P50_MS: Final = 10.0
"""Issue #13: latency p50 of the default transport, while the fleet is below
``LATENCY_CPU_BOUND_PCT`` of a core."""
LATENCY_CPU_BOUND_PCT: Final = 70.0
SATURATED_PCT: Final = 90.0
"""A process at this share of a core or more is taken as saturated."""
TARGET_CHARGERS: Final = 1000
"""The fleet size at which the ratio targets hold."""
LATENCY_ACTIONS: Final = ("Authorize", "StartTransaction", "MeterValues", "StopTransaction",
                          "Heartbeat", "StatusNotification")
"""The actions whose latency p50 the table shows (those in the run)."""


# ---- helpers shared by the orchestrator and the worker -----------------------------------------


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


# ---- the sim worker (runs in its own process) ---------------------------------------------------


def sim_fleet_text(args: argparse.Namespace) -> str:
    """The fleet file for our simulator that expresses the workload (an ``ocpp_fleet.Workload``
    as a dict) on the worker's transport."""
    workload = args.workload_spec
    session_s = workload["meter_samples_per_transaction"] * workload["meter_interval_s"]
    # The ramp, the settle and the window, plus a margin: a bound in case the worker's own
    # SIGTERM never comes; the run normally ends long before.
    bound_s = args.chargers / args.connect_rate + RAMP_SLACK_S + args.settle + args.duration + 60
    return f"""
[run]
name = "bench-{args.label}"
seed = {args.seed}
duration = "{bound_s:.0f}s"
ledger = {json.dumps(str(args.ledger))}

[csms]
url = {json.dumps(args.url)}
transport = {json.dumps(args.transport)}
""" + "".join(group_text(args, workload, index, session_s) for index in range(args.groups))


def group_text(args: argparse.Namespace, workload: dict[str, Any], index: int,
               session_s: float) -> str:
    """``[[group]]`` number ``index`` of ``args.groups``: an equal share of the chargers and of
    the connect rate (groups ramp in parallel)."""
    count = args.chargers // args.groups + (1 if index < args.chargers % args.groups else 0)
    identity = workload["identity_format"]
    if args.groups > 1:
        identity = identity.replace("{n", f"{index:03}-{{n", 1)
    return f"""
[[group]]
name = "bench-{index}"
count = {count}
id = {json.dumps(identity)}
vendor = "BenchVendor"
model = "BenchModel"
connectors = {workload["connectors"]}
max_power_kw = 22
connect_rate = {args.connect_rate / args.groups}

[group.config]
MeterValueSampleInterval = {workload["meter_interval_s"]:g}
HeartbeatInterval = {workload["heartbeat_interval_s"]:g}

[group.sessions]
arrivals_per_hour = {3600.0 / workload["idle_between_transactions_s"]:g}
duration = "{session_s:g}s"
energy_kwh = "1..2"
id_tags = [{json.dumps(workload["id_tag"])}]
"""


@dataclass
class Window:
    """What the worker's sampler saw: times are trio clock seconds since the run started."""

    up_at: float | None = None
    start: float = 0.0
    end: float = 0.0
    cpu: float = 0.0
    main_thread_cpu: float = 0.0
    system_cpu: float = 0.0
    rss_baseline_kib: int | None = None
    rss_booted_kib: int | None = None
    connected_booted: int | None = None
    rss_up_kib: int | None = None
    rss_end_kib: int | None = None
    csms_answered: int | None = None
    csms_cpu: float | None = None
    gc_pause_s: float = 0.0
    gc_collections: tuple[int, ...] = ()
    profile_text: str | None = None
    gc_threshold: tuple[int, ...] = ()
    gc_frozen: int = 0
    loop_lag_ms: dict[str, float] | None = None


class GcClock:
    """Sums the time spent in garbage collections while installed (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total_s += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1


def csms_snapshot(path: Path) -> dict[str, Any]:
    """The loopback CSMS's latest counters (empty until it has written them)."""
    return read_json(path) or {}


async def run_sim_worker(args: argparse.Namespace, fleet: Any) -> Window:
    """Run ``fleet`` with a sampler beside it; return the sampler's window."""
    import trio

    from simulator.runtime import run_simulation

    window = Window(rss_baseline_kib=proc_status_kib("VmRSS"))
    stats_path = Path(args.csms_stats)
    gc_clock = GcClock()
    profiler: Any = None

    async def lag_probe(lags: list[float]) -> None:
        while True:
            asked = trio.current_time() + LAG_PROBE_S
            await trio.sleep_until(asked)
            lags.append(trio.current_time() - asked)

    async def sampler(t0: float) -> None:
        with trio.move_on_after(args.chargers / args.connect_rate + RAMP_SLACK_S):
            # Polling: the counters are a file that the CSMS process rewrites every second.
            while csms_snapshot(stats_path).get("by_action", {}).get(  # noqa: ASYNC110
                "BootNotification", 0
            ) < args.chargers:
                await trio.sleep(POLL_S)
            window.up_at = trio.current_time() - t0
        window.rss_booted_kib = proc_status_kib("VmRSS")
        window.connected_booted = csms_snapshot(stats_path).get("clients")
        await trio.sleep(args.settle)
        nonlocal profiler
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.001, async_mode="disabled")
            profiler.start()
        before = csms_snapshot(stats_path)
        window.rss_up_kib = proc_status_kib("VmRSS")
        gc.callbacks.append(gc_clock)
        window.gc_threshold, window.gc_frozen = gc.get_threshold(), gc.get_freeze_count()
        window.start = trio.current_time() - t0
        cpu, main_cpu = cpu_seconds(), time.thread_time()
        system = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        lags: list[float] = []
        async with trio.open_nursery() as probes:
            probes.start_soon(lag_probe, lags)
            await trio.sleep(args.duration)
            probes.cancel_scope.cancel()
        window.cpu = cpu_seconds() - cpu
        window.main_thread_cpu = time.thread_time() - main_cpu
        window.system_cpu = resource.getrusage(resource.RUSAGE_SELF).ru_stime - system
        window.end = trio.current_time() - t0
        gc.callbacks.remove(gc_clock)
        window.rss_end_kib = proc_status_kib("VmRSS")
        after = csms_snapshot(stats_path)
        if profiler is not None:
            profiler.stop()
            window.profile_text = profiler.output_text(unicode=True, color=False)
            with contextlib.suppress(OSError):
                profiler.last_session.save(args.profile + ".pyisession")
        if "answered" in before and "answered" in after:
            window.csms_answered = after["answered"] - before["answered"]
            window.csms_cpu = after["cpu_s"] - before["cpu_s"]
        window.gc_pause_s = gc_clock.total_s
        window.loop_lag_ms = percentiles(lags, 1000.0)
        window.gc_collections = tuple(gc_clock.collections)
        os.kill(os.getpid(), signal.SIGTERM)  # run_simulation ends gracefully, as on Ctrl-C

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sampler, trio.current_time())
        await run_simulation(fleet, resume=False, live=False, grace=GRACE_S,
                             gc_tuning=args.gc == "on")
        nursery.cancel_scope.cancel()
    return window


def ledger_figures(path: Path, window: Window) -> dict[str, Any]:
    """Exchanges, latencies and connection figures from the ledger of a ``sim`` run."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        run_id = conn.execute("SELECT max(id) FROM runs").fetchone()[0]

        def column(sql: str, *params: object) -> list[Any]:
            return [row[0] for row in conn.execute(sql, (run_id, *params))]

        in_window = "AND t >= ? AND t < ?"
        results = conn.execute(
            "SELECT json_extract(data, '$.action'), json_extract(data, '$.latency') FROM events"
            " WHERE run_id = ? AND kind = 'frame_in' AND json_extract(data, '$.message_type') = 3"
            f" {in_window}", (run_id, window.start, window.end)).fetchall()
        call_errors = column(
            "SELECT count(*) FROM events WHERE run_id = ? AND kind = 'frame_in'"
            f" AND json_extract(data, '$.message_type') = 4 {in_window}",
            window.start, window.end)[0]
        timeouts = column(
            f"SELECT count(*) FROM events WHERE run_id = ? AND kind = 'call_timeout' {in_window}",
            window.start, window.end)[0]
        connected = column("SELECT t FROM events WHERE run_id = ? AND kind = 'connected'")
        boots = column("SELECT t FROM events WHERE run_id = ? AND kind = 'boot'"
                       " AND json_extract(data, '$.status') = 'Accepted'")
        counts = dict(conn.execute(
            "SELECT kind, count(*) FROM events WHERE run_id = ? GROUP BY kind", (run_id,)))
    finally:
        conn.close()
    span = max(connected) - min(connected) if len(connected) > 1 else 0.0
    by_action: dict[str, list[float]] = {}
    for action, latency in results:
        if latency is not None:
            by_action.setdefault(action or "?", []).append(latency)
    return {
        "exchanges": len(results),
        "by_action": {action: len(values) for action, values in sorted(by_action.items())},
        "latency_ms": percentiles([x for values in by_action.values() for x in values], 1000.0),
        "latency_by_action_ms": {action: percentiles(values, 1000.0)
                                 for action, values in sorted(by_action.items())},
        "call_errors": call_errors,
        "timeouts": timeouts,
        "connected": len(connected),
        "connect_rate_per_s": round((len(connected) - 1) / span, 1) if span > 0 else None,
        "booted": len(boots),
        "ramp_s": round(max(boots), 3) if len(boots) >= 1 else None,
        "connect_failures": counts.get("connect_failed", 0),
        "disconnects": counts.get("disconnected", 0),
        "crashes": counts.get("crash", 0),
        "ledger_events": sum(counts.values()),
        "ledger_events_by_kind": counts,
    }


def sim_worker_main(args: argparse.Namespace) -> None:
    """``--worker sim``: run our fleet, print the results as one JSON line."""
    import trio

    from simulator.config import parse_fleet

    raise_open_files_limit()
    args.workload_spec = json.loads(args.workload_json)
    fleet = parse_fleet(sim_fleet_text(args), source=f"<bench {args.label}>", env={})
    window = trio.run(run_sim_worker, args, fleet)
    if args.profile and window.profile_text is not None:
        Path(args.profile).write_text(window.profile_text, encoding="utf-8")
    figures = ledger_figures(Path(args.ledger), window)
    wall = window.end - window.start
    exchanges = figures["exchanges"]
    baseline = window.rss_baseline_kib
    results: dict[str, Any] = {
        "tool": "sim",
        "workload": args.workload_spec["name"],
        "gc_tuning": args.gc == "on",
        "transport": args.transport,
        "chargers": args.chargers,
        "connect_rate": args.connect_rate,
        "up_at_s": window.up_at,
        "wall_s": round(wall, 3),
        "cpu_s": round(window.cpu, 3),
        "main_thread_cpu_s": round(window.main_thread_cpu, 3),
        "system_cpu_s": round(window.system_cpu, 3),
        "exchanges_per_s": round(exchanges / wall, 1) if wall > 0 else None,
        "cpu_us_per_exchange": round(window.cpu / exchanges * 1e6, 1) if exchanges else None,
        "rss_per_charger_booted_kib": (
            round((window.rss_booted_kib - baseline) / (window.connected_booted or args.chargers),
                  1)
            if window.rss_booted_kib is not None and baseline is not None else None),
        "connected_when_booted": window.connected_booted,
        "rss_per_charger_kib": (round((window.rss_up_kib - baseline) / args.chargers, 1)
                                if window.rss_up_kib is not None and baseline is not None
                                else None),
        "rss_per_charger_end_kib": (round((window.rss_end_kib - baseline) / args.chargers, 1)
                                    if window.rss_end_kib is not None and baseline is not None
                                    else None),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "gc_pause_s": round(window.gc_pause_s, 3),
        "gc_collections": window.gc_collections,
        "gc_threshold": window.gc_threshold,
        "loop_lag_ms": window.loop_lag_ms,
        "gc_frozen": window.gc_frozen,
        "csms_answered_in_window": window.csms_answered,
        "csms_cpu_s_in_window": window.csms_cpu,
        **figures,
    }
    print(json.dumps(results), flush=True)


# ---- the orchestrator ---------------------------------------------------------------------------


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


def pin_cores(pin: bool | None) -> tuple[int, int] | None:
    """``(fleet core, CSMS core)`` for ``--pin`` (``None``: on when this process may run on two
    cores or more), or ``None`` when not pinning."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if pin is None:
        pin = len(available) >= 2
    if not pin:
        return None
    if len(available) < 2:
        usage_error(f"--pin needs two cores; this process may use {len(available) or 'unknown'}")
    return available[-1], available[-2]


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


def measure(args: argparse.Namespace, workload: dict[str, Any], workdir: Path, fleet: str,
            profile: str | None = None) -> dict[str, Any]:
    """One fleet run against a fresh loopback CSMS; the results with the CSMS's figures."""
    label = fleet if profile is None else f"{fleet}-profiled"
    for suffix in (".db", ".db-wal", ".db-shm"):  # a fresh ledger for every run
        (workdir / f"{label}{suffix}").unlink(missing_ok=True)
    budget = (args.chargers / args.connect_rate + RAMP_SLACK_S + args.settle + args.duration
              + WORKER_SLACK_S)
    fleet_core, csms_core = args.cores if args.cores is not None else (None, None)
    with open_loopback_csms(workdir, label, workload["heartbeat_interval_s"],
                            csms_core) as (port, stats):
        url = f"ws://127.0.0.1:{port}/ocpp"
        common = ["--chargers", str(args.chargers), "--connect-rate", f"{args.connect_rate:g}",
                  "--duration", f"{args.duration:g}", "--settle", f"{args.settle:g}",
                  "--seed", str(args.seed)]
        if fleet == "ocpp":
            command = [sys.executable, str(OCPP_FLEET), "--url", url, "--json",
                       "--workload", workload["name"], "--pace", str(args.pace), *common]
        else:
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", "sim",
                       "--url", url, "--label", label, "--gc", "off" if fleet == "sim-nogc"
                       else "on", "--transport", FLEET_TRANSPORT[fleet],
                       "--ledger", str(workdir / f"{label}.db"),
                       "--csms-stats", str(stats), "--workload-json", json.dumps(workload),
                       "--groups", str(args.groups), *common]
            if profile is not None:
                command += ["--profile", profile]
        started = time.monotonic()
        load_before = os.getloadavg()[0]
        result = run_worker(command, budget, workdir / f"{label}.log", fleet_core)
        result["load_before"] = round(load_before, 2)
        result["fleet"] = label
        result["run_s"] = round(time.monotonic() - started, 1)
    csms = read_json(stats) or {}
    uptime = csms.get("uptime_s") or 0.0
    result["csms_cpu_pct"] = round(100 * csms.get("cpu_s", 0.0) / uptime, 1) if uptime else None
    if result.get("csms_cpu_s_in_window") is not None and result.get("wall_s"):
        result["csms_cpu_pct"] = round(100 * result["csms_cpu_s_in_window"] / result["wall_s"], 1)
    exchanges, cpu = result.get("exchanges") or 0, result.get("cpu_s") or 0.0
    result["exchanges_per_cpu_s"] = round(exchanges / cpu, 1) if cpu else None
    result["cpu_pct"] = (round(100 * cpu / result["wall_s"], 1) if result.get("wall_s")
                         else None)
    (workdir / f"{label}.json").write_text(json.dumps(result) + "\n", encoding="utf-8")
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


def latency_p50(action: str) -> Callable[[dict[str, Any]], Any]:
    """A row getter: the latency p50 (ms) of ``action`` in a fleet's results."""

    def getter(result: dict[str, Any]) -> Any:
        figures = (result.get("latency_by_action_ms") or {}).get(action)
        return figures["p50"] if figures else None

    return getter


ROWS: Final[tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...]] = (
    ("transport", lambda r: r.get("transport", "websockets" if r.get("fleet") == "ocpp" else None)),
    ("connected / booted", lambda r: f"{fmt(r.get('connected'))} / {fmt(r.get('booted'))}"),
    ("connect rate achieved (/s)", lambda r: r.get("connect_rate_per_s")),
    ("last boot at (s)", lambda r: r.get("ramp_s")),
    ("window (s)", lambda r: r.get("wall_s")),
    ("exchanges in window", lambda r: r.get("exchanges")),
    ("exchanges/s", lambda r: r.get("exchanges_per_s")),
    ("CPU s (all threads)", lambda r: r.get("cpu_s")),
    ("  of which main thread", lambda r: r.get("main_thread_cpu_s")),
    ("  of which kernel (system)", lambda r: r.get("system_cpu_s")),
    ("fleet CPU % of one core", lambda r: r.get("cpu_pct")),
    ("CPU µs / exchange", lambda r: r.get("cpu_us_per_exchange")),
    ("exchanges / CPU-s", lambda r: r.get("exchanges_per_cpu_s")),
    ("GC pause s in window", lambda r: r.get("gc_pause_s")),
    ("GC thresholds / frozen objects", lambda r: "-" if not r.get("gc_threshold") else
     f"{'/'.join(str(n) for n in r['gc_threshold'])} / {fmt(r.get('gc_frozen'))}"),
    ("connected when fleet up", lambda r: r.get("connected_when_booted")),
    ("RSS / connected charger (KiB)", lambda r: r.get("rss_per_charger_booted_kib")),
    ("RSS / charger after settle (KiB)", lambda r: r.get("rss_per_charger_kib")),
    ("RSS / charger at end (KiB)", lambda r: r.get("rss_per_charger_end_kib")),
    ("max RSS (MiB)", lambda r: r.get("max_rss_mb")),
    ("latency p50 / p99 (ms)", lambda r: "-" if not r.get("latency_ms") else
     f"{r['latency_ms']['p50']:,.1f} / {r['latency_ms']['p99']:,.1f}"),
    *((f"  p50 {action} (ms)", latency_p50(action)) for action in LATENCY_ACTIONS),
    ("event-loop lag p50 / p99 (ms)", lambda r: "-" if not r.get("loop_lag_ms") else
     f"{r['loop_lag_ms']['p50']:,.1f} / {r['loop_lag_ms']['p99']:,.1f}"),
    ("CALLERRORs / timeouts", lambda r: f"{fmt(r.get('call_errors'))} / {fmt(r.get('timeouts'))}"),
    ("connect failures / crashes", lambda r: f"{fmt(r.get('connect_failures'))} / "
     f"{fmt(r.get('crashes'))}"),
    ("loopback CSMS CPU %", lambda r: r.get("csms_cpu_pct")),
    ("machine load avg before run", lambda r: r.get("load_before")),
    ("process run time (s)", lambda r: r.get("run_s")),
)


def render(results: list[dict[str, Any]], command: str, args: argparse.Namespace,
           workload: dict[str, Any]) -> str:
    """The table, the ratios and the targets, as text."""
    names = [r["fleet"] for r in results]
    width = max(len(label) for label, _ in ROWS) + 2
    cells = [[fmt(getter(r)) for r in results] for _, getter in ROWS]
    col = max([len(n) for n in names] + [len(c) for row in cells for c in row]) + 2
    pinning = ("fleet on CPU {}, its CSMS on CPU {}".format(*args.cores) if args.cores
               else "not pinned")
    lines = [
        f"fleet benchmark: {args.chargers:,} chargers x {workload['connectors']} connectors, "
        f"connect rate {args.connect_rate:g}/s, settle {args.settle:g} s, window "
        f"{args.duration:g} s; {os.cpu_count()} CPUs, {pinning}; ledger on (sim)",
        f"workload {workload['name']}, pace {args.pace}: heartbeat every "
        f"{workload['heartbeat_interval_s']:g} s, a MeterValues every "
        f"{workload['meter_interval_s']:g} s, {workload['meter_samples_per_transaction']} per "
        f"transaction, {workload['idle_between_transactions_s']:g} s idle between transactions: "
        f"about {args.chargers * workload['offered_per_charger_per_s']:,.0f} exchanges/s offered "
        "(the ocpp fleet's mix; ours adds the status changes of each session)",
        "",
        " " * width + "".join(n.rjust(col) for n in names),
    ]
    for (label, _), row in zip(ROWS, cells, strict=True):
        lines.append(label.ljust(width) + "".join(c.rjust(col) for c in row))
    by_name = {r["fleet"]: r for r in results}
    lines.append("")

    def ratio(a: str, b: str) -> float | None:
        x = by_name.get(a, {}).get("exchanges_per_cpu_s")
        y = by_name.get(b, {}).get("exchanges_per_cpu_s")
        return round(x / y, 2) if x and y else None

    for a, b, what in (("sim", "ocpp", "sim vs ocpp-package fleet"),
                       ("sim", "sim-nogc", "GC tuning on vs off"),
                       ("sim-nogc", "ocpp", "sim without GC tuning vs ocpp-package fleet"),
                       ("sim-websockets", "sim", "websockets vs trio-websocket transport"),
                       ("sim-websockets", "ocpp", "sim on websockets vs ocpp-package fleet")):
        value = ratio(a, b)
        if value is not None:
            lines.append(f"exchanges per CPU-second, {what}: {value:.2f}x")
    peer = by_name.get("ocpp", {})
    peer_notes = []
    if (peer.get("cpu_pct") or 0) >= SATURATED_PCT:
        peer_notes.append(f"the ocpp fleet ran at {peer['cpu_pct']:.0f}% of a core: saturated, "
                          "which flatters the ratio")
    if args.chargers != TARGET_CHARGERS:
        peer_notes.append(f"the target is set at {TARGET_CHARGERS:,} chargers")
    peer_note = f" ({'; '.join(peer_notes)})" if peer_notes else ""
    for name in ("sim", "sim-websockets"):
        sim = by_name.get(name)
        if sim is None or "error" in sim:
            continue
        transport = FLEET_TRANSPORT[name]
        target = TARGET_RATIO[transport]
        lines += ["", f"targets (issue #13, {name}: {transport}, GC tuning on):"]
        lines.append(check(f"exchanges per CPU-s >= {target:g}x the ocpp fleet's",
                           ratio(name, "ocpp"), target.__le__, "x", peer_note, 2))
        if transport == "trio-websocket":
            lines.append(latency_check(sim))
        lines.append(check(f"RSS per connected charger <= {TARGET_RSS_KIB:g} KiB",
                           sim.get("rss_per_charger_booted_kib"),
                           lambda v: v <= TARGET_RSS_KIB, "KiB"))
        lines.append(check(f"all {args.chargers:,} chargers connected when the fleet was up",
                           sim.get("connected_when_booted"),
                           lambda v: v >= args.chargers, "chargers"))
    busiest = max((r.get("load_before") or 0.0) for r in results)
    if busiest > (os.cpu_count() or 1) / 2:
        lines += ["", f"note: the machine was busy (1-minute load average up to {busiest:.1f} on "
                  f"{os.cpu_count()} CPUs): exchanges/s and latencies are lower bounds; CPU per "
                  "exchange is the robust figure (exchanges per CPU-second = the rate one "
                  "saturated core would sustain)"]
    lines += ["", f"command: {command}"]
    return "\n".join(lines)


def latency_check(sim: dict[str, Any]) -> str:
    """The latency target's line: p50 under 10 ms, which only holds the fleet to it while the
    fleet process is below 70% of a core."""
    what = (f"latency p50 < {TARGET_LATENCY_P50_MS:g} ms while the fleet is under "
            f"{LATENCY_CPU_BOUND_PCT:g}% of a core")
    p50 = (sim.get("latency_ms") or {}).get("p50")
    cpu_pct = sim.get("cpu_pct")
    if p50 is not None and cpu_pct is not None and cpu_pct >= LATENCY_CPU_BOUND_PCT:
        return (f"  [ -- ] {what}: not applicable, the fleet ran at {cpu_pct:.0f}% of a core "
                f"(p50 {p50:,.1f} ms)")
    return check(what, p50, lambda v: v < TARGET_LATENCY_P50_MS, "ms",
                 "" if cpu_pct is None else f" (fleet at {cpu_pct:.0f}% of a core)")


def check(what: str, value: float | None, ok: Callable[[float], bool], unit: str,
          note: str = "", digits: int = 1) -> str:
    """One target line: met, missed or not measured."""
    if value is None:
        return f"  [ -- ] {what}: not measured"
    return f"  [{' ok ' if ok(value) else 'MISS'}] {what}: {fmt(value, digits)} {unit}{note}"


def positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a number greater than zero."""

    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def fleet_list(text: str) -> list[str]:
    """An argparse type: a comma list of fleet names."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FLEETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown fleet(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(FLEETS)}")
    return names


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=positive(int), default=1000)
    parser.add_argument("--connect-rate", type=positive(float), default=500.0,
                        help="new connections per second during the ramp")
    parser.add_argument("--duration", type=positive(float), default=20.0,
                        help="seconds of the measured window (after ramp and settle)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds between the whole fleet booted and the window")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workload", choices=WORKLOAD_NAMES, default=WORKLOAD_NAMES[0],
                        help="meter-2s: MeterValues every 2 s, heartbeat 5 s (issue #13's "
                             "table); meter-1s: MeterValues every second, heartbeat 10 s")
    parser.add_argument("--pace", type=positive(int), default=1,
                        help="every interval of the workload this many times longer: 1/PACE "
                             "of the exchanges per charger (a load a large fleet can serve)")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=None,
                        help="run each fleet and its CSMS on a core of their own (default: on "
                             "when this process may use two cores or more)")
    parser.add_argument("--groups", type=positive(int), default=1,
                        help="split the sim fleet into this many groups, which ramp in parallel "
                             "(each at connect-rate / groups)")
    parser.add_argument("--fleets", type=fleet_list, default=list(FLEETS),
                        help=f"comma list, in run order (default {','.join(FLEETS)})")
    parser.add_argument("--profile", metavar="FILE",
                        help="one more sim run under pyinstrument; its text report goes to FILE")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep ledgers, CSMS stats and logs in DIR (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    # The worker side: this script runs itself for each sim fleet.
    parser.add_argument("--worker", choices=["sim"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="sim", help=argparse.SUPPRESS)
    parser.add_argument("--gc", choices=["on", "off"], default="on", help=argparse.SUPPRESS)
    # The sim worker's WebSocket layer; the orchestrator picks it per fleet (FLEET_TRANSPORT).
    parser.add_argument("--transport", choices=TRANSPORTS, default=TRANSPORTS[0],
                        help=argparse.SUPPRESS)
    parser.add_argument("--ledger", help=argparse.SUPPRESS)
    parser.add_argument("--csms-stats", help=argparse.SUPPRESS)
    parser.add_argument("--workload-json", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def usage_error(message: str) -> None:
    """One line on stderr, exit code 2 (bad usage)."""
    print(f"fleet.py: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the fleets one after the other, print the table."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker == "sim":
        sim_worker_main(args)
        return
    if args.groups > args.chargers:
        usage_error(f"--groups ({args.groups}) must not exceed --chargers ({args.chargers})")
    limit = raise_open_files_limit()
    if args.chargers + SPARE_FILES > limit:
        usage_error(f"{args.chargers} chargers need more open files than the limit ({limit}); "
                    "raise it with `ulimit -n` or use fewer chargers")
    if args.profile:
        try:
            import pyinstrument  # noqa: F401 - only checked for presence
        except ImportError:
            usage_error("--profile needs pyinstrument in this environment")
    args.cores = pin_cores(args.pin)
    # Imported here, not at the top: the sim worker (this script too) never loads the package.
    from ocpp_fleet import WORKLOADS  # type: ignore[import-not-found]

    paced = WORKLOADS[args.workload].paced(args.pace)
    workload: dict[str, Any] = dataclasses.asdict(paced)
    workload["offered_per_charger_per_s"] = round(paced.offered_per_charger(), 3)
    command = shlex.join(["python", "tools/bench/fleet.py", *argv])
    with contextlib.ExitStack() as stack:
        if args.keep:
            workdir = Path(args.keep)
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        results: list[dict[str, Any]] = []
        failures = 0
        for fleet in args.fleets:
            print(f"fleet.py: running {fleet} ...", file=sys.stderr, flush=True)
            try:
                results.append(measure(args, workload, workdir, fleet))
            except RuntimeError as error:  # one clear line; the other fleets still run
                print(f"fleet.py: {fleet}: {error}", file=sys.stderr, flush=True)
                results.append({"fleet": fleet, "error": str(error)})
                failures += 1
        if args.profile:
            target = next((f for f in args.fleets if f in FLEET_TRANSPORT), "sim")
            print(f"fleet.py: running {target} under pyinstrument ...", file=sys.stderr,
                  flush=True)
            profiled = measure(args, workload, workdir, target,
                               profile=str(Path(args.profile).resolve()))
            print(f"fleet.py: profile written to {args.profile} (profiled run: "
                  f"{fmt(profiled.get('cpu_us_per_exchange'))} µs/exchange)", file=sys.stderr)
    if args.json:
        print(json.dumps({"command": command, "workload": workload, "results": results}))
    else:
        print(render(results, command, args, workload))
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
