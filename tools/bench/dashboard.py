"""Benchmark: what a dashboard open on a large fleet costs the fleet (issue #18's target: under
5% of its exchanges per CPU-second at 10,000 chargers).

A real ``sim start --api 127.0.0.1:0`` process runs the fleet against its own
``loopback_csms.py`` process (a fresh port), on 127.0.0.1 only, and its time is cut into
windows that alternate two modes, ``none`` first and last (``--repeats`` R: ``none``,
``dashboard``, ``none``, ... 2R + 1 windows):

- ``none``: the API serves, nobody asks it anything;
- ``dashboard``: the API serves and a dashboard is open on it (``--client``):
  - ``browser``: Debian's headless chromium (``/usr/bin/chromium``, ``--chromium``), driven by
    Playwright's sync API through ``executable_path`` (no browser is ever downloaded), loading
    the run's own page ``GET /``;
  - ``http``: an HTTP client (httpx) that does what the page does by the API contract: ``GET
    /api/run`` every second; ``/api/chargers/states``, ``/api/stats`` and ``/api/chaos`` every
    2 s; an ``EventSource`` on ``/api/events?kind=`` :data:`EVENT_KINDS` (``--events`` KINDS,
    repeated, for other or more streams: the page as drafted holds two, its list's kinds and
    ``fault,crash``), reopened 3 s after it ends, as a browser's is.

``--layout windows`` (the default) puts every window in one run (one ramp: a 10,000-charger
ramp takes minutes on a busy 2-core machine); ``--layout runs`` gives every window a run of its
own (a client that left something behind cannot weigh on a later ``none`` window).

The client is a process of its own (``dashboard_client.py``, through this script's
``--as-client``), on the CSMS's core when pinning, so none of its CPU is the fleet's. It
counts every answer by path and status (in a browser, the console errors too): a window whose
client got no ``200`` measured an API that turned it away, and the output says so.

The fleet is ``fleet.py``'s (``fleet_sim.sim_fleet_text``: ``--workload`` at ``--pace``,
trio-websocket, ledger on, GC tuning as ``sim start`` does it), but for its sessions' lengths,
spread around the workload's (``--spread``): with one length, sessions that all start in the
ramp end together, and the fleet's rate swings by 3x within minutes (from 600 to 2,000
exchanges/s at 10,000 chargers, pace 10), far more than the 5% to be measured. A run ramps at
``--connect-rate``, waits until the CSMS has seen every BootNotification (at most ``3 N / rate +
30 s``), waits ``--warmup`` s, then for each window: open the client (``dashboard``), settle
``--settle`` s (the window waits for a client still loading, and says so), measure ``--duration``
s, close the client. In each window:

- CPU: user + system time of the simulator's process alone (``/proc/PID/stat``, every thread:
  the ledger writer and hypercorn count, chromium and the client do not);
- exchanges: CallResult frames received in the window, from the run's ledger afterwards
  (``fleet_sim.ledger_figures``; the window's wall-clock bounds mapped onto the run's clock);
  the CSMS's own count of answers in the window is printed beside it as a check;
- exchanges per CPU-second. The cost is ``1 - dashboard / none``: for each ``dashboard`` window
  against the mean of the ``none`` windows around it (the fleet's rate drifts as its sessions,
  started together in the ramp, start and end together; the bracket cancels a steady drift),
  their median the headline; beside it the cost of the two modes' medians, the spread, and the
  dashboard's own CPU in % of a core (a window's CPU beyond what its exchanges cost at its
  bracket's rate), which does not depend on the load the fleet was offered.

The run is then stopped (SIGTERM, as Ctrl-C) and its ledger read; ``dashboard_report.py``
makes the figures and the table (and warns of a window where the fleet was behind its load).

Absolute figures move with whatever else runs on the machine (it is shared, and with autogroup
scheduling a ``nice`` of 0 does not outrank other sessions' work): compare only within one
invocation, where the modes alternate. The measurement is not run under ``nice``.

Usage::

    python tools/bench/dashboard.py                                   # 10,000 chargers, http
    python tools/bench/dashboard.py --client browser                  # the real page
    python tools/bench/dashboard.py --chargers 500 --warmup 5 --settle 5 --duration 10
    python tools/bench/dashboard.py --layout runs --repeats 2         # a run per window
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
        open_loopback_csms,
        pinned,
        positive,
        raise_open_files_limit,
        read_json,
    )

if __package__:
    from .dashboard_client import EVENT_KINDS
    from .dashboard_report import MODES, render, summarize
else:
    from dashboard_client import EVENT_KINDS  # type: ignore[import-not-found,no-redef]
    from dashboard_report import (  # type: ignore[import-not-found,no-redef]
        MODES,
        render,
        summarize,
    )

REPO: Final = BENCH_DIR.parent.parent
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


def spread_sessions(text: str, workload: dict[str, Any], spread: float) -> str:
    """``fleet.py``'s fleet file with its sessions' fixed length ``L`` replaced by the range
    ``L * (1 - spread) .. L * (1 + spread)`` (the same mean): sessions that all start in the
    ramp then end over a stretch of time, not all together, so that the fleet's exchange rate
    settles (``spread`` 0: ``fleet.py``'s fleet as it is)."""
    length = workload["meter_samples_per_transaction"] * workload["meter_interval_s"]
    fixed = f'duration = "{length:g}s"'
    if spread == 0:
        return text
    if text.count(fixed) != 1:
        raise RuntimeError(f"fleet_sim.sim_fleet_text no longer writes {fixed!r}")
    return text.replace(fixed, f'duration = "{length * (1 - spread):g}s..'
                               f'{length * (1 + spread):g}s"')


def open_client(args: argparse.Namespace, base: str, stats: Path, log: Path,
                core: int | None) -> subprocess.Popen[Any]:
    """The dashboard client process on ``base`` (this script with ``--as-client``)."""
    stats.unlink(missing_ok=True)
    with log.open("a", encoding="utf-8") as err:
        return subprocess.Popen(
            [sys.executable, __file__, "--as-client", args.client, "--base", base,
             "--stats", str(stats), "--chromium", args.chromium,
             *(f"--events={kinds}" for kinds in args.events)],
            stdout=subprocess.DEVNULL, stderr=err, preexec_fn=pinned(core))


def measure(args: argparse.Namespace, workload: dict[str, Any], workdir: Path, index: int,
            modes: list[str]) -> list[dict[str, Any]]:
    """One run of the fleet with a window per mode of ``modes`` (in that order: the client is
    opened before a ``dashboard`` window and closed after it); the windows' figures."""
    from fleet_sim import Window, ledger_figures, sim_fleet_text  # type: ignore[import-not-found]

    label = f"{index:02}-{'-'.join(modes) if len(modes) == 1 else 'windows'}"
    ledger = workdir / f"{label}.db"
    for suffix in (".db", ".db-wal", ".db-shm"):
        (workdir / f"{label}{suffix}").unlink(missing_ok=True)
    ramp_bound = RAMP_FACTOR * args.chargers / args.connect_rate + RAMP_SLACK_S
    run: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    windows: list[dict[str, Any]] = []
    began = time.monotonic()
    csms_core = args.cores[1] if args.cores else None
    with open_loopback_csms(workdir, label, workload["heartbeat_interval_s"],
                            csms_core) as (port, stats):
        fleet = workdir / f"{label}.toml"
        spec = argparse.Namespace(  # its duration bounds the run, should this script die
            workload_spec=workload, chargers=args.chargers, connect_rate=args.connect_rate,
            settle=RAMP_FACTOR * args.chargers / args.connect_rate + args.warmup
            + len(modes) * (args.settle + CLIENT_TIMEOUT_S),
            duration=len(modes) * args.duration, label=label, seed=args.seed, ledger=ledger,
            url=f"ws://127.0.0.1:{port}/ocpp", transport="trio-websocket", groups=1)
        fleet.write_text(spread_sessions(sim_fleet_text(spec), workload, args.spread),
                         encoding="utf-8")
        sim, base = start_sim(args, fleet, ledger, workdir / f"{label}.log")
        client: subprocess.Popen[Any] | None = None
        try:
            run["all_booted"] = wait_for(
                lambda: (read_json(stats) or {}).get("by_action", {}).get(
                    "BootNotification", 0) >= args.chargers, ramp_bound, sim, "simulator")
            run["up_after_s"] = round(time.monotonic() - began, 1)
            time.sleep(args.warmup)
            for number, mode in enumerate(modes):
                opened = time.monotonic()
                window: dict[str, Any] = {"run": index, "window": number, "mode": mode}
                client_stats = workdir / f"{label}.{number}.client.json"
                if mode == "dashboard":
                    client = open_client(args, base, client_stats,
                                         workdir / f"{label}.client.log", csms_core)
                    ready = wait_for(client_stats.exists, CLIENT_TIMEOUT_S, client, "client")
                    window["client_ready_s"] = (round(time.monotonic() - opened, 1) if ready
                                                else None)
                time.sleep(max(0.0, opened + args.settle - time.monotonic()))
                window["window_late_s"] = round(
                    max(0.0, time.monotonic() - opened - args.settle), 1)
                csms_before = read_json(stats) or {}
                wall_start, cpu_start = time.time(), process_cpu_s(sim.pid)
                time.sleep(args.duration)
                wall_end, cpu_end = time.time(), process_cpu_s(sim.pid)
                csms_after = read_json(stats) or {}
                if client is not None:
                    stop(client, 30.0)
                    client = None
                    window["client"] = read_json(client_stats)
                window.update({
                    "wall": (wall_start, wall_end), "cpu_s": round(cpu_end - cpu_start, 3),
                    "load": os.getloadavg()[0],
                    "csms_answered_in_window": (csms_after.get("answered", 0)
                                                - csms_before.get("answered", 0))})
                windows.append(window)
        finally:
            if client is not None:
                stop(client, 30.0)
            stopping = time.monotonic()
            run["sim_exit"] = stop(sim, STOP_TIMEOUT_S)
            run["stop_s"] = round(time.monotonic() - stopping, 1)
    for window in windows:
        wall_start, wall_end = window.pop("wall")
        start, end = run_clock(ledger, wall_start, wall_end)
        figures = ledger_figures(ledger, Window(start=start, end=end))
        wall, cpu, exchanges = wall_end - wall_start, window["cpu_s"], figures["exchanges"]
        window.update(run)
        window.update({
            "window_t": [round(start, 3), round(end, 3)],
            "run_s": round(time.monotonic() - began, 1),
            "wall_s": round(wall, 3),
            "cpu_pct": round(100 * cpu / wall, 1),
            "exchanges": exchanges,
            "exchanges_per_s": round(exchanges / wall, 1),
            "exchanges_per_cpu_s": round(exchanges / cpu, 1) if cpu else None,
            **{key: figures[key] for key in ("latency_ms", "connected", "booted", "ramp_s",
                                             "call_errors", "timeouts", "crashes")},
        })
    (workdir / f"{label}.json").write_text(json.dumps(windows) + "\n", encoding="utf-8")
    return windows


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=positive(int), default=10_000)
    parser.add_argument("--connect-rate", type=positive(float), default=250.0,
                        help="new connections per second during the ramp")
    parser.add_argument("--workload", choices=WORKLOAD_NAMES, default=WORKLOAD_NAMES[0])
    parser.add_argument("--pace", type=positive(int), default=10,
                        help="every interval of the workload this many times longer")
    parser.add_argument("--warmup", type=float, default=30.0,
                        help="seconds from the whole fleet booted to the first window's settle")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds from a client opened (or closed) to its window")
    parser.add_argument("--duration", type=positive(float), default=20.0,
                        help="seconds of the measured window")
    parser.add_argument("--repeats", type=positive(int), default=3,
                        help="dashboard windows; each between two none windows (2R + 1 in all)")
    parser.add_argument("--client", choices=("http", "browser"), default="http")
    parser.add_argument("--layout", choices=("windows", "runs"), default="windows",
                        help="windows: one run (one ramp) with the alternated windows in it; "
                             "runs: a run of its own for every window")
    parser.add_argument("--events", action="append", metavar="KINDS",
                        help="(http) the kind filter of an event stream the client holds; "
                             f"repeat for more streams (default: one, {EVENT_KINDS})")
    parser.add_argument("--chromium", default="/usr/bin/chromium",
                        help="the browser for --client browser (Debian's package)")
    parser.add_argument("--spread", type=float, default=0.75,
                        help="session lengths drawn from L*(1-S)..L*(1+S) around the workload's "
                             "L (0: all the same, as fleet.py: they then end together)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=None,
                        help="simulator on the last core, CSMS and client on the one before "
                             "(default: on with two cores or more)")
    parser.add_argument("--keep", metavar="DIR", help="keep ledgers, logs and figures in DIR")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--as-client", choices=("http", "browser"), help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--stats", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.events = args.events or [EVENT_KINDS]
    return args


def main(argv: list[str] | None = None) -> None:
    """Entry point: the alternated runs, then the table (or the client, with ``--as-client``)."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.as_client:
        from dashboard_client import run_client  # type: ignore[import-not-found]

        run_client(args.as_client, args.base, Path(args.stats), args.chromium, args.events)
        return
    # SIGTERM unwinds as Ctrl-C does, so that no simulator, CSMS or client is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
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
        alternated = [MODES[index % 2] for index in range(2 * args.repeats + 1)]
        runs = ([[mode] for mode in alternated] if args.layout == "runs" else [alternated])
        for index, modes in enumerate(runs):
            print(f"dashboard.py: run {index} ({', '.join(modes)}) ...", file=sys.stderr,
                  flush=True)
            try:
                results.extend(measure(args, workload, workdir, index, modes))
            except RuntimeError as error:  # one clear line; the other runs still run
                print(f"dashboard.py: run {index}: {error}", file=sys.stderr, flush=True)
                results.extend({"run": index, "window": number, "mode": mode,
                                "error": str(error)} for number, mode in enumerate(modes))
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
