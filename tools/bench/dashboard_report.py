"""The figures and the table of ``dashboard.py``: exchanges per CPU-second by mode, the cost of
an open dashboard (each ``dashboard`` window against the ``none`` windows around it, and of the
medians), the dashboard's own CPU, and the warnings (a client turned away, a window before every
charger booted, a fleet behind its load).
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any, Final

if __package__:  # imported by a test
    from .benchlib import fmt
    from .dashboard_client import POLLS
else:  # run as a script: its folder is on sys.path
    from benchlib import fmt  # type: ignore[import-not-found,no-redef]
    from dashboard_client import POLLS  # type: ignore[import-not-found,no-redef]

MODES: Final = ("none", "dashboard")
"""The modes of a window, in the order they alternate."""
BEHIND_P50_MS: Final = 1000.0
"""A window whose exchanges took longer than this (median) saw a fleet behind its load (a
backlog, then a burst): such windows swing the ratio by far more than 5%."""


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per mode the exchanges per CPU-second (median, min, max, every window), and the cost of
    the dashboard, ``1 - dashboard / none`` in percent: of the medians, and of each
    ``dashboard`` window against the mean of the ``none`` windows just before and after it
    (``results`` alternate, ``none`` first and last: a fleet's rate drifts as its sessions
    start and end together, and the bracket cancels a steady drift). The dashboard's own CPU,
    in % of a core: a ``dashboard`` window's CPU beyond what its exchanges cost at its
    bracket's rate."""
    def rate(result: dict[str, Any] | None) -> float | None:
        return result.get("exchanges_per_cpu_s") if result else None

    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    for result in results:
        if rate(result) is not None:
            rates[result["mode"]].append(result["exchanges_per_cpu_s"])
    by_mode = {mode: {"runs": values, "median": statistics.median(values),
                      "min": min(values), "max": max(values)}
               for mode, values in rates.items() if values}
    cost = (100 * (1 - by_mode["dashboard"]["median"] / by_mode["none"]["median"])
            if len(by_mode) == len(MODES) else None)
    bracketed, extra, delta = [], [], []
    for index, result in enumerate(results):
        if result["mode"] != "dashboard" or rate(result) is None:
            continue
        around = [rate(other) for other in results[max(0, index - 1):index + 2:2]
                  if other["mode"] == "none"]
        around = [value for value in around if value is not None]
        cpu_around = [other["cpu_pct"] for other in results[max(0, index - 1):index + 2:2]
                      if other["mode"] == "none" and rate(other) is not None]
        if cpu_around:
            delta.append(result["cpu_pct"] - statistics.fmean(cpu_around))
        if around:
            baseline = statistics.fmean(around)
            bracketed.append(100 * (1 - result["exchanges_per_cpu_s"] / baseline))
            extra.append(100 * (result["cpu_s"] - result["exchanges"] / baseline)
                         / result["wall_s"])
    return {"by_mode": by_mode,
            "cost_pct": round(cost, 2) if cost is not None else None,
            "cost_pct_bracketed": [round(value, 2) for value in bracketed],
            "cost_pct_bracketed_median": (round(statistics.median(bracketed), 2)
                                          if bracketed else None),
            "dashboard_cpu_pct_of_core": [round(value, 2) for value in extra],
            "cpu_pct_delta_bracketed": [round(value, 2) for value in delta],
            "clients_answered": all(client_answered(r.get("client")) for r in results
                                    if r["mode"] == "dashboard" and "error" not in r),
            "all_booted": all(r.get("all_booted") for r in results if "error" not in r),
            "behind": [f"{r['run']}.{r['window']}" for r in results if behind(r)]}


def behind(result: dict[str, Any]) -> bool:
    """Whether a window saw the fleet behind its load (median latency over
    :data:`BEHIND_P50_MS`)."""
    p50 = (result.get("latency_ms") or {}).get("p50")
    return p50 is not None and p50 > BEHIND_P50_MS


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
        f"connect rate {args.connect_rate:g}/s, warm-up {args.warmup:g} s, "
        f"settle {args.settle:g} s, "
        f"window {args.duration:g} s, client {args.client}, {args.layout}; {pin}",
        "",
        "| run.window | mode | exchanges | exch/s | CPU s | CPU % | exch/CPU-s | CSMS answered | "
        "p50 ms | booted | window late s | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['run']}.{r['window']} | {r['mode']} | error: {r['error']} |")
            continue
        lines.append(
            f"| {r['run']}.{r['window']} | {r['mode']} | {fmt(r['exchanges'])} | "
            f"{fmt(r['exchanges_per_s'])} | {fmt(r['cpu_s'], 2)} | {fmt(r['cpu_pct'])} | "
            f"{fmt(r['exchanges_per_cpu_s'])} | "
            f"{fmt(r['csms_answered_in_window'])} | "
            f"{fmt((r['latency_ms'] or {}).get('p50'), 2)} | {fmt(r['booted'])} | "
            f"{fmt(r['window_late_s'])} | {r['load']:.2f} |")
    lines.append("")
    for mode, figures in summary["by_mode"].items():
        lines.append(f"{mode}: exchanges per CPU-second median {fmt(figures['median'])}, "
                     f"min {fmt(figures['min'])}, max {fmt(figures['max'])} "
                     f"({len(figures['runs'])} windows)")
    cost = summary["cost_pct_bracketed_median"]
    lines.append(f"cost of an open dashboard: {fmt(cost, 2)}% of the exchanges per CPU-second "
                 "(median of the dashboard windows, each against the none windows around it: "
                 f"{summary['cost_pct_bracketed']}); target < 5%: "
                 + ("-" if cost is None else "met" if cost < 5 else "NOT met"))
    lines.append(f"cost of the medians of the two modes: {fmt(summary['cost_pct'], 2)}%")
    lines.append("the dashboard's own CPU in the simulator (its CPU beyond what its exchanges "
                 "cost at the rate of the none windows around it), % of a core, by window: "
                 f"{summary['dashboard_cpu_pct_of_core']}; the simulator's CPU % of a core "
                 "minus that of the none windows around it, by window: "
                 f"{summary['cpu_pct_delta_bracketed']}")
    if not summary["clients_answered"]:
        lines.append("WARNING: a client did not get 200 for every path the dashboard uses (see "
                     "below): those runs measured an API that turned it away, not a dashboard")
    if summary["behind"]:
        lines.append(f"WARNING: the fleet was behind its load (p50 > {BEHIND_P50_MS:g} ms) in "
                     f"window(s) {', '.join(summary['behind'])}: a backlog and its burst swing "
                     "a window's ratio far more than 5%; run again when the machine is quieter, "
                     "or with a higher --pace")
    if not summary["all_booted"]:
        lines.append("WARNING: in some run not every charger had booted when the window opened "
                     "(booted column): its window measured the ramp")
    for r in results:
        if r["mode"] == "dashboard" and "error" not in r:
            lines.append(f"window {r['run']}.{r['window']} {client_line(r.get('client'))}")
    return "\n".join(lines)
