"""The hostile central system against a whole simulation: real runtime, WebSocket client, ledger.

A virtual-time fleet (three chargers, automatic sessions) runs under trio's autojump clock with
:class:`~tests.fuzz.server.HostileCsms` as its central system, over in-memory byte streams and
each of the simulator's WebSocket clients (trio-websocket, websockets), until that CS has sent
:data:`BUDGET` frames: hostile CALLs of every kind, text and binary, 16 MB messages (one charger
keeps the default 1 MB limit and closes with 1009, the others take them), ping floods, abrupt
closes, close frames, silence, hostile answers to the chargers' CALLs. The CS checks every
answer (see its module). Then the run ends as usual, and its ledger must show no crash and no
traceback and pass ``PRAGMA integrity_check``, with every answered CALL recorded as a frame in
and its answer as a frame out.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import pytest
import trio
import trio.testing

from simulator.actors.streams import memory_connector
from simulator.actors.transport import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Transport,
    WebSocketClient,
    open_transport,
    trio_websocket_client,
)
from simulator.actors.websockets_transport import websockets_client
from simulator.config import parse_fleet
from simulator.ocpp.v16 import PLUGIN
from simulator.runtime import open_simulation
from tests.fuzz.hostile import SIXTEEN_MB
from tests.fuzz.server import HostileCsms

BUDGET: Final = 3_000
"""Frames the hostile CS sends before it only answers (with each WebSocket client)."""
CLIENTS: Final[dict[str, WebSocketClient]] = {
    "trio-websocket": trio_websocket_client,
    "websockets": websockets_client,
}

FLEET: Final = """
[run]
name = "fuzz"
seed = 14
time = "virtual"
ledger = "{ledger}"

[csms.embedded]

[[group]]
name = "street"
count = 3
id = "FZ-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 10

[group.config]
MeterValueSampleInterval = 20
HeartbeatInterval = 60

[group.sessions]
arrivals_per_hour = 40
duration = "2m..10m"
energy_kwh = "1..5"
id_tags = ["TAG-1", "TAG-2"]
"""


def rows(ledger: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(ledger) as db:
        return list(db.execute(sql))


@pytest.mark.slow
@pytest.mark.parametrize("client", CLIENTS)
async def test_a_hostile_central_system_never_breaks_a_simulation(
    client: str, tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = tmp_path / "fuzz.db"
    csms = HostileCsms(seed=14, budget=BUDGET)

    @asynccontextmanager
    async def opener(url: str, identity: str) -> AsyncIterator[Transport]:
        # FZ-1 keeps the default message limit (a 16 MB frame closes its link with 1009);
        # the others take 16 MB frames through to the machine and the ledger.
        limit = DEFAULT_MAX_MESSAGE_SIZE if identity == "FZ-1" else 2 * SIXTEEN_MB
        connect = memory_connector(functools.partial(csms.serve, identity))
        async with open_transport(url, identity, plugin=PLUGIN, connect_stream=connect,
                                  client=CLIENTS[client], max_message_size=limit) as transport:
            yield transport

    fleet = parse_fleet(FLEET.format(ledger=ledger))
    async with open_simulation(fleet, open_transport=opener, grace=5) as sim:
        with trio.fail_after(6 * 3600):  # virtual seconds: about 3 hours are needed
            await csms.done.wait()
        await trio.sleep(60)
    assert sim.result is not None

    assert csms.problems == []
    assert csms.frames >= BUDGET
    tally = csms.tally
    for kind in ("binary", "huge", "ping_flood", "abrupt_close", "close_frame", "silence",
                 "malformed", "bad_envelope", "configuration", "unknown_action", "callerror",
                 "schema_breaking_result", "valid_call", "broken_call"):
        assert tally[kind] > 0, f"no {kind} in {tally}"
    assert tally["answered"] > BUDGET // 10  # (a charger whose boot was Rejected answers nothing)

    assert rows(ledger, "PRAGMA integrity_check") == [("ok",)]
    assert rows(ledger, "SELECT count(*) FROM events WHERE kind = 'crash'") == [(0,)]
    assert rows(ledger, "SELECT count(*) FROM events WHERE kind NOT IN ('frame_in', 'frame_out') "
                        "AND data LIKE '%Traceback%'") == [(0,)]
    assert (sim.result.exit_code, sim.result.reasons) == (0, ())
    # (from the events' JSON: the ``frames`` view's json_extract cuts a text at its first NUL,
    # and some of the hostile ids hold one)
    frames = [(kind, json.loads(str(data))) for kind, data in rows(
        ledger, "SELECT kind, data FROM events WHERE kind IN ('frame_in', 'frame_out')")]
    calls_in = {data.get("unique_id") for kind, data in frames
                if kind == "frame_in" and data.get("message_type") == 2}
    answers_out = {data["unique_id"] for kind, data in frames
                   if kind == "frame_out" and data["message_type"] != 2}
    assert csms.answered <= calls_in
    assert csms.answered <= answers_out
