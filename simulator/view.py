"""The live view of a running fleet: a rich panel on a terminal, plain lines otherwise.

Reads the lossy statistics (:class:`simulator.bus.Counters`), so a slow terminal never slows the
fleet. ``run_live_view`` refreshes every ``interval`` seconds until cancelled.
:class:`ConnectProblems` tells at once why chargers cannot connect, once per distinct cause.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Final, TextIO

import trio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from simulator.bus import Counters, LiveStatistics
from simulator.events import ConnectFailed, Event

MAX_CAUSE: Final = 200
"""Characters of a connect failure's cause kept (it may quote what the server sent)."""

PLAIN_INTERVAL: Final = 5.0
"""Seconds between progress lines when the output is not a terminal."""
LIVE_INTERVAL: Final = 0.5
"""Seconds between refreshes of the terminal panel."""


def connect_cause(error: str) -> str:
    """The cause of a failed connect, without the charger's URL the message starts with
    (``"ws://host/ocpp/CP-1: connection refused"`` → ``"connection refused"``), shortened."""
    head, sep, rest = error.partition(": ")
    cause = rest if sep and head.startswith(("ws://", "wss://")) else error
    return cause if len(cause) <= MAX_CAUSE else cause[:MAX_CAUSE] + "…"


class ConnectProblems:
    """Why chargers cannot connect, per distinct cause (a bus observer: ``observe`` is called
    inline for every event, and costs a type check for any other than ``ConnectFailed``).

    The first failure of each cause goes to ``notify`` at once, as one line; :meth:`summary`
    names every cause with its count. ``notify`` must not block for long (a line to stderr).
    """

    def __init__(self, notify: Callable[[str], None] | None = None) -> None:
        self._notify = notify
        self.counts: dict[str, int] = {}
        """Failures per cause, in the order the causes first came."""

    def observe(self, event: Event) -> None:
        if type(event) is not ConnectFailed:
            return
        cause = connect_cause(event.error)
        seen = self.counts.get(cause, 0)
        self.counts[cause] = seen + 1
        if seen == 0 and self._notify is not None:
            self._notify(f"sim: cannot connect to {event.url}: {cause} (first seen at "
                         f"{event.charger}; retrying with backoff)")

    def summary(self) -> str:
        """Every cause with its count, the most frequent first (empty when none)."""
        ranked = sorted(self.counts.items(), key=lambda item: -item[1])
        return "; ".join(f"{cause} (x{count})" for cause, count in ranked)


def progress_line(stats: LiveStatistics, *, fleet_size: int, elapsed: float) -> str:
    """One plain progress line (no colour, stable field order, greppable)."""
    return (
        f"[{elapsed:7.1f}s] connected {stats.chargers_connected}/{fleet_size}"
        f"  in-tx {stats.chargers_in_transaction}"
        f"  msgs/s in {stats.messages_in_per_s:.1f} out {stats.messages_out_per_s:.1f}"
        f"  callerrors rx {stats.call_errors_received} tx {stats.call_errors_sent}"
        f"  timeouts {stats.timeouts}  reconnects {stats.reconnects}"
        f"  connect-failures {stats.connect_failures}  crashes {stats.crashes}"
    )


def _panel(stats: LiveStatistics, *, title: str, fleet_size: int, elapsed: float) -> Table:
    table = Table(title=f"{title} — {elapsed:.0f}s", show_header=False, expand=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    rows = [
        ("chargers connected", f"{stats.chargers_connected} / {fleet_size}"),
        ("in transaction", str(stats.chargers_in_transaction)),
        ("messages/s in", f"{stats.messages_in_per_s:.1f}"),
        ("messages/s out", f"{stats.messages_out_per_s:.1f}"),
        ("CALLERRORs received", str(stats.call_errors_received)),
        ("CALLERRORs sent", str(stats.call_errors_sent)),
        ("timeouts", str(stats.timeouts)),
        ("reconnects", str(stats.reconnects)),
        ("connect failures", str(stats.connect_failures)),
        ("crashes", str(stats.crashes)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


async def run_live_view(
    counters: Counters,
    *,
    title: str,
    fleet_size: Callable[[], int],
    stream: TextIO | None = None,
    force_plain: bool = False,
) -> None:
    """Show the fleet's live numbers on ``stream`` (stderr by default) until cancelled."""
    out = stream if stream is not None else sys.stderr
    start = trio.current_time()
    if force_plain or not out.isatty():
        while True:
            await trio.sleep(PLAIN_INTERVAL)
            now = trio.current_time()
            print(progress_line(counters.snapshot(now), fleet_size=fleet_size(),
                                elapsed=now - start), file=out, flush=True)
    console = Console(file=out)

    def render() -> Table:
        now = trio.current_time()
        return _panel(counters.snapshot(now), title=title, fleet_size=fleet_size(),
                      elapsed=now - start)

    with Live(render(), console=console, auto_refresh=False, transient=False) as live:
        while True:
            await trio.sleep(LIVE_INTERVAL)
            live.update(render(), refresh=True)
