"""The soak's table: ``soak.py``'s result (what it writes to ``soak.json``) as text."""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from benchlib import fmt  # type: ignore[import-not-found]  # this directory, run as a script

MAX_ROWS: Final = 30
"""Rows of the time series at most (every k-th sample, and the last)."""


def render(result: dict[str, Any]) -> str:
    """The whole report: settings, targets, the accounting, the faults, the time series."""
    settings, run = result["settings"], result["run"]
    workload = settings["workload"]
    lines = [
        f"$ {result['command']}",
        f"soak: {settings['chargers']:,} chargers x {workload['connectors']} connectors, "
        f"{settings['minutes']:g} min, workload {settings['workload_name']} x pace "
        f"{settings['pace']} (MeterValues every {workload['meter_interval_s']:g} s, Heartbeat "
        f"{workload['heartbeat_interval_s']:g} s), {settings['transport']}, a fault every "
        f"{settings['fault_every']:g} s on {settings['share'][0]:.0%}-"
        f"{settings['share'][1]:.0%} of the fleet, seed {settings['seed']}",
        "",
    ]
    lines += targets(result)
    lines += ["", *accounting(result), "", *faults(result), "", *timeline(run["samples"])]
    if run.get("error"):
        lines += ["", f"error: {run['error']}"]
    return "\n".join(lines)


def targets(result: dict[str, Any]) -> list[str]:
    """Growth, crashes, lost and the verdicts."""
    warmup = result["warmup_s"]
    rss, fds, blocks = result["rss"], result["fds"], result["py_blocks"]
    mib = 1 / 1024
    rows = [
        "| figure | value |",
        "|---|---|",
        f"| warm-up (not measured) | first {fmt(warmup, 0)} s |",
        f"| simulator RSS, baseline -> end (MiB) | {scaled(rss['baseline'], mib)} -> "
        f"{scaled(rss['end'], mib)} ({signed(rss['percent'], '%')}) |",
        f"| open files, baseline -> end | {fmt(whole(fds['baseline']))} -> "
        f"{fmt(whole(fds['end']))} ({signed(fds['delta'], '')}) |",
        f"| Python memory blocks, baseline -> end (thousands) | "
        f"{scaled(blocks['baseline'], 1e-3)} -> {scaled(blocks['end'], 1e-3)} "
        f"({signed(blocks['percent'], '%')}) |",
    ]
    samples = result["run"]["samples"]
    if samples:
        last = samples[-1]
        size = next((s["ledger_bytes"] for s in reversed(samples) if s["ledger_bytes"]), None)
        per_min = None if size is None else size / (last["t"] / 60 or 1.0)
        rows.append(f"| ledger at the end (MiB) | {scaled(size, 1 / 2**20)} "
                    f"({scaled(per_min, 1 / 2**20)} per min; on disk with its WAL "
                    f"{scaled(last['ledger_disk_bytes'], 1 / 2**20)}) |")
    ledger_run = result.get("ledger_run", {})
    rows += [
        f"| run status in the ledger | {ledger_run.get('status', '-')} |",
        f"| charger crashes (ledger) | {fmt(ledger_run.get('crashes'))} |",
        f"| transactions lost | {fmt(result.get('accounting', {}).get('lost'))} |",
        "",
        "| target | met |",
        "|---|---|",
    ]
    rows += [f"| {name} | {'yes' if met else 'NO'} |"
             for name, met in result["verdicts"].items()]
    return rows


def accounting(result: dict[str, Any]) -> list[str]:
    """The central system's record against the ledger (``soak_figures.Accounting``)."""
    counts = result.get("accounting")
    if counts is None:
        return ["(no accounting: the ledger or the central system's record is missing)"]
    labels = [
        ("csms_started", "transactions the central system gave an id"),
        ("csms_stopped", "... and received a StopTransaction for"),
        ("phantom_starts", "... whose StartTransaction answer never reached the charger"),
        ("unstopped_queued", "... known to the charger, stop still queued at the end"),
        ("unstopped_lost", "... known to the charger, never stopped, none queued (lost)"),
        ("duplicate_stops", "ids stopped more than once"),
        ("stops_unknown", "stops naming an id never given"),
        ("acked_unrecorded", "messages acknowledged, never recorded by the CS (lost)"),
        ("vanished", "messages sent, never acknowledged nor received, not queued (lost)"),
        ("dropped", "messages the chargers gave up on"),
        ("queued_at_end", "messages in the outbox at the end"),
    ]
    return ["| transactions and their messages | count |", "|---|---|",
            *(f"| {label} | {fmt(counts[key])} |" for key, label in labels)]


def faults(result: dict[str, Any]) -> list[str]:
    """How many faults of each kind, on how many chargers."""
    kinds: Counter[str] = Counter()
    hit: Counter[str] = Counter()
    for fault in result["faults"]:
        kinds[fault["fault"]] += 1
        hit[fault["fault"]] += len(fault["chargers"])
    cells = [f"{kind} {kinds[kind]} ({hit[kind]:,} chargers)" for kind in sorted(kinds)]
    restarts = [f"at {r['t']:g} s, down {r['down_s']:g} s" for r in result["csms_restarts"]]
    return [f"faults: {sum(kinds.values())}: " + (", ".join(cells) or "none"),
            "central system restarted: " + ("; ".join(restarts) or "no")]


def timeline(samples: list[dict[str, Any]]) -> list[str]:
    """Every k-th sample (at most ``MAX_ROWS`` and the last); CPU % since the row before."""
    if not samples:
        return ["(no samples)"]
    step = max(1, -(-len(samples) // MAX_ROWS))
    shown = samples[::step]
    if shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    rows = ["| t (s) | RSS MiB | Python blocks (k) | open files | ledger MiB | connected | "
            "in transaction | CPU % | CS RSS MiB | CS CPU % |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    before: dict[str, Any] | None = None
    for row in shown:
        rows.append(
            f"| {row['t']:,.0f} | {scaled(row['rss_kib'], 1 / 1024)} | "
            f"{scaled(row['py_blocks'], 1e-3)} | {fmt(row['fds'])} | "
            f"{scaled(row['ledger_bytes'], 1 / 2**20)} | {fmt(row['connected'])} | "
            f"{fmt(row['in_transaction'])} | {cpu_pct(before, row, 'cpu_s')} | "
            f"{scaled(row['csms_rss_kib'], 1 / 1024)} | {cpu_pct(before, row, 'csms_cpu_s')} |")
        before = row
    return rows


def cpu_pct(before: dict[str, Any] | None, row: dict[str, Any], field: str) -> str:
    """CPU % of one core between two samples (``-`` for the first, or across a restart)."""
    if before is None or before[field] is None or row[field] is None:
        return "-"
    spent, wall = row[field] - before[field], row["t"] - before["t"]
    return fmt(100 * spent / wall, 0) if wall > 0 and spent >= 0 else "-"


def scaled(value: float | None, factor: float) -> str:
    return "-" if value is None else fmt(value * factor, 1)


def signed(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:+,.1f}{unit}" if unit else f"{value:+,.0f}"


def whole(value: float | None) -> int | None:
    return None if value is None else round(value)
