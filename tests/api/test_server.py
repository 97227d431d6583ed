"""The control API's seam: the ``[api]`` table and its token rule, the server beside a running
fleet (in memory under virtual time, and on a real socket), the bearer guard, problem documents
for every error, the OpenAPI document and its offline docs page."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from simulator.api.errors import ApiUnavailable
from simulator.api.server import ApiService
from simulator.config import ConfigError, parse_fleet
from simulator.runtime import open_simulation

FLEET = """
[run]
name = "api"
seed = 3
time = "{time}"
ledger = "{ledger}"

[[group]]
name = "street"
count = 3
id = "ST-{{n}}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 10
"""

TOKEN = "tok-3f9a1c"


def fleet_text(ledger: Path, *, time: str = "virtual", api: str = "") -> str:
    return FLEET.format(ledger=ledger, time=time) + api


# --- the [api] table ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [("8765", "127.0.0.1", 8765), ("127.0.0.1:0", "127.0.0.1", 0),
     ("localhost:9000", "localhost", 9000), ("[::1]:8080", "::1", 8080)],
)
def test_listen_takes_host_and_port(tmp_path: Path, listen: str, host: str, port: int) -> None:
    fleet = parse_fleet(fleet_text(tmp_path / "r.db", api=f'[api]\nlisten = "{listen}"\n'))
    assert fleet.api is not None
    assert (fleet.api.host, fleet.api.port, fleet.api.loopback) == (host, port, True)


def test_no_api_table_means_no_api(tmp_path: Path) -> None:
    assert parse_fleet(fleet_text(tmp_path / "r.db")).api is None


@pytest.mark.parametrize("listen", ["x", "127.0.0.1:", ":80", "127.0.0.1:70000", "host:-1"])
def test_a_bad_listen_is_one_clear_error(tmp_path: Path, listen: str) -> None:
    with pytest.raises(ConfigError, match=r"api\.listen: .* is not \[HOST:\]PORT"):
        parse_fleet(fleet_text(tmp_path / "r.db", api=f'[api]\nlisten = "{listen}"\n'))


def test_an_address_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    text = fleet_text(tmp_path / "r.db", api='[api]\nlisten = "0.0.0.0:8765"\n')
    with pytest.raises(ConfigError, match="not a loopback address, so the API needs a bearer"):
        parse_fleet(text)
    fleet = parse_fleet(text, env={"SIM_API__TOKEN": TOKEN})
    assert fleet.api is not None and str(fleet.api.token) == TOKEN
    assert TOKEN not in fleet.text and TOKEN not in repr(fleet)


def test_a_token_from_the_environment_is_written_back_as_its_reference(tmp_path: Path) -> None:
    text = fleet_text(tmp_path / "r.db", api='[api]\ntoken = "${API_TOKEN}"\n')
    fleet = parse_fleet(text, env={"API_TOKEN": TOKEN})
    assert 'token = "${API_TOKEN}"' in fleet.text and TOKEN not in fleet.text


def test_an_empty_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"api\.token: is empty"):
        parse_fleet(fleet_text(tmp_path / "r.db", api='[api]\ntoken = " "\n'))


# --- the app, in memory under virtual time -------------------------------------------------


async def test_guard_problems_and_openapi(
    tmp_path: Path, autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = tmp_path / "r.db"
    fleet = parse_fleet(fleet_text(ledger, api=f'[api]\ntoken = "{TOKEN}"\n'))
    assert fleet.api is not None
    service = ApiService(fleet.api, listen=False)
    async with open_simulation(fleet, alongside=[service], gc_tuning=False) as sim:
        assert service.app is not None
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            missing = await client.get("/api/openapi.json")
            assert missing.status_code == 401
            assert missing.headers["content-type"].startswith("application/problem+json")
            assert missing.headers["www-authenticate"].startswith("Bearer")
            assert missing.json()["title"] == "Unauthorized" and TOKEN not in missing.text
            wrong = await client.get("/api/openapi.json", headers={"Authorization": "Bearer x"})
            assert wrong.status_code == 401 and TOKEN not in wrong.text
            assert (await client.get(f"/api/openapi.json?access_token={TOKEN}")).status_code \
                == 200
            document = (await client.get("/api/openapi.json", headers=bearer)).json()
            assert document["openapi"].startswith("3.1")
            assert document["info"]["title"] == "OCPP chaos simulator"

            unknown = await client.get("/api/no-such-thing", headers=bearer)
            assert unknown.status_code == 404
            assert unknown.headers["content-type"].startswith("application/problem+json")
            assert unknown.json()["status"] == 404

            for odd in ("/api/schema/swagger", "/api/schema/nothing", "/static/%00.js",
                        "/static/dashboard.js%00.js"):
                answer = await client.get(odd, headers=bearer)
                assert answer.status_code == 404, odd
                assert answer.headers["content-type"].startswith("application/problem+json")
            deep = b"[" * 5000 + b"]" * 5000  # msgspec gives up with a RecursionError
            for path in ("/api/chaos", "/api/chargers/ST-1/commands"):
                answer = await client.post(path, content=deep, headers={
                    **bearer, "content-type": "application/json"})
                assert answer.status_code == 400, (path, answer.text)
                assert answer.headers["content-type"].startswith("application/problem+json")
            kinds = await client.get("/api/events?kind=Event", headers=bearer)
            assert kinds.status_code == 400  # the events' base class is no kind

            docs = await client.get("/api/docs", headers=bearer)
            assert docs.status_code == 200 and "Redoc.init(" in docs.text
            # works offline: every script and style comes from this server
            assert not re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", docs.text)
            script = await client.get("/static/vendor/redoc.standalone.js")  # no token needed
            assert script.status_code == 200 and len(script.content) > 100_000
        sim.stop()
    assert sim.result is not None and sim.result.exit_code == 0
    recorded = await trio.to_thread.run_sync(lambda: [p.read_bytes() for p in tmp_path.iterdir()])
    assert recorded and all(TOKEN.encode() not in data for data in recorded)  # WAL, SHM too


# --- a real socket ---------------------------------------------------------------------------


async def test_the_server_listens_beside_a_real_time_fleet_and_stops_with_it(
    tmp_path: Path,
) -> None:
    fleet = parse_fleet(fleet_text(tmp_path / "r.db", time="real",
                                   api='[api]\nlisten = "127.0.0.1:0"\n'),
                        overrides={"run.duration": 2})
    assert fleet.api is not None
    service = ApiService(fleet.api)
    with trio.fail_after(30):
        async with open_simulation(fleet, alongside=[service], gc_tuning=False) as sim:
            assert service.url is not None and service.url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient(base_url=service.url) as client:
                answer = await client.get("/api/openapi.json")
                assert answer.status_code == 200
            sim.stop()
            await sim.wait_finished()
        with pytest.raises(httpx.ConnectError):  # the server went with the fleet
            async with httpx.AsyncClient(base_url=service.url) as client:
                await client.get("/api/openapi.json")


async def test_an_address_in_use_is_api_unavailable(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fleet = parse_fleet(fleet_text(tmp_path / "r.db", time="real",
                                       api=f'[api]\nlisten = "127.0.0.1:{port}"\n'))
        assert fleet.api is not None
        with trio.fail_after(30), pytest.raises(
            ApiUnavailable, match=f"cannot listen on 127.0.0.1:{port}",
        ):
            async with open_simulation(fleet, alongside=[ApiService(fleet.api)],
                                       gc_tuning=False):
                pytest.fail("the fleet started although the API could not listen")
    assert not await trio.Path(tmp_path / "r.db").exists()  # nothing ran, nothing recorded


def test_cli_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fleet = tmp_path / "fleet.toml"
        fleet.write_text(fleet_text(tmp_path / "r.db", time="real"))
        done = subprocess.run(
            [sys.executable, "-m", "simulator", "start", "--toml", str(fleet), "--quiet",
             "--api", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"sim: the API cannot listen on 127.0.0.1:{port}: Address already in use; choose "
        "another address or port with --api HOST:PORT (port 0: any free port)"]
    assert not (tmp_path / "r.db").exists()  # no charger connected, no run recorded


def test_a_token_with_white_space_around_it_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"api\.token: starts or ends with white space"):
        parse_fleet(fleet_text(tmp_path / "r.db", api=f'[api]\ntoken = " {TOKEN}"\n'))


def test_a_virtual_run_with_the_api_needs_a_duration(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(fleet_text(tmp_path / "r.db"))  # time = "virtual", no duration given
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "start", "--toml", str(fleet), "--quiet",
         "--api", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f'sim: {fleet}: run.duration: a run with time = "virtual" needs one (its clock races '
        "ahead: without an end it would never stop); give --duration"]
