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
  the worker (``fleet_sim.py``) writes that line of the fleet file;
- ``ocpp``: ``tools/bench/ocpp_fleet.py`` (asyncio + websockets + ``ocpp``, schema validation on).

The workload (``--workload``, ``ocpp_fleet.WORKLOADS``) is the same for every fleet: N chargers x
2 connectors, boot, a StatusNotification per connector, a Heartbeat every 5 s (``meter-2s``, the
default: issue #13's table) or 10 s (``meter-1s``: issue #4's), and per connector transactions
back to back (Authorize, StartTransaction, 10 MeterValues 2 s or 1 s apart, StopTransaction, 2 s
idle). Our chargers express it as a fleet file (``fleet_sim.sim_fleet_text``); being real chargers
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
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from benchlib import (  # type: ignore[import-not-found]  # this directory, run as a script
    BENCH_DIR,
    FLEET_TRANSPORT,
    RAMP_SLACK_S,
    SPARE_FILES,
    WORKER_SLACK_S,
    WORKLOAD_NAMES,
    fmt,
    open_loopback_csms,
    positive,
    raise_open_files_limit,
    read_json,
    run_worker,
)
from fleet_report import render  # type: ignore[import-not-found]

OCPP_FLEET: Final = BENCH_DIR / "ocpp_fleet.py"
SIM_WORKER: Final = BENCH_DIR / "fleet_sim.py"
FLEETS: Final = ("sim", "sim-websockets", "sim-nogc", "ocpp")
"""The fleets a run can measure, in the order they run."""


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
            command = [sys.executable, str(SIM_WORKER), "--url", url, "--label", label,
                       "--gc", "off" if fleet == "sim-nogc" else "on",
                       "--transport", FLEET_TRANSPORT[fleet],
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
    return parser.parse_args(argv)


def usage_error(message: str) -> None:
    """One line on stderr, exit code 2 (bad usage)."""
    print(f"fleet.py: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the fleets one after the other, print the table."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
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
    from ocpp_fleet import WORKLOADS  # type: ignore[import-not-found]  # this directory

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
