"""Memory benchmark: where a connected charger's memory goes, at one or more fleet sizes.

For each size N of ``--chargers`` our fleet (``simulator.runtime.open_simulation``, ledger on,
the workload of ``tools/bench/fleet.py``: ``--workload``, ``--transport``) runs in a process of
its own against a fresh ``tools/bench/loopback_csms.py`` process, on 127.0.0.1. Once the CSMS
has seen N connections and N BootNotifications, and ``--settle`` seconds more, the run reports:

- RSS per charger: the VmRSS growth from before the run to then, divided by N;
- the collector's census: the ``--top`` types by ``sys.getsizeof`` bytes per charger that the
  run added to the objects ``gc`` tracks (containers and instances; strings and numbers are not
  tracked);
- for one charger (at the first size only, or every size with ``--objects-every-size``): its
  main objects (those its tasks hold in their frames: machine, connectors, channels, the
  WebSocket connection, ...) with their own ``sys.getsizeof`` and the bytes of everything each
  reaches first, then its tasks (coroutines, frames, closures); and the median over all chargers
  of what each one alone reaches (``tools/bench/heap.py`` says how it is attributed).

With ``--tracemalloc`` (the default) a second process per size runs the same fleet under
``tracemalloc`` (one frame) and reports the Python allocations made since before the run, by
file, the ``--top`` files by bytes per charger. Tracing costs memory and CPU of its own, so its
RSS is not the one reported.

A run ends by itself: once measured, the worker leaves the ``open_simulation`` block, which ends
the fleet gracefully. It needs of the simulator only ``simulator.config.parse_fleet`` and
``simulator.runtime.open_simulation`` (the ids of ``Simulation.chargers()`` name the charger
tasks ``heap.py`` walks), imported when the worker starts: if they moved, the tool says so in
one line.

Usage::

    python tools/bench/memory.py                                  # 200 and 1,000 chargers
    python tools/bench/memory.py --chargers 1000 --transport websockets
    python tools/bench/memory.py --chargers 200 --no-tracemalloc --json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import shlex
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any, Final

from benchlib import (  # type: ignore[import-not-found]  # this directory, run as a script
    RAMP_SLACK_S,
    SPARE_FILES,
    TRANSPORTS,
    WORKER_SLACK_S,
    WORKLOAD_NAMES,
    fmt,
    open_loopback_csms,
    proc_status_kib,
    raise_open_files_limit,
    read_json,
    run_worker,
)
from fleet_sim import sim_fleet_text  # type: ignore[import-not-found]

DEFAULT_SIZES: Final = (200, 1000)
POLL_S: Final = 0.25
GRACE_S: Final = 2.0
"""Seconds a run's queues get at its end (nothing is measured then)."""
KIB: Final = 1024


# ---- the worker (one fleet size, in its own process) -------------------------------------------


def simulator_api() -> tuple[Any, Any]:
    """``(parse_fleet, open_simulation)`` of the simulator; exits with one line if they moved."""
    try:
        from simulator.config import parse_fleet
        from simulator.runtime import open_simulation
    except ImportError as error:
        sys.exit(f"memory.py: the simulator's API moved ({error}); this tool needs updating")
    return parse_fleet, open_simulation


async def observe(args: argparse.Namespace, results: dict[str, Any],
                  baseline: tracemalloc.Snapshot | None, before: Any, sim: Any) -> None:
    """Wait until ``sim``'s fleet is up and settled, then measure."""
    import heap  # type: ignore[import-not-found]  # this directory
    import trio

    stats = Path(args.csms_stats)
    with trio.move_on_after(args.chargers / args.connect_rate + RAMP_SLACK_S):
        while True:
            snapshot = read_json(stats) or {}
            if (snapshot.get("by_action", {}).get("BootNotification", 0) >= args.chargers
                    and snapshot.get("clients", 0) >= args.chargers):
                break
            await trio.sleep(POLL_S)
    snapshot = read_json(stats) or {}
    results["connected"] = snapshot.get("clients", 0)
    results["booted"] = snapshot.get("by_action", {}).get("BootNotification", 0)
    await trio.sleep(args.settle)
    gc.collect()
    rss = proc_status_kib("VmRSS")
    if rss is not None and results["rss_baseline_kib"] is not None:
        results["rss_per_charger_kib"] = round((rss - results["rss_baseline_kib"])
                                               / args.chargers, 1)
    results["rss_kib"] = rss
    if baseline is not None:
        results["tracemalloc"] = traced_by_file(baseline, args.top, args.chargers)
    else:
        gc.unfreeze()  # frozen objects are invisible to gc.get_objects()
        rows, count, size = heap.Census.take().growth(before, args.top)
        results["census"] = {"rows": rows, "objects": count, "bytes": size}
        if args.objects:
            found = heap.charger_objects(sim.chargers())
            results["charger"] = {
                "chargers_found": found.chargers, "rows": found.rows,
                "median_bytes": found.median_bytes(),
                "median_objects": (sorted(found.objects_per_charger)[found.chargers // 2]
                                   if found.chargers else 0),
            }


def traced_by_file(baseline: tracemalloc.Snapshot, top: int, chargers: int) -> dict[str, Any]:
    """Python allocations since ``baseline``, by file: the ``top`` files by bytes."""
    now = tracemalloc.take_snapshot()
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = now.filter_traces(filters).compare_to(baseline.filter_traces(filters), "filename")
    rows = [{"file": short_path(stat.traceback[0].filename), "bytes": stat.size_diff,
             "blocks": stat.count_diff} for stat in diff[:top]]
    return {"rows": rows, "bytes": sum(stat.size_diff for stat in diff),
            "tracing_overhead_bytes": tracemalloc.get_tracemalloc_memory(), "chargers": chargers}


def short_path(path: str) -> str:
    """``path`` from its package on (``trio/_core/_run.py``), or as it is."""
    parts = Path(path).parts
    for marker in ("site-packages", "lib"):
        if marker in parts:
            index = len(parts) - 1 - parts[::-1].index(marker)
            if marker == "site-packages" or index + 2 < len(parts):
                return "/".join(parts[index + 1 + (marker == "lib"):])
    with contextlib.suppress(ValueError):
        return str(Path(path).relative_to(Path.cwd()))
    return path


def worker_main(args: argparse.Namespace) -> None:
    """``--worker``: run the fleet, print the results as one JSON line."""
    if args.trace:
        tracemalloc.start(1)
    raise_open_files_limit()
    parse_fleet, open_simulation = simulator_api()
    import trio
    from heap import Census  # type: ignore[import-not-found]  # this directory

    args.workload_spec = json.loads(args.workload_json)
    args.groups, args.duration = 1, 0.0
    fleet = parse_fleet(sim_fleet_text(args), source=f"<memory {args.label}>", env={})
    gc.collect()
    results: dict[str, Any] = {"chargers": args.chargers, "transport": args.transport,
                               "workload": args.workload_spec["name"],
                               "traced": args.trace,
                               "rss_baseline_kib": proc_status_kib("VmRSS")}
    baseline = tracemalloc.take_snapshot() if args.trace else None
    before = None if args.trace else Census.take()

    async def main() -> None:
        async with open_simulation(fleet, live=False, grace=GRACE_S) as sim:
            await observe(args, results, baseline, before, sim)

    trio.run(main)
    print(json.dumps(results), flush=True)


# ---- the orchestrator ---------------------------------------------------------------------------


def measure(args: argparse.Namespace, workload: dict[str, Any], workdir: Path, chargers: int,
            trace: bool, objects: bool) -> dict[str, Any]:
    """One worker process for ``chargers`` against a fresh loopback CSMS."""
    label = f"memory-{chargers}{'-traced' if trace else ''}"
    for suffix in (".db", ".db-wal", ".db-shm"):
        (workdir / f"{label}{suffix}").unlink(missing_ok=True)
    budget = chargers / args.connect_rate + RAMP_SLACK_S + args.settle + WORKER_SLACK_S
    with open_loopback_csms(workdir, label, workload["heartbeat_interval_s"]) as (port, stats):
        command = [sys.executable, str(Path(__file__).resolve()), "--worker",
                   "--url", f"ws://127.0.0.1:{port}/ocpp", "--label", label,
                   "--chargers", str(chargers), "--connect-rate", f"{args.connect_rate:g}",
                   "--settle", f"{args.settle:g}", "--seed", str(args.seed),
                   "--transport", args.transport, "--top", str(args.top),
                   "--ledger", str(workdir / f"{label}.db"), "--csms-stats", str(stats),
                   "--workload-json", json.dumps(workload)]
        command += ["--trace"] if trace else []
        command += ["--objects"] if objects else []
        return run_worker(command, budget, workdir / f"{label}.log")


def render(runs: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    """The report, one section per fleet size."""
    lines = [f"memory benchmark: {args.transport}, workload {args.workload}, ledger on, "
             f"loopback CSMS in its own process, settle {args.settle:g} s"]
    for run in runs:
        n = run["chargers"]
        lines += ["", f"== {n:,} chargers: {fmt(run.get('connected'))} connected, "
                  f"{fmt(run.get('booted'))} booted"]
        if "error" in run:
            lines.append(f"  failed: {run['error']}")
            continue
        lines.append(f"RSS per charger: {fmt(run.get('rss_per_charger_kib'))} KiB "
                     f"(RSS {fmt((run.get('rss_kib') or 0) / KIB)} MiB)")
        census = run.get("census")
        if census:
            lines += ["", f"gc-tracked objects added by the run: {census['objects'] / n:,.0f} "
                      f"per charger, {census['bytes'] / n / KIB:,.1f} KiB per charger "
                      "(sys.getsizeof, shallow); the top types:",
                      f"  {'KiB/charger':>11} {'objects/charger':>15}  type"]
            lines += [f"  {row['bytes'] / n / KIB:>11,.2f} {row['count'] / n:>15,.1f}  "
                      f"{row['type']}" for row in census["rows"]]
        charger = run.get("charger")
        if charger:
            lines += ["", f"one charger's objects (the last of {charger['chargers_found']:,} "
                      f"found; what each charger alone reaches: median "
                      f"{charger['median_bytes'] / KIB:,.1f} KiB in "
                      f"{charger['median_objects']:,} objects):",
                      f"  {'own B':>7} {'reached KiB':>11} {'objects':>8}  object"]
            objects = [row for row in charger["rows"] if not row["object"].startswith("task ")]
            tasks = [row for row in charger["rows"] if row["object"].startswith("task ")]
            shown, folded = objects[:args.top], objects[args.top:]
            if folded:
                shown.append({"object": f"({len(folded)} smaller objects)", "shallow": sum(
                    row["shallow"] for row in folded), "bytes": sum(row["bytes"] for row in folded),
                    "objects": sum(row["objects"] for row in folded)})
            lines += [f"  {row['shallow']:>7,} {row['bytes'] / KIB:>11,.2f} "
                      f"{row['objects']:>8,}  {row['object']}" for row in shown + tasks]
        traced = run.get("tracemalloc")
        if traced:
            lines += ["", f"tracemalloc (a run of its own): {traced['bytes'] / n / KIB:,.1f} KiB "
                      f"per charger allocated since before the run; the top files:",
                      f"  {'KiB/charger':>11} {'blocks/charger':>14}  file"]
            lines += [f"  {row['bytes'] / n / KIB:>11,.2f} {row['blocks'] / n:>14,.1f}  "
                      f"{row['file']}" for row in traced["rows"]]
    lines += ["", f"command: {command}"]
    return "\n".join(lines)


def sizes(text: str) -> list[int]:
    """An argparse type: a comma list of fleet sizes."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of numbers: {text}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be greater than 0: {text}")
    return values


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=sizes, default=list(DEFAULT_SIZES),
                        help="comma list of fleet sizes (default 200,1000)")
    parser.add_argument("--transport", choices=TRANSPORTS, default=TRANSPORTS[0])
    parser.add_argument("--workload", choices=WORKLOAD_NAMES, default=WORKLOAD_NAMES[0])
    parser.add_argument("--connect-rate", type=float, default=500.0)
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds between the whole fleet booted and the measurement")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--top", type=int, default=15, help="rows of the census and of files")
    parser.add_argument("--tracemalloc", action=argparse.BooleanOptionalAction, default=True,
                        help="a second run per size under tracemalloc, for the files")
    parser.add_argument("--objects-every-size", action="store_true",
                        help="walk one charger's objects at every size, not the first only")
    parser.add_argument("--keep", metavar="DIR", help="keep ledgers and logs in DIR")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--objects", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--url", "--label", "--ledger", "--csms-stats", "--workload-json"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:  # one size: the worker's own --chargers
        args.chargers = args.chargers[0]
    return args


def main(argv: list[str] | None = None) -> None:
    """Entry point: one run (two with tracemalloc) per size, then the report."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        worker_main(args)
        return
    limit = raise_open_files_limit()
    if max(args.chargers) + SPARE_FILES > limit:
        sys.exit(f"memory.py: {max(args.chargers)} chargers need more open files than the limit "
                 f"({limit}); raise it with `ulimit -n` or use fewer chargers")
    from ocpp_fleet import WORKLOADS  # type: ignore[import-not-found]

    workload = dataclasses.asdict(WORKLOADS[args.workload])
    command = shlex.join(["python", "tools/bench/memory.py", *argv])
    runs: list[dict[str, Any]] = []
    failed = False
    with contextlib.ExitStack() as stack:
        workdir = (Path(args.keep) if args.keep else
                   Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="memory-"))))
        workdir.mkdir(parents=True, exist_ok=True)
        for index, chargers in enumerate(args.chargers):
            print(f"memory.py: {chargers} chargers ...", file=sys.stderr, flush=True)
            try:
                run = measure(args, workload, workdir, chargers, trace=False,
                              objects=index == 0 or args.objects_every_size)
                if args.tracemalloc:
                    print(f"memory.py: {chargers} chargers under tracemalloc ...",
                          file=sys.stderr, flush=True)
                    traced = measure(args, workload, workdir, chargers, trace=True,
                                     objects=False)
                    run["tracemalloc"] = traced.get("tracemalloc")
            except RuntimeError as error:  # one clear line; the other sizes still run
                print(f"memory.py: {chargers} chargers: {error}", file=sys.stderr, flush=True)
                run, failed = {"chargers": chargers, "error": str(error)}, True
            runs.append(run)
    if args.json:
        print(json.dumps({"command": command, "workload": workload, "runs": runs}))
    else:
        print(render(runs, args, command))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
