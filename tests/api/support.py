"""What the chargers' API tests share: a small fleet on a virtual clock, the API in memory."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from simulator.api.server import ApiService
from simulator.config import Api, parse_fleet
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
) -> AsyncIterator[tuple[Simulation, httpx.AsyncClient]]:
    """A virtual-time run of :data:`FLEET` with the API served in memory, and a client on it."""
    fleet = parse_fleet(text or fleet_text(ledger, depot_rate=depot_rate))
    service = ApiService(Api(host="127.0.0.1", port=0), listen=False)
    async with open_simulation(fleet, alongside=[service], gc_tuning=False, grace=5) as sim:
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
