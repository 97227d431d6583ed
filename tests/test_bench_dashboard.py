"""The dashboard benchmark's pure figures (``tools/bench/dashboard.py``): the cost of the
medians and of each alternated pair, the dashboard's own CPU, a client turned away, the window
mapped onto the run's clock, and the simulator's CPU read from ``/proc``. The benchmark itself
is not run here (it takes minutes and measures, never asserts, performance)."""

from __future__ import annotations

import os
import resource
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from tools.bench.dashboard import process_cpu_s, run_clock, spread_sessions, wall_iso
from tools.bench.dashboard_client import POLLS
from tools.bench.dashboard_report import client_answered, summarize

ALL_200 = {path: {"200": 3} for path, _ in [*POLLS, ("/api/events", 0)]}


def run(index: int, mode: str, exchanges: int, cpu_s: float,
        client: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"run": 0, "window": index, "mode": mode, "exchanges": exchanges, "cpu_s": cpu_s,
            "wall_s": 10.0,
            "cpu_pct": 10 * cpu_s, "latency_ms": {"p50": 5.0},
            "exchanges_per_cpu_s": exchanges / cpu_s, "all_booted": True,
            "client": client if client is not None else
            ({"client": "http", "answers": ALL_200} if mode == "dashboard" else None)}


def test_the_cost_is_one_minus_the_ratio_of_the_medians_and_of_each_bracket() -> None:
    results = [run(0, "none", 1000, 1.0),
               run(1, "dashboard", 1000, 1.25),   # 800 / CPU-s, between 1000 and 1200
               run(2, "none", 1200, 1.0),
               run(3, "dashboard", 900, 1.0),     # 900, between 1200 and 1100
               run(4, "none", 1100, 1.0)]
    summary = summarize(results)
    assert summary["by_mode"]["none"] == {"runs": [1000.0, 1200.0, 1100.0], "median": 1100.0,
                                          "min": 1000.0, "max": 1200.0}
    assert summary["by_mode"]["dashboard"]["median"] == 850.0
    assert summary["cost_pct"] == pytest.approx(100 * (1 - 850 / 1100), abs=0.01)
    assert summary["cost_pct_bracketed"] == [pytest.approx(100 * (1 - 800 / 1100), abs=0.01),
                                             pytest.approx(100 * (1 - 900 / 1150), abs=0.01)]
    assert summary["cost_pct_bracketed_median"] == pytest.approx(
        (100 * (1 - 800 / 1100) + 100 * (1 - 900 / 1150)) / 2, abs=0.01)
    # The first dashboard window spent 1.25 CPU-s on 1000 exchanges that cost 1000 / 1100
    # at its bracket's rate, in a 10 s window.
    assert summary["dashboard_cpu_pct_of_core"][0] == pytest.approx(
        100 * (1.25 - 1000 / 1100) / 10.0, abs=0.01)
    assert summary["cpu_pct_delta_bracketed"] == [2.5, 0.0]  # 12.5% against 10% and 10%
    assert summary["clients_answered"] and summary["all_booted"]
    assert summary["behind"] == []
    results[2]["latency_ms"] = {"p50": 2500.0}  # a backlog in window 2
    assert summarize(results)["behind"] == ["0.2"]


def test_a_failed_window_leaves_no_bracket_and_no_cost_without_both_modes() -> None:
    failed = {"run": 0, "mode": "dashboard", "error": "sim start --api did not serve"}
    summary = summarize([run(0, "none", 1000, 1.0), failed, run(0, "none", 1000, 1.0)])
    assert summary["cost_pct"] is None
    assert summary["cost_pct_bracketed"] == []
    assert summary["cost_pct_bracketed_median"] is None
    assert "dashboard" not in summary["by_mode"]
    # A dashboard window with one none neighbour is compared with that one.
    summary = summarize([run(0, "none", 1000, 1.0), run(0, "dashboard", 950, 1.0),
                         {"run": 0, "mode": "none", "error": "the simulator process ended"}])
    assert summary["cost_pct_bracketed"] == [5.0]


def test_a_client_turned_away_is_not_a_dashboard() -> None:
    assert client_answered({"client": "http", "answers": ALL_200})
    turned_away = {**ALL_200, "/api/stats": {"404": 5}}
    assert not client_answered({"client": "http", "answers": turned_away})
    assert not client_answered(None)
    # A browser must also have loaded the page itself.
    assert not client_answered({"client": "browser", "answers": ALL_200})
    assert client_answered({"client": "browser", "answers": {**ALL_200, "/": {"200": 1}}})
    results = [run(0, "none", 1000, 1.0),
               run(1, "dashboard", 1000, 1.0, {"client": "http", "answers": turned_away})]
    assert not summarize(results)["clients_answered"]


def test_the_window_is_mapped_onto_the_run_clock_by_the_ledgers_wall_times(
        tmp_path: Path) -> None:
    ledger = tmp_path / "run.db"
    conn = sqlite3.connect(ledger)
    conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE events (run_id, seq, t, wall)")
    conn.executemany("INSERT INTO runs (id) VALUES (?)", [(1,), (2,)])
    started = 1_796_640_000.25  # Unix seconds at the second run's t = 0
    conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", [
        (1, 1, 0.0, wall_iso(started - 3600)),  # an earlier run on the same ledger: ignored
        (2, 1, 0.5, wall_iso(started + 0.5)),
        (2, 2, 7.0, wall_iso(started + 7.0)),
        (2, 3, 99.0, wall_iso(started + 99.0)),
    ])
    conn.commit()
    conn.close()
    start, end = run_clock(ledger, started + 40.0, started + 70.0)
    assert (start, end) == (pytest.approx(40.0, abs=1e-5), pytest.approx(70.0, abs=1e-5))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_cpu_of_a_process_is_read_from_proc() -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before = usage.ru_utime + usage.ru_stime
    read = process_cpu_s(os.getpid())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    after = usage.ru_utime + usage.ru_stime
    # /proc counts in clock ticks (1/100 s here): within a tick or two of getrusage.
    assert before - 0.03 <= read <= after + 0.03


def test_spread_sessions_keep_the_mean_length_and_zero_keeps_the_fleet_file() -> None:
    workload = {"meter_samples_per_transaction": 10, "meter_interval_s": 20.0}
    text = '[group.sessions]\narrivals_per_hour = 180\nduration = "200s"\n'
    assert 'duration = "50s..350s"' in spread_sessions(text, workload, 0.75)
    assert spread_sessions(text, workload, 0) == text
    with pytest.raises(RuntimeError):
        spread_sessions(text.replace("200s", "2m"), workload, 0.5)
