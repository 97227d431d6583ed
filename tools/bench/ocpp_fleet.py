"""The peer fleet for benchmarks: N chargers x 2 connectors written with the PyPI ``ocpp`` package.

Our simulator's fleet is measured against this one, in the same run, on the same machine, against
the same central system (``tools/bench/loopback_csms.py``). Each charger is an ``ocpp.v16``
``ChargePoint`` on a ``websockets`` (asyncio) client connection, used the way the package's own
examples use it (schema validation on, default thread-pool validation), with pings and compression
off so both fleets put the same bytes on the wire. The workload is fixed by the constants below
(``WORKLOADS``); ``tools/bench/fleet.py`` runs the same one with our simulator:

- connect ``BENCH-{n:05}`` at ``--connect-rate`` per second, BootNotification, then one
  StatusNotification (Available) per connector;
- per charger: a Heartbeat every ``heartbeat_interval_s``;
- per connector, forever: Authorize, StartTransaction, ``meter_samples_per_transaction``
  MeterValues ``meter_interval_s`` apart, StopTransaction, ``idle_between_transactions_s`` idle.
  The first cycle starts after a seeded random offset so connectors do not march in step.

Two workloads (``--workload``, :data:`WORKLOADS`), both 2 connectors and 10 meter samples per
transaction with 2 s between transactions:

- ``meter-2s`` (the default): MeterValues every 2 s, Heartbeat every 5 s, the workload of issue
  #13's performance table: about 1.4 exchanges/s per charger, which the ``ocpp``-package fleet
  served at 1,000 chargers without saturating there;
- ``meter-1s``: MeterValues every second, Heartbeat every 10 s, the workload of issue #4: about
  2.3 exchanges/s per charger; issue #13 found it saturates the ``ocpp``-package fleet at 1,000
  chargers, and an overloaded peer flatters the ratio.

Sleeps aim at deadlines, so a fleet that falls behind shows up as fewer exchanges. ``--pace K``
makes every interval K times longer (1/K of the exchanges per charger): a fleet of 10,000
chargers then asks for a load it can serve instead of ten times too much.

Usage::

    python tools/bench/ocpp_fleet.py --url ws://127.0.0.1:PORT/ocpp --chargers 1000 \\
        --connect-rate 200 --duration 30 --json [--workload meter-1s]

The run stops by itself after ``--duration`` seconds (counted from the first connect); only
exchanges completed inside that window count. With ``--settle S`` the window opens instead ``S``
seconds after the whole fleet has booted (or once the ramp had ample time: ``--chargers /
--connect-rate + RAMP_SLACK_S``) and lasts ``--duration`` seconds: steady state only, as
``tools/bench/fleet.py`` measures it. It prints one JSON object (``--json``) or a short text
summary: exchanges completed (request/response pairs), wall and CPU seconds of this process in the
window, RSS per charger once the fleet is up, max RSS, the connect rate achieved, the time to get
the whole fleet booted, latency percentiles (all exchanges and by action), failures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import random
import resource
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from benchlib import percentiles  # type: ignore[import-not-found]  # this directory, as a script
from ocpp.exceptions import OCPPError  # type: ignore[import-untyped]
from ocpp.v16 import ChargePoint, call  # type: ignore[import-untyped]
from ocpp.v16.enums import (  # type: ignore[import-untyped]
    ChargePointErrorCode,
    ChargePointStatus,
    Reason,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

# ---- the workloads (shared with tools/bench/fleet.py) ----------------------------------------
CONNECTORS: Final = 2
METER_SAMPLES_PER_TRANSACTION: Final = 10
IDLE_BETWEEN_TRANSACTIONS_S: Final = 2.0
ENERGY_PER_SAMPLE_WH: Final = 3
ID_TAG: Final = "TAG-1"
VENDOR: Final = "BenchVendor"
MODEL: Final = "BenchModel"
IDENTITY_FORMAT: Final = "BENCH-{n:05}"
RESPONSE_TIMEOUT_S: Final = 30
# -----------------------------------------------------------------------------------------------

SUBPROTOCOL: Final = Subprotocol("ocpp1.6")
CLOSE_TIMEOUT_S: Final = 2.0
TEARDOWN_BOUND_S: Final = 10.0
TEARDOWN_RETRY_S: Final = 0.5
"""Seconds between two rounds of cancellation in the teardown."""
RAMP_SLACK_S: Final = 30.0
"""With ``--settle``: seconds beyond the nominal ramp after which the window opens anyway."""


@dataclass(frozen=True)
class Workload:
    """A benchmark workload as one record (printed with the results, importable by others)."""

    name: str
    heartbeat_interval_s: float
    meter_interval_s: float
    connectors: int = CONNECTORS
    meter_samples_per_transaction: int = METER_SAMPLES_PER_TRANSACTION
    idle_between_transactions_s: float = IDLE_BETWEEN_TRANSACTIONS_S
    energy_per_sample_wh: int = ENERGY_PER_SAMPLE_WH
    id_tag: str = ID_TAG
    identity_format: str = IDENTITY_FORMAT
    response_timeout_s: int = RESPONSE_TIMEOUT_S

    def paced(self, pace: int) -> Workload:
        """The same workload with every interval ``pace`` times longer (heartbeats, meter
        samples, the idle gap between transactions): 1/``pace`` of the exchanges per charger,
        so that a large fleet can be offered a load it can serve."""
        return replace(self, heartbeat_interval_s=self.heartbeat_interval_s * pace,
                       meter_interval_s=self.meter_interval_s * pace,
                       idle_between_transactions_s=self.idle_between_transactions_s * pace)

    def offered_per_charger(self) -> float:
        """Exchanges per second one charger of this workload asks for (ocpp fleet's mix: our
        chargers add the status changes of each session)."""
        cycle_s = (self.meter_samples_per_transaction * self.meter_interval_s
                   + self.idle_between_transactions_s)
        per_cycle = self.meter_samples_per_transaction + 3  # Authorize, Start, Stop
        return self.connectors * per_cycle / cycle_s + 1.0 / self.heartbeat_interval_s


WORKLOADS: Final = {
    "meter-2s": Workload("meter-2s", heartbeat_interval_s=5.0, meter_interval_s=2.0),
    "meter-1s": Workload("meter-1s", heartbeat_interval_s=10.0, meter_interval_s=1.0),
}
"""The workloads by name (see the module docstring); the first is the default."""
DEFAULT_WORKLOAD: Final = "meter-2s"


@dataclass
class FleetStats:
    """Counters of the whole fleet; only exchanges completed while ``counting`` are counted."""

    counting: bool = True
    exchanges: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    latencies_by_action_s: dict[str, list[float]] = field(default_factory=dict)
    call_errors: int = 0
    timeouts: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    connect_latencies_s: list[float] = field(default_factory=list)
    connected_at: list[float] = field(default_factory=list)
    booted: int = 0
    last_boot_at: float | None = None
    fleet_size: int = 0
    fleet_up: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once ``booted`` reaches ``fleet_size``."""
    session_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    """The heartbeat and connector tasks alive now (for the teardown, see :func:`cancel_all`)."""


def utc_now() -> str:
    """The current UTC time as RFC 3339 with ``Z``."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def exchange(charge_point: Any, request: Any, stats: FleetStats) -> Any | None:
    """One request/response pair through the package; returns the answer, or ``None`` after a
    CALLERROR (or an answer the package refused) or a timeout. ``ConnectionClosed`` propagates."""
    started = time.perf_counter()
    try:
        answer = await charge_point.call(request, suppress=False)
    except TimeoutError:
        if stats.counting:
            stats.timeouts += 1
        return None
    except OCPPError:
        if stats.counting:
            stats.call_errors += 1
        return None
    if stats.counting:
        stats.exchanges += 1
        action = type(request).__name__
        latency = time.perf_counter() - started
        stats.by_action[action] += 1
        stats.latencies_s.append(latency)
        stats.latencies_by_action_s.setdefault(action, []).append(latency)
    return answer


async def sleep_until(deadline: float) -> None:
    """Sleep until the event loop's clock reaches ``deadline`` (no-op if it has)."""
    await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))


async def run_heartbeats(charge_point: Any, first_at: float, stats: FleetStats,
                         workload: Workload) -> None:
    """Heartbeat at ``first_at`` and every ``heartbeat_interval_s`` after; runs until
    cancelled or the connection closes."""
    deadline = first_at
    while True:
        await sleep_until(deadline)
        await exchange(charge_point, call.Heartbeat(), stats)
        deadline += workload.heartbeat_interval_s


async def run_connector(
    charge_point: Any, connector_id: int, first_at: float, stats: FleetStats, workload: Workload
) -> None:
    """Transactions on one connector, back to back with an idle gap; runs until cancelled or
    the connection closes. The meter register only grows."""
    loop = asyncio.get_running_loop()
    meter_wh = 0
    await sleep_until(first_at)
    while True:
        started = None
        if await exchange(charge_point, call.Authorize(id_tag=ID_TAG), stats) is not None:
            started = await exchange(charge_point, call.StartTransaction(
                connector_id=connector_id, id_tag=ID_TAG, meter_start=meter_wh,
                timestamp=utc_now()), stats)
        if started is not None:
            transaction_id = started.transaction_id
            sample_at = loop.time()
            for _ in range(workload.meter_samples_per_transaction):
                sample_at += workload.meter_interval_s
                await sleep_until(sample_at)
                meter_wh += ENERGY_PER_SAMPLE_WH
                await exchange(charge_point, call.MeterValues(
                    connector_id=connector_id, transaction_id=transaction_id,
                    meter_value=[{"timestamp": utc_now(), "sampled_value": [{
                        "value": str(meter_wh), "context": "Sample.Periodic",
                        "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]), stats)
            await exchange(charge_point, call.StopTransaction(
                meter_stop=meter_wh, timestamp=utc_now(), transaction_id=transaction_id,
                reason=Reason.local), stats)
        await asyncio.sleep(workload.idle_between_transactions_s)


async def run_session(charge_point: Any, rng: random.Random, stats: FleetStats,
                      workload: Workload) -> None:
    """Boot, announce the connectors, then run heartbeats and connectors until cancelled;
    returns when the boot fails or the connection closes."""
    loop = asyncio.get_running_loop()
    boot = await exchange(charge_point, call.BootNotification(
        charge_point_vendor=VENDOR, charge_point_model=MODEL), stats)
    if boot is None or boot.status != "Accepted":
        return
    stats.booted += 1
    stats.last_boot_at = loop.time()
    if stats.booted >= stats.fleet_size:
        stats.fleet_up.set()
    try:
        for connector_id in range(1, workload.connectors + 1):
            await exchange(charge_point, call.StatusNotification(
                connector_id=connector_id, error_code=ChargePointErrorCode.no_error,
                status=ChargePointStatus.available, timestamp=utc_now()), stats)
        now = loop.time()
        async with asyncio.TaskGroup() as group:
            children = [group.create_task(run_heartbeats(
                charge_point, now + rng.uniform(0, workload.heartbeat_interval_s), stats,
                workload))]
            for connector_id in range(1, workload.connectors + 1):
                children.append(group.create_task(run_connector(
                    charge_point, connector_id,
                    now + rng.uniform(0, workload.idle_between_transactions_s), stats,
                    workload)))
            for child in children:
                stats.session_tasks.add(child)
                child.add_done_callback(stats.session_tasks.discard)
    except* ConnectionClosed:
        if stats.counting:
            stats.disconnects += 1


async def run_charger(url: str, index: int, start_at: float, seed: int,
                      stats: FleetStats, workload: Workload) -> None:
    """Connect charger ``index`` at ``start_at`` (loop clock) and run its session; the
    connection is closed when the session ends or the task is cancelled."""
    loop = asyncio.get_running_loop()
    identity = IDENTITY_FORMAT.format(n=index)
    rng = random.Random(f"{seed}/{identity}")
    await sleep_until(start_at)
    connecting = loop.time()
    try:
        async with connect(
            f"{url.rstrip('/')}/{identity}", subprotocols=[SUBPROTOCOL], compression=None,
            ping_interval=None, open_timeout=RESPONSE_TIMEOUT_S, close_timeout=CLOSE_TIMEOUT_S,
        ) as connection:
            stats.connected_at.append(loop.time())
            stats.connect_latencies_s.append(loop.time() - connecting)
            charge_point = ChargePoint(identity, connection, response_timeout=RESPONSE_TIMEOUT_S)
            reader = asyncio.create_task(charge_point.start())
            try:
                await run_session(charge_point, rng, stats, workload)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await reader
    except (OSError, InvalidHandshake, TimeoutError):
        if stats.counting:
            stats.connect_failures += 1
    except ConnectionClosed:
        if stats.counting:
            stats.disconnects += 1


async def cancel_all(tasks: list[asyncio.Task[None]], stats: FleetStats) -> None:
    """Cancel the charger tasks and wait for them, at most ``TEARDOWN_BOUND_S`` seconds.

    Cancellation is repeated: on Python 3.11 ``asyncio.wait_for`` (which the package's ``call``
    uses) can swallow a cancellation that races with the answer, and the task then runs on.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TEARDOWN_BOUND_S
    pending: set[asyncio.Task[None]] = {task for task in tasks if not task.done()}
    while pending and loop.time() < deadline:
        for task in (*pending, *stats.session_tasks):
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=TEARDOWN_RETRY_S)
    if pending:
        print(f"ocpp_fleet: {len(pending)} charger task(s) did not end within "
              f"{TEARDOWN_BOUND_S:g} s", file=sys.stderr)


def system_seconds() -> float:
    """System (kernel) CPU time of this process so far, all threads: the socket calls."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def cpu_seconds() -> float:
    """User + system CPU of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_kib() -> int | None:
    """Resident set size of this process now (KiB, from /proc; ``None`` where unavailable)."""
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def connect_rate_achieved(connected_at: list[float]) -> float | None:
    """Connections per second between the first and the last established one."""
    if len(connected_at) < 2:
        return None
    span = max(connected_at) - min(connected_at)
    return round((len(connected_at) - 1) / span, 1) if span > 0 else None


async def run_fleet(url: str, chargers: int, connect_rate: float, duration: float,
                    seed: int, settle: float | None = None,
                    workload: Workload = WORKLOADS[DEFAULT_WORKLOAD]) -> dict[str, Any]:
    """Run the fleet and return the results (see module docstring): for ``duration`` seconds
    from the first connect, or with ``settle``, for ``duration`` seconds from ``settle`` seconds
    after the whole fleet booted. Every charger task is cancelled and its connection closed
    before this returns."""
    loop = asyncio.get_running_loop()
    stats = FleetStats(counting=settle is None, fleet_size=chargers)
    rss_baseline = rss_kib()
    rss_up: int | None = None
    rss_booted: int | None = None
    connected_booted = chargers
    cpu_start = cpu_seconds()
    system_start = system_seconds()
    started = loop.time()
    window_start = started
    tasks = [
        asyncio.create_task(run_charger(url, n, started + n / connect_rate, seed, stats,
                                        workload))
        for n in range(chargers)
    ]
    try:
        if settle is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(chargers / connect_rate + RAMP_SLACK_S):
                    await stats.fleet_up.wait()
            rss_booted, connected_booted = rss_kib(), len(stats.connected_at)
            await asyncio.sleep(settle)
            rss_up = rss_kib()
            window_start = loop.time()
            cpu_start = cpu_seconds()
            system_start = system_seconds()
            stats.counting = True
        await asyncio.sleep(duration)
    finally:
        stats.counting = False
        wall = loop.time() - window_start
        cpu = cpu_seconds() - cpu_start
        system = system_seconds() - system_start
        rss_end = rss_kib()
        await cancel_all(tasks, stats)
    return {
        "tool": "ocpp_fleet",
        "ocpp_package": importlib.metadata.version("ocpp"),
        "url": url,
        "chargers": chargers,
        "connect_rate": connect_rate,
        "duration_s": duration,
        "settle_s": settle,
        "seed": seed,
        "workload": asdict(workload),
        "exchanges": stats.exchanges,
        "exchanges_per_s": round(stats.exchanges / wall, 1) if wall > 0 else None,
        "by_action": dict(stats.by_action),
        "booted": stats.booted,
        "call_errors": stats.call_errors,
        "timeouts": stats.timeouts,
        "connect_failures": stats.connect_failures,
        "disconnects": stats.disconnects,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "system_cpu_s": round(system, 3),
        "cpu_us_per_exchange": round(cpu / stats.exchanges * 1e6, 1) if stats.exchanges else None,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_per_charger_booted_kib": (
            round((rss_booted - rss_baseline) / max(1, connected_booted), 1)
            if rss_booted is not None and rss_baseline is not None else None),
        "connected_when_booted": connected_booted,
        "rss_per_charger_kib": (round((rss_up - rss_baseline) / chargers, 1)
                                if rss_up is not None and rss_baseline is not None else None),
        "rss_per_charger_end_kib": (round((rss_end - rss_baseline) / chargers, 1)
                                    if rss_end is not None and rss_baseline is not None else None),
        "connected": len(stats.connected_at),
        "connect_rate_per_s": connect_rate_achieved(stats.connected_at),
        "ramp_s": (round(stats.last_boot_at - started, 3)
                   if stats.booted == chargers and stats.last_boot_at is not None else None),
        "connect_latency_ms": percentiles(stats.connect_latencies_s, 1000.0),
        "latency_ms": percentiles(stats.latencies_s, 1000.0),
        "latency_by_action_ms": {action: percentiles(values, 1000.0) for action, values
                                 in sorted(stats.latencies_by_action_s.items())},
    }


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def positive(kind: type[int] | type[float]) -> Any:
    """An argparse type: a number greater than zero."""

    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True,
                        help="central system endpoint; the identity is appended after a /")
    parser.add_argument("--chargers", type=positive(int), default=10)
    parser.add_argument("--connect-rate", type=positive(float), default=100.0,
                        help="new connections per second during the ramp")
    parser.add_argument("--duration", type=positive(float), default=10.0,
                        help="seconds from the first connect to the end of the run "
                             "(with --settle: length of the measured window)")
    parser.add_argument("--settle", type=float, default=None,
                        help="open the measured window this many seconds after the whole "
                             "fleet has booted (steady state only)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the per-charger offsets")
    parser.add_argument("--workload", choices=list(WORKLOADS), default=DEFAULT_WORKLOAD,
                        help="the exchanges each charger asks for (see the module docstring)")
    parser.add_argument("--pace", type=positive(int), default=1,
                        help="every interval of the workload this many times longer")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the fleet, print the results."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    limit = raise_open_files_limit()
    if args.chargers + 64 > limit:
        sys.exit(f"ocpp_fleet: {args.chargers} chargers need more open files than the limit "
                 f"({limit}); raise it with `ulimit -n` or use fewer chargers")
    results = asyncio.run(run_fleet(args.url, args.chargers, args.connect_rate, args.duration,
                                    args.seed, args.settle,
                                    WORKLOADS[args.workload].paced(args.pace)))
    if args.json:
        print(json.dumps(results), flush=True)
        return
    for key in ("chargers", "booted", "exchanges", "exchanges_per_s", "wall_s", "cpu_s",
                "cpu_us_per_exchange", "max_rss_mb", "rss_per_charger_kib", "connect_rate_per_s",
                "ramp_s", "latency_ms",
                "call_errors", "timeouts", "connect_failures", "disconnects"):
        print(f"{key:>22}: {results[key]}")


if __name__ == "__main__":
    main()
