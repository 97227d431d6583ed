"""The dashboard's routes: ``GET /`` serves the page and ``GET /static/{path}`` the browser
files of ``simulator.web`` with their content types, without the token the rest of the API
asks for; anything else under ``/static/`` (a Python source, a folder, a path climbing out of
the folder, no file) is a 404 problem document. In memory, on a virtual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from simulator.api.server import ApiService
from simulator.config import parse_fleet
from simulator.runtime import open_simulation
from simulator.web import asset

FLEET = """
[run]
name = "dashboard"
seed = 3
time = "virtual"
ledger = "{ledger}"

[api]
listen = "127.0.0.1:0"
token = "s3cret-token"

[csms.embedded]
accepted_tags = ["TAG-*"]

[[group]]
name = "street"
count = 2
id = "ST-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 1
max_power_kw = 22
connect_rate = 10
"""


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
async def client(tmp_path: Path, autojump_clock: trio.testing.MockClock,
                 ) -> AsyncIterator[httpx.AsyncClient]:
    fleet = parse_fleet(FLEET.format(ledger=tmp_path / "r.db"))
    assert fleet.api is not None
    service = ApiService(fleet.api, listen=False)
    with trio.fail_after(60):
        async with open_simulation(fleet, alongside=[service], gc_tuning=False) as sim:
            assert service.app is not None
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app),
                                         base_url="http://sim") as http:
                yield http
            sim.stop()


async def test_the_page_is_served_without_the_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == asset("dashboard.html")
    for src in ("/static/dashboard.js", "/static/dashboard.css", "/static/charts.js",
                "/static/vendor/uPlot.iife.min.js"):
        assert src in response.text, src
    # the data needs the token; the page is what asks for it
    assert (await client.get("/api/openapi.json")).status_code == 401


@pytest.mark.parametrize(("path", "content_type"), [
    ("dashboard.js", "text/javascript; charset=utf-8"),
    ("dashboard.css", "text/css; charset=utf-8"),
    ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    ("vendor/uPlot.min.css", "text/css; charset=utf-8"),
    ("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
])
async def test_static_files_have_their_content_type(client: httpx.AsyncClient, path: str,
                                                    content_type: str) -> None:
    response = await client.get(f"/static/{path}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == asset(path)


@pytest.mark.parametrize("path", [
    "/static/nothing.js",            # no such file
    "/static/vendor",                # a folder
    "/static/vendor/",               # a folder
    "/static/__init__.py",           # not a browser file
    "/static/../api/server.py",      # out of the folder (as a client may send it)
    "/static/%2e%2e/api/dashboard.py",
    "/static/vendor/%2e%2e/%2e%2e/simulation.py",
    "/static/..%2fapi%2fserver.py",
    "/static/vendor/..%5c..%5cconfig.js",
    "/static/%2e%2e/%2e%2e/README.md",      # a file with a served suffix, outside the folder
    "/static/vendor/..%2f..%2f..%2fREADME.md",
    "/static//etc/hostname.txt",
])
async def test_anything_else_is_a_404_problem(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404, (path, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 404 and body["detail"]
    assert "Traceback" not in response.text and "s3cret" not in response.text
