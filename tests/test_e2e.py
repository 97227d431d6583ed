"""End to end: a fleet against the embedded CSMS over real WebSockets on 127.0.0.1, in process,
then the ledger it wrote. Also: an unreachable CSMS, and --resume delivering what a run left
queued. Real time, so runs are short and bounded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from simulator.config import parse_fleet
from simulator.report import summarize
from simulator.runtime import run_simulation

FLEET = """
[run]
name = "e2e"
seed = 11
duration = "{duration}"
ledger = "{ledger}"

[csms]
url = "{url}"

[csms.embedded]
heartbeat_interval = "2s"
accepted_tags = ["TAG-*"]

[[group]]
name = "ac"
count = 4
id = "E2E-{{n:02}}"
vendor = "Acme"
model = "AC22"
connectors = 2
max_power_kw = 22
connect_rate = 50

[group.config]
MeterValueSampleInterval = 1
HeartbeatInterval = 2
{extra_config}

[group.sessions]
arrivals_per_hour = 3600
duration = "1s..2s"
energy_kwh = "0.1..0.5"
id_tags = ["TAG-1", "TAG-2", "BLOCKED-1"]
"""


def fleet_file(ledger: Path, *, duration: str = "6s", url: str = "embedded",
               extra_config: str = "") -> str:
    return FLEET.format(duration=duration, ledger=ledger, url=url, extra_config=extra_config)


def rows(ledger: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(ledger) as db:
        return list(db.execute(sql, args))


@pytest.mark.parametrize("transport", ["trio-websocket", "websockets"])
async def test_fleet_against_the_embedded_csms_fills_the_ledger(
    tmp_path: Path, transport: str
) -> None:
    ledger = tmp_path / "run.db"
    fleet = parse_fleet(fleet_file(ledger), overrides={"csms.transport": transport})
    with trio.fail_after(60):
        result = await run_simulation(fleet, live=False, grace=5)
    assert result.status == "completed" and result.exit_code == 0, result.reasons

    kinds = dict(rows(ledger, "SELECT kind, COUNT(*) FROM events GROUP BY kind"))
    assert kinds["connected"] == 4
    assert kinds["boot"] == 4
    assert kinds["frame_out"] > 40 and kinds["frame_in"] > 40
    assert kinds["csms_frame_in"] == kinds["frame_out"]  # the CSMS got every frame we sent
    assert kinds.get("crash", 0) == 0
    started = kinds["tx_started"]
    assert started >= 4
    assert kinds["tx_stopped"] == started  # the graceful end stopped what was running
    assert kinds["tx_acked"] == started

    (status, seed, sha) = rows(
        ledger, "SELECT status, seed, config_sha256 FROM runs WHERE id = ?", result.run_id)[0]
    assert status == "completed" and seed == 11 and sha == fleet.sha256
    violations = rows(ledger, "SELECT COUNT(*) FROM events WHERE kind = 'csms_frame_in' "
                              "AND data LIKE '%violations%' "
                              "AND data NOT LIKE '%\"violations\":[]%'")
    assert violations == [(0,)]
    assert rows(ledger, "PRAGMA integrity_check") == [("ok",)]


async def test_unreachable_csms_is_retried_logged_and_fails_the_run(tmp_path: Path) -> None:
    ledger = tmp_path / "down.db"
    listener = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener[0].socket.getsockname()[1]
    await listener[0].aclose()  # a port nobody listens on
    fleet = parse_fleet(fleet_file(ledger, duration="4s", url=f"ws://127.0.0.1:{port}/ocpp"))
    notices: list[str] = []
    with trio.fail_after(60):
        result = await run_simulation(fleet, live=False, grace=1, notify=notices.append)
    assert result.status == "failed" and result.exit_code == 1
    failures = rows(ledger, "SELECT COUNT(*) FROM events WHERE kind = 'connect_failed'")[0][0]
    assert isinstance(failures, int) and failures >= 8  # each of 4 chargers retried
    # the cause was told at once, once, and the final reason names it with its count
    assert len(notices) == 1 and "connection refused" in notices[0].lower(), notices
    [reason] = [r for r in result.reasons if "no charger could connect" in r]
    assert f"(x{failures})" in reason and "refused" in reason.lower(), reason
    assert rows(ledger, "SELECT COUNT(*) FROM events WHERE kind = 'crash'") == [(0,)]


async def test_resume_delivers_what_the_last_run_left_queued(tmp_path: Path) -> None:
    ledger = tmp_path / "resume.db"
    listener = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener[0].socket.getsockname()[1]
    await listener[0].aclose()
    offline = fleet_file(ledger, duration="5s", url=f"ws://127.0.0.1:{port}/ocpp",
                         extra_config="AllowOfflineTxForUnknownId = true\n"
                                      "LocalAuthorizeOffline = true")
    with trio.fail_after(60):
        first = await run_simulation(parse_fleet(offline), live=False, grace=0.5)
    assert first.status == "failed"
    queued = rows(ledger, "SELECT COUNT(*) FROM outbox")[0][0]
    assert isinstance(queued, int) and queued > 0
    assert summarize(ledger, first.run_id).messages_queued == queued
    started_offline = rows(ledger, "SELECT COUNT(*) FROM events WHERE kind = 'tx_started'")[0][0]
    assert isinstance(started_offline, int) and started_offline > 0

    online = fleet_file(ledger, duration="4s", extra_config="")
    with trio.fail_after(60):
        second = await run_simulation(parse_fleet(online), resume=True, live=False, grace=5)
    assert second.status == "completed", second.reasons
    delivered = rows(
        ledger,
        "SELECT COUNT(*) FROM events WHERE run_id = ? AND kind = 'csms_frame_in' "
        "AND data LIKE '%StartTransaction%'", second.run_id,
    )[0][0]
    assert isinstance(delivered, int) and delivered >= started_offline
    # the first run's report still says what it left, the second's what is left now
    assert summarize(ledger, first.run_id).messages_queued == queued
    left_now = rows(ledger, "SELECT COUNT(*) FROM outbox")[0][0]
    assert summarize(ledger, second.run_id).messages_queued == left_now
