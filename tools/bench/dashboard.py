"""Benchmark: what a dashboard open on a large fleet costs the fleet (issue #18's target: under
5% of its exchanges per CPU-second at 10,000 chargers).

The same fleet runs several times, alternating two modes (``none``, ``dashboard``, ``none``,
``dashboard``, ...; ``--repeats`` pairs), each run a real ``sim start --api 127.0.0.1:0`` process
against its own ``loopback_csms.py`` process (a fresh port), on 127.0.0.1 only:

- ``none``: the API serves, nobody asks it anything;
- ``dashboard``: the API serves and a dashboard is open on it (``--client``):
  - ``browser``: Debian's headless chromium (``/usr/bin/chromium``, ``--chromium``), driven by
    Playwright's sync API through ``executable_path`` (no browser is ever downloaded), loading
    the run's own page ``GET /``;
  - ``http``: an HTTP client (httpx) that does what the page does by the API contract: ``GET
    /api/run`` every second; ``/api/chargers/states``, ``/api/stats`` and ``/api/chaos`` every
    2 s; one ``EventSource`` on ``/api/events?kind=`` :data:`EVENT_KINDS`, reopened 3 s after it
    ends (as a browser's is).

The client is a process of its own (this script with ``--as-client``), on the CSMS's core when
pinning, so none of its CPU is the fleet's. It counts every answer by path and status (and, in
a browser, the console errors): a window whose client got no ``200`` measured nothing, and the
table says so.

The fleet is ``fleet.py``'s (``fleet_sim.sim_fleet_text``: ``--workload`` at ``--pace``,
trio-websocket, ledger on, GC tuning on as ``sim start`` does it). Every run: ramp at
``--connect-rate``, wait until the CSMS has seen every BootNotification (at most ``N / rate +
30 s``), open the client (``dashboard`` runs), settle ``--settle`` s from the boot (the same in
both modes; the window waits for a client still loading, and says so), then measure a window of
``--duration`` s:

- CPU: user + system time of the simulator's process alone (``/proc/PID/stat``, every thread:
  the ledger writer and hypercorn count, chromium and the client do not);
- exchanges: CallResult frames received in the window, from the run's ledger afterwards
  (``fleet_sim.ledger_figures``; the window's wall-clock bounds mapped onto the run's clock);
  the CSMS's own count of answers in the window is printed beside it as a check;
- exchanges per CPU-second; per mode the median, min and max; the cost is ``1 - dashboard /
  none`` of the medians, and of each alternated pair (the spread).

Then the run is stopped (SIGTERM, as Ctrl-C) and its ledger read. Absolute figures move with
whatever else runs on the machine (it is shared): compare only within one invocation, where the
modes alternate. The measurement is not run under ``nice``.

Usage::

    python tools/bench/dashboard.py                                   # 10,000 chargers, http
    python tools/bench/dashboard.py --client browser                  # the real page
    python tools/bench/dashboard.py --chargers 500 --settle 5 --duration 10 --repeats 1
    python tools/bench/dashboard.py --keep runs/bench-dashboard --json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

if __package__:  # imported by a test (tests/test_bench_dashboard.py: the pure figures)
    from .benchlib import (
        BENCH_DIR,
        RAMP_SLACK_S,
        SPARE_FILES,
        WORKLOAD_NAMES,
        fmt,
        open_loopback_csms,
        pinned,
        positive,
        raise_open_files_limit,
        read_json,
    )
else:  # run as a script: its folder is on sys.path
    from benchlib import (  # type: ignore[import-not-found,no-redef]
        BENCH_DIR,
        RAMP_SLACK_S,
        SPARE_FILES,
        WORKLOAD_NAMES,
        fmt,
        open_loopback_csms,
        pinned,
        positive,
        raise_open_files_limit,
        read_json,
    )

REPO: Final = BENCH_DIR.parent.parent
MODES: Final = ("none", "dashboard")
EVENT_KINDS: Final = "status,connected,disconnected,crash,fault,tx_started,tx_stopped,command"
"""The kinds the dashboard's event stream asks for (the API contract)."""
POLLS: Final = (("/api/run", 1), ("/api/chargers/states", 2), ("/api/stats", 2),
                ("/api/chaos", 2))
"""What the page polls, with its period in seconds (the API contract)."""
SSE_RETRY_S: Final = 3.0
"""How long an ``EventSource`` waits before it reopens a stream that ended."""
START_TIMEOUT_S: Final = 60.0
"""Seconds ``sim start`` gets to say where its API listens."""
CLIENT_TIMEOUT_S: Final = 60.0
"""Seconds a client gets to load the page (or make its first round of requests)."""
STOP_TIMEOUT_S: Final = 180.0
"""Seconds a stopped run gets to write its ledger and report before it is killed."""
RAMP_FACTOR: Final = 3.0
"""The boot wait's bound is ``RAMP_FACTOR * N / rate + RAMP_SLACK_S``: on a busy machine a large
fleet ramps well below the rate asked (a window opened before every charger booted measures the
ramp, and the table says so)."""
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all its threads (not its
    children): fields 14 and 15 of ``/proc/PID/stat``."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wall_iso(moment: float) -> str:
    """Unix seconds as the ledger writes ``wall`` (UTC, microseconds, ``Z``)."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_clock(ledger: Path, wall_start: float, wall_end: float) -> tuple[float, float]:
    """The window ``[wall_start, wall_end)`` (Unix seconds) on the run's own clock (``t``): the
    offset comes from the ledger's first and last events, which carry both."""
    import sqlite3

    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        run_id = conn.execute("SELECT max(id) FROM runs").fetchone()[0]
        rows = conn.execute(
            "SELECT t, wall FROM events WHERE run_id = ? AND seq IN"
            " ((SELECT min(seq) FROM events WHERE run_id = ?),"
            " (SELECT max(seq) FROM events WHERE run_id = ?))",
            (run_id, run_id, run_id)).fetchall()
    finally:
        conn.close()
    offsets = [datetime.strptime(wall, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
               - t for t, wall in rows]
    if not offsets:
        raise RuntimeError(f"the ledger {ledger} has no events")
    offset = statistics.fmean(offsets)
    return wall_start - offset, wall_end - offset


def start_sim(args: argparse.Namespace, fleet: Path, ledger: Path,
              log_path: Path) -> tuple[subprocess.Popen[str], str]:
    """``sim start --api 127.0.0.1:0`` on ``fleet`` (on the fleet's core when pinning); the
    process and its API's base URL. Its stderr goes on to ``log_path``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    log = log_path.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "start", "--toml", str(fleet), "--quiet",
         "--api", "127.0.0.1:0", "--ledger", str(ledger)],
        stdout=log, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        preexec_fn=pinned(args.cores[0] if args.cores else None))
    assert process.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        log.write(line)
        if not line and process.poll() is not None:
            break
        found = re.search(r"dashboard on (http://\S+?)/ ", line)
        if found:
            threading.Thread(target=drain, args=(process.stderr, log), daemon=True).start()
            return process, found.group(1)
    process.kill()
    process.wait()
    log.close()
    raise RuntimeError(f"sim start --api did not serve within {START_TIMEOUT_S:.0f} s; "
                       f"see {log_path}")


def drain(stream: Any, log: Any) -> None:
    """Copy the rest of ``stream`` to ``log`` (so a process never blocks on a full pipe)."""
    for line in stream:
        log.write(line)
    log.close()


def stop(process: subprocess.Popen[Any], timeout: float) -> int | None:
    """SIGTERM ``process`` (a run ends gracefully, as on Ctrl-C) and wait; kill it after
    ``timeout`` s. Its exit code (``None`` when it had to be killed)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None
    return process.returncode


def wait_for(condition: Any, timeout: float, process: subprocess.Popen[Any],
             what: str) -> bool:
    """Poll ``condition()`` every 0.25 s until true (``True``) or ``timeout`` s (``False``);
    fail when ``process`` has ended meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise RuntimeError(f"the {what} process ended early (exit {process.returncode})")
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def measure(args: argparse.Namespace, workload: dict[str, Any], workdir: Path, mode: str,
            index: int) -> dict[str, Any]:
    """One run of the fleet in ``mode``; its figures."""
    from fleet_sim import Window, ledger_figures, sim_fleet_text  # type: ignore[import-not-found]

    label = f"{index:02}-{mode}"
    ledger = workdir / f"{label}.db"
    for suffix in (".db", ".db-wal", ".db-shm"):
        (workdir / f"{label}{suffix}").unlink(missing_ok=True)
    ramp_bound = RAMP_FACTOR * args.chargers / args.connect_rate + RAMP_SLACK_S
    result: dict[str, Any] = {"run": index, "mode": mode, "load_before": os.getloadavg()[0]}
    began = time.monotonic()
    csms_core = args.cores[1] if args.cores else None
    with open_loopback_csms(workdir, label, workload["heartbeat_interval_s"],
                            csms_core) as (port, stats):
        fleet = workdir / f"{label}.toml"
        spec = argparse.Namespace(
            workload_spec=workload, chargers=args.chargers, connect_rate=args.connect_rate,
            settle=args.settle + CLIENT_TIMEOUT_S, duration=args.duration, label=label,
            seed=args.seed, ledger=ledger, url=f"ws://127.0.0.1:{port}/ocpp",
            transport="trio-websocket", groups=1)
        fleet.write_text(sim_fleet_text(spec), encoding="utf-8")
        sim, base = start_sim(args, fleet, ledger, workdir / f"{label}.log")
        client: subprocess.Popen[Any] | None = None
        client_stats = workdir / f"{label}.client.json"
        try:
            booted = wait_for(
                lambda: (read_json(stats) or {}).get("by_action", {}).get(
                    "BootNotification", 0) >= args.chargers, ramp_bound, sim, "simulator")
            up_at = time.monotonic()
            result["all_booted"] = booted
            result["up_after_s"] = round(up_at - began, 1)
            if mode == "dashboard":
                client_stats.unlink(missing_ok=True)
                client = subprocess.Popen(
                    [sys.executable, __file__, "--as-client", args.client, "--base", base,
                     "--stats", str(client_stats), "--chromium", args.chromium],
                    stdout=subprocess.DEVNULL, stderr=(workdir / f"{label}.client.log").open("w"),
                    preexec_fn=pinned(csms_core))
                ready = wait_for(lambda: client_stats.exists(), CLIENT_TIMEOUT_S, client,
                                 "client")
                result["client_ready_s"] = round(time.monotonic() - up_at, 1) if ready else None
            time.sleep(max(0.0, up_at + args.settle - time.monotonic()))
            result["window_late_s"] = round(max(0.0, time.monotonic() - up_at - args.settle), 1)
            csms_before = read_json(stats) or {}
            wall_start, cpu_start = time.time(), process_cpu_s(sim.pid)
            time.sleep(args.duration)
            wall_end, cpu_end = time.time(), process_cpu_s(sim.pid)
            csms_after = read_json(stats) or {}
        finally:
            if client is not None:
                stop(client, 30.0)
            stopping = time.monotonic()
            result["sim_exit"] = stop(sim, STOP_TIMEOUT_S)
            result["stop_s"] = round(time.monotonic() - stopping, 1)
    result["load_after"] = os.getloadavg()[0]
    start, end = run_clock(ledger, wall_start, wall_end)
    figures = ledger_figures(ledger, Window(start=start, end=end))
    wall, cpu = wall_end - wall_start, cpu_end - cpu_start
    exchanges = figures["exchanges"]
    result.update({
        "window_t": [round(start, 3), round(end, 3)],
        "run_s": round(time.monotonic() - began, 1),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cpu_pct": round(100 * cpu / wall, 1),
        "exchanges": exchanges,
        "exchanges_per_s": round(exchanges / wall, 1),
        "exchanges_per_cpu_s": round(exchanges / cpu, 1) if cpu else None,
        "csms_answered_in_window": (csms_after.get("answered", 0)
                                    - csms_before.get("answered", 0)),
        "latency_ms": figures["latency_ms"],
        "connected": figures["connected"],
        "booted": figures["booted"],
        "ramp_s": figures["ramp_s"],
        "call_errors": figures["call_errors"],
        "timeouts": figures["timeouts"],
        "crashes": figures["crashes"],
        "client": read_json(client_stats) if mode == "dashboard" else None,
    })
    (workdir / f"{label}.json").write_text(json.dumps(result) + "\n", encoding="utf-8")
    return result


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per mode the exchanges per CPU-second (median, min, max, every run), and the cost of the
    dashboard: ``1 - dashboard / none`` in percent, of the medians and of each alternated pair
    (run ``2k`` is ``none``, ``2k + 1`` its ``dashboard``)."""
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    for result in results:
        if result.get("exchanges_per_cpu_s") is not None:
            rates[result["mode"]].append(result["exchanges_per_cpu_s"])
    by_mode = {mode: {"runs": values, "median": statistics.median(values),
                      "min": min(values), "max": max(values)}
               for mode, values in rates.items() if values}
    pairs = [100 * (1 - dash["exchanges_per_cpu_s"] / none["exchanges_per_cpu_s"])
             for none, dash in zip(results[0::2], results[1::2], strict=False)
             if none.get("exchanges_per_cpu_s") and dash.get("exchanges_per_cpu_s")]
    cost = (100 * (1 - by_mode["dashboard"]["median"] / by_mode["none"]["median"])
            if len(by_mode) == len(MODES) else None)
    extra = ([100 * (r["cpu_s"] - r["exchanges"] / by_mode["none"]["median"]) / r["wall_s"]
              for r in results if r["mode"] == "dashboard" and r.get("exchanges_per_cpu_s")]
             if "none" in by_mode else [])
    return {"by_mode": by_mode,
            "cost_pct": round(cost, 2) if cost is not None else None,
            "cost_pct_by_pair": [round(value, 2) for value in pairs],
            "dashboard_cpu_pct_of_core": [round(value, 2) for value in extra],
            "clients_answered": all(client_answered(r.get("client")) for r in results
                                    if r["mode"] == "dashboard" and "error" not in r),
            "all_booted": all(r.get("all_booted") for r in results if "error" not in r)}


def client_answered(client: dict[str, Any] | None) -> bool:
    """Whether a dashboard run's client got a ``200`` for each path it polls (``/`` too, in a
    browser): otherwise the run measured a client that the API turned away, not a dashboard."""
    if not client:
        return False
    answers = client.get("answers", {})
    wanted = [path for path, _ in POLLS] + ["/api/events"]
    if client.get("client") == "browser":
        wanted.append("/")
    return all(answers.get(path, {}).get("200") for path in wanted)


def client_line(client: dict[str, Any] | None) -> str:
    """What a dashboard run's client got: answers by path and status, events, errors."""
    if not client:
        return "client: no figures (it did not start or did not stop cleanly)"
    answers = ", ".join(f"{path} {statuses}" for path, statuses in
                        sorted(client.get("answers", {}).items()))
    return (f"client {client.get('client')}: {answers or 'no answers'}; "
            f"events {client.get('events', 0)}, event bytes {client.get('event_bytes', 0):,}"
            + (f"; console errors {len(client['console_errors'])}: "
               f"{client['console_errors'][:3]}" if client.get("console_errors") else ""))


def render(results: list[dict[str, Any]], summary: dict[str, Any], command: str,
           args: argparse.Namespace, workload: dict[str, Any]) -> str:
    """The table, the summary and the command that produced them."""
    pin = (f"simulator on core {args.cores[0]}, CSMS and client on core {args.cores[1]}"
           if args.cores else "not pinned")
    lines = [
        f"$ {command}",
        f"{args.chargers:,} chargers, {workload['name']} at pace {args.pace} "
        f"(~{workload['offered_per_charger_per_s'] * args.chargers:,.0f} exchanges/s offered), "
        f"connect rate {args.connect_rate:g}/s, settle {args.settle:g} s, window "
        f"{args.duration:g} s, client {args.client}; {pin}",
        "",
        "| run | mode | exchanges | exch/s | CPU s | CPU % | exch/CPU-s | CSMS answered | "
        "p50 ms | booted | window late s | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['run']} | {r['mode']} | error: {r['error']} |")
            continue
        lines.append(
            f"| {r['run']} | {r['mode']} | {fmt(r['exchanges'])} | {fmt(r['exchanges_per_s'])} "
            f"| {fmt(r['cpu_s'], 2)} | {fmt(r['cpu_pct'])} | {fmt(r['exchanges_per_cpu_s'])} | "
            f"{fmt(r['csms_answered_in_window'])} | "
            f"{fmt((r['latency_ms'] or {}).get('p50'), 2)} | {fmt(r['booted'])} | "
            f"{fmt(r['window_late_s'])} | {r['load_before']:.2f} |")
    lines.append("")
    for mode, figures in summary["by_mode"].items():
        lines.append(f"{mode}: exchanges per CPU-second median {fmt(figures['median'])}, "
                     f"min {fmt(figures['min'])}, max {fmt(figures['max'])} "
                     f"({len(figures['runs'])} runs)")
    cost = summary["cost_pct"]
    lines.append(f"cost of an open dashboard: {fmt(cost, 2)}% of the exchanges per CPU-second "
                 f"(medians); by pair {summary['cost_pct_by_pair']}; target < 5%: "
                 + ("-" if cost is None else "met" if cost < 5 else "NOT met"))
    lines.append("the dashboard's own CPU in the simulator (its CPU beyond its exchanges at the "
                 f"none median), % of a core, by run: {summary['dashboard_cpu_pct_of_core']}")
    if not summary["clients_answered"]:
        lines.append("WARNING: a client did not get 200 for every path the dashboard uses (see "
                     "below): those runs measured an API that turned it away, not a dashboard")
    if not summary["all_booted"]:
        lines.append("WARNING: in some run not every charger had booted when the window opened "
                     "(booted column): its window measured the ramp")
    for r in results:
        if r["mode"] == "dashboard" and "error" not in r:
            lines.append(f"run {r['run']} {client_line(r.get('client'))}")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=positive(int), default=10_000)
    parser.add_argument("--connect-rate", type=positive(float), default=250.0,
                        help="new connections per second during the ramp")
    parser.add_argument("--workload", choices=WORKLOAD_NAMES, default=WORKLOAD_NAMES[0])
    parser.add_argument("--pace", type=positive(int), default=10,
                        help="every interval of the workload this many times longer")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds from the whole fleet booted to the window")
    parser.add_argument("--duration", type=positive(float), default=30.0,
                        help="seconds of the measured window")
    parser.add_argument("--repeats", type=positive(int), default=2,
                        help="pairs of runs (none, dashboard), alternated")
    parser.add_argument("--client", choices=("http", "browser"), default="http")
    parser.add_argument("--chromium", default="/usr/bin/chromium",
                        help="the browser for --client browser (Debian's package)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=None,
                        help="simulator on the last core, CSMS and client on the one before "
                             "(default: on with two cores or more)")
    parser.add_argument("--keep", metavar="DIR", help="keep ledgers, logs and figures in DIR")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--as-client", choices=("http", "browser"), help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--stats", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Entry point: the alternated runs, then the table (or the client, with ``--as-client``)."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.as_client:
        from dashboard_client import run_client  # type: ignore[import-not-found]

        run_client(args.as_client, args.base, Path(args.stats), args.chromium)
        return
    limit = raise_open_files_limit()
    if args.chargers + SPARE_FILES > limit:
        sys.exit(f"dashboard.py: {args.chargers} chargers need more open files than the limit "
                 f"({limit}); raise it with `ulimit -n`")
    if args.client == "browser" and not os.access(args.chromium, os.X_OK):
        sys.exit(f"dashboard.py: no browser at {args.chromium}: apt-get install chromium")
    cores = sorted(os.sched_getaffinity(0))
    args.cores = (cores[-1], cores[-2]) if (args.pin is not False and len(cores) >= 2) else None
    from ocpp_fleet import WORKLOADS  # type: ignore[import-not-found]  # this directory

    paced = WORKLOADS[args.workload].paced(args.pace)
    workload: dict[str, Any] = dataclasses.asdict(paced)
    workload["offered_per_charger_per_s"] = round(paced.offered_per_charger(), 3)
    command = shlex.join(["python", "tools/bench/dashboard.py", *argv])
    results: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        if args.keep:
            workdir = Path(args.keep)
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        for index in range(2 * args.repeats):
            mode = MODES[index % 2]
            print(f"dashboard.py: run {index} ({mode}) ...", file=sys.stderr, flush=True)
            try:
                results.append(measure(args, workload, workdir, mode, index))
            except RuntimeError as error:  # one clear line; the other runs still run
                print(f"dashboard.py: run {index}: {error}", file=sys.stderr, flush=True)
                results.append({"run": index, "mode": mode, "error": str(error)})
    summary = summarize(results)
    if args.json:
        print(json.dumps({"command": command, "workload": workload, "results": results,
                          "summary": summary}))
    else:
        print(render(results, summary, command, args, workload))
    if any("error" in result for result in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
