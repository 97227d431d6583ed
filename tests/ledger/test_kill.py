"""A writer killed with SIGKILL mid-run leaves a sound ledger that the report reads and a new
run takes up."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from simulator.ledger import Ledger, get_run, open_readonly
from simulator.report import ActionStats, summarize
from tests.ledger.helpers import rows, start

_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime

    import trio

    from simulator.bus import EventBus
    from simulator.events import FrameOut, Note
    from simulator.ledger import SaveOutbox
    from simulator.ledger.writer import RunSpec, run_ledger_writer


    async def main(path: str) -> None:
        bus = EventBus()
        channel = bus.subscribe_lossless(256)
        spec = RunSpec(name="killed", seed=7, config_text="", config_sha256="00" * 32,
                       version="test", t0=trio.current_time(), wall0=datetime.now(UTC))
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_ledger_writer(
                path, channel, run=spec, batch_size=100, flush_interval=0.005,
                task_status=task_status))
            i = 0
            while True:  # until SIGKILL
                i += 1
                now = trio.current_time()
                await bus.publish(Note(t=now, charger=f"CP-{i % 7}", what="tick",
                                       data={"i": i, "pad": "x" * 200}))
                await bus.publish(FrameOut(t=now, charger=f"CP-{i % 7}", raw="[2]",
                                           message_type=2, unique_id=str(i), action="Heartbeat"))
                await bus.publish_control(SaveOutbox(t=now, charger=f"CP-{i % 7}",
                                                     entries=(b'{"seq": %d}' % i,)))


    trio.run(main, sys.argv[1])
    """
)


def test_kill_9_mid_run_leaves_a_sound_readable_ledger(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    script = tmp_path / "writer.py"
    script.write_text(_KILLED_WRITER)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    process = subprocess.Popen([sys.executable, str(script), str(path)], env=env)
    try:
        deadline = time.monotonic() + 6  # start-up included; the whole test stays under 10 s
        written = 0
        while written < 3000:  # let it run through many batches (and a WAL checkpoint or so)
            assert time.monotonic() < deadline, f"only {written} events written"
            assert process.poll() is None, "the writer died on its own"
            time.sleep(0.02)
            try:
                written = int(str(rows(path, "SELECT count(*) FROM events")[0][0]))
            except (FileNotFoundError, sqlite3.OperationalError):
                continue  # not created yet
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=2) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert path.with_name("killed.db-wal").is_file()  # killed with its WAL not checkpointed
    with open_readonly(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        record = get_run(conn)
        assert (record.name, record.status, record.ended_at) == ("killed", "running", None)
        events = conn.execute("SELECT seq, kind, data FROM events ORDER BY seq").fetchall()
        outbox = conn.execute("SELECT charger, entry FROM outbox").fetchall()
    assert len(events) >= written
    assert [seq for seq, _, _ in events] == list(range(1, len(events) + 1))  # no gap, no tear
    for _, kind, data in events:
        assert isinstance(json.loads(data), dict)
        assert kind in ("note", "frame_out")
    assert {charger for charger, _ in outbox} <= {f"CP-{n}" for n in range(7)}
    assert all(json.loads(raw)["seq"] > 0 for _, raw in outbox)
    # the report reads it as it is: the run never ended
    report = summarize(path)
    frames_out = sum(1 for _, kind, _ in events if kind == "frame_out")
    assert (report.status, report.ended_at, report.frames_out) == ("running", None, frames_out)
    assert report.actions == (ActionStats(action="Heartbeat", calls_sent=frames_out),)
    assert report.duration_s > 0
    # and a writer can take the file up again
    ledger = Ledger.open(path)
    try:
        assert ledger.integrity_check() == "ok"
        assert start(ledger, resumed_from=record.id) == record.id + 1
        assert ledger.get_run(record.id).status == "interrupted"
    finally:
        ledger.close()


