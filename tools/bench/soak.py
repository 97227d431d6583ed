"""Soak (issue #14): a large fleet for a long time against the reference central system, a fault
every minute; does memory stay flat, and is nothing lost? Not in CI: run it by hand.

Two processes on 127.0.0.1, both started and stopped here:

- the central system: ``tests/interop/peer_csms.py``, built on the PyPI ``ocpp`` package
  (schema validation on), which records every frame it receives and every transaction id it
  gives out and sees stopped, flushed line by line. Halfway through (``--csms-restart``, on by
  default) it is killed (SIGKILL) and started again on the same port ``--csms-down`` seconds
  later, appending to the same record;
- the simulator: ``soak_sim.py`` (``simulator.open_simulation``, ledger on), with a fault every
  ``--fault-every`` seconds on 1-5% of the fleet (``--share``), in a seeded rotation: connection
  reset, hard and soft reboot, connector fault, unplug, stop (``soak_sim.py`` says what each
  does).

The workload is one of ``fleet.py``'s (``--workload``) with every interval ``--pace`` times
longer, so that the ``ocpp`` package's central system serves the whole fleet without falling
behind. Every ``--sample`` seconds the simulator process's RSS (``/proc/PID/status`` VmRSS), open
file descriptors (``/proc/PID/fd``), CPU time, the ledger's size (SQLite's page count, and the
bytes on disk of the file and its ``-wal``), the chargers connected and the memory blocks
Python has allocated (``sys.getallocatedblocks``: objects, not SQLite's cache or the
allocator's free pages; written by the simulator every second), and the central system's RSS
and CPU time are sampled. After the run the figures of ``soak_figures.py`` are computed (RSS
and open files growth after the warm-up, the central system's record against the ledger), a
table is printed and everything is written to ``OUT/soak.json`` (with the ledger, the record,
the fault log and the logs beside it). Exit status 1 when a target is missed:

- RSS growth after the warm-up under ``--rss-target`` % (5);
- open files growth at most ``--fd-slack`` (default 16 + 1% of the chargers);
- transactions lost: 0; charger crashes in the ledger: 0; the simulator exited cleanly.

Usage::

    python tools/bench/soak.py                          # 2,000 chargers, 30 minutes
    python tools/bench/soak.py --chargers 200 --minutes 3 --fault-every 20 --out runs/soak-short

Ctrl-C stops both processes (the simulator ends its run gracefully) and exits 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

from benchlib import (  # type: ignore[import-not-found]  # this directory, run as a script
    BENCH_DIR,
    READY_TIMEOUT_S,
    SPARE_FILES,
    TRANSPORTS,
    WORKLOAD_NAMES,
    positive,
    raise_open_files_limit,
    read_json,
    stop_process,
)
from soak_figures import (  # type: ignore[import-not-found]
    TRANSACTION_ACTIONS,
    CsmsSide,
    LedgerSide,
    account,
    growth,
    iter_json_lines,
    message_key,
)
from soak_report import render  # type: ignore[import-not-found]

PEER_CSMS: Final = BENCH_DIR.parent.parent / "tests" / "interop" / "peer_csms.py"
SOAK_SIM: Final = BENCH_DIR / "soak_sim.py"
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
RUN_SLACK_S: Final = 120.0
"""Bound on the simulator's start-up and end beyond its run, ramp and grace (seconds)."""


@dataclasses.dataclass
class Csms:
    """The central system process of the run (replaced when it is restarted)."""

    port: int
    process: subprocess.Popen[bytes]


def start_csms(out: Path, port: int, heartbeat_s: float, log_name: str) -> Csms:
    """Start ``peer_csms.py`` on ``port`` (0: any) appending to ``OUT/csms.jsonl``; wait for it
    to listen when ``port`` is 0 (its port is needed), not otherwise."""
    ready = out / "csms.port"
    ready.unlink(missing_ok=True)
    with (out / log_name).open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, str(PEER_CSMS), "--host", "127.0.0.1", "--port", str(port),
             "--record", str(out / "csms.jsonl"), "--ready", str(ready),
             "--heartbeat", str(max(1, round(heartbeat_s)))],
            stdout=log, stderr=subprocess.STDOUT)
    if port:
        return Csms(port, process)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(f"the central system did not start; see {out / log_name}")
        time.sleep(0.05)
    return Csms(int(ready.read_text().strip()), process)


def proc_figures(pid: int) -> tuple[int | None, int | None, float | None]:
    """(VmRSS KiB, open file descriptors, CPU seconds) of process ``pid`` (``None`` each where
    unreadable: the process has ended)."""
    rss = fds = cpu = None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            rss = next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")),
                       None)
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    except (OSError, ValueError, IndexError):
        pass
    return rss, fds, cpu


def ledger_bytes(path: Path) -> int | None:
    """The ledger's size as SQLite sees it (pages x page size, what its WAL holds included);
    ``None`` before it exists or while it cannot be read."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        try:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            size: int = pages * conn.execute("PRAGMA page_size").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return size


def sample(t: float, sim: subprocess.Popen[bytes], csms: Csms, out: Path) -> dict[str, Any]:
    """One sample of the run, ``t`` seconds after the simulator started."""
    rss, fds, cpu = proc_figures(sim.pid)
    csms_rss, _, csms_cpu = proc_figures(csms.process.pid)
    disk = sum(path.stat().st_size for path in (out / "soak.db", out / "soak.db-wal")
               if path.exists())
    stats = read_json(out / "sim.stats.json") or {}
    return {"t": round(t, 1), "wall": round(time.time(), 1), "rss_kib": rss, "fds": fds,
            "cpu_s": cpu, "py_blocks": stats.get("py_blocks"),
            "ledger_bytes": ledger_bytes(out / "soak.db"), "ledger_disk_bytes": disk,
            "connected": stats.get("chargers_connected"),
            "in_transaction": stats.get("chargers_in_transaction"),
            "csms_rss_kib": csms_rss, "csms_cpu_s": csms_cpu}


def run(args: argparse.Namespace, workload: dict[str, Any], out: Path) -> dict[str, Any]:
    """Both processes, the samples and the central system's restart; what the run produced
    (``samples``, ``csms_restarts``, ``sim_result``, ``sim_exit``, ``error``)."""
    duration = args.minutes * 60.0
    csms = start_csms(out, 0, workload["heartbeat_interval_s"], "csms.log")
    samples: list[dict[str, Any]] = []
    restarts: list[dict[str, Any]] = []
    error: str | None = None
    sim_log = (out / "sim.log").open("w", encoding="utf-8")
    sim = subprocess.Popen(
        [sys.executable, str(SOAK_SIM), "--url", f"ws://127.0.0.1:{csms.port}/ocpp",
         "--ledger", str(out / "soak.db"), "--faults", str(out / "faults.jsonl"),
         "--stats", str(out / "sim.stats.json"), "--workload-json", json.dumps(workload),
         "--transport", args.transport, "--chargers", str(args.chargers),
         "--connect-rate", f"{args.connect_rate:g}", "--duration", f"{duration:g}",
         "--fault-every", f"{args.fault_every:g}", "--share", *(f"{s:g}" for s in args.share),
         "--grace", f"{args.grace:g}", "--seed", str(args.seed)],
        stdout=subprocess.PIPE, stderr=sim_log)
    t0 = time.monotonic()
    bound = duration + args.chargers / args.connect_rate + args.grace + RUN_SLACK_S
    kill_at = t0 + duration / 2 if args.csms_restart else float("inf")
    start_at = float("inf")
    next_sample = t0
    try:
        while sim.poll() is None:
            now = time.monotonic()
            if now - t0 > bound:
                error = f"the simulator ran over {bound:.0f} s; stopped"
                stop_process(sim)
                break
            if now >= kill_at:
                csms.process.kill()
                csms.process.wait()
                restarts.append({"t": round(now - t0, 1), "fault": "csms-restart",
                                 "down_s": args.csms_down})
                kill_at, start_at = float("inf"), now + args.csms_down
            if now >= start_at:
                csms = start_csms(out, csms.port, workload["heartbeat_interval_s"],
                                  "csms-restarted.log")
                start_at = float("inf")
            if now >= next_sample:
                samples.append(sample(now - t0, sim, csms, out))
                next_sample += args.sample
            time.sleep(max(0.05, min(next_sample, kill_at, start_at, now + 1.0)
                           - time.monotonic()))
        stdout, _ = sim.communicate()
    finally:
        if sim.poll() is None:
            stop_process(sim)
        stop_process(csms.process)
        sim_log.close()
    if csms.process.returncode not in (0, -signal.SIGTERM):
        error = error or f"the central system exited with {csms.process.returncode}"
    lines = [line for line in stdout.decode().splitlines() if line.startswith("{")]
    if error is None and (sim.returncode != 0 or not lines):
        tail = (out / "sim.log").read_text(errors="replace").strip().splitlines()[-3:]
        error = f"the simulator exited with {sim.returncode}: " + " | ".join(tail)
    return {"samples": samples, "csms_restarts": restarts, "sim_exit": sim.returncode,
            "sim_result": json.loads(lines[-1]) if lines else None, "error": error}


def csms_side(path: Path) -> tuple[CsmsSide, Counter[str]]:
    """The central system's record, and how many records of each kind it holds."""
    side, kinds = CsmsSide(), Counter[str]()
    with path.open(encoding="utf-8") as file:
        for record in iter_json_lines(file):
            kinds[str(record.get("kind"))] += 1
            side.add(record)
    return side, kinds


def ledger_side(path: Path) -> tuple[LedgerSide, dict[str, Any]]:
    """The ledger's transaction messages (``LedgerSide``), and the run's status, crashes and
    event counts."""
    actions = tuple(sorted(TRANSACTION_ACTIONS))
    marks = ",".join("?" * len(actions))
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        run_id, status, exit_code = conn.execute(
            "SELECT id, status, exit_code FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        acked = dict(((charger, unique_id), action) for charger, unique_id, action in conn.execute(
            "SELECT charger, json_extract(data, '$.unique_id'), json_extract(data, '$.action')"
            " FROM events WHERE run_id = ? AND kind = 'frame_in'"
            " AND json_extract(data, '$.message_type') = 3"
            " AND coalesce(json_array_length(data, '$.violations'), 0) = 0"
            f" AND json_extract(data, '$.action') IN ({marks})", (run_id, *actions)))
        sent: set[int] = set()
        acked_keys: set[int] = set()
        for charger, unique_id, raw in conn.execute(
                "SELECT charger, json_extract(data, '$.unique_id'), json_extract(data, '$.raw')"
                " FROM events WHERE run_id = ? AND kind = 'frame_out'"
                " AND json_extract(data, '$.message_type') = 2"
                f" AND json_extract(data, '$.action') IN ({marks})", (run_id, *actions)):
            frame = json.loads(raw)
            key = message_key(charger, frame[2], frame[3])
            sent.add(key)
            if (charger, unique_id) in acked:
                acked_keys.add(key)
        queued: set[int] = set()
        queued_stops: set[int] = set()
        for charger, entry_text in conn.execute("SELECT charger, entry FROM outbox"):
            entry = json.loads(entry_text)
            payload = json.loads(entry["payload"])
            queued.add(message_key(charger, entry["action"], payload))
            if entry["action"] == "StopTransaction":
                stop_id = entry.get("transaction_id") or payload.get("transactionId")
                if isinstance(stop_id, int):
                    queued_stops.add(stop_id)
        dropped = conn.execute(
            "SELECT count(*) FROM events WHERE run_id = ? AND kind = 'message_dropped'"
            f" AND json_extract(data, '$.action') IN ({marks})", (run_id, *actions)).fetchone()[0]
        kinds = dict(conn.execute(
            "SELECT kind, count(*) FROM events WHERE run_id = ? GROUP BY kind", (run_id,)))
    finally:
        conn.close()
    side = LedgerSide(acked=acked, acked_keys=frozenset(acked_keys), sent_keys=frozenset(sent),
                      queued_keys=frozenset(queued), queued_stop_ids=frozenset(queued_stops),
                      dropped=dropped)
    return side, {"run_id": run_id, "status": status, "exit_code": exit_code,
                  "crashes": kinds.get("crash", 0), "events": sum(kinds.values()),
                  "events_by_kind": kinds}


def series(samples: list[dict[str, Any]], field: str) -> list[tuple[float, float | None]]:
    """``(t, value)`` of one sampled field."""
    return [(s["t"], s[field]) for s in samples]


def figures(args: argparse.Namespace, ran: dict[str, Any], out: Path) -> dict[str, Any]:
    """Everything the table and the JSON say, and the verdicts."""
    run_s = args.minutes * 60.0
    warmup = args.warmup if args.warmup is not None else run_s / 6
    samples = ran["samples"]
    rss = growth(series(samples, "rss_kib"), run_s, warmup)
    fds = growth(series(samples, "fds"), run_s, warmup)
    blocks = growth(series(samples, "py_blocks"), run_s, warmup)
    faults: list[dict[str, Any]] = []
    if (out / "faults.jsonl").exists():
        with (out / "faults.jsonl").open(encoding="utf-8") as file:
            faults = list(iter_json_lines(file))
    result: dict[str, Any] = {"warmup_s": warmup, "rss": dataclasses.asdict(rss),
                              "fds": dataclasses.asdict(fds),
                              "py_blocks": dataclasses.asdict(blocks), "faults": faults,
                              "csms_restarts": ran["csms_restarts"]}
    ledger_path, record_path = out / "soak.db", out / "csms.jsonl"
    if ledger_path.exists() and record_path.exists():
        csms, kinds = csms_side(record_path)
        ledger, run = ledger_side(ledger_path)
        accounting = account(csms, ledger)
        result |= {"accounting": {**dataclasses.asdict(accounting), "lost": accounting.lost},
                   "csms_records": dict(kinds), "ledger_run": run}
    slack = args.fd_slack if args.fd_slack is not None else 16 + args.chargers // 100
    lost = result.get("accounting", {}).get("lost")
    crashes = result.get("ledger_run", {}).get("crashes")
    result["verdicts"] = {
        f"RSS growth after warm-up < {args.rss_target:g}%":
            rss.percent is not None and rss.percent < args.rss_target,
        f"open files growth <= {slack}": fds.delta is not None and fds.delta <= slack,
        "transactions lost = 0": lost == 0,
        "charger crashes = 0": crashes == 0,
        "simulator ended cleanly": ran["error"] is None,
    }
    return result


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=positive(int), default=2000)
    parser.add_argument("--minutes", type=positive(float), default=30.0)
    parser.add_argument("--fault-every", type=positive(float), default=60.0, metavar="S")
    parser.add_argument("--share", type=float, nargs=2, default=(0.01, 0.05),
                        metavar=("LOW", "HIGH"),
                        help="each fault hits a share of the fleet drawn between these")
    parser.add_argument("--sample", type=positive(float), default=10.0, metavar="S")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workload", choices=WORKLOAD_NAMES, default=WORKLOAD_NAMES[0])
    parser.add_argument("--pace", type=positive(int), default=10,
                        help="every interval of the workload this many times longer")
    parser.add_argument("--transport", choices=TRANSPORTS, default=TRANSPORTS[0])
    parser.add_argument("--connect-rate", type=positive(float), default=100.0)
    parser.add_argument("--grace", type=positive(float), default=30.0,
                        help="seconds queued messages get at the end of the run")
    parser.add_argument("--warmup", type=float, default=None, metavar="S",
                        help="seconds before growth is measured (default: a sixth of the run)")
    parser.add_argument("--rss-target", type=positive(float), default=5.0, metavar="PCT")
    parser.add_argument("--fd-slack", type=int, default=None, metavar="N")
    parser.add_argument("--csms-restart", action=argparse.BooleanOptionalAction, default=True,
                        help="kill the central system halfway and start it again")
    parser.add_argument("--csms-down", type=positive(float), default=5.0, metavar="S")
    parser.add_argument("--out", default="runs/soak", metavar="DIR")
    return parser.parse_args(argv)


def usage_error(message: str) -> None:
    """One line on stderr, exit code 2."""
    print(f"soak.py: {message}", file=sys.stderr)
    sys.exit(2)


def prepare(args: argparse.Namespace) -> Path:
    """Check the settings, empty the files of an earlier run from ``--out``; the directory."""
    run_s = args.minutes * 60.0
    warmup = args.warmup if args.warmup is not None else run_s / 6
    if not 0 <= warmup < run_s:
        usage_error(f"--warmup ({warmup:g} s) must be shorter than the run ({run_s:g} s)")
    low, high = args.share
    if not 0 < low <= high <= 1:
        usage_error(f"--share needs 0 < LOW <= HIGH <= 1, got {low:g} {high:g}")
    limit = raise_open_files_limit()
    if args.chargers + SPARE_FILES > limit:
        usage_error(f"{args.chargers} chargers need more open files than the limit ({limit}); "
                    "raise it with `ulimit -n` or use fewer chargers")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("soak.db", "soak.db-wal", "soak.db-shm", "csms.jsonl", "faults.jsonl",
                 "sim.stats.json", "soak.json"):
        (out / name).unlink(missing_ok=True)
    return out


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM handler: stop as on Ctrl-C (the children are stopped on the way out)."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the soak, print the table, write ``OUT/soak.json``."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with it ignored
    signal.signal(signal.SIGTERM, interrupt)
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    out = prepare(args)
    from ocpp_fleet import WORKLOADS  # type: ignore[import-not-found]  # this directory

    paced = WORKLOADS[args.workload].paced(args.pace)
    workload: dict[str, Any] = dataclasses.asdict(paced)
    command = shlex.join(["python", "tools/bench/soak.py", *argv])
    print(f"soak.py: {args.chargers:,} chargers for {args.minutes:g} min; files in {out}",
          file=sys.stderr, flush=True)
    try:
        ran = run(args, workload, out)
    except KeyboardInterrupt:
        print("soak.py: interrupted; both processes stopped", file=sys.stderr)
        sys.exit(130)
    except RuntimeError as error:
        print(f"soak.py: {error}", file=sys.stderr)
        sys.exit(1)
    result = {"command": command,
              "settings": {**vars(args), "workload_name": args.workload, "workload": workload},
              "run": {k: v for k, v in ran.items() if k != "csms_restarts"},
              **figures(args, ran, out)}
    (out / "soak.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(render(result))
    if not all(result["verdicts"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
