"""What the chargers' API tests share: a small fleet on a virtual clock, the API in memory."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from simulator.api.server import ApiService
from simulator.bus import EventBus
from simulator.config import Api, parse_fleet
from simulator.events import Event
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import PLUGIN
from simulator.runtime import open_simulation
from simulator.simulation import Simulation

FLEET = """
[run]
name = "api"
seed = 7
time = "virtual"
ledger = "{ledger}"

[csms.embedded]
accepted_tags = ["TAG-*"]

[[group]]
name = "street"
count = 3
id = "ST-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 10

[group.config]
MeterValueSampleInterval = 10
AuthorizationKey = "0123456789abcdef0123"

[[group]]
name = "depot"
count = 2
id = "DP-{{n}}"
vendor = "Acme"
model = "DC50"
connectors = 1
max_power_kw = 50
connect_rate = {depot_rate}
"""


def fleet_text(ledger: Path, *, depot_rate: float = 10) -> str:
    return FLEET.format(ledger=ledger, depot_rate=depot_rate)


@asynccontextmanager
async def api_client(
    ledger: Path, *, depot_rate: float = 10, text: str | None = None,
    watcher: Watcher | None = None, plugin: ProtocolPlugin = PLUGIN, api: Api | None = None,
) -> AsyncIterator[tuple[Simulation, httpx.AsyncClient]]:
    """A virtual-time run of :data:`FLEET` (or ``text``) with the API (``api``, default on
    loopback, no token) served in memory, and a client on it; ``watcher`` hears the run's
    events, ``plugin`` is the chargers' protocol."""
    fleet = parse_fleet(text or fleet_text(ledger, depot_rate=depot_rate))
    service = ApiService(api or Api(host="127.0.0.1", port=0), listen=False)
    services = [service] if watcher is None else [service, watcher]
    async with open_simulation(fleet, alongside=services, gc_tuning=False, grace=5,
                               plugin=plugin) as sim:
        assert service.app is not None
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            yield sim, client


def rows(ledger: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(ledger) as db:
        return list(db.execute(sql, args))


def assert_problem(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem document with ``status`` whose detail says
    ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for word in words:
        assert word in body["detail"], body
    return body


class Watcher:
    """A runtime service for tests: it hears every event from before the fleet starts
    (:meth:`until` waits for one that matches, however early it came) and, once served,
    runs ``then(sim)`` if given (after the services listed before it have started)."""

    def __init__(self, then: Callable[[Simulation], Awaitable[None]] | None = None) -> None:
        self.events: list[Event] = []
        self._waits: list[tuple[Callable[[list[Event]], bool], trio.Event]] = []
        self._then = then

    def attach(self, bus: EventBus) -> None:
        bus.observe(self._observe)

    def _observe(self, event: Event) -> None:
        self.events.append(event)
        for test, met in self._waits:
            if not met.is_set() and test(self.events):
                met.set()

    async def until(self, test: Callable[[list[Event]], bool]) -> None:
        """Wait until the events so far pass ``test``."""
        met = trio.Event()
        if test(self.events):
            return
        self._waits.append((test, met))
        await met.wait()

    async def serve(self, sim: Simulation, *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        if self._then is not None:
            await self._then(sim)
