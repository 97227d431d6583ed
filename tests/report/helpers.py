"""Small ledgers for the report tests, written through the real writer actor: a fleet file whose
groups name the chargers ``A`` (group north) and ``B`` (group south), events, outboxes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import trio

from simulator.events import Event
from simulator.ledger import RunStatus, SaveOutbox, finish_run
from simulator.ledger.writer import RunSpec, run_ledger_writer
from simulator.machines.effects import OutboxEntry

T0 = 500.0
WALL0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)

FLEET = """
[run]
name = "story"
duration = "{duration}"
time = "{time}"

[csms]
url = "ws://127.0.0.1:9/ocpp"
security_profile = 1
password = "${{STORY_PASSWORD}}"

[[group]]
name = "north"
count = 1
id = "A"
vendor = "V"
model = "M"

[[group]]
name = "south"
count = 1
id = "B"
vendor = "V"
model = "M"
"""


def fleet(duration: str = "30s", time: str = "real") -> str:
    """The fleet file text as the ledger stores it (a secret left as its ``${VAR}``)."""
    return FLEET.format(duration=duration, time=time)


async def write_run(
    path: Path, events: Sequence[Event], *, config: str | None = None, finish: bool = True,
    resumed_from: int | None = None,
) -> int:
    """Write ``events`` as one run (config ``config``, default :func:`fleet`); returns its id.
    A finished run ends at its last event (as a run ended by ``finish_run``)."""
    run = RunSpec(name="story", seed=7, config_text=fleet() if config is None else config,
                  config_sha256="ab" * 32, version="9.9.9", t0=T0, wall0=WALL0,
                  resumed_from=resumed_from)
    send, receive = trio.open_memory_channel[Event](len(events) + 1)
    for event in events:
        send.send_nowait(event)
    send.close()
    with trio.fail_after(10):
        stats = await run_ledger_writer(path, receive, run=run, batch_size=5, finish=False)
    if finish:
        finish_run(path, stats.run_id, RunStatus.COMPLETED, 0, None)
    return stats.run_id


def outbox(t: float, charger: str, *entries: tuple[int, str]) -> SaveOutbox:
    """``charger``'s outbox holding one message per ``(seq, action)``, as the charger stores
    it."""
    return SaveOutbox(t=T0 + t, charger=charger, entries=tuple(
        OutboxEntry(seq=seq, action=action, payload="{}", local_tx=1)
        for seq, action in entries))
