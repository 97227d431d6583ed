"""The sim worker of ``fleet.py``: one of our fleets, in a process of its own, measured from
inside.

``fleet.py`` starts it once per sim fleet (``sim``, ``sim-websockets``, ``sim-nogc``) with the
loopback CSMS's URL and stats file and the workload as JSON. It writes the workload as a fleet
file (:func:`sim_fleet_text`: the transport as ``[csms] transport``), runs
``simulator.runtime.run_simulation`` (``live=False``, ledger on) with a sampler beside it that
waits until the CSMS has seen every BootNotification, settles, measures the window (process CPU,
RSS, GC pauses, event-loop lag, optionally a pyinstrument profile) and then ends the run with
SIGTERM to its own process, as Ctrl-C would. The exchanges and latencies (all and by action) come
from the ledger afterwards. The results are one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from benchlib import (  # type: ignore[import-not-found]  # this directory, run as a script
    RAMP_SLACK_S,
    TRANSPORTS,
    cpu_seconds,
    percentiles,
    proc_status_kib,
    raise_open_files_limit,
    read_json,
)

GRACE_S: Final = 2.0
"""Graceful end of a ``sim`` run: seconds for the queues (the window is already closed)."""
POLL_S: Final = 0.25
LAG_PROBE_S: Final = 0.01
"""Period of the event-loop lag probe: how late a ``trio.sleep`` of this length wakes up."""


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
    """Run our fleet as ``args`` say, print the results as one JSON line."""
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



def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line ``fleet.py`` gives the worker."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("--url", "--ledger", "--csms-stats", "--workload-json"):
        parser.add_argument(name, required=True)
    parser.add_argument("--label", default="sim")
    parser.add_argument("--chargers", type=int, required=True)
    parser.add_argument("--connect-rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--settle", type=float, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--gc", choices=["on", "off"], default="on")
    parser.add_argument("--transport", choices=TRANSPORTS, default=TRANSPORTS[0])
    parser.add_argument("--profile", metavar="FILE")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sim_worker_main(parse_args(sys.argv[1:]))
