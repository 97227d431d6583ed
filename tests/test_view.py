"""The live view: plain periodic lines when the output is not a terminal, a rich panel when it
is. Autojump clock, in-memory streams."""

from __future__ import annotations

import io

import trio
import trio.testing

from simulator.bus import Counters
from simulator.events import Connected, ConnectFailed, FrameIn, FrameOut, TransactionStarted
from simulator.view import PLAIN_INTERVAL, ConnectProblems, progress_line, run_live_view


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def busy_counters() -> Counters:
    counters = Counters()
    counters.observe(Connected(t=0.0, charger="CP-1", url="ws://x"))
    counters.observe(Connected(t=0.0, charger="CP-2", url="ws://x"))
    counters.observe(TransactionStarted(t=0.5, charger="CP-1", connector=1, id_tag="T",
                                        meter_start=0, local_id=1))
    for i in range(10):
        counters.observe(FrameOut(t=0.1 * i, charger="CP-1", raw="[]"))
        counters.observe(FrameIn(t=0.1 * i, charger="CP-1", raw="[]"))
    return counters


def test_progress_line_names_every_number() -> None:
    line = progress_line(busy_counters().snapshot(1.0), fleet_size=5, elapsed=1.0)
    assert "connected 2/5" in line and "in-tx 1" in line
    for field in ("msgs/s in", "callerrors rx", "timeouts", "reconnects", "crashes"):
        assert field in line


async def test_plain_lines_when_not_a_terminal(autojump_clock: trio.testing.MockClock) -> None:
    out = io.StringIO()
    with trio.move_on_after(3 * PLAIN_INTERVAL + 0.1):
        await run_live_view(busy_counters(), title="t", fleet_size=lambda: 5, stream=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert all("connected 2/5" in line for line in lines)
    assert "\x1b[" not in out.getvalue()  # no terminal control codes in logs


async def test_rich_panel_on_a_terminal(autojump_clock: trio.testing.MockClock) -> None:
    out = FakeTerminal()
    with trio.move_on_after(2.0):
        await run_live_view(busy_counters(), title="fleet", fleet_size=lambda: 5, stream=out)
    text = out.getvalue()
    assert "chargers connected" in text and "2 / 5" in text
    assert "CALLERRORs received" in text and "reconnects" in text


def test_each_distinct_connect_failure_is_told_once_and_summed_up() -> None:
    told: list[str] = []
    problems = ConnectProblems(told.append)
    url = "ws://csms.example:9000/ocpp"

    def failed(charger: str, error: str) -> None:
        problems.observe(ConnectFailed(t=0.0, charger=charger, url=url, error=error, attempt=1,
                                       retry_in=1.0))

    for n in range(3):
        failed(f"CP-{n}", f"{url}/CP-{n}: [Errno 111] Connection refused")
    failed("CP-9", f"{url}/CP-9: HTTP 404 (the server refused the upgrade)")
    problems.observe(Connected(t=0.0, charger="CP-1", url=url))  # not a failure
    assert told == [
        f"sim: cannot connect to {url}: [Errno 111] Connection refused (first seen at CP-0; "
        "retrying with backoff)",
        f"sim: cannot connect to {url}: HTTP 404 (the server refused the upgrade) (first seen "
        "at CP-9; retrying with backoff)",
    ]
    assert problems.summary() == ("[Errno 111] Connection refused (x3); "
                                  "HTTP 404 (the server refused the upgrade) (x1)")
    assert ConnectProblems().summary() == ""
