"""Kill -9 the simulator at seeded random moments, resume it each time, lose nothing.

A fleet of 4 chargers x 2 connectors with frequent sessions and MeterValues every second runs
through the CLI (``sim start``, a child process) against the peer central system
(``peer_csms.py``, PyPI ``ocpp``, another process that records every frame it receives, flushed
per line, in one file across the whole test). The harness starts the simulator, waits until the
peer has received a BootNotification from it ("up"), waits a further seeded random time
(:data:`KILL_AFTER_S`, drawn from ``random.Random(SEED)``), and then, should no transaction of
that run be running at the peer, until one is (so that ``--resume`` always has something to
resume: with nothing, it says so and runs nothing), and SIGKILLs it, :data:`KILLS` times,
every run on the same ledger and every run after the first with ``--resume``. A last ``--resume``
run ends by itself after :data:`FINAL_DURATION`, so every transaction still open is stopped.

Delivery is at least once: a transaction message (StartTransaction, StopTransaction, MeterValues
of a transaction) is committed to the ledger's outbox before it is sent and leaves it when its
answer is committed, so after a kill the peer may receive an identical payload again under a new
message id. An identical resend is the same message: the checks count distinct payloads per
charger and report the resends as a number, never as a failure. The peer answers an identical
StartTransaction with the transactionId it gave first (see ``peer_csms.py``).

Afterwards, over the peer's record and every run in the ledger:

1. every transactionId the peer issued has exactly one distinct StopTransaction, from the charger
   it was issued to, and no StopTransaction names an id the peer never issued to that charger;
2. per transaction, the energy register the peer received (meterStart, every
   Energy.Active.Import.Register sample of its MeterValues and of the stop's transactionData,
   meterStop, in the order first received) never goes backwards. meterStart and meterStop are the
   register rounded down to whole Wh and a sample is rounded to its decimals, so a value stands for
   an interval; the register went backwards when no non-decreasing sequence fits the intervals.
   The same holds per connector across its transactions (a resumed charger goes on from the last
   register value the ledger holds, and the ledger holds every value that went on the wire);
3. no CALL message id repeats for a charger, across all runs;
4. the peer's record and the ledger agree:
   - every CALL the ledger shows a charger sent and got a CALLRESULT for (a ``frame_in`` of
     message type 3 with its id, in the same run) was received by the peer from that charger with
     that id and the same payload: what the ledger says was delivered, was;
   - every transaction message the peer received (so every transaction it saw start and every
     StopTransaction it got) is in the ledger as sent by that charger (a ``frame_out`` CALL with the
     same action and payload, in some run). Only transaction messages: the ledger writes in
     batches, and the batch in flight when the process is killed is lost, so a Heartbeat or
     StatusNotification the peer received may be missing from the ledger. A transaction message
     never is: it stays in the outbox until its answer is committed, the frame that sent it is
     committed before that answer, and the last run (which ends by itself) commits everything,
     so some run's frames hold every send the peer saw, or a resend of it.

The run is shared by the tests of this module. Its figures (kills, transactions, resends) are
printed: ``pytest -rP tests/interop/test_kill_resume.py`` shows them.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from .conftest import PeerCsms, Record
from .fleet_runs import Frame, frames_of_every_run, open_ledger
from .peer_record import (
    Reading,
    RecordTail,
    calls,
    first_receipts,
    first_step_back,
    is_transaction_message,
    issued,
    key,
    readings_received,
    register_samples,
    resends,
    whole_wh,
)

SEED: Final = 14
KILLS: Final = 20
KILL_AFTER_S: Final = (0.5, 3.5)
"""Bounds of the uniform draw (seconds after "up") at which each run is killed: early kills hit
the boot and the resending of what the last run left, later ones running transactions."""
UP_BOUND_S: Final = 20.0
"""Longest wait for a started simulator to send its first BootNotification (real seconds)."""
REAP_BOUND_S: Final = 5.0
"""Longest wait for a SIGKILLed child to be reaped."""
FINAL_DURATION: Final = "5s"
FINAL_BOUND_S: Final = 45.0
"""Upper bound on the last run: its duration, the grace period, start-up and resending."""
POLL_S: Final = 0.05

FLEET: Final = """\
[run]
name = "kill9"
seed = 14
duration = "1h"  # killed long before; the last run is given --duration
ledger = "kill9.db"

[csms]
url = "ws://127.0.0.1:9/ocpp"  # replaced by the peer's URL

[[group]]
name = "k"
count = 4
id = "K-{n}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 50

[group.config]
HeartbeatInterval = 3
MeterValueSampleInterval = 1

[group.sessions]
arrivals_per_hour = 3600
duration = "2s..6s"
energy_kwh = "1..5"
id_tags = ["TAG-1", "TAG-2"]
"""
SHOWN: Final = 25
"""Most problems a failure message lists (the count is always given)."""


@dataclasses.dataclass(frozen=True)
class KillRun:
    records: list[Record]
    """The peer's whole record."""
    run_starts: list[int]
    """Per run of the simulator, the index in ``records`` where what the peer recorded after
    its start begins (the last entry is the last run's)."""
    open_at_kill: list[int]
    """Per kill, how many transactions that run had started and not stopped (peer's view)."""
    final_exit: int
    final_output: str
    ledger_runs: list[tuple[int, str, int | None]]
    """(id, status, resumed_from) of every run in the ledger."""
    integrity: str
    frames: dict[int, list[Frame]]

    def run_of(self, index: int) -> int:
        """The run (1-based) during which ``records[index]`` was recorded."""
        return bisect.bisect_right(self.run_starts, index)


def command(toml: Path, url: str, ledger: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "simulator", "start", "--toml", str(toml), "--csms", url,
            "--ledger", str(ledger), "--quiet", "--json", *extra]


def still_open(records: list[Record], since: int) -> int:
    """How many transactions started from ``records[since]`` on were not stopped."""
    started = {r["transaction_id"] for r in records[since:] if r["kind"] == "transaction_started"}
    stopped = {r["transaction_id"] for r in records if r["kind"] == "transaction_stopped"}
    return len(started - stopped)


def tail_of(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-2000:] if path.exists() else ""


async def run_and_kill(argv: list[str], tail: RecordTail, kill_after: float, err: Path,
                       label: str) -> None:
    """Start ``argv`` (its stderr to ``err``), wait until the peer got a BootNotification from
    it ("up"), wait ``kill_after`` seconds more and until a transaction it started is running
    at the peer, SIGKILL it and reap it. Fails if it ends by itself before."""
    seen = len(tail.read())
    with err.open("wb") as log:
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(partial(
                trio.run_process, argv, stdout=subprocess.DEVNULL, stderr=log, check=False))
            with trio.fail_after(UP_BOUND_S):
                while not any(r["kind"] == "message" and r.get("action") == "BootNotification"
                              for r in tail.read()[seen:]):
                    assert process.poll() is None, f"{label} ended unbooted:\n{tail_of(err)}"
                    await trio.sleep(POLL_S)
            await trio.sleep(kill_after)
            with trio.fail_after(UP_BOUND_S):
                while not still_open(tail.read(), seen):
                    assert process.poll() is None, f"{label} ended:\n{tail_of(err)}"
                    await trio.sleep(POLL_S)
            assert process.poll() is None, f"{label} ended before the kill:\n{tail_of(err)}"
            process.kill()
            with trio.fail_after(REAP_BOUND_S):
                await process.wait()


@pytest.fixture(scope="module")
def kill_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KillRun]:
    workdir = tmp_path_factory.mktemp("kill9")
    toml, ledger = workdir / "kill9.toml", workdir / "kill9.db"
    toml.write_text(FLEET, encoding="utf-8")
    rng = random.Random(SEED)
    delays = [rng.uniform(*KILL_AFTER_S) for _ in range(KILLS)]
    peer = PeerCsms(workdir)
    peer.start()
    tail = RecordTail(peer.record_path)
    run_starts: list[int] = []
    open_at_kill: list[int] = []

    async def run() -> subprocess.CompletedProcess[bytes]:
        for index, delay in enumerate(delays):
            resume = ("--resume",) if index else ()
            run_starts.append(len(tail.read()))
            await run_and_kill(command(toml, peer.url, ledger, *resume), tail, delay,
                               workdir / f"sim-{index + 1}.err",
                               f"run {index + 1} (to be killed {delay:.2f}s after boot)")
            open_at_kill.append(still_open(tail.read(), run_starts[-1]))
        run_starts.append(len(tail.read()))
        argv = command(toml, peer.url, ledger, "--resume", "--duration", FINAL_DURATION)
        with trio.fail_after(FINAL_BOUND_S):
            return await trio.run_process(argv, capture_stdout=True, capture_stderr=True,
                                          check=False)

    began = time.monotonic()
    try:
        final = trio.run(run)
    finally:
        peer.terminate()
    with open_ledger(ledger) as conn:
        runs = conn.execute("SELECT id, status, resumed_from FROM runs ORDER BY id").fetchall()
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    kill_run = KillRun(
        records=peer.records(), run_starts=run_starts, open_at_kill=open_at_kill,
        final_exit=final.returncode,
        final_output=final.stderr.decode(errors="replace")[-2000:],
        ledger_runs=runs, integrity=integrity, frames=frames_of_every_run(ledger),
    )
    print(f"kill -9: {len(open_at_kill)} kills and a last run in {time.monotonic() - began:.1f}s; "
          f"{sum(n > 0 for n in open_at_kill)} kills hit transactions of their run "
          f"({sum(open_at_kill)} in all); {len(issued(kill_run.records))} transactions; "
          f"identical resends: {resends(kill_run.records)}")
    yield kill_run


def report(problems: list[str], what: str) -> str:
    shown = "\n  ".join(problems[:SHOWN])
    more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
    return f"{len(problems)} {what}:\n  {shown}{more}"


# ---- the premise ---------------------------------------------------------------------------


def test_the_simulator_was_killed_and_resumed_and_the_last_run_ended_by_itself(
    kill_run: KillRun,
) -> None:
    assert len(kill_run.open_at_kill) == KILLS
    statuses = [status for _, status, _ in kill_run.ledger_runs]
    assert len(statuses) == KILLS + 1, kill_run.ledger_runs
    assert [resumed for _, _, resumed in kill_run.ledger_runs[1:]] == [
        run_id for run_id, _, _ in kill_run.ledger_runs[:-1]]
    assert (kill_run.final_exit, statuses[-1]) == (0, "completed"), kill_run.final_output
    assert kill_run.integrity == "ok"
    assert sum(n > 0 for n in kill_run.open_at_kill) >= KILLS // 2, kill_run.open_at_kill
    assert issued(kill_run.records)
    trouble = [r for r in kill_run.records
               if r["kind"] in ("validation_error", "call_error", "unhandled_exception")]
    assert trouble == []


# ---- the invariants ------------------------------------------------------------------------


def test_every_transaction_the_peer_saw_start_has_exactly_one_stop(kill_run: KillRun) -> None:
    started = issued(kill_run.records)
    stops: dict[int, list[Record]] = collections.defaultdict(list)
    problems = []
    for stop in first_receipts(kill_run.records, ("StopTransaction",)):
        transaction_id = stop["payload"]["transactionId"]
        start = started.get(transaction_id)
        if start is None or start["charger"] != stop["charger"]:
            problems.append(f"{stop['charger']}: StopTransaction for {transaction_id}, an id the "
                            f"peer never issued to it: {stop['payload']}")
        else:
            stops[transaction_id].append(stop)
    for transaction_id, start in started.items():
        got = stops[transaction_id]
        if len(got) != 1:
            stops_seen = f"{len(got)} distinct stops: {[s['payload'] for s in got]}" if got else (
                "no stop")
            problems.append(
                f"{start['charger']} connector {start['connector_id']}: transaction "
                f"{transaction_id} (started {start['timestamp']}, meterStart "
                f"{start['meter_start']}) has {stops_seen}")
    assert not problems, report(problems, f"of {len(started)} transactions go wrong")


@pytest.mark.parametrize(("values", "back_at"), [
    ([("meterStart", 0), ("3.6", None), ("meterStop", 3)], None),  # meterStop rounds down
    ([("meterStart", 0), ("4.0", None), ("meterStop", 3)], None),  # 3.95..4.05 rounded to 4.0
    ([("meterStart", 0), ("4.1", None), ("meterStop", 3)], 2),
    ([("meterStart", 10), ("10.2", None), ("12.2", None), ("12.1", None)], None),
    ([("meterStart", 10), ("12.2", None), ("12.0", None), ("13.0", None)], 2),
    ([("meterStart", 10), ("9.0", None)], 1),
    ([("meterStart", 10), ("0.0102 kWh", None), ("meterStop", 10)], None),
    ([("meterStart", 10), ("0.0122 kWh", None), ("meterStop", 11)], 2),
    ([("meterStop", 36), ("meterStart", 0)], 1),  # a register that restarts at 0
])
def test_a_step_back_is_one_no_rounding_explains(
    values: list[tuple[str, int | None]], back_at: int | None,
) -> None:
    readings = []
    for text, wh in values:
        if wh is not None:
            readings.append(whole_wh(text, wh))
        else:
            value, _, unit = text.partition(" ")
            sample = {"value": value, "unit": unit or "Wh"}
            readings += register_samples({"meterValue": [{"sampledValue": [sample]}]},
                                         "meterValue")
    step = first_step_back(readings)
    assert (step[0] if step else None) == back_at, readings


def step_back_problems(groups: dict[Any, list[Reading]], name: Callable[[Any], str]) -> list[str]:
    problems = []
    for group, readings in groups.items():
        step = first_step_back(readings)
        if step is not None:
            index, above = step
            shown = ", ".join(reading[0] for reading in readings[max(0, index - 8):index + 1])
            problems.append(f"{name(group)}: {readings[index][0]} after {above}; "
                            f"in the order received: ...{shown}")
    return problems


def test_the_energy_register_never_goes_backwards_within_a_transaction(
    kill_run: KillRun,
) -> None:
    starts = issued(kill_run.records)
    per_transaction: dict[int, list[Reading]] = collections.defaultdict(list)
    for _, transaction_id, reading in readings_received(kill_run.records):
        if transaction_id is not None:
            per_transaction[transaction_id].append(reading)

    def name(transaction_id: int) -> str:
        start = starts[transaction_id]
        return f"{start['charger']} connector {start['connector_id']}"

    problems = step_back_problems(per_transaction, name)
    assert not problems, report(problems, f"of {len(per_transaction)} transactions have their "
                                          "register go backwards")


def test_the_energy_register_of_a_connector_never_goes_backwards(kill_run: KillRun) -> None:
    # Across transactions too: a connector's meter is one register, and a resumed charger goes
    # on from the last value the ledger holds, which is at least what the peer was sent.
    per_connector: dict[tuple[str, int], list[Reading]] = collections.defaultdict(list)
    for where, _, reading in readings_received(kill_run.records):
        if where is not None and where[1] > 0:
            per_connector[where].append(reading)
    problems = step_back_problems(per_connector, lambda where: f"{where[0]} connector {where[1]}")
    assert not problems, report(problems, f"of {len(per_connector)} connectors have their "
                                          "register go backwards")


def test_no_message_id_repeats_for_a_charger(kill_run: KillRun) -> None:
    uses: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for index, record in enumerate(kill_run.records):
        if record["kind"] == "message" and record.get("message_type") == 2:
            uses[(record["charger"], record["unique_id"])].append(
                f"{record['action']} in run {kill_run.run_of(index)}")
    problems = [f"{charger}: message id {unique_id!r} used {len(used)} times: "
                f"{', '.join(used[:4])}{', ...' if len(used) > 4 else ''}"
                for (charger, unique_id), used in uses.items() if len(used) > 1]
    assert not problems, report(problems, f"of {len(uses)} message ids repeat")


def test_the_peer_and_the_ledger_agree(kill_run: KillRun) -> None:
    received = {(r["charger"], r["unique_id"], key(r["payload"]))
                for r in calls(kill_run.records)}
    problems = []
    sent: set[tuple[str, str | None, str]] = set()
    for run_id, frames in kill_run.frames.items():
        answered = {(f.charger, f.unique_id) for f in frames
                    if f.direction == "in" and f.message_type == 3}
        for frame in frames:
            if frame.direction != "out" or frame.message_type != 2:
                continue
            sent.add((frame.charger, frame.action, key(frame.payload)))
            if ((frame.charger, frame.unique_id) in answered
                    and (frame.charger, frame.unique_id, key(frame.payload)) not in received):
                problems.append(
                    f"run {run_id}, {frame.charger}: the ledger has {frame.action} "
                    f"{frame.unique_id!r} answered, the peer never received it: {frame.payload}")
    for index, record in enumerate(kill_run.records):
        action, payload = record.get("action"), record.get("payload")
        if (record["kind"] == "message" and record.get("message_type") == 2
                and is_transaction_message(action, payload)
                and (record["charger"], action, key(payload)) not in sent):
            problems.append(f"run {kill_run.run_of(index)}, {record['charger']}: the peer "
                            f"received {action} {payload}, the ledger has it sent in no run")
    assert not problems, report(problems, "disagreements between the peer and the ledger")
