"""The reference CSMS as its own program (``sim csms``): the server, its console lines and,
optionally, a ledger of its side.

:func:`open_standalone` serves :class:`~simulator.csms.CsmsOptions` on ``host:port`` for the
duration of its block. Every event of the CSMS goes to an :class:`~simulator.bus.EventBus`: an
inline observer turns it into console lines (:class:`~simulator.csms.console.CsmsConsole`,
handed to ``emit``), and with a ``ledger`` path the ledger writer records it in the same format
as ``sim start`` (a ``runs`` row named ``csms``, the ``csms_*`` events).

Leaving the block stops listening and closes every connection (their last events are still
recorded), then the ledger's run is marked ``interrupted`` with exit code 130 and the CSMS's
counters as its summary: a standalone CSMS only ends when it is stopped (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec
import trio

from simulator.bus import EventBus
from simulator.csms.console import CsmsConsole
from simulator.csms.options import CsmsOptions
from simulator.csms.records import CsmsStatistics
from simulator.csms.server import open_csms
from simulator.events import Event
from simulator.ledger import RunStatus, finish_run
from simulator.ledger.writer import RunSpec, run_ledger_writer

RUN_NAME: Final = "csms"
"""The name of the run a standalone CSMS records."""
STOPPED_EXIT_CODE: Final = 130
"""The exit code recorded when the CSMS is stopped (as ``sim start`` records Ctrl-C)."""
LEDGER_BUFFER: Final = 8192
"""Events the ledger subscription buffers before the connections publishing them wait."""


def options_text(options: CsmsOptions, host: str, port: int) -> str:
    """The CSMS's resolved configuration as TOML (the ledger's ``runs.config``); the passwords'
    values are left out."""
    lines = ["# sim csms", "[csms]", f"host = {json.dumps(host)}", f"port = {port}", "",
             "[csms.embedded]"]
    for key, value in msgspec.to_builtins(options).items():
        if value is None or value == {} or value == []:
            continue
        if key == "passwords":
            value = sorted(value)  # who has one, never what it is
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


@asynccontextmanager
async def open_standalone(
    options: CsmsOptions,
    *,
    host: str,
    port: int,
    emit: Callable[[str], object],
    verbose: bool = False,
    ledger: Path | None = None,
    version: str = "",
) -> AsyncIterator[str]:
    """Serve the CSMS for the duration of the block; yields its URL (``ws://host:port/ocpp``,
    chargers append ``/<identity>``). ``emit(line)`` gets every console line, in the task that
    published the event (it must not block for long). ``version`` (the simulator's) goes into
    the ledger's run row. Raises ``OSError`` when ``host:port``
    cannot be bound or the ledger cannot be created, ``sqlite3.Error`` when the ledger file is
    not a ledger."""
    bus = EventBus()
    wall_epoch = datetime.now(UTC).timestamp() - trio.current_time()
    console = CsmsConsole(wall_epoch=wall_epoch, verbose=verbose)

    def show(event: Event) -> None:
        for line in console.observe(event):
            emit(line)

    bus.observe(show)
    run_id: int | None = None
    statistics: CsmsStatistics | None = None
    async with trio.open_nursery() as services:
        if ledger is not None:
            text = options_text(options, host, port)
            spec = RunSpec(name=RUN_NAME, seed=0, config_text=text,
                           config_sha256=hashlib.sha256(text.encode()).hexdigest(),
                           version=version, t0=trio.current_time(),
                           wall0=datetime.fromtimestamp(wall_epoch + trio.current_time(), UTC))
            channel = bus.subscribe_lossless(LEDGER_BUFFER, "ledger")
            run_id = await services.start(
                lambda task_status: run_ledger_writer(ledger, channel, run=spec,
                                                      task_status=task_status),
                name="ledger writer",
            )
        try:
            async with open_csms(options, host=host, port=port, publish=bus.publish) as csms:
                yield csms.url
                statistics = csms.core.statistics()
        finally:
            with trio.CancelScope(shield=True):
                await bus.aclose()  # the writer writes what is left, then ends
    if ledger is not None and run_id is not None:
        summary = {"csms": msgspec.to_builtins(statistics)} if statistics is not None else None
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(finish_run, ledger, run_id, RunStatus.INTERRUPTED,
                                          STOPPED_EXIT_CODE, summary)
